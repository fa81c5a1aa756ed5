import Foundation
import GSLKit
import Testing
@testable import WNFlow

/// Tests that kill the survivors of stop 31's mutation audit (21 single mutations of the flows,
/// the monitor, the predictor and GD/WN-GD; 14 were caught): each fails under its mutation.
@Suite("Mutation audit: gaps closed")
struct MutationAuditTests {
    /// Lemma 3.3: an entry that starts at 0 must stay 0 (a mutation that dropped the `−|v|`
    /// for zero starts passed every test).
    @Test("Lemma 3.3 fails when an entry that started at 0 moves off it")
    func zeroEntryThatMovesFails() throws {
        let p = try Fixture.problem(m: 6, n: 12, depth: 2)
        var y0 = Fixture.positivePoint(12, seed: 3, scale: 0.3)
        y0[2] = 0
        let check = Lemma33Sign(context: try MonitorContext(flow: GradientFlow(problem: p)),
                                rule: ToleranceRule(rtol: 1e-10, atol: 1e-14, stateScale: y0.map(abs).max()!, dimension: 12))
        var y1 = y0
        y1[2] = 1e-3
        for (k, y) in [y0, y1].enumerated() {
            _ = y.withUnsafeBufferPointer { check.observe(AcceptedStep(t: Double(k), y: $0, h: Double(k), saveIndex: nil, stepNumber: k)) }
        }
        let r = check.report()
        #expect(!r.passed && r.maxViolation > 1e-3, "\(r.maxViolation) vs \(r.tolerance)")
    }

    /// Lemma 3.5's roundoff floor must stay at the loss's rounding: weights of size 1e6 along
    /// ker A and a rise of 1.5e-6 (‖e‖ 1e-3 → 2e-3), about 1e5× that floor (a 1e6× looser
    /// floor passed every test, whose rises were of the loss's own size).
    @Test("Lemma 3.5 fails on a rise far above the roundoff of large weights")
    func riseFarAboveRoundoffFails() throws {
        let p = try Fixture.problem(m: 6, n: 12, depth: 1)
        let svd = try SVD(p.matrix)
        let xs = svd.pseudoInverseApply(p.y)
        let k = try KernelProjector(p.matrix).apply([Double](repeating: 1, count: 12))
        let kn = norm2(k)
        var u = [Double](repeating: 0, count: 6)
        u[0] = 1
        let d = svd.pseudoInverseApply(u)
        func x(_ s: Double) -> [Double] { (0..<12).map { xs[$0] + 1e6 * k[$0] / kn + s * d[$0] } }
        let x0 = x(1e-3), x1 = x(2e-3)
        let check = Lemma35MonotoneLoss(context: try MonitorContext(flow: GradientFlow(problem: p)),
                                        rule: ToleranceRule(rtol: 1e-10, atol: 1e-14, stateScale: x0.map(abs).max()!, dimension: 12))
        for (i, y) in [x0, x1].enumerated() {
            _ = y.withUnsafeBufferPointer { check.observe(AcceptedStep(t: Double(i), y: $0, h: Double(i), saveIndex: nil, stepNumber: i)) }
        }
        let r = check.report()
        #expect(!r.passed, "\(r.maxViolation) vs \(r.tolerance)")
    }

    /// GD honours max_steps exactly (a mutation ran one step more).
    @Test("GD stops at max_steps: 5 iterations, t = 5μ")
    func gdStopsAtMaxSteps() throws {
        let r = Simulation(config: try SimulationConfig.parse(#"{"problem": {"A": [[1.0]], "y": [1.0]}, "model": {"flow": "gd", "depth": 2, "step": 0.1}, "init": {"x0": [0.5]}, "integrator": {"t_end": 100, "max_steps": 5}}"#)).run()
        #expect(r.status == .maxSteps && r.stats.acceptedSteps == 5 && abs(r.t - 0.5) < 1e-12, "\(r.status) \(r.stats.acceptedSteps) \(r.t)")
    }

    /// A hair above the stable step (depth 1, μ = 2.0002) the loss rises by 4e-4 relative per
    /// step: named as rises, with "lower model.step" (a 1e6× looser rise tolerance saw none
    /// and advised a larger t_end).
    @Test("GD: a slow genuine rise is named")
    func gdSlowRiseIsNamed() throws {
        let r = Simulation(config: try SimulationConfig.parse(#"{"problem": {"A": [[1.0]], "y": [1.0]}, "model": {"flow": "gd", "depth": 1, "step": 2.0002}, "init": {"x0": [1.5]}, "integrator": {"t_end": 400.04}}"#)).run()
        #expect((r.message ?? "").contains("the loss rose at"), "\(r.message ?? "nil")")
    }

    /// GD's iterate k sits at t = kμ exactly, with no accumulated rounding (a mutation that
    /// summed t + μ lost the last of 10,000 iterates of 0.1).
    @Test("GD: 10,000 steps of 0.1 end at t = 1000 exactly")
    func gdTimeIsOnTheGrid() throws {
        let r = Simulation(config: try SimulationConfig.parse(#"{"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": {"flow": "gd", "depth": 2, "step": 0.1}, "init": {"x0": [0.3, 0.3]}, "integrator": {"t_end": 1000, "stop": {"loss_below": 1e-300}}}"#)).run()
        #expect(r.stats.acceptedSteps == 10000 && r.t == 10000 * 0.1, "\(r.stats.acceptedSteps) \(r.t)")
    }

    /// The weight-space WN right-hand side at ‖v₀‖ ≠ 1 (a mutation dividing v' by ‖v‖² instead
    /// of ‖v‖ was caught only by the Jacobian's finite differences, `auto` running depth 2 in
    /// dual coordinates): under bdf from ‖v₀‖ = 2 Lemma 3.8, whose c = η_v/(2η_g‖v₀‖²) the
    /// flow must keep, passes, and the limit is `predict`'s.
    @Test("WN in weight space from ‖v₀‖ = 2: Lemma 3.8 and predict's limit hold")
    func weightSpaceWNAtAnotherVNorm() throws {
        let cfg = try SimulationConfig.parse(#"{"problem": {"generate": {"M": 6, "N": 14, "sparsity": 2, "seed": 5}}, "model": {"flow": "wn", "depth": 2, "eta_g": 0.2}, "init": {"scale": 0.3, "direction": "abs-gaussian", "seed": 5, "v_norm": 2}, "integrator": {"method": "bdf"}, "record": {"points": 0}}"#)
        let v = Verification.run(config: cfg)
        let byName = Dictionary(v.reports.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for name in ["lemma-3.8-invariant", "lemma-3.9-effective-init", "predict-limit", "predict-log-rho"] {
            let r = try #require(byName[name], "\(name) missing")
            #expect(r.passed && !r.isMeasurement, "\(name): \(r.maxViolation) vs \(r.tolerance)")
        }
    }
}
