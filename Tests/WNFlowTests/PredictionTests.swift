import Foundation
import GSLKit
import Testing
@testable import WNFlow

@Suite("Predicted limit against the integrated limit")
struct PredictionTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let flow: FlowKind
        let depth: Int
        let signed: Bool
        let seed: UInt
        var testDescription: String { "\(flow.rawValue) L=\(depth)\(signed ? " signed" : "") seed \(seed)" }
    }

    /// 24 random problems: GF and WN (and the time-dependent rate), L = 1, 2, 3,
    /// signed and unsigned.
    static let cases: [Case] = {
        var out: [Case] = []
        var seed: UInt = 100
        for flow in [FlowKind.gf, .wn] {
            for depth in [1, 2, 3] {
                for signed in [false, true] {
                    for _ in 0..<2 { out.append(Case(flow: flow, depth: depth, signed: signed, seed: seed)); seed += 1 }
                }
            }
        }
        out.append(Case(flow: .wnTimeDependent, depth: 2, signed: false, seed: 300))
        out.append(Case(flow: .wnTimeDependent, depth: 3, signed: true, seed: 301))
        return out
    }()

    @Test("z_pred = z_∞ to 1e-8 relative", arguments: cases)
    func predictionMatchesIntegration(_ c: Case) throws {
        let p = try Fixture.problem(m: 8, n: 24, depth: c.depth, signed: c.signed, seed: c.seed)
        let rng = RNG(seed: c.seed)
        let scale = c.depth == 3 ? 0.4 : 0.1
        let half = (0..<p.n).map { _ in scale * (0.3 + rng.uniform()) / Double(p.n).squareRoot() }
        let x0 = c.signed ? half + half : half
        let cfg = Fixture.config(p, flow: c.flow, x0: x0, etaG: c.depth == 3 ? 0.3 : 0.1)
        let sim = Simulation(config: cfg).run()
        #expect(sim.status == .converged, "\(c.testDescription): \(sim.status)")
        let pred = try Prediction(config: cfg)
        let err = Fixture.relativeError(sim.z, pred.z)
        #expect(err <= 1e-8, "\(c.testDescription): relative difference \(err)")
        if c.flow == .wn, let gi = pred.report.gInf, let g = sim.g {
            #expect(abs(g - gi) <= 1e-8 * gi, "\(c.testDescription): g \(g) vs \(gi)")
        }
    }

    @Test("limit only: the same limit as the full report, no LPs, no kernel verdict",
          arguments: [FlowKind.gf, .wn, .wnTimeDependent])
    func limitOnlyMatchesFullReport(flow: FlowKind) throws {
        let p = try Fixture.problem(m: 10, n: 30, depth: 2, seed: 21)
        let x0 = (0..<p.n).map { 0.02 * (1 + 0.5 * sin(Double($0))) }
        let cfg = Fixture.config(p, flow: flow, x0: x0)
        let full = try Prediction(config: cfg)
        let fast = try Prediction(config: cfg, limitOnly: true)
        #expect(fast.z == full.z && fast.x == full.x)
        #expect(fast.report.gInf == full.report.gInf && fast.report.logRho == full.report.logRho)
        #expect(full.report.l1Min != nil && full.report.kernelPositive != nil && full.report.weightedL1Min != nil)
        #expect(fast.report.l1Min == nil && fast.report.kernelPositive == nil && fast.report.weightedL1Min == nil)
        #expect(fast.report.bounds.l1Gap == nil && fast.report.bounds.weightedGapBound == nil)
        let json = fast.json(config: cfg).serialized()
        #expect(json.contains("\"kernel_positive\": null") && json.contains("\"limit_only\": true"))
        #expect(full.json(config: cfg).serialized().contains("\"limit_only\": false"))
    }

    @Test("the comparison catches a wrong limit")
    func brokenLimitIsCaught() throws {
        let p = try Fixture.problem(m: 10, n: 20, depth: 2, seed: 5)
        let x0 = [Double](repeating: 0.02, count: p.n)
        let cfg = Fixture.config(p, flow: .gf, x0: x0)
        var sim = Simulation(config: cfg).run()
        let before = Verification.predictorComparisons(cfg, sim)
        #expect(!before.isEmpty && before.allSatisfy { $0.passed })
        // Move the limit within S₊'s kernel directions: still zero loss, wrong point.
        let proj = try KernelProjector(p.A)
        let d = proj.apply((0..<p.n).map { Double($0 % 3) - 1 })
        sim.z = zip(sim.z, d).map { $0 + 1e-6 * $1 }
        let reports = Verification.predictorComparisons(cfg, sim)
        #expect(reports.first { $0.name == "predict-limit" }?.passed == false)
    }

    @Test("L = 2 with log ρ = 100 predicts without overflow")
    func hugeMagnification() throws {
        let p = try Fixture.problem(m: 10, n: 25, depth: 2, seed: 9)
        let logX0 = (0..<p.n).map { _ in log(0.1) - 100 }
        let r = try LimitPredictor.gradientFlow(A: p.A, y: p.y, depth: 2, logX0: logX0)
        #expect(r.z.allSatisfy { $0.isFinite && $0 >= 0 })
        #expect(norm2(zip(p.A.multiply(r.z), p.y).map { $0 - $1 }) <= 1e-12 * norm2(p.y))
    }

    /// A helper's differential test against scipy's LP: the gap was Σ of the lifted (u^L, w^L)
    /// for signed problems (3.12 for z = (0.5, 0.5), Q = 1) and Σz without absolute values at
    /// depth 1 (−1e-16 for z = (1.5, −0.5), Q = 1).
    @Test("bounds.l1_gap is ‖z‖₁ − Q of the end-to-end z, signed and at depth 1; signed kernel probability is 1")
    func l1GapIsOfTheEndToEndZ() throws {
        func predict(_ text: String) throws -> Prediction { try Prediction(config: try SimulationConfig.parse(text)) }
        let signed = try predict(#"{"problem": {"A": [[1.0, 1.0]], "y": [1.0]}, "model": {"flow": "gf", "depth": 2, "signed": true}, "init": {"x0": [1.0, 1.0, 1.0, 1.0]}}"#)
        #expect(abs(signed.z[0] - 0.5) < 1e-12 && abs(signed.z[1] - 0.5) < 1e-12, "\(signed.z)")
        #expect(abs(try #require(signed.report.l1Min) - 1) < 1e-12)
        #expect(abs(try #require(signed.report.bounds.l1Gap)) < 1e-12, "\(String(describing: signed.report.bounds.l1Gap))")
        // [A, −A] meets the kernel assumption for every A: Cover's count for a 1×4 Gaussian (0.875) was reported.
        #expect(signed.report.bounds.kernelProbabilityGaussian == 1)
        let depth1 = try predict(#"{"problem": {"A": [[1.0, 1.0]], "y": [1.0]}, "model": {"flow": "gf", "depth": 1}, "init": {"x0": [2.0, 0.0]}}"#)
        #expect(abs(depth1.z[0] - 1.5) < 1e-12 && abs(depth1.z[1] + 0.5) < 1e-12, "\(depth1.z)")
        #expect(abs(try #require(depth1.report.bounds.l1Gap) - 1) < 1e-12, "\(String(describing: depth1.report.bounds.l1Gap))")
    }

    /// WN at L = 3 with c g₀² = 4.5e5 from above the solution (φ(g₀) < 0): the root lies
    /// 1.2e-7 below g₀ (log ρ = −0.104), and every g of the log-spaced scan below g₀ makes
    /// x₀/ρ(g) overflow the dual. The search for the nearest point that still evaluates
    /// stopped at 1e-3 of the interval (a relative 8e-4 from g₀) and the prediction failed
    /// (exit 3, "no root"); it now bisects to rounding width and finds the root that the
    /// integrated flow reaches.
    @Test("WN with a large c: a root just below g₀, past a stretch where the dual overflows")
    func rootNextToAnOverflowingStretch() throws {
        let cfg = try SimulationConfig.parse(#"{"problem": {"generate": {"M": 3, "N": 6, "sparsity": 2, "seed": 1}}, "model": {"flow": "wn", "depth": 3, "eta_g": 0.001}, "init": {"scale": 30, "direction": "uniform"}}"#)
        let pred = try Prediction(config: cfg)
        let g0 = norm2(cfg.x0), gInf = try #require(pred.report.gInf)
        #expect(gInf < g0 && gInf > g0 * (1 - 1e-6), "g∞ \(gInf), g₀ \(g0)")
        let run = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(run.status == .converged)
        #expect(relDiff(run.z, pred.z) < 1e-8, "\(relDiff(run.z, pred.z))")
        #expect(abs(try #require(run.g) - gInf) < 1e-10 * gInf)
        #expect(abs(try #require(run.logRho) - (try #require(pred.report.logRho))) < 1e-7)
    }

    @Test("an empty S₊ is a ConfigError naming the problem")
    func emptyFeasibleSet() throws {
        let a = Matrix(rowArrays: [[1, 1, 1]])!
        let p = try Problem(A: a, y: [-1], depth: 2)
        let cfg = Fixture.config(p, flow: .gf, x0: [0.1, 0.1, 0.1])
        #expect(throws: ConfigError.self) { _ = try Prediction(config: cfg) }
    }

    /// y = 0 at depth 1: g = ‖P_ker x₀‖/ρ(g) has a root only when c is large enough; without
    /// one the WN flow takes g → 0 (was exit 3, "may not converge to a zero-loss point").
    @Test("y = 0: depth-1 WN without a root and depth 2 are ConfigErrors naming y; depth 1 with a root predicts it")
    func zeroY() throws {
        func config(depth: Int, etaG: Double) throws -> SimulationConfig {
            try SimulationConfig.parse(#"{"problem": {"A": [[1.0, 2.0, 0.5], [0.3, -1, 2]], "y": [0.0, 0.0]}, "model": {"flow": "wn", "depth": \#(depth), "eta_g": \#(etaG)}, "init": {"x0": [0.3, -0.2, 0.1]}}"#)
        }
        func field(_ cfg: SimulationConfig) -> String? {
            do { _ = try Prediction(config: cfg, limitOnly: true); return nil } catch let e as ConfigError { return e.field } catch { return "\(error)" }
        }
        let noRoot = try config(depth: 1, etaG: 5)
        #expect(field(noRoot) == "config.problem.y")
        let run = Simulation(config: noRoot).run(recordTrajectory: false)
        let g1 = try #require(run.g)
        #expect(run.status == .converged && abs(g1) < 1e-100, "\(run.status) \(g1)")
        let withRoot = try config(depth: 1, etaG: 0.001)
        let pred = try Prediction(config: withRoot, limitOnly: true)
        let r2 = Simulation(config: withRoot).run(recordTrajectory: false)
        let (gRun, gPred) = (try #require(r2.g), try #require(pred.report.gInf))
        #expect(abs(gRun - gPred) < 1e-8, "\(gRun) vs \(gPred)")
        #expect(field(try config(depth: 2, etaG: 0.1)) == "config.problem.y")
    }
}

@Suite("Warnings for legal but suspect inputs")
struct WarningTests {
    @Test("kernel assumption failing, and WN with g₀ above g_∞, are reported")
    func suspectInputs() throws {
        let a = Matrix(rowArrays: [[1, 1, 1, 1], [1, -1, 0.5, 0]])!
        let p = try Problem(A: a, y: [1, 0.2], depth: 2)
        let cfg = Fixture.config(p, flow: .wn, x0: [0.8, 0.8, 0.8, 0.8], etaG: 0.5)
        let w = Verification.predictionWarnings(cfg)
        #expect(w.contains { $0.contains("kernel assumption") })
        #expect(w.contains { $0.contains("above the predicted g_∞") })
        // A problem meeting the assumption, started small: no warning.
        let q = try Fixture.problem(m: 8, n: 24, depth: 2, seed: 101)
        let ok = Fixture.config(q, flow: .wn, x0: [Double](repeating: 0.01, count: q.n))
        #expect(Verification.predictionWarnings(ok).isEmpty)
    }

    @Test("a negative start at depth ≥ 2 is a warning, not an error")
    func negativeStart() throws {
        let cfg = try SimulationConfig.parse(#"{"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": {"flow": "gf", "depth": 2}, "init": {"x0": [0.1, -0.1]}}"#)
        #expect(cfg.warnings.contains { $0.contains("non-positive") })
    }
}

@Suite("Every predictor comparison in verify fails on a wrong run")
struct PredictorComparisonBreakTests {
    /// A converged constant-rate WN run and its config.
    static func wnRun() throws -> (SimulationConfig, SimulationResult) {
        let p = try Fixture.problem(m: 8, n: 24, depth: 2, seed: 102)
        let cfg = Fixture.config(p, flow: .wn, x0: [Double](repeating: 0.02, count: p.n), etaG: 0.1)
        return (cfg, Simulation(config: cfg).run(recordTrajectory: false))
    }

    /// Signed WN at depth 4, η_g = 0.05, problem seed 4, with the given `init` object (`start`).
    static func signedDepthFour(m: Int, n: Int, sparsity: Int, start: String) throws -> SimulationConfig {
        try SimulationConfig.parse("""
        {"problem": {"generate": {"M": \(m), "N": \(n), "sparsity": \(sparsity), "seed": 4}},
         "model": {"flow": "wn", "depth": 4, "eta_g": 0.05, "signed": true},
         "init": \(start), "record": {"points": 0}}
        """)
    }

    static func verdict(_ name: String, _ cfg: SimulationConfig, _ r: SimulationResult) -> Bool? {
        Verification.predictorComparisons(cfg, r).first { $0.name == name }?.passed
    }

    @Test("the true run passes all five comparisons")
    func trueRunPasses() throws {
        let (cfg, r) = try Self.wnRun()
        for name in ["predict-limit", "predict-g-inf", "predict-log-rho", "bound-weighted-l1-gap", "bound-log-rho"] {
            #expect(Self.verdict(name, cfg, r) == true, "\(name)")
        }
    }

    @Test("a wrong g_∞ fails predict-g-inf; a wrong log ρ fails predict-log-rho and bound-log-rho")
    func wrongMagnification() throws {
        let (cfg, r) = try Self.wnRun()
        var g = r
        g.g = r.g! * (1 + 1e-5)
        #expect(Self.verdict("predict-g-inf", cfg, g) == false)
        var lr = r
        lr.logRho = r.logRho! - 1
        #expect(Self.verdict("predict-log-rho", cfg, lr) == false)
        #expect(Self.verdict("bound-log-rho", cfg, lr) == false)
    }

    @Test("predict-log-rho carries g's error through (2cg² − 1): a converged depth-4 run passes, log ρ moved by 10× the tolerance fails")
    func logRhoToleranceFollowsG() throws {
        let cfg = try Self.signedDepthFour(m: 10, n: 25, sparsity: 2,
                                           start: #"{"scale": 0.03, "direction": "abs-gaussian", "root_of_depth": true, "seed": 6}"#)
        let r = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(r.status == .converged)
        let report = try #require(Verification.predictorComparisons(cfg, r).first { $0.name == "predict-log-rho" })
        // Measured 1.1e-8 with g off by 3.2e-10 (κ·1e-8 = 3.6e-7; 1e-8 before κ).
        #expect(report.passed && report.tolerance > 1e-8, "\(report.maxViolation) vs \(report.tolerance)")
        var moved = r
        let lr = try #require(r.logRho)
        moved.logRho = lr + 10 * report.tolerance * max(1, abs(lr))
        #expect(Self.verdict("predict-log-rho", cfg, moved) == false)
    }

    @Test("depth 4 from 1e-3 (R = 3.3e7, support 2 < M): Newton with its own error estimate; the run passes, g or log ρ moved by 10× the widened tolerance fails")
    func predictorOwnErrorWidensTolerance() throws {
        let cfg = try Self.signedDepthFour(m: 10, n: 25, sparsity: 2, start: #"{"scale": 0.001, "direction": "uniform", "root_of_depth": true}"#)
        let pred = try Prediction(config: cfg, limitOnly: true).report.prediction
        // Past lostDigitsTolerance (p·ε·R = 1.4e-8) Newton still wins: the LP's dropped entries
        // (x_n ≈ 3e-4) moved g by 7.3e-7 (a false FAIL of verify before stop 21).
        #expect(pred.method == "dual-newton" && (pred.amplification ?? 0) > 1e7)
        let own = try #require(pred.errorEstimate)
        #expect(own.g > 1e-7 && own.g < 1e-5 && own.z < 1e-6, "\(own) kkt \(pred.kktResidual) iterations \(pred.iterations)")
        let r = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(r.status == .converged)
        let reports = Verification.predictorComparisons(cfg, r)
        for name in ["predict-limit", "predict-g-inf", "predict-log-rho"] {
            let rep = try #require(reports.first { $0.name == name })
            #expect(rep.passed, "\(name): \(rep.maxViolation) vs \(rep.tolerance)")
        }
        let gTol = try #require(reports.first { $0.name == "predict-g-inf" }).tolerance
        var moved = r
        moved.g = r.g! * (1 + 10 * gTol)
        #expect(Self.verdict("predict-g-inf", cfg, moved) == false)
        let lrTol = try #require(reports.first { $0.name == "predict-log-rho" }).tolerance
        moved = r
        moved.logRho = r.logRho! + 10 * lrTol * max(1, abs(r.logRho!))
        #expect(Self.verdict("predict-log-rho", cfg, moved) == false)
    }

    @Test("depth 5 from 1e-3 (R ≈ 3e10, straight to the LP): the reduced costs' estimate covers the LP's dropped entries; the run passes, g moved by 10× the widened tolerance fails, without the estimate it failed")
    func lpReducedCostEstimateWidensTolerance() throws {
        // M = 10, N = 25, η_g = 0.3: the LP sets 15 entries to 0 whose x ≈ 2.4e-4…3.3e-4 hold
        // 4.3e-7 of ‖x‖², so its g is 2.16e-7 low, above the rule's 1.0e-7 (a false FAIL of
        // `verify` in stop 22's deep sweep). The estimate reads that share as 4.3155e-7.
        let cfg = try Self.deepWN(depth: 5, m: 10, n: 25, sparsity: 2, etaG: 0.3, direction: "abs-gaussian")
        let pred = try Prediction(config: cfg, limitOnly: true).report.prediction
        #expect(pred.method == "weighted-l1-lp")
        let own = try #require(pred.errorEstimate)
        let r = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(r.status == .converged)
        let g = try #require(r.g), gPred = try #require(try Prediction(config: cfg, limitOnly: true).report.gInf)
        let missed = abs(g - gPred) / gPred
        // The estimate is twice what the LP misses in g (to leading order in 1/R).
        #expect(abs(own.g / (2 * missed) - 1) <= 0.05, "estimate \(own.g), missed \(missed)")
        let reports = Verification.predictorComparisons(cfg, r)
        for name in ["predict-limit", "predict-g-inf", "predict-log-rho"] {
            let rep = try #require(reports.first { $0.name == name })
            #expect(rep.passed && !rep.isMeasurement, "\(name): \(rep.maxViolation) vs \(rep.tolerance)")
        }
        let without = try #require(Verification.predictorComparisons(cfg, r, ownError: PredictionError(z: 0, g: 0))
            .first { $0.name == "predict-g-inf" })
        #expect(!without.passed, "\(without.maxViolation) vs \(without.tolerance)")
        let gTol = try #require(reports.first { $0.name == "predict-g-inf" }).tolerance
        var moved = r
        moved.g = g * (1 + 10 * gTol)
        #expect(Self.verdict("predict-g-inf", cfg, moved) == false)
    }

    /// WN from `(10⁻³ d)^{1/L}` on the grid of `Benchmarks/sweeps.py verify-deep` (problem seed 4,
    /// init seed 6).
    static func deepWN(depth: Int, m: Int, n: Int, sparsity: Int, etaG: Double,
                       direction: String = "uniform") throws -> SimulationConfig {
        try SimulationConfig.parse("""
        {"problem": {"generate": {"M": \(m), "N": \(n), "sparsity": \(sparsity), "seed": 4}},
         "model": {"flow": "wn", "depth": \(depth), "eta_g": \(etaG)},
         "init": {"scale": 0.001, "direction": "\(direction)", "root_of_depth": true, "seed": 6}, "record": {"points": 0}}
        """)
    }

    @Test("a degenerate LP vertex (depth 6, support 2 < M = 10): the estimate read from Newton at a moderate R covers the run's off-support share; without it predict-g-inf fails")
    func degenerateLPEstimateCoversTheRun() throws {
        let cfg = try Self.deepWN(depth: 6, m: 10, n: 25, sparsity: 2, etaG: 0.01)
        let prediction = try Prediction(config: cfg, limitOnly: true)
        #expect(prediction.report.prediction.method == "weighted-l1-lp")
        let own = try #require(prediction.report.prediction.errorEstimate)
        let r = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(r.status == .converged)
        let g = try #require(r.g), gPred = try #require(prediction.report.gInf)
        // The run's 23 entries off the LP's support hold 8.9e-6 of ‖x‖²: g is 4.47e-6 above
        // the LP's. The estimate (twice that, to leading order) measured 7.69e-6.
        let missed = (g - gPred) / gPred
        #expect(missed > 0 && own.g >= missed && own.g <= 3 * missed, "estimate \(own.g), missed \(missed)")
        let without = try #require(Verification.predictorComparisons(cfg, r, ownError: PredictionError(z: 0, g: 0))
            .first { $0.name == "predict-g-inf" })
        #expect(!without.passed, "\(without.maxViolation) vs \(without.tolerance)")
    }

    @Test("depth 5, M = 20, N = 60 (LP answer): g within 1e-8 of the run (the LP's rounding-level entries had moved it by 1e-7)")
    func lpRoundingEntriesDoNotMoveG() throws {
        let cfg = try Self.deepWN(depth: 5, m: 20, n: 60, sparsity: 3, etaG: 0.01)
        let r = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(r.status == .converged)
        let rep = try #require(Verification.predictorComparisons(cfg, r).first { $0.name == "predict-g-inf" })
        #expect(rep.passed && rep.maxViolation <= 1e-8, "\(rep.maxViolation) vs \(rep.tolerance)")
    }

    @Test("past lostDigitsTolerance an unconverged Newton answer is neither kept nor read: the LP answers with its duals' estimate")
    func unconvergedNewtonGivesNoEstimate() throws {
        // Signed WN, L = 4, M = 20, N = 60 from 1e-4: R = 3.5e12, Newton stopped at residual
        // 3.6e-3 with half of x below its residual's level, which had widened verify by 0.45.
        // The LP's vertex is degenerate; its estimate is read from Newton at a moderate
        // amplification (`offSupportRatios`): 1.7e-11 in g.
        let cfg = try Self.signedDepthFour(m: 20, n: 60, sparsity: 3, start: #"{"scale": 0.0001, "direction": "uniform", "root_of_depth": true}"#)
        let pred = try Prediction(config: cfg, limitOnly: true).report.prediction
        #expect(pred.method == "weighted-l1-lp", "\(pred.method)")
        let own = try #require(pred.errorEstimate)
        #expect(own.g < 1e-8 && own.z < 1e-12, "\(own)")
    }

    @Test("a prediction whose own error dwarfs the tolerance gives a measurement, not a verdict")
    func hugeOwnErrorIsNoVerdict() throws {
        let (cfg, r) = try Self.wnRun()
        var wrong = r
        wrong.g = r.g! * 1.5
        // Through the same path verify takes, with an own error forced far above the rule.
        let reports = Verification.predictorComparisons(cfg, wrong, ownError: PredictionError(z: 1, g: 1))
        let g = try #require(reports.first { $0.name == "predict-g-inf" })
        #expect(g.isMeasurement && g.value != nil)
        #expect(Self.verdict("predict-g-inf", cfg, wrong) == false)
    }

    @Test("depth 2 and ordinary depth 3 carry no widening: errorEstimate below 1e-12 / 1e-9")
    func ownErrorIsSmallWhereNewtonIsExact() throws {
        let (cfg, _) = try Self.wnRun()
        // Depth 2: only the rounding of log ρ (stop 25), a few ε·c(g² + g₀²).
        let e2 = try Prediction(config: cfg, limitOnly: true).report.prediction.errorEstimate
        // (g: z's part over L, since g∞ = ‖z∞^{1/L}‖, or the 4ε floor every estimate has.)
        let z2 = e2?.z ?? 0
        #expect(z2 < 1e-12 && (e2?.g ?? 0) <= PredictionError.roundingFloor + z2 / 2, "\(String(describing: e2))")
        let p3 = try Fixture.problem(m: 8, n: 24, depth: 3, seed: 102)
        let c3 = Fixture.config(p3, flow: .wn, x0: [Double](repeating: 0.3, count: p3.n), etaG: 0.1)
        let e3 = try #require(try Prediction(config: c3, limitOnly: true).report.prediction.errorEstimate)
        #expect(e3.z < 1e-9 && e3.g < 1e-9, "\(e3)")
    }

    @Test("error estimates are never below 4ε (the answer's own rounding)")
    func errorEstimateFloor() {
        let e = PredictionError(z: 9.4e-78, g: 0)
        #expect(e.z == PredictionError.roundingFloor && e.g == PredictionError.roundingFloor)
        let big = PredictionError(z: 1e-3, g: 2e-4)
        #expect(big.z == 1e-3 && big.g == 2e-4)
    }

    @Test("a limit with a larger weighted ℓ1 norm fails bound-weighted-l1-gap")
    func wrongWeightedGap() throws {
        let (cfg, r) = try Self.wnRun()
        let pred = try Prediction(config: cfg)
        let w = try #require(pred.report.weights)
        // Move mass onto the most expensive coordinate: the weighted gap grows
        // past the a-posteriori bound.
        var broken = r
        let k = w.indices.max { w[$0] < w[$1] }!
        let extra = 10 * (pred.report.bounds.weightedGapBound ?? 1) / w[k] + 1
        broken.x[k] = (r.x[k] * r.x[k] + extra).squareRoot()
        broken.z = cfg.problem.endToEnd(broken.x)
        #expect(Self.verdict("bound-weighted-l1-gap", cfg, broken) == false)
    }
}

@Suite("verify's hint when the run's own drift explains a predict-limit failure")
struct DriftHintTests {
    private func report(_ name: String, _ v: Double, _ tol: Double) -> CheckReport {
        CheckReport(name: name, maxViolation: v, tolerance: tol, passed: v <= tol, tWorst: 1, quantity: "")
    }

    @Test("the hint appears only when predict-limit fails and a passing invariant drifted past its tolerance")
    func hintOnlyWhenTheDriftExplainsIt() {
        let drifted = [report("lemma-3.9-effective-init", 4.2e-5, 3.8e-3), report("predict-limit", 1.8e-4, 6.5e-7)]
        let hint = Verification.driftHint(drifted)
        #expect(hint?.contains("lemma-3.9-effective-init") == true && hint?.contains("rtol") == true)
        // A drift below predict-limit's tolerance does not explain the failure.
        #expect(Verification.driftHint([report("lemma-3.9-effective-init", 1e-8, 3.8e-3),
                                        report("predict-limit", 1.8e-4, 6.5e-7)]) == nil)
        // A failing invariant is its own verdict; a passing predict-limit needs no hint.
        #expect(Verification.driftHint([report("lemma-3.9-effective-init", 4.2e-5, 1e-6),
                                        report("predict-limit", 1.8e-4, 6.5e-7)]) == nil)
        #expect(Verification.driftHint([report("lemma-3.9-effective-init", 4.2e-5, 3.8e-3),
                                        report("predict-limit", 1e-7, 6.5e-7)]) == nil)
    }
}

