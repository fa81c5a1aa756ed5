import Foundation

/// Bad input: names the field (a dotted path such as `config.init.x0`)
/// and says how to fix it. The CLI prints `description` and exits 2.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Dotted path of the offending field.
    public let field: String
    /// What is wrong and how to fix it.
    public let message: String

    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

/// Reads one JSON object field by field, remembering the path for error
/// messages and which keys were used, so that unknown keys are reported.
public final class ObjectReader {
    public let path: String
    private let pairs: [(String, JSON)]
    private var used: Set<String> = []

    public init(_ json: JSON, path: String) throws {
        guard case let .object(p) = json else {
            throw ConfigError(path, "expected an object ({...}), got \(json.typeName)")
        }
        self.path = path
        pairs = p
    }

    public func field(_ key: String) -> String { "\(path).\(key)" }

    public func has(_ key: String) -> Bool { pairs.contains { $0.0 == key } }

    /// The raw value, marking the key used; nil when the key is absent. A `null` value is
    /// bad input naming the key (it used to read as "absent": `"flow": null` ran gf).
    public func value(_ key: String) throws -> JSON? {
        guard let v = pairs.first(where: { $0.0 == key })?.1 else { return nil }
        used.insert(key)
        if case .null = v { throw ConfigError(field(key), "is null; give a value, or drop the key for its default") }
        return v
    }

    /// Marks a free-form key used without reading it (`comment`).
    public func skip(_ key: String) {
        if has(key) { used.insert(key) }
    }

    public func object(_ key: String) throws -> ObjectReader? {
        guard let v = try value(key) else { return nil }
        return try ObjectReader(v, path: field(key))
    }

    public func double(_ key: String) throws -> Double? {
        guard let v = try value(key) else { return nil }
        guard case let .number(d) = v else { throw ConfigError(field(key), "expected a number, got \(v.typeName)") }
        return d
    }

    public func positive(_ key: String) throws -> Double? {
        guard let d = try double(key) else { return nil }
        guard d > 0 else { throw ConfigError(field(key), "must be a positive number, got \(JSON.format(d))") }
        return d
    }

    public func int(_ key: String, min lower: Int? = nil) throws -> Int? {
        guard let d = try double(key) else { return nil }
        guard d == d.rounded() else { throw ConfigError(field(key), "expected a whole number, got \(JSON.format(d))") }
        // Above 2^53 a JSON number no longer names one integer (2^53 + 1 reads as 2^53).
        guard abs(d) < 9e15 else { throw ConfigError(field(key), "must be below 9e15 in magnitude (whole numbers are exact only up to 2^53), got \(JSON.format(d))") }
        if let lower, Int(d) < lower { throw ConfigError(field(key), "must be at least \(lower), got \(Int(d))") }
        return Int(d)
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let v = try value(key) else { return nil }
        guard case let .bool(b) = v else { throw ConfigError(field(key), "expected true or false, got \(v.typeName)") }
        return b
    }

    public func string(_ key: String) throws -> String? {
        guard let v = try value(key) else { return nil }
        guard case let .string(s) = v else { throw ConfigError(field(key), "expected a string, got \(v.typeName)") }
        return s
    }

    public func numbers(_ key: String) throws -> [Double]? {
        guard let v = try value(key) else { return nil }
        return try ObjectReader.numbers(v, path: field(key))
    }

    public static func numbers(_ v: JSON, path: String) throws -> [Double] {
        guard case let .array(items) = v else { throw ConfigError(path, "expected an array of numbers, got \(v.typeName)") }
        return try items.enumerated().map { i, item in
            guard case let .number(d) = item else { throw ConfigError("\(path)[\(i)]", "expected a number, got \(item.typeName)") }
            return d
        }
    }

    /// Throws for the first key that was never read.
    public func finish() throws {
        for (k, _) in pairs where !used.contains(k) {
            throw ConfigError(field(k), "unknown key; remove it or check its spelling")
        }
    }

    /// Throws when both `a` and `b` are given: they are alternatives (`x0` or `scale`,
    /// `A` or `A_file`), and the one not read would otherwise be blamed as "unknown".
    public func exclusive(_ a: String, _ b: String, hint: String = "") throws {
        if has(a) && has(b) {
            throw ConfigError(field(b), "cannot be combined with \"\(a)\"; give one of the two\(hint)")
        }
    }

    /// Throws for the first key not in `allowed` (before reading).
    public func allowOnly(_ allowed: [String]) throws {
        for (k, _) in pairs where !allowed.contains(k) {
            throw ConfigError(field(k), "unknown key; expected one of \(allowed.joined(separator: ", "))")
        }
    }
}

extension ConfigError {
    /// A file error as a short reason: the POSIX message under Foundation's error
    /// ("No such file or directory", "Not a directory", "Permission denied"), not
    /// "The operation could not be completed. (NSCocoaErrorDomain error 4.)" or an
    /// NSError dump with its user info.
    public static func fileReason(_ error: any Error) -> String {
        if let e = error as? ConfigError { return e.message }
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        if let under = ns.userInfo[NSUnderlyingErrorKey] as? NSError, under.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(under.code)))
        }
        switch CocoaError.Code(rawValue: ns.code) {
        case .fileNoSuchFile, .fileReadNoSuchFile: return "No such file or directory"
        case .fileWriteFileExists: return "a file of that name is in the way (a folder is needed there)"
        case .fileWriteNoPermission, .fileReadNoPermission: return "Permission denied"
        case .fileWriteOutOfSpace: return "No space left on device"
        case .fileWriteVolumeReadOnly: return "Read-only file system"
        default: return "I/O error (\(ns.domain) \(ns.code))"
        }
    }

    /// `--out: cannot write 'path': reason`, one line, for any error a write threw.
    public static func cannotWrite(_ path: String, _ error: any Error, field: String = "--out") -> ConfigError {
        // A file where a folder of the path should be: Foundation reports it as error 512 on Linux.
        var dir = URL(fileURLWithPath: path).deletingLastPathComponent()
        while dir.path != "/" && !dir.path.isEmpty {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory) {
                if !isDirectory.boolValue {
                    return ConfigError(field, "cannot write '\(path)': '\(dir.path)' is a file, not a folder; choose another path")
                }
                break
            }
            dir = dir.deletingLastPathComponent()
        }
        // AtomicFile's own errors already say what could not be written.
        if let e = error as? ConfigError, e.message.hasPrefix("cannot write") { return ConfigError(field, e.message) }
        return ConfigError(field, "cannot write '\(path)': \(fileReason(error))")
    }

    /// The message as one line: newlines and other control characters in names taken from
    /// the input (an unknown flow "g\nf", a path) are shown escaped, so that an error is
    /// always one line (INTERFACE.md, exit 2).
    public static func oneLine(_ text: String) -> String {
        var out = ""
        for u in text.unicodeScalars {
            switch u {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7f || (0x80..<0xa0).contains(u.value) || u == "\u{2028}" || u == "\u{2029}" {
                    out += "\\u{" + String(u.value, radix: 16) + "}"
                } else { out.unicodeScalars.append(u) }
            }
        }
        return out
    }
}
