import Foundation
import GSLKit

/// A depth-2 flow written in the dual coordinates of Lemmas 3.7–3.8: the
/// weights stay on the invariant manifold `log x = log x₀ + Aᵀλ` (up to a
/// multiple of 1 for WN), so the state is `λ ∈ R^M` (plus `log g` for WN)
/// instead of `x ∈ R^N`. Derivation (docs/math.md §6a, from MATH.md §1, §3):
/// - GF (1.11), L = 2: `(log x)' = −2Aᵀe`, so `x = x₀ ⊙ exp(Aᵀλ)`, `λ' = −2e`;
/// - WN (1.13)–(1.14), L = 2, any rate `η_g(t)`: `(log v)' = −2η_v (g/r)² Aᵀe`
///   plus a multiple of 1, which cancels in `u = v/‖v‖`; so
///   `u = normalize(v₀ ⊙ exp(Aᵀλ))`, `λ' = −2 η_v (g/r)² e`, and
///   `(log g)' = −η_g ⟨G, u⟩/g = −2 η_g ⟨A u², e⟩`, `r = ‖v₀‖` (Lemma 3.2).
///
/// The state is scaled so that one absolute tolerance `τ` bounds the relative
/// error of every weight: `μ = κλ` with `κ = max_n Σ_m |A_mn|`, so
/// `|δ log x_n| = |(Aᵀδλ)_n| ≤ ‖δμ‖_∞`, and `θ = log g` (for WN
/// `δ log x_n = δθ + δ(Aᵀλ)_n − Σ_k p_k δ(Aᵀλ)_k`, at most `3τ`). The
/// Jacobian is a dense `(M+1) × (M+1)` (GF: `M × M`) matrix,
/// `−4 A diag(z) Aᵀ` at its core.
///
/// The coordinates assume a zero-loss limit: where the residual does not
/// vanish (y outside the cone `A R₊ᴺ`, or zero entries of `x₀`), `λ` grows
/// without bound; `DualSolver` then hands the run over to weight space.
public protocol DualCoordinates: ODESystem {
    /// Re-bases the coordinates at the weight-space state `y0` (`x₀`, or
    /// `[g₀, v₀]`) and returns the dual state there (all zeros but `log g₀`).
    func setBase(_ y0: [Double]) throws -> [Double]
    /// The weight-space state (`x`, or `[g, v]` with `‖v‖ = ‖v₀‖`) of a dual state, and with
    /// `logInto` the log of each entry's magnitude from the dual state itself (`log|x|`, or
    /// `[log|g|, log|v|]`): finite also for a weight far below double range, which `out`
    /// holds as 0 (what the monitor's log-invariants, Lemmas 3.7–3.9 and 3.18, read).
    func natural(of state: UnsafeBufferPointer<Double>, into out: UnsafeMutablePointer<Double>,
                 logInto: UnsafeMutablePointer<Double>?)
    /// `‖μ‖_∞`, which bounds `|log(x_n/x₀_n)|` (GF; for WN the change of
    /// `log v_n` up to the common normalization).
    func departure(_ state: UnsafeBufferPointer<Double>) -> Double
    /// What the hand-over bound is about, read only once `departure` has passed it: GF
    /// `max_n |log(x_n/x₀_n)|` exactly (a mat-vec; `‖μ‖∞` can be far larger: 300 passed
    /// where no weight had moved by more than e^94); WN `departure` itself (its bound is
    /// about μ's rounding).
    func exactDeparture(_ state: UnsafeBufferPointer<Double>) -> Double
    /// A lower bound on the loss (1.10) that `LossWorkspace` computes at the weights of
    /// `state`, from the residual of the last RHS or Jacobian evaluation and how far
    /// `state` lies from where that was (O(M), no mat-vec; nil before any evaluation).
    /// See `DualKernel.lossLowerBound`.
    func lossLowerBound(_ state: UnsafeBufferPointer<Double>) -> Double?
    /// Moves the base to the weights of `state` in log form (nothing is exponentiated, so a
    /// weight far below double range keeps its log) and writes the dual state of the same
    /// weights in the new frame (`μ = 0`) into `state`; false where the coordinates cannot (GF).
    func recenter(_ state: UnsafeMutableBufferPointer<Double>) -> Bool
    /// `‖e‖₂/‖y‖∞` of the last RHS or Jacobian evaluation (∞ before one): how near the run is
    /// to its zero-loss limit, where `DualSolver` re-centers early (see `precisionDeparture`).
    var lastRelativeResidual: Double { get }
    /// The local error `v` of the dual state `y` measured on the weight-space state it stands
    /// for, as GSL measures weight space: `max |δ log w_i| / (rtol + atol/|w_i| + ρ)` over
    /// GF's `x` (WN: `g` and `v`), `δ log x = Aᵀv/κ` exactly (one mat-vec), `|w|` from the
    /// last evaluation, `ρ = 4ε·roundingSize` the dual state's own rounding, `roundingSize` the
    /// largest `‖μ‖∞` of the recent steps (the BDF history's rows, also those made before a
    /// re-centering; `DualSolver` keeps it). So `|δx| ≤ rtol|x| + atol`
    /// for every weight (GSL's control), relative also below atol/rtol; atol = 0: relative
    /// for every weight (docs/math.md §6a).
    func weightErrorNorm(_ v: UnsafePointer<Double>, at y: UnsafePointer<Double>, rtol: Double, atol: Double,
                         roundingSize: Double) -> Double
    /// An upper bound on `weightErrorNorm` without the mat-vec (`|(Aᵀv)_n|/κ ≤ ‖v‖∞`), O(M).
    func weightErrorBound(_ v: UnsafePointer<Double>, at y: UnsafePointer<Double>, rtol: Double, atol: Double,
                          roundingSize: Double) -> Double
    /// Whether the coordinates can no longer hold the weights of `state` to `rtol`, whatever
    /// `departure` says (depth ≥ 3: cancellation in `x^{2−L} = x₀^{2−L} + Aᵀλ`); `DualSolver`
    /// then hands over to weight space. False by default.
    func outrunsPrecision(_ state: UnsafeBufferPointer<Double>, rtol: Double) -> Bool
    /// How far `state` lies outside what one step may reach besides `departure`'s bound
    /// (above 1: outside, `BDFSolver.stateReach`); 0 by default. Depth ≥ 3: where
    /// `x^{2−L}` would leave (0, ∞) or shrink too far in one step.
    func stepReach(_ state: UnsafePointer<Double>) -> Double
    /// Whether `stepReach` measures against the last RHS evaluation (depth ≥ 3), so that the
    /// BDF must evaluate at a step's start after a failed Newton solve
    /// (`BDFSolver.reachReadsLastEvaluation`). False by default.
    var stepReachReadsLastEvaluation: Bool { get }
    /// The `departure` past which `DualSolver` hands over to weight space (`maxDeparture`'s
    /// default): GF at depth 2 300 (weights within double range), WN `max(1e4, rtol/4ε)`
    /// (μ's rounding within rtol), depth ≥ 3 GF none (`outrunsPrecision` instead).
    func departureBound(rtol: Double) -> Double
}

extension DualCoordinates {
    public func outrunsPrecision(_ state: UnsafeBufferPointer<Double>, rtol: Double) -> Bool { false }
    public func stepReach(_ state: UnsafePointer<Double>) -> Double { 0 }
    public var stepReachReadsLastEvaluation: Bool { false }

    /// The weight-space state of a dual state (`natural(of:into:logInto:)` without the logs).
    public func natural(of state: UnsafeBufferPointer<Double>, into out: UnsafeMutablePointer<Double>) {
        natural(of: state, into: out, logInto: nil)
    }
}

