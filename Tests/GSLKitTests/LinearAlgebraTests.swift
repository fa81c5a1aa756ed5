import Foundation
import Testing
@testable import GSLKit

@Suite struct LinearAlgebraTests {

    // MARK: Eigenvalues

    /// `eigenvalues` finds a rotation's ±i, the real spectrum of a triangular matrix, and
    /// refuses non-square or non-finite input.
    @Test func eigenvaluesOfKnownMatrices() throws {
        let rot = try eigenvalues(Matrix(rows: 2, cols: 2, storage: [0, 1, -1, 0])!)
        #expect(rot.allSatisfy { abs($0.re) < 1e-14 && abs(abs($0.im) - 1) < 1e-14 })
        let tri = try eigenvalues(Matrix(rows: 3, cols: 3, storage: [-1, 5, 7, 0, -20, 3, 0, 0, -300])!)
        #expect(tri.map(\.re).sorted() == [-300, -20, -1])
        #expect(tri.allSatisfy { $0.im == 0 })
        #expect(throws: GSLError.self) { try eigenvalues(Matrix(rows: 2, cols: 3)) }
        #expect(throws: GSLError.self) { try eigenvalues(Matrix(rows: 1, cols: 1, storage: [.nan])!) }
        #expect(try eigenvalues(Matrix(rows: 0, cols: 0)).isEmpty)
    }

    // MARK: Kernel projector

