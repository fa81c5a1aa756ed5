import CGSL

/// Why a structured factorization failed. Solvers treat both as "this step
/// size does not work": they shrink the step (which moves σ) and retry.
public enum LowRankSolveError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The capacitance (or dense) matrix has a zero pivot or non-finite entries.
    case singular(sigma: Double)
    /// More entries of `σ − d` are near zero than the shift fallback takes,
    /// and the dimension is too large for the dense fallback.
    case illConditioned(sigma: Double, count: Int)

    public var description: String {
        switch self {
        case let .singular(s): return "σI − J is singular at σ = \(s)"
        case let .illConditioned(s, c): return "σ − d_i ≈ 0 for \(c) entries at σ = \(s)"
        }
    }
}

/// Solves `(σI − J) x = b` for a diagonal-plus-low-rank `J` (`LowRankJacobian`)
/// by the Woodbury identity. With `Δ = diag(σ − d)` and `σI − J = Δ − U V`:
/// ```
/// (Δ − U V)⁻¹ b = Δ⁻¹b + Δ⁻¹U K⁻¹ V Δ⁻¹ b,     K = I_k − V Δ⁻¹ U  (k × k)
/// ```
/// `K` is built in O(n k² ) (its Gram block `I − ω R diag(c²/Δ) Rᵀ` by a
/// blocked kernel that needs no copy of `R`) and factored by GSL's LU in
/// O(k³); each solve then costs O(n k).
///
/// Ill-conditioned Δ: when `|σ − d_i| < relativeThreshold·(|σ| + |d_i|)`
/// for some `i` (Δ⁻¹ would blow up), those entries are shifted exactly:
/// `Δ'_i = Δ_i + τ_i` with `τ_i = ±(|σ| + |d_i|)`, and the shift is put back
/// as extra rank-one terms `τ_i e_i e_iᵀ` of the low-rank part (the solve
/// stays exact; the rank grows by the number of shifted entries). With more
/// than `maxShifted` such entries it falls back to a dense LU of `σI − J`
/// when `n ≤ denseLimit`, and otherwise throws `illConditioned`. The dense
/// LU is also used when `k ≥ n` (Woodbury would be no cheaper).
///
/// Reusable: `factor` then any number of `solve`s; allocation-free except
/// in the dense fallback (allocated once, on first use).
public final class ShiftedLowRankSolver {
    /// How the last factorization was done.
    public enum Mode: Equatable, Sendable {
        case woodbury
        /// Woodbury with this many shifted diagonal entries.
        case shifted(Int)
        case dense
    }

    public let dimension: Int
    public let maxShifted: Int
    public let denseLimit: Int
    /// Relative size under which `σ − d_i` counts as (nearly) zero.
    public var relativeThreshold = 1e-8
    public private(set) var mode: Mode = .woodbury
    public private(set) var sigma = 0.0

    private let k1: Int, k2: Int, m: Int, offset: Int
    private let kmax: Int
    private var k = 0
    private var jac: LowRankJacobian
    private let delta: UnsafeMutablePointer<Double>    // Δ' (n)
    private let cap: UnsafeMutablePointer<Double>      // K (k × k, ld k)
    private let perm: UnsafeMutablePointer<Int>        // pivots (kmax)
    private let capLower: UnsafeMutablePointer<Double> // L of K's LU by columns (k × k)
    private let badIndex: UnsafeMutablePointer<Int>
    private let badTau: UnsafeMutablePointer<Double>
    private var badCount = 0
    private let scratchM: UnsafeMutablePointer<Double> // m
    private let scratchK: UnsafeMutablePointer<Double> // kmax
    private let scratchK1: UnsafeMutablePointer<Double> // k1
    private let scratchSolve: UnsafeMutablePointer<Double> // kmax
    private let gramChunk = 128
    private let gramScratch: UnsafeMutablePointer<Double> // k1 × gramChunk
    private var denseW: UnsafeMutablePointer<Double>?
    private var densePerm: UnsafeMutablePointer<Int>?
    /// Check every Woodbury solve by its residual (see `solve`); off by default.
    public var checksResidual = false
    /// A checked solve is kept when `‖b − (σI − J)x‖∞` is at most this times the largest
    /// magnitude among `b` and the terms of `(σI − J)x`.
    public var residualTolerance = 1e-11
    /// Refinement steps a checked solve may take before the dense fallback.
    public var maxRefinements = 2
    /// Refinement steps taken, and factorizations replaced by the dense LU, so far.
    public private(set) var refinements = 0, denseReplacements = 0
    private let rightSide: UnsafeMutablePointer<Double>  // b (n), kept for the residual
    private let residual: UnsafeMutablePointer<Double>   // b − (σI − J) x (n)
    private let columnScratch: UnsafeMutablePointer<Double>  // U z (n)
    private let best: UnsafeMutablePointer<Double>           // best refined iterate (n)

