import CGSL

/// Dense linear solves on GSL's `linalg` module.
public enum LinearSolve {
    /// Solves `A x = b` for square `A` by LU with partial pivoting.
    /// - Throws: `GSLError` (`GSL_ESING`) when `A` is singular to working
    ///   precision (a pivot within rounding of zero), `GSL_EDOM` for
    ///   non-finite entries.
    public static func lu(_ a: Matrix, _ b: [Double]) throws -> [Double] {
        ensureGSLErrorsOff()
        let n = a.rows
        precondition(a.cols == n && b.count == n)
        if n == 0 { return [] }
        let f = try LUFactorization(a)
        return try f.solve(b)
    }

    /// Solves `A x = b` for symmetric positive definite `A` by Cholesky.
    /// - Throws: `GSLError` (`GSL_EDOM`) when `A` is not positive definite.
    public static func cholesky(_ a: Matrix, _ b: [Double]) throws -> [Double] {
        let f = try CholeskyFactorization(a)
        return try f.solve(b)
    }
}

/// An owned LU factorization `P A = L U` (GSL `gsl_linalg_LU_decomp`),
/// reusable for many right-hand sides.
public final class LUFactorization {
    private let m: UnsafeMutablePointer<gsl_matrix>
    private let perm: UnsafeMutablePointer<gsl_permutation>
    public let dimension: Int

    public init(_ a: Matrix) throws {
        ensureGSLErrorsOff()
        precondition(a.rows == a.cols)
        dimension = a.rows
        guard let gm = gsl_matrix_alloc(max(dimension, 1), max(dimension, 1)),
              let p = gsl_permutation_alloc(max(dimension, 1)) else {
            throw GSLError(code: cgsl_failure(), context: "LU allocation")
        }
        m = gm
        perm = p
        try refactor(a)
    }

    /// Factors a new matrix of the same size into the same workspace.
    public func refactor(_ a: Matrix) throws {
        precondition(a.rows == dimension && a.cols == dimension)
        a.storage.withUnsafeBufferPointer { src in
            for i in 0..<dimension { for j in 0..<dimension { gsl_matrix_set(m, i, j, src[i * dimension + j]) } }
        }
        if dimension == 0 { return }
        let n = dimension
        guard a.isFinite else { throw GSLError(code: Int32(GSL_EDOM), context: "LU: matrix has non-finite entries") }
        var signum: Int32 = 0
        try check(gsl_linalg_LU_decomp(m, perm, &signum), "gsl_linalg_LU_decomp")
        // GSL flags only exactly zero pivots, but rounding turns the zero
        // pivots of a singular matrix into ε-sized ones, after which the
        // solve returns garbage of size 1/ε. Pivot i is formed as
        // (PA)_ii − Σ_k L_ik U_ki; it is treated as zero when it is below
        // n·ε times the size of the terms it was formed from (the row of A
        // pivoted there, and the rows L_ik·U_k· subtracted from it), so the
        // test follows the scaling of each row (diag(1, 1e-20) is fine).
        var rowScaleU = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var terms = 0.0
            let src = Int(gsl_permutation_get(perm, i))
            for j in 0..<n { terms = max(terms, abs(a.storage[src * n + j])) }
            for k in 0..<i { terms = max(terms, abs(gsl_matrix_get(m, i, k)) * rowScaleU[k]) }
            var u = 0.0
            for j in i..<n { u = max(u, abs(gsl_matrix_get(m, i, j))) }
            rowScaleU[i] = u
            let pivot = gsl_matrix_get(m, i, i)
            if !(abs(pivot) > Double(n) * Double.ulpOfOne * terms) {
                throw GSLError(code: Int32(GSL_ESING),
                               context: "LU: matrix is singular to working precision (pivot \(i) is \(pivot), from terms of size \(terms))")
            }
        }
    }

    /// Solves `A x = b`.
    public func solve(_ b: [Double]) throws -> [Double] {
        precondition(b.count == dimension)
        var x = b
        try x.withUnsafeMutableBufferPointer { xb in
            var view = gsl_vector_view_array(xb.baseAddress!, dimension)
            try check(gsl_linalg_LU_svx(m, perm, &view.vector), "gsl_linalg_LU_svx")
        }
        return x
    }

    deinit {
        gsl_matrix_free(m)
        gsl_permutation_free(perm)
    }
}

