import Foundation
import GSLKit

/// One run of a sweep: its 0-based `index`, the parameters that define it
/// (written as `params`), and the full CONFIG.json it runs.
public struct SweepPoint: Sendable {
    public var index: Int
    public var params: [(String, JSON)]
    public var config: JSON
    /// `config_digest` of its JSONL line (`SweepPoint.digest(of:)` of the run's config as the
    /// SWEEP.json gives it), so that `--resume` also notices a changed `base` (the params alone
    /// did not: a resumed sweep mixed runs of two configs). For `reproduce` the digest of the
    /// config without `integrator.stop`, which is computed from y (BLAS-dependent in its last
    /// bits), and of the plan's relative stop.
    public var configDigest: String?
    /// `data_digest` of its line: the digest of the contents of the data files the config
    /// names (`dataFiles(of:)`), nil when it names none. A separate field, so that lines
    /// written before it existed keep their `config_digest` (stop 31: `--resume` kept 10 runs
    /// of an old `A.csv` and ran 14 on the new one).
    public var dataDigest: String?


    /// FNV-1a (64 bit) of `json` serialized, then of `extra` (strings folded in after it), 16
    /// hex digits.
    public static func digest(of json: JSON, extra: [String] = []) -> String {
        var h = fnv(json.serialized(indent: false).utf8)
        for f in extra { h = fnv(f.utf8, from: h) }
        return hex16(h)
    }

