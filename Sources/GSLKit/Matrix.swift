import CGSL

/// A dense, row-major matrix of `Double`, the storage CBLAS and GSL expect.
public struct Matrix: Sendable, Equatable {
    public let rows: Int
    public let cols: Int
    /// Entries, row after row: entry `(i, j)` is `storage[i * cols + j]`.
    public var storage: [Double]

    /// A zero matrix.
    public init(rows: Int, cols: Int) {
        precondition(rows >= 0 && cols >= 0)
        _ = blasConfigured
        self.rows = rows
        self.cols = cols
        storage = [Double](repeating: 0, count: rows * cols)
    }

    /// A matrix from row-major storage; `nil` when the count does not fit.
    public init?(rows: Int, cols: Int, storage: [Double]) {
        guard rows >= 0, cols >= 0, storage.count == rows * cols else { return nil }
        _ = blasConfigured
        self.rows = rows
        self.cols = cols
        self.storage = storage
    }

    /// A matrix from its rows; `nil` when rows are ragged.
    public init?(rowArrays: [[Double]]) {
        let c = rowArrays.first?.count ?? 0
        guard rowArrays.allSatisfy({ $0.count == c }) else { return nil }
        _ = blasConfigured
        rows = rowArrays.count
        cols = c
        storage = rowArrays.flatMap { $0 }
    }

    /// The identity.
    public static func identity(_ n: Int) -> Matrix {
        var m = Matrix(rows: n, cols: n)
        for i in 0..<n { m.storage[i * n + i] = 1 }
        return m
    }

    public subscript(i: Int, j: Int) -> Double {
        get { storage[i * cols + j] }
        set { storage[i * cols + j] = newValue }
    }

    /// Row `i` as an array.
    public func row(_ i: Int) -> [Double] { Array(storage[(i * cols)..<((i + 1) * cols)]) }

    /// The rows as arrays.
    public var rowArrays: [[Double]] { (0..<rows).map(row) }

    /// The transpose.
    public var transposed: Matrix {
        var t = Matrix(rows: cols, cols: rows)
        for i in 0..<rows { for j in 0..<cols { t.storage[j * rows + i] = storage[i * cols + j] } }
        return t
    }

    /// `[A, −A]`: the augmentation of the signed problem (2.8).
    public var augmentedWithNegation: Matrix {
        var m = Matrix(rows: rows, cols: 2 * cols)
        for i in 0..<rows {
            for j in 0..<cols {
                m.storage[i * 2 * cols + j] = storage[i * cols + j]
                m.storage[i * 2 * cols + cols + j] = -storage[i * cols + j]
            }
        }
        return m
    }

    /// Whether every entry is finite.
    public var isFinite: Bool { storage.allSatisfy { $0.isFinite } }

    /// Frobenius norm.
    public var frobeniusNorm: Double { storage.reduce(0) { $0 + $1 * $1 }.squareRoot() }
}

// MARK: - BLAS (CBLAS through GSL)

extension Matrix {
    /// `out ← α·op(A)·x + β·out` with `op(A) = A` or `Aᵀ` (CBLAS `dgemv`).
    @inlinable
    public func gemv(transpose: Bool = false, alpha: Double = 1, x: UnsafePointer<Double>, beta: Double = 0,
                     into out: UnsafeMutablePointer<Double>) {
        storage.withUnsafeBufferPointer { a in
            blasGemv(transpose: transpose, rows: rows, cols: cols, alpha: alpha, a: a.baseAddress!,
                     x: x, beta: beta, out: out)
        }
    }

