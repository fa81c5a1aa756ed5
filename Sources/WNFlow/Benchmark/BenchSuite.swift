import Foundation
import GSLKit

/// One benchmark case: a config, run with the given method.
public struct BenchCase: Sendable {
    public var name: String
    public var config: String
    public var long: Bool
    public init(name: String, config: String, long: Bool = false) {
        self.name = name
        self.config = config
        self.long = long
    }
}

/// A measured case (`wnflow bench` JSON row).
public struct BenchRow: Sendable {
    public var name: String
    public var method: String
    public var status: String
    public var n: Int
    public var m: Int
    public var steps: Int
    public var rhsEvals: Int
    public var jacobianEvals: Int
    public var wallSeconds: Double
    /// Wall time of one RHS evaluation, measured separately.
    public var secondsPerRHS: Double
    /// `wall / (RHS evals × time of one RHS)`: how much the integrator costs
    /// beyond its RHS evaluations (Jacobians, factorizations, bookkeeping).
    public var overheadRatio: Double
    public var extra: [(String, JSON)] = []

    public var json: JSON {
        .object([
            ("name", .string(name)), ("method", .string(method)), ("status", .string(status)),
            ("N", .number(Double(n))), ("M", .number(Double(m))),
            ("steps", .number(Double(steps))), ("rhs_evals", .number(Double(rhsEvals))),
            ("jacobian_evals", .number(Double(jacobianEvals))), ("wall_seconds", .number(wallSeconds)),
            ("seconds_per_rhs", .number(secondsPerRHS)), ("overhead_ratio", .number(overheadRatio)),
        ] + extra)
    }
}

/// The benchmark suite of `wnflow bench` (speed is measured here, never
/// asserted in unit tests). The configs of the stiff cases are the files in
/// `Benchmarks/configs/`, which `Benchmarks/compare_scipy.py` runs with scipy.
public enum BenchSuite {
    static func flowConfig(_ gen: String, _ model: String, _ initBlock: String, method: String = "auto",
                           stop: String = "") -> String {
        """
        {"problem": {"generate": \(gen)}, "model": \(model), "init": \(initBlock),
         "integrator": {"method": "\(method)"\(stop)}, "record": {"points": 0}}
        """
    }

    static let small = #"{"M": 20, "N": 50, "sparsity": 4, "seed": 3}"#
    static let medium = #"{"M": 40, "N": 100, "sparsity": 5, "seed": 1}"#
    static let uniform1e3 = #"{"scale": 1e-3, "direction": "uniform"}"#
    static let uniform01 = #"{"scale": 0.1, "direction": "uniform"}"#

