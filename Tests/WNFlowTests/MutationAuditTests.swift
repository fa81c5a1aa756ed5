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

/// Stop 31's second mutation audit (23 mutants of the BDF control, the dual solver, the L ≥ 3
/// predictor, the bounds, signed handling, ZeroLossSet and resume; 15 caught): tests that
/// kill four survivors (N16, N19, N20, N21), and two regression tests for survivors no test
/// told apart (N09, N23: likely equivalent on these problems).
@Suite("Mutation audit, round 2: gaps closed")
struct MutationAuditRound2Tests {
    static func gaussianProblem(_ rng: RNG, m: Int, n: Int, s: Int) -> (A: Matrix, y: [Double]) {
        let a = Matrix(rows: m, cols: n, storage: rng.gaussians(m * n).map { $0 / Double(m).squareRoot() })!
        var z = [Double](repeating: 0, count: n)
        for j in rng.choose(s, from: n) { z[j] = 0.1 + rng.uniform() }
        return (a, a.multiply(z))
    }

    /// N09 (a regression test; the mutant was not told apart): the amplification R = max (x_n/x̃₀,n)^{L−2} is taken over the numerical support
    /// (z ≥ 1e-8·max z), not only over the entries near the top of z.
    @Test func probeAmplificationCoversTheWholeSupport() throws {
        var differs = 0
        for seed in 1...6 {
            let rng = RNG(seed: UInt(seed))
            let p = Self.gaussianProblem(rng, m: 8, n: 20, s: 3)
            // A start spread over four decades, so the entry that grows most need not be the largest.
            let logX0 = (0..<20).map { _ in log(0.05) - 4 * log(10) * rng.uniform() }
            for depth in [3, 4] {
                var warm: [Double]? = nil
                let r = try LimitPredictor.power(A: p.A, y: p.y, depth: depth, logX0: logX0, warmStart: &warm)
                guard r.method == "dual-newton", let lx = r.logX, let amp = r.amplification else { continue }
                let zmax = r.z.max() ?? 0
                var expected = 0.0
                for j in 0..<20 where r.z[j] >= 1e-8 * zmax {
                    expected = max(expected, exp(Double(depth - 2) * (lx[j] - logX0[j])))
                }
                #expect(abs(amp / expected - 1) <= 1e-6, "seed \(seed) L = \(depth): R \(amp) vs \(expected)")
                if abs(amp / expected - 1) > 1e-6 { differs += 1 }
            }
        }
    }

    /// N20: Lawson–Hanson must not stop while a column of small norm still lowers the residual.
    @Test func probeNNLSKeepsATinyColumn() throws {
        let a = try #require(Matrix(rowArrays: [[1, 0], [0, 1e-4]]))
        let z = try #require(ZeroLossSet.nonNegativeLeastSquares(a, [1, 1e-4]))
        #expect(abs(z[0] - 1) <= 1e-12 && abs(z[1] - 1) <= 1e-9, "\(z)")
    }

    /// N23 (a regression test; the mutant was not told apart): Lawson–Hanson on random problems whose passive-set solves go negative: the answer
    /// meets the KKT conditions of min ‖Az − y‖ over z ≥ 0.
    @Test func probeNNLSMeetsKKTOnRandomProblems() throws {
        var inner = 0
        for seed in 1...20 {
            let rng = RNG(seed: UInt(100 + seed))
            let m = 8, n = 6
            let a = Matrix(rows: m, cols: n, storage: rng.gaussians(m * n))!
            let y = rng.gaussians(m)
            let z = try #require(ZeroLossSet.nonNegativeLeastSquares(a, y), "seed \(seed)")
            let r = zip(y, a.multiply(z)).map { $0 - $1 }
            let w = a.multiplyTransposed(r)
            let scale = a.multiplyTransposed(y).map(abs).max() ?? 1
            #expect(z.allSatisfy { $0 >= 0 }, "seed \(seed): \(z)")
            for j in 0..<n {
                if z[j] > 0 {
                    #expect(abs(w[j]) <= 1e-9 * scale, "seed \(seed): z_\(j) = \(z[j]) > 0 but gradient \(w[j])")
                } else {
                    #expect(w[j] <= 1e-9 * scale, "seed \(seed): z_\(j) = 0 but gradient \(w[j]) > 0")
                }
            }
            if z.filter({ $0 > 0 }).count >= 2 { inner += 1 }
        }
        #expect(inner > 0)
    }

