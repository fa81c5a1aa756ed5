import Foundation
import GSLKit

/// Writes files atomically: to a temporary name in the same folder, then
/// renamed, so a reader never sees half a file.
public enum AtomicFile {
    /// Writes `text` to `path` through a temporary file renamed into place. A symlink chain
    /// is followed to its target, which is replaced (a dangling link's target is created); a
    /// target that exists and is not a regular file (a FIFO, a device) is written in place,
    /// and `/dev/stdout`, `/dev/stderr`, `/dev/fd/N` through their descriptors (the rename had
    /// turned `/dev/full` into a regular file, and re-opening `/proc/self/fd/1` of a shell's
    /// `>> log` would write over the log's start).
    public static func write(_ text: String, to path: String) throws {
        func inPlace(_ handle: FileHandle) throws {
            do { try handle.write(contentsOf: Data(text.utf8)) } catch {
                throw ConfigError("--out", "cannot write '\(path)': \(ConfigError.fileReason(error))")
            }
        }
        if let fd = standardDescriptor(path) { return try inPlace(FileHandle(fileDescriptor: fd, closeOnDealloc: false)) }
        let target = finalTarget(of: path)
        var st = stat()
        if stat(target, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG {
            guard (st.st_mode & S_IFMT) != S_IFDIR else {
                throw ConfigError("--out", "cannot write '\(path)': it is a folder")
            }
            guard let handle = FileHandle(forWritingAtPath: target) else {
                throw ConfigError("--out", "cannot write '\(path)': \(String(cString: strerror(errno)))")
            }
            defer { try? handle.close() }
            return try inPlace(handle)
        }
        let url = URL(fileURLWithPath: target).standardizedFileURL
        let dir = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.processIdentifier)")
        try Data(text.utf8).write(to: tmp)
        // POSIX rename(2) replaces the target atomically.
        guard rename(tmp.path, url.path) == 0 else {
            let err = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw ConfigError("--out", "cannot write '\(url.path)': \(err) (renaming the finished file into place)")
        }
    }
}

extension AtomicFile {
    /// The descriptor `/dev/stdout`, `/dev/stderr` or `/dev/fd/N` (`/proc/self/fd/N`) names.
    static func standardDescriptor(_ path: String) -> Int32? {
        switch path {
        case "/dev/stdout": return 1
        case "/dev/stderr": return 2
        default:
            for prefix in ["/dev/fd/", "/proc/self/fd/"] where path.hasPrefix(prefix) {
                return Int32(path.dropFirst(prefix.count))
            }
            return nil
        }
    }

    /// Where a chain of symlinks from `path` ends (the path itself when it is none; at most
    /// 40 links, as the kernel allows).
    static func finalTarget(of path: String) -> String {
        var p = path
        for _ in 0..<40 {
            guard let dest = try? FileManager.default.destinationOfSymbolicLink(atPath: p) else { break }
            p = dest.hasPrefix("/") ? dest : URL(fileURLWithPath: p).deletingLastPathComponent().appendingPathComponent(dest).path
        }
        return p
    }
}

extension CheckReport {
    public var json: JSON {
        var pairs: [(String, JSON)] = [
            ("name", .string(name)),
            ("max_violation", .number(maxViolation)),
            ("tolerance", .number(tolerance)),
            ("passed", .bool(passed)),
            ("t_worst", .number(tWorst)),
            ("quantity", .string(quantity)),
        ]
        if isMeasurement { pairs.append(("measurement", .bool(true))) }
        if byConstruction { pairs.append(("by_construction", .bool(true))) }
        // A measurement always carries `value` (null when too few samples to measure).
        if let value { pairs.append(("value", .number(value))) } else if isMeasurement { pairs.append(("value", .null)) }
        return .object(pairs)
    }
}

