import Foundation
import GSLKit

/// One point of the dual Newton iteration (MATH.md §4 "Predictor algorithm") in preallocated
/// storage: λ (M), the primal variable `v` (N: `log z` for L = 2, `s = x̃₀^{2−L} + Aᵀλ` for
/// L ≥ 3), `z` (N), the gradient `g = A z − y` (M), the dual objective `f` and `r = ‖g‖₂`.
final class DualPoint {
    let m: Int, n: Int
    let lambda: UnsafeMutablePointer<Double>
    let v: UnsafeMutablePointer<Double>
    let z: UnsafeMutablePointer<Double>
    let g: UnsafeMutablePointer<Double>
    var f = 0.0
    var r = 0.0

    init(m: Int, n: Int) {
        self.m = m; self.n = n
        lambda = .allocate(capacity: max(m, 1)); lambda.initialize(repeating: 0, count: max(m, 1))
        g = .allocate(capacity: max(m, 1)); g.initialize(repeating: 0, count: max(m, 1))
        v = .allocate(capacity: max(n, 1)); v.initialize(repeating: 0, count: max(n, 1))
        z = .allocate(capacity: max(n, 1)); z.initialize(repeating: 0, count: max(n, 1))
    }

    deinit { lambda.deallocate(); g.deallocate(); v.deallocate(); z.deallocate() }

    func copy(from o: DualPoint) {
        lambda.update(from: o.lambda, count: m)
        g.update(from: o.g, count: m)
        v.update(from: o.v, count: n)
        z.update(from: o.z, count: n)
        f = o.f; r = o.r
    }

    var lambdaArray: [Double] { Array(UnsafeBufferPointer(start: lambda, count: m)) }
    var vArray: [Double] { Array(UnsafeBufferPointer(start: v, count: n)) }
    var zArray: [Double] { Array(UnsafeBufferPointer(start: z, count: n)) }
}

/// Buffers and kernels shared by the dual Newton solvers of `LimitPredictor` (L = 2 and L ≥ 3)
/// for one `(A, y)`: no allocation inside the Newton loop. Not thread-safe: one workspace per
/// caller (the WN root search keeps one for its whole scan).
final class DualWorkspace {
    let A: Matrix
    let y: [Double]
    let m: Int, n: Int
    let ny: Double
    let frobeniusA: Double
    /// `|A|` entry-wise (row-major M×N), for the rounding floor `‖ |A| w ‖₂` by one dgemv.
    let absA: UnsafeMutablePointer<Double>
    /// Three iterates: current, line-search candidate, best so far.
    var cur: DualPoint, cand: DualPoint, best: DualPoint
    /// `H` (M×M; written only when `solveSPD` needs a retry) and the Cholesky factor `L`
    /// (lower triangle, row-major; `weightedGram` writes `H`'s lower triangle there and it is factored
    /// in place).
    let h: UnsafeMutablePointer<Double>
    let chol: UnsafeMutablePointer<Double>
    /// M-vectors: Newton direction, right-hand side, scratch.
    let d: UnsafeMutablePointer<Double>
    let rhs: UnsafeMutablePointer<Double>
    let tm: UnsafeMutablePointer<Double>
    /// A second M-vector for a correction to the Newton direction.
    let d2: UnsafeMutablePointer<Double>
    /// N-vectors: `Aᵀd`, weights, the scaled Hessian weights.
    let u: UnsafeMutablePointer<Double>
    let w: UnsafeMutablePointer<Double>
    let zhat: UnsafeMutablePointer<Double>
    /// `B = A diag(√x)` (row-major M×N), the operand of dsyrk, and `√x` (N).
    let b: UnsafeMutablePointer<Double>
    let sqrtX: UnsafeMutablePointer<Double>
    /// `max_i |A_ij|` (N), and the row sizes and order of `solveWeighted`'s QR (N).
    let columnMaxAbs: UnsafeMutablePointer<Double>
    let rowSize: UnsafeMutablePointer<Double>
    let rowOrder: UnsafeMutablePointer<Int>

