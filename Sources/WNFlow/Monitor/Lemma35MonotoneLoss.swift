import Foundation
import GSLKit

/// Lemma 3.5 (non-increasing loss): `dℒ/dt = −‖∇ℒ‖² ≤ 0` for GF and
/// `dℒ̃/dt = −η_g⟨G,u⟩² − η_v (g/‖v‖)²‖(I−uuᵀ)G‖² ≤ 0` for WN.
///
/// Measures, over consecutive accepted steps `k−1 → k`,
/// `max(0, ℒ_k − ℒ_{k−1} − ν_k) / ℒ_ref`: the loss increase beyond the
/// roundoff floor of the loss, `ν_k = 16 ε (L‖Ã‖_F‖x^L‖ + ‖y‖) max(‖e_k‖, ‖e_{k−1}‖)`,
/// relative to the loss scale `ℒ_ref = max(½‖y‖², ℒ(x₀))` (dimensionless).
/// Tolerance `ToleranceRule.tolerance(steps:)` (κ = 1).
///
/// Why the loss scale and not the current loss: near the limit the state is
/// known to `rtol·|x|` per step, which moves `e` by ~`L‖Ã‖‖x^L‖ rtol` ≫ ‖e‖
/// once ℒ ≲ 1e-19; true flows integrated at rtol 1e-10 do show relative
/// increases of O(1) at ℒ ≈ 1e-24 (≈1e-23 of the loss scale). The largest
/// increase relative to the loss before the step is reported in `quantity`
/// for information.
public final class Lemma35MonotoneLoss: Check {
    public let name = "lemma-3.5-monotone-loss"
    let context: MonitorContext
    let rule: ToleranceRule
    private var previous = Double.nan
    private var previousResidual = 0.0
    private var worst = WorstTracker()
    private var worstRelative = 0.0
    private var reference = Double.nan

    public init(context: MonitorContext, rule: ToleranceRule) {
        self.context = context
        self.rule = rule
    }

    public func observe(_ step: AcceptedStep) -> StepDecision {
        context.update(step)
        let l = context.loss
        if previous.isNaN {
            reference = max(context.problem.lossScale, l.isFinite ? l : 0, .leastNormalMagnitude)
            worst.record(l.isFinite ? 0 : .infinity, at: step.t)
        } else {
            let e = max(context.residualNorm, previousResidual)
            let nu = 16 * Double.ulpOfOne * (Double(context.depth) * context.matrixNorm * context.powerNorm + context.yNorm) * e
            let inc = l - previous
            if inc > nu { worstRelative = max(worstRelative, (inc - nu) / max(previous, .leastNormalMagnitude)) }
            let v = l.isFinite ? max(0, inc - nu) / reference : Double.infinity
            worst.record(v, at: step.t)
        }
        previous = l
        previousResidual = context.residualNorm
        return .proceed
    }

    public func report() -> CheckReport {
        let tol = rule.tolerance(steps: context.stepNumber)
        return CheckReport(name: name, maxViolation: worst.value, tolerance: tol, passed: worst.value <= tol,
                           tWorst: worst.t,
                           quantity: "max over steps of (ℒ_k − ℒ_{k−1} − roundoff floor)⁺ / max(½‖y‖², ℒ(x₀)) (loss increase relative to the loss scale, dimensionless; largest increase relative to the loss before the step: \(JSON.format(worstRelative)))")
    }
}
