import Foundation
import GSLKit
import Testing
@testable import WNFlow

/// A dual state away from the base point: `log g` moved, `μ` random.
private func dualState(_ system: any DualCoordinates, base: [Double], seed: UInt) -> [Double] {
    let rng = RNG(seed: seed)
    var s = base
    for i in 0..<s.count { s[i] += 0.3 * (rng.uniform() - 0.5) }
    return s
}

@Suite("Dual coordinates")
struct DualCoordinatesTests {
    @Test("Dual Jacobians agree with central differences (GF, WN constant and time-dependent, signed)")
    func jacobiansMatchFiniteDifferences() throws {
        for signed in [false, true] {
            let p = try Fixture.problem(m: 6, n: 12, depth: 2, signed: signed)
            let x = Fixture.positivePoint(p.weightCount, seed: 21)
            let cases: [(any Flow, [Double])] = [
                (GradientFlow(problem: p), x),
                (WeightNormFlow(problem: p, rate: .constant(0.07), etaV: 1.3), WeightNormFlow.initialState(x0: x, vNorm: 0.8)),
                (WeightNormFlow(problem: p, rate: .timeDependent, etaV: 0.9), WeightNormFlow.initialState(x0: x, vNorm: 1.7)),
            ]
            for (flow, y0) in cases {
                let system = try makeDualCoordinates(for: flow)
                let base = try system.setBase(y0)
                let s = dualState(system, base: base, seed: 5)
                let err = Fixture.maxRelativeDifference(try Fixture.jacobian(system, at: s),
                                                        try Fixture.finiteDifferenceJacobian(system, at: s))
                #expect(err <= 1e-6, "\(flow.kind) signed=\(signed): relative error \(err)")
            }
        }
    }
}

/// Runs `flow` from `x0` with `method` and returns the weights at the save times.
private func weightsAtSaves(_ p: Problem, flow: FlowKind, x0: [Double], etaG: Double = 0.05, method: Method,
                            rtol: Double, times: [Double]) -> (x: [[Double]], result: SimulationResult) {
    var cfg = Fixture.config(p, flow: flow, x0: x0, etaG: etaG, method: method, rtol: rtol,
                             atol: rtol < 1e-12 ? 1e-20 : 1e-16, tEnd: times.last!, lossBelow: 0)
    cfg.record.times = .list(times)
    let r = Simulation(config: cfg).run()
    let rows = r.trajectory.filter { row in times.contains(row.t) }
    return (rows.map(\.x), r)
}

/// Largest relative error of each entry, `|a − b|/|b|` (weights are positive).
private func worstRelative(_ a: [[Double]], _ b: [[Double]]) -> Double {
    zip(a, b).map { zip($0, $1).map { abs($0 - $1) / abs($1) }.max() ?? 0 }.max() ?? .infinity
}

extension DualCoordinatesTests {
    static let times = [0.5, 5, 50, 500]

    /// The dual coordinates integrate the same flow: weights at fixed times agree
    /// with a tight rk8pd run in weight space, entry by entry and relatively.
    @Test("dual reproduces the weight-space trajectory (GF, GF signed, WN, WN time-dependent)",
          arguments: [(FlowKind.gf, false), (.gf, true), (.wn, false), (.wnTimeDependent, false)])
    func agreesWithWeightSpace(flow: FlowKind, signed: Bool) throws {
        let p = try Fixture.problem(m: 8, n: 20, depth: 2, signed: signed, seed: 4)
        let x0 = Fixture.positivePoint(p.weightCount, seed: 9, scale: 0.2)
        let ref = weightsAtSaves(p, flow: flow, x0: x0, method: .gsl(.rk8pd), rtol: 1e-13, times: Self.times)
        let dual = weightsAtSaves(p, flow: flow, x0: x0, method: .dual, rtol: 1e-10, times: Self.times)
        #expect(dual.result.method == "dual" && dual.result.status == .tEnd)
        #expect(ref.x.count == Self.times.count && dual.x.count == Self.times.count)
        let err = worstRelative(dual.x, ref.x)
        #expect(err < 1e-7, "\(flow) signed=\(signed): worst relative error \(err)")
        if flow.isWeightNormalized {
            // Lemma 3.2 holds by construction: ‖v‖ = ‖v₀‖ to rounding.
            let v = dual.result.v!, v0 = WeightNormFlow.initialState(x0: x0).dropFirst()
            #expect(abs(norm2(v) - norm2(Array(v0))) <= 1e-14 * norm2(Array(v0)))
        }
    }