    /// `chol` holds the Cholesky factor of the last `solveSPD` (with its ridge, if any).
    private(set) var cholHoldsFactor = false
    /// `h` holds the `H` of the last `weightedGram` (formed only for `solveSPD`'s retries).
    private var hHoldsGram = false
    /// Set by the L = 2 solver when `chol` factors `Ĥ = A diag(e^{log z − factorLogScale}) Aᵀ`
    /// at an iterate whose `log z` differs from the returned point's by at most 1e-4
    /// entry-wise, so `entropicSlope` can reuse it (relative error ~1e-4 in λ', harmless for a
    /// predictor and for Newton on g) instead of forming and factoring `H` again.
    var factorNearBest = false
    var factorLogScale = 0.0
    /// The last L = 2 solve stopped early at its caller's `signSettled` (not at the tolerance).
    var stoppedEarly = false
    /// Whether L ≥ 3 solves end with the a-posteriori step of their error estimate
    /// (`LimitPredictor.power`; off during a WN root search, which reads only ‖x‖).
    var estimatesErrors = true
    /// Whether sign-only L = 2 solves first try chord steps with the factor left by the last
    /// solve (`LimitPredictor.chordSettles`; off only to compare against in tests), and how
    /// many solves that settled.
    var chordShortcut = true
    private(set) var chordStops = 0
    func countChordStop() { chordStops += 1 }
    /// The last `LimitPredictor.minimaxStart` LP solved for this problem: its `c`, floor,
    /// answer λ and `t` (see `LimitPredictor.cachedMinimaxStart`), and how many LPs were solved.
    var minimaxCache: (c: [Double], floor: Double, lambda: [Double], t: Double)?
    var minimaxSolves = 0
    /// The last weighted-ℓ1 LP of `LimitPredictor.weightedLP`: its normalized weights,
    /// minimizer and off-support ratios (`LimitPredictor.offSupportRatios`, which do not move
    /// with log ρ either), and how many such LPs were solved.
    var weightedL1Cache: (weights: [Double], z: [Double], logRatios: [Double]?)?
    var weightedL1Solves = 0

    init(A: Matrix, y: [Double]) {
        self.A = A; self.y = y
        m = A.rows; n = A.cols
        ny = norm2(y)
        let mm = max(m, 1), nn = max(n, 1)
        let abs = UnsafeMutablePointer<Double>.allocate(capacity: max(m * n, 1))
        A.storage.withUnsafeBufferPointer { s in for k in 0..<s.count { abs[k] = Swift.abs(s[k]) } }
        absA = abs
        frobeniusA = m * n > 0 ? blasNorm(m * n, abs) : 0
        cur = DualPoint(m: m, n: n); cand = DualPoint(m: m, n: n); best = DualPoint(m: m, n: n)
        // The matrix buffers are always written before they are read (no need to zero them).
        h = .allocate(capacity: mm * mm)
        chol = .allocate(capacity: mm * mm)
        d = .allocate(capacity: mm); d.initialize(repeating: 0, count: mm)
        rhs = .allocate(capacity: mm); rhs.initialize(repeating: 0, count: mm)
        tm = .allocate(capacity: mm); tm.initialize(repeating: 0, count: mm)
        u = .allocate(capacity: nn); u.initialize(repeating: 0, count: nn)
        w = .allocate(capacity: nn); w.initialize(repeating: 0, count: nn)
        zhat = .allocate(capacity: nn); zhat.initialize(repeating: 0, count: nn)
        d2 = .allocate(capacity: mm); d2.initialize(repeating: 0, count: mm)
        b = .allocate(capacity: max(m * n, 1))
        sqrtX = .allocate(capacity: nn)
        columnMaxAbs = .allocate(capacity: nn); columnMaxAbs.initialize(repeating: 0, count: nn)
        for i in 0..<m { for j in 0..<n { columnMaxAbs[j] = max(columnMaxAbs[j], abs[i * n + j]) } }
        rowOrder = .allocate(capacity: nn); rowOrder.initialize(repeating: 0, count: nn)
        rowSize = .allocate(capacity: nn); rowSize.initialize(repeating: 0, count: nn)
    }

    deinit {
        absA.deallocate(); h.deallocate(); chol.deallocate(); d.deallocate(); rhs.deallocate()
        tm.deallocate(); u.deallocate(); w.deallocate(); zhat.deallocate(); d2.deallocate(); b.deallocate(); sqrtX.deallocate()
        columnMaxAbs.deallocate(); rowOrder.deallocate(); rowSize.deallocate()
    }

    func swapCurrentAndCandidate() { swap(&cur, &cand) }

    /// The Cholesky factor of the last solve and its `factorLogScale` (nil when `chol` holds
    /// none), to be put back by `restoreFactor` along with the warm start it belongs to.
    func savedFactor() -> (factor: [Double], logScale: Double)? {
        guard cholHoldsFactor else { return nil }
        return (Array(UnsafeBufferPointer(start: chol, count: m * m)), factorLogScale)
    }

