import Foundation
import GSLKit

/// Reads matrices and vectors from CSV (comma- or whitespace-separated,
/// one row a line, `#` comments) or NumPy `.npy` files (float64, C or
/// Fortran order, 1-D or 2-D).
public enum DataFile {
    /// Loads a 2-D array; `field` names the config field for errors.
    public static func matrix(path: String, field: String) throws -> Matrix {
        let (shape, values) = try load(path: path, field: field)
        switch shape.count {
        case 2:
            guard let m = Matrix(rows: shape[0], cols: shape[1], storage: values) else {
                throw ConfigError(field, "\(path): shape \(shape) does not match \(values.count) values")
            }
            return m
        case 1:
            return Matrix(rows: 1, cols: shape[0], storage: values)!
        default:
            throw ConfigError(field, "\(path): expected a 2-D array, got \(shape.count)-D")
        }
    }

    /// Loads a 1-D array (a single row or column of a 2-D file is accepted).
    public static func vector(path: String, field: String) throws -> [Double] {
        let (shape, values) = try load(path: path, field: field)
        guard shape.count == 1 || (shape.count == 2 && (shape[0] == 1 || shape[1] == 1)) else {
            throw ConfigError(field, "\(path): expected a vector, got shape \(shape)")
        }
        return values
    }

    static func load(path: String, field: String) throws -> (shape: [Int], values: [Double]) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConfigError(field, "file '\(path)' not found; paths are relative to the config file's folder")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(field, "file '\(path)' cannot be read; check its permissions")
        }
        let result: (shape: [Int], values: [Double])
        if path.lowercased().hasSuffix(".npy") {
            result = try NPY.parse([UInt8](data), path: path, field: field)
        } else {
            result = try parseCSV(String(decoding: data, as: UTF8.self), path: path, field: field)
        }
        if let bad = result.values.firstIndex(where: { !$0.isFinite }) {
            throw ConfigError(field, "\(path): value #\(bad + 1) is NaN or Inf; every entry must be finite")
        }
        return result
    }

    static func parseCSV(_ text: String, path: String, field: String) throws -> (shape: [Int], values: [Double]) {
        // A UTF-8 byte-order mark (Excel's "CSV UTF-8") is not part of the first cell, as the
        // config's JSON reader ignores one too ("'\u{FEFF}1' is not a number", invisibly).
        let text = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        var rows: [[Double]] = []
        // isNewline: "\r\n" is one Character in Swift, which split(separator: "\n") would not cut.
        for (ln, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            // Cells are separated by commas or semicolons, or by blanks alone. An empty cell
            // between two separators ("1,,3") is an error on this line, not a short row that
            // the next line is blamed for; one trailing separator is allowed.
            let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
            let fields = line.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "," || $0 == ";" })
            if fields.count > 1, let empty = fields.dropLast().firstIndex(where: { $0.allSatisfy(isBlank) }) {
                throw ConfigError(field, "\(path): line \(ln + 1), cell \(empty + 1) is empty; fill it (use 0 for a zero entry)")
            }
            let cells = fields.flatMap { $0.split(whereSeparator: isBlank) }
            if cells.isEmpty { continue }
            var row: [Double] = []
            for (cn, cell) in cells.enumerated() {
                // Double() reads up to a NUL and drops the rest ("-1\09999" was -1, exit 0).
                guard !cell.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }), let d = Double(cell) else {
                    let shown = cell.unicodeScalars.map {
                        [.control, .format].contains($0.properties.generalCategory) ? "\\u{\(String($0.value, radix: 16))}" : String($0)
                    }.joined()
                    throw ConfigError(field, "\(path): line \(ln + 1), column \(cn + 1): '\(shown)' is not a number")
                }
                row.append(d)
            }
            if let first = rows.first, first.count != row.count {
                throw ConfigError(field, "\(path): line \(ln + 1) has \(row.count) values, earlier lines have \(first.count) (ragged rows)")
            }
            rows.append(row)
        }
        guard let first = rows.first else { throw ConfigError(field, "\(path): the file holds no numbers") }
        if rows.count == 1 { return ([first.count], first) }
        return ([rows.count, first.count], rows.flatMap { $0 })
    }
}

/// A reader of NumPy's `.npy` format (versions 1–3), float64 only.
enum NPY {
    static func parse(_ b: [UInt8], path: String, field: String) throws -> (shape: [Int], values: [Double]) {
        func bad(_ why: String) -> ConfigError { ConfigError(field, "\(path): not a valid .npy file (\(why)); save with numpy.save(path, array.astype('float64'))") }
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard b.count >= 10, Array(b[0..<6]) == magic else { throw bad("missing \\x93NUMPY magic") }
        let major = b[6]
        let headerLen: Int, headerStart: Int
        switch major {
        case 1:
            headerLen = Int(b[8]) | Int(b[9]) << 8
            headerStart = 10
        case 2, 3:
            guard b.count >= 12 else { throw bad("truncated header") }
            headerLen = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24
            headerStart = 12
        default:
            throw bad("unsupported version \(major)")
        }
        guard headerStart + headerLen <= b.count else { throw bad("truncated header") }
        let header = String(decoding: b[headerStart..<(headerStart + headerLen)], as: UTF8.self)
        guard let descr = dictValue(header, "descr") else { throw bad("no 'descr' in header") }
        let d = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\" "))
        guard d == "<f8" || d == "=f8" || d == "f8" || d == "<d" else {
            throw bad("dtype \(d), expected float64 '<f8'")
        }
        guard let fo = dictValue(header, "fortran_order") else { throw bad("no 'fortran_order' in header") }
        let fortran = fo.trimmingCharacters(in: .whitespaces) == "True"
        guard let shapeText = dictValue(header, "shape") else { throw bad("no 'shape' in header") }
        let dims = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape: [Int] = []
        for s in dims {
            guard let v = Int(s), v >= 0 else { throw bad("bad shape '\(shapeText)'") }
            shape.append(v)
        }
        guard !shape.isEmpty, shape.count <= 2 else { throw bad("expected 1-D or 2-D array, got shape (\(shapeText))") }
        var count = 1
        for s in shape {
            let (p, overflow) = count.multipliedReportingOverflow(by: s)
            guard !overflow, p <= b.count / 8 else { throw bad("data truncated: shape (\(shapeText)) needs more bytes than the file has") }
            count = p
        }
        let dataStart = headerStart + headerLen
        guard b.count - dataStart >= count * 8 else { throw bad("data truncated: expected \(count) float64 values") }
        var values = [Double](repeating: 0, count: count)
        for k in 0..<count {
            var bits: UInt64 = 0
            for j in 0..<8 { bits |= UInt64(b[dataStart + 8 * k + j]) << (8 * UInt64(j)) }
            values[k] = Double(bitPattern: bits)
        }
        if fortran && shape.count == 2 {
            let r = shape[0], c = shape[1]
            var t = values
            for i in 0..<r { for j in 0..<c { t[i * c + j] = values[j * r + i] } }
            values = t
        }
        return (shape, values)
    }

    /// The text of a value in the header's Python dict literal.
    static func dictValue(_ header: String, _ key: String) -> String? {
        guard let r = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        var rest = header[r.upperBound...].drop { $0 == " " }
        guard rest.first == ":" else { return nil }
        rest = rest.dropFirst().drop { $0 == " " }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[rest.startIndex...close])
        }
        let end = rest.firstIndex { $0 == "," || $0 == "}" } ?? rest.endIndex
        return String(rest[..<end])
    }
}