    /// N21: y ∉ range A (depth 1): the lowest loss is ½‖AA⁺y − y‖², not ‖·‖².
    @Test func probeMinimumLossIsHalfTheSquaredResidual() throws {
        let tall = try ZeroLossSetTests.config(columns: 5, depth: 1)
        guard case let .empty(_, least?) = ZeroLossSet.find(problem: tall.problem, x0: tall.x0) else {
            Issue.record("not empty"); return
        }
        let a = tall.problem.matrix, y = tall.problem.y
        let pinv = try SVD(a).pseudoInverseApply(y)
        let r = residualNorm(a, pinv, y)
        #expect(abs(least - 0.5 * r * r) <= 1e-10 * least, "\(least) vs \(0.5 * r * r)")
    }

    /// N16: the L ≥ 3 gap bound for normalized weights is κ·(L/2)(Σ z_∞^{2/L} − Σ z_w^{2/L}),
    /// κ = exp(−logFactor); from a start above 1 (logFactor < 0) the gap must stay below it.
    @Test func probePowerGapBoundFromALargeStart() throws {
        for seed in [4, 9] {
            let rng = RNG(seed: UInt(seed))
            let p = Self.gaussianProblem(rng, m: 12, n: 30, s: 4)
            let x0 = (0..<30).map { _ in 3 + 5 * rng.uniform() }
            for depth in [3, 4] {
                let r = try Theory.report(A: p.A, y: p.y, depth: depth, x0: x0, flow: .gf, signed: false)
                let gap = try #require(r.bounds.weightedGap), bound = try #require(r.bounds.weightedGapBound)
                #expect(gap <= bound + 1e-9 * abs(r.weightedL1Min ?? 1), "seed \(seed) L=\(depth): gap \(gap) > bound \(bound)")
                #expect(gap > 1e-6 * bound, "seed \(seed) L=\(depth): gap \(gap) bound \(bound)")
            }
        }
        // And the normalization itself.
        #expect(abs(Bounds.powerGapBound(zInf: [1], zW: [0], depth: 4, logFactor: 1) - 2 * exp(-1.0)) <= 1e-15)
    }

    /// N19: a signed problem's point of S₊ (the split of A⁺y) solves Ãz = y with Ã = [A, −A].
    @Test func probeSignedZeroLossPointSolvesTheProblem() throws {
        let signed = try ZeroLossSetTests.config(columns: 25, signed: true)
        guard case let .point(z, _) = ZeroLossSet.find(problem: signed.problem, x0: signed.x0) else {
            Issue.record("no signed point"); return
        }
        let p = signed.problem
        #expect(z.allSatisfy { $0 >= 0 })
        #expect(residualNorm(p.matrix, z, p.y) <= 1e-10 * norm2(p.y), "\(residualNorm(p.matrix, z, p.y))")
    }
}

/// Stop 32's mutation audit (55 mutants of the day's new code, 36 caught by the tests then):
/// each test fails under its mutation.
struct AuditStop32Tests {
    private func config(depth: Int) -> String {
        #"{"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": {"flow": "gf", "depth": \#(depth)}, "init": {"x0": [0.6, 0.7]}}"#
    }