/// Makes the dual-coordinate system of a depth-2 GF or WN flow; throws,
/// saying why, for any other.
public func makeDualCoordinates(for flow: any Flow) throws -> any DualCoordinates {
    let depth = flow.problem.depth
    if depth == 2 {
        if let wn = flow as? WeightNormFlow { return DualWeightNormSystem(flow: wn) }
        if let gf = flow as? GradientFlow { return DualGradientSystem(flow: gf) }
    }
    if depth >= 3, let gf = flow as? GradientFlow { return DualPowerGradientSystem(flow: gf) }
    let reason = depth >= 2 ? "flow \(flow.kind.rawValue) has no dual form at depth \(depth)" : "depth \(depth) (dual coordinates are for depth ≥ 2)"
    throw ODEError.invalidOptions("method dual: \(reason); use bdf or msbdf")
}

/// Buffers and the mat-vecs shared by the two dual systems.
final class DualKernel {
    let matrix: Matrix
    let y: [Double]
    let m: Int, n: Int
    /// `κ = max_n Σ_m |A_mn|` (state scale, see `DualCoordinates`).
    let kappa: Double
    /// `log z₀` (GF) or `log v₀²` (WN); `−∞` where the base entry is 0 (and
    /// before `setBase`).
    var logBase: [Double]
    /// `Aᵀλ`, then reused as scratch.
    var t: [Double]
    /// `z = x²` (GF) or `p = u²` (WN) of the last evaluation.
    var w: [Double]
    /// `A w` and the residual `e = g² A w − y` of the last `residual` call.
    var aw: [Double]
    var e: [Double]
    /// Workspace of the weighted Gram (chunked, see `weightedGramUpper`).
    var scratch: [Double]
    let chunk = 64
    /// The residual near a zero of the loss (docs/math.md §6b) comes from a
    /// reference state `(μ_r, θ_r)`. `refBlock` holds `μ_r`, `A w_r`, `e_r`
    /// (summed in double-double), scratch `Δ` (M each), then `w_r` (N), read
    /// through pointers (no exclusivity checks in the per-RHS loops).
    private let refBlock: UnsafeMutablePointer<Double>
    private var refTheta = 0.0, refG2 = 1.0, refSize = 0.0
    private var hasReference = false
    private let accuracy: ResidualAccuracy
    /// The `μ` (M), `θ`, `‖e‖₂` and `g² Σ w` of the last `residual` call
    /// (`lossLowerBound`).
    private let lastMu: UnsafeMutablePointer<Double>
    private var lastTheta = 0.0, lastENorm = 0.0, lastMass = 0.0
    private var hasLast = false
    private var maxAbsLogBase = 0.0
    /// Constants of `lossLowerBound`: `max|A_ij|` and `√M`.
    private let maxAbsA: Double, rootM: Double

    init(problem: Problem) {
        matrix = problem.matrix
        y = problem.y
        let cols = matrix.cols
        m = matrix.rows
        n = cols
        kappa = Self.stateScale(matrix)
        logBase = [Double](repeating: -.infinity, count: n)
        refBlock = .allocate(capacity: 4 * m + n)
        refBlock.initialize(repeating: 0, count: 4 * m + n)
        lastMu = .allocate(capacity: max(m, 1))
        lastMu.initialize(repeating: 0, count: max(m, 1))
        accuracy = ResidualAccuracy(problem: problem)
        maxAbsA = accuracy.maxAbsEntry
        rootM = Double(m).squareRoot()
        t = [Double](repeating: 0, count: n)
        w = [Double](repeating: 0, count: n)
        aw = [Double](repeating: 0, count: m)
        e = [Double](repeating: 0, count: m)
        scratch = []
    }

    /// `t = logBase + 2Aᵀμ/κ` (log z or log v²); returns `max t` (normalize) or 0.
    func logWeights(_ mu: UnsafePointer<Double>, normalize: Bool) -> Double {
        t.withUnsafeMutableBufferPointer { tb in
            matrix.gemv(transpose: true, alpha: 2 / kappa, x: mu, into: tb.baseAddress!)
            var shift = 0.0
            if normalize {
                shift = -Double.infinity
                for j in 0..<n { tb[j] += logBase[j]; shift = max(shift, tb[j]) }
            } else {
                for j in 0..<n { tb[j] += logBase[j] }
            }
            return shift
        }
    }

    /// `w = exp(logBase + 2Aᵀμ/κ − shift)` with `shift = 0` (GF) or the max
    /// (WN, then normalized to `Σw = 1`; in log space, so nothing overflows),
    /// and `aw = A w`. Only evaluations write `w` (`weightErrorNorm` reads it).
    /// Returns the sum of the exponentials (`Σw` from 0 in index order without normalization).
    @discardableResult
    func exponentiate(_ mu: UnsafePointer<Double>, normalize: Bool) -> Double {
        let shift = logWeights(mu, normalize: normalize)
        let s = w.withUnsafeMutableBufferPointer { wb in
            let s = exponentials(shift: shift, into: wb.baseAddress!)
            if normalize { let r = 1 / s; for j in 0..<n { wb[j] *= r } }
            return s
        }
        w.withUnsafeBufferPointer { wb in aw.withUnsafeMutableBufferPointer { matrix.gemv(x: wb.baseAddress!, into: $0.baseAddress!) } }
        return s
    }

    /// `out = exp(t − shift)` (N) after `logWeights`; returns their sum.
    func exponentials(shift: Double, into out: UnsafeMutablePointer<Double>) -> Double {
        t.withUnsafeBufferPointer { tb in
            var s = 0.0
            for j in 0..<n { out[j] = Foundation.exp(tb[j] - shift); s += out[j] }
            return s
        }
    }

    deinit { refBlock.deallocate(); lastMu.deallocate() }

    /// Forgets the reference and the last evaluation (the base changed), and
    /// takes `max |logBase|` over its finite entries for `lossLowerBound`.
    func invalidateReference() {
        hasReference = false
        hasLast = false
        maxAbsLogBase = logBase.reduce(0) { $1.isFinite ? max($0, abs($1)) : $0 }
    }

    /// Fills `w`, `aw = A w` and `e = g² A w − y` at `(μ, θ)` with `g² = e^{2θ}`
    /// (GF: θ = 0, no normalization). Far from a zero of the loss by
    /// `exponentiate` and a direct sum; near one (`‖e‖∞ < ‖y‖∞/K`,
    /// `K = ResidualAccuracy.factor`) from the reference:
    /// `w = w_r ⊙ exp(Δt − c)`, `Δt = 2Aᵀ(μ − μ_r)/κ`, `c = log Σ w_r e^{Δt}`
    /// (0 for GF), `δw = w_r ⊙ expm1(Δt − c)` (one `expm1` per entry), and
    /// `e = e_r + g_r² (expm1(2Δθ)(A w_r + Aδw) + Aδw)`. When that rounding
    /// bound breaks the promise the reference moves to the `w` this formula
    /// gave, not to `exponentiate`'s: `w(μ)` then stays one smooth function
    /// (its distance to `exp(t)` rounded afresh, ε|t| per entry, is fixed at
    /// the first reference instead of jumping at every move).
    func residual(_ mu: UnsafePointer<Double>, theta: Double, normalize: Bool) {
        let sum = fillResidual(mu, theta: theta, normalize: normalize)
        evaluations &+= 1
        // What `lossLowerBound` starts from.
        lastMu.update(from: mu, count: m)
        lastTheta = theta
        var e2 = 0.0, mass = 0.0
        for i in 0..<m { e2 += e[i] * e[i] }
        // GF from `exponentiate`: its sum of the exponentials is this sum, added in the same
        // order (one chain of N dependent adds, about half of this function's time, saved).
        if normalize { mass = 1 } else if let sum { mass = sum } else { for j in 0..<n { mass += w[j] } }
        lastENorm = e2.squareRoot()
        lastMass = Foundation.exp(2 * theta) * mass
        hasLast = lastENorm.isFinite && lastMass.isFinite
    }