    /// FNV-1a (64 bit) of `bytes`, continuing from `h`.
    static func fnv<S: Sequence>(_ bytes: S, from start: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 where S.Element == UInt8 {
        var h = start
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        return h
    }

    static func hex16(_ h: UInt64) -> String {
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// `points` with `dataDigest` set where their configs name data files: FNV-1a over each
    /// file's own digest in document order, each file read and hashed once. A file that cannot
    /// be read is left to the config's own parse to report.
    public static func digestingDataFiles(_ points: [SweepPoint], baseDirectory: String) -> [SweepPoint] {
        var hashes: [String: String] = [:]
        return points.map { p in
            let paths = dataFiles(of: p.config, baseDirectory: baseDirectory)
            guard !paths.isEmpty else { return p }
            var q = p
            let files = paths.map { path -> String in
                if let h = hashes[path] { return h }
                let h = FileManager.default.contents(atPath: path).map { hex16(fnv($0)) } ?? "unreadable"
                hashes[path] = h
                return h
            }
            q.dataDigest = hex16(files.reduce(fnv([UInt8]())) { fnv($1.utf8, from: $0) })
            return q
        }
    }

    /// The paths of the data files a config names (every string under a key ending in
    /// `_file`, e.g. `problem.A_file`), in document order, resolved against `baseDirectory`.
    public static func dataFiles(of json: JSON, baseDirectory: String) -> [String] {
        var out: [String] = []
        func walk(_ x: JSON) {
            switch x {
            case let .object(pairs):
                for (k, v) in pairs {
                    if k.hasSuffix("_file"), case let .string(path) = v {
                        out.append(path.hasPrefix("/") ? path : baseDirectory + "/" + path)
                    } else { walk(v) }
                }
            case let .array(items): items.forEach(walk)
            default: break
            }
        }
        walk(json)
        return out
    }

    public init(index: Int, params: [(String, JSON)], config: JSON) {
        self.index = index
        self.params = params
        self.config = config
    }
}

/// `SWEEP.json = {"base": CONFIG, "grid": {"dotted.path": [values…], …}}`
/// (docs/experiments.md). The grid is enumerated with its keys sorted and
/// the last key varying fastest; `index` is the 0-based position.
public struct SweepSpec: Sendable {
    public var base: JSON
    /// Grid keys (sorted) and their values.
    public var grid: [(key: String, values: [JSON])]

    public init(base: JSON, grid: [(key: String, values: [JSON])]) {
        self.base = base
        self.grid = grid.sorted { $0.key < $1.key }
    }

    /// Reads SWEEP.json text; errors name the field (`sweep.grid.model.eta_g`).
    public static func parse(_ text: String) throws -> SweepSpec {
        let json: JSON
        do { json = try JSON.parse(text) } catch let e as JSONSyntaxError {
            throw ConfigError("sweep", e.description)
        }
        let root = try ObjectReader(json, path: "sweep")
        try root.allowOnly(["base", "grid", "comment"])
        _ = try root.value("comment")  // free-form, but not null
        guard let base = try root.value("base") else {
            throw ConfigError("sweep.base", "missing; give the CONFIG.json every run starts from")
        }
        guard case .object = base else { throw ConfigError("sweep.base", "expected an object (a CONFIG.json), got \(base.typeName)") }
        guard let g = try root.value("grid") else {
            throw ConfigError("sweep.grid", "missing; give {\"dotted.path\": [values…]}, e.g. {\"model.eta_g\": [0.01, 0.1]}")
        }
        guard case let .object(pairs) = g else { throw ConfigError("sweep.grid", "expected an object, got \(g.typeName)") }
        var grid: [(key: String, values: [JSON])] = []
        for (k, v) in pairs {
            let field = "sweep.grid.\(k)"
            let parts = k.split(separator: ".", omittingEmptySubsequences: false)
            guard !k.isEmpty, parts.allSatisfy({ !$0.isEmpty }) else {
                throw ConfigError(field, "is not a dotted path such as \"model.eta_g\"")
            }
            guard case let .array(values) = v, !values.isEmpty else {
                throw ConfigError(field, "expected a non-empty array of values")
            }
            grid.append((k, values))
        }
        try root.finish()
        var runs = 1
        for (_, vs) in grid {
            let (p, overflow) = runs.multipliedReportingOverflow(by: vs.count)
            guard !overflow, p <= SweepSpec.maxRuns else {
                throw ConfigError("sweep.grid", "has more than \(SweepSpec.maxRuns) runs (the product of the value counts); split it into several sweeps")
            }
            runs = p
        }
        let spec = SweepSpec(base: base, grid: grid)
        // Structural check of every path against the base.
        for (k, vs) in spec.grid { _ = try setting(spec.base, path: k, to: vs[0], field: "sweep.grid.\(k)") }
        return spec
    }

    /// The largest grid `parse` accepts (every point is built in memory).
    public static let maxRuns = 1_000_000

    /// The number of runs.
    public var count: Int { grid.reduce(1) { $0 * $1.values.count } }

    /// The point at `index` (last key fastest).
    public func point(_ index: Int) throws -> SweepPoint {
        var rest = index
        var chosen = [JSON](repeating: .null, count: grid.count)
        for k in stride(from: grid.count - 1, through: 0, by: -1) {
            let n = grid[k].values.count
            chosen[k] = grid[k].values[rest % n]
            rest /= n
        }
        var config = base
        var params: [(String, JSON)] = []
        for (k, g) in grid.enumerated() {
            config = try SweepSpec.setting(config, path: g.key, to: chosen[k], field: "sweep.grid.\(g.key)")
            params.append((g.key, chosen[k]))
        }
        var point = SweepPoint(index: index, params: params, config: config)
        point.configDigest = SweepPoint.digest(of: config)
        return point
    }

    /// All points.
    public func points() throws -> [SweepPoint] { try (0..<count).map(point) }

    /// `json` with the value at a dotted path replaced (missing objects are created).
    public static func setting(_ json: JSON, path: String, to value: JSON, field: String) throws -> JSON {
        try set(json, parts: path.split(separator: ".").map(String.init)[...], value: value, field: field, walked: "")
    }

    /// A `null` grid value leaves the key out of the run's config (its default), so that a
    /// grid can compare a setting with its default; configs themselves refuse `null`.
    private static func set(_ json: JSON, parts: ArraySlice<String>, value: JSON, field: String, walked: String) throws -> JSON {
        guard let head = parts.first else { return value }
        guard case var .object(pairs) = json else {
            throw ConfigError(field, "cannot set '\(head)' inside '\(walked)', which is \(json.typeName), not an object")
        }
        let here = walked.isEmpty ? head : walked + "." + head
        if parts.count == 1, case .null = value {
            pairs.removeAll { $0.0 == head }
            return .object(pairs)
        }
        if let i = pairs.firstIndex(where: { $0.0 == head }) {
            pairs[i].1 = try set(pairs[i].1, parts: parts.dropFirst(), value: value, field: field, walked: here)
        } else {
            pairs.append((head, try set(.object([]), parts: parts.dropFirst(), value: value, field: field, walked: here)))
        }
        return .object(pairs)
    }
}

/// Which indices a shard runs: `--shard I/N` (1-based I) runs the indices
/// with `index % N == I − 1`.
public struct Shard: Sendable, Equatable, CustomStringConvertible {
    public var i: Int
    public var n: Int

    public init(i: Int, n: Int) { self.i = i; self.n = n }

    /// Parses `I/N` (1 ≤ I ≤ N).
    public static func parse(_ s: String) throws -> Shard {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw ConfigError("--shard", "expected I/N such as 1/4, got '\(s)'")
        }
        guard n >= 1, i >= 1, i <= n else {
            throw ConfigError("--shard", "expected 1 ≤ I ≤ N in I/N (1-based), got '\(s)'")
        }
        return Shard(i: i, n: n)
    }

    public func contains(_ index: Int) -> Bool { index % n == i - 1 }
    public var description: String { "\(i)/\(n)" }
    /// `results-shard-I-of-N.jsonl`.
    public var fileName: String { "results-shard-\(i)-of-\(n).jsonl" }
}

/// An append-only JSON-lines file: each record is one `write(2)` of the
/// whole line on an `O_APPEND` descriptor, so a killed process never leaves
/// a torn line in the middle (a torn *trailing* line, possible only if the
/// kernel write itself is interrupted, is cut off by `recover`).
public final class JSONLinesFile: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let lock = NSLock()