    /// Workspace for Jacobians of `jacobian`'s shape.
    public init(shape jacobian: LowRankJacobian, maxShifted: Int = 32, denseLimit: Int = 1000) {
        dimension = jacobian.dimension
        self.maxShifted = max(0, maxShifted)
        self.denseLimit = denseLimit
        jac = jacobian
        k1 = jacobian.gramRank
        k2 = jacobian.explicitRank
        m = jacobian.gramMatrix?.cols ?? 0
        offset = jacobian.gramOffset
        kmax = k1 + k2 + self.maxShifted
        delta = .allocate(capacity: dimension)
        cap = .allocate(capacity: max(1, kmax * kmax))
        perm = .allocate(capacity: max(1, kmax))
        capLower = .allocate(capacity: max(1, kmax * kmax))
        badIndex = .allocate(capacity: max(1, self.maxShifted))
        badTau = .allocate(capacity: max(1, self.maxShifted))
        scratchM = .allocate(capacity: max(1, m))
        scratchK = .allocate(capacity: max(1, kmax))
        scratchK1 = .allocate(capacity: max(1, k1))
        scratchSolve = .allocate(capacity: max(1, kmax))
        gramScratch = .allocate(capacity: max(1, k1 * gramChunk))
        rightSide = .allocate(capacity: dimension)
        residual = .allocate(capacity: dimension)
        columnScratch = .allocate(capacity: dimension)
        best = .allocate(capacity: dimension)
    }

    deinit {
        delta.deallocate(); cap.deallocate(); perm.deallocate(); capLower.deallocate()
        badIndex.deallocate(); badTau.deallocate()
        scratchM.deallocate(); scratchK.deallocate(); scratchK1.deallocate(); scratchSolve.deallocate(); gramScratch.deallocate()
        denseW?.deallocate(); densePerm?.deallocate()
        rightSide.deallocate(); residual.deallocate(); columnScratch.deallocate(); best.deallocate()
    }

    /// Factors `σI − J` for later `solve`s. `jacobian` must have the shape
    /// this solver was made for, and must not change until the last solve.
    public func factor(sigma: Double, jacobian: LowRankJacobian) throws {
        precondition(jacobian.dimension == dimension && jacobian.gramRank == k1 && jacobian.explicitRank == k2
                     && jacobian.gramOffset == offset && (jacobian.gramMatrix?.cols ?? 0) == m, "Jacobian shape changed")
        ensureGSLErrorsOff()
        jac = jacobian
        self.sigma = sigma
        let n = dimension
        var bad = 0
        jacobian.diagonal.withUnsafeBufferPointer { d in
            for i in 0..<n {
                let di = sigma - d[i]
                delta[i] = di
                if !(abs(di) >= relativeThreshold * (abs(sigma) + abs(d[i]))) || di == 0 { bad += 1 }
            }
        }
        let rank = k1 + k2
        if (rank >= n || bad > maxShifted) && n <= denseLimit {
            try factorDense()
            return
        }
        if bad > maxShifted { throw LowRankSolveError.illConditioned(sigma: sigma, count: bad) }
        badCount = 0
        if bad > 0 {
            jacobian.diagonal.withUnsafeBufferPointer { d in
                for i in 0..<n {
                    let di = delta[i]
                    let scale = abs(sigma) + abs(d[i])
                    if !(abs(di) >= relativeThreshold * scale) || di == 0 {
                        let tau = (di < 0 ? -1.0 : 1.0) * (scale > 0 ? scale : 1)
                        delta[i] = di + tau
                        badIndex[badCount] = i
                        badTau[badCount] = tau
                        badCount += 1
                    }
                }
            }
        }
        mode = badCount > 0 ? .shifted(badCount) : .woodbury
        k = rank + badCount
        try buildCapacitance()
        if k > 0 && !luFactorInPlace(cap, k, perm: perm, lowerByColumns: capLower) {
            throw LowRankSolveError.singular(sigma: sigma)
        }
    }