    /// `½‖e‖²` of the last `residual` call (for tests of `lossLowerBound`).
    var lastEvaluationLoss: Double? { hasLast ? 0.5 * lastENorm * lastENorm : nil }

    /// `‖e‖₂/‖y‖∞` of the last `residual` call (∞ before one or for y = 0).
    var lastRelativeResidual: Double {
        let ny = accuracy.yScale
        return hasLast && ny > 0 ? lastENorm / ny : .infinity
    }

    /// A lower bound on `½‖e‖²` as `LossWorkspace` computes it at the weights of `(μ, θ)`,
    /// from the last `residual` call at `(μ₁, θ₁)` (nil before one). With `d = ‖μ − μ₁‖∞`:
    /// `|Δt_j| = |2(Aᵀ(μ − μ₁))_j/κ| ≤ 2d` (κ's definition), so each `log(g² w_j)` moves by at
    /// most `D = 2d + 2|θ − θ₁|` (GF; WN's normalizer adds another `2d`), and
    /// `‖δe‖∞ ≤ max|A| expm1(D) Σ g² w`. The observers' weights are `exp(t)` rounded afresh,
    /// which differ from the kernel's by about ε|t| per entry (`residual`), `|t| ≤
    /// max|log base| + 2‖μ‖∞` (doubled for WN's shift): another `max|A| Σ g² w · 8ε(4|t|max + 4)`.
    /// Then `‖e‖₂ ≥ ‖e₁‖₂(1 − 1e-6) − √M(δe + bias)`, the
    /// `1e-6` covering `e₁`'s own rounding (docs/math.md §6b).
    func lossLowerBound(_ mu: UnsafePointer<Double>, theta: Double, normalize: Bool) -> Double? {
        guard hasLast else { return nil }
        // Two maxima each (`Swift.max` drops a NaN either way): one dependent chain of 40
        // compares per maximum was most of this function's 2.1% of a GF dual run.
        var d0 = 0.0, d1 = 0.0, s0 = 0.0, s1 = 0.0
        var i = 0
        while i + 2 <= m {
            d0 = max(d0, abs(mu[i] - lastMu[i])); s0 = max(s0, abs(mu[i]))
            d1 = max(d1, abs(mu[i + 1] - lastMu[i + 1])); s1 = max(s1, abs(mu[i + 1]))
            i += 2
        }
        if i < m { d0 = max(d0, abs(mu[i] - lastMu[i])); s0 = max(s0, abs(mu[i])) }
        let d = max(d0, d1), size = max(s0, s1)
        let D = (normalize ? 4 : 2) * d + 2 * abs(theta - lastTheta)
        let tMax = maxAbsLogBase + 2 * size
        let spread = maxAbsA * lastMass * (Foundation.expm1(D) + 8 * Double.ulpOfOne * (4 * tMax + 4))
        let lower = lastENorm * (1 - 1e-6) - rootM * spread
        guard lower.isFinite else { return nil }
        return lower > 0 ? 0.5 * lower * lower : 0
    }

    /// Returns `Σw` (from 0, in index order) where `exponentiate` summed it (no normalization), else nil.
    private func fillResidual(_ mu: UnsafePointer<Double>, theta: Double, normalize: Bool) -> Double? {
        if hasReference {
            switch fromReference(mu, theta: theta, normalize: normalize) {
            case true?: return nil
            case false?:
                rebase(mu, theta: theta, g2: refG2 * (1 + Foundation.expm1(2 * (theta - refTheta))))
                return nil
            case nil: break  // not finite there: start afresh
            }
        }
        let sum = exponentiate(mu, normalize: normalize)
        let g2 = Foundation.exp(2 * theta)
        let size = e.withUnsafeMutableBufferPointer { eb in
            aw.withUnsafeBufferPointer { ab in
                y.withUnsafeBufferPointer { yb in
                    for i in 0..<m { eb[i] = g2 * ab[i] - yb[i] }
                    return maxAbs(eb.baseAddress!, m)
                }
            }
        }
        if accuracy.needsReference(directSize: size) { rebase(mu, theta: theta, g2: g2) }
        return normalize ? nil : sum
    }

    /// True: `w`, `aw`, `e` served from the reference; false: `w` is filled
    /// (finite) but `e`'s rounding bound is too large; nil: not finite.
    private func fromReference(_ mu: UnsafePointer<Double>, theta: Double, normalize: Bool) -> Bool? {
        let m = self.m, n = self.n
        let refMu = refBlock, refAW = refBlock + m, refE = refBlock + 2 * m, delta = refBlock + 3 * m
        let refW = refBlock + 4 * m
        for i in 0..<m { delta[i] = mu[i] - refMu[i] }
        let eg = Foundation.expm1(2 * (theta - refTheta))
        let g2 = refG2, size = refSize, accuracy = self.accuracy, alpha = 2 / kappa
        let a = matrix
        return t.withUnsafeMutableBufferPointer { tb in
            w.withUnsafeMutableBufferPointer { wb in
                aw.withUnsafeMutableBufferPointer { ab in
                    e.withUnsafeMutableBufferPointer { eb -> Bool? in
                        let t = tb.baseAddress!
                        a.gemv(transpose: true, alpha: alpha, x: delta, into: t)
                        // E_j = expm1(Δt_j); with normalization S = Σ w_r E_j = expm1(c)
                        // and expm1(Δt_j − c) = (E_j − S)/(1 + S). l1 bounds Σ|δw|
                        // with the rounding of (E_j − S)/(1 + S) included.
                        for j in 0..<n { t[j] = Foundation.expm1(t[j]) }
                        var sum = 0.0
                        if normalize { for j in 0..<n { sum += refW[j] * t[j] } }
                        let inv = 1 / (1 + sum), absInv = abs(inv)
                        var l1 = 0.0
                        for j in 0..<n {
                            let d = refW[j] * ((t[j] - sum) * inv)
                            l1 += refW[j] * (abs(t[j]) + abs(sum)) * absInv
                            t[j] = d
                            wb[j] = refW[j] + d
                        }
                        guard l1.isFinite else { return nil }
                        a.gemv(x: t, into: delta)
                        var awMax = 0.0, eMax = 0.0
                        for i in 0..<m {
                            ab[i] = refAW[i] + delta[i]
                            eb[i] = refE[i] + g2 * (eg * ab[i] + delta[i])
                            awMax = max(awMax, abs(ab[i]))
                            eMax = max(eMax, abs(eb[i]))
                        }
                        return accuracy.keeps(bound: size + g2 * (accuracy.maxAbsEntry * l1 + abs(eg) * awMax), size: eMax)
                    }
                }
            }
        }
    }

    /// Makes the current state (`w` as last filled) the reference:
    /// `A w` in double-double, `e = g²·Aw − y` with the product and the
    /// difference compensated too.
    private func rebase(_ mu: UnsafePointer<Double>, theta: Double, g2: Double) {
        matrix.storage.withUnsafeBufferPointer { a in
            w.withUnsafeBufferPointer { wb in
                for i in 0..<m {
                    let (s, c) = compensatedDot(a.baseAddress! + i * n, wb.baseAddress!, nil, n, start: 0)
                    let p = g2 * s
                    let pErr = (-p).addingProduct(g2, s) + g2 * c
                    let d = p - y[i]
                    let z = d - p
                    let dErr = (p - (d - z)) + (-y[i] - z)
                    e[i] = d + (dErr + pErr)
                    aw[i] = s + c
                }
            }
        }
        for i in 0..<m { refBlock[i] = mu[i]; refBlock[m + i] = aw[i]; refBlock[2 * m + i] = e[i] }
        w.withUnsafeBufferPointer { (refBlock + 4 * m).update(from: $0.baseAddress!, count: n) }
        refTheta = theta
        refG2 = g2
        refSize = e.withUnsafeBufferPointer { maxAbs($0.baseAddress!, m) }
        hasReference = true
    }

