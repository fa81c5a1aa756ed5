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
    /// L ≥ 3: `x̃₀^{⊙(2−L)}` dwarfs the entries of `s` so much that Newton's `z` would
    /// have fewer than ~4 correct digits; the weighted-ℓ1 LP minimizer is returned instead.
    public var lostDigits: Bool
    /// L ≥ 3: `R = max_n x̃₀,n^{2−L} / s_n` over the numerical support (`z_n ≥ 1e-8 max z`),
    /// which equals `max_n (x_∞,n / x̃₀,n)^{L−2}`. Newton's relative accuracy in z is about
    /// `p·ε·R` (`p = L/(L−2)`, ε = 2.2e-16); the LP stand-in's is about `1/R`.
    public var amplification: Double?
    /// `"closed-form"` (L = 1), `"dual-newton"` (L ≥ 2), `"weighted-l1-lp"` (L ≥ 3, lost digits).
    public var method: String
}

/// The gradient-flow limit `z_∞ = argmin_{z∈S₊} D_F(z, x̃₀^{⊙L})` (MATH.md §4) by Newton
/// on the dual; no integration.
public enum LimitPredictor {
    /// L ≥ 3: Newton is declared to have lost its digits when its estimated relative error
    /// `p·ε·R` exceeds this (R ≈ 1.5e7 for L = 3). Beyond that the weighted-ℓ1 LP is the better
    /// answer: for a unique, non-degenerate LP minimizer with relative reduced-cost gap δ the
    /// Bregman projection differs from it by about `(R·δ)^{−p}` (off-support entries
    /// `z_n = s_n^{−p}` with `s_n ≈ δ·b_n`), far below `p·ε·R`.
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
        guard A.isFinite, y.allSatisfy(\.isFinite) else { throw TheoryError.invalidInput("A and y must be finite") }
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

    /// Shared entry with a warm start for λ (used by the WN root search).
    static func gradientFlow(A: Matrix, y: [Double], depth: Int, logX0: [Double],
                             warmStart: inout [Double]?) throws -> GFLimitPrediction {
        switch depth {
        case 1:
            let x0 = logX0.map { Foundation.exp($0) }
            return linear(A: A, y: y, x0: x0, svd: try SVD(A))
        case 2:
            return try entropic(A: A, y: y, logX0: logX0, warmStart: &warmStart)
        default:
            return try power(A: A, y: y, depth: depth, logX0: logX0, warmStart: &warmStart)
        }
    }

    /// `A diag(d) Aᵀ` via `B = A diag(√d)`, `B Bᵀ` (dsyrk).
    static func weightedGram(_ a: Matrix, _ d: [Double]) -> Matrix {
        var b = a
        let n = a.cols
        let sq = d.map { $0.squareRoot() }
        b.storage.withUnsafeMutableBufferPointer { s in
            for i in 0..<a.rows { for j in 0..<n { s[i * n + j] *= sq[j] } }
        }
        return b.gram(rowsTimesRowsT: true)
    }

    /// Solves `H x = r` for symmetric positive semi-definite `H`: Cholesky, then Cholesky with
    /// a growing ridge `τ·tr(H)/M`, then the SVD pseudo-inverse.
    /// (A local Cholesky: GSLKit's `CholeskyFactorization` frees its matrix twice when the
    /// factorization fails, because `deinit` runs after a throwing `init`.)
    static func solveSPD(_ h: Matrix, _ r: [Double]) -> [Double]? {
        let m = h.rows
        if m == 0 { return [] }
        if let x = choleskySolve(h, r, shift: 0) { return x }
        var tr = 0.0
        for i in 0..<m { tr += h[i, i] }
        let base = max(tr / Double(m), Double.leastNormalMagnitude)
        var tau = 1e-14
        while tau <= 1e-2 {
            if let x = choleskySolve(h, r, shift: tau * base) { return x }
            tau *= 100
        }
        if let svd = try? SVD(h) {
            let x = svd.pseudoInverseApply(r)
            if x.allSatisfy(\.isFinite) { return x }
        }
        return nil
    }