    /// Builds K = I − V Δ'⁻¹ U (see the type's documentation for the blocks).
    private func buildCapacitance() throws {
        let n = dimension, kk = k
        let ks = k1 + k2  // first shifted index
        cap.update(repeating: 0, count: kk * kk)
        for a in 0..<kk { cap[a * kk + a] = 1 }
        let omega = jac.gramWeight
        jac.gramColumnScale.withUnsafeBufferPointer { c in
        jac.u.withUnsafeBufferPointer { u in
        jac.v.withUnsafeBufferPointer { v in
            if k1 > 0, let r = jac.gramMatrix {
                r.storage.withUnsafeBufferPointer { rb in
                    let R = rb.baseAddress!
                    // Gram block: −ω R diag(c²/Δ') Rᵀ.
                    for j in 0..<m { scratchM[j] = c[j] * c[j] / delta[offset + j] }
                    weightedGramUpper(k: k1, m: m, r: R, ldr: m, w: scratchM, alpha: -omega,
                                      out: cap, ldo: kk, scratch: gramScratch, chunk: gramChunk)
                    for p in 0..<k1 { for q in 0..<p { cap[p * kk + q] = cap[q * kk + p] } }
                    // (G, E): column k1+b = −R (c ⊙ U₂[off.., b]/Δ').
                    for b in 0..<k2 {
                        for j in 0..<m { scratchM[j] = c[j] * u[(offset + j) * k2 + b] / delta[offset + j] }
                        blasGemv(transpose: false, rows: k1, cols: m, alpha: -1, a: R, x: scratchM, beta: 0, out: scratchK1)
                        for a in 0..<k1 { cap[a * kk + k1 + b] = scratchK1[a] }
                    }
                    // (E, G): row k1+a = −ω R (c ⊙ V₂[a, off..]/Δ').
                    for a in 0..<k2 {
                        for j in 0..<m { scratchM[j] = c[j] * v[a * n + offset + j] / delta[offset + j] }
                        blasGemv(transpose: false, rows: k1, cols: m, alpha: -omega, a: R, x: scratchM, beta: 0,
                                 out: cap + (k1 + a) * kk)
                    }
                    // (G, B) and (B, G).
                    for s in 0..<badCount {
                        let i = badIndex[s], tau = badTau[s]
                        guard i >= offset && i < offset + m else { continue }
                        let j = i - offset
                        for a in 0..<k1 {
                            let f = R[a * m + j] * c[j]
                            cap[a * kk + ks + s] = -f * tau / delta[i]
                            cap[(ks + s) * kk + a] = -omega * f / delta[i]
                        }
                    }
                }
            }
            // (E, E).
            for a in 0..<k2 {
                for b in 0..<k2 {
                    var sum = 0.0
                    for i in 0..<n { sum += v[a * n + i] * u[i * k2 + b] / delta[i] }
                    cap[(k1 + a) * kk + k1 + b] -= sum
                }
            }
            // (E, B), (B, E), (B, B).
            for s in 0..<badCount {
                let i = badIndex[s], tau = badTau[s]
                for a in 0..<k2 {
                    cap[(k1 + a) * kk + ks + s] = -v[a * n + i] * tau / delta[i]
                    cap[(ks + s) * kk + k1 + a] = -u[i * k2 + a] / delta[i]
                }
                cap[(ks + s) * kk + ks + s] -= tau / delta[i]
            }
        }}}
        for i in 0..<(kk * kk) where !cap[i].isFinite { throw LowRankSolveError.singular(sigma: sigma) }
    }