    func restoreFactor(_ saved: (factor: [Double], logScale: Double)?) {
        guard let saved, saved.factor.count == m * m else { cholHoldsFactor = false; return }
        saved.factor.withUnsafeBufferPointer { chol.update(from: $0.baseAddress!, count: m * m) }
        factorLogScale = saved.logScale
        cholHoldsFactor = true
        hHoldsGram = false
    }

    // MARK: BLAS-level pieces

    /// `out = Aᵀ x` (N).
    @inline(__always)
    func multiplyTransposed(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        if m == 0 || n == 0 { out.update(repeating: 0, count: n); return }
        A.gemv(transpose: true, x: x, into: out)
    }

    /// `out = A x` (M).
    @inline(__always)
    func multiply(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        if m == 0 || n == 0 { out.update(repeating: 0, count: m); return }
        A.gemv(x: x, into: out)
    }

    /// `‖ |A| x ‖₂` for `x ≥ 0` (N): the size of the rounding floor of `A z` (one dgemv on |A|).
    func absProductNorm(_ x: UnsafePointer<Double>) -> Double {
        if m == 0 || n == 0 { return 0 }
        blasGemv(transpose: false, rows: m, cols: n, alpha: 1, a: absA, x: x, beta: 0, out: tm)
        return blasNorm(m, tm)
    }

    /// `out = |A|ᵀ x` (N) for `x ≥ 0` (M): the size of the rounding of `Aᵀλ` for `x = |λ|`.
    func absTransposedProduct(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>) {
        if m == 0 || n == 0 { out.update(repeating: 0, count: n); return }
        blasGemv(transpose: true, rows: m, cols: n, alpha: 1, a: absA, x: x, beta: 0, out: out)
    }

    /// `max(1e-15‖y‖, 4ε‖ |A| x ‖₂)` (x ≥ 0, N): the level `withinRoundingFloor` tests.
    func roundingFloor(_ x: UnsafePointer<Double>) -> Double {
        max(1e-15 * ny, 4 * Double.ulpOfOne * absProductNorm(x))
    }

    /// Whether `r ≤ max(1e-15‖y‖, 4ε‖ |A| x ‖₂)` (x ≥ 0, N): the stopping test of the dual
    /// Newton solvers. The dgemv on |A| runs only when `r` is below the cheap upper bound
    /// `4ε‖A‖_F‖x‖₂` of the second term.
    func withinRoundingFloor(_ r: Double, _ x: UnsafePointer<Double>) -> Bool {
        let floor = 1e-15 * ny
        if r <= floor { return true }
        var x2 = 0.0
        for j in 0..<n { x2 += x[j] * x[j] }
        if r > roundingFloorBound(x2.squareRoot()) { return false }
        return r <= roundingFloor(x)
    }

    /// `4ε‖A‖_F‖x‖₂ (1 + 1e-12)` for `‖x‖₂ = xNorm`: an upper bound on `roundingFloor`'s second
    /// term without the mat-vec (`‖ |A| x ‖₂ ≤ ‖A‖_F‖x‖₂`), with room for its own rounding.
    func roundingFloorBound(_ xNorm: Double) -> Double {
        4 * Double.ulpOfOne * frobeniusA * xNorm * (1 + 1e-12)
    }

    /// The lower triangle of `chol = A diag(x) Aᵀ` (M×M; all the Cholesky factorization reads)
    /// for `x ≥ 0`: `B = A diag(√x)`, then `B Bᵀ` by dsyrk (OpenBLAS's kernels beat a
    /// portable SIMD loop at these sizes).
    func weightedGram(_ x: UnsafePointer<Double>) {
        hHoldsGram = false
        cholHoldsFactor = false
        if m == 0 { return }
        if n == 0 { chol.update(repeating: 0, count: m * m); return }
        for j in 0..<n { sqrtX[j] = x[j].squareRoot() }
        A.storage.withUnsafeBufferPointer { a in
            let src = a.baseAddress!
            for i in 0..<m {
                let row = src + i * n, dst = b + i * n
                for j in 0..<n { dst[j] = row[j] * sqrtX[j] }
            }
        }
        blasGramLower(rows: m, cols: n, alpha: 1, a: b, out: chol)
    }

