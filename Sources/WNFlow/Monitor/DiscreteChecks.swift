import Foundation
import GSLKit

/// What the monitor does with the discrete baselines (gd, wn-gd; MATH.md §7).
///
/// The lemmas are about the flows. A step of size μ keeps them only up to O(μ) (WN-GD grows
/// ‖v‖² by `μ²η_v²‖∇_vℒ̃‖²` a step), so on a discrete run their rows measure the
/// discretization, not a defect: they are reported as measurements (`value` the drift, no
/// verdict). What the iteration keeps exactly is checked instead:
/// - `lemma-3.2-norm` (wn-gd): every step is orthogonal to `v`, so
///   `‖v_k‖² = ‖v₀‖² + Σ_{j<k} ‖v_{j+1} − v_j‖²` (`DiscreteNormIdentity`);
/// - `lemma-3.7-invariant` (gd): `(x_{k+1} − x_k) ⊘ x_k^{L−1} = −μL Ãᵀr_k ∈ range Ãᵀ`, so its
///   projection on ker Ã vanishes (`DiscreteKernelStep`).
/// Lemmas 3.3 (signs) and 3.5 (the loss falls) are statements GD keeps for small enough
/// steps and stay checks: their failure says the step is too large.
public enum DiscreteRuns {
    /// Rows that compare a discrete run with the flow's invariants or limit: measurements there.
    public static let flowStatements: Set<String> = [
        "lemma-3.8-invariant", "lemma-3.9-effective-init", "lemma-3.18-bregman",
        "signed-coordinate-invariant", "limit-kkt", "predict-limit", "predict-g-inf", "predict-log-rho",
        "bound-weighted-l1-gap", "bound-log-rho",
    ]

    /// `reports` with the flow statements of a discrete run of step `step` as measurements
    /// (unchanged for a flow: `step` nil).
    public static func measured(_ reports: [CheckReport], flow: FlowKind, step: Double?) -> [CheckReport] {
        guard let step else { return reports }
        return reports.map { flowStatements.contains($0.name) ? measured($0, flow: flow, step: step) : $0 }
    }

    /// `report` as a measurement of the discretization (its drift is `value`).
    public static func measured(_ report: CheckReport, flow: FlowKind, step: Double) -> CheckReport {
        guard !report.isMeasurement else { return report }
        var r = report
        r.isMeasurement = true
        r.value = report.maxViolation
        r.passed = true
        r.quantity += "; measured, not judged: \(flow.rawValue) is the flow's discretization with step μ = "
            + "\(JSON.format(step)), which keeps this statement of the flow only up to O(μ) (MATH.md §7)"
        return r
    }
}

/// Lemma 3.2 for WN-GD (MATH.md §7): the step `−μη_v (g/‖v‖)(I − uuᵀ)G` is orthogonal to `v`,
/// so `‖v_k‖² − ‖v₀‖² = Σ_{j<k} ‖v_{j+1} − v_j‖²` exactly (the flow's `‖v‖ = ‖v₀‖` is its
/// μ → 0 limit). Measures `|‖v_k‖² − ‖v₀‖² − Σ_{j<k}‖Δv_j‖²| / max(‖v₀‖², ‖v_k‖²)` (dimensionless) at every
/// iterate; the flow's drift `|‖v_k‖ − ‖v₀‖|/‖v₀‖` is reported alongside as what the
/// discretization costs. Tolerance `ToleranceRule.discreteIdentityTolerance` (rounding only).
public final class DiscreteNormIdentity: Check {
    public let name = "lemma-3.2-norm"
    let context: MonitorContext
    let rule: ToleranceRule
    /// The flow's Lemma 3.2 on the same steps: the drift the discretization costs, measured.
    let flowDrift: Lemma32Norm
    private var previous: [Double] = []
    private var v0Squared = Double.nan
    private var stepSquares = 0.0
    private var worst = WorstTracker()

    public init(context: MonitorContext, rule: ToleranceRule) {
        flowDrift = Lemma32Norm(context: context, rule: rule)
        self.context = context
        self.rule = rule
    }