    /// Counts `residual` calls (each writes `w`), so that `√w` is taken once per evaluation.
    private var evaluations = 0, rootEvaluation = -1
    private var rootW: [Double] = []

    /// `max_n |t_n − c|·x_n/(floor·x_n + atol)` with `t = Aᵀv/κ` (one mat-vec), `c = Σ w t`
    /// (`centered`, WN's normalization) or 0, `x = radius·√w` of the last evaluation: the
    /// weights' local error `|δ log x_n|` against `floor + atol/x_n` (`weightErrorNorm`),
    /// dividing only where the maximum moves.
    func logErrorNorm(_ v: UnsafePointer<Double>, floor: Double, atol: Double, radius: Double, centered: Bool) -> Double {
        let n = self.n
        return t.withUnsafeMutableBufferPointer { tb in
            let t = tb.baseAddress!
            matrix.gemv(transpose: true, alpha: 1 / kappa, x: v, into: t)
            return w.withUnsafeBufferPointer { wb in
                var c = 0.0
                if centered { for j in 0..<n { c += wb[j] * t[j] } }
                var s = 0.0
                if atol == 0 {
                    for j in 0..<n where wb[j] > 0 { s = max(s, abs(t[j] - c)) }
                    return s / floor
                }
                if rootEvaluation != evaluations || rootW.count != n {
                    if rootW.count != n { rootW = [Double](repeating: 0, count: n) }
                    if n > 0 { rootW.withUnsafeMutableBufferPointer { squareRoots(wb.baseAddress!, into: $0.baseAddress!, count: n) } }
                    rootEvaluation = evaluations
                }
                return rootW.withUnsafeBufferPointer { rb in
                    for j in 0..<n {
                        let x = radius * rb[j]
                        let num = abs(t[j] - c) * x, den = floor * x + atol
                        if num > s * den { s = num / den }
                    }
                    return s
                }
            }
        }
    }

    /// The relative floor of the weights' local error, `rtol + 4ε·roundingSize`: the
    /// tolerance plus the rounding a dual state of size `roundingSize` carries.
    static func errorFloor(rtol: Double, roundingSize: Double) -> Double {
        rtol + 4 * .ulpOfOne * roundingSize
    }

    /// `‖state[offset...]‖_∞`.
    func departure(_ state: UnsafeBufferPointer<Double>, offset: Int) -> Double {
        guard let p = state.baseAddress, state.count > offset else { return 0 }
        // Four independent maxima (one dependent chain of compares was 5.8% of a GF run).
        let count = state.count - offset, v = p + offset
        var d0 = 0.0, d1 = 0.0, d2 = 0.0, d3 = 0.0
        var i = 0
        while i + 4 <= count {
            let a0 = abs(v[i]), a1 = abs(v[i + 1]), a2 = abs(v[i + 2]), a3 = abs(v[i + 3])
            d0 = a0 > d0 ? a0 : d0; d1 = a1 > d1 ? a1 : d1
            d2 = a2 > d2 ? a2 : d2; d3 = a3 > d3 ? a3 : d3
            i += 4
        }
        while i < count { let a = abs(v[i]); d0 = a > d0 ? a : d0; i += 1 }
        return max(max(d0, d1), max(d2, d3))
    }

    /// `out[i·ld + j] = α (A diag(w) Aᵀ)_ij` into the `M × M` block at `out`.
    func weightedGram(alpha: Double, into out: UnsafeMutablePointer<Double>, ld: Int) {
        Self.weightedGram(matrix, weights: w, alpha: alpha, into: out, ld: ld, scratch: &scratch, chunk: chunk)
    }

    /// `κ = max_n Σ_m |A_mn|` (1 for a zero matrix): with `μ = κλ`, `|(Aᵀδμ)_n|/κ ≤ ‖δμ‖∞`.
    static func stateScale(_ matrix: Matrix) -> Double {
        let cols = matrix.cols
        var col = [Double](repeating: 0, count: cols)
        for (k, a) in matrix.storage.enumerated() { col[k % cols] += abs(a) }
        let k = col.max() ?? 1
        return k > 0 ? k : 1
    }

    /// `out[i·ld + j] = α (A diag(weights) Aᵀ)_ij`, both triangles, into the `M × M` block at
    /// `out` (`weightedGramUpper`, chunked through `scratch`): the dual systems' Jacobians.
    static func weightedGram(_ matrix: Matrix, weights: [Double], alpha: Double, into out: UnsafeMutablePointer<Double>,
                             ld: Int, scratch: inout [Double], chunk: Int) {
        let m = matrix.rows, n = matrix.cols
        if scratch.count != m * chunk { scratch = [Double](repeating: 0, count: m * chunk) }
        for i in 0..<m { for j in 0..<m { out[i * ld + j] = 0 } }
        matrix.storage.withUnsafeBufferPointer { a in
            weights.withUnsafeBufferPointer { wb in
                scratch.withUnsafeMutableBufferPointer { s in
                    weightedGramUpper(k: m, m: n, r: a.baseAddress!, ldr: n, w: wb.baseAddress!, alpha: alpha,
                                      out: out, ldo: ld, scratch: s.baseAddress!, chunk: chunk)
                }
            }
        }
        for i in 0..<m { for j in 0..<i { out[i * ld + j] = out[j * ld + i] } }
    }
}

/// GF (1.11) at depth 2 in dual coordinates: state `μ = κλ ∈ R^M`,
/// `x = x₀ ⊙ exp(Aᵀμ/κ)`, `μ' = −2κ e`, `∂μ'/∂μ = −4 A diag(x²) Aᵀ`.
public final class DualGradientSystem: DualCoordinates, NegativeSemidefiniteJacobianSystem {
    public let gradientFlow: GradientFlow
    public var dimension: Int { kernel.m }
    public var hasJacobian: Bool { true }
    /// True: `∂μ'/∂μ = −4 A diag(x²) Aᵀ` is symmetric (BDF up to order 6).
    public var jacobianSpectrumIsReal: Bool { true }
    let kernel: DualKernel
    private var x0: [Double]

    public init(flow: GradientFlow) {
        gradientFlow = flow
        kernel = DualKernel(problem: flow.problem)
        x0 = [Double](repeating: 0, count: kernel.n)
    }

    public func setBase(_ y0: [Double]) throws -> [Double] {
        guard y0.count == kernel.n else { throw ODEError.dimensionMismatch(expected: kernel.n, got: y0.count) }
        x0 = y0
        for j in 0..<kernel.n { kernel.logBase[j] = 2 * log(abs(y0[j])) }
        kernel.invalidateReference()
        return [Double](repeating: 0, count: kernel.m)
    }

    /// `x = x₀ ⊙ exp(Aᵀμ/κ)`; an entry with `x₀_n = 0` stays 0 (never `0·∞`).
    /// `log|x| = log|x₀| + Aᵀμ/κ` (`−∞` where `x₀_n = 0`).
    public func natural(of state: UnsafeBufferPointer<Double>, into out: UnsafeMutablePointer<Double>,
                        logInto logOut: UnsafeMutablePointer<Double>?) {
        let k = kernel
        k.t.withUnsafeMutableBufferPointer { tb in
            k.matrix.gemv(transpose: true, alpha: 1 / k.kappa, x: state.baseAddress!, into: tb.baseAddress!)
            for j in 0..<k.n { out[j] = x0[j] == 0 ? 0 : x0[j] * Foundation.exp(tb[j]) }
            if let logOut { for j in 0..<k.n { logOut[j] = 0.5 * k.logBase[j] + tb[j] } }
        }
    }