    /// The stiff cases (issue: depth-2 GF from α = 1e-3 and 0.1, WN with
    /// η = 0.05 and 0.01, depth 3 GF and WN).
    public static let stiffCases: [BenchCase] = [
        BenchCase(name: "gf2-alpha1e-3", config: flowConfig(small, #"{"flow": "gf", "depth": 2}"#, uniform1e3)),
        BenchCase(name: "gf2-alpha0.1", config: flowConfig(medium, #"{"flow": "gf", "depth": 2}"#, uniform01)),
        BenchCase(name: "wn2-eta0.05", config: flowConfig(medium, #"{"flow": "wn", "depth": 2, "eta_g": 0.05}"#, uniform01)),
        BenchCase(name: "wn2-eta0.01", config: flowConfig(medium, #"{"flow": "wn", "depth": 2, "eta_g": 0.01}"#, uniform01)),
        BenchCase(name: "gf3", config: flowConfig(medium, #"{"flow": "gf", "depth": 3}"#, uniform01)),
        BenchCase(name: "wn3", config: flowConfig(medium, #"{"flow": "wn", "depth": 3, "eta_g": 0.2}"#, #"{"scale": 0.3, "direction": "uniform"}"#)),
    ]

    /// Large cases: depth-2 GF from α = 0.1 to loss 1e-20, and WN (η = 0.05)
    /// at N = 2000.
    public static let largeCases: [BenchCase] = [
        BenchCase(name: "large-wn-2000x500", config: flowConfig(#"{"M": 500, "N": 2000, "sparsity": 20, "seed": 1}"#,
                  #"{"flow": "wn", "depth": 2, "eta_g": 0.05}"#, uniform01, stop: #", "stop": {"loss_below": 1e-20}"#), long: true),
        BenchCase(name: "large-2000x500", config: flowConfig(#"{"M": 500, "N": 2000, "sparsity": 20, "seed": 1}"#,
                  #"{"flow": "gf", "depth": 2}"#, uniform01, stop: #", "stop": {"loss_below": 1e-20}"#), long: true),
        BenchCase(name: "large-10000x2000", config: flowConfig(#"{"M": 2000, "N": 10000, "sparsity": 50, "seed": 1}"#,
                  #"{"flow": "gf", "depth": 2}"#, uniform01, stop: #", "stop": {"loss_below": 1e-20}"#), long: true),
    ]

    /// Wall time of one RHS evaluation of `flow` at `state` (best of `batches`
    /// batches).
    public static func secondsPerRHS(_ flow: any Flow, state: [Double], batches: Int = 5) -> Double {
        var out = [Double](repeating: 0, count: flow.dimension)
        let reps = max(20, min(2000, 2_000_000 / max(flow.problem.m * flow.problem.weightCount, 1)))
        var samples: [Double] = []
        state.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { o in
                for _ in 0..<max(batches, 1) {
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    for _ in 0..<reps { try? flow.rhs(t: 0, y: s, dydt: o) }
                    samples.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(reps))
                }
            }
        }
        return samples.min() ?? .nan
    }

    /// Runs one config (optionally overriding the method) and measures it:
    /// the best wall time of at least `repeats` runs, and of more (up to 30) while
    /// they have taken less than 0.3 s in all, so that a case of a few milliseconds
    /// is not read off three samples of a shared machine (repeating stops once the
    /// runs have taken 2 s; the runs are deterministic, so the counts agree).
    public static func run(name: String, config text: String, method: Method? = nil, monitored: Bool = false,
                           tEnd: Double? = nil, repeats: Int = 3) throws -> BenchRow {
        try runInterleaved(names: [name], config: text, method: method, monitored: [monitored], tEnd: tEnd,
                           repeats: repeats)[0]
    }

    /// Like `run`, for variants of one config that differ only in whether the monitor runs
    /// (`monitored[k]` for `names[k]`): their runs alternate, so that a slow phase of a
    /// shared machine falls on every variant alike. (Measured one after the other, the
    /// monitor's overhead read +200% in one bench run and +53% in the next: this VM has
    /// phases of seconds in which the same run takes 25 or 40 ms.) Each variant's time is
    /// its best run; the repeat rule counts rounds, on the time all variants have taken.
    public static func runInterleaved(names: [String], config text: String, method: Method? = nil,
                                      monitored: [Bool], tEnd: Double? = nil, repeats: Int = 3) throws -> [BenchRow] {
        precondition(names.count == monitored.count && !names.isEmpty, "one name per variant")
        var cfg = try SimulationConfig.parse(text)
        if let method { cfg.integrator.method = method }
        if let tEnd { cfg.integrator.tEnd = tEnd }
        let sim = Simulation(config: cfg)
        // The time of one RHS: the best of samples taken before and after the runs, as the
        // wall time is the best of the runs (a median of one side against the best of the
        // other read rk8pd's overhead anywhere from 0.78 to 1.42 on this machine).
        // Since stop 19 one RHS sample follows every run (interleaved, as the ensemble and
        // predict rows are): with samples only before and after, a slow phase over both put
        // rkf45's ratio at 0.85 in one bench run.
        var tRHS = secondsPerRHS(sim.flow, state: sim.initialState)
        var best: [SimulationResult?] = Array(repeating: nil, count: names.count)
        var spent = 0.0
        var rounds = 0
        while rounds < 1 || ((rounds < repeats || (spent < 0.3 * Double(names.count) && rounds < 30))
                             && spent < 2 * Double(names.count)) {
            for k in names.indices {
                let r = monitored[k] ? sim.runMonitored().result : sim.run()
                spent += r.wallSeconds
                if r.wallSeconds < (best[k]?.wallSeconds ?? .infinity) { best[k] = r }
                tRHS = min(tRHS, secondsPerRHS(sim.flow, state: sim.initialState, batches: 1))
            }
            rounds += 1
        }
        return names.indices.compactMap { k -> BenchRow? in
            guard let r = best[k] else { return nil }  // every variant ran at least once
            var row = BenchRow(name: names[k], method: r.method, status: r.status.rawValue, n: cfg.problem.n, m: cfg.problem.m,
                               steps: r.stats.acceptedSteps, rhsEvals: r.stats.rhsEvaluations,
                               jacobianEvals: r.stats.jacobianEvaluations, wallSeconds: r.wallSeconds, secondsPerRHS: tRHS,
                               overheadRatio: r.wallSeconds / (Double(max(r.stats.rhsEvaluations, 1)) * tRHS))
            row.extra = [("runs", .number(Double(rounds)))]
            return row
        }
    }

    /// Ensemble throughput: `count` WN runs (new problem per run) on `jobs`
    /// workers; returns runs per second.
    public static func ensemble(count: Int, jobs: Int) throws -> (wall: Double, runsPerSecond: Double) {
        let configs = try (0..<count).map { i in
            try SimulationConfig.parse(flowConfig(#"{"M": 20, "N": 50, "sparsity": 4, "seed": \#(i + 1)}"#,
                                                  #"{"flow": "wn", "depth": 2, "eta_g": 0.1}"#, uniform01))
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        _ = ParallelRunner.map(count: count, jobs: jobs) { i in Simulation(config: configs[i]).run(recordTrajectory: false).status }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return (wall, Double(count) / wall)
    }

    /// `predict` against `simulate` on the same problem: the full report
    /// (limit, three LPs, bounds) and the limit alone (`predict --limit-only`:
    /// dual Newton; for WN the root search of `g = ‖X(x₀/ρ(g))‖` included), each
    /// the best of `repeats`, as are the simulations: `simulate` is the integration alone
    /// (`simulate --no-monitor`), `monitored` the run as `wnflow simulate` does it by
    /// default (the lemma checks set up and watching every step). The same number of tries
    /// on both sides, interleaved (a sub-millisecond prediction on a shared machine needs
    /// more than 3). `difference` is ‖z_sim − z_pred‖/‖z_pred‖ for the limit-only prediction.
    public static func predictVersusSimulate(config text: String, repeats: Int = 10) throws
        -> (predict: Double, limitOnly: Double, simulate: Double, monitored: Double, difference: Double) {
        let cfg = try SimulationConfig.parse(text)
        let simulation = Simulation(config: cfg)
        var sim: SimulationResult? = nil
        var full = Double.infinity, limit = Double.infinity, monitored = Double.infinity
        var z: [Double] = []
        // Interleaved (the simulations, then both predictions, per try), so that slow phases of a
        // shared machine, which last from 0.1 s to seconds here, fall on both sides alike.
        for _ in 0..<max(repeats, 1) {
            let again = simulation.run(recordTrajectory: false)
            if again.wallSeconds < (sim?.wallSeconds ?? .infinity) { sim = again }
            var t0 = DispatchTime.now().uptimeNanoseconds
            _ = simulation.runMonitored(recordTrajectory: false)
            monitored = min(monitored, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            t0 = DispatchTime.now().uptimeNanoseconds
            _ = try Prediction(config: cfg)
            full = min(full, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            t0 = DispatchTime.now().uptimeNanoseconds
            z = try Prediction(config: cfg, limitOnly: true).z
            limit = min(limit, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        guard let sim else { return (full, limit, .nan, monitored, .nan) }
        let d = zip(sim.z, z).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot() / norm2(z)
        return (full, limit, sim.wallSeconds, monitored, d)
    }
}
