import ArgumentParser
import Foundation
import WNFlow

struct Simulate: ParsableCommand, WritesOutput {
    static let configuration = CommandConfiguration(
        abstract: "Integrate one flow; writes DIR/result.json and DIR/trajectory.csv.")

    @Argument(help: "The run's CONFIG.json.")
    var config: String

    @Option(name: .long, help: "Output folder.")
    var out: String

    @Flag(name: .long, help: "Print nothing on success.")
    var quiet = false

    @Flag(name: .long, help: "Also write DIR/problem.json (A, y, ground truth, x0) for use by other tools.")
    var writeProblem = false

    @Flag(name: .long, help: "Skip the lemma checks (result.json then has an empty monitor array).")
    var noMonitor = false

    func run() throws {
        let cfg = try SimulationConfig.load(path: config)
        let sim = Simulation(config: cfg)
        let result = noMonitor ? sim.run() : sim.runMonitored().result
        try writeRun(result, config: cfg, out: out)
        if writeProblem {
            do { try AtomicFile.write(cfg.problemJSON.serialized(), to: out + "/problem.json") } catch {
                throw ConfigError.cannotWrite(out, error)
            }
        }
        if !quiet {
            print(summary(result, config: cfg))
            // simulate exits 0 whatever the checks say (exit 1 is verify's); it says which failed.
            let failed = result.monitor.filter { !$0.passed && !$0.isMeasurement }.map(\.name)
            if !failed.isEmpty {
                print("checks    \(failed.count) of \(result.monitor.count) failed: \(failed.joined(separator: ", ")) (result.json \"monitor\"; wnflow verify exits 1 on them)")
            }
        }
        if result.status == .failed {
            throw CommandExit(code: ExitStatus.integrationFailed,
                              message: "error: integration failed: \(result.message ?? "unknown reason"); partial results in \(out)")
        }
    }
}

/// Writes a run's files, mapping I/O failures to exit 2.
func writeRun(_ result: SimulationResult, config: SimulationConfig, out: String, extra: [(String, JSON)] = []) throws {
    do {
        try result.write(to: out, config: config, extra: extra)
    } catch {
        throw ConfigError.cannotWrite(out, error)
    }
}

/// The one-screen summary of a run.
func summary(_ r: SimulationResult, config: SimulationConfig) -> String {
    var lines: [String] = []
    let p = config.problem
    lines.append("flow \(config.model.flow.rawValue)  depth \(config.model.depth)\(config.model.signed ? "  signed" : "")  M=\(p.m) N=\(p.n)  method \(r.method)")
    lines.append("status    \(r.status.rawValue)")
    lines.append("t         \(fmt(r.t))")
    lines.append("loss      \(fmt(r.loss))")
    if let g = r.g { lines.append("g         \(fmt(g))") }
    if let lr = r.logRho { lines.append("log rho   \(fmt(lr))") }
    lines.append("steps     \(r.stats.acceptedSteps) (\(r.stats.rejectedSteps) rejected)")
    lines.append("rhs evals \(r.stats.rhsEvaluations)   jacobians \(r.stats.jacobianEvaluations)")
    lines.append("time      \(fmt(r.wallSeconds)) s")
    if let truth = p.groundTruth {
        let err = zip(r.z, truth).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        lines.append("‖z − z*‖  \(fmt(err))")
    }
    if let m = r.message { lines.append("message   \(m)") }
    for w in r.warnings { lines.append("warning   \(w)") }
    return lines.joined(separator: "\n")
}

func fmt(_ x: Double) -> String { String(format: "%.6g", x) }