    public init(path: String) throws {
        self.path = path
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard fd >= 0 else {
            throw ConfigError("--out", "cannot open '\(path)' for appending: \(String(cString: strerror(errno)))")
        }
    }

    deinit { close(fd) }

    /// Appends `line` (without its newline) as one write.
    public func append(_ line: String) throws {
        var bytes = Array((line + "\n").utf8)
        lock.lock()
        defer { lock.unlock() }
        let end = lseek(fd, 0, SEEK_END)
        let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else {
            let why = n < 0 ? String(cString: strerror(errno)) : "the disk is full or a file size limit was reached"
            // No torn line left behind: a later resume reads every line.
            if n > 0 && end >= 0 { _ = ftruncate(fd, end) }
            throw ConfigError("--out", "short write to '\(path)' (\(max(n, 0)) of \(bytes.count) bytes): \(why)")
        }
        bytes.removeAll()
    }

    /// `text` split at LF and CRLF ("\r\n" is one Character in Swift, so a split at "\n"
    /// alone left a CRLF file one line).
    public static func lines(of text: String, keepingEmpty: Bool) -> [String] {
        text.split(omittingEmptySubsequences: !keepingEmpty, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map(String.init)
    }

    /// Reads the complete lines of a JSONL file, cutting off a torn trailing line (no final
    /// newline: the only damage a killed writer leaves) and reading CRLF endings as LF; when
    /// either happened the file is rewritten (atomically) without it. Any other line that is
    /// not a JSON object is an error naming it: the file is damaged or not a sweep file, and
    /// resuming over it had silently dropped (and rerun) a damaged middle line, every line
    /// of a CRLF copy, or a whole foreign file.
    public static func recover(path: String) throws -> [(line: String, json: JSON)] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let text = String(decoding: data, as: UTF8.self)
        var pieces = lines(of: text, keepingEmpty: true)
        var rewrite = text.contains("\r\n")
        if let last = pieces.last {
            if last.isEmpty { pieces.removeLast() } else { pieces.removeLast(); rewrite = true }
        }
        var out: [(String, JSON)] = []
        for (n, p) in pieces.enumerated() where !p.isEmpty {
            guard let j = try? JSON.parse(p), case .object = j else {
                throw ConfigError("--resume", "'\(path)' line \(n + 1) is not a JSON object (damaged, or not a results file); "
                    + "repair or delete that line (or the file), or use another --out")
            }
            out.append((p, j))
        }
        if rewrite {
            try AtomicFile.write(out.map { $0.0 + "\n" }.joined(), to: path)
        }
        return out
    }
}

/// An exclusive hold on a results file for one process (`flock` on a hidden
/// `.NAME.lock` beside it, released when the process ends): two processes appending to the
/// same file had interleaved their runs and left "58 of 60". Taking it also removes the
/// temporary files a process killed inside `AtomicFile.write` left (`.NAME.tmp-PID`).
public final class OutputLock: @unchecked Sendable {
    private let fd: Int32

