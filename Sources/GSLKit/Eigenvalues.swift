import CGSL

/// The eigenvalues of a real square matrix, in no particular order: GSL's
/// `gsl_eigen_nonsymm` (Francis double-shift QR on the Hessenberg form, balanced).
/// For checks such as `ODESystem.jacobianSpectrumIsReal`, where the Jacobian of a
/// flow is not symmetric but claimed similar to a symmetric matrix.
/// - Throws: `GSLError` for a non-square or non-finite matrix, or when QR does not converge.
public func eigenvalues(_ a: Matrix) throws -> [(re: Double, im: Double)] {
    ensureGSLErrorsOff()
    let n = a.rows
    guard a.cols == n else { throw GSLError(code: Int32(GSL_EBADLEN), context: "eigenvalues: the matrix is \(a.rows) × \(a.cols), not square") }
    guard a.isFinite else { throw GSLError(code: Int32(GSL_EDOM), context: "eigenvalues: matrix has non-finite entries") }
    if n == 0 { return [] }
    guard let eval = gsl_vector_complex_alloc(n), let work = gsl_eigen_nonsymm_alloc(n) else {
        throw GSLError(code: cgsl_failure(), context: "eigenvalues: allocation")
    }
    defer { gsl_vector_complex_free(eval); gsl_eigen_nonsymm_free(work) }
    var copy = a.storage  // QR overwrites its input
    let status = copy.withUnsafeMutableBufferPointer { b in
        var view = gsl_matrix_view_array(b.baseAddress!, n, n)
        return gsl_eigen_nonsymm(&view.matrix, eval, work)
    }
    guard status == 0 else { throw GSLError(code: status, context: "eigenvalues: QR did not converge") }
    return (0..<n).map { i in
        let z = gsl_vector_complex_get(eval, i)
        return (re: z.dat.0, im: z.dat.1)
    }
}