    /// `d = H⁻¹ rhs` for `H = A diag(x) Aᵀ` (x ≥ 0) through the QR of `diag(√x) Aᵀ`
    /// (`qrSolve`), leaving the factor in `chol`; `weightedGram` and `solveSPD` when N < M or
    /// R is singular. The L ≥ 3 Newton's rescue (`LimitPredictor.power`): its weights
    /// `p s^{−p−1}` can spread over 1e18 (signed L = 4 from a start spread over decades:
    /// pairs with s ≈ 1e-3 next to entries with s ≈ 1e4), and the Gram then loses, below the
    /// rounding of its largest terms, the directions only the small weights fix, so that
    /// Cholesky fails and `solveSPD`'s ridge damps the steps along them (3e-8 after 200
    /// iterations where QR reaches the rounding floor, 1e-10, in 42). Not the default: where
    /// those directions lead towards a maximizer far out (unsigned L = 3 from a small start,
    /// g∞ well below the WN root) the ridge's damping is what keeps the steps in range, and
    /// exact steps took 500 iterations instead of 40.
    func solveWeighted(_ x: UnsafePointer<Double>) -> Bool {
        if m == 0 { return true }
        if n >= m && qrSolve(x) { return true }
        weightedGram(x)
        return solveSPD()
    }

    /// `d = H⁻¹ rhs` through the QR of `B = diag(√x) Aᵀ` (`qrGramFactor`; rows sorted by
    /// decreasing size, the stable order for a row-scaled least-squares matrix), the factor
    /// left in `chol`. False when R is singular or the solve is not finite.
    private func qrSolve(_ x: UnsafePointer<Double>) -> Bool {
        hHoldsGram = false
        cholHoldsFactor = false
        // B = diag(√x) Aᵀ, column-major N×M: column i is row i of A scaled, its entries in
        // the order of decreasing row size `√x_j max_i |A_ij|`.
        for j in 0..<n {
            sqrtX[j] = x[j].squareRoot()
            rowSize[j] = columnMaxAbs[j] * sqrtX[j]
            rowOrder[j] = j
        }
        let size = UnsafePointer(rowSize)
        var orderBuffer = UnsafeMutableBufferPointer(start: rowOrder, count: n)
        orderBuffer.sort {
            size[$0] > size[$1] || (size[$0] == size[$1] && $0 < $1)
        }
        A.storage.withUnsafeBufferPointer { a in
            for i in 0..<m {
                let row = a.baseAddress! + i * n, dst = b + i * n
                for r in 0..<n { let j = rowOrder[r]; dst[r] = row[j] * sqrtX[j] }
            }
        }
        if qrGramFactor(columnMajor: b, rows: n, cols: m, tau: tm, into: chol) {
            d.update(from: rhs, count: m)
            choleskySolveInPlace(chol, m, d)
            if (0..<m).allSatisfy({ d[$0].isFinite }) {
                cholHoldsFactor = true
                return true
            }
        }
        return false
    }

    /// `h = H` again (full symmetric, for the SVD of the last retry) from `B` (left by
    /// `weightedGram`), for the retries of `solveSPD`.
    private func gramIntoH() {
        if hHoldsGram { return }
        blasGramLower(rows: m, cols: n, alpha: 1, a: b, out: h)
        for i in 0..<m { for j in 0..<i { h[j * m + i] = h[i * m + j] } }
        hHoldsGram = true
    }

    // MARK: Sensitivity to the magnification

    /// L = 2: `λ' = dλ/dℓ` (ℓ = log ρ) of the dual solution at `p`, which is taken to satisfy
    /// `A z = y`. With `log z = 2 log x₀ − 2ℓ + Aᵀλ`, differentiating `A z(λ(ℓ), ℓ) = y` gives
    /// `A diag(z)(Aᵀλ' − 2) = 0`, i.e. `H λ' = 2 A z = 2y`, `H = A diag(z) Aᵀ` (formed as
    /// `e^{s} Ĥ` with `Ĥ = A diag(e^{log z − s}) Aᵀ`, `s = max log z`, like the Newton Hessian).
    /// Then `d log z/dℓ = Aᵀλ' − 2`. False when the solve fails or is not finite.
    func entropicSlope(_ p: DualPoint, into out: UnsafeMutablePointer<Double>) -> Bool {
        if m == 0 { return true }
        var s = -Double.infinity
        if factorNearBest && cholHoldsFactor {
            s = factorLogScale
            y.withUnsafeBufferPointer { yb in for i in 0..<m { d[i] = yb[i] } }
            choleskySolveInPlace(chol, m, d)
        } else {
            for j in 0..<n { s = max(s, p.v[j]) }
            if n == 0 || !s.isFinite { return false }
            for j in 0..<n { w[j] = Foundation.exp(p.v[j] - s) }
            weightedGram(w)
            y.withUnsafeBufferPointer { yb in for i in 0..<m { rhs[i] = yb[i] } }
            guard solveSPD() else { return false }
            factorLogScale = s
        }
        let scale = 2 * Foundation.exp(-s)
        for i in 0..<m {
            out[i] = d[i] * scale
            if !out[i].isFinite { return false }
        }
        return true
    }