    /// `hint`: appended to the refusal (sweep: " (or another --shard)").
    public init(path: String, hint: String = "") throws {
        // Beside the file a symlink points to, where AtomicFile writes its temporaries.
        let url = URL(fileURLWithPath: AtomicFile.finalTarget(of: path))
        let dir = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let lockPath = dir + "/." + name + ".lock"
        fd = open(lockPath, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else {
            throw ConfigError("--out", "cannot create '\(lockPath)': \(String(cString: strerror(errno)))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            guard code == EWOULDBLOCK else {
                // A file system without locks (NFS without its lock service, Lustre without
                // -o flock): go on unlocked rather than refuse every run.
                FileHandle.standardError.write(Data("note: cannot lock '\(lockPath)' (\(String(cString: strerror(code)))); make sure no other wnflow process writes '\(path)'\n".utf8))
                return
            }
            close(fd)
            throw ConfigError("--out", "'\(path)' is being written by another wnflow process; wait for it to finish, or use another --out\(hint)")
        }
        let stale = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("." + name + ".tmp-") }
        for f in stale { try? FileManager.default.removeItem(atPath: dir + "/" + f) }
    }

    deinit { close(fd) }
}

/// Extra fields computed from a finished run and appended to its line.
public typealias SweepMetrics = @Sendable (SweepPoint, SimulationConfig, SimulationResult) -> [(String, JSON)]

/// Runs sweep points in parallel and records each as one JSON line
/// (`index`, `params`, the result.json fields, and any metrics). The sweep
/// and `wnflow reproduce` both run on it.
public enum SweepEngine {
    /// Parses every point's config first (bad input fails before any run).
    /// Errors name the config field and, for grid keys, the grid path.
    public static func configs(_ points: [SweepPoint], baseDirectory: String, gridKeys: [String] = []) throws -> [SimulationConfig] {
        try points.map { p in
            do {
                return try SimulationConfig.from(json: p.config, baseDirectory: baseDirectory)
            } catch let e as ConfigError {
                let sub = e.field.hasPrefix("config.") ? String(e.field.dropFirst("config.".count)) : e.field
                if let k = gridKeys.first(where: { sub == $0 || sub.hasPrefix($0 + ".") || $0.hasPrefix(sub + ".") }) {
                    throw ConfigError("sweep.grid.\(k)", "\(e.message) (run \(p.index), \(e.field))")
                }
                throw ConfigError(e.field.hasPrefix("config") ? "sweep.base" + e.field.dropFirst("config".count) : e.field,
                                  "\(e.message) (run \(p.index))")
            }
        }
    }

