import Foundation
import GSLKit

/// Writes files atomically: to a temporary name in the same folder, then
/// renamed, so a reader never sees half a file.
public enum AtomicFile {
    /// Writes `text` to `path` through a temporary file renamed into place. A symlink is
    /// followed (its target is replaced, not the link); a path that exists and is not a
    /// regular file (a FIFO, `/dev/stdout`, a device) is written in place: the rename had
    /// turned `/dev/full` into a regular file.
    public static func write(_ text: String, to path: String) throws {
        var url = URL(fileURLWithPath: path).resolvingSymlinksInPath()
        var st = stat()
        if lstat(url.path, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG {
            guard (st.st_mode & S_IFMT) != S_IFDIR else {
                throw ConfigError("--out", "cannot write '\(path)': it is a folder")
            }
            guard let handle = FileHandle(forWritingAtPath: url.path) else {
                throw ConfigError("--out", "cannot write '\(path)': \(String(cString: strerror(errno)))")
            }
            defer { try? handle.close() }
            do { try handle.write(contentsOf: Data(text.utf8)) } catch {
                throw ConfigError("--out", "cannot write '\(path)': \(ConfigError.fileReason(error))")
            }
            return
        }
        url = url.standardizedFileURL
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
