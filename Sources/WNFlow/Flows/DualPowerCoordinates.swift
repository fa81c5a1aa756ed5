import Foundation
import GSLKit

/// GF (1.11) at depth `L ≥ 3` in the dual coordinates of Lemma 3.7 (docs/math.md §6a):
/// `(x^{2−L})' = (2−L) x^{1−L} x' = L(L−2) Aᵀe`, so the weights stay on
/// `u := x^{2−L} = x₀^{2−L} + Aᵀλ` with `λ' = L(L−2) e`, `e = A x^L − y`, and
/// `x = u^{−1/(L−2)}`. The state is `μ = κλ ∈ R^M` (`κ = max_n Σ_m |A_mn|`, as at depth 2),
/// so an `N`-dimensional flow runs as an `M`-dimensional one whose Jacobian is
/// `∂μ'/∂μ = −L² A diag(x^{2L−2}) Aᵀ` (symmetric, negative semidefinite).
///
/// Precision: `u = b + t` (`b = x₀^{2−L}`, `t = Aᵀμ/κ`) cancels where a weight grows far
/// above its start (`u ≪ b`), and `δx/x = −δu/((L−2)u)`. The error norm counts that rounding
/// in its floor, and `outrunsPrecision` hands the run over to weight space once the floor
/// would reach a tenth of `rtol` (`4ε (‖μ‖∞ + b_n + |t_n|)/((L−2)u_n) > rtol/10`), or where
/// `u_n ≤ 0` (a residual that does not vanish drives a weight to blow up). Entries with
/// `x₀_n = 0` stay 0 (`b_n = ∞`); a negative start is refused (use `bdf`).
public final class DualPowerGradientSystem: DualCoordinates, NegativeSemidefiniteJacobianSystem {
    public let gradientFlow: GradientFlow
    public var dimension: Int { m }
    public var hasJacobian: Bool { true }
    /// True: `∂μ'/∂μ` is symmetric (BDF up to order 6).
    public var jacobianSpectrumIsReal: Bool { true }
    let matrix: Matrix
    let m: Int, n: Int
    /// The depth `L ≥ 3`.
    let depth: Int
    /// `κ = max_n Σ_m |A_mn|`.
    let kappa: Double
    /// `b = x₀^{2−L}` (`+∞` where `x₀_n = 0`).
    private var base: [Double]
    /// `t = Aᵀμ/κ`, `u = b + t` and `x = u^{−1/(L−2)}` of the last evaluation.
    private var t: [Double], u: [Double], x: [Double]
    /// Scratch: `Aᵀv/κ` of the error norms, the weights of the Gram.
    private var tv: [Double], w: [Double], gramScratch: [Double] = []
    private let chunk = 64
    private let workspace: LossWorkspace
    private let yScale: Double, maxAbsA: Double
    /// Of the last evaluation: `μ₁`, `‖e₁‖₂`, `Σ x₁^L`, `min u₁` and
    /// `max (b + |t₁|)/((L−2) min u₁)` (≥ each weight's rounding amplification) over the weights
    /// that are not 0.
    private var lastMu: [Double]
    private var lastENorm = Double.infinity, lastPowerSum = 0.0, lastMinU = 0.0, lastAmplification = 0.0
    private var evaluation = 0
    /// Per-evaluation minima that depend on rtol, and the evaluation and rtol they were made
    /// for: `min (rtol (L−2)u₁ + 4ε(b + |t₁|))` (`weightErrorBound`) and
    /// `min (s u₁ − b − |t₁|)`, `s = (L−2) rtol/(40ε)` (`outrunsPrecision`).
    private var boundCache = (evaluation: -1, rtol: 0.0, value: 0.0)
    private var marginCache = (evaluation: -1, rtol: 0.0, value: 0.0)