extension SimulationResult {
    /// `result.json` (INTERFACE.md). With `includeWallTime: false` the output leaves out
    /// what describes the machine rather than the run (`stats.wall_seconds` and `blas`, the
    /// BLAS kernels in use) and is byte-identical across runs of the same config with the
    /// same kernels.
    public func json(config: SimulationConfig, includeWallTime: Bool = true, extra: [(String, JSON)] = []) -> JSON {
        var stats: [(String, JSON)] = [
            ("steps", .number(Double(self.stats.acceptedSteps))),
            ("rejected_steps", .number(Double(self.stats.rejectedSteps))),
            ("rhs_evals", .number(Double(self.stats.rhsEvaluations))),
            ("jacobian_evals", .number(Double(self.stats.jacobianEvaluations))),
        ]
        if includeWallTime { stats.append(("wall_seconds", .number(wallSeconds))) }
        var pairs: [(String, JSON)] = [
            ("status", .string(status.rawValue)),
            ("t", .number(t)),
            ("loss", .number(loss)),
            ("x", .numbers(x)),
            ("z", .numbers(z)),
        ]
        if let g { pairs.append(("g", .number(g))) }
        if let v { pairs.append(("v", .numbers(v))) }
        if let logRho { pairs.append(("log_rho", .number(logRho))) }
        pairs.append(("stats", .object(stats)))
        pairs.append(("monitor", .array(monitor.map(\.json))))
        pairs.append(("flow", .string(config.model.flow.rawValue)))
        pairs.append(("depth", .number(Double(config.model.depth))))
        pairs.append(("signed", .bool(config.model.signed)))
        pairs.append(("method", .string(method)))
        if let truth = config.problem.groundTruth {
            let err = zip(z, truth).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
            let tn = norm2(truth)
            pairs.append(("rec_error", .number(err)))
            pairs.append(("rel_rec_error", .number(tn > 0 ? err / tn : err)))
        }
        if let message { pairs.append(("message", .string(message))) }
        pairs.append(("warnings", .array(warnings.map { .string($0) })))
        if includeWallTime { pairs.append(("blas", Self.blasProvenance)) }
        pairs.append(contentsOf: extra)
        // The rates, so that `wnflow plot` (and readers of sweep lines) can compute log ρ(t)
        // from g(t); η_g only where it is a constant (not wn-timedep, Thm 2.4).
        let flow = config.model.flow
        if flow.isWeightNormalized {
            if flow != .wnTimeDependent { pairs.append(("eta_g", .number(config.model.etaG))) }
            pairs.append(("eta_v", .number(config.model.etaV)))
        }
        return .object(pairs)
    }

    /// `blas` in `result.json`: `{"library", "kernel", "config"}` (`BLAS.provenance`). Other
    /// kernels round differently, so they may take other steps to the same limit (README
    /// "Reproducibility").
    static let blasProvenance: JSON = .object(BLAS.provenance.map { ($0.0, .string($0.1)) })

    /// A CSV cell: the JSON number, and `nan`, `inf`, `-inf` for non-finite values, which
    /// numpy, pandas and gnuplot read (JSON's `null`, written before stop 26, they do not).
    static func csvNumber(_ x: Double) -> String {
        x.isFinite ? JSON.format(x) : (x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf"))
    }

    /// `trajectory.csv`: `t, loss, g, v_norm, x_1…x_N` (g, v_norm empty for GF).
    public var trajectoryCSV: String {
        let n = x.count
        let f = SimulationResult.csvNumber
        var out = "t,loss,g,v_norm," + (1...max(n, 1)).prefix(n).map { "x_\($0)" }.joined(separator: ",") + "\n"
        for r in trajectory {
            var line = f(r.t) + "," + f(r.loss) + ","
            line += (r.g.map(f) ?? "") + "," + (r.vNorm.map(f) ?? "")
            for v in r.x { line += "," + f(v) }
            out += line + "\n"
        }
        return out
    }

    /// Writes `DIR/result.json` and `DIR/trajectory.csv`.
    public func write(to dir: String, config: SimulationConfig, extra: [(String, JSON)] = []) throws {
        try AtomicFile.write(json(config: config, extra: extra).serialized(), to: dir + "/result.json")
        try AtomicFile.write(trajectoryCSV, to: dir + "/trajectory.csv")
    }
}

extension SimulationConfig {
    /// The resolved problem and start as JSON (`problem.json`): `A` (rows),
    /// `y`, `ground_truth`, `depth`, `signed`, `x0`, so that other tools
    /// (e.g. the scipy comparison) integrate exactly the same problem.
    public var problemJSON: JSON {
        var pairs: [(String, JSON)] = [
            ("A", .array(problem.A.rowArrays.map { JSON.numbers($0) })),
            ("y", .numbers(problem.y)),
        ]
        if let z = problem.groundTruth { pairs.append(("ground_truth", .numbers(z))) }
        pairs.append(("depth", .number(Double(problem.depth))))
        pairs.append(("signed", .bool(problem.signed)))
        pairs.append(("x0", .numbers(x0)))
        return .object(pairs)
    }
}