    /// `(H + shift·I) x = r` by a dense Cholesky factorization; nil when not positive definite.
    static func choleskySolve(_ h: Matrix, _ r: [Double], shift: Double) -> [Double]? {
        let m = h.rows
        var l = h.storage
        for i in 0..<m { l[i * m + i] += shift }
        return l.withUnsafeMutableBufferPointer { a -> [Double]? in
            for j in 0..<m {
                var d = a[j * m + j]
                for k in 0..<j { d -= a[j * m + k] * a[j * m + k] }
                guard d > 0, d.isFinite else { return nil }
                let djj = d.squareRoot()
                a[j * m + j] = djj
                for i in (j + 1)..<max(m, j + 1) {
                    var s = a[i * m + j]
                    for k in 0..<j { s -= a[i * m + k] * a[j * m + k] }
                    a[i * m + j] = s / djj
                }
            }
            var x = r
            for i in 0..<m {  // L w = r
                var s = x[i]
                for k in 0..<i { s -= a[i * m + k] * x[k] }
                x[i] = s / a[i * m + i]
            }
            for i in stride(from: m - 1, through: 0, by: -1) {  // Lᵀ x = w
                var s = x[i]
                for k in (i + 1)..<max(m, i + 1) { s -= a[k * m + i] * x[k] }
                x[i] = s / a[i * m + i]
            }
            return x.allSatisfy(\.isFinite) ? x : nil
        }
    }

    /// `‖ |A| |z| ‖₂`: the size of the rounding floor of `A z`.
    static func absProductNorm(_ a: Matrix, _ z: [Double]) -> Double {
        var s = 0.0
        let n = a.cols
        for i in 0..<a.rows {
            var t = 0.0
            for j in 0..<n { t += abs(a.storage[i * n + j] * z[j]) }
            s += t * t
        }
        return s.squareRoot()
    }

    // MARK: L = 2

    private struct EntropicState {
        var lambda: [Double]
        var logz: [Double]
        var z: [Double]
        var f: Double
        var g: [Double]
        var r: Double
    }