    /// Solves `(σI − J) x = b` in place (`x` holds `b` on entry). With `checksResidual`, a
    /// Woodbury solve is checked by its residual `b − (σI − J)x`, formed from `J`'s factors in
    /// O(n k); above `residualTolerance` it is refined (`x += solve(residual)`) up to
    /// `maxRefinements` times, and if that does not bring it below, the factorization is
    /// replaced by the dense LU (when `n ≤ denseLimit`) and `b` solved again. Woodbury is not
    /// backward stable: where the low-rank term dominates `σI` by many orders and nearly
    /// cancels itself (weight normalization's projected Hessian at depth 5, steps far past the
    /// stiff time scales) its residual reached 1.2 of a random right side, the LU's 2.6e-8.
    public func solve(_ x: UnsafeMutablePointer<Double>) {
        let n = dimension
        if !checksResidual || mode == .dense || k == 0 {
            solveOnce(x)
            return
        }
        rightSide.update(from: x, count: n)
        solveOnce(x)
        var (r, scale) = residualNorm(x)
        if r <= residualTolerance * scale { return }
        best.update(from: x, count: n)
        var bestResidual = r
        for _ in 0..<maxRefinements {
            refinements += 1
            solveOnce(residual)
            for i in 0..<n { x[i] += residual[i] }
            (r, scale) = residualNorm(x)
            if r <= residualTolerance * scale { return }
            if r < bestResidual { bestResidual = r; best.update(from: x, count: n) }
        }
        if n <= denseLimit, (try? factorDense()) != nil {
            denseReplacements += 1
            x.update(from: rightSide, count: n)
            solveOnce(x)
        } else {
            x.update(from: best, count: n)  // no LU: the iterate with the smallest residual
        }
    }

    /// `residual = b − (σI − J)x` (`b` in `rightSide`), its max norm, and the largest magnitude
    /// among `b` and the terms of `(σI − J)x` (diagonal, Gram, explicit), in O(n k).
    private func residualNorm(_ x: UnsafePointer<Double>) -> (Double, Double) {
        let n = dimension
        var scale = 0.0
        jac.diagonal.withUnsafeBufferPointer { d in
            for i in 0..<n { residual[i] = (sigma - d[i]) * x[i]; scale = max(scale, abs(residual[i])) }
        }
        // J x − diag(d) x = U (V x): the rows, then the columns of the low-rank term.
        lowRankRows(x)
        lowRankColumns()
        let omega = jac.gramWeight
        jac.gramColumnScale.withUnsafeBufferPointer { c in
            if k1 > 0 {
                for j in 0..<m {
                    let g = omega * c[j] * scratchM[j]
                    residual[offset + j] -= g
                    scale = max(scale, abs(g))
                }
            }
        }
        if k2 > 0 {
            for i in 0..<n {
                residual[i] -= columnScratch[i]
                scale = max(scale, abs(columnScratch[i]))
            }
        }
        var worst = 0.0
        for i in 0..<n {
            residual[i] = rightSide[i] - residual[i]
            scale = max(scale, abs(rightSide[i]))
            worst = max(worst, abs(residual[i]))
        }
        return (worst.isFinite ? worst : .infinity, scale)
    }

    /// One Woodbury (or dense LU) solve of `(σI − J) x = b` in place.
    private func solveOnce(_ x: UnsafeMutablePointer<Double>) {
        let n = dimension
        if mode == .dense {
            var view = gsl_matrix_view_array(denseW!, n, n)
            var p = gsl_permutation(size: n, data: densePerm!)
            var xv = gsl_vector_view_array(x, n)
            gsl_linalg_LU_svx(&view.matrix, &p, &xv.vector)
            return
        }
        for i in 0..<n { x[i] /= delta[i] }
        if k == 0 { return }
        let kk = k, ks = k1 + k2
        // r = V t.
        lowRankRows(x)
        for s in 0..<badCount { scratchK[ks + s] = x[badIndex[s]] }
        // z = K⁻¹ r.
        luSolveInPlace(cap, kk, perm, scratchK, scratch: scratchSolve, lowerByColumns: capLower)
        // x += Δ'⁻¹ U z.
        lowRankColumns()
        let omega = jac.gramWeight
        if k1 > 0 {
            jac.gramColumnScale.withUnsafeBufferPointer { c in
                for j in 0..<m { x[offset + j] += omega * c[j] * scratchM[j] / delta[offset + j] }
            }
        }
        if k2 > 0 { for i in 0..<n { x[i] += columnScratch[i] / delta[i] } }
        for s in 0..<badCount {
            let i = badIndex[s]
            x[i] += badTau[s] * scratchK[ks + s] / delta[i]
        }
    }