    public func departure(_ state: UnsafeBufferPointer<Double>) -> Double { kernel.departure(state, offset: 0) }

    public func lossLowerBound(_ state: UnsafeBufferPointer<Double>) -> Double? {
        kernel.lossLowerBound(state.baseAddress!, theta: 0, normalize: false)
    }

    /// GF hands over instead: its bound (e^{300}) is about weights leaving double range.
    public func recenter(_ state: UnsafeMutableBufferPointer<Double>) -> Bool { false }

    /// 300: `|log(x_n/x₀_n)| ≤ 300` keeps the weights within double range.
    public func departureBound(rtol: Double) -> Double { 300 }

    public var lastRelativeResidual: Double { kernel.lastRelativeResidual }

    /// `max_n |(Aᵀμ)_n|/κ = max_n |log(x_n/x₀_n)|`.
    public func exactDeparture(_ state: UnsafeBufferPointer<Double>) -> Double {
        let k = kernel
        return k.t.withUnsafeMutableBufferPointer { tb in
            k.matrix.gemv(transpose: true, alpha: 1 / k.kappa, x: state.baseAddress!, into: tb.baseAddress!)
            var d = 0.0
            for j in 0..<k.n { d = max(d, abs(tb[j])) }
            return d
        }
    }

    /// `δ log x = Aᵀv/κ`, `|x| = √z` of the last evaluation.
    public func weightErrorNorm(_ v: UnsafePointer<Double>, at y: UnsafePointer<Double>, rtol: Double, atol: Double,
                                roundingSize: Double) -> Double {
        kernel.logErrorNorm(v, floor: DualKernel.errorFloor(rtol: rtol, roundingSize: roundingSize), atol: atol, radius: 1, centered: false)
    }

    public func weightErrorBound(_ v: UnsafePointer<Double>, at y: UnsafePointer<Double>, rtol: Double, atol: Double,
                                 roundingSize: Double) -> Double {
        maxAbs(v, kernel.m) / DualKernel.errorFloor(rtol: rtol, roundingSize: roundingSize)
    }

    public func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws {
        let k = kernel
        k.residual(y.baseAddress!, theta: 0, normalize: false)
        let c = -2 * k.kappa
        for i in 0..<k.m { dydt[i] = c * k.e[i] }
    }

    public func jacobian(t: Double, y: UnsafeBufferPointer<Double>, dfdy: UnsafeMutableBufferPointer<Double>,
                         dfdt: UnsafeMutableBufferPointer<Double>) throws {
        let k = kernel
        k.residual(y.baseAddress!, theta: 0, normalize: false)
        k.weightedGram(alpha: -4, into: dfdy.baseAddress!, ld: k.m)
        for i in 0..<k.m { dfdt[i] = 0 }
    }
}

/// WN (1.13)–(1.14) at depth 2, constant or time-dependent η_g, in dual
/// coordinates: state `[θ, μ]`, `θ = log g`, `μ = κλ`,
/// `u = normalize(v₀ ⊙ exp(Aᵀμ/κ))`, `p = u²`, `e = g² A p − y`,
/// `θ' = −2 η_g ⟨Ap, e⟩`, `μ' = −2κ β g² e` with `β = η_v/‖v₀‖²`.
public final class DualWeightNormSystem: DualCoordinates {
    public let weightNormFlow: WeightNormFlow
    public var dimension: Int { kernel.m + 1 }
    public var hasJacobian: Bool { true }
    /// True, for both rates: with the blocks of `jacobian`, `J = [[j₀₀, −α(Ks)ᵀ], [−γs, −δK]]`
    /// (`α = 4η_g/κ`, `γ = 4κβg²`, `δ = 4βg⁴`, all > 0; `K` symmetric PSD). With
    /// `T = diag(√(α/γ), K^{−1/2})`, `T⁻¹JT = [[j₀₀, −√(αγ) rᵀ], [−√(αγ) r, −δK]]`,
    /// `r = K^{1/2}s`, is symmetric (K singular: a limit of such), so every eigenvalue is
    /// real (BDF up to order 6; `realSpectrumOfTheFlowJacobians` checks it).
    public var jacobianSpectrumIsReal: Bool { true }
    let kernel: DualKernel
    private var sign0: [Double]
    private var gSign = 1.0
    private var r = 1.0
    /// `K(e + g² Ap)` and `e + g²Ap` (Jacobian workspace).
    private var ke: [Double]
    private var s: [Double]

    public init(flow: WeightNormFlow) {
        weightNormFlow = flow
        kernel = DualKernel(problem: flow.problem)
        sign0 = [Double](repeating: 1, count: kernel.n)
        ke = [Double](repeating: 0, count: kernel.m)
        s = [Double](repeating: 0, count: kernel.m)
    }

    var beta: Double { weightNormFlow.etaV / (r * r) }

    /// η_g at `g` (constant, or `η_v g²/r²` by Thm 2.4).
    func etaG(g: Double) -> Double {
        switch weightNormFlow.rate {
        case let .constant(c): return c
        case .timeDependent: return beta * g * g
        }
    }

    public func setBase(_ y0: [Double]) throws -> [Double] {
        let n = kernel.n
        guard y0.count == n + 1 else { throw ODEError.dimensionMismatch(expected: n + 1, got: y0.count) }
        guard y0[0] != 0 else { throw ODEError.invalidOptions("method dual needs g₀ ≠ 0 (it integrates log |g|)") }
        let v0 = Array(y0.dropFirst())
        r = norm2(v0)
        guard r > 0 else { throw ODEError.invalidOptions("method dual needs v₀ ≠ 0") }
        gSign = y0[0] < 0 ? -1 : 1
        for j in 0..<n {
            sign0[j] = v0[j] < 0 ? -1 : 1
            kernel.logBase[j] = 2 * log(abs(v0[j]))
        }
        kernel.invalidateReference()
        return [log(abs(y0[0]))] + [Double](repeating: 0, count: kernel.m)
    }

    /// `g = ±e^θ`, `v = r·normalize(v₀ ⊙ exp(Aᵀμ/κ))`; `log|g| = θ`,
    /// `log|v_n| = log r + (t_n − shift − log Σ e^{t − shift})/2`, `t = log v₀² + 2Aᵀμ/κ`.
    public func natural(of state: UnsafeBufferPointer<Double>, into out: UnsafeMutablePointer<Double>,
                        logInto logOut: UnsafeMutablePointer<Double>?) {
        // Not through `exponentiate`: the kernel's `w` stays the last evaluation's.
        let k = kernel
        let shift = k.logWeights(state.baseAddress! + 1, normalize: true)
        out[0] = gSign * Foundation.exp(state[0])
        let sum = k.exponentials(shift: shift, into: out + 1)
        let scale = r / sum.squareRoot()
        for j in 0..<k.n { out[j + 1] = scale * sign0[j] * out[j + 1].squareRoot() }
        if let logOut {
            logOut[0] = state[0]
            let c = Foundation.log(r) - 0.5 * (shift + Foundation.log(sum))
            k.t.withUnsafeBufferPointer { tb in for j in 0..<k.n { logOut[j + 1] = sign0[j] == 0 ? -.infinity : c + 0.5 * tb[j] } }
        }
    }

    public func departure(_ state: UnsafeBufferPointer<Double>) -> Double { kernel.departure(state, offset: 1) }

    /// `DualSolver.weightNormDeparture(rtol:)`: μ's rounding `4ε‖μ‖∞` within rtol.
    public func departureBound(rtol: Double) -> Double { DualSolver.weightNormDeparture(rtol: rtol) }

    public func exactDeparture(_ state: UnsafeBufferPointer<Double>) -> Double { departure(state) }