    public func observe(_ step: AcceptedStep) -> StepDecision {
        _ = flowDrift.observe(step)  // loads the step into the context
        let n = context.weightCount
        let vNorm = context.vNorm
        if previous.isEmpty {
            previous = Array(context.state[1...n])
            v0Squared = vNorm * vNorm
            return .proceed
        }
        var d2 = 0.0
        for i in 0..<n {
            let v = context.state[i + 1]
            let d = v - previous[i]
            d2 += d * d
            previous[i] = v
        }
        stepSquares += d2
        // Relative to the larger square (‖v‖ only grows): the sums' rounding is relative to
        // ‖v_k‖², which a diverging run takes far past ‖v₀‖² (1.1e-5 against 1e-8 at step 30).
        worst.record(abs((vNorm * vNorm - v0Squared) - stepSquares) / max(v0Squared, vNorm * vNorm), at: step.t)
        return .proceed
    }

    public func report() -> CheckReport {
        let tol = rule.discreteIdentityTolerance(steps: context.stepNumber, depth: context.depth)
        return CheckReport(name: name, maxViolation: worst.value, tolerance: tol, passed: worst.value <= tol,
                           tWorst: worst.t,
                           quantity: "|‖v_k‖² − ‖v₀‖² − Σ_{j<k}‖v_{j+1} − v_j‖²| / max(‖v₀‖², ‖v_k‖²) (WN-GD's steps are orthogonal to v: "
                               + "the discrete Lemma 3.2, relative, dimensionless); the flow's ‖v‖ = ‖v₀‖ drifted by "
                               + "\(JSON.format(flowDrift.report().maxViolation)) relative (the discretization, measured)")
    }
}

/// Lemma 3.7 for GD (MATH.md §7): `x_{k+1} − x_k = −μL x_k^{L−1} ⊙ Ãᵀr_k`, so
/// `w_k = (x_{k+1} − x_k) ⊘ x_k^{L−1}` lies in range Ãᵀ and `P w_k = 0` exactly (its sum over
/// the steps is the flow's `P h_L(x) = P h_L(x₀)` as μ → 0). Measures
/// `max_k (‖P w_k‖ − floor_k)⁺ / ‖w_k‖`, where `floor_k` bounds what rounding leaves in
/// `P w_k`: each stored weight's `ulp(x_{k+1,n})` over `|x_{k,n}|^{L−1}` (an absolute error,
/// so subnormal weights are covered: one at 4.9e-324 read 0.13 against ε-relative floors), the
/// product `Ãᵀr`'s `nε‖Ã‖_F‖r_k‖` (times μL), and the power's and the projection's
/// `(4L + 2n)ε‖w_k‖` (a step too small to carry digits past rounding passes instead of failing).
/// A weight at 0 (underflow at L ≥ 2) stays there and has no `w_n`, nor has one whose
/// `x^{L−1}` is 0 or not finite: the others are checked
/// against the range of `Ã_Sᵀ` for the columns S still nonzero (a projector rebuilt when S
/// shrinks), instead of skipping the rest of the run. The flow's drift (the continuous
/// Lemma 3.7's measure, `Lemma37Invariant`) is reported alongside.
public final class DiscreteKernelStep: Check {
    public let name = "lemma-3.7-invariant"
    let context: MonitorContext
    let rule: ToleranceRule
    let step: Double
    let flowDrift: Lemma37Invariant
    private var previous: [Double] = []
    private var hasPrevious = false
    private var previousResidual = 0.0
    private var w: [Double] = [], pw: [Double] = [], scratch: [Double] = [], powers: [Double] = []
    private var checked = 0
    private var worst = WorstTracker()
    /// The projector on ker Ã_S for the nonzero columns S (nil: all columns, `context.projector`).
    private var support: [Int]? = nil
    private var restricted: KernelProjector? = nil
    private var restrictedSince = Double.nan
    private var unchecked = 0

    public init(context: MonitorContext, rule: ToleranceRule, step: Double) {
        self.context = context
        self.rule = rule
        self.step = step
        flowDrift = Lemma37Invariant(context: context, rule: rule)
    }

