import Foundation
import GSLKit
import Testing
@testable import WNFlow

private func finiteDifferenceJacobian(_ flow: any Flow, at y: [Double]) throws -> Matrix {
    try Fixture.finiteDifferenceJacobian(flow, at: y)
}

private func maxRelativeDifference(_ a: Matrix, _ b: Matrix) -> Double {
    Fixture.maxRelativeDifference(a, b)
}

@Suite("Flows")
struct FlowTests {
    @Test("Gradient of the loss agrees with central differences", arguments: [1, 2, 3, 4])
    func gradientMatchesFiniteDifferences(depth: Int) throws {
        let p = try Fixture.problem(depth: depth)
        let flow = GradientFlow(problem: p)
        let x = Fixture.positivePoint(p.n, seed: UInt(depth))
        let f = try flow.velocity(of: x)
        for k in 0..<p.n {
            let h = 1e-6 * x[k]
            var xp = x, xm = x
            xp[k] += h
            xm[k] -= h
            let fd = (p.loss(xp) - p.loss(xm)) / (2 * h)
            #expect(abs(-f[k] - fd) <= 1e-6 * max(norm2(f), 1e-12), "component \(k): \(-f[k]) vs \(fd)")
        }
    }

    /// Lemma 3.1: only η_v/‖v₀‖² matters, so (η_v, r) and (η_v·s², r·s) give the same x(t)
    /// (constant rate and Thm 2.4's). MATH.md §2 writes the pair as (η_v/s², r·s), which
    /// contradicts its own "only η_v/r² matters"; the companion shows that pair moves x(t).
    @Test("Lemma 3.1: (η_v, r) and (η_v·s², r·s) give the same trajectory", arguments: [FlowKind.wn, .wnTimeDependent])
    func rescalingLemma(flow: FlowKind) throws {
        let p = try Fixture.problem(m: 8, n: 20, depth: 2, seed: 4)
        let x0 = InitDirection.uniform.vector(20).map { 0.1 * $0 }
        func x(etaV: Double, vNorm: Double) -> [Double] {
            var cfg = Fixture.config(p, flow: flow, x0: x0, etaG: 0.3, rtol: 1e-12, atol: 1e-20, tEnd: 3, lossBelow: 0)
            cfg.model.etaV = etaV
            cfg.vNorm = vNorm
            return Simulation(config: cfg).run(recordTrajectory: false).x
        }
        let base = x(etaV: 1, vNorm: 1)
        let same = x(etaV: 4 * 1.0, vNorm: 2)        // s = 2: η_v·s², r·s
        let other = x(etaV: 1.0 / 4, vNorm: 2)       // MATH.md's (η_v/s², r·s)
        #expect(Fixture.maxRelativeDifference(same, base) <= 1e-8)
        #expect(Fixture.maxRelativeDifference(other, base) > 1e-3)
    }

    @Test("Jacobians agree with central differences (GF, WN constant and time-dependent, signed)",
          arguments: [1, 2, 3, 4, 5])
    func jacobiansMatchFiniteDifferences(depth: Int) throws {
        for signed in [false, true] {
            let p = try Fixture.problem(m: 6, n: 12, depth: depth, signed: signed)
            let x = Fixture.positivePoint(p.weightCount, seed: 11 + UInt(depth))
            let flows: [(any Flow, [Double])] = [
                (GradientFlow(problem: p), x),
                (WeightNormFlow(problem: p, rate: .constant(0.07), etaV: 1.3), WeightNormFlow.initialState(x0: x, vNorm: 0.8)),
                (WeightNormFlow(problem: p, rate: .timeDependent, etaV: 0.9), WeightNormFlow.initialState(x0: x, vNorm: 1.7)),
            ]
            for (flow, state) in flows {
                let analytic = try flow.jacobianMatrix(of: state)
                let numeric = try finiteDifferenceJacobian(flow, at: state)
                let err = maxRelativeDifference(analytic, numeric)
                #expect(err <= 1e-6, "\(flow.kind) L=\(depth) signed=\(signed): relative error \(err)")
            }
        }
    }