    /// The comparison above can fail: WN with another rate ratio (a broken
    /// θ' or μ') is far from the reference.
    @Test func wrongRateIsCaught() throws {
        let p = try Fixture.problem(m: 8, n: 20, depth: 2, seed: 4)
        let x0 = Fixture.positivePoint(p.weightCount, seed: 9, scale: 0.2)
        let ref = weightsAtSaves(p, flow: .wn, x0: x0, etaG: 0.05, method: .gsl(.rk8pd), rtol: 1e-13, times: Self.times)
        let off = weightsAtSaves(p, flow: .wn, x0: x0, etaG: 0.0505, method: .dual, rtol: 1e-10, times: Self.times)
        #expect(worstRelative(off.x, ref.x) > 1e-4)
    }

    /// The monitor passes on dual runs to convergence, and the limit is the predictor's.
    @Test(arguments: [FlowKind.gf, .wn]) func monitorPassesAndLimitMatches(flow: FlowKind) throws {
        let p = try Fixture.problem(m: 10, n: 25, depth: 2, seed: 7)
        let x0 = InitDirection.uniform.vector(25).map { 0.1 * $0 }
        let cfg = Fixture.config(p, flow: flow, x0: x0, method: .dual, lossBelow: 1e-22)
        let (result, _) = Simulation(config: cfg).runMonitored()
        #expect(result.status == .converged)
        for check in result.monitor where !check.isMeasurement {
            #expect(check.passed, "\(check.name): \(check.maxViolation) > \(check.tolerance)")
        }
        // Statements the coordinates make exact are marked; the others are not.
        let exact = Set(result.monitor.filter(\.byConstruction).map(\.name))
        #expect(exact == (flow == .gf ? ["lemma-3.3-sign", "lemma-3.7-invariant"] : ["lemma-3.2-norm", "lemma-3.3-sign"]))
        let bdf = Simulation(config: Fixture.config(p, flow: flow, x0: x0, method: flow == .gf ? .bdf : .gsl(.bsimp),
                                                    lossBelow: 1e-22)).run(recordTrajectory: false)
        #expect(Fixture.maxRelativeDifference(result.z, bdf.z) < 1e-6)
    }

    @Test func rejectsOtherDepthsAndDiscreteFlows() throws {
        for (flow, depth) in [("gf", 3), ("wn", 1), ("gd", 2)] {
            let text = """
            {"problem": {"generate": {"M": 4, "N": 8, "seed": 1}}, "model": {"flow": "\(flow)", "depth": \(depth)},
             "init": {"scale": 0.1}, "integrator": {"method": "dual"}}
            """
            #expect(throws: ConfigError.self) { try SimulationConfig.parse(text) }
        }
    }
}

extension DualCoordinatesTests {
    /// `DualSolver` also runs GSL's steppers in the dual coordinates, and returns
    /// the weight-space state.
    @Test func gslStepperInDualCoordinates() throws {
        let p = try Fixture.problem(m: 8, n: 20, depth: 2, seed: 4)
        let x0 = Fixture.positivePoint(p.weightCount, seed: 9, scale: 0.2)
        let flow = GradientFlow(problem: p)
        let run = try DualSolver(flow: flow, stepper: .msbdf, rtol: 1e-10, maxSteps: 100_000).integrate(from: 0, y0: x0, to: 50)
        let ref = try ODEIntegrator(system: flow, options: ODEOptions(stepper: .rk8pd, rtol: 1e-13, atol: 1e-20))
            .integrate(from: 0, y0: x0, to: 50)
        #expect(run.termination == .reachedEnd && run.y.count == p.weightCount)
        #expect(worstRelative([run.y], [ref.y]) < 1e-7)
    }

    /// A start the coordinates cannot represent fails the run with a reason
    /// instead of trapping (g₀ = 0: log g), keeping the initial state.
    @Test func zeroScaleFailsCleanly() throws {
        let p = try Fixture.problem(m: 8, n: 20, depth: 2, seed: 4)
        let flow = WeightNormFlow(problem: p, rate: .constant(0.05))
        let y0 = [0.0] + Fixture.positivePoint(p.weightCount, seed: 9)
        let run = try DualSolver(flow: flow, rtol: 1e-10, maxSteps: 100).integrate(from: 0, y0: y0, to: 1)
        #expect(run.termination == .failed && run.y == y0)
        #expect("\(run.failure!)".contains("g₀ ≠ 0"))
    }
}