    public func observe(_ step: AcceptedStep) -> StepDecision {
        _ = flowDrift.observe(step)  // loads the step into the context
        let n = context.weightCount, L = context.depth
        // Copied into kept buffers (no allocation a step: the monitor watches every iterate).
        defer {
            context.x.withUnsafeBufferPointer { xb in
                previous.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: xb.baseAddress!, count: n) }
            }
            previousResidual = context.residualNorm
        }
        guard hasPrevious else {
            previous = [Double](repeating: 0, count: n)
            w = [Double](repeating: 0, count: n)
            pw = [Double](repeating: 0, count: n)
            powers = [Double](repeating: 0, count: n)
            scratch = [Double](repeating: 0, count: max(n, 1))
            hasPrevious = true
            return .proceed
        }
        // x_k^{L−1}, and the columns where it is nonzero and finite: a weight at 0 (at
        // L ≥ 2 it stays 0) or one whose power underflows (5e-324 at L = 3) has no w there.
        var allLive = true
        for i in 0..<n {
            let p = L == 1 ? 1 : ipow(previous[i], L - 1)
            powers[i] = p
            if !(p != 0 && p.isFinite) { allLive = false }
        }
        let projector: KernelProjector
        var live: [Int] = []
        if allLive {
            projector = context.projector
        } else {
            // The same columns as last time (the usual case: a weight at 0 stays there) need no
            // new list: compared in place, without allocating.
            var same = false
            if let s = support {
                same = true
                var k = 0
                for i in 0..<n where powers[i] != 0 && powers[i].isFinite {
                    if k >= s.count || s[k] != i { same = false; break }
                    k += 1
                }
                if k != s.count { same = false }
            }
            live = same ? support! : (0..<n).filter { powers[$0] != 0 && powers[$0].isFinite }
            guard !live.isEmpty else { unchecked += 1; return .proceed }
            if !same {
                if support == nil { restrictedSince = step.t }
                support = live
                restricted = try? KernelProjector(selectColumns(context.problem.matrix, live))
            }
            guard let r = restricted else { unchecked += 1; return .proceed }
            projector = r
        }
        let count = allLive ? n : live.count
        let eps = Double.ulpOfOne
        var stored = 0.0  // ‖ulp(x_{k+1}) ⊘ x_k^{L−1}‖²
        var w2 = 0.0
        let x = context.x
        for a in 0..<count {
            let i = allLive ? a : live[a]
            let p = powers[i]
            w[a] = (x[i] - previous[i]) / p
            let e = x[i].ulp / abs(p)
            stored += e * e
            w2 += w[a] * w[a]
        }
        guard w2 > 0, w2.isFinite else { return .proceed }
        let wNorm = w2.squareRoot()
        let projected: Double = w.withUnsafeBufferPointer { wb in
            pw.withUnsafeMutableBufferPointer { pb in
                scratch.withUnsafeMutableBufferPointer { sb in
                    projector.apply(wb.baseAddress!, into: pb.baseAddress!, scratch: sb.baseAddress!)
                }
                return blasNorm(count, pb.baseAddress!)
            }
        }
        let floor = 2 * stored.squareRoot() + Double(4 * L + 2 * n) * eps * wNorm
            + self.step * Double(L * n) * eps * context.matrixNorm * previousResidual
        worst.record(max(0, projected - floor) / wNorm, at: step.t)
        checked += 1
        return .proceed
    }

    public func report() -> CheckReport {
        let tol = rule.discreteIdentityTolerance(steps: context.stepNumber, depth: context.depth)
        let drift = flowDrift.report()
        let zeros = support.map { "; from t = \(JSON.format(restrictedSince)) on, weights at 0 or with x^(L−1) out of range (\(context.weightCount - $0.count) at the end) were left out (the kernel of the remaining columns)" } ?? ""
        let skipped = unchecked > 0 ? "; \(unchecked) step(s) not checked (no weight with x_k^(L−1) nonzero and finite, or no projector)" : ""
        // No step checked (every weight at 0 or with x^{L−1} out of range): no verdict.
        var r = CheckReport(name: name, maxViolation: worst.value, tolerance: tol, passed: worst.value <= tol,
                            tWorst: worst.t,
                           quantity: "max_k ‖P w_k‖ / ‖w_k‖ beyond rounding, w_k = (x_{k+1} − x_k) ⊘ x_k^(L−1) "
                               + "(GD's steps lie in range Ãᵀ: the discrete Lemma 3.7, relative, dimensionless)\(zeros)\(skipped); "
                               + "the flow's invariant drifted by \(JSON.format(drift.maxViolation)) "
                               + "(\(drift.quantity); the discretization, measured)")
        if checked == 0 && unchecked > 0 {
            r.isMeasurement = true
            r.value = nil
            r.passed = true
            r.maxViolation = 0
            r.quantity += "; no step could be checked, so no verdict"
        }
        return r
    }
}
