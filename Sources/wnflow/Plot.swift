import ArgumentParser
import Foundation
import WNFlow

/// `wnflow plot DIR`: the trajectory of a simulate/verify run on log time.
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Plot a simulate/verify run (loss, x_n(t), g(t), log ρ(t) on log time) to DIR/trajectory.png and .svg.",
        discussion: "Reads DIR/result.json and DIR/trajectory.csv. log ρ(t) = log(g₀/g) + c(g² − g₀²), c = η_v/(2η_g‖v₀‖²), from the run's eta_g/eta_v (written by simulate/verify) or --eta-g/--eta-v. At most 200 weight curves, the largest at the end.")

    @Argument(help: "The folder of a simulate or verify run.")
    var dir: String

    @Option(name: .long, parsing: .unconditional, help: "η_g, for a result.json that does not record it (a different value than the recorded one is refused).")
    var etaG: Double?

    @Option(name: .long, parsing: .unconditional, help: "η_v, for a result.json that does not record it (default 1; a different value than the recorded one is refused).")
    var etaV: Double?

    func run() throws {
        for (name, value) in [("--eta-g", etaG), ("--eta-v", etaV)] {
            if let value, !(value > 0 && value.isFinite) { throw ConfigError(name, "must be a positive finite number, got \(value)") }
        }
        let resultPath = dir + "/result.json", trajPath = dir + "/trajectory.csv"
        guard let rdata = FileManager.default.contents(atPath: resultPath) else {
            throw ConfigError("dir", "'\(resultPath)' not found; give the --out folder of wnflow simulate or verify")
        }
        guard let tdata = FileManager.default.contents(atPath: trajPath) else {
            throw ConfigError("dir", "'\(trajPath)' not found; give the --out folder of wnflow simulate or verify")
        }
        let result: JSON
        do { result = try JSON.parse(String(decoding: rdata, as: UTF8.self)) } catch {
            throw ConfigError("result.json", "\(error)")
        }
        guard case .object = result else {
            throw ConfigError("result.json", "is not a JSON object; give the --out folder of wnflow simulate or verify")
        }
        // η_g and η_v as recorded: positive numbers, or the log ρ(t) drawn from them is garbage
        // (eta_g -1, "abc" or [1] were accepted silently).
        var recorded: [String: Double] = [:]
        for key in ["eta_g", "eta_v"] {
            guard let v = result[key] else { continue }
            guard case let .number(e) = v, e > 0, e.isFinite else {
                throw ConfigError("result.json.\(key)", "expected a positive number, got \(v); rerun wnflow simulate")
            }
            recorded[key] = e
        }
        let traj = try TrajectoryTable.parse(String(decoding: tdata, as: UTF8.self))
        guard !traj.plottableRows.isEmpty else {
            let end = traj.t.last.map { JSON.format($0) } ?? "?"
            throw ConfigError("dir", "'\(trajPath)' has no row with t > 0 and a finite loss to plot on log time (the run ended at t = \(end)); nothing written")
        }
        var info = TrajectoryPlot.Info(flow: "gf", depth: 2)
        if case let .string(f)? = result["flow"] { info.flow = f }
        if case let .number(d)? = result["depth"] {
            guard d >= 1, d <= 1e9, d == d.rounded() else {
                throw ConfigError("result.json.depth", "expected a whole number ≥ 1, got \(JSON.format(d)); rerun wnflow simulate")
            }
            info.depth = Int(d)
        }
        if case let .bool(s)? = result["signed"] { info.signed = s }
        info.etaG = recorded["eta_g"]
        if let e = recorded["eta_v"] { info.etaV = e }
        // The flags fill in what an older result.json lacks; they never override what the run
        // recorded (a different --eta-g drew log ρ(t) for another flow, off by 8.25, silently).
        for (name, given, recorded) in [("--eta-g", etaG, recorded["eta_g"]), ("--eta-v", etaV, recorded["eta_v"])] {
            if let given, let recorded, given != recorded {
                throw ConfigError(name, "is \(JSON.format(given)) but result.json records \(JSON.format(recorded)) for this run; drop the flag (it is only for folders that do not record it)")
            }
        }
        if !info.flow.hasPrefix("wn") {
            for (name, given) in [("--eta-g", etaG), ("--eta-v", etaV)] where given != nil {
                throw ConfigError(name, "is for weight-normalized runs (log ρ(t)); this run's flow is \(info.flow); drop the flag")
            }
        }
        if let etaG { info.etaG = etaG }
        if let etaV { info.etaV = etaV }
        if case let .string(s)? = result["status"] { info.status = s }
        let script = TrajectoryPlot.script(table: traj, info: info, base: URL(fileURLWithPath: dir).standardizedFileURL.path + "/trajectory")
        do {
            try Gnuplot.run(script: script, scriptPath: dir + "/trajectory.gp")
        } catch {
            // No half-written images next to a failure.
            for ext in ["png", "svg"] { try? FileManager.default.removeItem(atPath: dir + "/trajectory." + ext) }
            throw error
        }
        print("wrote \(dir)/trajectory.png and \(dir)/trajectory.svg")
    }
}
