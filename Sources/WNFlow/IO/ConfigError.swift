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

    /// The raw value, marking the key used.
    public func value(_ key: String) -> JSON? {
        guard let v = pairs.first(where: { $0.0 == key })?.1 else { return nil }
        used.insert(key)
        if case .null = v { return nil }
        return v
    }

    public func object(_ key: String) throws -> ObjectReader? {
        guard let v = value(key) else { return nil }
        return try ObjectReader(v, path: field(key))
    }

    public func double(_ key: String) throws -> Double? {
        guard let v = value(key) else { return nil }
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
        guard d == d.rounded(), abs(d) < 9e15 else { throw ConfigError(field(key), "expected a whole number, got \(JSON.format(d))") }
        if let lower, Int(d) < lower { throw ConfigError(field(key), "must be at least \(lower), got \(Int(d))") }
        return Int(d)
    }

    public func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard case let .bool(b) = v else { throw ConfigError(field(key), "expected true or false, got \(v.typeName)") }
        return b
    }

    public func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard case let .string(s) = v else { throw ConfigError(field(key), "expected a string, got \(v.typeName)") }
        return s
    }

    public func numbers(_ key: String) throws -> [Double]? {
        guard let v = value(key) else { return nil }
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

    /// Throws for the first key not in `allowed` (before reading).
    public func allowOnly(_ allowed: [String]) throws {
        for (k, _) in pairs where !allowed.contains(k) {
            throw ConfigError(field(k), "unknown key; expected one of \(allowed.joined(separator: ", "))")
        }
    }
}