/// An owned Cholesky factorization `A = L Lᵀ` (GSL `gsl_linalg_cholesky_decomp1`).
public final class CholeskyFactorization {
    private let m: UnsafeMutablePointer<gsl_matrix>
    public let dimension: Int

    public init(_ a: Matrix) throws {
        ensureGSLErrorsOff()
        precondition(a.rows == a.cols)
        dimension = a.rows
        guard let gm = gsl_matrix_alloc(max(dimension, 1), max(dimension, 1)) else {
            throw GSLError(code: cgsl_failure(), context: "Cholesky allocation")
        }
        m = gm
        a.storage.withUnsafeBufferPointer { src in
            for i in 0..<dimension { for j in 0..<dimension { gsl_matrix_set(gm, i, j, src[i * dimension + j]) } }
        }
        if dimension > 0 {
            let status = gsl_linalg_cholesky_decomp1(gm)
            // Every stored property is set, so `deinit` runs when this throws
            // and frees `m`: freeing it here too would be a double free.
            if status != 0 {
                throw GSLError(code: status, context: "Cholesky: matrix is not positive definite")
            }
        }
    }

    /// Solves `A x = b`.
    public func solve(_ b: [Double]) throws -> [Double] {
        precondition(b.count == dimension)
        if dimension == 0 { return [] }
        var x = b
        try x.withUnsafeMutableBufferPointer { xb in
            var view = gsl_vector_view_array(xb.baseAddress!, dimension)
            try check(gsl_linalg_cholesky_svx(m, &view.vector), "gsl_linalg_cholesky_svx")
        }
        return x
    }

    /// Solves in place on raw storage (allocation-free hot path).
    public func solveInPlace(_ x: UnsafeMutablePointer<Double>) throws {
        if dimension == 0 { return }
        var view = gsl_vector_view_array(x, dimension)
        try check(gsl_linalg_cholesky_svx(m, &view.vector), "gsl_linalg_cholesky_svx")
    }

    deinit { gsl_matrix_free(m) }
}

/// `out[i] = √in[i]` for `count` entries, the values of `squareRoot()` (IEEE square roots),
/// vectorized: on Linux `squareRoot()` goes through libm's `sqrt` (a scalar root and an errno
/// test per entry), which was half of `DualKernel.logErrorNorm`'s own time at N = 100.
public func squareRoots(_ x: UnsafePointer<Double>, into out: UnsafeMutablePointer<Double>, count: Int) {
    cgsl_sqrt_array(x, out, count)
}

/// In-place Cholesky `A = L Lᵀ` of the symmetric `m × m` row-major matrix at `a` (LAPACK
/// `dpotrf` from OpenBLAS, 5–15% faster than GSL's `gsl_linalg_cholesky_decomp1` at
/// M = 40…2000, which it falls back to with GSL's CBLAS; reads the lower triangle and
/// leaves `L` there), for callers that keep their own storage and solve with
/// `choleskySolveInPlace`. Up to `smallSolveOrder` the diagonal then holds `1/L_ii`, so
/// that the solves multiply instead of dividing on their critical path. False when `A` is
/// not (numerically) positive definite or the factor is not finite.
public func choleskyFactorInPlace(_ a: UnsafeMutablePointer<Double>, _ m: Int) -> Bool {
    ensureGSLErrorsOff()
    if m == 0 { return true }
    guard m <= Int(Int32.max / 2) else { return false }
    if cgsl_cholesky_lower(a, Int32(m)) != 0 { return false }
    for i in 0..<m where !(a[i * m + i] > 0 && a[i * m + i].isFinite) { return false }
    if m <= smallSolveOrder { for i in 0..<m { a[i * m + i] = 1 / a[i * m + i] } }
    return true
}

