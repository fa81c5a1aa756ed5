import Foundation
import GSLKit
import Testing
@testable import WNFlow

/// A dual state away from the base point: `log g` moved, `μ` random.
private func dualState(base: [Double], seed: UInt) -> [Double] {
    let rng = RNG(seed: seed)
    var s = base
    for i in 0..<s.count { s[i] += 0.3 * (rng.uniform() - 0.5) }
    return s
}

/// The worst of `max|a − b| / max|b|` over the blocks of a `[θ, μ]` split at
/// `split` (WN: the θ row and column are 1e-4 of the μμ block, so a single
/// scale would hide errors there).
private func blockwiseError(_ a: Matrix, _ b: Matrix, split: Int) -> Double {
    let d = a.rows
    let ranges = split > 0 ? [0..<split, split..<d] : [0..<d]
    var worst = 0.0
    for r in ranges {
        for c in ranges {
            var num = 0.0, den = 0.0
            for i in r { for j in c { num = max(num, abs(a[i, j] - b[i, j])); den = max(den, abs(b[i, j])) } }
            if den > 0 { worst = max(worst, num / den) }
        }
    }
    return worst
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
                let s = dualState(base: base, seed: 5)
                let err = blockwiseError(try Fixture.jacobian(system, at: s), try Fixture.finiteDifferenceJacobian(system, at: s),
                                         split: flow is WeightNormFlow ? 1 : 0)
                #expect(err <= 1e-6, "\(flow.kind) signed=\(signed): relative error \(err)")
            }
        }
    }
}

/// `max|Im λ| / max|λ|` over the eigenvalues of `j` (0 for a real spectrum, up to rounding).
private func imaginaryShare(_ j: Matrix) throws -> Double {
    let ev = try eigenvalues(j)
    let top = ev.map { ($0.re * $0.re + $0.im * $0.im).squareRoot() }.max() ?? 0
    return top > 0 ? (ev.map { abs($0.im) }.max() ?? 0) / top : 0
}

