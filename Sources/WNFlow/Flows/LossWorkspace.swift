import Foundation
import GSLKit

/// Allocation-free evaluation of the loss (1.10) and its gradient
/// `∇ℒ(x) = L x^{⊙(L−1)} ⊙ Aᵀ(A x^{⊙L} − y)`: two CBLAS mat-vecs and O(N)
/// more. Owns its buffers; not thread-safe (one per flow).
public final class LossWorkspace {
    public let matrix: Matrix
    public let y: [Double]
    public let depth: Int
    public var n: Int { matrix.cols }
    public var m: Int { matrix.rows }
    /// `x^{⊙L}` of the last evaluation.
    public private(set) var power: [Double]
    /// `e = A x^{⊙L} − y` of the last evaluation.
    public private(set) var residual: [Double]
    /// `r = Aᵀ e` of the last evaluation.
    public private(set) var backprojected: [Double]
    /// The point and value of the last `loss(at:)` evaluation (see `lastLoss(ifAt:)`).
    private var lastX: [Double]
    private var lastValue = Double.nan

    public init(problem: Problem) {
        matrix = problem.matrix
        y = problem.y
        depth = problem.depth
        power = [Double](repeating: 0, count: problem.weightCount)
        residual = [Double](repeating: 0, count: problem.m)
        backprojected = [Double](repeating: 0, count: problem.weightCount)
        lastX = [Double](repeating: .nan, count: problem.weightCount)
    }

    /// The loss of the last evaluation when it was at exactly `x` (bitwise), else nil;
    /// `power` and `residual` then belong to `x` too. Explicit steppers evaluate the
    /// RHS at the state they accept (GSL's `dydt_out`), so a per-step observer reads
    /// the loss (1.10) there for an O(N) comparison instead of a mat-vec.
    public func lastLoss(ifAt x: UnsafePointer<Double>) -> Double? {
        lastX.withUnsafeBufferPointer { l in
            memcmp(l.baseAddress!, x, n * MemoryLayout<Double>.stride) == 0 ? lastValue : nil
        }
    }

    /// Fills `power`, `residual` and returns the loss `½‖e‖²`.
    @discardableResult
    public func loss(at x: UnsafePointer<Double>) -> Double {
        let L = depth
        power.withUnsafeMutableBufferPointer { w in
            for i in 0..<n { w[i] = ipow(x[i], L) }
            residual.withUnsafeMutableBufferPointer { e in
                e.baseAddress!.update(from: y, count: m)
                matrix.gemv(x: w.baseAddress!, beta: -1, into: e.baseAddress!)
            }
        }
        let value = residual.withUnsafeBufferPointer { 0.5 * blasDot(m, $0.baseAddress!, $0.baseAddress!) }
        lastX.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: x, count: n) }
        lastValue = value
        return value
    }

    /// Writes `∇ℒ(x)` into `grad` and returns the loss. Also fills
    /// `backprojected` (`Aᵀe`).
    @discardableResult
    public func gradient(at x: UnsafePointer<Double>, into grad: UnsafeMutablePointer<Double>) -> Double {
        let value = loss(at: x)
        let L = depth, dL = Double(depth)
        residual.withUnsafeBufferPointer { e in
            backprojected.withUnsafeMutableBufferPointer { r in
                matrix.gemv(transpose: true, x: e.baseAddress!, into: r.baseAddress!)
                for i in 0..<n { grad[i] = dL * ipow(x[i], L - 1) * r[i] }
            }
        }
        return value
    }

    /// Writes the Hessian `∇²ℒ(x) = L(L−1) diag(x^{L−2} ⊙ Aᵀe) + L² D AᵀA D`,
    /// `D = diag(x^{L−1})` (MATH.md §6), into `h` (row-major `N × N`),
    /// using `scaled` (length `M·N`) as workspace. Requires a preceding
    /// `gradient(at: x, …)` at the same `x` (it reuses `Aᵀe`).
    public func hessian(at x: UnsafePointer<Double>, into h: UnsafeMutablePointer<Double>,
                        scaled: UnsafeMutablePointer<Double>) {
        let L = depth, dL = Double(depth)
        // B = A D, row-major M × N.
        matrix.storage.withUnsafeBufferPointer { a in
            for i in 0..<n {
                let d = ipow(x[i], L - 1)
                var k = i
                for _ in 0..<m { scaled[k] = a[k] * d; k += n }
            }
        }
        blasGramTransposed(rows: m, cols: n, alpha: dL * dL, a: scaled, out: h)
        let c = dL * (dL - 1)
        if L >= 2 {
            backprojected.withUnsafeBufferPointer { r in
                for i in 0..<n { h[i * n + i] += c * ipow(x[i], L - 2) * r[i] }
            }
        }
    }
}