    public func lossLowerBound(_ state: UnsafeBufferPointer<Double>) -> Double? {
        kernel.lossLowerBound(state.baseAddress! + 1, theta: state[0], normalize: true)
    }

    public var lastRelativeResidual: Double { kernel.lastRelativeResidual }

    /// `log v² ← log v₀² + 2Aᵀμ/κ − max` (u is normalized, so the shift changes nothing),
    /// `μ ← 0`, θ kept: the same `u` and `g`, and `log u − log u₀ ∈ range(Aᵀ) + R·1` as
    /// before, so Lemmas 3.2 and 3.3 still hold by construction. A `log v²` of −1e5 is an
    /// ordinary number here, while `v` itself would be 0 in weight space.
    public func recenter(_ state: UnsafeMutableBufferPointer<Double>) -> Bool {
        let k = kernel, m = k.m, n = k.n
        guard m > 0, state.count == m + 1, state.allSatisfy({ $0.isFinite }) else { return false }
        // `t` is the kernel's scratch (N), as in `natural`.
        let top: Double = k.t.withUnsafeMutableBufferPointer { tb in
            k.matrix.gemv(transpose: true, alpha: 2 / k.kappa, x: state.baseAddress! + 1, into: tb.baseAddress!)
            var top = -Double.infinity
            for j in 0..<n { tb[j] += k.logBase[j]; top = max(top, tb[j]) }
            return top
        }
        guard top.isFinite else { return false }
        for j in 0..<n { k.logBase[j] = k.t[j] - top }
        k.invalidateReference()
        for i in 1...m { state[i] = 0 }
        return true
    }

    /// `δθ` against `g`, and `δ log v_n = (Aᵀv)_n/κ − Σ_k p_k (Aᵀv)_k/κ` (‖v‖ is constant,
    /// Lemma 3.2) against `|v_n| = ‖v₀‖√p_n`, `p` of the last evaluation.
    public func weightErrorNorm(_ v: UnsafePointer<Double>, at y: UnsafePointer<Double>, rtol: Double, atol: Double,
                                roundingSize: Double) -> Double {
        let floor = DualKernel.errorFloor(rtol: rtol, roundingSize: roundingSize)
        return max(gError(v, at: y, rtol: rtol, atol: atol), kernel.logErrorNorm(v + 1, floor: floor, atol: atol, radius: r, centered: true))
    }

    /// `|t_n − Σ p t| ≤ 2‖t‖∞`.
    public func weightErrorBound(_ v: UnsafePointer<Double>, at y: UnsafePointer<Double>, rtol: Double, atol: Double,
                                 roundingSize: Double) -> Double {
        max(gError(v, at: y, rtol: rtol, atol: atol), 2 * maxAbs(v + 1, kernel.m) / DualKernel.errorFloor(rtol: rtol, roundingSize: roundingSize))
    }

    /// `g`'s part of the weight norm, `|δθ|/(rtol + 4ε|θ| + atol/g)`.
    private func gError(_ v: UnsafePointer<Double>, at y: UnsafePointer<Double>, rtol: Double, atol: Double) -> Double {
        abs(v[0]) / (rtol + 4 * .ulpOfOne * abs(y[0]) + atol / Foundation.exp(y[0]))
    }

    /// Evaluates `p`, `Ap`, `e`; returns `(g, ⟨Ap, e⟩)`.
    private func evaluate(_ y: UnsafeBufferPointer<Double>) -> (g: Double, a: Double) {
        let k = kernel
        k.residual(y.baseAddress! + 1, theta: y[0], normalize: true)
        var a = 0.0
        for i in 0..<k.m { a += k.aw[i] * k.e[i] }
        return (Foundation.exp(y[0]), a)
    }

    public func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws {
        let k = kernel
        let (g, a) = evaluate(y)
        dydt[0] = -2 * etaG(g: g) * a
        let c = -2 * k.kappa * beta * g * g
        for i in 0..<k.m { dydt[i + 1] = c * k.e[i] }
    }

    /// With `K = A diag(p) Aᵀ − (Ap)(Ap)ᵀ` (`∂(Ap)/∂λ = 2K`), `s = e + g²Ap`
    /// (`K s = A(p ⊙ Aᵀs) − Ap ⟨Ap, s⟩` by two mat-vecs, no division),
    /// `b = ‖Ap‖²`: `∂θ'/∂θ = −4η g² b` (constant η_g) or `−4β g²(a + g² b)`
    /// (Thm 2.4 rate), `∂θ'/∂μ = −(4 η_g/κ) K s`, `∂μ'/∂θ = −4κβ g² s`,
    /// `∂μ'/∂μ = −4β g⁴ K`.
    public func jacobian(t: Double, y: UnsafeBufferPointer<Double>, dfdy: UnsafeMutableBufferPointer<Double>,
                         dfdt: UnsafeMutableBufferPointer<Double>) throws {
        let k = kernel
        let m = k.m, d = m + 1
        let (g, a) = evaluate(y)
        let g2 = g * g
        let eta = etaG(g: g), b0 = beta
        var b = 0.0
        for i in 0..<m { b += k.aw[i] * k.aw[i]; s[i] = k.e[i] + g2 * k.aw[i] }
        let J = dfdy.baseAddress!
        // ∂μ'/∂μ block = −4β g⁴ K, K = A diag(p) Aᵀ − (Ap)(Ap)ᵀ, at offset (1, 1).
        let cK = -4 * b0 * g2 * g2
        k.weightedGram(alpha: cK, into: J + d + 1, ld: d)
        for i in 0..<m {
            let row = J + (i + 1) * d + 1
            let ai = k.aw[i] * cK
            for j in 0..<m { row[j] -= ai * k.aw[j] }
        }
        // K s = A(p ⊙ Aᵀs) − Ap⟨Ap, s⟩ (t is free scratch after `evaluate`).
        var aps = 0.0
        for i in 0..<m { aps += k.aw[i] * s[i] }
        k.t.withUnsafeMutableBufferPointer { tb in
            s.withUnsafeBufferPointer { k.matrix.gemv(transpose: true, x: $0.baseAddress!, into: tb.baseAddress!) }
            for j in 0..<k.n { tb[j] *= k.w[j] }
            ke.withUnsafeMutableBufferPointer { k.matrix.gemv(x: tb.baseAddress!, into: $0.baseAddress!) }
        }
        for i in 0..<m { ke[i] -= k.aw[i] * aps }
        switch weightNormFlow.rate {
        case .constant: J[0] = -4 * eta * g2 * b
        case .timeDependent: J[0] = -4 * b0 * g2 * (a + g2 * b)
        }
        let cRow = -4 * eta / k.kappa
        for j in 0..<m { J[1 + j] = cRow * ke[j] }
        let cCol = -4 * k.kappa * b0 * g2
        for i in 0..<m { J[(i + 1) * d] = cCol * s[i] }
        for i in 0..<d { dfdt[i] = 0 }
    }
}

