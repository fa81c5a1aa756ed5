import Foundation
import GSLKit

/// The coordinate-wise invariants of signed GF (2.8), MATH.md §5: with
/// `x = (u, w)`, `u ⊙ w` is constant (L = 2) and `u^{2−L} + w^{2−L}` is
/// constant (L ≠ 2; `u + w` at L = 1). Also built for signed time-dependent
/// WN (GF on another clock).
///
/// Measures `max_i |q_i(t) − q_i(0)| / (r_i + (atol/rtol) σ_i)` with `r_i`
/// the largest size of the terms (`max(|u_i w_i|, |u_i⁰ w_i⁰|)`, or
/// `max(|u_i^{2−L}|, |w_i^{2−L}|, |u_i⁰^{2−L}|, |w_i⁰^{2−L}|)`) and
/// `σ_i = |∂q_i/∂u_i| + |∂q_i/∂w_i|`: the worst coordinate's drift relative
/// to what the integrator's error target `atol + rtol|·|` allows (an entry
/// far below atol/rtol is only known to atol, not to rtol).
/// Tolerance `ToleranceRule.tolerance(conditioning: κ, steps:)`, `κ = 2 max(1, |2−L|)` (two entries'
/// errors add; `x^{2−L}` multiplies relative errors by |2−L|), times 4 for
/// time-dependent WN, where the common factor `(g/‖v‖)` carries g's global
/// error (measured up to ~2× the base tolerance at N = 25).
/// Needs a positive start for L ≥ 2.
public final class SignedCoordinateInvariant: Check {
    public let name = "signed-coordinate-invariant"
    let context: MonitorContext
    let rule: ToleranceRule
    private var q0: [Double] = []
    private var r0: [Double] = []
    private var worst = WorstTracker()

    public init(context: MonitorContext, rule: ToleranceRule) {
        precondition(context.problem.signed, "signed-coordinate-invariant needs a signed problem")
        self.context = context
        self.rule = rule
    }

    /// `q_i`, the size `r_i` of its terms, and `σ_i`, its sensitivity to an
    /// absolute error of u and w (`|∂q/∂u| + |∂q/∂w|`).
    @inline(__always)
    private static func terms(_ u: Double, _ w: Double, depth L: Int) -> (q: Double, r: Double, s: Double) {
        if L == 2 { let p = u * w; return (p, abs(p), abs(u) + abs(w)) }
        let a = invariantMap(u, depth: L), b = invariantMap(w, depth: L)
        let k = Double(abs(2 - L))
        return (a + b, max(abs(a), abs(b)), L == 1 ? 2 : k * (abs(a / u) + abs(b / w)))
    }

    public func observe(_ step: AcceptedStep) -> StepDecision {
        context.update(step)
        let n = context.problem.n, L = context.depth
        if q0.isEmpty {
            q0 = (0..<n).map { Self.terms(context.x[$0], context.x[n + $0], depth: L).q }
            r0 = (0..<n).map { Self.terms(context.x[$0], context.x[n + $0], depth: L).r }
        }
        var m = 0.0
        let absRatio = rule.atol / rule.rtol
        context.x.withUnsafeBufferPointer { x in
            for i in 0..<n {
                let (q, r, sens) = Self.terms(x[i], x[n + i], depth: L)
                let d = abs(q - q0[i]) / max(max(r, r0[i]) + absRatio * sens, .leastNormalMagnitude)
                if d.isNaN { m = .infinity } else { m = max(m, d) }
            }
        }
        worst.record(m, at: step.t)
        return .proceed
    }

    public func report() -> CheckReport {
        let kappa = 2 * Double(max(1, abs(2 - context.depth))) * (context.isWeightNormalized ? 4 : 1)
        let tol = rule.tolerance(conditioning: kappa, steps: context.stepNumber)
        let q = context.depth == 2 ? "u ⊙ w" : (context.depth == 1 ? "u + w" : "u^(\(2 - context.depth)) + w^(\(2 - context.depth))")
        return CheckReport(name: name, maxViolation: worst.value, tolerance: tol, passed: worst.value <= tol,
                           tWorst: worst.t, quantity: "max_i |Δ(\(q))_i| / (size of its terms + (atol/rtol)·sensitivity) (worst coordinate's relative drift, dimensionless)")
    }
}