@Suite("Depth-1 WN whose g crosses 0: the mirrored root (docs/math.md §4c)")
struct NegativeBranchTests {
    /// M = 10, N = 25 from init 0.01: `abs-gaussian` seed 4 ends with g < 0, seed 1 with g > 0.
    static func config(initSeed: Int) throws -> SimulationConfig {
        try SimulationConfig.parse("""
        {"problem": {"generate": {"M": 10, "N": 25, "sparsity": 2, "seed": 3}},
         "model": {"flow": "wn", "depth": 1, "eta_g": 0.5},
         "init": {"scale": 0.01, "direction": "abs-gaussian", "seed": \(initSeed)}, "record": {"points": 0}}
        """)
    }

    @Test("a run whose g crosses 0 ends at negative_branch, and verify's comparisons pass on it")
    func negativeRunMatchesMirroredRoot() throws {
        let cfg = try Self.config(initSeed: 4)
        let r = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(r.status == .converged)
        let g = try #require(r.g)
        #expect(g < 0)
        let pred = try Prediction(config: cfg)
        let b = try #require(pred.negativeBranch)
        let gi = try #require(pred.report.gInf)
        #expect(b.gInf == -gi && b.logRho == pred.report.logRho)
        #expect(Fixture.relativeError(r.z, b.z) <= 1e-8, "\(Fixture.relativeError(r.z, b.z))")
        #expect(abs(g - b.gInf) <= 1e-8 * abs(b.gInf))
        // The g > 0 limit is another point of S with the same invariants.
        #expect(Fixture.relativeError(r.z, pred.z) > 0.1)
        let comparisons = Verification.predictorComparisons(cfg, r)
        #expect(comparisons.map(\.name).contains("predict-limit") && comparisons.map(\.name).contains("predict-g-inf"))
        for c in comparisons { #expect(c.passed, "\(c.name): \(c.maxViolation)") }
        let json = pred.json(config: cfg).serialized()
        #expect(json.contains("\"negative_branch\": {"))
    }

    @Test("the branch follows the run's sign: a g < 0 run at the g > 0 limit, or the reverse, fails")
    func wrongBranchIsCaught() throws {
        let cfg = try Self.config(initSeed: 4)
        let r = Simulation(config: cfg).run(recordTrajectory: false)
        let pred = try Prediction(config: cfg)
        var wrong = r
        wrong.z = pred.z
        wrong.x = pred.x
        #expect(PredictorComparisonBreakTests.verdict("predict-limit", cfg, wrong) == false)
        var flipped = r
        flipped.g = -r.g!
        #expect(PredictorComparisonBreakTests.verdict("predict-limit", cfg, flipped) == false)

        let up = try Self.config(initSeed: 1)
        let rp = Simulation(config: up).run(recordTrajectory: false)
        #expect(rp.status == .converged && rp.g! > 0)
        #expect(Verification.predictorComparisons(up, rp).allSatisfy { $0.passed })
        let predUp = try Prediction(config: up)
        var mirrored = rp
        mirrored.z = try #require(predUp.negativeBranch).z
        #expect(PredictorComparisonBreakTests.verdict("predict-limit", up, mirrored) == false)
    }

    @Test("negative_branch is null at depth 2 and for the time-dependent rate")
    func onlyDepthOneConstantRate() throws {
        let p = try Fixture.problem(m: 8, n: 24, depth: 2, seed: 102)
        let cfg = Fixture.config(p, flow: .wn, x0: [Double](repeating: 0.02, count: p.n), etaG: 0.1)
        let pred = try Prediction(config: cfg, limitOnly: true)
        #expect(pred.negativeBranch == nil)
        #expect(pred.json(config: cfg).serialized().contains("\"negative_branch\": null"))
        let p1 = try Fixture.problem(m: 8, n: 24, depth: 1, seed: 102)
        let td = Fixture.config(p1, flow: .wnTimeDependent, x0: [Double](repeating: 0.02, count: p1.n))
        #expect(try Prediction(config: td, limitOnly: true).negativeBranch == nil)
    }
}

/// Stop 25 (a differential-testing helper ran 1,399 random cases): three ways `verify` failed a
/// correct, converged run, and the guard that keeps the new allowance away from a saddle.
@Suite("verify on correct runs at the edges of double precision")
struct VerifyPrecisionEdgeTests {
    static func checks(_ text: String) throws -> (SimulationResult, [String: CheckReport]) {
        let cfg = try SimulationConfig.parse(text)
        let r = Verification.run(config: cfg)
        return (r.result, Dictionary(r.reports.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a }))
    }

