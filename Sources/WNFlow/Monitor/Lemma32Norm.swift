import Foundation
import GSLKit

/// Lemma 3.2 (constant norm): along the WN flow (1.13)–(1.14), constant or
/// time-dependent η_g, `‖v(t)‖ = ‖v₀‖` because `⟨v, v'⟩ = 0`.
///
/// Measures `|‖v(t)‖ − ‖v₀‖| / ‖v₀‖` (dimensionless) at every step; tolerance
/// `ToleranceRule.tolerance(steps:)` (κ = 1). WN-GD grows `‖v‖²` by
/// `μ²η_v²‖∇_vℒ̃‖²` per step (MATH.md §7): its runs get `DiscreteNormIdentity` instead.
public final class Lemma32Norm: Check {
    public let name = "lemma-3.2-norm"
    let context: MonitorContext
    let rule: ToleranceRule
    private var v0Norm = Double.nan
    private var worst = WorstTracker()

    public init(context: MonitorContext, rule: ToleranceRule) {
        precondition(context.isWeightNormalized, "lemma-3.2-norm needs a weight-normalized flow")
        self.context = context
        self.rule = rule
    }

    public func observe(_ step: AcceptedStep) -> StepDecision {
        context.update(step)
        if v0Norm.isNaN { v0Norm = context.vNorm }
        worst.record(abs(context.vNorm - v0Norm) / v0Norm, at: step.t)
        return .proceed
    }

    public func report() -> CheckReport {
        let tol = rule.tolerance(steps: context.stepNumber)
        return CheckReport(name: name, maxViolation: worst.value, tolerance: tol, passed: worst.value <= tol,
                           tWorst: worst.t, quantity: "|‖v(t)‖ − ‖v₀‖| / ‖v₀‖ (relative drift of ‖v‖, dimensionless)")
    }
}
