import Foundation
import GSLKit

/// The limit of gradient flow (1.11) predicted without integrating (MATH.md §4,
/// "Limit characterization" and "Predictor algorithm").
public struct GFLimitPrediction: Sendable {
    /// Depth L.
    public var depth: Int
    /// `z_∞ = x_∞^{⊙L}` (for L = 1, `z = x`, signs allowed).
    public var z: [Double]
    /// `x_∞ = z_∞^{⊙1/L}` (may underflow to 0 for very small entries; see `logX`).
    public var x: [Double]
    /// `log x_∞` entry-wise (L ≥ 2 only): exact even where `x` underflows.
    public var logX: [Double]?
    /// The dual variable λ of the KKT condition `h_L(x_∞) = h_L(x̃₀) + c_L Aᵀλ`
    /// (L = 1: `x_∞ = x̃₀ + Aᵀλ`; L = 2: `log z_∞ = log x̃₀^{⊙2} + Aᵀλ`, i.e. `h_2(x_∞) = h_2(x̃₀) + ½Aᵀλ`;
    /// L ≥ 3: `x_∞^{⊙(2−L)} = x̃₀^{⊙(2−L)} + Aᵀλ`). Empty when the weighted-ℓ1 LP answered.
    public var lambda: [Double]
    /// Newton iterations (0 for the closed form and for the LP).
    public var iterations: Int
    /// `‖A z − y‖₂ / ‖y‖₂` at the returned point.
    public var kktResidual: Double
    /// L ≥ 3: the weighted-ℓ1 LP minimizer is returned instead of Newton's answer, because
    /// `x̃₀^{⊙(2−L)}` dwarfs the entries of `s` (`power` says when). Newton's answer may be
    /// kept a little past `lostDigitsTolerance` (then false, with `errorEstimate`).
    public var lostDigits: Bool
    /// L ≥ 3: `R = max_n x̃₀,n^{2−L} / s_n` over the numerical support (`z_n ≥ 1e-8 max z`),
    /// which equals `max_n (x_∞,n / x̃₀,n)^{L−2}`. Newton's relative accuracy in z is about
    /// `p·ε·R` (`p = L/(L−2)`, ε = 2.2e-16); the LP stand-in's, in x, about
    /// `(R·δ)^{−1/(L−2)}` (δ the reduced-cost gap, `lostDigitsTolerance`).
    public var amplification: Double?
    /// `"closed-form"` (L = 1), `"dual-newton"` (L ≥ 2), `"weighted-l1-lp"` (L ≥ 3, lost digits).
    public var method: String
    /// L ≥ 3: the estimated relative error of the answer (`PredictionError`); nil at L ≤ 2.
    /// An LP answer's comes from a converged Newton answer's off-support share where there is
    /// one, else from the LP's duals (`offSupportRatios`). `verify` adds it to its
    /// tolerances.
    public var errorEstimate: PredictionError?

    init(depth: Int, z: [Double], x: [Double], logX: [Double]?, lambda: [Double], iterations: Int, kktResidual: Double,
         lostDigits: Bool, amplification: Double?, method: String, errorEstimate: PredictionError? = nil) {
        self.depth = depth; self.z = z; self.x = x; self.logX = logX; self.lambda = lambda; self.iterations = iterations
        self.kktResidual = kktResidual; self.lostDigits = lostDigits; self.amplification = amplification
        self.method = method; self.errorEstimate = errorEstimate
    }
}

/// How far an L ≥ 3 prediction may be from the Bregman projection, relative: in `z`
/// (‖δz‖/‖z‖, what `predict-limit` compares), and in `g = ‖x‖` (what the WN root reads).
/// Two parts. Newton's rounding: `s = x̃₀^{2−L} + Aᵀλ` carries `ε·b_n`, so z is off by
/// `p·ε·R` and x by `p·ε·R/L`. And the entries at the level of the answer's residual
/// (`z_n ≤ 100·kktResidual·max z`, counted only when fewer than M entries lie above it; or
/// the LP's zeros): when the support has fewer than M
/// entries (y = A z* with sparse z*) λ's components along the directions the support leaves
/// free are fixed only by those entries, which the residual does not resolve, so they are
/// known to a factor of order 1 (signed WN, L = 4, M = 10, N = 25, support 2: Newton's
/// off-support x_n ≈ 2e-4 were 5–34% off the integrated ones; ‖x_off‖/‖x‖ = 1e-3). They move
/// `g` by up to `‖x_U‖²/‖x‖²` and z by `‖z_U‖/‖z‖`; Newton's answer also counts what one
/// more Newton step would move, where larger (`power`: in g a bound over residuals of the
/// same size, which catches loose entries the residual's own direction misses), and the
/// drift of the s it carried along its steps.
public struct PredictionError: Sendable, Equatable {
    /// Relative error of `z`.
    public var z: Double
    /// Relative error of `g = ‖x‖` (and so of WN's `g∞`).
    public var g: Double

    /// Each part at least `roundingFloor`: an answer in double precision is not known better
    /// than its own rounding (the LP's off-support share gave 9.4e-78 for a depth-3 WN g∞).
    public init(z: Double, g: Double) {
        self.z = z.isNaN ? z : max(z, Self.roundingFloor)
        self.g = g.isNaN ? g : max(g, Self.roundingFloor)
    }

    /// 4ε, the smallest relative error reported.
    public static let roundingFloor = 4 * Double.ulpOfOne
}

/// The gradient-flow limit `z_∞ = argmin_{z∈S₊} D_F(z, x̃₀^{⊙L})` (MATH.md §4) by Newton
/// on the dual; no integration.
public enum LimitPredictor {
    /// L ≥ 3: below this estimated relative error `p·ε·R` Newton's answer is returned as is
    /// (R ≈ 1.5e7 for L = 3). Above it the weighted-ℓ1 LP may be the better answer: for a
    /// unique, non-degenerate LP minimizer with relative reduced-cost gap δ the Bregman
    /// projection differs from it by its off-support entries `z_n = s_n^{−p}`, `s_n ≈ δ·b_n`,
    /// so about `(R·δ)^{−p}` in z but `(R·δ)^{−1/(L−2)}` in x. `power` then returns whichever
    /// of the two has the smaller estimated error in g = ‖x‖ (`errorEstimate`). (Before stop 21 the
    /// LP always won here; on signed WN, L = 4, M = 10, N = 25, R = 3.3e7, its dropped entries
    /// x_n ≈ 3e-4 moved g∞ by 7.3e-7, where Newton's error is 3.6e-9.)
    public static let lostDigitsTolerance = 1e-8

    // MARK: Public entry points

    /// GF limit for depth `L ≥ 2` from the effective initialization given in log form,
    /// `logX0 = log x̃₀` (entry-wise; x̃₀ > 0), so that magnifications `x̃₀ = x₀/ρ` with
    /// log ρ ≫ 700 are representable (MATH.md §3 Lemma 3.9, §4). Depth 1 is accepted and
    /// forwarded to `gradientFlowLinear` with `x̃₀ = exp(logX0)`.
    /// - L = 2: minimizes `Σ exp(2 log x̃₀ + Aᵀλ) − yᵀλ` (damped Newton, log domain).
    /// - L ≥ 3: maximizes `Σ s^{1−p}/(1−p) − yᵀλ`, `s = x̃₀^{2−L} + Aᵀλ > 0`, `p = L/(L−2)`;
    ///   falls back to the weighted-ℓ1 LP with `w ∝ x̃₀^{⊙(2−L)}` when digits are lost.
    /// - Throws: `TheoryError.invalidInput` (dimensions, non-finite data),
    ///   `.emptyFeasibleSet` (LP fallback on an empty `S₊`), `.notConverged`.
    public static func gradientFlow(A: Matrix, y: [Double], depth: Int, logX0: [Double]) throws -> GFLimitPrediction {
        try validate(A: A, y: y, n: logX0.count, depth: depth)
        guard logX0.allSatisfy({ $0.isFinite }) else {
            throw TheoryError.invalidInput("log x0 must be finite (x0 > 0 entry-wise for depth >= 2; MATH.md Lemma 3.3)")
        }
        var lam: [Double]? = nil
        return try gradientFlow(A: A, y: y, depth: depth, logX0: logX0, warmStart: &lam)
    }

