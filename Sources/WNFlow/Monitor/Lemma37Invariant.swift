import Foundation
import GSLKit

/// Lemma 3.7 (GF invariant): `P h_L(x(t)) = P h_L(x₀)`, with
/// `h_L(x) = x` (L = 1), `log x` (L = 2), `x^{⊙(2−L)}` (L ≥ 3) and
/// `P = I − Ã⁺Ã`. Also built for the time-dependent WN flow (Thm 2.4): there
/// `x' = −η_v (g/‖v‖)² ∇ℒ(x)` is GF on another clock, so the same invariant holds.
///
/// Measures `‖P h_L(x(t)) − P h_L(x₀)‖ / max(‖h_L(x(t))‖, ‖h_L(x₀)‖)`
/// (relative to the unprojected sizes, since the projection may cancel;
/// for L ≥ 3 computed in log space). Tolerance `ToleranceRule.tolerance(conditioning: κ, steps:)`,
/// κ = 1 for GF and `1 + 4 max(1, |L−2|)` for time-dependent WN (the factor
/// `(g/‖v‖)^{2−L}` amplifies the relative global error of g, measured up to
/// ~2× the base tolerance at N = 25).
/// Needs a start without zero entries for L ≥ 2 (either sign: `invariantMap`).
public final class Lemma37Invariant: Check {
    public let name = "lemma-3.7-invariant"
    let context: MonitorContext
    let rule: ToleranceRule
    private var target: [Double] = []   // P h_L(x₀)
    private var targetRef = 0.0         // ‖h_L(x₀)‖
    private var worst = WorstTracker()

    public init(context: MonitorContext, rule: ToleranceRule) {
        self.context = context
        self.rule = rule
    }

    public func observe(_ step: AcceptedStep) -> StepDecision {
        context.update(step)
        if target.isEmpty {
            let h0 = MonitorContext.invariantMapped(context.x, depth: context.depth)
            target = context.projector.apply(h0)
            targetRef = norm2(h0)
        }
        if context.lostLogs.current { return .proceed }
        context.ensureInvariantMap()
        worst.record(context.distanceOfProjectedHx(to: target, ref: targetRef), at: step.t)
        return .proceed
    }

    public func report() -> CheckReport {
        let kappa = context.isWeightNormalized ? 1 + 4 * Double(max(1, abs(context.depth - 2))) : 1
        let tol = rule.tolerance(conditioning: kappa, steps: context.stepNumber)
        let r = CheckReport(name: name, maxViolation: worst.value, tolerance: tol, passed: worst.value <= tol,
                            tWorst: worst.t,
                            quantity: context.crossings.annotate("‖P h_L(x(t)) − P h_L(x₀)‖ / max(‖h_L(x(t))‖, ‖h_L(x₀)‖), h_L = \(hName(context.depth)) (relative, dimensionless)",
                                                           function: "h_L = \(hName(context.depth))"))
        return context.qualified(r, function: "h_L = \(hName(context.depth))", rule: rule)
    }
}

/// The name of `h_L` for reports.
func hName(_ L: Int) -> String {
    switch L {
    case 1: return "x"
    case 2: return "log x"
    default: return "x^(\(2 - L))"
    }
}

extension MonitorContext {
    /// Relative distance between `P h_L(x)` at the current step and a target
    /// `P h_L(x̃)` given as `σ e^{s} b + γ P1` (`b` a projected vector with
    /// unprojected size `ref`): for L = 2 the target is `b + γ P1` (`s`, `σ`
    /// unused), otherwise `σ e^{s} b` (`γ` unused). `ref` is the size of the
    /// target's unprojected vector without the scale factor for L ≠ 2, and
    /// with `γ 1` included for L = 2. Requires `ensureInvariantMap()`.
    func distanceOfProjectedHx(to b: [Double], ref: Double, logScale s: Double = 0, sign: Double = 1,
                               shift gamma: Double = 0) -> Double {
        let n = weightCount
        return projectedHBase.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { bb in
                if depth == 2 {
                    let beta = logAlphaBeta.beta
                    // ‖h(x)‖ = ‖h(base) + β1‖.
                    let hx2 = hBaseNorm * hBaseNorm + 2 * beta * hBaseSum + Double(n) * beta * beta
                    let ra = max(hx2, 0).squareRoot()
                    let shift = beta - gamma
                    var acc = 0.0
                    projectedOnes.withUnsafeBufferPointer { p1 in
                        for i in 0..<n {
                            let d = a[i] + shift * p1[i] - bb[i]
                            acc += d * d
                        }
                    }
                    return acc.squareRoot() / max(ra, ref, .leastNormalMagnitude)
                }
                let sa: Double, signA: Double
                if depth == 1 {
                    let al = alpha1
                    sa = log(abs(al)); signA = al < 0 ? -1 : 1
                } else {
                    // α = (g/‖v‖)^{2−L} has the sign of g at odd L (time-dependent WN from g₀ < 0,
                    // L = 3: a violation of 1.73 at t = 0, the distance to P h(|x₀|)).
                    sa = logAlphaBeta.logAlpha
                    signA = isWeightNormalized && depth % 2 == 1 && g < 0 ? -1 : 1
                }
                if !sa.isFinite && sa < 0 {
                    // x = 0 (g = 0 at L = 1): compare the target with 0.
                    var acc = 0.0
                    for i in 0..<n { acc += bb[i] * bb[i] }
                    return acc > 0 ? 1 : 0
                }
                return scaledRelativeDistance(a.baseAddress!, logScaleA: sa, refA: hBaseNorm,
                                              bb.baseAddress!, logScaleB: s, refB: ref, count: n,
                                              signA: signA, signB: sign)
            }
        }
    }
}