/// The triangular factor of `BᵀB` for the column-major `rows × cols` matrix `b` (rows ≥
/// cols) by Householder QR (LAPACK's blocked `dgeqrf` from OpenBLAS; GSL's
/// `gsl_linalg_QR_decomp` with GSL's CBLAS; `b` is overwritten): `L = Rᵀ`, so that
/// `L Lᵀ = BᵀB`, written to `out` (cols × cols, row-major lower triangle) in the layout
/// `choleskyFactorInPlace` leaves, for `choleskySolveInPlace`. Unlike forming `BᵀB` and
/// factoring it, this keeps what rows of `B` far smaller than the largest contribute (a
/// weighted least-squares Hessian `Aᵀ diag(w) A` with `w` spread over more than 1e16 loses
/// them below the rounding of the sum); sorting the rows by decreasing size first, as the
/// caller may, is the stable order for such row scalings. `tau` is scratch for `cols`
/// doubles. False when `R` has a zero or non-finite diagonal.
public func qrGramFactor(columnMajor b: UnsafeMutablePointer<Double>, rows: Int, cols: Int,
                         tau: UnsafeMutablePointer<Double>, into out: UnsafeMutablePointer<Double>) -> Bool {
    ensureGSLErrorsOff()
    if cols == 0 { return true }
    guard rows >= cols, rows <= Int(Int32.max) / max(cols, 1) else { return false }
    guard cgsl_qr_colmajor(Int32(rows), Int32(cols), b, tau) == 0 else { return false }
    for i in 0..<cols {
        let column = b + i * rows
        for k in 0...i { out[i * cols + k] = column[k] }
        let d = out[i * cols + i]
        guard d != 0 && d.isFinite else { return false }
    }
    if cols <= smallSolveOrder { for i in 0..<cols { out[i * cols + i] = 1 / out[i * cols + i] } }
    return true
}

/// Order up to which the triangular solves after a factorization run as plain
/// loops here instead of GSL's `…_svx`. GSL solves through CBLAS `dtrsv`, and
/// OpenBLAS 0.3.21's `dtrsv` takes a process-wide lock around its buffer
/// allocator at every call; with runs in parallel and thousands of small
/// solves per run that lock cost a quarter of the throughput
/// (Benchmarks/HISTORY.md: ensemble of 32 WN runs, 2 cores, 1.4× → 2×). Above it a
/// solve is O(n²) work and the lock no longer matters.
public let smallSolveOrder = 256

/// Solves `L Lᵀ x = b` in place (`x` holds `b` on entry) with the factor left at `a` by
/// `choleskyFactorInPlace` (forward and back substitution on the lower triangle, whose
/// diagonal holds `1/L_ii`; GSL `gsl_linalg_cholesky_svx` above `smallSolveOrder`).
public func choleskySolveInPlace(_ a: UnsafeMutablePointer<Double>, _ m: Int, _ x: UnsafeMutablePointer<Double>) {
    if m == 0 { return }
    if m > smallSolveOrder {
        var view = gsl_matrix_view_array(a, m, m)
        var xv = gsl_vector_view_array(x, m)
        _ = gsl_linalg_cholesky_svx(&view.matrix, &xv.vector)
        return
    }
    // L y = b (rows of L are contiguous). Four partial sums: one running sum is a chain of
    // dependent adds the compiler may not reorder. (The solves were 13.5% of a GF dual run at
    // M = 40, 12.2% after: within noise; kept, as it costs nothing.)
    for i in 0..<m {
        let row = a + i * m
        var s0 = x[i], s1 = 0.0, s2 = 0.0, s3 = 0.0
        var j = 0
        while j + 4 <= i {
            s0 -= row[j] * x[j]; s1 -= row[j + 1] * x[j + 1]
            s2 -= row[j + 2] * x[j + 2]; s3 -= row[j + 3] * x[j + 3]
            j += 4
        }
        while j < i { s0 -= row[j] * x[j]; j += 1 }
        x[i] = ((s0 + s1) + (s2 + s3)) * row[i]
    }
    // Lᵀ x = y, column by column of Lᵀ = row by row of L.
    var i = m - 1
    while i >= 0 {
        let row = a + i * m
        let xi = x[i] * row[i]
        x[i] = xi
        for j in 0..<i { x[j] -= row[j] * xi }
        i -= 1
    }
}