    /// Convenience: GF limit from a plain starting point `x0` (MATH.md §4). For L ≥ 2 every
    /// entry must be > 0 (Lemma 3.3); for L = 1 signs are allowed.
    public static func gradientFlow(A: Matrix, y: [Double], depth: Int, x0: [Double]) throws -> GFLimitPrediction {
        if depth == 1 { return try gradientFlowLinear(A: A, y: y, x0: x0) }
        guard x0.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw TheoryError.invalidInput("x0 must be finite and > 0 entry-wise for depth >= 2 (MATH.md Lemma 3.3); "
                + "zero entries never move, drop those columns")
        }
        return try gradientFlow(A: A, y: y, depth: depth, logX0: x0.map { Foundation.log($0) })
    }

    /// L = 1 (MATH.md §4): GF is the projection onto `{Ax = y}`,
    /// `x_∞ = x̃₀ − A⁺(A x̃₀ − y)` with the SVD pseudo-inverse (rank deficiency allowed;
    /// inconsistent y gives the least-squares point, reported in `kktResidual`).
    public static func gradientFlowLinear(A: Matrix, y: [Double], x0: [Double]) throws -> GFLimitPrediction {
        try validate(A: A, y: y, n: x0.count, depth: 1)
        guard x0.allSatisfy(\.isFinite) else { throw TheoryError.invalidInput("x0 must be finite") }
        let svd = try SVD(A)
        return linear(A: A, y: y, x0: x0, svd: svd)
    }

    // MARK: Internals

    static func validate(A: Matrix, y: [Double], n: Int, depth: Int) throws {
        guard depth >= 1 else { throw TheoryError.invalidInput("depth must be >= 1 (got \(depth))") }
        guard A.cols == n else { throw TheoryError.invalidInput("x0 has \(n) entries but A has \(A.cols) columns") }
        guard A.rows == y.count else { throw TheoryError.invalidInput("y has \(y.count) entries but A has \(A.rows) rows") }
        guard allFinite(A.storage), allFinite(y) else { throw TheoryError.invalidInput("A and y must be finite") }
    }

    /// Whether every entry is finite, by integer operations on the bit patterns (they vectorize):
    /// the exponent field plus one carries into the sign bit exactly when it is all ones (±∞, NaN).
    static func allFinite(_ v: [Double]) -> Bool {
        var bad: UInt64 = 0
        v.withUnsafeBufferPointer { b in
            for x in b { bad |= ((x.bitPattern & 0x7FF0_0000_0000_0000) &+ 0x0010_0000_0000_0000) }
        }
        return bad & 0x8000_0000_0000_0000 == 0
    }

    static func linear(A: Matrix, y: [Double], x0: [Double], svd: SVD) -> GFLimitPrediction {
        let r0 = zip(A.multiply(x0), y).map { $0 - $1 }
        var x = zip(x0, svd.pseudoInverseApply(r0)).map { $0 - $1 }
        // One refinement step.
        let r1 = zip(A.multiply(x), y).map { $0 - $1 }
        let x2 = zip(x, svd.pseudoInverseApply(r1)).map { $0 - $1 }
        if residualNorm(A, x2, y) <= residualNorm(A, x, y) { x = x2 }
        let lam = svd.u.rows > 0 ? leastSquaresLambda(svd: svd, d: zip(x, x0).map { $0 - $1 }) : []
        let ny = norm2(y)
        let res = residualNorm(A, x, y)
        return GFLimitPrediction(depth: 1, z: x, x: x, logX: nil, lambda: lam, iterations: 0,
                                 kktResidual: ny > 0 ? res / ny : res, lostDigits: false,
                                 amplification: nil, method: "closed-form")
    }

    /// λ with `Aᵀλ = d` in least squares: `λ = (Aᵀ)⁺ d = U Σ⁻¹ Vᵀ d`.
    static func leastSquaresLambda(svd: SVD, d: [Double]) -> [Double] {
        let r = svd.rank
        var out = [Double](repeating: 0, count: svd.u.rows)
        for j in 0..<r {
            var c = 0.0
            for i in 0..<svd.v.rows { c += svd.v.storage[i * svd.v.cols + j] * d[i] }
            c /= svd.s[j]
            for i in 0..<svd.u.rows { out[i] += svd.u.storage[i * svd.u.cols + j] * c }
        }
        return out
    }

    /// Above this `log z`, `z = e^{log z}` is a normal number with full relative precision, so
    /// `z` itself (its sums, `√z`) can stand in for exponentials of `log z`; below it, logs.
    static let normalLogZ = -700.0

    /// The L = 2 early exit of sign-only callers: `(log z, z, δ log z)` → whether the sign
    /// they need is settled (see `entropic`).
    typealias SignTest = (_ logZ: UnsafePointer<Double>, _ z: UnsafePointer<Double>, _ correction: UnsafePointer<Double>) -> Bool

    /// Shared entry with a warm start for λ (used by the WN root search); `predictor` is a
    /// second L = 2 starting candidate and `signSettled` an L = 2 early exit (see `entropic`),
    /// both ignored for other depths.
    static func gradientFlow(A: Matrix, y: [Double], depth: Int, logX0: [Double],
                             warmStart: inout [Double]?, predictor: [Double]? = nil,
                             workspace: DualWorkspace? = nil,
                             signSettled: SignTest? = nil) throws -> GFLimitPrediction {
        switch depth {
        case 1:
            let x0 = logX0.map { Foundation.exp($0) }
            return linear(A: A, y: y, x0: x0, svd: try SVD(A))
        case 2:
            return try entropic(A: A, y: y, logX0: logX0, warmStart: &warmStart, predictor: predictor, workspace: workspace,
                                signSettled: signSettled)
        default:
            return try power(A: A, y: y, depth: depth, logX0: logX0, warmStart: &warmStart, workspace: workspace)
        }
    }

    // MARK: L = 2

    /// `v = log z = a + Aᵀλ`, `z = exp(v)`, `f = Σ z − yᵀλ`, `g = A z − y`, `r = ‖g‖` at `p.lambda`.
    private static func entropicState(_ p: DualPoint, a: UnsafePointer<Double>, ws: DualWorkspace) {
        ws.multiplyTransposed(p.lambda, into: p.v)
        for j in 0..<ws.n { p.v[j] = a[j] + p.v[j] }
        entropicStateFromLogZ(p, ws: ws)
    }

    /// `entropicState` at `p.lambda = base.lambda + Δ` with `u = AᵀΔ` known: `log z` is taken
    /// as `base.v + u` (one mat-vec less; its rounding drifts from a fresh `a + Aᵀλ` by ε|v|
    /// per step, so only the sign-only chord steps use it).
    private static func entropicState(_ p: DualPoint, from base: DualPoint, plus u: UnsafePointer<Double>, ws: DualWorkspace) {
        for j in 0..<ws.n { p.v[j] = base.v[j] + u[j] }
        entropicStateFromLogZ(p, ws: ws)
    }

    /// The rest of `entropicState` once `p.v = log z` is set.
    private static func entropicStateFromLogZ(_ p: DualPoint, ws: DualWorkspace) {
        let m = ws.m, n = ws.n
        var sumz = 0.0
        for j in 0..<n {
            p.z[j] = Foundation.exp(p.v[j])
            sumz += p.z[j]
        }
        let yl = m > 0 ? ws.y.withUnsafeBufferPointer { blasDot(m, $0.baseAddress!, p.lambda) } : 0
        let f = sumz - yl
        ws.multiply(p.z, into: p.g)
        var r2 = 0.0
        ws.y.withUnsafeBufferPointer { y in
            for i in 0..<m { p.g[i] = p.g[i] - y[i]; r2 += p.g[i] * p.g[i] }
        }
        p.f = f.isNaN ? .infinity : f
        p.r = r2.squareRoot()
    }

    /// L = 2 (MATH.md §4): `log z(λ) = 2 log x̃₀ + Aᵀλ`, minimize `Σ z(λ) − yᵀλ`.
    /// Newton with Hessian `A diag(z) Aᵀ` scaled by `max z` (so z ≈ e^{−20000} is fine),
    /// steps limited to `max|AᵀΔλ| ≤ cap` (cap starts at 5 and grows ×4, up to 1e4,
    /// while capped steps are accepted in full), backtracking until either Armijo holds for
    /// the dual objective or `‖Az − y‖` decreases sufficiently (the Newton direction is a
    /// descent direction for both; the second survives the rounding noise of the objective).
    /// Stops at `‖Az − y‖ ≤ max(1e-15‖y‖, 4ε‖|A|z‖)` or when the residual stagnates.
    /// Starts from `warmStart` (or λ = 0), or from `predictor` when its residual is smaller.
    /// All iterates live in the preallocated `workspace` (one is made when nil).
    /// `signSettled(log z, z, δ log z)`, when given, may stop the iteration before the tolerance
    /// by returning true for the current `log z` and the estimated remaining correction
    /// `δ log z`: first after chord steps with the factor the previous solve left
    /// (`chordSettles`, no new Hessian), else after a full Newton step with residual
    /// ≤ 1e-6‖y‖. `workspace.stoppedEarly` then says so, and the result is only good for the
    /// sign it settled (the WN root search uses it where only the sign of φ matters).
    static func entropic(A: Matrix, y: [Double], logX0: [Double], warmStart: inout [Double]?,
                         predictor: [Double]? = nil, workspace: DualWorkspace? = nil,
                         signSettled: SignTest? = nil, continuing: Bool = false,
                         rebased: Bool = false) throws -> GFLimitPrediction {
        let ws = workspace ?? DualWorkspace(A: A, y: y)
        let m = ws.m, n = ws.n
        let ny = ws.ny
        let aArr = logX0.map { 2 * $0 }
        return try aArr.withUnsafeBufferPointer { ab -> GFLimitPrediction in
            let a = ab.baseAddress ?? UnsafePointer(ws.w)
            // Starting point: the predictor (the WN root search's first-order extrapolation of λ
            // in log ρ) when it is already close (residual ≤ 1e-2‖y‖); otherwise the better of
            // it and `warmStart`; λ = 0 when neither gives finite values.
            var started = false
            if let pr = predictor, pr.count == m {
                for i in 0..<m { ws.cur.lambda[i] = pr[i] }
                entropicState(ws.cur, a: a, ws: ws)
                started = ws.cur.f.isFinite && ws.cur.r.isFinite
            }
            if !(started && ws.cur.r <= 1e-2 * ny), let w0 = warmStart, w0.count == m {
                let p = started ? ws.cand : ws.cur
                for i in 0..<m { p.lambda[i] = w0[i] }
                entropicState(p, a: a, ws: ws)
                if p.f.isFinite && p.r.isFinite {
                    if started && p.r < ws.cur.r { ws.swapCurrentAndCandidate() }
                    started = true
                }
            }
            if !started {
                ws.cur.lambda.update(repeating: 0, count: m)
                entropicState(ws.cur, a: a, ws: ws)
                // x̃₀ so large that z overflows at λ = 0: start where max log z is least.
                if !(ws.cur.f.isFinite && ws.cur.r.isFinite),
                   let start = cachedMinimaxStart(ws: ws, c: Array(UnsafeBufferPointer(start: a, count: n)), floor: 0,
                                                  relation: .shift),
                   start.t <= 600 {
                    for i in 0..<m { ws.cur.lambda[i] = start.lambda[i] }
                    entropicState(ws.cur, a: a, ws: ws)
                }
            }
            // Far from every start (log x̃₀ shifted by |s| ≫ 1 from where a start is known, e.g.
            // x₀/ρ with |log ρ| ~ 1e4): continuation in that shift (`entropicByContinuation`).
            if !continuing && m > 0 && n > 0 && !(ws.cur.r.isFinite && ws.cur.r <= continuationStartResidual * ny) {
                let shift = logX0.reduce(0, +) / Double(n)
                if shift.isFinite && abs(shift) > continuationShift {
                    var warm = warmStart
                    if let r = try? entropicByContinuation(A: A, y: y, logX0: logX0, shift: shift, workspace: ws,
                                                           signSettled: signSettled, warmStart: &warm) {
                        warmStart = warm
                        return r
                    }
                    // A stage failed: plain Newton from the same starts.
                    return try entropic(A: A, y: y, logX0: logX0, warmStart: &warmStart, predictor: predictor,
                                        workspace: ws, signSettled: signSettled, continuing: true)
                }
            }
            ws.best.copy(from: ws.cur)
            ws.factorNearBest = false
            var lastStep = Double.infinity  // max|AᵀΔλ| of the last accepted step
            var lastFull = false  // whether that step was an uncapped, undamped Newton step
            var bestIsCurrent = true
            ws.stoppedEarly = false
            var cap = 5.0
            var iterations = 0
            var stall = 0
            var stallLevel = 1e-9 * ny
            var bestIteration = 0
            let maxIterations = 3000
            // Sign-only callers first try chord steps with the factor a previous solve left
            // (a nearby point of the WN root search): no new Hessian (see `chordSettles`).
            if let signSettled, ws.chordShortcut, ws.cholHoldsFactor, m > 0, n > 0,
               chordSettles(a: a, ws: ws, signSettled: signSettled) {
                ws.stoppedEarly = true
                ws.countChordStop()
            }
            if ws.cur.r < ws.best.r { ws.best.copy(from: ws.cur) }
            while !ws.stoppedEarly && iterations < maxIterations {
                let cur = ws.cur
                // Rounding floor: log z carries an absolute error ≈ ε(|2 log x̃₀| + 1).
                for j in 0..<n { ws.w[j] = cur.z[j] * (1 + abs(a[j])) }
                if m == 0 || ws.withinRoundingFloor(cur.r, ws.w) { break }
                // Stagnation: no halving for 15 iterations (or 3 full steps without) once the
                // residual is within 100× the floor that also counts the rounding of Aᵀλ,
                // ε(|A|ᵀ|λ|)/√M (a length-M sum's typical rounding), or below 1e-9‖y‖ (and
                // never above the 1e-6‖y‖ the answer must meet; at log ρ = −3.9e6 the floor is
                // 2e-7…8e-7‖y‖, and a cap at 1e-7 ran into the 3000-iteration limit). With
                // |log x̃₀| ~ 1e5 that term is what the residual stalls at (2e-9‖y‖ at
                // log ρ = −3.8e4, where the search ran 3000 iterations before).
                // (The two mat-vecs only where a bound says the level can exceed 1e-9‖y‖:
                // (|A|ᵀ|λ|)_j ≤ ‖A‖_F‖λ‖₂, so ‖u‖₂ ≤ ‖w‖₂ + ‖z‖₂‖A‖_F‖λ‖₂/√M.)
                if cur.r <= 1e-3 * ny && n > 0 {
                    let typical = 1 / Double(m).squareRoot()
                    var w2 = 0.0, z2 = 0.0, l2 = 0.0
                    for j in 0..<n { w2 += ws.w[j] * ws.w[j]; z2 += cur.z[j] * cur.z[j] }
                    for i in 0..<m { l2 += cur.lambda[i] * cur.lambda[i] }
                    let uBound = w2.squareRoot() + z2.squareRoot() * ws.frobeniusA * l2.squareRoot() * typical
                    if 100 * max(1e-15 * ny, ws.roundingFloorBound(uBound * (1 + 1e-12))) <= 1e-9 * ny {
                        stallLevel = 1e-9 * ny
                    } else {
                        for i in 0..<m { ws.d2[i] = typical * abs(cur.lambda[i]) }
                        ws.absTransposedProduct(ws.d2, into: ws.u)
                        for j in 0..<n { ws.u[j] = ws.w[j] + cur.z[j] * ws.u[j] }
                        stallLevel = min(max(1e-9 * ny, 100 * ws.roundingFloor(ws.u)), 1e-6 * ny)
                    }
                }
                if iterations - bestIteration >= 15 && ws.best.r <= stallLevel { break }
                // Early exit for callers that only need a sign (see `signSettled`): after a full
                // step, the chord correction Δc = −H⁻¹g (with the factor of that step, one
                // triangular solve pair) estimates what is left of log z.
                if let signSettled, lastFull, bestIsCurrent, ws.cholHoldsFactor, cur.r <= 1e-6 * ny {
                    for i in 0..<m { ws.d2[i] = -cur.g[i] }
                    let sc = Foundation.exp(-ws.factorLogScale)
                    if sc.isFinite && ws.solveWithFactor(ws.d2) {
                        for i in 0..<m { ws.d2[i] = ws.d2[i] * sc }
                        ws.multiplyTransposed(ws.d2, into: ws.u)
                        if signSettled(cur.v, cur.z, ws.u) { ws.stoppedEarly = true; break }
                    }
                }
                iterations += 1
                var s = -Double.infinity
                for j in 0..<n { s = max(s, cur.v[j]) }
                if n == 0 { s = 0 }
                // ẑ = e^{log z − s}; from z itself (one product) where z is a normal number.
                let es = Foundation.exp(-s)
                for j in 0..<n {
                    let v = cur.v[j]
                    ws.zhat[j] = v > normalLogZ && es.isFinite ? cur.z[j] * es : Foundation.exp(v - s)
                }
                ws.weightedGram(ws.zhat)
                for i in 0..<m { ws.rhs[i] = -cur.g[i] }
                guard ws.solveSPD() else { break }
                ws.factorLogScale = s
                let d = ws.d
                ws.multiplyTransposed(d, into: ws.u)
                var mu = 0.0
                for j in 0..<n { mu = max(mu, abs(ws.u[j])) }
                if !(mu > 0) || !mu.isFinite { break }
                // Newton step Δ = e^{−s} d, limited to max|AᵀΔ| ≤ cap (evaluated in logs).
                let capped = Foundation.log(mu) - s > Foundation.log(cap)
                let scale = capped ? cap / mu : Foundation.exp(-s)
                for i in 0..<m { d[i] = d[i] * scale }
                let slope = blasDot(m, cur.g, d)
                var alpha = 1.0
                var accepted = false
                let cand = ws.cand
                // Full steps only: first try Chebyshev's third-order correction
                // Δ₂ = −½ H⁻¹ D³f[Δ, Δ] = −½ Ĥ⁻¹ A(ẑ ⊙ (AᵀΔ)²) with the same factor (cubic
                // instead of quadratic local convergence for two extra mat-vecs and one
                // triangular solve pair), kept when |Δ₂| ≤ ½|Δ| and the step passes the usual test.
                if !capped {
                    for j in 0..<n { let u1 = scale * ws.u[j]; ws.w[j] = ws.zhat[j] * u1 * u1 }
                    ws.multiply(ws.w, into: ws.d2)
                    if ws.solveWithFactor(ws.d2) {
                        var n1 = 0.0, n2 = 0.0
                        for i in 0..<m {
                            ws.d2[i] = -0.5 * ws.d2[i]
                            n1 = max(n1, abs(d[i])); n2 = max(n2, abs(ws.d2[i]))
                        }
                        if n2.isFinite && n2 <= 0.5 * n1 {
                            for i in 0..<m { cand.lambda[i] = cur.lambda[i] + (d[i] + ws.d2[i]) }
                            let slope2 = slope + blasDot(m, cur.g, ws.d2)
                            entropicState(cand, a: a, ws: ws)
                            if cand.f.isFinite && cand.r.isFinite
                                && ((slope2 < 0 && cand.f <= cur.f + 1e-4 * slope2) || cand.r <= (1 - 1e-4) * cur.r) {
                                accepted = true
                            }
                        }
                    }
                }
                for _ in 0..<60 where !accepted {
                    for i in 0..<m { cand.lambda[i] = cur.lambda[i] + alpha * d[i] }
                    entropicState(cand, a: a, ws: ws)
                    if cand.f.isFinite && cand.r.isFinite
                        && (cand.f <= cur.f + 1e-4 * alpha * slope || cand.r <= (1 - 1e-4 * alpha) * cur.r) {
                        accepted = true
                        break
                    }
                    alpha *= 0.5
                }
                guard accepted else { break }
                if capped && alpha == 1 { cap = min(cap * 4, 1e4) } else if alpha < 1 { cap = max(5, cap * 0.5) }
                // Stagnation at the rounding floor (only counted once the residual is tiny).
                if !capped && alpha == 1 && cand.r > 0.5 * cur.r && cand.r <= stallLevel { stall += 1 } else if cand.r <= 0.5 * cur.r { stall = 0 }
                let halved = cand.r < 0.5 * ws.best.r
                ws.swapCurrentAndCandidate()
                lastStep = alpha * mu * scale
                lastFull = !capped && alpha == 1
                if halved { bestIteration = iterations }
                bestIsCurrent = ws.cur.r < ws.best.r
                if bestIsCurrent { ws.best.copy(from: ws.cur) }
                if stall >= 3 { break }
            }
            // The factor of the last iteration serves `entropicSlope` when that iteration's
            // step was tiny and its result is the answer.
            if ws.cur.r < ws.best.r { ws.best.copy(from: ws.cur); bestIsCurrent = true }
            ws.factorNearBest = (lastStep <= 1e-4 || ws.stoppedEarly) && bestIsCurrent
            let best = ws.best
            let z = best.zArray
            guard best.r.isFinite, z.allSatisfy(\.isFinite) else {
                throw TheoryError.notConverged("L = 2 dual Newton produced non-finite values")
            }
            let lambda = best.lambdaArray
            warmStart = lambda
            let rel = ny > 0 ? best.r / ny : best.r
            // The floor was the rounding of `a + Aᵀλ` with |a| large: the same problem from the
            // exactly summed `a' = a + Aᵀλ` (see `rebasedBase`), kept when it meets a smaller
            // residual; else (or when it throws) the answer below stands, as before.
            if !rebased && !ws.stoppedEarly && m > 0 && n > 0 && rel > rebaseResidual,
               let shifted = rebasedBase(a, lambda: best.lambda, residual: best.r, ws: ws,
                                         weights: { j, aj in (best.z[j] * (1 + abs(a[j])), best.z[j] * (1 + abs(aj))) }),
               var r = keepingBest(ws, { () -> GFLimitPrediction? in
                   var zero: [Double]? = [Double](repeating: 0, count: m)
                   guard let r = try? entropic(A: A, y: y, logX0: shifted.map { $0 / 2 }, warmStart: &zero, workspace: ws,
                                               continuing: true, rebased: true) else { return nil }
                   return r.kktResidual < rel ? r : nil
               }) {
                r.iterations += iterations
                r.lambda = zip(lambda, r.lambda).map { $0 + $1 }
                warmStart = r.lambda
                return r
            }
            if rel > 1e-6 && !ws.stoppedEarly {  // a sign-only stop needs no tolerance
                throw TheoryError.notConverged("L = 2 dual Newton stopped after \(iterations) iterations with relative "
                    + "residual \(rel); S+ may have no strictly positive point (check the kernel assumption)")
            }
            let logx = best.vArray.map { $0 / 2 }
            // x = √z where z is a normal number (as accurate as exp(log z/2), and cheaper).
            let x = (0..<n).map { j in best.v[j] > normalLogZ ? z[j].squareRoot() : Foundation.exp(logx[j]) }
            return GFLimitPrediction(depth: 2, z: z, x: x, logX: logx,
                                     lambda: lambda, iterations: iterations, kktResidual: rel,
                                     lostDigits: false, amplification: nil, method: "dual-newton")
        }
    }

    /// `entropic` and `power` re-solve from a rebased start (`rebasedBase`) when their best residual
    /// is above this fraction of ‖y‖.
    static let rebaseResidual = 1e-13

    /// `base' = base + Aᵀλ` summed in double-double (`compensatedShift`), when the rounding of
    /// the plain sum is what holds the residual `r` up: the floor `4ε‖|A| before‖` the
    /// current coordinates carry is above `r/4` and 100 times the floor `4ε‖|A| after‖` of the
    /// rebased problem (`weights(j, base'_j)` gives entry j of both). Nil otherwise, or when
    /// some `base'` fails `admissible`. Minimizing from `base'` and λ' = 0 is the same problem
    /// (λ = λ_best + λ'), and `base'` is exact to ε|base'| for the given doubles, so nothing
    /// of x̃₀ is lost.
    /// - L = 2, `base = a = 2 log x̃₀`: `before = z ⊙ (1 + |a|)`, `after = z ⊙ (1 + |log z|)`.
    ///   With |a| ~ 6e10 (WN at log ρ = 2.9e10, ‖v₀‖ = 1e-5) `log z` carried an error of
    ///   ~7e-6 and the residual stalled at 6e-6‖y‖, above the 1e-6 it must meet; rebased, 1e-15.
    /// - L ≥ 3, `base = b = x̃₀^{2−L}` (`s = b + Aᵀλ`, b' > 0): `before = z ⊙ (1 + p b/s)`,
    ///   `after = z ⊙ (1 + p)` (b'/s' = 1). GF, L = 3, x₀ = 1e-6·|d| (M = 15, N = 45): Newton,
    ///   with s carried along its steps, stalled at 1.9e-8‖y‖ and z was 2.5e-8 off the
    ///   integrated limit; rebased, 1e-16.
    private static func rebasedBase(_ base: UnsafePointer<Double>, lambda: UnsafePointer<Double>, residual r: Double,
                                    ws: DualWorkspace, admissible: (Double) -> Bool = { _ in true },
                                    weights: (Int, Double) -> (before: Double, after: Double)) -> [Double]? {
        guard let shifted = compensatedShift(base, lambda: lambda, ws: ws), shifted.allSatisfy(admissible) else { return nil }
        let n = ws.n
        var before = [Double](repeating: 0, count: n), after = [Double](repeating: 0, count: n)
        for j in 0..<n { (before[j], after[j]) = weights(j, shifted[j]) }
        let floorBefore = before.withUnsafeBufferPointer { ws.roundingFloor($0.baseAddress!) }
        let floorAfter = after.withUnsafeBufferPointer { ws.roundingFloor($0.baseAddress!) }
        return floorBefore >= 0.25 * r && floorBefore >= 100 * floorAfter ? shifted : nil
    }

    /// A rebased re-solve (`solve`) that leaves the workspace's best point as it was when it
    /// gives nothing (nil, or a throw the caller turned into nil).
    private static func keepingBest<T>(_ ws: DualWorkspace, _ solve: () -> T?) -> T? {
        let saved = DualPoint(m: ws.m, n: ws.n)
        saved.copy(from: ws.best)
        if let r = solve() { return r }
        ws.best.copy(from: saved)
        return nil
    }

    /// `base + Aᵀλ`, each entry summed in double-double (`compensatedDot`) and rounded once:
    /// exact to ε of its own size for the given doubles. Nil when an entry is not finite.
    static func compensatedShift(_ base: UnsafePointer<Double>, lambda: UnsafePointer<Double>, ws: DualWorkspace) -> [Double]? {
        // By rows (A is stored row after row), each column's sum in the order of
        // `compensatedDot`: the products split exactly by a fused multiply-add, the sums by TwoSum.
        let m = ws.m, n = ws.n
        var hi = (0..<n).map { base[$0] }, lo = [Double](repeating: 0, count: n)
        ws.A.storage.withUnsafeBufferPointer { s in
            for i in 0..<m {
                let l = lambda[i]
                for j in 0..<n {
                    let a = s[i * n + j]
                    let q = a * l
                    let qErr = (-q).addingProduct(a, l)
                    let t = hi[j] + q
                    let z = t - hi[j]
                    lo[j] += ((hi[j] - (t - z)) + (q - z)) + qErr
                    hi[j] = t
                }
            }
        }
        let shifted = zip(hi, lo).map { $0 + $1 }
        return shifted.allSatisfy({ $0.isFinite }) ? shifted : nil
    }

    /// `entropic` continues in the shift of log x̃₀ when its best start has a residual above
    /// this multiple of ‖y‖ and the shift exceeds `continuationShift`.
    static let continuationStartResidual = 0.1
    /// Plain Newton handles shifts up to a few hundred (GF from x₀ = 1e-100: 11–32
    /// iterations, where continuation took 22–43); the runs that needed continuation had
    /// shifts of 3e3 and more.
    static let continuationShift = 300.0

    /// L = 2 where no start is near (MATH.md §4): with `s` the mean of `log x̃₀` and
    /// `b = log x̃₀ − s`, the Bregman projection from `x̃₀ = e^{b + s}` is the entropic
    /// regularization of an LP at temperature ~1/|s| (`Σ z log(z/e^{2b}) − z − 2s Σ z`):
    /// for |s| ~ 1e4 plain Newton moves log z by ~1 per iteration (it stopped at 3000
    /// iterations with residual 2e-9 at log ρ = −3.8e4, and found no WN root at −1.2e6). Here
    /// it solves from `e^{b}` first, then along `s_k = ±4^k` up to `s`, each stage started
    /// from the last two solutions extrapolated linearly in `s_k` (λ is asymptotically affine
    /// in s, as the LP limit's support fixes `A_Sᵀλ ≈ log z_S − 2b_S − 2s`) and from the last
    /// one. `iterations` counts all stages; `signSettled` applies to the last stage only.
    private static func entropicByContinuation(A: Matrix, y: [Double], logX0: [Double], shift: Double,
                                               workspace ws: DualWorkspace, signSettled: SignTest?,
                                               warmStart: inout [Double]?) throws -> GFLimitPrediction {
        let base = logX0.map { $0 - shift }
        var stages: [Double] = [0]
        var step = 4.0
        while step < abs(shift) { stages.append(shift < 0 ? -step : step); step *= 4 }
        stages.append(shift)
        var last: (s: Double, lambda: [Double])?, before: (s: Double, lambda: [Double])?
        var total = 0
        var result: GFLimitPrediction?
        for (k, s) in stages.enumerated() {
            var warm = last?.lambda
            var predictor: [Double]?
            if let p1 = last, let p0 = before, p1.s != p0.s {
                let f = (s - p1.s) / (p1.s - p0.s)
                predictor = zip(p1.lambda, p0.lambda).map { $0 + f * ($0 - $1) }
            }
            let final = k == stages.count - 1
            // The last stage solves `logX0` itself, not `(logX0 − s) + s` rounded.
            let r = try entropic(A: A, y: y, logX0: final ? logX0 : base.map { $0 + s }, warmStart: &warm,
                                 predictor: predictor, workspace: ws, signSettled: final ? signSettled : nil,
                                 continuing: true)
            total += r.iterations
            before = last
            last = (s, r.lambda)
            result = r
        }
        guard var answer = result else { throw TheoryError.notConverged("L = 2 continuation had no stage") }
        answer.iterations = total
        warmStart = answer.lambda
        return answer
    }

    /// The sign-only shortcut of `entropic`: up to `maxChordSteps` chord steps
    /// `Δλ = −H₀⁻¹(Az − y)` with the Cholesky factor left in the workspace by the last solve
    /// (the Hessian at a nearby point of the WN root search), accepted while `‖Az − y‖`
    /// decreases. After each step the next chord correction `δ = δ log z = Aᵀ(−H₀⁻¹ g)` is
    /// computed. Its z-weighted size `Σ z|δ|` (the entries that carry ‖x‖; those with z
    /// near 0 converge slowly and do not matter) against the previous one's is the measured
    /// contraction q; for q ≤ `maxContraction` what is left of log z is about `δ/(1 − q)`
    /// (the geometric tail), which `signSettled` is given (it also bounds `max|δ|`). True when that settles the sign (the
    /// workspace's current point is the last iterate, and `factorLogScale` is moved to it so
    /// that `entropicSlope` reuses the factor at the current scale). False when the first
    /// correction exceeds ½ in some entry, the contraction is slower, a step fails, or
    /// `maxChordSteps` pass; Newton then goes on from the current point, no worse than the
    /// start. A chord step costs three mat-vecs and a triangular solve pair, no Gram matrix
    /// and no factorization.
    private static func chordSettles(a: UnsafePointer<Double>, ws: DualWorkspace,
                                     signSettled: SignTest) -> Bool {
        let m = ws.m, n = ws.n
        guard ws.cur.r.isFinite else { return false }
        var lastMax = 0.0, scale = 0.0
        /// `ws.d2 = −H₀⁻¹ g(cur)`, `ws.u = Aᵀ ws.d2`; returns `Σ z|ws.u|` and sets `lastMax =
        /// max|ws.u|` (nil when not finite). `H₀ = e^{s} Ĥ₀` with `s = max log z` of the
        /// current point, not of the factored one: between neighbouring points of the search
        /// z changes mostly by a common factor (x₀/ρ), which this takes out of the chord.
        func chord() -> Double? {
            var s = -Double.infinity
            for j in 0..<n { s = max(s, ws.cur.v[j]) }
            let sc = Foundation.exp(-s)
            guard sc.isFinite, sc > 0 else { return nil }
            scale = s
            for i in 0..<m { ws.d2[i] = -ws.cur.g[i] }
            guard ws.solveWithFactor(ws.d2) else { return nil }
            for i in 0..<m { ws.d2[i] = ws.d2[i] * sc }
            ws.multiplyTransposed(ws.d2, into: ws.u)
            var u = 0.0, uz = 0.0
            for j in 0..<n { u = max(u, abs(ws.u[j])); uz += ws.cur.z[j] * abs(ws.u[j]) }
            lastMax = u
            return uz.isFinite && u.isFinite ? uz : nil
        }
        guard var previous = chord(), lastMax <= 0.5 else { return false }
        var stepped = false
        /// Not settled: Newton goes on from the current point, with its state afresh.
        func giveUp() -> Bool {
            if stepped { entropicState(ws.cur, a: a, ws: ws) }
            return false
        }
        for _ in 0..<maxChordSteps {
            let cand = ws.cand
            for i in 0..<m { cand.lambda[i] = ws.cur.lambda[i] + ws.d2[i] }
            entropicState(cand, from: ws.cur, plus: ws.u, ws: ws)
            guard cand.f.isFinite, cand.r.isFinite, cand.r < ws.cur.r else { return giveUp() }
            ws.swapCurrentAndCandidate()
            stepped = true
            guard let next = chord(), next <= maxContraction * previous else { return giveUp() }
            let q = next / previous, grow = 1 / (1 - q)
            for j in 0..<n { ws.u[j] *= grow }
            if signSettled(ws.cur.v, ws.cur.z, ws.u) { ws.factorLogScale = scale; return true }
            for j in 0..<n { ws.u[j] /= grow }
            previous = next
        }
        return giveUp()
    }

    /// A start for the dual Newton where λ = 0 overflows (an effective initialization
    /// `x̃₀ = x₀/ρ` so large, log ρ ≈ −700, that its z does): λ minimizing
    /// `t = max_j (c + Aᵀλ)_j` down to `floor`, by the LP `min t s.t. Aᵀλ − t·1 ≤ −c,
    /// t ≥ floor` (GLPK; λ split into two non-negative parts, one slack per entry). For L = 2,
    /// `c = log z̃₀` and t bounds log z. With a kernel vector `w > 0` (the kernel assumption),
    /// `t ≥ Σ w_j c_j / Σ w_j` whatever λ; without one (Gordan: then some `Aᵀλ < 0`) t can
    /// go as low as `floor`, and S₊ is bounded, so the limit is finite. Returns `t` recomputed from λ. Nil when the LP fails or has more
    /// than 2e7 entries.
    static func minimaxStart(A: Matrix, c: [Double], floor: Double) -> (lambda: [Double], t: Double)? {
        let m = A.rows, n = A.cols
        let cols = 2 * m + 1 + n
        guard m > 0, n > 0, c.count == n, n * cols <= 20_000_000 else { return nil }
        var lp = Matrix(rows: n, cols: cols)
        var b = [Double](repeating: 0, count: n)
        for j in 0..<n {
            let row = j * cols
            for i in 0..<m {
                let v = A.storage[i * n + j]
                lp.storage[row + i] = v
                lp.storage[row + m + i] = -v
            }
            lp.storage[row + 2 * m] = -1
            lp.storage[row + 2 * m + 1 + j] = 1
            b[j] = floor - c[j]
        }
        var cost = [Double](repeating: 0, count: cols)
        cost[2 * m] = 1
        guard let sol = try? LinearProgram.minimize(A: lp, b: b, c: cost, lower: [Double](repeating: 0, count: cols)) else {
            return nil
        }
        return minimaxValue(A: A, c: c, lambda: (0..<m).map { sol.x[$0] - sol.x[m + $0] })
    }

    /// `(λ, t = max_j (c + Aᵀλ)_j)`, nil when t is not finite.
    private static func minimaxValue(A: Matrix, c: [Double], lambda: [Double]) -> (lambda: [Double], t: Double)? {
        let u = A.multiplyTransposed(lambda)
        var t = -Double.infinity
        for j in 0..<c.count { t = max(t, c[j] + u[j]) }
        return t.isFinite ? (lambda, t) : nil
    }

    /// How a new `c` of `minimaxStart` may follow from the cached one: the WN root search
    /// moves log ρ, which shifts every `c = 2 log x̃₀` by one constant (L = 2) and scales
    /// every `c = −x̃₀^{⊙(2−L)}` by one positive factor (L ≥ 3).
    enum MinimaxRelation { case shift, scale }

    /// `minimaxStart` without a new LP when `c` is the cached one shifted by a constant `k`
    /// (λ is the same, `t` moves by `k`) or scaled by a factor `S > 0` (λ and `t` scale by
    /// `S`): the LP's optimum moves exactly so while the floor stays inactive, i.e. when the
    /// cached optimum was above its floor and the moved one still is. A cached optimum at the
    /// floor (a direction with `Aᵀλ < 0`: no kernel assumption) is reused only where its λ
    /// is at the floor for the new `c` too; otherwise the LP is solved afresh. One LP per WN
    /// root search instead of one per evaluation where the kernel assumption holds. Nil when
    /// `c` is not finite or the LP fails.
    static func cachedMinimaxStart(ws: DualWorkspace, c: [Double], floor: Double,
                                   relation: MinimaxRelation) -> (lambda: [Double], t: Double)? {
        let n = c.count
        guard n > 0, c.allSatisfy({ $0.isFinite }) else { return nil }
        func start(_ lambda: [Double]) -> (lambda: [Double], t: Double)? { minimaxValue(A: ws.A, c: c, lambda: lambda) }
        if let cache = ws.minimaxCache, cache.c.count == n, cache.floor == floor {
            if cache.c == c { return (cache.lambda, cache.t) }
            var factor = 1.0, shift = 0.0, matches = true
            switch relation {
            case .shift:
                shift = c[0] - cache.c[0]
                for j in 0..<n where abs(c[j] - cache.c[j] - shift) > 1e-9 * max(1, abs(c[j]), abs(cache.c[j])) {
                    matches = false; break
                }
            case .scale:
                var jmax = 0
                for j in 1..<n where abs(cache.c[j]) > abs(cache.c[jmax]) { jmax = j }
                factor = c[jmax] / cache.c[jmax]
                matches = factor > 0 && factor.isFinite
                for j in 0..<n where matches && abs(c[j] - factor * cache.c[j]) > 1e-9 * max(abs(c[j]), factor * abs(cache.c[j])) {
                    matches = false
                }
            }
            // GLPK's optimum is exact to about 1e-9 of the data: whether it sits at the floor is
            // read to that (t = 1e-8 for c ≈ 7.6e4 is at the floor 0).
            let size = max(c.reduce(0) { max($0, abs($1)) }, cache.c.reduce(0) { max($0, abs($1)) })
            let tolerance = 1e-9 * max(1, abs(floor), size)
            let pinned = cache.t <= floor + tolerance
            // Away from the floor, and staying above it, the moved optimum is the new LP's.
            // (Moved below the floor it is not: the floor keeps z from collapsing, and a start
            // far below it, λ·1e19 for L = 3, made Newton fail where a fresh LP's did not.)
            let moved = factor * cache.t + shift
            if matches, !pinned, moved > floor + tolerance, let candidate = start(cache.lambda.map { factor * $0 }) {
                return candidate
            }
            // At the floor: the cached λ, when it is at the floor for the new c too, is optimal
            // there (L ≥ 3 without the kernel assumption once c = −b is negligible).
            if pinned, let same = start(cache.lambda), abs(same.t - floor) <= tolerance {
                return same
            }
        }
        ws.minimaxSolves += 1
        guard let start = minimaxStart(A: ws.A, c: c, floor: floor) else { return nil }
        ws.minimaxCache = (c, floor, start.lambda, start.t)
        return start
    }

    /// Chord steps `chordSettles` tries before Newton.
    static let maxChordSteps = 3
    /// The largest measured contraction `q` at which `chordSettles` still trusts its estimate
    /// `δ/(1 − q)` of what is left.
    static let maxContraction = 0.5

    // MARK: L ≥ 3

    /// `v = s = b + Aᵀλ`, `z = s^{−p}`, `f = φ = −Σ s^{−q}/q − yᵀλ`, `g = A z − y` at `p.lambda`;
    /// false when some `s ≤ 0` or φ, ‖g‖ are not finite. With `step` (a Newton step of length
    /// α from `from`, `ws.u = Aᵀδ`), `s = s_from + α Aᵀδ` instead: recomputing `b + Aᵀλ`
    /// rounds s by `ε·(|A|ᵀ|λ|)_j`, which exceeds s itself where λ's terms cancel (signed L = 4:
    /// s ≈ 9e-4 against |A|ᵀ|λ| ≈ 1e4), and then z = s^{−p} is too noisy for the residual
    /// to fall below 1e-4; the increments' rounding shrinks with the steps. The s so kept
    /// equals `b' + Aᵀλ` for a `b'` within that rounding of b (`power` reports the difference).
    private static func powerState(_ pt: DualPoint, b: UnsafePointer<Double>, p: Double, q: Double,
                                   ws: DualWorkspace, step: (from: DualPoint, alpha: Double)? = nil) -> Bool {
        let m = ws.m, n = ws.n
        if let step {
            // s moved along Aᵀδ (in `ws.u`) from the previous iterate's s, not recomputed.
            for j in 0..<n { pt.v[j] = step.from.v[j] + step.alpha * ws.u[j] }
        } else {
            ws.multiplyTransposed(pt.lambda, into: pt.v)
            for j in 0..<n { pt.v[j] = b[j] + pt.v[j] }
        }
        var sum = 0.0
        for j in 0..<n {
            let sj = pt.v[j]
            if !(sj > 0) { return false }
            let ls = Foundation.log(sj)
            pt.z[j] = Foundation.exp(-p * ls)
            sum += Foundation.exp(-q * ls)
        }
        let yl = m > 0 ? ws.y.withUnsafeBufferPointer { blasDot(m, $0.baseAddress!, pt.lambda) } : 0
        let phi = -sum / q - yl
        ws.multiply(pt.z, into: pt.g)
        var r2 = 0.0
        ws.y.withUnsafeBufferPointer { y in
            for i in 0..<m { pt.g[i] = pt.g[i] - y[i]; r2 += pt.g[i] * pt.g[i] }
        }
        guard phi.isFinite, r2.isFinite else { return false }
        pt.f = phi
        pt.r = r2.squareRoot()
        return true
    }

    /// L ≥ 3 (MATH.md §4): `s(λ) = x̃₀^{⊙(2−L)} + Aᵀλ > 0`, `z = s^{⊙(−p)}`, `p = L/(L−2)`;
    /// maximizes `Σ s^{1−p}/(1−p) − yᵀλ` by Newton (Hessian `A diag(p s^{−p−1}) Aᵀ`, scaled
    /// by its largest weight), fraction-to-boundary 0.99 to keep s > 0, backtracking until
    /// Armijo ascent or a sufficient decrease of `‖Az − y‖`; s is carried along the steps
    /// (`powerState`), and the Newton systems are solved by the Gram's Cholesky (ridged when
    /// needed) until the residual, below `exactSolvesBelow`, stalls for `exactSolvesAfter`
    /// iterations, by QR after (`DualWorkspace.solveWeighted`).
    /// When `p·ε·R > lostDigitsTolerance` (see `amplification`) at Newton's answer and the
    /// entries off its numerical support carry less of ‖x‖² than `p·ε·R/L` (the LP's error in g
    /// against Newton's), or when a cheap lower
    /// bound on R already puts that error above `newtonErrorLimit`, it returns the weighted-ℓ1
    /// LP minimizer with weights `w = exp((2−L)(log x̃₀ − min log x̃₀)) ∝ x̃₀^{⊙(2−L)}` (the
    /// minimizer does not depend on the common factor), `method = "weighted-l1-lp"`,
    /// `lostDigits = true`. Either way `errorEstimate` says how far off the answer may be.
    /// All iterates live in the preallocated `workspace` (one is made when nil).
    static func power(A: Matrix, y: [Double], depth L: Int, logX0: [Double], warmStart: inout [Double]?,
                      workspace: DualWorkspace? = nil, rebased: Bool = false,
                      newtonOnly: Bool = false) throws -> GFLimitPrediction {
        let m = A.rows, n = A.cols
        let p = Double(L) / Double(L - 2)
        let q = p - 1
        let ny = norm2(y)
        let logb = logX0.map { Double(2 - L) * $0 }
        // Cheap lower bound on R: some z_n ≥ ‖y‖/(‖A‖_F √N), so x_n ≥ that^{1/L}, and x̃₀,n ≤ max x̃₀.
        let maxLogX0 = logX0.max() ?? 0
        let zLow = ny / max(A.frobeniusNorm * Double(n).squareRoot(), Double.leastNormalMagnitude)
        let logRLow = Double(L - 2) * (Foundation.log(zLow) / Double(L) - maxLogX0)
        // Newton is tried while its error p·ε·R/L in x may stay below `newtonErrorLimit`; past
        // that (by the cheap bound) only the LP can answer.
        let logThreshold = Foundation.log(newtonErrorLimit * Double(L) / (p * Double.ulpOfOne))
        if ny == 0 || logRLow > logThreshold || (logb.max() ?? 0) > 600 {
            // `offSupportRatios` asks for Newton alone: its LP would ask for Newton again (a start
            // entry at 5e-324, L = 3, recursed until the stack ran out, exit 139).
            if newtonOnly { throw TheoryError.notConverged("depth \(L): only the weighted-ℓ1 LP answers here") }
            return try weightedLP(A: A, y: y, depth: L, logX0: logX0, amplificationLog: max(logRLow, 0),
                                  workspace: workspace)
        }
        let ws = workspace ?? DualWorkspace(A: A, y: y)
        let bArr = logb.map { Foundation.exp($0) }
        let outcome: (prediction: GFLimitPrediction?, logR: Double, lambda: [Double], lpError: PredictionError?) = try bArr.withUnsafeBufferPointer { bb in
            let b = bb.baseAddress ?? UnsafePointer(ws.w)
            var ok = false
            if let w0 = warmStart, w0.count == m {
                for i in 0..<m { ws.cur.lambda[i] = w0[i] }
                ok = powerState(ws.cur, b: b, p: p, q: q, ws: ws)
            }
            if !ok {
                ws.cur.lambda.update(repeating: 0, count: m)
                ok = powerState(ws.cur, b: b, p: p, q: q, ws: ws)
            }
            // x̃₀ so large that z = s^{−p} overflows at λ = 0 (s = b ≈ 0): start where the
            // smallest s is largest (up to 1), λ = −μ with μ minimizing max(Aᵀμ − b).
            if !ok, let start = cachedMinimaxStart(ws: ws, c: bArr.map { -$0 }, floor: -1, relation: .scale),
               start.t < 0, -p * Foundation.log(-start.t) < 600 {
                for i in 0..<m { ws.cur.lambda[i] = -start.lambda[i] }
                ok = powerState(ws.cur, b: b, p: p, q: q, ws: ws)
            }
            guard ok else { throw TheoryError.notConverged("L >= 3: x0^(2-L) overflows") }
            ws.best.copy(from: ws.cur)
            var iterations = 0
            var stall = 0
            var bestIteration = 0
            var exactSolves = false
            while iterations < 500 {
                let cur = ws.cur
                // Rounding floor: s = b + Aᵀλ carries an absolute error ≈ ε·b, so z_n a relative
                // error ≈ p·ε·b_n/s_n.
                for j in 0..<n { ws.w[j] = cur.z[j] * (1 + p * b[j] / cur.v[j]) }
                if m == 0 || ws.withinRoundingFloor(cur.r, ws.w) { break }
                if iterations - bestIteration >= 15 && ws.best.r <= 1e-9 * ny { break }  // stagnation at the floor
                iterations += 1
                let dmax = powerHessianWeights(cur, p: p, ws: ws)
                guard dmax > 0 else { break }
                if exactSolves {
                    ws.rhs.update(from: cur.g, count: m)
                    guard ws.solveWeighted(ws.w) else { break }
                } else {
                    ws.weightedGram(ws.w)
                    ws.rhs.update(from: cur.g, count: m)
                    guard ws.solveSPD() else { break }
                }
                let delta = ws.d
                for i in 0..<m { delta[i] = delta[i] / dmax }
                ws.multiplyTransposed(delta, into: ws.u)
                var alphaMax = Double.infinity
                for j in 0..<n where ws.u[j] < 0 { alphaMax = min(alphaMax, cur.v[j] / -ws.u[j]) }
                var alpha = min(1.0, 0.99 * alphaMax)
                let full = alpha == 1
                let slope = blasDot(m, cur.g, delta)
                var accepted = false
                let cand = ws.cand
                for _ in 0..<60 {
                    for i in 0..<m { cand.lambda[i] = cur.lambda[i] + alpha * delta[i] }
                    if powerState(cand, b: b, p: p, q: q, ws: ws, step: (cur, alpha)),
                       cand.f >= cur.f + 1e-4 * alpha * slope || cand.r <= (1 - 1e-4 * alpha) * cur.r {
                        accepted = true
                        break
                    }
                    alpha *= 0.5
                }
                guard accepted else { break }
                if full && alpha == 1 && cand.r > 0.5 * cur.r && cand.r <= 1e-9 * ny { stall += 1 } else if cand.r <= 0.5 * cur.r { stall = 0 }
                let halved = cand.r < 0.5 * ws.best.r
                ws.swapCurrentAndCandidate()
                if halved { bestIteration = iterations }
                if ws.cur.r < ws.best.r { ws.best.copy(from: ws.cur) }
                if stall >= 3 { break }
                // No halving in `exactSolvesAfter` iterations: the Gram's ridge may be what holds
                // the steps back (see `DualWorkspace.solveWeighted`); go on with exact solves.
                if !exactSolves && iterations - bestIteration >= exactSolvesAfter && ws.best.r <= exactSolvesBelow * ny {
                    exactSolves = true
                    bestIteration = iterations
                }
            }
            if ws.cur.r < ws.best.r { ws.best.copy(from: ws.cur) }
            let best = ws.best
            let rel = ny > 0 ? best.r / ny : best.r
            // Amplification R over the numerical support.
            var zmax = 0.0
            for j in 0..<n { zmax = max(zmax, best.z[j]) }
            var R = 0.0
            for j in 0..<n where best.z[j] >= 1e-8 * zmax { R = max(R, b[j] / best.v[j]) }
            for j in 0..<n { ws.w[j] = best.z[j] * (1 + p * b[j] / best.v[j]) }
            let floorRel = 4 * Double.ulpOfOne * ws.absProductNorm(ws.w) / max(ny, Double.leastNormalMagnitude)
            let failed = rel > max(1e-6, 100 * floorRel)
            let newtonError = p * Double.ulpOfOne * R
            if failed {
                if newtonError <= lostDigitsTolerance {
                    // Signed problems ([A, −A]) always meet the kernel assumption; there the stall has
                    // been a limit with entries far below the rest (signed L = 4-5 from starts spread
                    // over 6 decades: linear convergence, 1.3e-6 after 500 iterations).
                    throw TheoryError.notConverged("L >= 3 dual Newton stopped after \(iterations) iterations with relative "
                        + "residual \(rel); either S+ has no strictly positive point (unsigned: check the kernel assumption) "
                        + "or the limit has entries far below the rest, which leaves Newton's system ill-conditioned (simulate still applies)")
                }
                return (nil, Foundation.log(R), [], nil)
            }
            let logx = best.vArray.map { Foundation.log($0) / Double(2 - L) }
            let x = logx.map { Foundation.exp($0) }
            let z = best.zArray
            // Entries at the residual's level are unresolved only where the entries above it
            // leave directions of λ free (fewer than M of them: a support smaller than M).
            let level = 100 * rel * zmax
            let atLevel = shareBelow(level, z: z, x: x)
            // Twice their share: such an entry can be off by more than itself (a 60-digit limit
            // of GF L = 5 without the kernel assumption: z 1.92e-9 off where the share was 1.82e-9).
            let unresolved = atLevel.above < m ? (z: 2 * atLevel.z, x: 2.0.squareRoot() * atLevel.x) : (z: 0.0, x: 0.0)
            if newtonError > lostDigitsTolerance {
                // Which answer is nearer the projection in g: Newton's, or the LP's, which drops
                // the entries off the numerical support? Newton's answer is kept only when it
                // converged (`keptResidual`), and read for the LP's error only when it is near
                // (`estimateResidual`; the share need only be right to a factor of order 1).
                guard rel <= estimateResidual else { return (nil, Foundation.log(R), [], nil) }
                let off = shareBelow(1e-8 * zmax, z: z, x: x)
                if rel > keptResidual || newtonError / Double(L) > off.x * off.x {
                    // The LP's g misses Σ_off x²/(2‖x‖²); its z, ‖z_off‖ and the support's answer to it.
                    return (nil, Foundation.log(R), [], PredictionError(z: 2 * off.z, g: off.x * off.x))
                }
            }
            // Newton's answer stands. Where its floor was the rounding of s = b + Aᵀλ against
            // b ≫ s, the same problem is solved again from the exactly summed
            // `b' = b + Aᵀλ_best` (see `rebasedBase`), kept when it meets a smaller
            // residual with Newton. (Not where the LP answered above: on 4 random L = 5 GF
            // problems the rebased Newton there was 1.7e-6…2.1e-4 off a 40-digit projection in g,
            // the LP 1.7e-7…7.2e-6.)
            if !rebased && m > 0 && n > 0 && rel > rebaseResidual,
               case let start = best.lambdaArray,
               let shifted = rebasedBase(b, lambda: best.lambda, residual: best.r, ws: ws, admissible: { $0 > 0 },
                                         weights: { j, _ in (best.z[j] * (1 + p * b[j] / best.v[j]), best.z[j] * (1 + p)) }),
               var out = keepingBest(ws, { () -> GFLimitPrediction? in
                   var zero: [Double]? = [Double](repeating: 0, count: m)
                   guard let r = try? power(A: A, y: y, depth: L, logX0: shifted.map { Foundation.log($0) / Double(2 - L) },
                                            warmStart: &zero, workspace: ws, rebased: true, newtonOnly: newtonOnly) else { return nil }
                   return r.method == "dual-newton" && r.kktResidual < rel ? r : nil
               }) {
                out.lambda = zip(start, out.lambda).map { $0 + $1 }
                out.iterations += iterations
                out.amplification = R  // the problem's x̃₀^{2−L}/x^{2−L}, not the rebased one's
                // The rebase removes s's rounding, not b's own (b = x̃₀^{2−L} rounded to ε),
                // which moves z by up to p·ε·R where more than M entries carry the
                // cancellation: that term of the estimate stays.
                let own = out.errorEstimate ?? PredictionError(z: 0, g: 0)
                out.errorEstimate = PredictionError(z: max(own.z, newtonError), g: max(own.g, newtonError / Double(L)))
                return (out, 0, out.lambda, nil)
            }
            // The s kept along the steps is `b' + Aᵀλ` with b' off b by the increments' rounding
            // (`powerState`); z moves by about p·|b' − b|/s for such a change of the start.
            // (The recomputed b + Aᵀλ rounds by as much again, so this bounds it by excess.)
            // Both run only where the estimate is read (`estimatesErrors`).
            var drift = 0.0
            if ws.estimatesErrors {
                ws.multiplyTransposed(best.lambda, into: ws.u)
                for j in 0..<n where best.z[j] >= 1e-8 * zmax {
                    drift = max(drift, p * Swift.abs(best.v[j] - (b[j] + ws.u[j])) / best.v[j])
                }
            }
            // What is left to move, from one more Newton step at the answer (δ = H⁻¹r,
            // δx_j/x_j = (Aᵀδ)_j/((2−L)s_j)): in z, p‖(Aᵀδ/s)⊙z‖/‖z‖; in g, the largest move over
            // every residual e as large as r in H⁻¹'s norm, √(cᵀH⁻¹c · rᵀH⁻¹r)/‖x‖² with
            // c = A(x²/((L−2)s)). At the rounding floor r is noise, and entries the residual
            // leaves loose show up in g though not in z: signed L = 5, M = 4, N = 20, an entry
            // of z = 8.7e-8 whose integrated value is 1.5e-9 (x 0.039 vs 0.017) moved g by 2.2e-4
            // where the other terms said 1.8e-10; this bound says 2.3e-3, the step itself 2.7e-5.
            // (Stop 27 summed each term's own largest size, √(a_jᵀH⁻¹a_j · rᵀH⁻¹r) x_j²/((L−2)s_j):
            // 4.0e-3 there, and N triangular solve pairs where this takes one.)
            var stepG = 0.0, stepZ = 0.0
            let dmax = ws.estimatesErrors && m > 0 ? powerHessianWeights(best, p: p, ws: ws) : 0
            if dmax > 0 {
                ws.weightedGram(ws.w)
                ws.rhs.update(from: best.g, count: m)
                if ws.solveSPD() && ws.cholHoldsFactor {
                    var rHr = 0.0
                    for i in 0..<m { rHr += best.g[i] * ws.d[i] }
                    rHr = Swift.max(rHr, 0) / dmax
                    for i in 0..<m { ws.d[i] = ws.d[i] / dmax }
                    ws.multiplyTransposed(ws.d, into: ws.u)
                    var xx = 0.0, zz = 0.0, dz = 0.0
                    for j in 0..<n {
                        xx += x[j] * x[j]
                        let dzj = p * Swift.abs(ws.u[j] / best.v[j]) * best.z[j]
                        zz += best.z[j] * best.z[j]; dz += dzj * dzj
                        ws.w[j] = x[j] * x[j] / (Double(L - 2) * best.v[j])
                    }
                    // δg/g = Σ_j x_j²(Aᵀδ)_j/((2−L)s_j)/‖x‖² = cᵀH⁻¹e/‖x‖², c = A(x²/((L−2)s)),
                    // for δ = H⁻¹e; its largest size over eᵀH⁻¹e ≤ rᵀH⁻¹r is √(cᵀH⁻¹c · rᵀH⁻¹r).
                    ws.multiply(ws.w, into: ws.d2)
                    ws.tm.update(from: ws.d2, count: m)
                    choleskySolveInPlace(ws.chol, m, ws.tm)
                    let cHc = blasDot(m, ws.d2, ws.tm)
                    let gx = (Swift.max(cHc, 0) / dmax * rHr).squareRoot()
                    // Twice the first-order moves: the step is the error only to first order, and
                    // r at this level carries its own rounding (GF L = 5 and 4 without the kernel
                    // assumption: z 1.92e-9 and 5.62e-10 off 60-digit limits where the step said
                    // 1.82e-9 and 5.51e-10).
                    if xx > 0 && gx.isFinite { stepG = 2 * gx / xx }
                    if zz > 0 && dz.isFinite { stepZ = 2 * (dz / zz).squareRoot() }
                }
            }
            let lambda = best.lambdaArray
            return (GFLimitPrediction(depth: L, z: z, x: x, logX: logx,
                                      lambda: lambda, iterations: iterations, kktResidual: rel,
                                      lostDigits: false, amplification: R, method: "dual-newton",
                                      errorEstimate: PredictionError(z: newtonError + drift + max(unresolved.z, stepZ),
                                                                     g: (newtonError + drift) / Double(L)
                                                                         + max(unresolved.x * unresolved.x, stepG))),
                    0, lambda, nil)
        }
        guard let prediction = outcome.prediction else {
            if newtonOnly { throw TheoryError.notConverged("depth \(L): Newton did not converge") }
            var lp = try weightedLP(A: A, y: y, depth: L, logX0: logX0, amplificationLog: outcome.logR, workspace: ws)
            // A converged Newton answer's own off-support share, where there is one, else the
            // estimate from the LP's duals (`offSupportRatios`).
            if let e = outcome.lpError { lp.errorEstimate = e }
            return lp
        }
        warmStart = outcome.lambda
        return prediction
    }

    /// L ≥ 3: the Newton Hessian's weights `p s^{−p−1}` at `pt` divided by their largest,
    /// into `ws.w`; returns that largest (1 when N = 0; not positive when the weights are not).
    private static func powerHessianWeights(_ pt: DualPoint, p: Double, ws: DualWorkspace) -> Double {
        let n = ws.n
        var dmax = n > 0 ? -Double.infinity : 1
        for j in 0..<n {
            ws.w[j] = p * pt.z[j] / pt.v[j]
            dmax = max(dmax, ws.w[j])
        }
        guard dmax > 0 else { return dmax }
        for j in 0..<n { ws.w[j] = ws.w[j] / dmax }
        return dmax
    }

    /// L ≥ 3: iterations without halving the best residual after which `power` solves its
    /// Newton systems by QR (`DualWorkspace.solveWeighted`) instead of the Gram's Cholesky.
    static let exactSolvesAfter = 8
    /// … once the relative residual is below this (the global phase from a far start halves it
    /// slowly too, and exact steps there run off towards far maximizers).
    static let exactSolvesBelow = 1e-2

    /// L ≥ 3: the largest error of Newton's answer (`p·ε·R/L` relative in x) for which `power`
    /// still runs Newton; past it (by a cheap lower bound on R) it goes straight to the LP.
    static let newtonErrorLimit = 1e-4

    /// L ≥ 3, past `lostDigitsTolerance`: the largest relative residual at which Newton's answer
    /// is kept (a run that stopped at 3.6e-3 had put half of x into the entries below its
    /// residual's level).
    static let keptResidual = 1e-7
    /// L ≥ 3, past `lostDigitsTolerance`: the largest relative residual at which Newton's
    /// off-support share is read as the LP's error estimate.
    static let estimateResidual = 1e-5

    /// `(‖z_U‖/‖z‖, ‖x_U‖/‖x‖)` over the entries `U = {n : z_n ≤ level}`, and how many lie
    /// above it (the numerical
    /// off-support at `1e-8·max z`, as `amplification`: what the weighted-ℓ1 LP sets to 0; or
    /// those at the residual's level, `PredictionError`).
    static func shareBelow(_ level: Double, z: [Double], x: [Double]) -> (z: Double, x: Double, above: Int) {
        var zo = 0.0, za = 0.0, xo = 0.0, xa = 0.0, above = 0
        for j in z.indices {
            za += z[j] * z[j]; xa += x[j] * x[j]
            if z[j] <= level { zo += z[j] * z[j]; xo += x[j] * x[j] } else { above += 1 }
        }
        return (za > 0 ? (zo / za).squareRoot() : 0, xa > 0 ? (xo / xa).squareRoot() : 0, above)
    }

    /// Normalized L ≥ 3 weights `w = exp((2−L)(log x̃₀ − min log x̃₀)) ∈ (0, 1]`, proportional
    /// to `x̃₀^{⊙(2−L)}` (MATH.md §4: the bias is to the weighted ℓ1 minimum).
    /// The common factor is `exp((2−L)·min log x̃₀)`, returned as its log.
    public static func normalizedPowerWeights(depth L: Int, logX0: [Double]) -> (weights: [Double], logFactor: Double) {
        let lo = logX0.min() ?? 0
        return (logX0.map { Foundation.exp(Double(2 - L) * ($0 - lo)) }, Double(2 - L) * lo)
    }

    /// The weighted-ℓ1 fallback of `power`. Its weights are normalized, so they do not move
    /// with log ρ: a `workspace` keeps the last minimizer and a WN root search solves one LP
    /// instead of one per evaluation (weights equal to 1e-12 relative).
    /// Its `errorEstimate` reads the entries the LP drops from `offSupportRatios`
    /// (`lpOffSupportError`).
    static func weightedLP(A: Matrix, y: [Double], depth L: Int, logX0: [Double], amplificationLog: Double,
                           workspace: DualWorkspace? = nil) throws -> GFLimitPrediction {
        let w = normalizedPowerWeights(depth: L, logX0: logX0).weights
        let z: [Double], ratios: [Double]?
        if let cache = workspace?.weightedL1Cache, cache.weights.count == w.count,
           zip(cache.weights, w).allSatisfy({ abs($0 - $1) <= 1e-12 * max($0, $1) }) {
            z = cache.z
            ratios = cache.logRatios
        } else {
            let lp = try L1Minimization.solve(A: A, y: y, weights: w)
            z = lp.minimizer
            ratios = offSupportRatios(A: A, y: y, depth: L, logX0: logX0, z: z, weights: w,
                                      reducedCosts: lp.reducedCosts, noise: lp.noise)
            workspace?.weightedL1Solves += 1
            workspace?.weightedL1Cache = (w, z, ratios)
        }
        let ny = norm2(y)
        let res = residualNorm(A, z, y)
        let logx = z.map { $0 > 0 ? Foundation.log($0) / Double(L) : -Double.infinity }
        let x = z.map { Foundation.pow($0, 1 / Double(L)) }
        return GFLimitPrediction(depth: L, z: z, x: x, logX: logx,
                                 lambda: [], iterations: 0, kktResidual: ny > 0 ? res / ny : res,
                                 lostDigits: true, amplification: Foundation.exp(min(amplificationLog, 709)),
                                 method: "weighted-l1-lp",
                                 errorEstimate: ratios.flatMap { lpOffSupportError(z: z, x: x, logRatios: $0, logX0: logX0, depth: L) })
    }

    /// `log(x_n/x̃₀,n)` of the Bregman projection for the entries off the weighted-ℓ1 LP's
    /// support (`z_n = 0`; 0, unused, on it), to leading order in `1/R` (MATH.md §4). Far
    /// past `lostDigitsTolerance` the dual solution is `λ ≈ −e^{F}ν` (`F` the weights' common
    /// log factor) with ν an optimal dual of the LP, so an entry off its support has
    /// `s_n = x̃₀,n^{2−L} + (Aᵀλ)_n ≈ x̃₀,n^{2−L}·r_n/w_n` (`r = w − Aᵀν`), i.e.
    /// `x_n/x̃₀,n ≈ (r_n/w_n)^{−1/(L−2)}`, which does not depend on `F`:
    /// - at a non-degenerate vertex (every reduced cost off the support above GLPK's noise)
    ///   ν is unique and the LP's own reduced costs give the ratios;
    /// - at a degenerate one (fewer than M positive entries, e.g. a recovered sparse z*) the
    ///   optimal duals form a face, and the projection picks the point of it where
    ///   `A_off r_off^{−p}` lies in the support's column space (the next order of `Az = y`),
    ///   which GLPK's vertex is not: the ratios are then read from Newton's answer at x̃₀
    ///   shifted up to a moderate amplification (`transferAmplification`), where Newton
    ///   converges and resolves those entries. Nil when that fails.
    static func offSupportRatios(A: Matrix, y: [Double], depth L: Int, logX0: [Double], z: [Double], weights w: [Double],
                                 reducedCosts: [Double]?, noise: [Double]?) -> [Double]? {
        guard L >= 3, z.count == logX0.count else { return nil }
        if let r = reducedCosts, let noise, r.count == z.count, noise.count == z.count,
           z.indices.allSatisfy({ z[$0] > 0 || (r[$0] > noise[$0] && w[$0] > 0) }) {
            return z.indices.map { z[$0] > 0 ? 0 : -Foundation.log(r[$0] / w[$0]) / Double(L - 2) }
        }
        // log R = (L−2)·max over the support of log(x_n/x̃₀,n), from the LP's own z.
        var logR = -Double.infinity
        for j in z.indices where z[j] > 0 { logR = max(logR, Double(L - 2) * (Foundation.log(z[j]) / Double(L) - logX0[j])) }
        guard logR.isFinite else { return nil }
        let shift = max(0, (logR - Foundation.log(transferAmplification(depth: L))) / Double(L - 2))
        let moved = logX0.map { $0 + shift }
        var warm: [Double]? = nil
        guard let newton = try? power(A: A, y: y, depth: L, logX0: moved, warmStart: &warm, newtonOnly: true),
              newton.method == "dual-newton", newton.kktResidual <= 1e-9, let logx = newton.logX else { return nil }
        let out = z.indices.map { z[$0] > 0 ? 0 : logx[$0] - moved[$0] }
        return out.allSatisfy(\.isFinite) ? out : nil
    }

    /// The amplification R at which `offSupportRatios` reads a degenerate vertex's ratios
    /// from Newton: 1e6, or less where the entries off the support would otherwise fall
    /// below 1e-8 of max z (`z_off/z ~ R^{−L/(L−2)}`, which Newton's residual must resolve):
    /// 464 at L = 3, 1e4 at L = 4, 6.3e4 at L = 5. The ratios it reads are off by
    /// `O(1/(R·r_n/w_n))`.
    static func transferAmplification(depth L: Int) -> Double {
        min(1e6, Foundation.exp(Foundation.log(1e8) * Double(L - 2) / Double(L)))
    }

    /// How far the weighted-ℓ1 LP's answer is from the Bregman projection (MATH.md §4): the
    /// LP sets the entries off its support to 0, whose `x_n = x̃₀,n·e^{logRatios_n}`
    /// (`offSupportRatios`), so its g misses `Σ_off x²/(2‖x‖²)` and its z misses
    /// `‖z_off‖/‖z‖`; the estimate is twice both (the convention of the Newton-read estimate
    /// in `power`).
    /// `x` is the LP's own `z^{1/L}`.
    static func lpOffSupportError(z: [Double], x: [Double], logRatios: [Double], logX0: [Double],
                                  depth L: Int) -> PredictionError? {
        guard L >= 3, z.count == logX0.count, logRatios.count == z.count, x.count == z.count else { return nil }
        var x2On = 0.0, z2On = 0.0, x2Off = 0.0, z2Off = 0.0
        for j in z.indices {
            if z[j] > 0 {
                z2On += z[j] * z[j]
                x2On += x[j] * x[j]
                continue
            }
            let logx = logX0[j] + logRatios[j]
            let x2 = Foundation.exp(2 * logx), zz = Foundation.exp(2 * Double(L) * logx)
            guard x2.isFinite, zz.isFinite else { return nil }
            x2Off += x2; z2Off += zz
        }
        let x2 = x2On + x2Off, z2 = z2On + z2Off
        guard x2 > 0, z2 > 0 else { return nil }
        return PredictionError(z: min(1, 2 * (z2Off / z2).squareRoot()), g: min(1, x2Off / x2))
    }
}