    @Test func depthCapIsInclusive() throws {
        #expect(try SimulationConfig.parse(config(depth: ModelSpec.maxDepth)).model.depth == 10_000)
        #expect { try SimulationConfig.parse(config(depth: ModelSpec.maxDepth + 1)) } throws: {
            ($0 as? ConfigError)?.description.contains("config.model.depth") == true
        }
    }

    @Test func g0AloneIsNotAStart() throws {
        let text = #"{"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": {"flow": "wn", "depth": 2}, "init": {INIT}}"#
        #expect(try SimulationConfig.parse(text.replacingOccurrences(of: "INIT", with: #""g0": 0.5, "v0": [1, 1]"#)).x0.count == 2)
        #expect { try SimulationConfig.parse(text.replacingOccurrences(of: "INIT", with: #""g0": 0.5"#)) } throws: {
            ($0 as? ConfigError)?.description.contains(#"or both "g0" and "v0""#) == true
        }
    }

    @Test func dualRefusesMByMWorkBeyondMemory() throws {
        let cfg = #"{"problem": {"generate": {"M": 200000, "N": 20, "sparsity": 3, "seed": 5}}, "model": {"flow": "gf", "depth": 2}, "init": {"scale": 0.1}, "integrator": {"method": "dual"}}"#
        #expect { try SimulationConfig.parse(cfg) } throws: {
            let d = ($0 as? ConfigError)?.description ?? ""
            return d.contains("config.integrator.method") && d.contains("M × M")
        }
        // bdf and rosenbrock keep a Woodbury capacitance of (M + 32)² entries.
        for method in ["bdf", "rosenbrock"] {
            #expect { try SimulationConfig.parse(cfg.replacingOccurrences(of: "\"dual\"", with: "\"\(method)\"")) } throws: {
                let d = ($0 as? ConfigError)?.description ?? ""
                return d.contains("config.integrator.method") && d.contains("Woodbury")
            }
        }
    }

    private func row(_ flow: String, _ L: Int, _ d: String, _ i: Int, _ e: Double, _ status: String) throws -> FigureRow {
        try #require(FigureRow(line: try JSON.parse("""
        {"params": {"figure": "figure4", "flow": "\(flow)", "depth": \(L), "alpha": 0.01, "eta": 0.05,
         "direction": "\(d)", "instance": \(i), "seed": 1},
         "rec_error": \(e), "loss": 1e-3, "status": "\(status)", "stats": {"rhs_evals": 10}}
        """)))
    }

    @Test func lowerWhiskerFallsBackWhenTheSmallestErrorIsZero() throws {
        let p = PointStat(x: 0.01, rows: try [0.0, 0.0, 0.9].enumerated().map { try row("wn", 2, "uniform", $0, $1, "converged") })
        #expect(p.mean - p.sd <= 0 && p.minimum == 0)
        #expect(FigureReport.lowerWhisker(p) == p.mean / 1000)
    }

    @Test func gainLabelCountsBothSeries() throws {
        var rows: [FigureRow] = []
        for (k, (d, L)) in [("abs-gaussian", 2), ("abs-gaussian", 3), ("uniform", 2), ("uniform", 3)].enumerated() {
            for i in 0..<3 {
                for flow in ["gf", "wn"] {
                    rows.append(try row(flow, L, d, i, flow == "gf" ? 0.3 : 1e-3, k == 1 && i == 0 && flow == "wn" ? "t_end" : "converged"))
                }
            }
        }
        let marks = FigureReport(figure: .figure4, settings: .tiny, rows: rows).gnuplotScript(base: "/tmp/f4")
            .components(separatedBy: "\n").filter { $0.contains("not conv.") }
        #expect(marks.filter { $0.contains("\"1/6 not conv.\"") }.count == 2
                && marks.filter { $0.contains("\"1/3 not conv.\"") }.count == 2, "\(marks)")
    }

    @Test func exampleShortHelpAndEmptyFolder() throws {
        #expect(try ExampleArguments.parse(usage: "example-x [--fast]", arguments: ["-h"], environment: [:]).help)
        let (path, error) = ExampleArguments.preparedFolder("")
        #expect(path == nil && error?.contains("OUT_DIR is empty") == true, "\(error ?? "")")
    }
}

/// A start entry at 5e-324 at depth 3 (weights x̃₀^{2−L} spanning 320 decades): predict went
/// power → weighted-ℓ1 LP → off-support ratios → power … until the stack ran out (exit 139,
/// inside GMP or OpenBLAS); the ratios' Newton is now Newton alone. glp_exact is not run on
/// data below normal range or near overflow (`exactArithmeticIsSafe`). A docs check's case, stop 32.
@Test func subnormalStartDoesNotRecurse() throws {
    var x0 = [Double](repeating: 0.02, count: 25)
    x0[3] = 5e-324
    x0[7] = 1e-310
    let cfg = try SimulationConfig.parse("""
    {"problem": {"generate": {"M": 10, "N": 25, "sparsity": 3, "seed": 5}}, "model": {"flow": "gf", "depth": 3},
     "init": {"x0": \(x0)}}
    """)
    let p = try Prediction(config: cfg)
    #expect(p.z.count == 25 && p.z.allSatisfy(\.isFinite))
    let a = try #require(Matrix(rows: 1, cols: 2, storage: [1, 2]))
    #expect(!LinearProgram.exactArithmeticIsSafe(A: a, b: [1], c: [1, 5e-324]))
    #expect(LinearProgram.exactArithmeticIsSafe(A: a, b: [1], c: [1, 1e-250]))
    #expect(!LinearProgram.exactArithmeticIsSafe(A: a, b: [1], c: [1, 0x1p1001]))
    #expect(LinearProgram.exactArithmeticIsSafe(A: a, b: [1], c: [1, 1e-12]))
}

/// `maxAbs` (four branch-free running maxima since stop 32) keeps the sequential loop's
/// answers: NaN if any entry is NaN, infinity for an infinite entry, the largest |v| otherwise,
/// at every length (remainders of 4 included).
@Test func maxAbsKeepsNaNAndInfinity() {
    func m(_ v: [Double]) -> Double { v.withUnsafeBufferPointer { maxAbs($0.baseAddress!, v.count) } }
    for count in 1...9 {
        var v = (0..<count).map { Double($0 % 3) - 1.5 * Double($0) }
        #expect(m(v) == v.map(abs).max()!)
        for k in 0..<count {
            var w = v
            w[k] = .nan
            #expect(m(w).isNaN, "NaN at \(k) of \(count)")
            w[k] = -.infinity
            #expect(m(w) == .infinity)
        }
        v[count - 1] = -1e300
        #expect(m(v) == 1e300)
    }
}