    @Test("A wrong Jacobian is caught by the finite-difference comparison")
    func brokenJacobianIsDetected() throws {
        let p = try Fixture.problem(m: 6, n: 12, depth: 2)
        let flow = GradientFlow(problem: p)
        let x = Fixture.positivePoint(p.n, seed: 3)
        var analytic = try flow.jacobianMatrix(of: x)
        analytic[2, 5] += 1e-3 * (analytic.storage.map(abs).max() ?? 1)
        #expect(maxRelativeDifference(analytic, try finiteDifferenceJacobian(flow, at: x)) > 1e-6)
    }

    @Test("L = 1 GF converges to x₀ − A⁺(Ax₀ − y)")
    func linearGradientFlowClosedForm() throws {
        let p = try Fixture.problem(depth: 1)
        let x0 = Fixture.positivePoint(p.n, seed: 5, scale: 0.3)
        let result = Simulation(config: Fixture.config(p, flow: .gf, x0: x0)).run()
        #expect(result.status == .converged)
        let svd = try SVD(p.A)
        let residual = zip(p.A.multiply(x0), p.y).map { $0 - $1 }
        let correction = svd.pseudoInverseApply(residual)
        let expected = zip(x0, correction).map { $0 - $1 }
        let err = Fixture.relativeError(result.x, expected)
        #expect(err <= 1e-9, "relative error \(err)")
    }

    @Test("Thm 2.4: the time-dependent WN limit equals the GF limit", arguments: [1, 2, 3])
    func timeDependentRateMatchesGradientFlow(depth: Int) throws {
        let p = try Fixture.problem(depth: depth, seed: 21)
        let x0 = [Double](repeating: 0.3 / Double(p.n).squareRoot(), count: p.n)
        let gf = Simulation(config: Fixture.config(p, flow: .gf, x0: x0)).run()
        let wn = Simulation(config: Fixture.config(p, flow: .wnTimeDependent, x0: x0)).run()
        #expect(gf.status == .converged && wn.status == .converged)
        let err = Fixture.relativeError(wn.z, gf.z)
        #expect(err <= 1e-8, "L=\(depth): relative difference \(err)")
    }

    @Test("Lemma 3.9: P h_L(x(t)) = P h_L(x₀/ρ(t)) along a WN run (log ρ)", arguments: [2, 3])
    func effectiveInitializationAlongWN(depth: Int) throws {
        let p = try Fixture.problem(depth: depth, seed: 4)
        let x0 = Fixture.positivePoint(p.n, seed: 9, scale: depth == 2 ? 0.05 : 0.5)
        let etaG = depth == 2 ? 0.05 : 0.2
        let cfg = Fixture.config(p, flow: .wn, x0: x0, etaG: etaG, points: 40)
        let result = Simulation(config: cfg).run()
        #expect(result.status == .converged)
        let proj = try KernelProjector(p.matrix)
        let g0 = norm2(x0)
        var worst = 0.0
        for row in result.trajectory {
            let logRho = logMagnification(g0: g0, g: row.g!, etaG: etaG, etaV: 1, vNorm0: 1)
            let lhs: [Double], rhs: [Double]
            if depth == 2 {
                lhs = proj.apply(row.x.map { log($0) })
                rhs = proj.apply(x0.map { log($0) - logRho })
            } else {
                // x^{2−L} vs (x₀/ρ)^{2−L} = x₀^{2−L} ρ^{L−2}; compare scaled by ρ^{2−L}.
                let s = exp(Double(2 - depth) * logRho)
                lhs = proj.apply(row.x.map { pow($0, Double(2 - depth)) * s })
                rhs = proj.apply(x0.map { pow($0, Double(2 - depth)) })
            }
            worst = max(worst, Fixture.relativeError(lhs, rhs))
        }
        #expect(worst <= 1e-8, "L=\(depth): worst relative violation \(worst)")
    }

