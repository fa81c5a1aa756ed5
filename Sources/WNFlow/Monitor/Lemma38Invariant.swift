import Foundation
import GSLKit

/// Lemma 3.8 (WN invariant, constant η_g): with `c = η_v / (2 η_g ‖v₀‖²)`,
/// ```
/// L = 2 :  P[ log v(t) + c g(t)² 1 ]               is constant
/// L ≠ 2 :  exp((2−L) c g(t)²) · P v(t)^{⊙(2−L)}    is constant
/// ```
/// Measures the distance of the current value from the initial one relative
/// to the larger unprojected size of the two sides:
/// L = 2 `‖ΔP[log v + c g² 1]‖ / max ‖log v + c g² 1‖`; L ≠ 2
/// `‖e^{(2−L)cg²} P v^{2−L} − e^{(2−L)cg₀²} P v₀^{2−L}‖ / max(e^{(2−L)cg²}‖v^{2−L}‖, …)`,
/// evaluated in log space (both sides divided by the larger scale first), so
/// `exp((2−L)cg²)` never has to be representable.
/// Tolerance `ToleranceRule.tolerance(conditioning: κ, steps:)` with `κ = 1 + 2 c max_t g² · max(1, |2−L|)`:
/// a relative error δ of g moves `(2−L) c g²` by `2|2−L| c g² δ`. At L = 2 the error
/// `2cg²δ·‖P1‖` of the numerator meets a denominator `D_t = max ‖log v + c g² 1‖`, so κ is
/// taken per step, `κ_t = 1 + 2cg_t²·‖P1‖/max(D_t, ‖P1‖)`, and the report is the step with
/// the largest violation/κ_t.
/// Needs `g₀ > 0` and a `v₀` without zero entries for L ≥ 2 (either sign: `invariantMap`,
/// as Lemma 3.7; the flow keeps each sign).
public final class Lemma38Invariant: Check {
    public let name = "lemma-3.8-invariant"
    let context: MonitorContext
    let rule: ToleranceRule
    /// `c = η_v / (2 η_g ‖v₀‖²)`.
    public let c: Double
    private var target: [Double] = []   // P h_L(v₀)
    private var targetRef = 0.0         // ‖h_L(v₀)‖ (L = 2: ‖log v₀ + c g₀² 1‖)
    private var g0 = 0.0
    private var maxG2 = 0.0
    private var worst = WorstTracker()
    /// L = 2: the step closest to its own tolerance (κ_t, see above).
    private var closest = ConditionedWorstTracker()
    private var onesNorm = 0.0

    /// `etaG`, `etaV`: the flow's constant rates; `vNorm0 = ‖v₀‖`.
    public init(context: MonitorContext, rule: ToleranceRule, etaG: Double, etaV: Double, vNorm0: Double) {
        precondition(context.isWeightNormalized, "lemma-3.8-invariant needs a weight-normalized flow")
        self.context = context
        self.rule = rule
        c = magnificationConstant(etaG: etaG, etaV: etaV, vNorm0: vNorm0)
    }

    public func observe(_ step: AcceptedStep) -> StepDecision {
        context.update(step)
        if context.lostLogs.current { return .proceed }
        context.ensureInvariantMap()
        let g = context.g, L = context.depth, n = context.weightCount
        maxG2 = max(maxG2, g * g)
        if target.isEmpty {
            g0 = g
            target = context.projectedHBase
            onesNorm = norm2(context.projectedOnes)
            if L == 2 {
                targetRef = refLog2(shift: c * g * g)
            } else {
                targetRef = context.hBaseNorm
            }
        }
        let d: Double = context.projectedHBase.withUnsafeBufferPointer { a in
            target.withUnsafeBufferPointer { b in
                if L == 2 {
                    let delta = magnificationExponent(c: c, g: g, g0: g0)
                    var acc = 0.0
                    context.projectedOnes.withUnsafeBufferPointer { p1 in
                        for i in 0..<n {
                            let e = a[i] + delta * p1[i] - b[i]
                            acc += e * e
                        }
                    }
                    return acc.squareRoot() / max(refLog2(shift: c * g * g), targetRef, .leastNormalMagnitude)
                }
                let k = Double(2 - L) * c
                return scaledRelativeDistance(a.baseAddress!, logScaleA: k * g * g, refA: context.hBaseNorm,
                                              b.baseAddress!, logScaleB: k * g0 * g0, refB: targetRef, count: n)
            }
        }
        worst.record(d, at: step.t)
        if L == 2 {
            let denominator = max(refLog2(shift: c * g * g), targetRef)
            let kappa = 1 + 2 * c * g * g * onesNorm / max(denominator, onesNorm, .leastNormalMagnitude)
            closest.record(d, kappa: kappa, at: step.t)
        }
        return .proceed
    }

    /// `‖log v + s 1‖` from the context's norm and sum.
    private func refLog2(shift s: Double) -> Double {
        let n = Double(context.weightCount)
        let r2 = context.hBaseNorm * context.hBaseNorm + 2 * s * context.hBaseSum + n * s * s
        return max(r2, 0).squareRoot()
    }

    /// The conditioning factor κ of the tolerance.
    var conditioning: Double { 1 + 2 * c * maxG2 * Double(max(1, abs(2 - context.depth))) }

    public func report() -> CheckReport {
        let tol = rule.tolerance(conditioning: conditioning, steps: context.stepNumber)
        let q = context.depth == 2
            ? "‖P[log v + c g² 1](t) − P[log v + c g² 1](0)‖ / max ‖log v + c g² 1‖, c = \(JSON.format(c)) (relative, dimensionless)"
            : "‖e^{(2−L)cg²} P v^{2−L} (t) − (0)‖ / max e^{(2−L)cg²}‖v^{2−L}‖, L = \(context.depth), c = \(JSON.format(c)) (relative, dimensionless, log-space)"
        let function = "h_L = \(context.depth == 2 ? "log v" : "v^(\(2 - context.depth))")"
        if context.depth == 2 && closest.seen {
            return context.qualified(closest.report(name: name, rule: rule, steps: context.stepNumber, quantity: q, overall: worst),
                                             function: function, rule: rule)
        }
        return context.qualified(CheckReport(name: name, maxViolation: worst.value, tolerance: tol, passed: worst.value <= tol,
                                                     tWorst: worst.t, quantity: q), function: function, rule: rule)
    }
}
