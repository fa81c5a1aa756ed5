import Foundation
import GSLKit

/// Lemma 3.9 (effective initialization, constant η_g): with
/// `log ρ(t) = log(g₀/g(t)) + c (g(t)² − g₀²)`, `c = η_v / (2 η_g ‖v₀‖²)`,
/// at every t `P h_L(x(t)) = P h_L(x₀ / ρ(t))`: WN carries the invariant of
/// GF from `x̃₀ = x₀/ρ`.
///
/// Only `log ρ` is formed (ρ reaches e^{10²⁰}): L = 1 compares
/// `(g/‖v‖) P v` with `(g/g₀) e^{−c(g²−g₀²)} P x₀`; L = 2 compares
/// `P log x` with `P log x₀ − (log ρ) P1`; L ≥ 3 compares
/// `P x^{2−L}` with `e^{(L−2) log ρ} P x₀^{2−L}` in log space.
/// Measures `‖P h_L(x(t)) − P h_L(x₀/ρ)‖ / max(‖h_L(x(t))‖, ‖h_L(x₀/ρ)‖)`.
/// Tolerance `ToleranceRule.tolerance(conditioning: κ, steps:)`, `κ = 1 + max(1, |L−2|)(1 + 2 c max_t g²)`:
/// a relative error δ of g moves log ρ by `(1 + 2cg²) δ`. At L = 2 that error enters the
/// numerator as `|Δ log ρ|·‖P1‖` against a denominator `D_t ≥ ‖log x₀ − (log ρ) 1‖`, so κ is
/// taken per step, `κ_t = 1 + (1 + 2cg_t²)·‖P1‖/max(D_t, ‖P1‖)`, and the report is the step
/// with the largest violation/κ_t (with max κ the check could not fail where |log ρ| is
/// large: tolerance 2.07 for a relative quantity at log ρ = −3.9e6).
/// Needs `g₀ > 0` and a start without zero entries for L ≥ 2 (either sign, as Lemma 3.8).
public final class Lemma39EffectiveInit: Check {
    public let name = "lemma-3.9-effective-init"
    let context: MonitorContext
    let rule: ToleranceRule
    public let c: Double
    private var target: [Double] = []   // P h_L(x₀)
    private var h0Norm = 0.0            // ‖h_L(x₀)‖
    private var h0Sum = 0.0             // Σ h_L(x₀)
    private var x0Norm = 0.0
    private var g0 = 0.0
    private var maxG2 = 0.0
    private var lastLogRho = 0.0
    private var worst = WorstTracker()
    /// L = 2: the step closest to its own tolerance (κ_t, see above).
    private var closest = ConditionedWorstTracker()
    private var onesNorm = 0.0

    public init(context: MonitorContext, rule: ToleranceRule, etaG: Double, etaV: Double, vNorm0: Double) {
        precondition(context.isWeightNormalized, "lemma-3.9-effective-init needs a weight-normalized flow")
        self.context = context
        self.rule = rule
        c = magnificationConstant(etaG: etaG, etaV: etaV, vNorm0: vNorm0)
    }

    public func observe(_ step: AcceptedStep) -> StepDecision {
        context.update(step)
        if context.lostLogs.current { return .proceed }
        context.ensureInvariantMap()
        let g = context.g, L = context.depth
        maxG2 = max(maxG2, g * g)
        if target.isEmpty {
            g0 = g
            let h0 = MonitorContext.invariantMapped(context.x, depth: L)
            target = context.projector.apply(h0)
            h0Norm = norm2(h0)
            h0Sum = h0.reduce(0, +)
            x0Norm = norm2(context.x)
            onesNorm = norm2(context.projectedOnes)
        }
        let d: Double
        switch L {
        case 1:
            // x₀/ρ = (g/g₀) e^{−c(g²−g₀²)} x₀.
            let ratio = g / g0
            d = context.distanceOfProjectedHx(to: target, ref: h0Norm, logScale: log(abs(ratio)) - magnificationExponent(c: c, g: g, g0: g0),
                                              sign: ratio < 0 ? -1 : 1)
        case 2:
            // From log g where g underflowed in the state (the saddle x = 0, dual coordinates).
            let lr = context.gBelowRange ? logMagnification(g0: g0, g: g, logAbsG: context.logG, c: c)
                : WeightNormLimit.logMagnification(g: g, g0: g0, c: c)
            lastLogRho = lr
            let n = Double(context.weightCount)
            let ref = max(h0Norm * h0Norm - 2 * lr * h0Sum + n * lr * lr, 0).squareRoot()
            d = context.distanceOfProjectedHx(to: target, ref: ref, shift: -lr)
            let kappa = 1 + (1 + 2 * c * g * g) * onesNorm / max(ref, onesNorm, .leastNormalMagnitude)
            closest.record(d.isNaN ? .infinity : d, kappa: kappa, at: step.t)
        default:
            let lr = WeightNormLimit.logMagnification(g: g, g0: g0, c: c)
            lastLogRho = lr
            d = context.distanceOfProjectedHx(to: target, ref: h0Norm, logScale: Double(L - 2) * lr)
        }
        worst.record(d.isNaN ? .infinity : d, at: step.t)
        return .proceed
    }

    var conditioning: Double { 1 + Double(max(1, abs(context.depth - 2))) * (1 + 2 * c * maxG2) }

    public func report() -> CheckReport {
        let q = "‖P h_L(x(t)) − P h_L(x₀/ρ(t))‖ / max(‖h_L(x(t))‖, ‖h_L(x₀/ρ)‖), h_L = \(hName(context.depth)), c = \(JSON.format(c)) (relative, dimensionless; via log ρ)"
        let function = "h_L = \(hName(context.depth))"
        if context.depth == 2 && closest.seen {
            return context.qualified(closest.report(name: name, rule: rule, steps: context.stepNumber, quantity: q, overall: worst),
                                             function: function, rule: rule)
        }
        let tol = rule.tolerance(conditioning: conditioning, steps: context.stepNumber)
        return context.qualified(CheckReport(name: name, maxViolation: worst.value, tolerance: tol, passed: worst.value <= tol,
                                                     tWorst: worst.t, quantity: q), function: function, rule: rule)
    }
}