    public init(flow: GradientFlow) {
        gradientFlow = flow
        matrix = flow.problem.matrix
        m = matrix.rows
        n = matrix.cols
        depth = flow.problem.depth
        kappa = DualKernel.stateScale(matrix)
        base = [Double](repeating: .infinity, count: n)
        t = [Double](repeating: 0, count: n)
        u = [Double](repeating: .infinity, count: n)
        x = [Double](repeating: 0, count: n)
        tv = [Double](repeating: 0, count: n)
        w = [Double](repeating: 0, count: n)
        workspace = flow.workspace
        let accuracy = ResidualAccuracy(problem: flow.problem)
        yScale = accuracy.yScale
        maxAbsA = accuracy.maxAbsEntry
        lastMu = [Double](repeating: 0, count: m)
    }

    /// `x = u^{−1/(L−2)}`: `1/u` at L = 3, `1/√u` at L = 4 (0 for `u = ∞`).
    @inline(__always)
    private func weight(_ u: Double) -> Double {
        switch depth {
        case 3: return 1 / u
        case 4: return 1 / u.squareRoot()
        default: return Foundation.exp(-Foundation.log(u) / Double(depth - 2))
        }
    }

    public func setBase(_ y0: [Double]) throws -> [Double] {
        guard y0.count == n else { throw ODEError.dimensionMismatch(expected: n, got: y0.count) }
        for j in 0..<n {
            guard y0[j] >= 0, y0[j].isFinite else {
                throw ODEError.invalidOptions("method dual at depth \(depth) needs x₀ ≥ 0 (entry \(j) is \(y0[j])); use bdf")
            }
            base[j] = y0[j] == 0 ? .infinity : 1 / ipow(y0[j], depth - 2)
        }
        lastENorm = .infinity
        evaluation += 1
        return [Double](repeating: 0, count: m)
    }

    /// Fills `t`, `u`, `x` at `mu`; false where some `u_n ≤ 0` or is NaN (no weight there).
    private func map(_ mu: UnsafePointer<Double>) -> Bool {
        let n = self.n
        return t.withUnsafeMutableBufferPointer { tb in
            matrix.gemv(transpose: true, alpha: 1 / kappa, x: mu, into: tb.baseAddress!)
            return base.withUnsafeBufferPointer { b in
                u.withUnsafeMutableBufferPointer { ub in
                    x.withUnsafeMutableBufferPointer { xb in
                        var ok = true
                        for j in 0..<n {
                            let v = b[j] + tb[j]
                            ub[j] = v
                            if !(v > 0) { ok = false }
                            xb[j] = weight(v)
                        }
                        return ok
                    }
                }
            }
        }
    }

