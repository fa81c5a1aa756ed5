import Foundation
import GSLKit

/// Lemma 3.3 (constant sign, L ≥ 2): from a positive start the entries stay
/// positive — `x(t) > 0` for GF, `g(t) > 0` and `v(t) > 0` for WN (signed
/// runs: `(u, w) > 0`). From any start each entry keeps its sign and a zero
/// entry stays 0 (`x_i' ∝ x_i^{L−1}`; WN: `g' ∝ g^{L−1}`, `v_i' ∝ v_i` where
/// `x_i = 0`), which is what is checked for starts that are not positive.
///
/// Measures `max(0, −min_i σ_i s_i(t), max_{σ_i = 0} |s_i(t)|) / ‖s₀‖∞` over the
/// state entries `s` with start signs `σ = sign(s₀)` (the depth of the worst
/// sign change, relative to the state's scale).
/// Tolerance `100 · max(atol, 2.2e-308) / ‖s₀‖∞` (the rule's factor times atol, or
/// times the smallest normal double): an entry within the integrator's absolute
/// error floor of 0 has no determined sign (a g or x_n decaying to the saddle 0
/// ends as ±1e-14 noise), and with atol = 0 neither has a subnormal one, which
/// carries fewer digits than the relative error control asks for (WN, L = 2,
/// atol 0: an entry decaying to 0 ended at −3.6e-321 under bdf, −1.4e-322 under
/// bsimp); any entry below `−100·max(atol, 2.2e-308)` is a sign change and
/// fails. Only built for L ≥ 2.
public final class Lemma33Sign: Check {
    public let name = "lemma-3.3-sign"
    let context: MonitorContext
    let rule: ToleranceRule
    private var worst = WorstTracker()
    private var minEntry = Double.infinity
    private var tMin = 0.0
    private var startSigns: [Double] = []

    public init(context: MonitorContext, rule: ToleranceRule) {
        self.context = context
        self.rule = rule
    }

    public func observe(_ step: AcceptedStep) -> StepDecision {
        if startSigns.isEmpty { startSigns = entrySigns(step.y) }
        var m = Double.infinity
        for (v, s) in zip(step.y, startSigns) {
            m = min(m, v.isNaN ? -Double.infinity : (s == 0 ? -abs(v) : s * v))
        }
        if m < minEntry { minEntry = m; tMin = step.t }
        worst.record(max(0, -m) / rule.stateScale, at: step.t)
        return .proceed
    }

    public func report() -> CheckReport {
        let tol = rule.factor * max(rule.atol, Double.leastNormalMagnitude) / rule.stateScale
        let positive = startSigns.allSatisfy { $0 > 0 }
        let entries = context.isWeightNormalized ? "(g, v)" : "x"
        let what = positive ? "max(0, −min entry of \(entries))" : "max(0, −min sign(s₀)·s over the entries s of \(entries), |s| where s₀ = 0)"
        let q = "\(what) / ‖state₀‖∞ (depth of a sign change, relative; \(positive ? "smallest entry" : "smallest signed entry") seen \(JSON.format(minEntry)) at t = \(JSON.format(tMin)))"
        return CheckReport(name: name, maxViolation: worst.value, tolerance: tol, passed: worst.value <= tol,
                           tWorst: worst.value > 0 ? worst.t : tMin, quantity: q)
    }
}