/// Integrates a depth-2 GF or WN flow in dual coordinates (`DualCoordinates`)
/// with WNFlow's BDF (`BDFSolver`; dense Cholesky of the small Jacobian for
/// GF, LU for WN; what `Simulation` uses) or one of GSL's steppers, and shows its observers the
/// weight-space state at every step, so monitor, stop rules and recorder see
/// the same states as with any other method. Error control (WNFlow's BDF): on the
/// weight-space state itself, `|δw| ≤ rtol|w| + atol` for every entry as GSL's steppers
/// measure weight space, in log form so that it holds also far below double range
/// (`DualCoordinates.weightErrorNorm`, docs/math.md §6a); no step lands beyond 1.1× the
/// bound below (`BDFSolver.stateReach`). GSL's steppers: absolute tolerance `rtol` on
/// `μ` and `log g` plus their rounding `4ε|μ|`, which bounds the same relative error.
///
/// Hand-over: when `‖μ‖_∞` passes `maxDeparture` (GF: a weight has moved by
/// a factor `e^{300}` from its start, as when the residual does not vanish
/// and `λ` grows linearly, before `x` overflows), the run continues from that
/// state with the weight-space solver `fallback` makes; `handoverTime` says
/// when. The observers see one run (one initial state, consecutive step
/// numbers). WN's weights are normalized and cannot overflow: there the
/// bound is `weightNormDeparture(rtol:)`, where μ's rounding reaches the tolerance.
/// (At 300, WN with N = 10000 handed over at t = 2.7e10 although its loss
/// went on to 1e-20: entries of v off the support had decayed by e^{-300}. At
/// 1e4, WN from a large x₀ on a problem without the kernel assumption handed
/// over at ‖μ‖∞ = 1e4 while a weight that had decayed by about e^{-1e4} was
/// still to grow back: in weight space it had underflowed to 0, and the run
/// stalled at loss 2.9e-4 where the flow goes on to zero loss; its ‖μ‖∞ peaks
/// at 1.6e4.) Before that bound WN re-centers (`maxRecenterings`), so a run whose
/// ‖μ‖∞ travels further than any bound can (6e5 from x₀ = (30d)^{1/2}, docs/math.md
/// §6a) stays in dual coordinates.
public final class DualSolver: ODESolver {
    public let system: any DualCoordinates
    let inner: any ODESolver
    let fallback: (() throws -> any ODESolver)?
    private let naturalDimension: Int
    /// The weights' relative tolerance (`DualCoordinates.outrunsPrecision`).
    private let rtol: Double
    /// Whether a step no observer needs (every observer a `StateOnDemandObserver` that
    /// declines it, given the step's `lossLowerBound`) is passed over without mapping it
    /// to weights (on by default; off only to compare against).
    public var skipsUnreadSteps = true
    /// How many steps of the last run were passed over so.
    public private(set) var skippedSteps = 0
    /// Largest `‖μ‖_∞` before the hand-over (weights then stay far inside
    /// double range, and the absolute tolerance above μ's rounding).
    public var maxDeparture: Double
    /// When the last run left the dual coordinates, if it did.
    public private(set) var handoverTime: Double?
    /// Why the dual leg handed over when it failed rather than left its range (the inner
    /// solver's error); nil for a hand-over at the range bound.
    public private(set) var handoverFailure: (any Error)?
    /// `log|y_i|` of the last run's final state when it ended in dual coordinates (nil after a
    /// hand-over): finite also where a weight (or WN's g, at the saddle x = 0) is 0 in `y`.
    public private(set) var finalLogState: [Double]?
    /// When the last run re-centered the coordinates (`DualCoordinates.recenter`), for
    /// either reason.
    public private(set) var recenterTimes: [Double] = []
    /// How many of those were past half the hand-over bound (the ones `maxRecenterings`
    /// counts; the rest were near the limit, `precisionDeparture`).
    public private(set) var farRecenterings = 0
    /// How often a run with WNFlow's BDF re-centers (WN; GF cannot; nor GSL's steppers):
    /// when `‖μ‖∞` passes `maxDeparture/2`, `DualCoordinates.recenter` moves the base to the
    /// current weights in log form and μ to 0, inside the BDF's history (no restart). A
    /// weight that decays far below double range and grows back is then followed (weight
    /// space would hold it at 0 and stall). A residual that does not vanish makes λ grow
    /// linearly; the run hands over after these. The near-limit re-centerings
    /// (`precisionDeparture`) are not counted, and 0 does not turn those off (set
    /// `precisionDeparture` to ∞ for that).
    public var maxRecenterings = 1000

    /// `‖μ‖∞` of the last accepted steps (before any re-centering), the size whose rounding
    /// the BDF history carries (as many rows as BDF5 keeps): the weight norm's rounding floor.
    /// A step's own new state is not measured (O(M) per norm): within a step that moves μ
    /// further the floor is the smaller, stricter one.
    final class RecentSizes {
        private var sizes = [Double](repeating: 0, count: 6)
        private var next = 0
        private(set) var largest = 0.0
        func reset() { for i in sizes.indices { sizes[i] = 0 }; next = 0; largest = 0 }
        func record(_ size: Double) {
            sizes[next] = size
            next = (next + 1) % sizes.count
            largest = sizes.reduce(0, max)
        }
    }
    private let recentSizes = RecentSizes()

    /// WN's hand-over bound on `‖μ‖∞`: the largest |μ| whose rounding `4ε|μ|` stays within
    /// the tolerance `rtol` (1.1e5 at the default 1e-10), and at least 1e4.
    public static func weightNormDeparture(rtol: Double) -> Double {
        max(1e4, rtol / (4 * .ulpOfOne))
    }

    /// Near the limit (`lastRelativeResidual` ≤ `precisionResidual`) WN re-centers already
    /// past this `‖μ‖∞`: the weights are `exp(log base + 2Aᵀμ/κ)` rounded, off by about
    /// `2ε‖μ‖∞` relative, and so is the residual that the stop criterion reads. With μ left
    /// up to half the hand-over bound (5.6e4) that floor was a loss of 2e-24 to 1e-23 (WN,
    /// η_g = 0.01, from x₀ = (10 d)^{1/2}), above the default stop, and such runs went on
    /// to t_end; at 64 it is `3e-14` relative. `.infinity` turns the early re-centering off.
    public var precisionDeparture = DualSolver.defaultPrecisionDeparture
    /// The default of `precisionDeparture`.
    public static let defaultPrecisionDeparture = 64.0
    /// See `precisionDeparture`.
    public var precisionResidual = 1e-8

    /// - Parameters:
    ///   - stepper: a GSL stepper, or nil for `BDFSolver`.
    ///   - atol: the weights' absolute tolerance in `weightErrorNorm` (BDF only; 0: every
    ///     weight relative, as GSL's steppers here, whose control is `rtol` on μ).
    ///   - fallback: makes the weight-space solver for a hand-over; without
    ///     it the run stops there with `.failed`.
    public init(flow: any Flow, stepper: Stepper? = nil, rtol: Double, atol: Double = 0, initialStep: Double? = nil,
                maxSteps: Int, fallback: (() throws -> any ODESolver)? = nil) throws {
        let system = try makeDualCoordinates(for: flow)
        self.system = system
        self.fallback = fallback
        naturalDimension = flow.dimension
        maxDeparture = system.departureBound(rtol: rtol)
        self.rtol = rtol
        // Absolute control on the scaled state, plus the state's own rounding
        // (4ε|μ|): without it rtol ≲ 1e-14 asks for less than μ's last bit
        // (GF N = 400, rtol 1e-14: 51,015 steps against bdf's 12,864).
        var options = ODEOptions(rtol: 4 * .ulpOfOne, atol: rtol, initialStep: initialStep, maxSteps: maxSteps)
        if let stepper {
            options.stepper = stepper
            inner = try ODEIntegrator(system: system, options: options)
        } else {
            let bdf = try BDFSolver(system: system, options: options)
            let memory = recentSizes
            bdf.errorNormOverride = { v, y in
                system.weightErrorNorm(v, at: y, rtol: rtol, atol: atol, roundingSize: memory.largest)
            }
            // Newton runs in the O(M) bound scaled by the last estimate's overstatement (≤ 10):
            // in the weight norm (a mat-vec per iteration) the GF bench case took 0.0149 s, so
            // 0.0094 s (1,402 steps both); in the bare bound (factor 1) WN from x₀ = (1e4 d)^{1/2}
            // took 82,990 steps and 246,363 evaluations, with the factor 71,364 and 175,332 (both
            // measured before the acceptance shortcut, which moved them by under 1%).
            bdf.errorNormBound = { v, y in
                system.weightErrorBound(v, at: y, rtol: rtol, atol: atol, roundingSize: memory.largest)
            }
            inner = bdf
        }
    }