    /// `scratchK[0..<k1] = R (c ⊙ x[offset...])` and `scratchK[k1..<k1+k2] = V x`: the rows of
    /// the low-rank term (the Gram factor `F` and the explicit `V`) applied to `x`.
    private func lowRankRows(_ x: UnsafePointer<Double>) {
        let n = dimension
        jac.gramColumnScale.withUnsafeBufferPointer { c in
            if k1 > 0, let r = jac.gramMatrix {
                for j in 0..<m { scratchM[j] = c[j] * x[offset + j] }
                r.storage.withUnsafeBufferPointer { rb in
                    blasGemv(transpose: false, rows: k1, cols: m, alpha: 1, a: rb.baseAddress!, x: scratchM, beta: 0, out: scratchK)
                }
            }
        }
        jac.v.withUnsafeBufferPointer { v in
            for a in 0..<k2 {
                var s = 0.0
                let row = v.baseAddress! + a * n
                for i in 0..<n { s += row[i] * x[i] }
                scratchK[k1 + a] = s
            }
        }
    }

    /// The columns back: `scratchM = Rᵀ scratchK[0..<k1]` (k1 > 0) and
    /// `columnScratch = U scratchK[k1..<k1+k2]` (k2 > 0).
    private func lowRankColumns() {
        let n = dimension
        if k1 > 0, let r = jac.gramMatrix {
            r.storage.withUnsafeBufferPointer { rb in
                blasGemv(transpose: true, rows: k1, cols: m, alpha: 1, a: rb.baseAddress!, x: scratchK, beta: 0, out: scratchM)
            }
        }
        if k2 > 0 {
            jac.u.withUnsafeBufferPointer { u in
                for i in 0..<n {
                    var s = 0.0
                    let row = u.baseAddress! + i * k2
                    for b in 0..<k2 { s += row[b] * scratchK[k1 + b] }
                    columnScratch[i] = s
                }
            }
        }
    }

    /// Dense fallback: forms `σI − J` (O(n² k)) and factors it by LU.
    private func factorDense() throws {
        let n = dimension
        if denseW == nil {
            denseW = .allocate(capacity: n * n)
            densePerm = .allocate(capacity: n)
        }
        let w = denseW!
        let dense = jac.dense()
        dense.storage.withUnsafeBufferPointer { j in
            for i in 0..<(n * n) { w[i] = -j[i] }
        }
        for i in 0..<n { w[i * n + i] += sigma }
        for i in 0..<(n * n) where !w[i].isFinite { throw LowRankSolveError.singular(sigma: sigma) }
        // Solved by GSL's `gsl_linalg_LU_svx` (see `solve`), so no copy of L by columns.
        guard luFactorInPlace(w, n, perm: densePerm!, lowerByColumns: nil) else { throw LowRankSolveError.singular(sigma: sigma) }
        // Only a factored LU switches the solves over (a failed one left the Woodbury factors,
        // which a checked solve then keeps using).
        mode = .dense
    }
}

@inline(__always)
private func load2(_ p: UnsafePointer<Double>) -> SIMD2<Double> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD2<Double>.self)
}