    /// L = 2 (MATH.md §4): `log z(λ) = 2 log x̃₀ + Aᵀλ`, minimize `Σ z(λ) − yᵀλ`.
    /// Newton with Hessian `A diag(z) Aᵀ` scaled by `max z` (so z ≈ e^{−20000} is fine),
    /// steps limited to `max|AᵀΔλ| ≤ cap` (cap starts at 5 and grows ×4, up to 1e4,
    /// while capped steps are accepted in full), backtracking until either Armijo holds for
    /// the dual objective or `‖Az − y‖` decreases sufficiently (the Newton direction is a
    /// descent direction for both; the second survives the rounding noise of the objective).
    /// Stops at `‖Az − y‖ ≤ max(1e-15‖y‖, 4ε‖|A|z‖)` or when the residual stagnates.
    static func entropic(A: Matrix, y: [Double], logX0: [Double], warmStart: inout [Double]?) throws -> GFLimitPrediction {
        let m = A.rows, n = A.cols
        let a = logX0.map { 2 * $0 }
        let ny = norm2(y)
        func state(_ lam: [Double]) -> EntropicState {
            let t = m > 0 ? A.multiplyTransposed(lam) : [Double](repeating: 0, count: n)
            var logz = [Double](repeating: 0, count: n)
            var z = [Double](repeating: 0, count: n)
            var sumz = 0.0
            for j in 0..<n {
                logz[j] = a[j] + t[j]
                z[j] = Foundation.exp(logz[j])
                sumz += z[j]
            }
            let f = sumz - dot(y, lam)
            let az = m > 0 ? A.multiply(z) : []
            var g = [Double](repeating: 0, count: m)
            var r2 = 0.0
            for i in 0..<m { g[i] = az[i] - y[i]; r2 += g[i] * g[i] }
            return EntropicState(lambda: lam, logz: logz, z: z, f: f.isNaN ? .infinity : f, g: g, r: r2.squareRoot())
        }
        var cur = state(warmStart ?? [Double](repeating: 0, count: m))
        if !cur.f.isFinite || !cur.r.isFinite { cur = state([Double](repeating: 0, count: m)) }
        var best = cur
        var cap = 5.0
        var iterations = 0
        var stall = 0
        var bestIteration = 0
        let maxIterations = 3000
        while iterations < maxIterations {
            // Rounding floor: log z carries an absolute error ≈ ε(|2 log x̃₀| + 1).
            let tol = max(1e-15 * ny, 4 * Double.ulpOfOne * absProductNorm(A, zip(cur.z, a).map { $0 * (1 + abs($1)) }))
            if cur.r <= tol || m == 0 { break }
            if iterations - bestIteration >= 15 && best.r <= 1e-9 * ny { break }  // stagnation at the floor
            iterations += 1
            let s = cur.logz.max() ?? 0
            let zhat = cur.logz.map { Foundation.exp($0 - s) }
            let h = weightedGram(A, zhat)
            guard let d = solveSPD(h, cur.g.map { -$0 }) else { break }
            let u = A.multiplyTransposed(d)
            let mu = maxAbs(u)
            if !(mu > 0) || !mu.isFinite { break }
            // Newton step Δ = e^{−s} d, limited to max|AᵀΔ| ≤ cap (evaluated in logs).
            let capped = Foundation.log(mu) - s > Foundation.log(cap)
            let scale = capped ? cap / mu : Foundation.exp(-s)
            let delta = d.map { $0 * scale }
            let slope = dot(cur.g, delta)
            var alpha = 1.0
            var accepted: EntropicState? = nil
            for _ in 0..<60 {
                let lam = zip(cur.lambda, delta).map { $0 + alpha * $1 }
                let cand = state(lam)
                if cand.f.isFinite && cand.r.isFinite
                    && (cand.f <= cur.f + 1e-4 * alpha * slope || cand.r <= (1 - 1e-4 * alpha) * cur.r) {
                    accepted = cand
                    break
                }
                alpha *= 0.5
            }
            guard let next = accepted else { break }
            if capped && alpha == 1 { cap = min(cap * 4, 1e4) } else if alpha < 1 { cap = max(5, cap * 0.5) }
            // Stagnation at the rounding floor (only counted once the residual is tiny).
            if !capped && alpha == 1 && next.r > 0.5 * cur.r && next.r <= 1e-9 * ny { stall += 1 } else if next.r <= 0.5 * cur.r { stall = 0 }
            cur = next
            if cur.r < 0.5 * best.r { bestIteration = iterations }
            if cur.r < best.r { best = cur }
            if stall >= 3 { break }
        }
        if cur.r < best.r { best = cur }
        guard best.r.isFinite, best.z.allSatisfy(\.isFinite) else {
            throw TheoryError.notConverged("L = 2 dual Newton produced non-finite values")
        }
        warmStart = best.lambda
        let rel = ny > 0 ? best.r / ny : best.r
        if rel > 1e-6 {
            throw TheoryError.notConverged("L = 2 dual Newton stopped after \(iterations) iterations with relative "
                + "residual \(rel); S+ may have no strictly positive point (check the kernel assumption)")
        }
        let logx = best.logz.map { $0 / 2 }
        return GFLimitPrediction(depth: 2, z: best.z, x: logx.map { Foundation.exp($0) }, logX: logx,
                                 lambda: best.lambda, iterations: iterations, kktResidual: rel,
                                 lostDigits: false, amplification: nil, method: "dual-newton")
    }

    // MARK: L ≥ 3

    private struct PowerState {
        var lambda: [Double]
        var s: [Double]
        var z: [Double]
        var phi: Double
        var g: [Double]
        var r: Double
    }