    func checkProjector(_ a: Matrix, expectedRank: Int, rng: RNG) throws {
        let p = try KernelProjector(a)
        #expect(p.rank == expectedRank)
        #expect(p.dimension == a.cols)
        let normA = try SVD(a).s.first ?? 0  // spectral norm
        var worstAP = 0.0, worstIdem = 0.0, worstSym = 0.0
        for _ in 0..<5 {
            let w = rng.gaussians(a.cols), v = rng.gaussians(a.cols)
            let pw = p.apply(w)
            let apw = norm2(a.multiply(pw)) / (normA * norm2(w))
            let idem = norm2(zip(p.apply(pw), pw).map { $0 - $1 }) / norm2(w)
            let sym = abs(dot(pw, v) - dot(w, p.apply(v))) / (norm2(w) * norm2(v))
            worstAP = max(worstAP, apw); worstIdem = max(worstIdem, idem); worstSym = max(worstSym, sym)
            // The pointer API agrees with the array API.
            var out = [Double](repeating: .nan, count: a.cols)
            var scratch = [Double](repeating: 0, count: max(p.rank, 1))
            w.withUnsafeBufferPointer { wb in
                out.withUnsafeMutableBufferPointer { ob in
                    scratch.withUnsafeMutableBufferPointer { sb in p.apply(wb.baseAddress!, into: ob.baseAddress!, scratch: sb.baseAddress!) }
                }
            }
            #expect(out == pw)
            if expectedRank == a.cols { #expect(norm2(pw) <= 1e-12 * norm2(w)) }
        }
        print("projector \(a.rows)×\(a.cols) rank \(p.rank): ‖APw‖/‖A‖‖w‖ \(worstAP), ‖PPw−Pw‖/‖w‖ \(worstIdem), sym \(worstSym)")
        #expect(worstAP <= 1e-12)
        #expect(worstIdem <= 1e-12)
        #expect(worstSym <= 1e-12)
    }

    @Test func projectorFullRowRank() throws {
        let rng = RNG(seed: 1)
        try checkProjector(gaussianMatrix(20, 50, rng), expectedRank: 20, rng: rng)
    }

    @Test func projectorRankDeficient() throws {
        let rng = RNG(seed: 2)
        let a = gaussianMatrix(20, 12, rng).multiply(gaussianMatrix(12, 50, rng))
        #expect(try SVD(a).rank == 12)
        try checkProjector(a, expectedRank: 12, rng: rng)
    }

    @Test func projectorTallFullColumnRank() throws {
        let rng = RNG(seed: 3)
        try checkProjector(gaussianMatrix(30, 10, rng), expectedRank: 10, rng: rng)
    }

    @Test func projectorZeroMatrix() throws {
        let p = try KernelProjector(Matrix(rows: 4, cols: 6))
        #expect(p.rank == 0)
        let w = [1.0, 2, 3, 4, 5, 6]
        #expect(p.apply(w) == w)
    }

    // MARK: SVD

    func reconstructionError(_ a: Matrix, _ svd: SVD) -> Double {
        var usv = Matrix(rows: a.rows, cols: a.cols)
        for i in 0..<a.rows {
            for j in 0..<a.cols {
                var sum = 0.0
                for k in 0..<svd.s.count { sum += svd.u[i, k] * svd.s[k] * svd.v[j, k] }
                usv[i, j] = sum
            }
        }
        return norm2(zip(usv.storage, a.storage).map { $0 - $1 }) / a.frobeniusNorm
    }

    func orthonormalityError(_ m: Matrix) -> Double {
        let g = m.gram(rowsTimesRowsT: false)
        var worst = 0.0
        for i in 0..<g.rows { for j in 0..<g.cols { worst = max(worst, abs(g[i, j] - (i == j ? 1 : 0))) } }
        return worst
    }

    @Test(arguments: [(20, 50), (50, 20), (15, 15), (1, 7), (7, 1)])
    func svdReconstructs(shape: (Int, Int)) throws {
        let rng = RNG(seed: UInt(100 + shape.0 * 100 + shape.1))
        let a = gaussianMatrix(shape.0, shape.1, rng)
        let svd = try SVD(a)
        let k = min(shape.0, shape.1)
        #expect(svd.u.rows == shape.0 && svd.u.cols == k)
        #expect(svd.v.rows == shape.1 && svd.v.cols == k)
        #expect(svd.s.count == k)
        #expect(zip(svd.s, svd.s.dropFirst()).allSatisfy { $0 >= $1 })
        #expect(svd.s.allSatisfy { $0 >= 0 })
        let rec = reconstructionError(a, svd)
        let ou = orthonormalityError(svd.u), ov = orthonormalityError(svd.v)
        print("svd \(shape): reconstruction \(rec), UᵀU−I \(ou), VᵀV−I \(ov)")
        #expect(rec <= 1e-12)
        #expect(ou <= 1e-12)
        #expect(ov <= 1e-12)
        #expect(svd.rank == k)
    }

    @Test func svdRankDeficientReconstructs() throws {
        let rng = RNG(seed: 7)
        let a = gaussianMatrix(30, 8, rng).multiply(gaussianMatrix(8, 25, rng))
        let svd = try SVD(a)
        let rec = reconstructionError(a, svd)
        print("svd rank-deficient: reconstruction \(rec), s[7] \(svd.s[7]), s[8] \(svd.s[8])")
        #expect(rec <= 1e-12)
        #expect(svd.rank == 8)
        #expect(orthonormalityError(svd.v) <= 1e-12)
    }

    /// LAPACK's `dgesvd` (used when OpenBLAS is linked) and GSL's SVD describe the same
    /// decomposition: singular values, rank, kernel projector and pseudo-inverse agree, on
    /// wide, tall and rank-deficient matrices.
    @Test(arguments: [(20, 50), (50, 20), (1, 7), (30, 25)])
    func lapackSVDMatchesGSL(shape: (Int, Int)) throws {
        let rng = RNG(seed: UInt(7 + shape.0 * 31 + shape.1))
        // (30, 25) is rank 8.
        let a = shape == (30, 25) ? gaussianMatrix(30, 8, rng).multiply(gaussianMatrix(8, 25, rng))
                                  : gaussianMatrix(shape.0, shape.1, rng)
        let gsl = try SVD(a, lapack: false)
        guard BLAS.isOptimized else { return }  // GSL's CBLAS has no LAPACK
        #expect(SVD.lapackSVD(a) != nil, "LAPACK's SVD is linked with OpenBLAS and must be the one used")
        let fast = try SVD(a)
        #expect(fast.rank == gsl.rank)
        let top = gsl.s.first ?? 1
        #expect(zip(fast.s, gsl.s).allSatisfy { abs($0 - $1) <= 1e-13 * top }, "\(fast.s) vs \(gsl.s)")
        #expect(reconstructionError(a, fast) <= 1e-12)
        #expect(orthonormalityError(fast.v) <= 1e-12 && orthonormalityError(fast.u) <= 1e-12)
        let w = rng.gaussians(shape.1), b = rng.gaussians(shape.0)
        let pf = KernelProjector(svd: fast, columns: shape.1).apply(w), pg = KernelProjector(svd: gsl, columns: shape.1).apply(w)
        #expect(maxAbsDiff(pf, pg) <= 1e-12 * max(1, norm2(w)))
        #expect(maxAbsDiff(fast.pseudoInverseApply(b), gsl.pseudoInverseApply(b)) <= 1e-10 * max(1, norm2(gsl.pseudoInverseApply(b))))
    }

    /// OpenBLAS's "Prescott" fallback (an OpenBLAS older than the CPU) is replaced by the
    /// best kernels the CPU supports, unless `OPENBLAS_CORETYPE` chose; the replaced kernels
    /// compute a product to rounding. Fails on a CPU OpenBLAS 0.3.21 does not know (Intel
    /// family 6 model 207) when the replacement is removed from the shim.
    @Test func openBLASFallbackKernelsAreReplaced() throws {
        BLAS.configure()
        guard BLAS.isOptimized else { #expect(!BLAS.kernelChosenByWNFlow); return }
        let forced = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] != nil && !BLAS.kernelChosenByWNFlow
        if let best = BLAS.bestKernelForCPU, !forced {
            #expect(BLAS.kernel != "Prescott", "OpenBLAS runs its SSE3 fallback on a CPU with \(best)")
            if BLAS.kernelChosenByWNFlow { #expect(BLAS.kernel == best) }
        }
        #expect(BLAS.provenance.contains { $0.0 == "kernel_chosen_by" && $0.1 == (BLAS.kernelChosenByWNFlow ? "wnflow" : "openblas") })
        let rng = RNG(seed: 5)
        let a = gaussianMatrix(40, 100, rng), b = gaussianMatrix(100, 30, rng)
        let c = a.multiply(b)
        var worst = 0.0
        for i in 0..<40 { for j in 0..<30 {
            var s = 0.0, mag = 0.0
            for k in 0..<100 { s += a[i, k] * b[k, j]; mag += abs(a[i, k] * b[k, j]) }
            worst = max(worst, abs(c[i, j] - s) / mag)
        } }
        #expect(worst <= 1e-14)
    }

    @Test func pseudoInverseIsMinimumNorm() throws {
        let rng = RNG(seed: 11)
        let a = gaussianMatrix(20, 50, rng)
        let b = rng.gaussians(20)
        let x = try SVD(a).pseudoInverseApply(b)
        // Aᵀ (A Aᵀ)⁻¹ b: the minimum-norm solution of A x = b.
        let z = try LinearSolve.cholesky(a.gram(rowsTimesRowsT: true), b)
        let xRef = a.multiplyTransposed(z)
        let diff = norm2(zip(x, xRef).map { $0 - $1 }) / norm2(xRef)
        let residual = norm2(zip(a.multiply(x), b).map { $0 - $1 }) / norm2(b)
        print("pinv min-norm: ‖x − Aᵀ(AAᵀ)⁻¹b‖/‖x‖ \(diff), residual \(residual)")
        #expect(diff <= 1e-12)
        #expect(residual <= 1e-12)

        // Tall A: least squares, Aᵀ(Ax − b) = 0.
        let tall = gaussianMatrix(30, 10, rng)
        let bt = rng.gaussians(30)
        let xt = try SVD(tall).pseudoInverseApply(bt)
        let r = zip(tall.multiply(xt), bt).map { $0 - $1 }
        let normal = norm2(tall.multiplyTransposed(r)) / (try SVD(tall).s[0] * norm2(bt))
        #expect(normal <= 1e-12)

        // Rank-deficient A: the result lies in the row space (P x = 0).
        let low = gaussianMatrix(20, 6, rng).multiply(gaussianMatrix(6, 40, rng))
        let xl = try SVD(low).pseudoInverseApply(rng.gaussians(20))
        #expect(norm2(try KernelProjector(low).apply(xl)) <= 1e-12 * norm2(xl))
    }

    // MARK: Linear solves

    @Test func luSolvesRandomSystems() throws {
        let rng = RNG(seed: 21)
        for n in [1, 5, 40] {
            let a = gaussianMatrix(n, n, rng)
            let b = rng.gaussians(n)
            let x = try LinearSolve.lu(a, b)
            let r = norm2(zip(a.multiply(x), b).map { $0 - $1 }) / (a.frobeniusNorm * norm2(x))
            print("lu n=\(n): relative residual \(r)")
            #expect(r <= 1e-12)
        }
        // A factorization reused for several right-hand sides and refactored.
        let a = gaussianMatrix(10, 10, rng)
        let f = try LUFactorization(a)
        for _ in 0..<3 {
            let b = rng.gaussians(10)
            let x = try f.solve(b)
            #expect(norm2(zip(a.multiply(x), b).map { $0 - $1 }) <= 1e-12 * a.frobeniusNorm * norm2(x))
        }
        let a2 = gaussianMatrix(10, 10, rng)
        try f.refactor(a2)
        let b2 = rng.gaussians(10)
        let x2 = try f.solve(b2)
        #expect(norm2(zip(a2.multiply(x2), b2).map { $0 - $1 }) <= 1e-12 * a2.frobeniusNorm * norm2(x2))
        #expect(try LinearSolve.lu(Matrix(rows: 0, cols: 0), []) == [])
        // Badly scaled or ill-conditioned, but not singular: no false alarm.
        let scaled = try LinearSolve.lu(Matrix(rowArrays: [[1, 0], [0, 1e-20]])!, [1, 1e-20])
        #expect(scaled == [1, 1])
        let hilbert = Matrix(rowArrays: (0..<8).map { i in (0..<8).map { j in 1 / Double(i + j + 1) } })!
        let hx = try LinearSolve.lu(hilbert, hilbert.multiply([Double](repeating: 1, count: 8)))
        #expect(maxAbsDiff(hx, [Double](repeating: 1, count: 8)) < 1e-4)  // cond ≈ 1.5e10
    }

    @Test func luSingularThrows() throws {
        let exact = Matrix(rowArrays: [[1, 2], [2, 4]])!
        #expect(throws: GSLError.self) { _ = try LinearSolve.lu(exact, [1, 1]) }
        let zero = Matrix(rows: 3, cols: 3)
        #expect(throws: GSLError.self) { _ = try LinearSolve.lu(zero, [1, 1, 1]) }
        // Numerically singular (rank 3 of 6, rounding leaves tiny pivots).
        let rng = RNG(seed: 22)
        let low = gaussianMatrix(6, 3, rng).multiply(gaussianMatrix(3, 6, rng))
        #expect(throws: GSLError.self) { _ = try LinearSolve.lu(low, rng.gaussians(6)) }
        // A factorization that refactors to a singular matrix throws too.
        let f = try LUFactorization(Matrix.identity(2))
        #expect(throws: GSLError.self) { try f.refactor(exact) }
    }

    @Test func choleskySolvesSPD() throws {
        let rng = RNG(seed: 31)
        for n in [1, 6, 40] {
            let g = gaussianMatrix(n + 5, n, rng)
            var spd = g.gram(rowsTimesRowsT: false)
            for i in 0..<n { spd[i, i] += 0.1 }
            let b = rng.gaussians(n)
            let x = try LinearSolve.cholesky(spd, b)
            let r = norm2(zip(spd.multiply(x), b).map { $0 - $1 }) / (spd.frobeniusNorm * norm2(x))
            print("cholesky n=\(n): relative residual \(r)")
            #expect(r <= 1e-12)
            let f = try CholeskyFactorization(spd)
            var y = b
            try y.withUnsafeMutableBufferPointer { try f.solveInPlace($0.baseAddress!) }
            #expect(maxAbsDiff(y, x) <= 1e-12 * norm2(x))
        }
    }

    @Test func choleskyNonSPDThrows() throws {
        let indefinite = Matrix(rowArrays: [[1, 2], [2, 1]])!
        #expect(throws: GSLError.self) { _ = try LinearSolve.cholesky(indefinite, [1, 1]) }
        #expect(throws: GSLError.self) { _ = try CholeskyFactorization(Matrix(rowArrays: [[-1]])!) }
        let singular = Matrix(rowArrays: [[1, 1], [1, 1]])!
        #expect(throws: GSLError.self) { _ = try LinearSolve.cholesky(singular, [1, 1]) }
    }
}

/// A fixed dense Jacobian `J` (linear system `y' = Jy`).
private class FixedJacobian: ODESystem {
    let j: Matrix
    init(_ j: Matrix) { self.j = j }
    var dimension: Int { j.rows }
    var hasJacobian: Bool { true }
    func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws {
        j.storage.withUnsafeBufferPointer { a in
            blasGemv(transpose: false, rows: j.rows, cols: j.cols, alpha: 1, a: a.baseAddress!, x: y.baseAddress!,
                     beta: 0, out: dydt.baseAddress!)
        }
    }
    func jacobian(t: Double, y: UnsafeBufferPointer<Double>, dfdy: UnsafeMutableBufferPointer<Double>,
                  dfdt: UnsafeMutableBufferPointer<Double>) throws {
        for i in 0..<j.storage.count { dfdy[i] = j.storage[i] }
        for i in 0..<j.rows { dfdt[i] = 0 }
    }
}
private final class FixedSymmetricJacobian: FixedJacobian, NegativeSemidefiniteJacobianSystem {}

extension LinearAlgebraTests {
    /// The triangular solves after GSL's LU and Cholesky (plain loops up to
    /// `smallSolveOrder`, GSL's `…_svx` above) agree with GSL's own solve.
    @Test(arguments: [1, 7, 40, smallSolveOrder + 44])
    func shiftedSolvesMatchGSL(n: Int) throws {
        let rng = RNG(seed: UInt(n))
        let sigma = 0.7
        var general = Matrix(rows: n, cols: n), gram = Matrix(rows: n, cols: n)
        let b = Matrix(rows: n, cols: n, storage: rng.gaussians(n * n))!
        for i in 0..<n {
            for k in 0..<n {
                general.storage[i * n + k] = rng.gaussian() / Double(n).squareRoot()
                var s = 0.0
                for l in 0..<n { s += b.storage[i * n + l] * b.storage[k * n + l] }
                gram.storage[i * n + k] = -s / Double(n)  // J = −BBᵀ/n, negative semidefinite
            }
        }
        for (system, symmetric) in [(FixedJacobian(general), false), (FixedSymmetricJacobian(gram), true)] {
            let shifted = DenseShiftedJacobian(system: system)
            var dfdt = [Double](repeating: 0, count: n)
            let y0 = [Double](repeating: 0, count: n)
            try y0.withUnsafeBufferPointer { y in
                try dfdt.withUnsafeMutableBufferPointer { try shifted.evaluate(t: 0, y: y, dfdt: $0) }
            }
            try shifted.factor(sigma: sigma)
            #expect(symmetric ? shifted.choleskyCount == 1 : shifted.luCount == 1)
            var m = Matrix(rows: n, cols: n)
            for i in 0..<(n * n) { m.storage[i] = -system.j.storage[i] }
            for i in 0..<n { m.storage[i * n + i] += sigma }
            let rhs = rng.gaussians(n)
            let reference = symmetric ? try LinearSolve.cholesky(m, rhs) : try LinearSolve.lu(m, rhs)
            var x = rhs
            x.withUnsafeMutableBufferPointer { shifted.solve($0.baseAddress!) }
            let err = maxAbsDiff(x, reference) / max(reference.map(abs).max() ?? 1, 1e-300)
            #expect(err <= 1e-11, "n = \(n), symmetric \(symmetric): \(err)")
        }
    }
}

extension LinearAlgebraTests {
    /// `qrGramFactor` leaves a factor `L` with `L Lᵀ = BᵀB` in the layout
    /// `choleskySolveInPlace` reads: on a random tall B its solves agree with Cholesky's of
    /// the formed Gram; with rows 1e10 apart, where the Gram rounds to a singular matrix, it
    /// still solves the system the rows define.
    @Test(arguments: [(30, 7), (12, 12), (300, 40)])
    func qrGramFactorSolves(rows: Int, cols: Int) throws {
        let rng = RNG(seed: UInt(rows * 31 + cols))
        let b = rng.gaussians(rows * cols)
        var gram = Matrix(rows: cols, cols: cols)
        for i in 0..<cols {
            for k in 0..<cols {
                var s = 0.0
                for r in 0..<rows { s += b[r * cols + i] * b[r * cols + k] }
                gram.storage[i * cols + k] = s
            }
        }
        let rhs = rng.gaussians(cols)
        let reference = try LinearSolve.cholesky(gram, rhs)
        var work = b, factor = [Double](repeating: 0, count: cols * cols), tau = [Double](repeating: 0, count: cols)
        // Column-major copy of the row-major b.
        for r in 0..<rows { for c in 0..<cols { work[r + c * rows] = b[r * cols + c] } }
        let ok = work.withUnsafeMutableBufferPointer { w in
            factor.withUnsafeMutableBufferPointer { f in
                tau.withUnsafeMutableBufferPointer { qrGramFactor(columnMajor: w.baseAddress!, rows: rows, cols: cols, tau: $0.baseAddress!, into: f.baseAddress!) }
            }
        }
        #expect(ok)
        var x = rhs
        factor.withUnsafeMutableBufferPointer { f in x.withUnsafeMutableBufferPointer { choleskySolveInPlace(f.baseAddress!, cols, $0.baseAddress!) } }
        #expect(maxAbsDiff(x, reference) <= 1e-10 * (reference.map(abs).max() ?? 1))
    }

    @Test func qrGramFactorKeepsRowsFarBelowTheLargest() throws {
        // B = [[1, 1], [1e-10, −1e-10]]: BᵀB = [[1 + 1e-20, 1 − 1e-20], [1 − 1e-20, 1 + 1e-20]]
        // rounds to [[1, 1], [1, 1]]. For d = (1, −1), BᵀB d = (2e-20, −2e-20) exactly.
        let gram = Matrix(rows: 2, cols: 2, storage: [1 + 1e-20, 1 - 1e-20, 1 - 1e-20, 1 + 1e-20])!
        #expect(gram.storage == [1, 1, 1, 1])
        #expect(throws: (any Error).self) { try LinearSolve.cholesky(gram, [2e-20, -2e-20]) }
        var b = [1.0, 1e-10, 1.0, -1e-10], factor = [Double](repeating: 0, count: 4), tau = [0.0, 0.0]
        let ok = b.withUnsafeMutableBufferPointer { w in
            factor.withUnsafeMutableBufferPointer { f in
                tau.withUnsafeMutableBufferPointer { qrGramFactor(columnMajor: w.baseAddress!, rows: 2, cols: 2, tau: $0.baseAddress!, into: f.baseAddress!) }
            }
        }
        #expect(ok)
        var x = [2e-20, -2e-20]
        factor.withUnsafeMutableBufferPointer { f in x.withUnsafeMutableBufferPointer { choleskySolveInPlace(f.baseAddress!, 2, $0.baseAddress!) } }
        #expect(abs(x[0] - 1) <= 1e-6 && abs(x[1] + 1) <= 1e-6, "\(x)")
    }
}

/// `squareRoots` (the vectorized shim loop) gives `squareRoot()`'s values, NaN for negatives.
@Test func squareRootsMatchSquareRoot() {
    let x: [Double] = [0, 1e-320, 2, 1e300, .infinity, -1, 0.5, 3, 7, 1e-10, 42]
    var out = [Double](repeating: 0, count: x.count)
    x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBufferPointer { squareRoots(xb.baseAddress!, into: $0.baseAddress!, count: x.count) } }
    for (a, b) in zip(x, out) { #expect(a < 0 ? b.isNaN : b == a.squareRoot(), "\(a)") }
}
