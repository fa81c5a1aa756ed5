import CGSL

/// The lower triangle of `α A Aᵀ` (`rows × rows`) for `A` row-major `rows × cols`, into `out`
/// (leading dimension `rows`; the strict upper triangle is not written). CBLAS `dsyrk`.
public func blasGramLower(rows: Int, cols: Int, alpha: Double, a: UnsafePointer<Double>,
                          out: UnsafeMutablePointer<Double>) {
    if rows == 0 { return }
    if cols == 0 {
        out.update(repeating: 0, count: rows * rows)
        return
    }
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, Int32(rows), Int32(cols), alpha, a, Int32(cols),
                0.0, out, Int32(rows))
}

/// `out ← α·BᵀB` for row-major `B` (`rows × cols`), written as a full
/// symmetric `cols × cols` matrix (CBLAS `dsyrk`, then mirrored).
public func blasGramTransposed(rows: Int, cols: Int, alpha: Double, a: UnsafePointer<Double>,
                               out: UnsafeMutablePointer<Double>) {
    let n = cols
    if rows == 0 {
        out.update(repeating: 0, count: n * n)
        return
    }
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(rows), alpha, a, Int32(cols),
                0.0, out, Int32(n))
    for i in 0..<n { for j in 0..<i { out[i * n + j] = out[j * n + i] } }
}

/// `C ← α·op(A)·op(B) + β·C` on raw row-major storage (CBLAS `dgemm`).
public func blasGemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Double,
                     a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                     beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
    cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}