    /// `A·x` (allocating; for cold paths).
    public func multiply(_ x: [Double]) -> [Double] {
        precondition(x.count == cols)
        var out = [Double](repeating: 0, count: rows)
        if rows == 0 || cols == 0 { return out }
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in gemv(x: xb.baseAddress!, into: ob.baseAddress!) }
        }
        return out
    }

    /// `Aᵀ·x` (allocating; for cold paths).
    public func multiplyTransposed(_ x: [Double]) -> [Double] {
        precondition(x.count == rows)
        var out = [Double](repeating: 0, count: cols)
        if rows == 0 || cols == 0 { return out }
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in gemv(transpose: true, x: xb.baseAddress!, into: ob.baseAddress!) }
        }
        return out
    }

    /// `op(A)·op(B)` (CBLAS `dgemm`).
    public func multiply(_ b: Matrix, transposeSelf: Bool = false, transposeOther: Bool = false) -> Matrix {
        let m = transposeSelf ? cols : rows
        let k = transposeSelf ? rows : cols
        let kb = transposeOther ? b.cols : b.rows
        let n = transposeOther ? b.rows : b.cols
        precondition(k == kb, "inner dimensions differ")
        var c = Matrix(rows: m, cols: n)
        if m == 0 || n == 0 { return c }
        if k == 0 { return c }
        storage.withUnsafeBufferPointer { ab in
            b.storage.withUnsafeBufferPointer { bb in
                c.storage.withUnsafeMutableBufferPointer { cb in
                    cblas_dgemm(CblasRowMajor, transposeSelf ? CblasTrans : CblasNoTrans,
                                transposeOther ? CblasTrans : CblasNoTrans,
                                Int32(m), Int32(n), Int32(k), 1.0, ab.baseAddress!, Int32(cols),
                                bb.baseAddress!, Int32(b.cols), 0.0, cb.baseAddress!, Int32(n))
                }
            }
        }
        return c
    }

    /// `Aᵀ A` or `A Aᵀ` (CBLAS `dsyrk`, full symmetric result).
    public func gram(rowsTimesRowsT: Bool) -> Matrix {
        let n = rowsTimesRowsT ? rows : cols
        let k = rowsTimesRowsT ? cols : rows
        var c = Matrix(rows: n, cols: n)
        if n == 0 || k == 0 { return c }
        storage.withUnsafeBufferPointer { ab in
            c.storage.withUnsafeMutableBufferPointer { cb in
                cblas_dsyrk(CblasRowMajor, CblasUpper, rowsTimesRowsT ? CblasNoTrans : CblasTrans,
                            Int32(n), Int32(k), 1.0, ab.baseAddress!, Int32(cols), 0.0, cb.baseAddress!, Int32(n))
            }
        }
        for i in 0..<n { for j in 0..<i { c.storage[i * n + j] = c.storage[j * n + i] } }
        return c
    }
}

/// CBLAS `dgemv` on raw row-major storage. The one place GSLKit's callers
/// reach BLAS for mat-vecs, so the BLAS behind it is changed in one place.
@inlinable
public func blasGemv(transpose: Bool, rows: Int, cols: Int, alpha: Double, a: UnsafePointer<Double>,
                     x: UnsafePointer<Double>, beta: Double, out: UnsafeMutablePointer<Double>) {
    cblas_dgemv(CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, Int32(rows), Int32(cols),
                alpha, a, Int32(cols), x, 1, beta, out, 1)
}

/// CBLAS `ddot`.
@inlinable
public func blasDot(_ n: Int, _ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>) -> Double {
    cblas_ddot(Int32(n), x, 1, y, 1)
}

/// CBLAS `dnrm2`.
@inlinable
public func blasNorm(_ n: Int, _ x: UnsafePointer<Double>) -> Double {
    cblas_dnrm2(Int32(n), x, 1)
}

/// Euclidean norm of an array.
public func norm2(_ x: [Double]) -> Double {
    if x.isEmpty { return 0 }
    return x.withUnsafeBufferPointer { blasNorm(x.count, $0.baseAddress!) }
}

/// Dot product of two arrays.
public func dot(_ x: [Double], _ y: [Double]) -> Double {
    precondition(x.count == y.count)
    if x.isEmpty { return 0 }
    return x.withUnsafeBufferPointer { xb in y.withUnsafeBufferPointer { blasDot(x.count, xb.baseAddress!, $0.baseAddress!) } }
}