@Suite("Real spectra of the flows' Jacobians (BDF up to order 6)")
struct RealSpectrumTests {
    /// The flows that declare `jacobianSpectrumIsReal` (so `BDFSolver` runs up to BDF6,
    /// stable on the negative real axis only) have real eigenvalues at random states, in
    /// both coordinate systems; Thm 2.4's rate in weight space, which does not declare it, has
    /// complex ones (so the check can fail).
    @Test func realSpectrumOfTheFlowJacobians() throws {
        var worstUndeclared = 0.0
        for signed in [false, true] {
            let p = try Fixture.problem(m: 6, n: 12, depth: 2, signed: signed)
            let p3 = try Fixture.problem(m: 6, n: 12, depth: 3, signed: signed)
            for seed in [21, 22, 23] as [UInt] {
                let x = Fixture.positivePoint(p.weightCount, seed: seed)
                let flows: [(any Flow, [Double])] = [
                    (GradientFlow(problem: p), x),
                    (GradientFlow(problem: p3), x),
                    (WeightNormFlow(problem: p, rate: .constant(0.07), etaV: 1.3), WeightNormFlow.initialState(x0: x, vNorm: 0.8)),
                    (WeightNormFlow(problem: p3, rate: .constant(2), etaV: 0.5), WeightNormFlow.initialState(x0: x, vNorm: 1.1)),
                    (WeightNormFlow(problem: p, rate: .timeDependent, etaV: 0.9), WeightNormFlow.initialState(x0: x, vNorm: 1.7)),
                ]
                for (flow, y0) in flows {
                    let y = dualState(base: y0, seed: seed + 10)
                    let share = try imaginaryShare(try Fixture.jacobian(flow, at: y))
                    if flow.jacobianSpectrumIsReal {
                        #expect(share <= 1e-10, "\(flow.kind) depth \(flow.problem.depth) signed=\(signed): |Im λ|/|λ| = \(share)")
                    } else {
                        worstUndeclared = max(worstUndeclared, share)
                    }
                    if flow.problem.depth != 2 { continue }
                    let system = try makeDualCoordinates(for: flow)
                    #expect(system.jacobianSpectrumIsReal)
                    let s = dualState(base: try system.setBase(y0), seed: seed)
                    let dualShare = try imaginaryShare(try Fixture.jacobian(system, at: s))
                    #expect(dualShare <= 1e-10, "dual \(flow.kind) signed=\(signed): |Im λ|/|λ| = \(dualShare)")
                }
            }
        }
        // The check sees complex eigenvalues where there are some (0.009–0.05 at these states).
        #expect(worstUndeclared > 1e-3, "Thm 2.4's rate in weight space: |Im λ|/|λ| = \(worstUndeclared)")
        #expect(!WeightNormFlow(problem: try Fixture.problem(m: 6, n: 12), rate: .timeDependent, etaV: 1).jacobianSpectrumIsReal)
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

/// The small problem and start most dual tests share (M = 8, N = 20).
private func smallCase(signed: Bool = false) throws -> (p: Problem, x0: [Double]) {
    let p = try Fixture.problem(m: 8, n: 20, depth: 2, signed: signed, seed: 4)
    return (p, Fixture.positivePoint(p.weightCount, seed: 9, scale: 0.2))
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
        let (p, x0) = try smallCase(signed: signed)
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
        let (p, x0) = try smallCase()
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

    @Test func rejectsOtherDepthsDiscreteFlowsAndZeroScale() throws {
        let cases = [(#""flow": "gf", "depth": 1"#, ""), (#""flow": "wn", "depth": 3"#, ""), (#""flow": "wn", "depth": 1"#, ""),
                     (#""flow": "gd", "depth": 2, "step": 0.01"#, ""), (#""flow": "wn", "depth": 2"#, #", "g0": 0"#)]
        for (model, initExtra) in cases {
            let text = """
            {"problem": {"generate": {"M": 4, "N": 8, "seed": 1}}, "model": {\(model)},
             "init": {"scale": 0.1\(initExtra)}, "integrator": {"method": "dual"}}
            """
            #expect { try SimulationConfig.parse(text) } throws: { error in
                "\(error)".contains("config.integrator.method")
            }
        }
    }
}

extension DualCoordinatesTests {
    /// `DualSolver` also runs GSL's steppers in the dual coordinates, and returns
    /// the weight-space state.
    @Test func gslStepperInDualCoordinates() throws {
        let (p, x0) = try smallCase()
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

extension DualCoordinatesTests {
    /// y outside the cone A·R₊ᴺ: the residual stays, λ grows linearly, and the
    /// run hands over to weight space; it then ends where `bdf` ends, as one run.
    @Test func nonVanishingResidualHandsOverToWeightSpace() throws {
        let rng = RNG(seed: 3)
        var a = Matrix(rows: 8, cols: 20)
        for i in 0..<a.storage.count { a.storage[i] = abs(rng.gaussian()) }
        let y = (0..<8).map { i in i % 2 == 0 ? 1.0 : -0.5 }
        let p = try Problem(A: a, y: y, depth: 2)
        let x0 = [Double](repeating: 0.3, count: 20)
        let (dual, _) = Simulation(config: Fixture.config(p, flow: .gf, x0: x0, method: .dual, tEnd: 1e6, lossBelow: 0))
            .runMonitored()
        let (bdf, _) = Simulation(config: Fixture.config(p, flow: .gf, x0: x0, method: .bdf, tEnd: 1e6, lossBelow: 0))
            .runMonitored()
        #expect(dual.dualHandover != nil && dual.method == "dual+bdf" && dual.status == .tEnd)
        #expect(dual.warnings.contains { $0.contains("continued in weight space") })
        #expect(abs(dual.loss - bdf.loss) <= 1e-8 * bdf.loss)
        #expect(dual.monitor.allSatisfy { !$0.byConstruction })
        // Same verdicts as the weight-space run (here the weights reach the
        // rounding floor around 0, where log x and Lemmas 3.7/3.18 break down
        // for both).
        #expect(dual.monitor.map { "\($0.name) \($0.passed)" } == bdf.monitor.map { "\($0.name) \($0.passed)" })
        // Without a fallback the run stops there, failed, with its last state.
        let bare = try DualSolver(flow: GradientFlow(problem: p), rtol: 1e-10, maxSteps: 100_000)
        let stopped = bare.integrate(from: 0, y0: x0, to: 1e6)
        #expect(stopped.termination == .failed && bare.handoverTime == stopped.t && stopped.y.allSatisfy { $0.isFinite })
        // One run for the recorder: times increase, the start is recorded once.
        let ts = dual.trajectory.map(\.t)
        #expect(zip(ts, ts.dropFirst()).allSatisfy { $0 < $1 } && ts.first == 0)
        // WN (normalized weights cannot overflow) re-centers each time ‖μ‖∞ passes half its
        // bound (1.1e5 at rtol 1e-10) and stays dual: to t = 1e6 it ends where bsimp in
        // weight space ends. Its monitor passes every check (it reads log v from the dual
        // state); bsimp's fails Lemmas 3.8/3.9 because entries of v near 1e-150 cross zero
        // in weight space, where log v is undefined.
        let (wnDual, _) = Simulation(config: Fixture.config(p, flow: .wn, x0: x0, method: .dual, tEnd: 1e6, lossBelow: 0))
            .runMonitored()
        let (wnRef, _) = Simulation(config: Fixture.config(p, flow: .wn, x0: x0, method: .gsl(.bsimp), tEnd: 1e6,
                                                           lossBelow: 0)).runMonitored()
        #expect(wnDual.dualHandover == nil && wnDual.method == "dual" && wnDual.status == .tEnd)
        #expect(abs(wnDual.loss - wnRef.loss) <= 1e-8 * wnRef.loss)
        let dualFailed = wnDual.monitor.filter { !$0.passed }.map(\.name)
        let refFailed = wnRef.monitor.filter { !$0.passed }.map(\.name)
        #expect(dualFailed.isEmpty, "\(dualFailed)")
        #expect(refFailed == ["lemma-3.8-invariant", "lemma-3.9-effective-init"])
        #expect(wnRef.x.contains { $0 < 0 })
        // After `maxRecenterings` it hands over (λ grows linearly here: 1000 by t = 8.0e6 at atol 1e-18).
        let wnFlow = WeightNormFlow(problem: p, rate: .constant(0.05))
        let few = try DualSolver(flow: wnFlow, rtol: 1e-10, maxSteps: 100_000)
        few.maxRecenterings = 3
        let y0 = WeightNormFlow.initialState(x0: x0, vNorm: 1, g0: nil, v0: nil)
        let left = few.integrate(from: 0, y0: y0, to: 1e12)
        #expect(few.recenterTimes.count == 3 && few.handoverTime == left.t && left.termination == .failed)
    }

    /// WN from a large x₀ on a problem without the kernel assumption (M = 10, N = 25): a
    /// weight decays far below double range and grows back.
    /// - x₀ = (3d)^{1/2}, η_g = 0.05: handed over at ‖μ‖∞ = 1e4 (an earlier bound) the weight
    ///   had underflowed to 0 in weight space and the run stalled at loss 2.9e-4.
    /// - x₀ = (30d)^{1/2}, η_g = 0.01: ‖μ‖∞ travels about 6e5 in all, beyond any bound that
    ///   keeps μ's rounding within rtol (1.1e5); handed over there it stalled at loss 1.2e-2
    ///   (bsimp, msbdf and rk8pd from the start stall at 2.9e-4).
    /// Re-centered, both stay dual and end, as the flow does, close to the predicted limit
    /// (algebraically: the kernel assumption fails).
    @Test(arguments: zip([3.0, 30.0], [0.05, 0.01]))
    func wnWeightThatGrowsBackStaysDual(scale: Double, etaG: Double) throws {
        let p = try Fixture.problem(m: 10, n: 25, seed: 2, sparsity: 2)
        let x0 = InitDirection.uniform.vector(25).map { (scale * $0).squareRoot() }
        let r = Simulation(config: Fixture.config(p, flow: .wn, x0: x0, etaG: etaG)).run(recordTrajectory: false)
        #expect(r.method == "dual" && r.dualHandover == nil)
        #expect(r.loss <= 1e-20, "loss \(r.loss)")
        let wn = try WeightNormLimit.constantRate(A: p.A, y: p.y, depth: 2, x0: x0, etaG: etaG, etaV: 1)
        #expect(Fixture.maxRelativeDifference(r.z, wn.z) <= 1e-8)
        // The run needs ‖μ‖∞ beyond 1e4: with that bound, no re-centering and no fallback it
        // stops there; re-centered it goes on to the same limit.
        let flow = WeightNormFlow(problem: p, rate: .constant(etaG))
        let bounded = try DualSolver(flow: flow, rtol: 1e-10, maxSteps: 200_000)
        #expect(bounded.maxDeparture == DualSolver.weightNormDeparture(rtol: 1e-10) && bounded.maxDeparture > 1e5)
        bounded.maxDeparture = 1e4
        bounded.maxRecenterings = 0
        let y0 = WeightNormFlow.initialState(x0: x0, vNorm: 1, g0: nil, v0: nil)
        let stopped = bounded.integrate(from: 0, y0: y0, to: 1e12)
        #expect(stopped.termination == .failed && bounded.handoverTime != nil)
        bounded.maxRecenterings = 1000
        let followed = bounded.integrate(from: 0, y0: y0, to: 1e12)
        #expect(followed.termination == .reachedEnd && bounded.handoverTime == nil && !bounded.recenterTimes.isEmpty)
        let z = p.endToEnd(flow.weights(of: followed.y))
        #expect(Fixture.maxRelativeDifference(z, wn.z) <= 1e-8)
    }

    /// GF's hand-over bound is about the weights (a move by e^300), which ‖μ‖∞ only bounds
    /// from above: from x₀ = 3.9 (M = 30, N = 60) ‖μ‖∞ passed 300 while no weight had moved
    /// by more than e^94, and the run handed over to `bdf` with a warning that the residual
    /// does not vanish, although it converged. The exact check keeps it dual.
    @Test func gfHandsOverOnWeightsNotOnMu() throws {
        let p = try Fixture.problem(m: 30, n: 60, seed: 3, sparsity: 15)
        let x0 = [Double](repeating: 30 / 60.0.squareRoot(), count: 60)
        let r = Simulation(config: Fixture.config(p, flow: .gf, x0: x0)).run(recordTrajectory: false)
        #expect(r.method == "dual" && r.dualHandover == nil && r.status == .converged && r.warnings.isEmpty)
        let moved = zip(r.x, x0).map { abs(log($0 / $1)) }.max()!
        #expect(moved < 300)
        // Without a fallback a hand-over is a failure: the run must reach its end.
        let dual = try DualSolver(flow: GradientFlow(problem: p), rtol: 1e-10, maxSteps: 100_000)
        let run = dual.integrate(from: 0, y0: x0, to: 1e6)
        #expect(run.termination == .reachedEnd && dual.handoverTime == nil)
    }

    /// WN from x₀ = (1e4 d)^{1/2} on M = 24, N = 60 (seed 2), η_g = 0.01.
    private static func farMovingConfig() throws -> SimulationConfig {
        let p = try Fixture.problem(m: 24, n: 60, seed: 2, sparsity: 4)
        let x0 = InitDirection.uniform.vector(60).map { (1e4 * $0).squareRoot() }
        return Fixture.config(p, flow: .wn, x0: x0, etaG: 0.01)
    }

    /// WN from x₀ = (1e4 d)^{1/2} (M = 24, N = 60, η_g = 0.01) moves its weights further than
    /// 1000 re-centerings follow (by t = 0.55): it hands over, and the warning says that this,
    /// not only a residual that does not vanish, can be why, and which setting to raise
    /// (docs/math.md §6a).
    @Test func handOverAfterRecenteringsSaysWhy() throws {
        var cfg = try Self.farMovingConfig()
        cfg.integrator.tEnd = 10
        let r = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(r.dualHandover != nil)
        #expect(r.warnings.contains { $0.contains("after 1000 re-centerings") && $0.contains("moved further than the re-centerings follow")
            && $0.contains("raise integrator.max_recenterings") },
                "\(r.warnings)")
    }

    /// With `integrator.max_recenterings` raised, the same run stays dual (about 69,000
    /// re-centerings, each step kept within 1.1× the bound by `BDFSolver.stateReach`) and
    /// reaches the zero-loss limit that the hand-over misses (loss 6.7e-3 there), and
    /// stops there (it re-centers near the limit: `DualSolver.precisionDeparture`).
    /// The reference g∞ = 4.2202286 is `predict`'s, which since its continuation in log ρ
    /// (docs/math.md §4) agrees with this run to 2.5e-10 at |log ρ| ≈ 3.9e6. The monitor's
    /// Lemmas 3.8/3.9 hold along the run: they read log v from the dual state
    /// (`AcceptedStep.logY`), where entries that decayed by e^{-1e5} are 0 in weight space.
    @Test func farMovingWeightsReachTheLimitWithMoreRecenterings() throws {
        var cfg = try Self.farMovingConfig()
        cfg.integrator.maxRecenterings = 200_000
        let (r, _) = Simulation(config: cfg).runMonitored(recordTrajectory: false)
        #expect(r.method == "dual" && r.dualHandover == nil && r.warnings.isEmpty, "\(r.warnings)")
        #expect(r.status == .converged, "loss \(r.loss)")
        #expect(abs(r.g! - 4.2202286) <= 1e-6, "g = \(r.g!)")
        #expect(r.monitor.contains { $0.name == "lemma-3.8-invariant" })
        for check in r.monitor where !check.isMeasurement {
            #expect(check.passed, "\(check.name): \(check.maxViolation) > \(check.tolerance)")
        }
    }

    /// WN from x₀ = (10 d)^{1/2} (M = 24, N = 60, seed 2, η_g = 0.01): log ρ ≈ −3e3, and 36
    /// of the 60 weights end far below double range (0 in weight space). Its residual
    /// reaches the default stop only because the coordinates re-center near the limit
    /// (`DualSolver.precisionDeparture`): without that, μ stays up to 5.6e4, the weights
    /// carry a rounding of 2ε‖μ‖∞, and the loss they give sits at 1e-24…1e-23 from
    /// t ≈ 1e7 to t_end = 1e12 (measured: 2,062 steps, 1,187 rejected; with it 1,372
    /// steps to the stop).
    @Test func nearLimitRecenteringReachesTheStop() throws {
        let p = try Fixture.problem(m: 24, n: 60, seed: 2, sparsity: 4)
        let x0 = InitDirection.uniform.vector(60).map { (10 * $0).squareRoot() }
        let cfg = Fixture.config(p, flow: .wn, x0: x0, etaG: 0.01)
        let y0 = WeightNormFlow.initialState(x0: x0, vNorm: 1, g0: nil, v0: nil)
        var converged: [Bool] = []
        for precise in [DualSolver.defaultPrecisionDeparture, .infinity] {
            let flow = WeightNormFlow(problem: p, rate: .constant(0.01))
            let dual = try DualSolver(flow: flow, rtol: cfg.integrator.rtol, atol: cfg.integrator.atol, maxSteps: 100_000)
            dual.precisionDeparture = precise
            let stop = StopCriteria(flow: flow, lossBelow: cfg.lossThreshold, speedBelow: nil)
            let run = dual.integrate(from: 0, y0: y0, to: 1e12, saveTimes: [], observers: [stop])
            #expect(dual.handoverTime == nil)
            // Near-limit re-centerings are reported but not counted against the cap.
            if precise.isFinite { #expect(dual.recenterTimes.count > dual.farRecenterings) }
            converged.append(run.termination == .stoppedByObserver)
        }
        #expect(converged == [true, false])
    }

    /// WN with ‖v₀‖ = 2.8e-5 (log ρ∞ = 1.2e9): the 1000 re-centerings are used up by t = 1.5,
    /// and in weight space 29 weights below double range are 0 and cannot grow back: the run
    /// ends at t_end at loss 2.5e-3 (with max_recenterings 1e5 it converges at t = 226, z
    /// within 1.3e-12 of the prediction). The message names that cause and the setting, not
    /// "a larger t_end may not help" of a stalling flow.
    @Test func recenteringCapHandOverNamesTheSetting() throws {
        let cfg = try SimulationConfig.parse("""
        {"problem": {"generate": {"M": 5, "N": 15, "sparsity": 2, "l1_norm": 1.0, "seed": 567, "signed": true}},
         "model": {"flow": "wn", "depth": 2, "eta_v": 1.0, "eta_g": 0.5},
         "init": {"scale": 0.00750108608066957, "direction": "abs-gaussian", "seed": 976, "v_norm": 2.8113056987616232e-05},
         "integrator": {"method": "auto", "max_steps": 300000}}
        """)
        let r = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(r.status == .tEnd && r.method == "dual+bdf")
        let message = try #require(r.message)
        #expect(message.contains("raise integrator.max_recenterings") && message.contains("became 0 in weight space"), "\(message)")
        #expect(!message.contains("may not help"))
    }

    /// verify's `limit-kkt` (Lemma 3.9 between the two end points) reads the last step's
    /// logs, which the monitor kept (`AcceptedStep.logY`): from the weights alone, 36 of them
    /// 0, it reported 1.8e308 (now: not evaluated, a measurement without a value).
    /// Companion: one of those weights 5% off in its log (a factor e^{−100} or more, still 0
    /// in double) fails it.
    @Test func limitKKTReadsTheLogsOfWeightsBelowDoubleRange() throws {
        let p = try Fixture.problem(m: 24, n: 60, seed: 2, sparsity: 4)
        let x0 = InitDirection.uniform.vector(60).map { (10 * $0).squareRoot() }
        let sim = Simulation(config: Fixture.config(p, flow: .wn, x0: x0, etaG: 0.01))
        let (r, monitor) = sim.runMonitored(recordTrajectory: false)
        #expect(r.method == "dual" && r.status == .converged)
        let ctx = try #require(monitor?.context)
        #expect(ctx.hasLogState && ctx.t == r.t)
        let logs = ctx.logState
        func kkt(_ finalLog: [Double]?) throws -> CheckReport {
            try #require(Verification.limitChecks(simulation: sim, result: r, rule: monitor!.rule, finalLogState: finalLog)
                .first { $0.name == "limit-kkt" })
        }
        let withLogs = try kkt(logs)
        #expect(withLogs.passed && withLogs.maxViolation < 1e-8, "\(withLogs.maxViolation)")
        #expect(withLogs.tolerance < 1e-3)
        let withoutLogs = try kkt(nil)
        #expect(r.state.filter { $0 == 0 }.count == 36)
        #expect(withoutLogs.isMeasurement && withoutLogs.value == nil && withoutLogs.quantity.contains("not evaluated"))
        var wrong = logs
        let k = (1..<wrong.count).min { wrong[$0] < wrong[$1] }!
        #expect(r.state[k] == 0 && wrong[k] < -2000, "log v_k = \(wrong[k])")
        wrong[k] *= 1.05
        let broken = try kkt(wrong)
        #expect(!broken.passed, "\(broken.maxViolation) <= \(broken.tolerance)")
    }

    /// The BDF's error norm in dual coordinates is the weights' own: it equals
    /// `max |δ log w|/(rtol + atol/|w| + 4ε‖μ‖∞)` over the weight-space state (GF `x`, WN
    /// `g` and `v`), with `δ log w` taken from the weights of `y` and `y + v` themselves
    /// (`natural`), to first order in `v`.
    @Test(arguments: [FlowKind.gf, .wn]) func weightErrorNormMeasuresTheWeights(kind: FlowKind) throws {
        let p = try Fixture.problem(m: 8, n: 20, seed: 4)
        let x0 = Fixture.positivePoint(20, seed: 9, scale: 0.3)
        let flow: any Flow = kind == .gf ? GradientFlow(problem: p) : WeightNormFlow(problem: p, rate: .constant(0.05))
        let system = try makeDualCoordinates(for: flow)
        let start = kind == .gf ? x0 : WeightNormFlow.initialState(x0: x0, vNorm: 1, g0: nil, v0: nil)
        var y = try system.setBase(start)
        let rng = RNG(seed: 5)
        let d = y.count
        for i in 0..<d { y[i] += 0.5 * rng.gaussian() }
        let v = (0..<d).map { _ in 1e-7 * rng.gaussian() }
        let yv = zip(y, v).map { $0 + $1 }
        var f = [Double](repeating: 0, count: d)
        func weights(_ s: [Double]) -> [Double] {
            var out = [Double](repeating: 0, count: start.count)
            s.withUnsafeBufferPointer { b in out.withUnsafeMutableBufferPointer { system.natural(of: b, into: $0.baseAddress!) } }
            return out
        }
        let (w, wv) = (weights(y), weights(yv))
        // The last evaluation is at y (the norm reads its weights).
        try y.withUnsafeBufferPointer { b in try f.withUnsafeMutableBufferPointer { try system.rhs(t: 0, y: b, dydt: $0) } }
        let rtol = 1e-10, atol = 3e-11
        let mu = (kind == .gf ? y : Array(y.dropFirst())).map(abs).max()!
        var expected = 0.0
        for j in 0..<w.count {
            var floor = rtol + 4 * .ulpOfOne * mu
            if kind == .wn && j == 0 { floor = rtol + 4 * .ulpOfOne * abs(y[0]) }
            expected = max(expected, abs(log(abs(wv[j] / w[j]))) / (floor + atol / abs(w[j])))
        }
        let got = v.withUnsafeBufferPointer { vb in
            y.withUnsafeBufferPointer { system.weightErrorNorm(vb.baseAddress!, at: $0.baseAddress!, rtol: rtol, atol: atol, roundingSize: mu) }
        }
        #expect(expected > 10 && abs(got - expected) <= 1e-5 * expected, "\(got) vs \(expected)")
        // A large rounding size (history before a re-centering) raises μ's rounding floor
        // (not θ's: WN's norm may then rest on δθ).
        let relaxed = v.withUnsafeBufferPointer { vb in
            y.withUnsafeBufferPointer { system.weightErrorNorm(vb.baseAddress!, at: $0.baseAddress!, rtol: rtol, atol: atol, roundingSize: 1e6) }
        }
        #expect(relaxed < (kind == .gf ? 0.2 : 1) * got)
    }

    /// Re-centering is a change of coordinates, not of the flow: with the bound at 4 (a
    /// re-centering whenever ‖μ‖∞ passes 2) a WN run ends at the limit of the run that
    /// never re-centers, in about as many steps.
    @Test func recenteringKeepsTheTrajectory() throws {
        let p = try Fixture.problem(m: 15, n: 40, seed: 8, sparsity: 3)
        let x0 = Fixture.positivePoint(40, seed: 9, scale: 0.05)
        let flow = WeightNormFlow(problem: p, rate: .constant(0.05))
        let y0 = WeightNormFlow.initialState(x0: x0, vNorm: 1, g0: nil, v0: nil)
        let reference = try DualSolver(flow: flow, rtol: 1e-10, maxSteps: 200_000)
        let a = reference.integrate(from: 0, y0: y0, to: 1e6)
        #expect(reference.recenterTimes.isEmpty && a.termination == .reachedEnd)
        let often = try DualSolver(flow: flow, rtol: 1e-10, maxSteps: 200_000)
        often.maxDeparture = 4
        let b = often.integrate(from: 0, y0: y0, to: 1e6)
        #expect(often.recenterTimes.count >= 5 && often.handoverTime == nil && b.termination == .reachedEnd)
        #expect(Fixture.maxRelativeDifference(b.y, a.y) <= 1e-9)
        #expect(abs(Double(b.stats.acceptedSteps - a.stats.acceptedSteps)) <= 0.1 * Double(a.stats.acceptedSteps))
    }

    /// A stale Jacobian held WN's dual BDF (M = 25, N = 100, η_g = 0.01, α = 0.03) at the
    /// edge of BDF5's stability: local errors alternating 0.5 / 0.06 at h ≈ 3.1, 2 million
    /// steps to t = 6e6 on the Jacobian of its second step. `BDFSolver.jacobianMaxAge`
    /// refreshes it. Measured on the weights (`weightErrorNorm`) a stale Jacobian costs 4,938
    /// steps against 4,014; in the norm of μ it still crawls after 20,000 steps (with
    /// OpenBLAS's Haswell kernels; with others it takes ≥ 1.46× the refreshed run's steps).
    @Test func staleJacobianIsRefreshed() throws {
        let p = try Fixture.problem(m: 25, n: 100, seed: 4, sparsity: 6)
        let x0 = [Double](repeating: (0.03 / 10).squareRoot(), count: 100)
        var cfg = Fixture.config(p, flow: .wn, x0: x0, etaG: 0.01)
        cfg.integrator.maxSteps = 20_000
        let r = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(r.method == "dual" && r.status == .converged, "\(r.status) after \(r.stats.acceptedSteps) steps")
        #expect(r.stats.jacobianEvaluations >= 10)
        // The same run with the Jacobian kept until Newton fails.
        let flow = WeightNormFlow(problem: p, rate: .constant(0.01))
        let dual = try DualSolver(flow: flow, rtol: 1e-10, atol: 1e-18, maxSteps: 20_000)
        let bdf = try #require(dual.inner as? BDFSolver)
        bdf.jacobianMaxAge = Int.max
        bdf.maxOrder = 5  // the edge was BDF5's; at order 6 the μ-norm run below no longer crawls
        let y0 = WeightNormFlow.initialState(x0: x0, vNorm: 1, g0: nil, v0: nil)
        let stale = dual.integrate(from: 0, y0: y0, to: 1e12)
        #expect(stale.termination == .reachedEnd && Double(stale.stats.acceptedSteps) > 1.1 * Double(r.stats.acceptedSteps),
                "\(stale.stats.acceptedSteps) stale against \(r.stats.acceptedSteps) steps")
        // In the cruder norm of the dual state (max |δμ_i|, the control before stop 17) the
        // stale Jacobian makes the run crawl; with the age limit it does not.
        bdf.errorNormOverride = nil
        let crawl = dual.integrate(from: 0, y0: y0, to: 1e12)
        bdf.jacobianMaxAge = nil
        let refreshed = dual.integrate(from: 0, y0: y0, to: 1e12)
        #expect(refreshed.termination == .reachedEnd)
        // Whether the stale run crawls to the step limit depends on the BLAS kernels' rounding
        // (it does with OpenBLAS's Haswell/Zen kernels: 20,000 steps to t = 6e4 on 2
        // Jacobians; with Prescott, Sandybridge, Nehalem and SkylakeX it reaches the end in
        // 7,404-8,119 steps on 7-8 Jacobians, against 5,049-5,064 refreshed).
        #expect((crawl.termination == .maxSteps && crawl.t < 1e6)
                || (crawl.termination == .reachedEnd && Double(crawl.stats.acceptedSteps) >= 1.3 * Double(refreshed.stats.acceptedSteps)),
                "\(crawl.termination) at t = \(crawl.t) after \(crawl.stats.acceptedSteps) steps (\(crawl.stats.jacobianEvaluations) Jacobians) against \(refreshed.stats.acceptedSteps) refreshed")
    }

    /// Zero entries of x₀ stay exactly zero (never 0·∞).
    @Test func zeroEntriesStayZero() throws {
        let (p, start) = try smallCase()
        var x0 = start
        for j in stride(from: 0, to: 20, by: 4) { x0[j] = 0 }
        let dual = weightsAtSaves(p, flow: .gf, x0: x0, method: .dual, rtol: 1e-10, times: Self.times)
        let ref = weightsAtSaves(p, flow: .gf, x0: x0, method: .gsl(.rk8pd), rtol: 1e-13, times: Self.times)
        for x in dual.x { for j in stride(from: 0, to: 20, by: 4) { #expect(x[j] == 0) } }
        let nonzero = { (rows: [[Double]]) in rows.map { r in r.enumerated().filter { $0.offset % 4 != 0 }.map(\.element) } }
        #expect(worstRelative(nonzero(dual.x), nonzero(ref.x)) < 1e-7)
    }
}

extension DualCoordinatesTests {
    /// Where `auto` uses the dual coordinates (Benchmarks/HISTORY.md has the measurements).
    @Test func autoPicksDualWhereMeasuredFaster() throws {
        func simulation(_ flow: FlowKind, depth: Int, n: Int) throws -> Simulation {
            let p = try Fixture.problem(m: 2, n: n, depth: depth, seed: 1)
            return Simulation(config: Fixture.config(p, flow: flow, x0: [Double](repeating: 0.1, count: n)))
        }
        func method(_ flow: FlowKind, depth: Int, n: Int) throws -> Method { try simulation(flow, depth: depth, n: n).resolvedMethod }
        #expect(try method(.gf, depth: 2, n: 10) == .dual)
        #expect(try method(.gf, depth: 2, n: 400) == .dual)
        // Not from a large x₀ (the dual's residual floor): x₀ = 100 ended at t_end where bdf converges.
        let big = try Fixture.problem(m: 2, n: 5, depth: 2, seed: 1, sparsity: 1)
        let far = Fixture.config(big, flow: .gf, x0: [Double](repeating: 100, count: 5))
        #expect(Simulation(config: far).resolvedMethod == .bdf)
        let farRun = Simulation(config: far).run(recordTrajectory: false)
        #expect(farRun.status == .converged)
        let p = try Fixture.problem(m: 2, n: 400, depth: 2, seed: 1)
        let tight = Fixture.config(p, flow: .gf, x0: [Double](repeating: 0.1, count: p.n), rtol: 1e-14)
        #expect(Simulation(config: tight).resolvedMethod == .bdf)
        // Depth ≥ 3 GF: the dual coordinates of x^{2−L} (stop 24), not below rtol 1e-13.
        #expect(try method(.gf, depth: 3, n: 400) == .dual)
        #expect(try method(.gf, depth: 6, n: 100) == .dual)
        let tight3 = Fixture.config(try Fixture.problem(m: 2, n: 40, depth: 3, seed: 1), flow: .gf,
                                    x0: [Double](repeating: 0.1, count: 40), rtol: 1e-14)
        #expect(Simulation(config: tight3).resolvedMethod == .bdf)
        #expect(try method(.wn, depth: 2, n: 25) == .dual)
        #expect(try method(.wn, depth: 2, n: 5000) == .dual)
        #expect(try method(.wn, depth: 3, n: 100) == .bdf)
        #expect(try method(.wnTimeDependent, depth: 1, n: 100) == .bdf)
        // Not from g₀ = 0 (dual integrates log g), nor below rtol 1e-13.
        let q = try Fixture.problem(m: 2, n: 25, depth: 2, seed: 1)
        var zeroG = Fixture.config(q, flow: .wn, x0: [Double](repeating: 0.1, count: 25))
        zeroG.g0 = 0
        #expect(Simulation(config: zeroG).resolvedMethod == .bdf)
        let tightWN = Fixture.config(q, flow: .wn, x0: [Double](repeating: 0.1, count: 25), rtol: 1e-14)
        #expect(Simulation(config: tightWN).resolvedMethod == .bdf)
        #expect(try method(.wnTimeDependent, depth: 2, n: 5000) == .dual)
        #expect(try method(.wn, depth: 3, n: 5000) == .bdf)
        #expect(try method(.wn, depth: 4, n: 100) == .bdf)
        // Deeper WN: bdf with checked solves up to dimension 5000 (the WN state is N + 1), rosenbrock above.
        #expect(try method(.wn, depth: 5, n: 100) == .bdf)
        #expect(try method(.wnTimeDependent, depth: 5, n: 100) == .bdf)
        #expect(try method(.wn, depth: 5, n: 1000) == .bdf)
        #expect(try method(.wn, depth: 5, n: 4999) == .bdf)
        #expect(try method(.wn, depth: 5, n: 5000) == .rosenbrock)
        func checked(_ flow: FlowKind, depth: Int, n: Int) throws -> Bool { try simulation(flow, depth: depth, n: n).checksBDFSolves }
        #expect(try checked(.wn, depth: 5, n: 100) && checked(.wnTimeDependent, depth: 6, n: 4999))
        #expect(try !checked(.wn, depth: 4, n: 100) && !checked(.wn, depth: 5, n: 5000) && !checked(.gf, depth: 5, n: 100))
    }
}

/// Depth ≥ 3 GF in the dual coordinates `x^{2−L} = x₀^{2−L} + Aᵀλ` (`DualPowerGradientSystem`).
@Suite("Dual coordinates at depth ≥ 3 (GF)")
struct DualPowerCoordinatesTests {
    @Test("The depth ≥ 3 dual Jacobian agrees with central differences (L = 3, 4, 5; plain and signed)")
    func jacobianMatchesFiniteDifferences() throws {
        for depth in [3, 4, 5] {
            for signed in [false, true] {
                let p = try Fixture.problem(m: 6, n: 12, depth: depth, signed: signed)
                let x = Fixture.positivePoint(p.weightCount, seed: 21)
                let system = try makeDualCoordinates(for: GradientFlow(problem: p))
                #expect(system is DualPowerGradientSystem && system.jacobianSpectrumIsReal)
                let s = dualState(base: try system.setBase(x), seed: 5)
                let j = try Fixture.jacobian(system, at: s)
                let err = blockwiseError(j, try Fixture.finiteDifferenceJacobian(system, at: s), split: 0)
                #expect(err <= 1e-6, "L = \(depth) signed=\(signed): relative error \(err)")
                #expect(try imaginaryShare(j) <= 1e-10)
            }
        }
    }

    /// The depth ≥ 3 dual integrates the same flow: weights at fixed times agree with a tight
    /// rk8pd run in weight space, entry by entry and relatively.
    @Test(arguments: [(3, false), (3, true), (4, false), (5, false)])
    func agreesWithWeightSpace(depth: Int, signed: Bool) throws {
        let p = try Fixture.problem(m: 8, n: 20, depth: depth, signed: signed, seed: 4)
        let x0 = Fixture.positivePoint(p.weightCount, seed: 9, scale: 0.3)
        let times = DualCoordinatesTests.times
        let ref = weightsAtSaves(p, flow: .gf, x0: x0, method: .gsl(.rk8pd), rtol: 1e-13, times: times)
        let dual = weightsAtSaves(p, flow: .gf, x0: x0, method: .dual, rtol: 1e-10, times: times)
        #expect(dual.result.method == "dual" && dual.result.dualHandover == nil)
        #expect(ref.x.count == times.count && dual.x.count == times.count)
        let err = worstRelative(dual.x, ref.x)
        #expect(err < 1e-7, "L = \(depth) signed=\(signed): worst relative error \(err)")
    }

    /// The comparison above can fail: the dual run of a problem whose y is off by 0.1% is
    /// far from the reference.
    @Test func perturbedProblemIsCaught() throws {
        let p = try Fixture.problem(m: 8, n: 20, depth: 3, seed: 4)
        let x0 = Fixture.positivePoint(20, seed: 9, scale: 0.3)
        let q = try Problem(A: p.A, y: p.y.map { $0 * 1.001 }, depth: 3)
        let times = DualCoordinatesTests.times
        let ref = weightsAtSaves(p, flow: .gf, x0: x0, method: .gsl(.rk8pd), rtol: 1e-13, times: times)
        let off = weightsAtSaves(q, flow: .gf, x0: x0, method: .dual, rtol: 1e-10, times: times)
        #expect(worstRelative(off.x, ref.x) > 1e-5)
    }

    /// M = 8, N = 20 at `depth`: a dual state 0.2·N(0, 1) away from the base `x₀`, with the RHS
    /// evaluated there (the error norms and bounds read that evaluation), and the generator
    /// for further draws.
    static func evaluatedState(depth: Int, seed: UInt) throws -> (Problem, any DualCoordinates, [Double], RNG) {
        let p = try Fixture.problem(m: 8, n: 20, depth: depth, seed: 4)
        let system = try makeDualCoordinates(for: GradientFlow(problem: p))
        var y = try system.setBase(Fixture.positivePoint(20, seed: 9, scale: 0.3))
        let rng = RNG(seed: seed)
        for i in 0..<y.count { y[i] += 0.2 * rng.gaussian() }
        var f = [Double](repeating: 0, count: y.count)
        try y.withUnsafeBufferPointer { b in try f.withUnsafeMutableBufferPointer { try system.rhs(t: 0, y: b, dydt: $0) } }
        return (p, system, y, rng)
    }

    /// The weights of the dual state `s` (`natural`).
    static func weights(_ system: any DualCoordinates, _ s: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: 20)
        s.withUnsafeBufferPointer { b in out.withUnsafeMutableBufferPointer { system.natural(of: b, into: $0.baseAddress!) } }
        return out
    }

    /// The error norm is the weights' own: `max |δx/x|/(floor + atol/x)`, with `δx` taken from
    /// the weights of `y` and `y + v` (`natural`), to first order in `v`; the floor is rtol
    /// plus the rounding of `u = b + t`.
    @Test func weightErrorNormMeasuresTheWeights() throws {
        let (_, system, y, rng) = try Self.evaluatedState(depth: 3, seed: 5)
        let v = (0..<y.count).map { _ in 1e-7 * rng.gaussian() }
        let (w, wv) = (Self.weights(system, y), Self.weights(system, zip(y, v).map { $0 + $1 }))
        #expect(w.allSatisfy { $0 > 0 && $0.isFinite })
        let rtol = 1e-10, atol = 3e-11
        // The floor's rounding part is below 1e-13 here: compare with rtol alone.
        let expected = (0..<20).map { j in abs(wv[j] / w[j] - 1) / (rtol + atol / w[j]) }.max()!
        let got = v.withUnsafeBufferPointer { vb in
            y.withUnsafeBufferPointer { system.weightErrorNorm(vb.baseAddress!, at: $0.baseAddress!, rtol: rtol, atol: atol, roundingSize: 0) }
        }
        #expect(expected > 10 && abs(got - expected) <= 1e-3 * expected, "\(got) vs \(expected)")
        let bound = v.withUnsafeBufferPointer { vb in
            y.withUnsafeBufferPointer { system.weightErrorBound(vb.baseAddress!, at: $0.baseAddress!, rtol: rtol, atol: atol, roundingSize: 0) }
        }
        #expect(bound >= got)
    }

    /// `lossLowerBound` bounds the loss that `LossWorkspace` computes at the weights of nearby
    /// states from below, and is not vacuous (within 1% of it for small moves).
    @Test func lossLowerBoundIsALowerBound() throws {
        let (p, system, y, rng) = try Self.evaluatedState(depth: 4, seed: 6)
        let ws = LossWorkspace(problem: p)
        var tight = 0
        for size in [1e-12, 1e-9, 1e-6, 1e-3, 1e-1] {
            let s = y.map { $0 + size * rng.gaussian() }
            let x = Self.weights(system, s)
            let loss = x.withUnsafeBufferPointer { ws.loss(at: $0.baseAddress!) }
            guard let lower = s.withUnsafeBufferPointer({ system.lossLowerBound($0) }) else { continue }
            #expect(lower <= loss, "move \(size): \(lower) > \(loss)")
            if lower >= 0.99 * loss { tight += 1 }
        }
        #expect(tight >= 3)
    }

    /// Monitor: every check passes on a run to convergence, the statements the coordinates
    /// make exact are marked, and the limit is weight-space `bdf`'s.
    @Test func monitorPassesAndLimitMatches() throws {
        let p = try Fixture.problem(m: 10, n: 25, depth: 3, seed: 7)
        let x0 = InitDirection.uniform.vector(25).map { 0.1 * $0 }
        let (result, _) = Simulation(config: Fixture.config(p, flow: .gf, x0: x0, method: .dual, lossBelow: 1e-22)).runMonitored()
        #expect(result.status == .converged && result.dualHandover == nil)
        for check in result.monitor where !check.isMeasurement {
            #expect(check.passed, "\(check.name): \(check.maxViolation) > \(check.tolerance)")
        }
        #expect(Set(result.monitor.filter(\.byConstruction).map(\.name)) == ["lemma-3.3-sign", "lemma-3.7-invariant"])
        let bdf = Simulation(config: Fixture.config(p, flow: .gf, x0: x0, method: .bdf, lossBelow: 1e-22)).run(recordTrajectory: false)
        #expect(Fixture.maxRelativeDifference(result.z, bdf.z) < 1e-6)
    }

    /// From x₀ = 1e-3 at depth 4 (`x₀^{−2} = 1e6`) the growing weights cancel digits of
    /// `u = x₀^{−2} + Aᵀλ`: the run hands over to weight space and ends where `bdf` does; a
    /// state with some `u ≤ 0` is outside one step's reach and maps to no weights.
    @Test func cancellationHandsOverToWeightSpace() throws {
        let p = try Fixture.problem(m: 10, n: 25, depth: 4, seed: 7)
        let x0 = [Double](repeating: 1e-3, count: 25)
        let dual = Simulation(config: Fixture.config(p, flow: .gf, x0: x0, method: .dual, lossBelow: 1e-20)).run(recordTrajectory: false)
        let bdf = Simulation(config: Fixture.config(p, flow: .gf, x0: x0, method: .bdf, lossBelow: 1e-20)).run(recordTrajectory: false)
        #expect(dual.dualHandover != nil && dual.status == bdf.status)
        #expect(Fixture.maxRelativeDifference(dual.z, bdf.z) < 1e-6)
        let system = try makeDualCoordinates(for: GradientFlow(problem: p))
        var y = try system.setBase(x0)
        #expect(!y.withUnsafeBufferPointer { system.outrunsPrecision($0, rtol: 1e-10) })
        // μ along −A·1 lowers every u_n: far enough, some u_n ≤ 0.
        let down = p.A.multiply([Double](repeating: 1, count: 25))
        for i in 0..<y.count { y[i] = -1e9 * down[i] }
        #expect(y.withUnsafeBufferPointer { system.outrunsPrecision($0, rtol: 1e-10) })
        #expect(y.withUnsafeBufferPointer { system.stepReach($0.baseAddress!) } > 1)
    }

    /// Zero entries of x₀ stay exactly zero; a negative start is refused.
    @Test func zeroEntriesStayZeroAndNegativeStartsAreRefused() throws {
        let p = try Fixture.problem(m: 8, n: 20, depth: 3, seed: 4)
        var x0 = Fixture.positivePoint(20, seed: 9, scale: 0.3)
        for j in stride(from: 0, to: 20, by: 4) { x0[j] = 0 }
        let times = DualCoordinatesTests.times
        let dual = weightsAtSaves(p, flow: .gf, x0: x0, method: .dual, rtol: 1e-10, times: times)
        let ref = weightsAtSaves(p, flow: .gf, x0: x0, method: .gsl(.rk8pd), rtol: 1e-13, times: times)
        for x in dual.x { for j in stride(from: 0, to: 20, by: 4) { #expect(x[j] == 0) } }
        let nonzero = { (rows: [[Double]]) in rows.map { r in r.enumerated().filter { $0.offset % 4 != 0 }.map(\.element) } }
        #expect(worstRelative(nonzero(dual.x), nonzero(ref.x)) < 1e-7)
        x0[1] = -0.1
        let system = try makeDualCoordinates(for: GradientFlow(problem: p))
        #expect(throws: ODEError.self) { try system.setBase(x0) }
        #expect(Simulation(config: Fixture.config(p, flow: .gf, x0: x0)).resolvedMethod == .bdf)
    }
}

extension DualCoordinatesTests {
    /// GF, L = 5, x₀ up to 15 (initial loss 4.9e11), 200 save times (a random differential
    /// test's case): the dual leg's first step failed Newton, and `stepReach` then measured the
    /// retries against the failed iterate's `x^{2−L}`, from which even the start lay out of reach
    /// (1.4): h shrank to 3e-323 at t = 0 and the run handed over to weight space there. With
    /// `f` evaluated at the step's start after a Newton failure (`BDFSolver.reachReadsLastEvaluation`) the dual
    /// leg runs to t ≈ 1e7, where cancellation in `x^{2−L}` hands over as designed. Same end as
    /// `bdf`.
    @Test func failedFirstStepKeepsItsReachReference() throws {
        let p = try Fixture.problem(m: 10, n: 23, depth: 5, seed: 843887, sparsity: 1)
        let x0 = [0.277523, 4.10624, 13.8225, 0.322782, 0.3922, 0.323904, 0.144555, 1.32725, 2.81142, 14.9282, 11.685,
                  1.25899, 0.591459, 0.221304, 0.830518, 0.241998, 0.460157, 2.44462, 1.55098, 2.87939, 0.263646,
                  1.34831, 0.132857]
        let dual = Simulation(config: Fixture.config(p, flow: .gf, x0: x0, method: .dual, points: 200)).run(recordTrajectory: false)
        let bdf = Simulation(config: Fixture.config(p, flow: .gf, x0: x0, method: .bdf)).run(recordTrajectory: false)
        #expect((dual.dualHandover ?? .infinity) > 1e5, "\(dual.method) \(String(describing: dual.dualHandover)) \(dual.warnings)")
        #expect(!dual.warnings.contains { $0.contains("method dual failed") }, "\(dual.warnings)")
        #expect(dual.status == bdf.status && dual.status != .failed)
        #expect(abs(dual.loss - bdf.loss) <= 1e-6 * bdf.loss)
    }

    /// A dual leg that fails hands over as one that leaves its range does, with the failure
    /// named (`handoverFailure`). Forced here by a first step below the smallest one the BDF
    /// takes at t = 0 (h₀ = 1e-323); the weight-space solver then integrates from the start.
    @Test func failedDualLegHandsOverToWeightSpace() throws {
        let p = try Fixture.problem(m: 8, n: 20, depth: 3, seed: 5)
        let x0 = [Double](repeating: 0.1, count: 20)
        let flow = GradientFlow(problem: p)
        let options = ODEOptions(rtol: 1e-10, atol: 1e-18, maxSteps: 100_000)
        let solver = try DualSolver(flow: flow, rtol: 1e-10, initialStep: 1e-323, maxSteps: 100_000,
                                    fallback: { try BDFSolver(system: flow, options: options) })
        let run = solver.integrate(from: 0, y0: x0, to: 1e4)
        let plain = try BDFSolver(system: flow, options: options).integrate(from: 0, y0: x0, to: 1e4)
        #expect(solver.handoverTime == 0)
        #expect(solver.handoverFailure != nil, "\(run.termination)")
        #expect(run.termination == .reachedEnd && plain.termination == .reachedEnd)
        #expect(p.loss(plain.y) < 1e-12 * p.loss(x0))
        let gap = zip(run.y, plain.y).map { abs($0 - $1) }.max() ?? .nan
        #expect(gap <= 1e-7 * (plain.y.map(abs).max() ?? 0), "\(gap)")
    }
}