    @Test("WN-GD approaches the WN flow linearly in the step")
    func discreteWNApproachesFlow() throws {
        let p = try Fixture.problem(depth: 2, seed: 12)
        let x0 = Fixture.positivePoint(p.n, seed: 2, scale: 0.2)
        let tFix = 2.0
        let flow = Simulation(config: Fixture.config(p, flow: .wn, x0: x0, tEnd: tFix)).run()
        #expect(flow.status == .tEnd && flow.t == tFix)
        var errors: [Double] = []
        for step in [0.02, 0.01, 0.005] {
            let r = Simulation(config: Fixture.config(p, flow: .wnGD, x0: x0, tEnd: tFix, step: step)).run()
            #expect(abs(r.t - tFix) < 1e-12)
            errors.append(Fixture.relativeError(r.x, flow.x))
        }
        // First order: halving the step halves the error.
        let r1 = errors[0] / errors[1], r2 = errors[1] / errors[2]
        #expect(abs(r1 - 2) < 0.15 && abs(r2 - 2) < 0.15, "error ratios \(r1), \(r2) (errors \(errors))")
    }

    /// A differential-testing helper: GD that grew without bound but stayed finite (loss
    /// 1.3e120) ended as `t_end` with "raise t_end", and one caught in a two-point cycle
    /// (x² = 1 from 1.5 at μ = 0.6, loss stuck at 0.045) was told the same.
    @Test("GD: a growing loss is a divergence (exit 3, last iterate kept); a loss that rises names model.step")
    func discreteDivergenceAndRises() throws {
        func run(_ model: String, _ x0: String, tEnd: Double) throws -> SimulationResult {
            Simulation(config: try SimulationConfig.parse(#"{"problem": {"A": [[1.0]], "y": [1.0]}, "model": \#(model), "init": {"x0": \#(x0)}, "integrator": {"t_end": \#(tEnd)}}"#)).run()
        }
        let grows = try run(#"{"flow": "gd", "depth": 1, "step": 3}"#, "[1.5]", tEnd: 1000)
        #expect(grows.status == .failed)
        #expect(grows.message?.contains("diverged") == true && grows.message?.contains("lower model.step") == true, "\(grows.message ?? "")")
        #expect(grows.loss.isFinite && grows.loss > 1e9 && grows.x.allSatisfy(\.isFinite), "loss \(grows.loss)")
        // Depth 1, μ = 3: x_{k+1} − 1 = −2(x_k − 1), so the loss grows 4× a step; the run stops
        // at the first iterate past 1e10 × its start, and reports that iterate.
        #expect(abs(grows.loss - 0.5 * pow(0.5 * pow(2, Double(grows.stats.acceptedSteps)), 2)) <= 1e-9 * grows.loss)
        let cycles = try run(#"{"flow": "gd", "depth": 2, "step": 0.6}"#, "[1.5]", tEnd: 60)
        #expect(cycles.status == .tEnd)
        #expect(cycles.message?.contains("the loss rose at") == true && cycles.message?.contains("lower model.step") == true, "\(cycles.message ?? "")")
        #expect(cycles.message?.contains("raise integrator.t_end") == false)
        // The same problem at μ = 0.1 descends monotonically and converges without either.
        let fine = try run(#"{"flow": "gd", "depth": 2, "step": 0.1}"#, "[1.5]", tEnd: 1000)
        #expect(fine.status == .converged)
        #expect(fine.message == nil && !fine.warnings.contains { $0.contains("rose") }, "\(fine.warnings)")
        // Review of the above: a start next to a zero of the loss (4e-22) whose loss rises to a
        // transient 6.8e-12 on its way to a flatter minimum is no divergence (the scale is
        // max(start, ½‖y‖²)); it converges, with a warning about the rises.
        func gd(_ x0: String, tEnd: Double, A: String = "[[1.0, 2.0]]", y: String = "[1.0]", step: Double = 0.3, depth: Int = 2) throws -> SimulationResult {
            Simulation(config: try SimulationConfig.parse(#"{"problem": {"A": \#(A), "y": \#(y)}, "model": {"flow": "gd", "depth": \#(depth), "step": \#(step)}, "init": {"x0": \#(x0)}, "integrator": {"t_end": \#(tEnd)}, "record": {"points": 30}}"#)).run()
        }
        let nearZero = try gd("[0.001, 0.7071064276430685]", tEnd: 3000)
        #expect(nearZero.status == .converged && nearZero.warnings.contains { $0.contains("the loss rose at") }, "\(nearZero.message ?? "") \(nearZero.warnings)")
        // Stopped by t_end long after its last rise, still falling: raise t_end, with a note.
        let early = try gd("[0.001, 0.7072064276330685]", tEnd: 200)
        #expect(early.status == .tEnd)
        #expect(early.message?.contains("raise integrator.t_end") == true && early.message?.contains("has fallen since") == true
                && early.message?.contains("will not help") == false, "\(early.message ?? "")")
        #expect(early.message?.contains("last iterate at t = 199.8)") == true)
        // x^L dwarfs y (depth 1, |x₀| ~ 1e5, step 12× under the stable limit): the plain
        // residual's rounding alone made 2,717 "rises"; rounding is not a rise.
        let rounding = try gd("[-94630.00876874145, -32328.956686350335]", tEnd: 2000,
                              A: "[[-0.32143722417767684, 0.9409040050577909], [-0.27075892320772094, 0.7925070156481607]]",
                              y: "[-0.8372897281035562, 0.9940653908144577]", step: 0.1, depth: 1)
        #expect(rounding.message?.contains("rose") == false && !rounding.warnings.contains { $0.contains("rose") }, "\(rounding.message ?? "")")
        // Overflow to Inf in one step: the last finite iterate is the result (was all null).
        let overflow = try run(#"{"flow": "gd", "depth": 3, "step": 1e200}"#, "[1e40]", tEnd: 1e300)
        #expect(overflow.status == .failed && overflow.x == [1e40], "\(overflow.x)")
        #expect(overflow.message?.contains("left double range") == true, "\(overflow.message ?? "")")
        // A finite iterate whose x^L overflows (L = 4, step 1e300): the residual formed ∞ − ∞ and
        // the run was reported one step later as "left double range"; it is this iterate's
        // divergence, its loss inf (a helper's round, stop 32).
        let power = try gd("[0.6, 0.7]", tEnd: 1e305, A: "[[1.0, 2.0], [0.5, -1.0]]", y: "[1.0, 0.3]", step: 1e300, depth: 4)
        #expect(power.status == .failed && power.message?.contains("to inf (it overflowed) by step 1") == true, "\(power.message ?? "")")
        #expect(power.x.allSatisfy(\.isFinite) && power.x != [0.6, 0.7])
        // A step within the grid's 1e-15 of t_end is taken, as the iteration's own rule takes
        // iterate 3 of step 0.1 at 0.30000000000000004 (it was refused: "would take no step").
        let edge = try gd("[0.6, 0.7]", tEnd: 0.3, step: 0.30000000000000004)
        #expect(edge.status == .tEnd && edge.stats.acceptedSteps == 1)
        #expect(throws: ConfigError.self) { try gd("[0.6, 0.7]", tEnd: 0.3, step: 0.30000000000001) }
    }

    /// 11·0.03 = 0.32999999999999996 < 0.33: a record time on the step grid was saved at the
    /// next iterate (t = 0.36), while t_end = 0.33 took iterate 11 (a helper's round, stop 30).
    @Test("GD: a record time on the step grid is that iterate's, as t_end is")
    func discreteRecordTimeOnTheGrid() throws {
        let p = try Fixture.problem(depth: 2, seed: 12)
        let x0 = Fixture.positivePoint(p.n, seed: 2, scale: 0.2)
        var cfg = Fixture.config(p, flow: .gd, x0: x0, tEnd: 1, step: 0.03)
        cfg.record.times = .list([0.33, 0.7])
        let r = Simulation(config: cfg).run()
        let times = r.trajectory.map(\.t)
        #expect(times.contains { abs($0 - 0.33) <= 1e-15 }, "\(times)")
        #expect(!times.contains { abs($0 - 0.36) <= 1e-15 } && times.contains { abs($0 - 0.72) <= 1e-15 }, "\(times)")
        let end = Simulation(config: Fixture.config(p, flow: .gd, x0: x0, tEnd: 0.33, step: 0.03)).run()
        #expect(end.stats.acceptedSteps == 11)
    }

    @Test("WN-GD grows ‖v‖ while the flow keeps it (Lemma 3.2)")
    func discreteWNGrowsNorm() throws {
        let p = try Fixture.problem(depth: 2, seed: 12)
        let x0 = Fixture.positivePoint(p.n, seed: 2, scale: 0.2)
        let gd = Simulation(config: Fixture.config(p, flow: .wnGD, x0: x0, tEnd: 50, step: 0.05)).run()
        let wn = Simulation(config: Fixture.config(p, flow: .wn, x0: x0, tEnd: 50)).run()
        #expect(norm2(gd.v!) > 1 + 1e-6)
        #expect(abs(norm2(wn.v!) - 1) < 1e-8)
    }

    @Test("auto converges the α = 1e-3 depth-2 GF (N = 50, M = 20) within 20,000 RHS evaluations")
    func autoIsFastOnSmallInit() throws {
        let d = ProblemGenerator(m: 20, n: 50, sparsity: 4, seed: 3).draw()
        let p = try Problem(A: d.A, y: d.y, depth: 2, groundTruth: d.groundTruth)
        let x0 = [Double](repeating: 1e-3 / 50.0.squareRoot(), count: 50)
        let r = Simulation(config: Fixture.config(p, flow: .gf, x0: x0)).run()
        #expect(r.status == .converged)
        #expect(r.stats.rhsEvaluations < 20_000, "\(r.stats.rhsEvaluations) RHS evaluations")
    }

    @Test("A run that ends at t_end with the loss still falling is not converged")
    func tEndIsNotConvergence() throws {
        let p = try Fixture.problem(depth: 2)
        let r = Simulation(config: Fixture.config(p, flow: .gf, x0: Fixture.positivePoint(p.n, seed: 1, scale: 0.1), tEnd: 0.5)).run()
        #expect(r.status == .tEnd)
        #expect(r.t == 0.5)
    }

    @Test("Recording hits the log-spaced save times exactly")
    func recordingHitsSaveTimes() throws {
        let p = try Fixture.problem(depth: 2)
        let sim = Simulation(config: Fixture.config(p, flow: .wn, x0: Fixture.positivePoint(p.n, seed: 1, scale: 0.1), tEnd: 100, points: 30))
        let r = sim.run()
        let times = Set(sim.saveTimes)
        let recorded = r.trajectory.map(\.t).filter { $0 > 0 }
        #expect(recorded.count >= 29)
        #expect(recorded.dropLast().allSatisfy { times.contains($0) })
    }

    @Test("Signed problems recover a signed ground truth through [A, −A]")
    func signedRecovery() throws {
        let p = try Fixture.problem(m: 15, n: 25, depth: 2, signed: true, seed: 8)
        let half = [Double](repeating: 1e-3, count: p.n)
        let r = Simulation(config: Fixture.config(p, flow: .wn, x0: half + half, etaG: 0.05)).run()
        #expect(r.status == .converged)
        #expect(r.z.count == p.n)
        let resid = zip(p.A.multiply(r.z), p.y).map { $0 - $1 }
        #expect(norm2(resid) <= 1e-10 * norm2(p.y))
    }
}

@Suite("Runs that end at t_end say why (Simulation.lossRate, tEndAdvice)")
struct TEndAdviceTests {
    @Test("lossRate is dℒ/dt: the derivative of the loss along the velocity (Lemma 3.5)",
          arguments: [FlowKind.gf, .wn, .wnTimeDependent])
    func lossRateIsTheDerivativeAlongTheFlow(_ kind: FlowKind) throws {
        let p = try Fixture.problem(m: 6, n: 15, depth: 2, seed: 31)
        let cfg = Fixture.config(p, flow: kind, x0: Fixture.positivePoint(p.n, seed: 4, scale: 0.3), etaG: 0.2)
        let sim = Simulation(config: cfg)
        let s = sim.initialState
        let v = try sim.flow.velocity(of: s)
        let h = 1e-6
        let fd = (sim.flow.loss(of: zip(s, v).map { $0 + h * $1 }) - sim.flow.loss(of: zip(s, v).map { $0 - h * $1 })) / (2 * h)
        let rate = try #require(sim.lossRate(t: 0, state: s))
        #expect(rate < 0 && abs(rate - fd) <= 1e-6 * abs(fd), "\(kind): \(rate) vs \(fd)")
    }

    /// WN at depth 3 from 1e-3 with η_g = 0.01 (M = 10, N = 25): its loss stops falling well
    /// above the stop, and the run ends at t_end.
    static func stalledDepthThreeWN() throws -> SimulationConfig {
        try SimulationConfig.parse("""
        {"problem": {"generate": {"M": 10, "N": 25, "sparsity": 2, "seed": 4}},
         "model": {"flow": "wn", "depth": 3, "eta_g": 0.01},
         "init": {"scale": 0.001, "direction": "uniform", "root_of_depth": true, "seed": 6}, "record": {"points": 0}}
        """)
    }

    /// Stop 25: a run between two drops of its loss has a near-zero rate at t_end (WN, L = 3,
    /// N = 291: e-folding time 3.3e26) while the loss fell 8.6× over the last decade; the
    /// recorded trajectory now decides, and without one the message says it could not tell.
    @Test("t_end advice reads the last decade of the trajectory before calling a run stalled")
    func plateauIsNotAStall() throws {
        let stalled = try Self.stalledDepthThreeWN()
        let sim = Simulation(config: stalled)
        let r = sim.run(recordTrajectory: false)
        #expect(r.status == .tEnd)
        let falling = [TrajectoryRow(t: 1e9, loss: 10 * r.loss, g: nil, vNorm: nil, x: []),
                       TrajectoryRow(t: 5e10, loss: 3 * r.loss, g: nil, vNorm: nil, x: [])]
        let moving = sim.tEndAdvice(t: r.t, state: r.state, loss: r.loss, history: falling)
        #expect(moving.contains("fell 3") && moving.contains("raise integrator.t_end") && !moving.contains("may not help"), "\(moving)")
        let flat = [TrajectoryRow(t: 5e10, loss: 1.5 * r.loss, g: nil, vNorm: nil, x: []),
                    TrajectoryRow(t: 5e11, loss: r.loss, g: nil, vNorm: nil, x: [])]
        #expect(sim.tEndAdvice(t: r.t, state: r.state, loss: r.loss, history: flat).contains("may not help"))
        #expect(r.message?.contains("set record.points") == true, "\(r.message ?? "nil")")
    }

    /// rk1imp ended a halved step ~9 ulp short of the save time 1e-3 and failed on that
    /// sliver ("step size underflow"); the integrator now carries such slivers onto the
    /// target. The run ends at t_end, and since its loss has hardly moved it is told the
    /// run is short, not that the flow stalled.
    @Test("rk1imp lands on a save time GSL leaves a few ulp short; a run cut short of the flow's time scale is told so")
    func sliverAndShortRun() throws {
        let config = try SimulationConfig.parse("""
        {"problem": {"generate": {"M": 5, "N": 12, "sparsity": 1, "seed": 3}},
         "model": {"flow": "wn", "depth": 2},
         "init": {"scale": 0.5, "direction": "uniform"},
         "integrator": {"method": "rk1imp", "rtol": 1e-11, "t_end": 0.001}}
        """)
        let r = Simulation(config: config).run(recordTrajectory: true)
        #expect(r.status == .tEnd, "\(r.message ?? "nil")")
        #expect(r.t == 0.001)
        #expect(r.message?.contains("before the flow's own time scale") == true && r.message?.contains("may not help") == false,
                "\(r.message ?? "nil")")
    }

    /// Save times a few ulp apart (1 and 1 + 2.2e-16) asked GSL for an ulp-sized step, which
    /// msbdf failed ("step size underflow at t = 1"); the gap is now closed before GSL is
    /// called. And GSL's explicit steppers accept a step whose error estimate is NaN: rk8pd on
    /// signed WN, L = 3, from 1e-3 took a first step of 2e7 to NaN and failed, and retrying
    /// from evolve's kept f(t₁, y₁) of that step failed again at every size.
    @Test func closeSaveTimesAndNaNFirstStep() throws {
        let close = try SimulationConfig.parse("""
        {"problem": {"generate": {"M": 5, "N": 12, "sparsity": 1, "seed": 3}},
         "model": {"flow": "gf", "depth": 2}, "init": {"scale": 0.5, "direction": "uniform"},
         "integrator": {"method": "msbdf", "t_end": 100}, "record": {"times": [1, 1.000000000000001, 50]}}
        """)
        let r = Simulation(config: close).run(recordTrajectory: true)
        #expect(r.status != .failed, "\(r.message ?? "nil")")
        #expect(r.trajectory.map(\.t).prefix(3) == [0, 1, 1.000000000000001])
        let nan = try SimulationConfig.parse("""
        {"problem": {"generate": {"M": 5, "N": 12, "sparsity": 1, "seed": 354463}},
         "model": {"flow": "wn", "depth": 3, "signed": true, "eta_g": 1.0},
         "init": {"scale": 0.001, "direction": "uniform", "seed": 785},
         "integrator": {"method": "rk8pd", "max_steps": 300}, "record": {"points": 0}}
        """)
        let s = Simulation(config: nan).run(recordTrajectory: false)
        #expect(s.status == .maxSteps, "\(s.message ?? "nil")")
    }

    /// A step size underflow names methods other than the one that failed, and under atol = 0
    /// with a subnormal entry says to set atol (msbdf, WN, an entry at 7.7e-314, was told
    /// "try msbdf").
    @Test func underflowAdvice() throws {
        let config = try SimulationConfig.parse("""
        {"problem": {"generate": {"M": 5, "N": 12, "sparsity": 1, "seed": 3}},
         "model": {"flow": "wn", "depth": 2}, "init": {"scale": 0.5, "direction": "uniform"},
         "integrator": {"method": "msbdf", "atol": 0}}
        """)
        let sim = Simulation(config: config)
        var state = sim.initialState
        let plain = sim.underflowAdvice(t: 1, h: 1e-16, state: state)
        #expect(plain.contains("try bdf or bsimp") && !plain.contains("msbdf") && !plain.contains("subnormal"), "\(plain)")
        state[3] = 7.7e-314
        #expect(sim.underflowAdvice(t: 1, h: 1e-16, state: state).contains("state entry 3 is subnormal"))
    }

    @Test("a stalled depth-3 WN run and a WN run at the saddle g = 0 are told a larger t_end may not help; a cut-short GF run is told to raise it")
    func messages() throws {
        let stalled = try Self.stalledDepthThreeWN()
        let r = Simulation(config: stalled).run(recordTrajectory: false)
        #expect(r.status == .tEnd && r.loss > 1e-3)
        #expect(r.message?.contains("all but stopped falling") == true, "\(r.message ?? "nil")")
        let p = try Fixture.problem(m: 6, n: 15, depth: 2, seed: 31)
        let short = Fixture.config(p, flow: .gf, x0: Fixture.positivePoint(p.n, seed: 4, scale: 0.3), tEnd: 1)
        let q = Simulation(config: short).run(recordTrajectory: false)
        #expect(q.status == .tEnd)
        #expect(q.message?.contains("raise integrator.t_end") == true && q.message?.contains("all but stopped") == false,
                "\(q.message ?? "nil")")
        // WN whose g decayed to 0: the saddle, not a short t_end.
        let saddle = try SimulationConfig.parse("""
        {"problem": {"generate": {"M": 40, "N": 100, "sparsity": 5, "seed": 1}},
         "model": {"flow": "wn", "depth": 2, "eta_g": 0.05},
         "init": {"scale": 0.001, "direction": "abs-gaussian", "seed": 2}, "record": {"points": 0}}
        """)
        let sd = Simulation(config: saddle).run(recordTrajectory: false)
        #expect(sd.status == .tEnd && sd.message?.contains("saddle x = 0") == true, "\(sd.message ?? "nil")")
        // g₀ = 0 at depth 2: x = 0 is stationary (nothing moves); the message says so and
        // prints no non-finite e-folding time.
        var still = Fixture.config(p, flow: .wn, x0: Fixture.positivePoint(p.n, seed: 4, scale: 0.3))
        still.g0 = 0
        let st = Simulation(config: still).run(recordTrajectory: false)
        #expect(st.status == .tEnd && st.message?.contains("stationary point") == true && st.message?.contains("null") == false,
                "\(st.message ?? "nil")")
        // The Gauss methods do not damp stiff components: the advice names other methods.
        let gauss = Fixture.config(p, flow: .gf, x0: Fixture.positivePoint(p.n, seed: 4, scale: 0.3), method: .gsl(.rk4imp), tEnd: 1)
        let g = Simulation(config: gauss).run(recordTrajectory: false)
        #expect(g.status == .tEnd && g.message?.contains("not L-stable") == true, "\(g.message ?? "nil")")
    }
}