/// In-place LU `P A = L U` of the `n × n` row-major matrix at `a` (GSL
/// `gsl_linalg_LU_decomp`; the permutation's data into `perm`, `n` entries), for callers
/// that keep their own storage. With `lowerByColumns` (`n × n`), the strict lower triangle
/// of `L` is also copied there by columns (column `j` at row `j`; up to `smallSolveOrder`),
/// which `luSolveInPlace` reads. False when GSL reports an error or a pivot is zero or not
/// finite.
public func luFactorInPlace(_ a: UnsafeMutablePointer<Double>, _ n: Int, perm: UnsafeMutablePointer<Int>,
                            lowerByColumns: UnsafeMutablePointer<Double>?) -> Bool {
    ensureGSLErrorsOff()
    if n == 0 { return true }
    var view = gsl_matrix_view_array(a, n, n)
    var p = gsl_permutation(size: n, data: perm)
    var signum: Int32 = 0
    if gsl_linalg_LU_decomp(&view.matrix, &p, &signum) != 0 { return false }
    for i in 0..<n {
        let pivot = a[i * n + i]
        if pivot == 0 || !pivot.isFinite { return false }
    }
    if let lowerByColumns, n <= smallSolveOrder {
        for i in 1..<n {
            let row = a + i * n
            for j in 0..<i { lowerByColumns[j * n + i] = row[j] }
        }
    }
    return true
}

/// Solves `A x = b` in place from GSL's LU factors of `A` (`gsl_linalg_LU_decomp`:
/// `PA = LU`, unit lower `L` and upper `U` packed in `lu`, the permutation's
/// data in `perm`), as `gsl_linalg_LU_svx` does: `x ← Pb`, then the two
/// triangular solves (plain loops up to `smallSolveOrder`, GSL above).
/// `lowerByColumns` is `L` as `luFactorInPlace` left it; `scratch` holds `n` doubles.
public func luSolveInPlace(_ lu: UnsafeMutablePointer<Double>, _ n: Int, _ perm: UnsafeMutablePointer<Int>,
                           _ x: UnsafeMutablePointer<Double>, scratch: UnsafeMutablePointer<Double>,
                           lowerByColumns: UnsafePointer<Double>) {
    if n == 0 { return }
    if n > smallSolveOrder {
        var view = gsl_matrix_view_array(lu, n, n)
        var p = gsl_permutation(size: n, data: perm)
        var xv = gsl_vector_view_array(x, n)
        gsl_linalg_LU_svx(&view.matrix, &p, &xv.vector)
        return
    }
    for i in 0..<n { scratch[i] = x[perm[i]] }
    // L y = Pb by columns of L: each y_i takes its terms L_ij y_j in the order j = 0, 1, …,
    // as a row-wise dot product would (the same roundings), but the updates of different i
    // are independent instead of one dependent chain per row.
    for j in 0..<n {
        let yj = scratch[j]
        let col = lowerByColumns + j * n
        for i in (j + 1)..<n { scratch[i] -= col[i] * yj }
    }
    var i = n - 1
    while i >= 0 {
        let row = lu + i * n
        var s = scratch[i]
        var j = n - 1
        while j > i { s -= row[j] * scratch[j]; j -= 1 }
        scratch[i] = s / row[i]
        i -= 1
    }
    x.update(from: scratch, count: n)
}