    /// GF from x₀ = 300: Σ|Ã||x²| ≈ 6000 against ‖y‖ = 0.73, so the plain residual's rounding
    /// (1.7e-12‖y‖) exceeded the 1e-12‖y‖ the run had reached; result.json's loss read 7.5e-25
    /// for 2.2e-25. The compensated residual agrees with one in Float80 (on x86).
    @Test("limit-residual and the reported loss are computed compensated")
    func compensatedResidual() throws {
        let (result, r) = try Self.checks(#"{"problem": {"generate": {"M": 11, "N": 26, "sparsity": 5, "seed": 2}}, "model": {"flow": "gf", "depth": 2}, "init": {"scale": 300, "direction": "abs-gaussian", "seed": 1}}"#)
        let cfg = try SimulationConfig.parse(#"{"problem": {"generate": {"M": 11, "N": 26, "sparsity": 5, "seed": 2}}, "model": {"flow": "gf", "depth": 2}, "init": {"scale": 300, "direction": "abs-gaussian", "seed": 1}}"#)
        #expect(result.status == .converged)
        #expect(result.loss <= cfg.lossThreshold, "loss \(result.loss) above \(cfg.lossThreshold)")
        #expect(r["limit-residual"]?.passed == true, "\(String(describing: r["limit-residual"]))")
        let p = cfg.problem
        let accurate = p.accurateResidual(result.x), plain = p.residual(result.x)
        #if arch(x86_64)
        let a = p.matrix
        let exact: [Double] = (0..<a.rows).map { i in
            var s = Float80(-p.y[i])
            for j in 0..<a.cols { let x = Float80(result.x[j]); s += Float80(a.storage[i * a.cols + j]) * x * x }
            return Double(s)
        }
        let err = zip(accurate, exact).map { abs($0 - $1) }.max()!, plainErr = zip(plain, exact).map { abs($0 - $1) }.max()!
        let size = exact.map(abs).max()!
        #expect(err <= 1e-3 * size, "compensated off by \(err) on a residual of \(size)")
        #expect(plainErr > 10 * err, "the plain sum (off by \(plainErr)) should be the worse one here")
        #endif
        // trajectory.csv's last row (the final state) reports the same loss as result.json; the
        // plain sum there is off by more than 2×, and early rows (loss far above the rounding)
        // stay the plain sum bit for bit.
        let rows = result.trajectory
        let last = try #require(rows.last)
        #expect(abs(last.loss - result.loss) <= 1e-3 * result.loss, "last row \(last.loss), result \(result.loss)")
        #expect(abs(p.loss(result.x) - result.loss) > result.loss, "the plain loss \(p.loss(result.x)) should be off here")
        let first = try #require(rows.first)
        #expect(first.loss == p.loss(first.x))
    }

    /// WN at L = 3 with 2cg² = 2.9e4: log ρ rounds to about that times ε, and z with it; run
    /// and prediction differed by 6.8e-12 at every rtol from 1e-12 to 1e-14 and under four
    /// methods, against a rule tolerance of 1.1e-12 at rtol 1e-14. The predictor's own error
    /// now carries that floor.
    @Test("predict-limit allows the rounding of log ρ")
    func logRhoRoundingFloor() throws {
        let (result, r) = try Self.checks(#"{"problem": {"generate": {"M": 11, "N": 30, "sparsity": 5, "seed": 211208, "l1_norm": 1.0}}, "model": {"flow": "wn", "depth": 3, "eta_g": 0.3, "eta_v": 2.0}, "init": {"x0": [1.56873594819694, 0.5677726684504385, 0.6670917632874577, 1.4169139596479579, 1.2391103031457944, 0.37485880951013417, 1.5114194272301278, 0.22266334595627094, 0.5570430700724622, 1.673243906375313, 0.24010665679326246, 1.2883519727454324, 0.37428588610368496, 0.3193731473976587, 1.673110827455854, 1.7886124537896977, 1.7338536555396056, 0.6065851920613725, 1.849058523901462, 0.5162323785877138, 1.9753302702867475, 0.43105179296731155, 0.12470827336548498, 1.3384790665657544, 1.8016008579774683, 1.6022035241086268, 0.3796645881560434, 1.5524420938511558, 0.9509022643906614, 1.1744124808987908], "v_norm": 0.1}, "integrator": {"rtol": 1e-14, "method": "bsimp"}}"#)
        #expect(result.status == .converged)
        let c = try #require(r["predict-limit"])
        #expect(c.passed && !c.isMeasurement, "\(c)")
        #expect(c.quantity.contains("predictor's own error"))
    }

    /// GF at rtol 1e-14 (bdf, kernel assumption failing, t = 5.5e9): run and prediction differ
    /// by 3.4e-11, against a rule tolerance of 1.7e-11, and the whole difference is the
    /// distance the stop residual leaves: `stopDistance` predicts it to 4 digits.
    @Test("predict-limit allows the distance the stop residual leaves, and that estimate is right")
    func stopResidualDistance() throws {
        let text = #"{"problem": {"generate": {"M": 11, "N": 26, "sparsity": 5, "seed": 666321}}, "model": {"flow": "gf", "depth": 2}, "init": {"x0": [0.0018149787954553323, 0.0013386319695668062, 0.0009851551036126316, 0.0011076044253481541, 0.000778014288756232, 0.0019212240175296165, 0.0018458575944628377, 0.001374110472306516, 0.0010713111677830998, 0.0007461125750050131, 0.0009317850679970477, 0.0016516380813484067, 0.001196697894757749, 0.0007952757060471798, 0.000537775719156377, 0.0019247279237916545, 0.0006124261435486374, 0.00022140516643741966, 0.0010593023229498503, 0.0018936397175725408, 0.0003933649364424492, 0.0006339415262043387, 0.0006141905972105324, 0.00017663837186460507, 0.0013701527502445992, 0.0009098988197388385]}, "integrator": {"rtol": 1e-14, "method": "bdf"}}"#
        let (result, r) = try Self.checks(text)
        #expect(result.status == .converged)
        let c = try #require(r["predict-limit"])
        #expect(c.passed && c.quantity.contains("for the residual the run stopped at"), "\(c)")
        let cfg = try SimulationConfig.parse(text)
        let pred = try Prediction(config: cfg)
        let estimate = try #require(Verification.stopDistance(cfg.problem, x: result.x)) / norm2(pred.z)
        #expect(abs(estimate - c.maxViolation) <= 0.1 * c.maxViolation, "estimate \(estimate), measured \(c.maxViolation)")
    }

    /// A run that stops by stop.speed_below at a saddle (loss 0.14) is "converged" by that rule:
    /// it gets a warning, and the residual allowance of predict-limit (a linearized step, which
    /// here would be 2) is not applied: the comparison fails as it should.
    @Test("a saddle stopped by speed_below is warned about and still fails predict-limit")
    func saddleNotExcused() throws {
        let (result, r) = try Self.checks(#"{"problem": {"generate": {"M": 20, "N": 21, "sparsity": 5, "seed": 905408}}, "model": {"flow": "wn", "depth": 5, "signed": true, "eta_g": 1}, "init": {"x0": [0.003155508124857622, 0.019043041360190457, 0.005084694145584654, 0.014660554758208202, 0.004046413313021241, 0.0052319153845971356, 0.008225790633497203, 0.019088333607048705, 0.011845936449429393, 0.007603459977310983, 0.012092777275079108, 0.01390840581147125, 0.01369366569535209, 0.0052375532410450345, 0.013818667183171074, 0.018026973819332933, 0.013851335060357585, 0.0020495194445158222, 0.01430233862263842, 0.013638495539231832, 0.018271699444449372, 0.017486561024233443, 0.01707232406992872, 0.017923092161045612, 0.01562299381301099, 0.007188531983615904, 0.00968981646906918, 0.006586914652203638, 0.0019212712209878144, 0.005458769622009936, 0.007952274409407227, 0.0027909062539462747, 0.01558035397855965, 0.013721579780177073, 0.0016056201743180876, 0.012329217682703135, 0.017703226716774365, 0.0021911083754340647, 0.009729800698482508, 0.019902380514584313, 0.005278679565423511, 0.003089624851639102]}, "integrator": {"rtol": 1e-10, "stop": {"speed_below": 1e-14}}}"#)
        #expect(result.status == .converged && result.loss > 0.1)
        #expect(result.warnings.contains { $0.contains("stop.speed_below") && $0.contains("saddle") })
        let c = try #require(r["predict-limit"])
        #expect(!c.passed && c.tolerance < 1e-6, "\(c)")
    }
}

/// At even depth the loss and both flows commute with flipping an entry's sign, so predict
/// takes a mixed-sign start as |x₀| and gives x₀'s signs back (stop 29; before, exit 2).
/// The integrated flow from the mixed start lands on that prediction; at odd depth, or with
/// a zero entry, the start stays bad input.
struct MixedSignPredictionTests {
    static func config(flow: String, depth: Int, x0: [Double]) throws -> SimulationConfig {
        try SimulationConfig.parse("""
        {"problem": {"generate": {"M": 5, "N": 12, "sparsity": 2, "seed": 7}},
         "model": {"flow": "\(flow)", "depth": \(depth), "eta_g": 0.2},
         "init": {"x0": [\(x0.map { JSON.format($0) }.joined(separator: ", "))]},
         "integrator": {"rtol": 1e-11}, "record": {"points": 0}}
        """)
    }

    @Test(arguments: [("gf", 2), ("gf", 4), ("wn", 2), ("wn-timedep", 2)])
    func evenDepthPredictsFromTheAbsoluteStart(_ c: (String, Int)) throws {
        let x0 = (0..<12).map { 0.05 + 0.01 * Double($0) }
        var mixed = x0
        for i in [1, 4, 9] { mixed[i] = -mixed[i] }
        let p = try Prediction(config: try Self.config(flow: c.0, depth: c.1, x0: x0))
        let cfg = try Self.config(flow: c.0, depth: c.1, x0: mixed)
        let q = try Prediction(config: cfg)
        #expect(q.z == p.z)
        #expect(q.x == zip(p.x, mixed).map { $1 < 0 ? -$0 : $0 })
        #expect(q.report.gInf == p.report.gInf)
        let run = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(run.status == .converged)
        #expect(relDiff(run.x, q.x) < 1e-6, "\(relDiff(run.x, q.x))")
    }

    @Test func oddDepthAndZerosStayBadInput() throws {
        var mixed = (0..<12).map { 0.05 + 0.01 * Double($0) }
        mixed[2] = -mixed[2]
        #expect(throws: ConfigError.self) { try Prediction(config: try Self.config(flow: "gf", depth: 3, x0: mixed)) }
        mixed[2] = 0
        #expect(throws: ConfigError.self) { try Prediction(config: try Self.config(flow: "gf", depth: 2, x0: mixed)) }
    }
}

/// WN with v much faster than g (c·g₀²·ε = 0.011 at depth 3, 6.8 at depth 1): g_∞ lands
/// within rounding of g₀, where one ulp of g moves log ρ by 2cg²·ulp(g), so the root search
/// in g could not place log ρ (z 0.65 and 2.6e9 off the integrated limits, with estimates
/// 0.089 and 55), or found no root at all. log ρ is now solved from ‖X(ℓ)‖ = g₀ − ℓ/(2cg₀)
/// in ℓ itself; without that solve (`polish: false`) the answer is as far off, or missing,
/// as before.
struct UnresolvedMagnificationTests {
    /// (depth, η_g, ‖v₀‖): c·g₀²·ε = 0.011 and 6.8 (answers far off), and 550 at depths 1 and 3
    /// (the scan found no root: exit 3).
    @Test(arguments: [(3, 10.0, 1e-5), (1, 1e-4, 9e-5), (1, 1e-4, 1e-5), (3, 1e-4, 1e-5)])
    func rootWithinRoundingOfG0IsSolvedInLogRho(_ c: (Int, Double, Double)) throws {
        let cfg = try SimulationConfig.parse("""
        {"problem": {"generate": {"M": 8, "N": 20, "sparsity": 2, "l1_norm": 1.0, "seed": 3}},
         "model": {"flow": "wn", "depth": \(c.0), "eta_g": \(JSON.format(c.1)), "eta_v": 1000.0},
         "init": {"scale": 10, "direction": "abs-gaussian", "seed": 5, "v_norm": \(JSON.format(c.2))}}
        """)
        let p = try Prediction(config: cfg)
        let run = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(run.status == .converged)
        #expect(relDiff(p.z, run.z) < 1e-8, "\(relDiff(p.z, run.z))")
        #expect(!p.report.warnings.contains { $0.contains("cannot place it") })
        let prob = cfg.problem
        let x0 = cfg.x0
        let unpolished = try? WeightNormLimit.constantRate(A: prob.matrix, y: prob.y, depth: c.0, x0: x0, etaG: c.1, etaV: 1000,
                                                           vNorm: c.2, scanPoints: 24, chordShortcut: true, polish: false)
        #expect(unpolished.map { relDiff($0.z, run.z) > 1e-2 } ?? true)
    }
}