    /// `e` at `mu` into the flow's `LossWorkspace` (the accurate residual of docs/math.md §6b);
    /// false where the state has no weights.
    private func residual(_ mu: UnsafePointer<Double>) -> Bool {
        evaluation += 1
        guard map(mu) else { lastENorm = .infinity; return false }
        let loss = x.withUnsafeBufferPointer { workspace.loss(at: $0.baseAddress!) }
        lastENorm = (2 * loss).squareRoot()
        let n = self.n
        var minU = Double.infinity, maxSum = 0.0
        base.withUnsafeBufferPointer { b in
            t.withUnsafeBufferPointer { tt in
                u.withUnsafeBufferPointer { ub in
                    for j in 0..<n where b[j].isFinite {
                        minU = min(minU, ub[j])
                        maxSum = max(maxSum, b[j] + abs(tt[j]))
                    }
                }
            }
        }
        lastMinU = minU
        // An upper bound on max (b + |t₁|)/((L−2)u₁) without a division per entry.
        lastAmplification = maxSum > 0 ? maxSum / (Double(depth - 2) * minU) : 0
        lastPowerSum = workspace.power.reduce(0, +)
        lastMu.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: mu, count: m) }
        return loss.isFinite
    }

    /// `max |μ − μ₁|` against the last evaluation.
    private func distanceToLast(_ mu: UnsafePointer<Double>) -> Double {
        lastMu.withUnsafeBufferPointer { l in
            var d = 0.0
            for i in 0..<m { d = max(d, abs(mu[i] - l[i])) }
            return d
        }
    }

    /// `x = (b + Aᵀμ/κ)^{−1/(L−2)}`, `log x = −log(u)/(L−2)`; NaN where `u ≤ 0`.
    public func natural(of state: UnsafeBufferPointer<Double>, into out: UnsafeMutablePointer<Double>,
                        logInto logOut: UnsafeMutablePointer<Double>?) {
        let n = self.n, p = 1 / Double(depth - 2)
        tv.withUnsafeMutableBufferPointer { tb in
            matrix.gemv(transpose: true, alpha: 1 / kappa, x: state.baseAddress!, into: tb.baseAddress!)
            base.withUnsafeBufferPointer { b in
                for j in 0..<n {
                    let v = b[j] + tb[j]
                    out[j] = v > 0 ? weight(v) : .nan
                    if let logOut { logOut[j] = v > 0 ? -p * Foundation.log(v) : .nan }
                }
            }
        }
    }

    /// `‖μ‖∞`: the size whose rounding the state carries (no bound on it here: what limits
    /// these coordinates is the cancellation in `u`, `outrunsPrecision`).
    public func departure(_ state: UnsafeBufferPointer<Double>) -> Double {
        guard let p = state.baseAddress else { return 0 }
        return maxAbs(p, state.count)
    }

    public func exactDeparture(_ state: UnsafeBufferPointer<Double>) -> Double { departure(state) }

    /// A lower bound on `½‖e‖²` as `LossWorkspace` computes it at the weights of `state`, from
    /// the last evaluation at `μ₁` (nil before one), O(M): with `d = ‖μ − μ₁‖∞`, each `u_n`
    /// moves by at most `d` (κ's definition), so `x_n^L = u_n^{−L/(L−2)}` by at most the factor
    /// `(1 − d/min u₁)^{−L/(L−2)}`, and `‖δe‖∞ ≤ max|A| Σ x₁^L ((1 − q)^{−L/(L−2)} − 1 + β)`,
    /// `q = d/min u₁`, `β = 8Lε(max (b + |t₁|)/((L−2) min u₁) + 1)` the weights' rounding. Then
    /// `‖e‖₂ ≥ ‖e₁‖₂(1 − 1e-6) − √M(δe + 4ε‖y‖∞)` (docs/math.md §6b); nil for `q ≥ ½`.
    public func lossLowerBound(_ state: UnsafeBufferPointer<Double>) -> Double? {
        guard lastENorm.isFinite, lastMinU > 0 else { return nil }
        let q = lastMinU.isFinite ? distanceToLast(state.baseAddress!) / lastMinU : 0
        guard q < 0.5 else { return nil }
        let p = Double(depth) / Double(depth - 2)
        let growth = Foundation.expm1(-p * Foundation.log1p(-q))
            + 8 * Double(depth) * .ulpOfOne * (lastAmplification + 1)
        let slack = Double(m).squareRoot() * (maxAbsA * lastPowerSum * growth + 4 * .ulpOfOne * yScale)
        let lower = lastENorm * (1 - 1e-6) - slack
        guard lower.isFinite else { return nil }
        return lower > 0 ? 0.5 * lower * lower : 0
    }

    public func recenter(_ state: UnsafeMutableBufferPointer<Double>) -> Bool { false }

    /// None: ‖μ‖∞ may grow as far as the weights need; `outrunsPrecision` bounds the run.
    public func departureBound(rtol: Double) -> Double { .infinity }

    public var lastRelativeResidual: Double { yScale > 0 ? lastENorm / yScale : .infinity }

    /// Whether `u = b + Aᵀμ/κ` at `state` has an entry `≤ 0`, or one whose rounding
    /// `4ε(‖μ‖∞ + b_n + |t_n|)` reaches `rtol/10` of `(L−2)u_n` (the weight's relative error).
    public func outrunsPrecision(_ state: UnsafeBufferPointer<Double>, rtol: Double) -> Bool {
        let n = self.n, size = departure(state), scale = Double(depth - 2) * rtol / (40 * .ulpOfOne)
        // O(M) first: from the last evaluation, `u_n ≥ u₁_n − d` and `|t_n| ≤ |t₁_n| + d`.
        if lastENorm.isFinite {
            if marginCache.evaluation != evaluation || marginCache.rtol != rtol {
                var margin = Double.infinity
                base.withUnsafeBufferPointer { b in
                    t.withUnsafeBufferPointer { tt in
                        u.withUnsafeBufferPointer { ub in
                            for j in 0..<n where b[j].isFinite { margin = min(margin, scale * ub[j] - b[j] - abs(tt[j])) }
                        }
                    }
                }
                marginCache = (evaluation, rtol, margin)
            }
            let d = distanceToLast(state.baseAddress!)
            if marginCache.value >= size + d * (1 + scale) { return false }
        }
        return tv.withUnsafeMutableBufferPointer { tb in
            matrix.gemv(transpose: true, alpha: 1 / kappa, x: state.baseAddress!, into: tb.baseAddress!)
            return base.withUnsafeBufferPointer { b in
                for j in 0..<n where b[j].isFinite {
                    let v = b[j] + tb[j]
                    if !(v > 0) || size + b[j] + abs(tb[j]) > scale * v { return true }
                }
                return false
            }
        }
    }

    /// Largest growth of `x_n^{L−2} = 1/u_n` that one step may make (`stepReach`).
    public static let maxStepGrowth = 8.0

    /// True: `stepReach` reads the last evaluation, so the BDF evaluates `f` at the step's
    /// start again after a Newton failure and the reference is never a failed solve's iterate
    /// (`BDFSolver.reachReadsLastEvaluation`).
    public var stepReachReadsLastEvaluation: Bool { true }

    /// `max_n (u₁_n/u_n)/maxStepGrowth` against the last evaluation's `u₁`, and 16 where some
    /// `u_n ≤ 0` (no weights there; the BDF shortens such a step before solving at it, as the
    /// predictor of a step across the escape from a small start would otherwise land there).
    public func stepReach(_ state: UnsafePointer<Double>) -> Double {
        let n = self.n
        // O(M) first: `u_n ≥ u₁_n − d`, so `u₁_n/u_n ≤ 1/(1 − d/min u₁)`.
        if lastENorm.isFinite && lastMinU > 0 {
            let q = lastMinU.isFinite ? distanceToLast(state) / lastMinU : 0
            if q < 1 - 1 / Self.maxStepGrowth { return 1 / ((1 - q) * Self.maxStepGrowth) }
        }
        return tv.withUnsafeMutableBufferPointer { tb in
            matrix.gemv(transpose: true, alpha: 1 / kappa, x: state, into: tb.baseAddress!)
            return base.withUnsafeBufferPointer { b in
                u.withUnsafeBufferPointer { ub in
                    var r = 0.0
                    for j in 0..<n where b[j].isFinite {
                        let v = b[j] + tb[j]
                        if !(v > 0) { return 16 }
                        r = max(r, ub[j] / v)
                    }
                    return lastENorm.isFinite ? r / Self.maxStepGrowth : 0
                }
            }
        }
    }

    /// The relative error floor of weight `j`: `rtol` plus the rounding of `u_j`
    /// (`4ε(roundingSize + b_j + |t_j|)/((L−2)u_j)`), from the last evaluation.
    @inline(__always)
    private func floor(_ j: Int, rtol: Double, roundingSize: Double, _ b: UnsafePointer<Double>,
                       _ t: UnsafePointer<Double>, _ u: UnsafePointer<Double>) -> Double {
        rtol + 4 * .ulpOfOne * (roundingSize + b[j] + abs(t[j])) / (Double(depth - 2) * u[j])
    }

    /// `δx_n/x_n = −(Aᵀv)_n/(κ(L−2)u_n)` against `floor_n + atol/x_n` (one mat-vec), `u`, `x`
    /// of the last evaluation; weights that are 0 (`x₀_n = 0`) are skipped.
    public func weightErrorNorm(_ v: UnsafePointer<Double>, at y: UnsafePointer<Double>, rtol: Double, atol: Double,
                                roundingSize: Double) -> Double {
        let n = self.n, l2 = Double(depth - 2)
        return tv.withUnsafeMutableBufferPointer { tb in
            matrix.gemv(transpose: true, alpha: 1 / kappa, x: v, into: tb.baseAddress!)
            return base.withUnsafeBufferPointer { b in
                t.withUnsafeBufferPointer { tt in
                    u.withUnsafeBufferPointer { ub in
                        x.withUnsafeBufferPointer { xb in
                            var s = 0.0
                            for j in 0..<n where xb[j] > 0 {
                                let fl = floor(j, rtol: rtol, roundingSize: roundingSize, b.baseAddress!, tt.baseAddress!, ub.baseAddress!)
                                let num = abs(tb[j]) * xb[j], den = l2 * ub[j] * (fl * xb[j] + atol)
                                if num > s * den { s = num / den }
                            }
                            return s
                        }
                    }
                }
            }
        }
    }

    /// `|(Aᵀv)_n|/κ ≤ ‖v‖∞`, so `‖v‖∞ / min_n (L−2)u_n floor_n` bounds `weightErrorNorm`:
    /// O(M), with `min_n (rtol (L−2)u_n + 4ε(b_n + |t_n|))` made once per evaluation.
    public func weightErrorBound(_ v: UnsafePointer<Double>, at y: UnsafePointer<Double>, rtol: Double, atol: Double,
                                 roundingSize: Double) -> Double {
        if boundCache.evaluation != evaluation || boundCache.rtol != rtol {
            let n = self.n, l2 = Double(depth - 2)
            var least = Double.infinity
            base.withUnsafeBufferPointer { b in
                t.withUnsafeBufferPointer { tt in
                    u.withUnsafeBufferPointer { ub in
                        x.withUnsafeBufferPointer { xb in
                            for j in 0..<n where xb[j] > 0 {
                                least = min(least, rtol * l2 * ub[j] + 4 * .ulpOfOne * (b[j] + abs(tt[j])))
                            }
                        }
                    }
                }
            }
            boundCache = (evaluation, rtol, least)
        }
        return maxAbs(v, m) / (boundCache.value + 4 * .ulpOfOne * roundingSize)
    }

    /// `μ' = κ L(L−2) e`; NaN where the state has no weights (the step is rejected).
    public func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws {
        guard residual(y.baseAddress!) else {
            for i in 0..<m { dydt[i] = .nan }
            return
        }
        let c = kappa * Double(depth) * Double(depth - 2)  // in Double: no Int overflow at absurd depths
        workspace.residual.withUnsafeBufferPointer { e in for i in 0..<m { dydt[i] = c * e[i] } }
    }

    /// `∂μ'/∂μ = −L² A diag(x^{2L−2}) Aᵀ`.
    public func jacobian(t: Double, y: UnsafeBufferPointer<Double>, dfdy: UnsafeMutableBufferPointer<Double>,
                         dfdt: UnsafeMutableBufferPointer<Double>) throws {
        let m = self.m, n = self.n
        for i in 0..<m { dfdt[i] = 0 }
        guard residual(y.baseAddress!) else {
            for k in 0..<(m * m) { dfdy[k] = .nan }
            return
        }
        let p = 2 * depth - 2
        x.withUnsafeBufferPointer { xb in
            w.withUnsafeMutableBufferPointer { wb in for j in 0..<n { wb[j] = ipow(xb[j], p) } }
        }
        DualKernel.weightedGram(matrix, weights: w, alpha: -Double(depth) * Double(depth), into: dfdy.baseAddress!,
                                ld: m, scratch: &gramScratch, chunk: chunk)
    }
}