    /// L ≥ 3 (MATH.md §4): `s(λ) = x̃₀^{⊙(2−L)} + Aᵀλ > 0`, `z = s^{⊙(−p)}`, `p = L/(L−2)`;
    /// maximizes `Σ s^{1−p}/(1−p) − yᵀλ` by Newton (Hessian `A diag(p s^{−p−1}) Aᵀ`, scaled
    /// by its largest weight), fraction-to-boundary 0.99 to keep s > 0, backtracking until
    /// Armijo ascent or a sufficient decrease of `‖Az − y‖`.
    /// When `p·ε·R > lostDigitsTolerance` (see `amplification`; checked first with a cheap
    /// lower bound on R, then at Newton's answer) it returns the weighted-ℓ1 LP minimizer
    /// with weights `w = exp((2−L)(log x̃₀ − min log x̃₀)) ∝ x̃₀^{⊙(2−L)}` (the minimizer does
    /// not depend on the common factor), `method = "weighted-l1-lp"`, `lostDigits = true`.
    static func power(A: Matrix, y: [Double], depth L: Int, logX0: [Double], warmStart: inout [Double]?) throws -> GFLimitPrediction {
        let m = A.rows, n = A.cols
        let p = Double(L) / Double(L - 2)
        let q = p - 1
        let ny = norm2(y)
        let logb = logX0.map { Double(2 - L) * $0 }
        // Cheap lower bound on R: some z_n ≥ ‖y‖/(‖A‖_F √N), so x_n ≥ that^{1/L}, and x̃₀,n ≤ max x̃₀.
        let maxLogX0 = logX0.max() ?? 0
        let zLow = ny / max(A.frobeniusNorm * Double(n).squareRoot(), Double.leastNormalMagnitude)
        let logRLow = Double(L - 2) * (Foundation.log(zLow) / Double(L) - maxLogX0)
        let logThreshold = Foundation.log(lostDigitsTolerance / (p * Double.ulpOfOne))
        if ny == 0 || logRLow > logThreshold || (logb.max() ?? 0) > 600 {
            return try weightedLP(A: A, y: y, depth: L, logX0: logX0, amplificationLog: max(logRLow, 0))
        }
        let b = logb.map { Foundation.exp($0) }
        func state(_ lam: [Double]) -> PowerState? {
            let t = m > 0 ? A.multiplyTransposed(lam) : [Double](repeating: 0, count: n)
            var s = [Double](repeating: 0, count: n)
            var z = [Double](repeating: 0, count: n)
            var sum = 0.0
            for j in 0..<n {
                s[j] = b[j] + t[j]
                if !(s[j] > 0) { return nil }
                let ls = Foundation.log(s[j])
                z[j] = Foundation.exp(-p * ls)
                sum += Foundation.exp(-q * ls)
            }
            let phi = -sum / q - dot(y, lam)
            let az = m > 0 ? A.multiply(z) : []
            var g = [Double](repeating: 0, count: m)
            var r2 = 0.0
            for i in 0..<m { g[i] = az[i] - y[i]; r2 += g[i] * g[i] }
            guard phi.isFinite, r2.isFinite else { return nil }
            return PowerState(lambda: lam, s: s, z: z, phi: phi, g: g, r: r2.squareRoot())
        }
        let zeroLam = [Double](repeating: 0, count: m)
        guard var cur = warmStart.flatMap({ $0.count == m ? state($0) : nil }) ?? state(zeroLam) else {
            throw TheoryError.notConverged("L >= 3: x0^(2-L) overflows")
        }
        var best = cur
        var iterations = 0
        var stall = 0
        var bestIteration = 0
        while iterations < 500 {
            // Rounding floor: s = b + Aᵀλ carries an absolute error ≈ ε·b, so z_n a relative
            // error ≈ p·ε·b_n/s_n.
            var zb = [Double](repeating: 0, count: n)
            for j in 0..<n { zb[j] = cur.z[j] * (1 + p * b[j] / cur.s[j]) }
            let tol = max(1e-15 * ny, 4 * Double.ulpOfOne * absProductNorm(A, zb))
            if cur.r <= tol || m == 0 { break }
            if iterations - bestIteration >= 15 && best.r <= 1e-9 * ny { break }  // stagnation at the floor
            iterations += 1
            var dw = [Double](repeating: 0, count: n)
            for j in 0..<n { dw[j] = p * cur.z[j] / cur.s[j] }  // p s^{−p−1}
            let dmax = dw.max() ?? 1
            guard dmax > 0 else { break }
            let h = weightedGram(A, dw.map { $0 / dmax })
            guard let d = solveSPD(h, cur.g) else { break }
            let delta = d.map { $0 / dmax }
            let u = A.multiplyTransposed(delta)
            var alphaMax = Double.infinity
            for j in 0..<n where u[j] < 0 { alphaMax = min(alphaMax, cur.s[j] / -u[j]) }
            var alpha = min(1.0, 0.99 * alphaMax)
            let full = alpha == 1
            let slope = dot(cur.g, delta)
            var accepted: PowerState? = nil
            for _ in 0..<60 {
                let lam = zip(cur.lambda, delta).map { $0 + alpha * $1 }
                if let cand = state(lam),
                   cand.phi >= cur.phi + 1e-4 * alpha * slope || cand.r <= (1 - 1e-4 * alpha) * cur.r {
                    accepted = cand
                    break
                }
                alpha *= 0.5
            }
            guard let next = accepted else { break }
            if full && alpha == 1 && next.r > 0.5 * cur.r && next.r <= 1e-9 * ny { stall += 1 } else if next.r <= 0.5 * cur.r { stall = 0 }
            cur = next
            if cur.r < 0.5 * best.r { bestIteration = iterations }
            if cur.r < best.r { best = cur }
            if stall >= 3 { break }
        }
        if cur.r < best.r { best = cur }
        let rel = ny > 0 ? best.r / ny : best.r
        // Amplification R over the numerical support.
        let zmax = best.z.max() ?? 0
        var R = 0.0
        for j in 0..<n where best.z[j] >= 1e-8 * zmax { R = max(R, b[j] / best.s[j]) }
        var zbFinal = [Double](repeating: 0, count: n)
        for j in 0..<n { zbFinal[j] = best.z[j] * (1 + p * b[j] / best.s[j]) }
        let floorRel = 4 * Double.ulpOfOne * absProductNorm(A, zbFinal) / max(ny, Double.leastNormalMagnitude)
        let failed = rel > max(1e-6, 100 * floorRel)
        if p * Double.ulpOfOne * R > lostDigitsTolerance || failed {
            if failed && p * Double.ulpOfOne * R <= lostDigitsTolerance {
                throw TheoryError.notConverged("L >= 3 dual Newton stopped after \(iterations) iterations with relative "
                    + "residual \(rel); S+ may have no strictly positive point (check the kernel assumption)")
            }
            return try weightedLP(A: A, y: y, depth: L, logX0: logX0, amplificationLog: Foundation.log(R))
        }
        warmStart = best.lambda
        let logx = best.s.map { Foundation.log($0) / Double(2 - L) }
        return GFLimitPrediction(depth: L, z: best.z, x: logx.map { Foundation.exp($0) }, logX: logx,
                                 lambda: best.lambda, iterations: iterations, kktResidual: rel,
                                 lostDigits: false, amplification: R, method: "dual-newton")
    }