    /// The indices already recorded in the JSONL file at `path` (for `--resume`; a
    /// torn trailing line is cut off first). Every line must be a run of `points`
    /// with the same params, else a `--resume` error says the file belongs to
    /// another sweep. No file: nothing done.
    /// `origin` names what such a file came from in the error (reproduce: other figure settings).
    /// `changed`: what a config digest that differs means (reproduce: other figure settings).
    public static func completedIndices(path: String, points: [SweepPoint],
                                        origin: String = "it was made by another sweep",
                                        changed: String = "sweep.base changed; any edit counts, even reordered keys") throws -> Set<Int> {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let byIndex = Dictionary(points.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
        var done = Set<Int>()
        for r in try JSONLinesFile.recover(path: path) {
            guard let i = index(of: r.json), let p = byIndex[i] else {
                throw ConfigError("--resume", "'\(path)' has a line whose index is not in this sweep/shard; \(origin)")
            }
            guard r.json["params"] == .object(p.params) else {
                throw ConfigError("--resume", "'\(path)' line for index \(p.index) has other params; \(origin)")
            }
            // A finished run's line carries its result (a line of index and params alone was
            // taken as done).
            guard r.json["status"] != nil else {
                throw ConfigError("--resume", "'\(path)' line for index \(p.index) has no result (no status); delete that line and resume")
            }
            // Lines written before stop 28 have no digest; they are taken on their params.
            if let d = r.json["config_digest"], let mine = p.configDigest, d != .string(mine) {
                throw ConfigError("--resume", "'\(path)' line for index \(p.index) was run from another config (\(changed)); write to a new folder or delete that file")
            }
            // Lines written before stop 31 have no data digest; they are taken on the rest.
            if let d = r.json["data_digest"], d != p.dataDigest.map(JSON.string) {
                throw ConfigError("--resume", "'\(path)' line for index \(p.index) was run on other data (a data file the config names changed); write to a new folder or delete that file")
            }
            done.insert(p.index)
        }
        return done
    }

    /// The `index` of a JSONL record: a whole number in 0..<2⁵³, else nil
    /// (a foreign or damaged line; never trap on it).
    public static func index(of record: JSON) -> Int? {
        guard case let .number(d)? = record["index"], d >= 0, d < 9_007_199_254_740_992, d == d.rounded() else { return nil }
        return Int(d)
    }

    /// The line of one finished run (`includeWallTime` false for byte comparisons).
    public static func record(point: SweepPoint, config: SimulationConfig, result: SimulationResult,
                              metrics: [(String, JSON)], includeWallTime: Bool = true) -> JSON {
        guard case let .object(fields) = result.json(config: config, includeWallTime: includeWallTime) else { return .null }
        let digest: [(String, JSON)] = (point.configDigest.map { [("config_digest", .string($0))] } ?? [])
            + (point.dataDigest.map { [("data_digest", .string($0))] } ?? [])
        return .object([("index", .number(Double(point.index))), ("params", .object(point.params))] + digest + fields + metrics)
    }

    /// Runs `points` (skipping indices in `skip`) on `jobs` workers, appending
    /// each finished run's line to `output`. Returns the new lines by index.
    /// `progress(done, total)` is called after each run.
    /// - Throws: the first failed append (a full disk, a file size limit), after the runs
    ///   under way finish and no new one starts: the lines written stay, and `--resume`
    ///   continues from them. (Failed appends were counted and ignored: a sweep reported
    ///   "24 of 60 runs" with exit 0, and `reproduce` drew a figure from 6 of 24 runs.)
    public static func run(points: [SweepPoint], configs: [SimulationConfig], output: JSONLinesFile,
                           skip: Set<Int> = [], jobs: Int? = nil, metrics: SweepMetrics? = nil,
                           progress: (@Sendable (Int, Int) -> Void)? = nil) throws -> [Int: JSON] {
        let todo = points.indices.filter { !skip.contains(points[$0].index) }
        let counter = Counter()
        let total = todo.count
        let failure = FirstError()
        let lines = ParallelRunner.map(count: todo.count, jobs: jobs, onDone: { _, _ in
            progress?(counter.increment(), total)
        }) { k -> JSON? in
            guard !failure.isSet else { return nil }
            let i = todo[k]
            let cfg = configs[i]
            let result = Simulation(config: cfg).run(recordTrajectory: false)
            let extra = metrics?(points[i], cfg, result) ?? []
            let line = record(point: points[i], config: cfg, result: result, metrics: extra)
            do { try output.append(line.serialized(indent: false)) } catch { failure.set(error); return nil }
            return line
        }
        if let error = failure.value {
            let written = lines.compactMap { $0 }.count
            let why = (error as? ConfigError)?.message ?? "\(error)"
            throw ConfigError("--out", "\(why); \(written) of \(total) runs were written before it, and no further run was started: "
                + "free space (or raise the file size limit) and rerun with --resume")
        }
        var out: [Int: JSON] = [:]
        for (k, line) in zip(todo, lines) { if let line { out[points[k].index] = line } }
        return out
    }

    /// Rewrites a JSONL file sorted by index with one line per index (the
    /// bytes then depend only on the configs, not on the order runs finished).
    public static func finalize(path: String) throws -> [(index: Int, json: JSON)] {
        let rows = try JSONLinesFile.recover(path: path)
        var byIndex: [Int: (String, JSON)] = [:]
        for r in rows {
            guard let i = index(of: r.json) else { continue }
            byIndex[i] = r
        }
        let sorted = byIndex.keys.sorted()
        try AtomicFile.write(sorted.map { byIndex[$0]!.0 + "\n" }.joined(), to: path)
        return sorted.map { ($0, byIndex[$0]!.1) }
    }
}

/// The first error some worker hit (thread-safe).
final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private var first: (any Error)?
    func set(_ e: any Error) { lock.lock(); if first == nil { first = e }; lock.unlock() }
    var value: (any Error)? { lock.lock(); defer { lock.unlock() }; return first }
    var isSet: Bool { value != nil }
}

/// A thread-safe counter.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func increment() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}

/// `x` without what describes the machine rather than the run: `wall_seconds` anywhere and
/// the `blas` provenance (for comparing runs byte for byte).
public func strippingProvenance(_ x: JSON) -> JSON {
    switch x {
    case let .object(pairs):
        return .object(pairs.filter { $0.0 != "wall_seconds" && $0.0 != "blas" }.map { ($0.0, strippingProvenance($0.1)) })
    case let .array(items): return .array(items.map(strippingProvenance))
    default: return x
    }
}

/// The BLAS kernel a sweep line or `result.json` was computed with (`blas.kernel`), nil when
/// not recorded (lines written before the field existed).
public func blasKernel(of record: JSON) -> String? {
    guard case let .string(k)? = record["blas"]?["kernel"] else { return nil }
    return k
}