    public func integrate(from t0: Double, y0: [Double], to t1: Double, saveTimes: [Double],
                          observers: [any StepObserver]) -> ODERun {
        handoverTime = nil
        handoverFailure = nil
        finalLogState = nil
        recenterTimes = []
        farRecenterings = 0
        if let invalid = invalidInputRun(dimension: naturalDimension, t0: t0, y0: y0, t1: t1) { return invalid }
        let base: [Double]
        do { base = try system.setBase(y0) } catch {
            return ODERun(t: t0, y: y0, stats: ODEStatistics(), termination: .failed, failure: error)
        }
        let system = self.system, bound = maxDeparture, rtol = self.rtol
        var natural = [Double](repeating: 0, count: naturalDimension)
        var logNatural = [Double](repeating: 0, count: naturalDimension)
        var lastGood = y0
        // A step passed over leaves its dual state here (mapped only if the run fails).
        var lastGoodDual = base, lastGoodIsDual = false
        var departed = false, observersStopped = false, nonFinite = false
        let onDemand = observers.compactMap { $0 as? StateOnDemandObserver }
        let canSkip = skipsUnreadSteps && onDemand.count == observers.count
        var skipped = 0
        /// Past the hand-over bound: the cheap `departure` first, its exact form only then.
        func leaves(_ y: UnsafeBufferPointer<Double>) -> Bool {
            (system.departure(y) > bound && system.exactDeparture(y) > bound) || system.outrunsPrecision(y, rtol: rtol)
        }
        let forward = ClosureObserver { step in
            if canSkip && !step.isInitial {
                let lower = system.lossLowerBound(step.y)
                if !onDemand.contains(where: { $0.needsState(stepNumber: step.stepNumber, saveIndex: step.saveIndex,
                                                             lossLowerBound: lower) }) {
                    for v in step.y where !v.isFinite { nonFinite = true; return .stop }
                    lastGoodDual.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: step.y.baseAddress!, count: step.y.count) }
                    lastGoodIsDual = true
                    skipped += 1
                    departed = leaves(step.y)
                    return departed ? .stop : .proceed
                }
            }
            return natural.withUnsafeMutableBufferPointer { nb in
                logNatural.withUnsafeMutableBufferPointer { lb in
                    system.natural(of: step.y, into: nb.baseAddress!, logInto: lb.baseAddress!)
                }
                for v in nb where !v.isFinite { nonFinite = true; return .stop }
                lastGood.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: nb.baseAddress!, count: nb.count) }
                lastGoodIsDual = false
                observersStopped = logNatural.withUnsafeBufferPointer { lb in
                    notify(observers, AcceptedStep(t: step.t, y: UnsafeBufferPointer(nb), h: step.h, saveIndex: step.saveIndex,
                                                   stepNumber: step.stepNumber, logY: lb))
                }
                departed = leaves(step.y)
                return observersStopped || departed ? .stop : .proceed
            }
        }
        // Half-way to the bound, WN re-centers the coordinates in the BDF's history (up to
        // `maxRecenterings` times) and goes on in dual coordinates from the same weights.
        var recentered: [Double] = [], farRecenterings = 0
        let cap = maxRecenterings, trigger = 0.5 * bound
        let bdf = inner as? BDFSolver
        let memory = recentSizes
        memory.reset()
        let precise = precisionDeparture, nearLimit = precisionResidual
        bdf?.stateTranslation = { t, state in
            let size = system.departure(UnsafeBufferPointer(state))
            memory.record(size)
            // Near-limit re-centerings do not count against the cap (which is about weights
            // that travel further than re-centering follows).
            let far = size > trigger
            let due = far ? farRecenterings < cap : size > precise && system.lastRelativeResidual <= nearLimit
            if due, system.recenter(state) {
                recentered.append(t)
                if far { farRecenterings += 1 }
            }
        }
        // No step jumps far past the bound: there μ's rounding (WN) or the weights (GF) leave
        // what the coordinates hold; the step lands within 1.1× the bound instead.
        let reachLimit = 1.1 * bound, dimension = system.dimension
        bdf?.stateReach = { y in
            let state = UnsafeBufferPointer(start: y, count: dimension)
            let cheap = system.departure(state) / reachLimit
            return max(cheap > 1 ? system.exactDeparture(state) / reachLimit : cheap, system.stepReach(y))
        }
        bdf?.reachReadsLastEvaluation = system.stepReachReadsLastEvaluation
        defer { bdf?.stateTranslation = nil; bdf?.stateReach = nil; bdf?.reachReadsLastEvaluation = false }
        let run = inner.integrate(from: t0, y0: base, to: t1, saveTimes: saveTimes, observers: [forward])
        recenterTimes = recentered
        self.farRecenterings = farRecenterings
        skippedSteps = skipped
        let naturalDimension = self.naturalDimension
        /// The weights of a dual state, and their logs into `logs` when given.
        func weights(of dual: [Double], logs: inout [Double]?) -> [Double] {
            dual.withUnsafeBufferPointer { b in
                var x = [Double](repeating: 0, count: naturalDimension)
                x.withUnsafeMutableBufferPointer { xb in
                    if var l = logs {
                        l.withUnsafeMutableBufferPointer { system.natural(of: b, into: xb.baseAddress!, logInto: $0.baseAddress!) }
                        logs = l
                    } else {
                        system.natural(of: b, into: xb.baseAddress!)
                    }
                }
                return x
            }
        }
        var noLogs: [Double]? = nil
        if lastGoodIsDual { lastGood = weights(of: lastGoodDual, logs: &noLogs) }
        var out = run
        var finalLogs: [Double]? = [Double](repeating: 0, count: naturalDimension)
        out.y = weights(of: run.y, logs: &finalLogs)
        finalLogState = finalLogs
        if nonFinite || !out.y.allSatisfy({ $0.isFinite }) {
            // Keep the last state the observers saw (the partial trajectory).
            return ODERun(t: run.t, y: lastGood, stats: run.stats, termination: .failed,
                          failure: ODEError.nonFiniteState(t: run.t))
        }
        // The dual leg failing hands over too: the weight-space solver may integrate such
        // runs. (The case that showed it, a step size underflow at t = 0 with GF, L = 5, x₀ up
        // to 15, came from `stepReach`'s reference after a Newton failure, fixed in the BDF
        // since; no failing dual leg is known now, and this stays as the safety net.)
        let failedLeg = run.termination == .failed && fallback != nil && !observersStopped && run.t < t1
        guard failedLeg || (departed && !observersStopped && run.termination == .stoppedByObserver && run.t < t1) else {
            return out
        }
        if failedLeg { handoverFailure = run.failure }
        handoverTime = run.t
        finalLogState = nil
        guard let fallback else {
            out.termination = .failed
            out.failure = ODEError.invalidOptions("method dual: the weights left the dual coordinates' range at t = \(run.t) (the residual does not vanish); use bdf")
            return out
        }
        let next: any ODESolver
        do { next = try fallback() } catch {
            out.termination = .failed
            out.failure = error
            return out
        }
        // The weight-space leg: its initial state was the dual leg's last step.
        let offset = run.stats.acceptedSteps
        let relay = ClosureObserver { step in
            if step.isInitial { return .proceed }
            return notify(observers, AcceptedStep(t: step.t, y: step.y, h: step.h, saveIndex: step.saveIndex,
                                                  stepNumber: step.stepNumber + offset)) ? .stop : .proceed
        }
        var second = next.integrate(from: run.t, y0: out.y, to: t1, saveTimes: saveTimes, observers: [relay])
        second.stats = second.stats + run.stats
        return second
    }
}