    /// Normalized L ≥ 3 weights `w = exp((2−L)(log x̃₀ − min log x̃₀)) ∈ (0, 1]`, proportional
    /// to `x̃₀^{⊙(2−L)}` (MATH.md §4: the bias is to the weighted ℓ1 minimum).
    /// The common factor is `exp((2−L)·min log x̃₀)`, returned as its log.
    public static func normalizedPowerWeights(depth L: Int, logX0: [Double]) -> (weights: [Double], logFactor: Double) {
        let lo = logX0.min() ?? 0
        return (logX0.map { Foundation.exp(Double(2 - L) * ($0 - lo)) }, Double(2 - L) * lo)
    }

    static func weightedLP(A: Matrix, y: [Double], depth L: Int, logX0: [Double], amplificationLog: Double) throws -> GFLimitPrediction {
        let w = normalizedPowerWeights(depth: L, logX0: logX0).weights
        let (_, z) = try L1Minimization.minimum(A: A, y: y, weights: w)
        let ny = norm2(y)
        let res = residualNorm(A, z, y)
        let logx = z.map { $0 > 0 ? Foundation.log($0) / Double(L) : -Double.infinity }
        return GFLimitPrediction(depth: L, z: z, x: z.map { Foundation.pow($0, 1 / Double(L)) }, logX: logx,
                                 lambda: [], iterations: 0, kktResidual: ny > 0 ? res / ny : res,
                                 lostDigits: true, amplification: Foundation.exp(min(amplificationLog, 709)),
                                 method: "weighted-l1-lp")
    }
}