    /// L = 2: how far z moves, relative, under moves `δa` of `a = 2 log x̃₀` with `Az = y`
    /// held: `δz = z ⊙ (δa − Aᵀ H⁻¹ A(z ⊙ δa))`, `H = A diag(z) Aᵀ` (first order; `H⁻¹A(z ⊙ δa)`
    /// as `Ĥ⁻¹A(ẑ ⊙ δa)` with `ẑ = e^{log z − s}`, `s = max log z`, so no scale has to be
    /// representable). `logZ` is the solution's `log z`; returns `‖δz‖₂/‖z‖₂` per move, nil
    /// when the factorization fails or a value is not finite. A move along `Aᵀμ` leaves z as it
    /// is, and at a vertex of the ℓ1 LP (M entries of z carry it) every move does, to first order.
    func entropicRelativeMoves(logZ: [Double], moves: [[Double]]) -> [Double]? {
        guard logZ.count == n, n > 0, let s = logZ.max(), s.isFinite else { return nil }
        for j in 0..<n { zhat[j] = Foundation.exp(logZ[j] - s) }
        var zz = 0.0
        for j in 0..<n { zz += zhat[j] * zhat[j] }
        if m == 0 {
            guard moves.allSatisfy({ $0.count == n }) else { return nil }
            return moves.map { mv in (0..<n).reduce(0.0) { $0 + zhat[$1] * mv[$1] * zhat[$1] * mv[$1] }.squareRoot() / zz.squareRoot() }
        }
        weightedGram(zhat)
        rhs.update(repeating: 0, count: m)
        guard solveSPD(), cholHoldsFactor else { return nil }
        var out: [Double] = []
        for mv in moves {
            guard mv.count == n else { return nil }
            for j in 0..<n { w[j] = zhat[j] * mv[j] }
            multiply(w, into: d2)
            guard solveWithFactor(d2) else { return nil }
            multiplyTransposed(d2, into: u)
            var dz = 0.0
            for j in 0..<n { let e = zhat[j] * (mv[j] - u[j]); dz += e * e }
            let r = (dz / zz).squareRoot()
            guard r.isFinite else { return nil }
            out.append(r)
        }
        return out
    }

    // MARK: Linear solves

    /// Solves `H x = r` (`H` from the last `weightedGram`, `rhs` → `d`) for symmetric positive
    /// semi-definite `H`: Cholesky, then Cholesky with a growing ridge `τ·tr(H)/M`
    /// (τ = 1e-14, 1e-12, …, 1e-2), then the SVD pseudo-inverse. False when all fail.
    /// The first attempt factors `H` in place (no copy); only when it fails is `H` formed again
    /// (into `h`, from the scaled `bt`) for the retries. `rhs` is left intact.
    func solveSPD() -> Bool {
        cholHoldsFactor = false
        if m == 0 { return true }
        var tr = 0.0
        for i in 0..<m { tr += chol[i * m + i] }
        if factorAndSolve() { return true }
        gramIntoH()
        let base = max(tr / Double(m), Double.leastNormalMagnitude)
        var tau = 1e-14
        while tau <= 1e-2 {
            chol.update(from: h, count: m * m)
            for i in 0..<m { chol[i * m + i] += tau * base }
            if factorAndSolve() { return true }
            tau *= 100
        }
        let hm = Matrix(rows: m, cols: m, storage: Array(UnsafeBufferPointer(start: h, count: m * m)))!
        if let svd = try? SVD(hm) {
            let x = svd.pseudoInverseApply(Array(UnsafeBufferPointer(start: rhs, count: m)))
            if x.allSatisfy(\.isFinite) {
                for i in 0..<m { d[i] = x[i] }
                return true
            }
        }
        return false
    }

    /// Solves `(H + shift·I) x = b` in place with the factor of the last successful `solveSPD`
    /// (when it was a Cholesky factorization; false otherwise).
    func solveWithFactor(_ x: UnsafeMutablePointer<Double>) -> Bool {
        guard cholHoldsFactor else { return false }
        choleskySolveInPlace(chol, m, x)
        for i in 0..<m where !x[i].isFinite { return false }
        return true
    }

    /// Factors the matrix in `chol` in place (Cholesky) and solves `d = chol⁻¹ rhs`; false when
    /// it is not (numerically) positive definite or the solution is not finite.
    private func factorAndSolve() -> Bool {
        guard choleskyFactorInPlace(chol, m) else { return false }
        d.update(from: rhs, count: m)
        choleskySolveInPlace(chol, m, d)
        for i in 0..<m where !d[i].isFinite { return false }
        cholHoldsFactor = true
        return true
    }
}
