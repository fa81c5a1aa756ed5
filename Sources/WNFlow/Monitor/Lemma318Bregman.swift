import Foundation
import GSLKit

/// Lemma 3.18 (Bregman divergence decreases): for GF, and for the WN flow
/// with the time-dependent rate (a GF on another clock), `D_F(z, x(t)^{⊙L})`
/// is non-increasing for every `z ∈ S₊`, with `F` of MATH.md §4
/// (L = 1 `½w²`, L = 2 `w log w − w`, L ≥ 3 `L²/(2(2−L)) w^{2/L}`):
/// `d/dt D_F(z, x^L) = −L²‖e‖²` (times `η_v g²/‖v‖²` for WN).
///
/// Design (O(N) memory, one pass): `D_F(z, w) − F(z) = −F(w) − ⟨∇F(w), z − w⟩`
/// needs no `F(z)`, so the check tracks `φ(t) = D_F(z, x(t)^L) − F(z)`:
/// ```
/// L = 2 : φ = ‖x‖² − 2 ⟨z, log x⟩
/// L ≠ 2 : φ = (L/2) ‖x‖² + L/(L−2) ⟨z, x^{2−L}⟩
/// ```
/// and reports its largest increase between accepted steps. `z` is a point of S₊
/// from `ZeroLossSet.find`: the ground truth (mapped to `(z⁺, z⁻)` when signed) when it
/// solves `Ãz = y` to 1e-8, else `Ã⁺y` when it lies in S₊, else GLPK's ℓ1 minimizer;
/// `Ã⁺y` itself only where that is undecided. (With `Ã⁺y` off S₊, an entry decaying to
/// 0 below atol carried its noise into φ through a negative z_n: a false FAIL, 0.017
/// against 3e-8, on a GF run whose S₊ is empty.) Where S₊ is empty the monitor skips the
/// check: the lemma holds for no z. The
/// limit itself is not known online, but it need not be: for `z, z' ∈ {Ãz = y}`,
/// `φ_z(t) − φ_{z'}(t) = −⟨∇F(w(t)), z − z'⟩` is constant in t exactly when
/// Lemma 3.7 holds, so the increments — which are all the check uses — are
/// the same for every `z` (the run's own limit included). With the ground
/// truth (`z ∈ S₊`) the check stands on its own even if 3.7 is broken.
///
/// Measures `max_k (φ_k − φ_{k−1})⁺ / S_k`, `S_k` the size of the terms of
/// φ (`Σ (L/2)x² + |L/(L−2)||z x^{2−L}|`; L = 2 `Σ x² + 2|z|(|log x| + 1)`),
/// which bounds how far a relative error of x moves φ. Tolerance
/// `ToleranceRule.tolerance(conditioning: κ, steps:)`, κ = `max(1, |L−2|)` (GF) and doubled for WN.
/// Needs a positive start for L ≥ 2, or at even depth one without zero entries (x^L = |x|^L,
/// and the flow from x₀ is the one from |x₀| with its signs).
public final class Lemma318Bregman: Check {
    public let name = "lemma-3.18-bregman"
    let context: MonitorContext
    let rule: ToleranceRule
    /// The reference point `z` with `Ãz = y`.
    public let z: [Double]
    /// Whether `z` came from `ZeroLossSet` (in S₊, the lemma's hypothesis; depth 1: any
    /// solution of Ãz = y) rather than `Ã⁺y` where that was undecided.
    public let zInSet: Bool
    /// Where `z` came from and the set it is in ("ground truth ∈ S₊", "Ã⁺y ∈ {z : Ãz = y}", …).
    let zSource: String
    private var previous = Double.nan
    private var previousScale = 0.0
    private var first = Double.nan
    private var last = Double.nan
    private var worst = WorstTracker()

    /// `reference`: `ZeroLossSet.find`'s point, nil where it is undecided (then `Ã⁺y`).
    public init(context: MonitorContext, rule: ToleranceRule, reference: (z: [Double], source: String)?) throws {
        self.context = context
        self.rule = rule
        let p = context.problem
        zInSet = reference != nil
        zSource = reference?.source ?? "Ã⁺y"
        z = try reference?.z ?? SVD(p.matrix).pseudoInverseApply(p.y)
    }

    public func observe(_ step: AcceptedStep) -> StepDecision {
        context.update(step)
        if context.lostLogs.current { return .proceed }
        let L = context.depth, n = context.weightCount
        let dL = Double(L)
        var phi = 0.0, scale = 0.0
        context.x.withUnsafeBufferPointer { x in
            z.withUnsafeBufferPointer { z in
                if L == 2 {
                    for i in 0..<n {
                        let x2 = x[i] * x[i], lx = context.logWeight(i)
                        phi += x2 - 2 * z[i] * lx
                        scale += x2 + 2 * abs(z[i]) * (abs(lx) + 1)
                    }
                } else {
                    let k = dL / (dL - 2)
                    for i in 0..<n {
                        let x2 = x[i] * x[i]
                        let h = invariantMap(x[i], depth: L)
                        phi += 0.5 * dL * x2 + k * z[i] * h
                        scale += 0.5 * dL * x2 + abs(k * z[i] * h)
                    }
                }
            }
        }
        if first.isNaN { first = phi }
        last = phi
        if previous.isNaN {
            worst.record(phi.isNaN ? .infinity : 0, at: step.t)
        } else {
            let inc = phi - previous
            worst.record(phi.isNaN ? .infinity : max(0, inc) / max(scale, previousScale, .leastNormalMagnitude), at: step.t)
        }
        previous = phi
        previousScale = scale
        return .proceed
    }

    var conditioning: Double {
        Double(max(1, abs(context.depth - 2))) * (context.isWeightNormalized ? 2 : 1)
    }

    public func report() -> CheckReport {
        let tol = rule.tolerance(conditioning: conditioning, steps: context.stepNumber)
        let zName = zInSet ? "z = \(zSource)" : "z = Ã⁺y"
        let function = context.depth == 2 ? "log x" : "x^(\(2 - context.depth))"
        return context.qualified(CheckReport(name: name, maxViolation: worst.value, tolerance: tol, passed: worst.value <= tol,
                           tWorst: worst.t,
                           quantity: context.crossings.annotate("max over steps of the increase of D_F(z, x^L) / size of its terms, \(zName) (relative, dimensionless; total change \(JSON.format(last - first)))",
                                                          function: function)), function: function, rule: rule)
    }
}