/// `out[p, q] += α Σ_{j<m} R[p, j] w_j R[q, j]` for `p ≤ q < k` (the upper
/// triangle of `α R diag(w) Rᵀ`), `R` row-major with leading dimension
/// `ldr`. Entries just below the diagonal may be touched too: mirror the
/// upper triangle afterwards. Works in column chunks of `chunk` through
/// `scratch` (`k × chunk`): with OpenBLAS linked, one `dgemm` per chunk; with
/// GSL's reference CBLAS, a 2×4 register-blocked SIMD kernel (about ten times
/// the speed of that CBLAS, whose `dsyrk`/`dgemm` ran at 0.5 GFlop/s here).
/// No copy of `R`. `useBLAS` picks the path (tests run both).
public func weightedGramUpper(k: Int, m: Int, r: UnsafePointer<Double>, ldr: Int, w: UnsafePointer<Double>,
                              alpha: Double, out: UnsafeMutablePointer<Double>, ldo: Int,
                              scratch: UnsafeMutablePointer<Double>, chunk: Int,
                              useBLAS: Bool = BLAS.isOptimized) {
    if k == 0 || m == 0 { return }
    var j0 = 0
    while j0 < m {
        let len = min(chunk, m - j0)
        // S = α R[:, j0..] diag(w).
        for p in 0..<k {
            let src = r + p * ldr + j0
            let dst = scratch + p * chunk
            for t in 0..<len { dst[t] = alpha * src[t] * w[j0 + t] }
        }
        if useBLAS {
            // OpenBLAS: out += S R[:, j0..]ᵀ by dgemm (the full block: twice the flops
            // of the triangle at several times the speed; N = 2000, M = 500 bdf run
            // 10.3 s → 6.1 s, Benchmarks/HISTORY.md).
            blasGemm(transposeA: false, transposeB: true, m: k, n: k, k: len, alpha: 1, a: scratch, lda: chunk,
                     b: r + j0, ldb: ldr, beta: 1, c: out, ldc: ldo)
            j0 += len
            continue
        }
        let even = len & ~1
        var p = 0
        while p + 1 < k {
            let s0 = UnsafePointer(scratch + p * chunk), s1 = UnsafePointer(scratch + (p + 1) * chunk)
            var q = p & ~3
            while q + 3 < k {
                let r0 = r + q * ldr + j0, r1 = r0 + ldr, r2 = r1 + ldr, r3 = r2 + ldr
                var a00 = SIMD2<Double>(), a01 = SIMD2<Double>(), a02 = SIMD2<Double>(), a03 = SIMD2<Double>()
                var a10 = SIMD2<Double>(), a11 = SIMD2<Double>(), a12 = SIMD2<Double>(), a13 = SIMD2<Double>()
                var t = 0
                while t < even {
                    let x0 = load2(s0 + t), x1 = load2(s1 + t)
                    let y0 = load2(r0 + t), y1 = load2(r1 + t), y2 = load2(r2 + t), y3 = load2(r3 + t)
                    a00 += x0 * y0; a01 += x0 * y1; a02 += x0 * y2; a03 += x0 * y3
                    a10 += x1 * y0; a11 += x1 * y1; a12 += x1 * y2; a13 += x1 * y3
                    t += 2
                }
                var e00 = a00.sum(), e01 = a01.sum(), e02 = a02.sum(), e03 = a03.sum()
                var e10 = a10.sum(), e11 = a11.sum(), e12 = a12.sum(), e13 = a13.sum()
                if even < len {
                    let x0 = s0[even], x1 = s1[even]
                    e00 += x0 * r0[even]; e01 += x0 * r1[even]; e02 += x0 * r2[even]; e03 += x0 * r3[even]
                    e10 += x1 * r0[even]; e11 += x1 * r1[even]; e12 += x1 * r2[even]; e13 += x1 * r3[even]
                }
                let o0 = out + p * ldo + q, o1 = o0 + ldo
                o0[0] += e00; o0[1] += e01; o0[2] += e02; o0[3] += e03
                o1[0] += e10; o1[1] += e11; o1[2] += e12; o1[3] += e13
                q += 4
            }
            while q < k {  // tail columns
                let rq = r + q * ldr + j0
                var e0 = 0.0, e1 = 0.0
                for t in 0..<len { e0 += s0[t] * rq[t]; e1 += s1[t] * rq[t] }
                out[p * ldo + q] += e0
                out[(p + 1) * ldo + q] += e1
                q += 1
            }
            p += 2
        }
        if p < k {  // last row when k is odd
            let s0 = scratch + p * chunk
            for q in p..<k {
                let rq = r + q * ldr + j0
                var e = 0.0
                for t in 0..<len { e += s0[t] * rq[t] }
                out[p * ldo + q] += e
            }
        }
        j0 += len
    }
}
