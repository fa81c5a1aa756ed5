import Foundation
import GSLKit

/// Allocation-free evaluation of the loss (1.10) and its gradient
/// `∇ℒ(x) = L x^{⊙(L−1)} ⊙ Aᵀ(A x^{⊙L} − y)`: two CBLAS mat-vecs and O(N)
/// more, with the residual kept accurate near a zero of the loss (§6b).
/// Owns its buffers; not thread-safe (one per flow).
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
    /// Near a zero of the loss, `e = A x^{⊙L} − y` cancels: summed directly,
    /// its rounding (≈ ε Σ|A||x^L| ≈ ε‖y‖) swamps `e` itself, and with it the
    /// RHS of the small weights; implicit methods then stall on that noise.
    /// The residual is kept to a relative rounding of about `accuracyFactor·ε`:
    /// once the direct sum cannot promise that (`‖e‖∞ < ‖y‖∞/accuracyFactor`),
    /// it is taken from a reference point `r` whose residual was summed in
    /// double-double, `e(x) = e(r) + A (x^L − r^L)`, with the difference formed
    /// without cancellation. Its rounding is ε(‖e(r)‖∞ + max|A|·‖x^L − r^L‖₁);
    /// when that exceeds `accuracyFactor·ε·‖e(x)‖∞` the reference moves to `x`
    /// (docs/math.md §6b).
    public static let accuracyFactor = ResidualAccuracy.factor
    private var referenceX: [Double]
    private var referenceResidual: [Double]
    private var referenceSize = 0.0
    private var difference: [Double]
    private var hasReference = false
    private let accuracy: ResidualAccuracy
    /// How often the reference moved (each costs a few mat-vecs).
    public private(set) var rebases = 0

    /// Whether the residual is kept accurate near a zero of the loss (above);
    /// false sums it directly, as plain BLAS would (for comparisons).
    public let accurateResidual: Bool

    public init(problem: Problem, accurateResidual: Bool = true) {
        self.accurateResidual = accurateResidual
        matrix = problem.matrix
        y = problem.y
        depth = problem.depth
        power = [Double](repeating: 0, count: problem.weightCount)
        residual = [Double](repeating: 0, count: problem.m)
        backprojected = [Double](repeating: 0, count: problem.weightCount)
        lastX = [Double](repeating: .nan, count: problem.weightCount)
        referenceX = [Double](repeating: 0, count: problem.weightCount)
        difference = [Double](repeating: 0, count: problem.weightCount)
        referenceResidual = [Double](repeating: 0, count: problem.m)
        accuracy = ResidualAccuracy(problem: problem)
    }

    /// Forgets the reference point (§6b) and the cached last loss: the workspace then
    /// evaluates as a fresh one would. A run starts with this, so that its numbers do not
    /// depend on what the same flow integrated before (`Simulation.run`).
    public func reset() {
        hasReference = false
        lastValue = .nan
        for j in 0..<lastX.count { lastX[j] = .nan }
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

    /// The loss of the last evaluation, wherever it was (for tests of `lossLowerBound`).
    var lastEvaluationLoss: Double { lastValue }

    /// A lower bound on `loss(at: x)` from the last evaluation, without a mat-vec (nil
    /// before one): `‖A(x^L − x₁^L)‖∞ ≤ max|A| Σ|x^L − x₁^L|`, so `‖e(x)‖₂ ≥ ‖e₁‖₂(1 − 1e-6)
    /// − √M(max|A| Σ|x^L − x₁^L| + 4ε‖y‖∞)`; the `1e-6` and `4ε‖y‖∞` cover both residuals'
    /// rounding (§6b). O(N). Implicit steppers evaluate the RHS at their last Newton
    /// iterate, which the accepted state differs from by one small correction, so a stop
    /// rule can tell most steps are above its threshold without computing the loss.
    public func lossLowerBound(at x: UnsafePointer<Double>) -> Double? {
        guard lastValue.isFinite else { return nil }
        let L = depth
        var d = 0.0
        power.withUnsafeBufferPointer { p in for j in 0..<n { d += abs(ipow(x[j], L) - p[j]) } }
        let slack = Double(m).squareRoot() * (accuracy.maxAbsEntry * d + 4 * Double.ulpOfOne * accuracy.yScale)
        let lower = (2 * lastValue).squareRoot() * (1 - 1e-6) - slack
        guard lower.isFinite else { return nil }
        return lower > 0 ? 0.5 * lower * lower : 0
    }

    /// Fills `power`, `residual` and returns the loss `½‖e‖²`.
    @discardableResult
    public func loss(at x: UnsafePointer<Double>) -> Double {
        let L = depth
        power.withUnsafeMutableBufferPointer { w in
            for i in 0..<n { w[i] = ipow(x[i], L) }
            residual.withUnsafeMutableBufferPointer { e in
                if hasReference && fromReference(x, into: e.baseAddress!) { return }
                e.baseAddress!.update(from: y, count: m)
                matrix.gemv(x: w.baseAddress!, beta: -1, into: e.baseAddress!)
                let size = maxAbs(e.baseAddress!, m)
                if accurateResidual && accuracy.needsReference(directSize: size) { rebase(at: x, into: e.baseAddress!) }
            }
        }
        let value = residual.withUnsafeBufferPointer { 0.5 * blasDot(m, $0.baseAddress!, $0.baseAddress!) }
        lastX.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: x, count: n) }
        lastValue = value
        return value
    }

    /// `e = e(r) + A (x^L − r^L)`, with `x^L − r^L = (x − r) Σ_k x^k r^{L−1−k}`
    /// (no cancellation); false when its rounding bound breaks the promise.
    private func fromReference(_ x: UnsafePointer<Double>, into e: UnsafeMutablePointer<Double>) -> Bool {
        let L = depth
        var l1 = 0.0
        referenceX.withUnsafeBufferPointer { r in
            difference.withUnsafeMutableBufferPointer { d in
                for i in 0..<n {
                    let a = x[i], b = r[i]
                    var sum = 0.0
                    for k in 0..<L { sum += ipow(a, k) * ipow(b, L - 1 - k) }
                    d[i] = (a - b) * sum
                    l1 += abs(d[i])
                }
            }
        }
        guard l1.isFinite else { return false }
        e.update(from: referenceResidual, count: m)
        difference.withUnsafeBufferPointer { matrix.gemv(x: $0.baseAddress!, beta: 1, into: e) }
        return accuracy.keeps(bound: referenceSize + accuracy.maxAbsEntry * l1, size: maxAbs(e, m))
    }

    /// Makes `x` the reference: `e(x)` summed in double-double (`x^L` split
    /// exactly with fused multiply-adds, as in Ogita–Rump–Oishi's Dot2), written to `e`.
    private func rebase(at x: UnsafePointer<Double>, into e: UnsafeMutablePointer<Double>) {
        rebases += 1
        let L = depth
        // x^L = hi + lo to about ε² relative (in `difference`, free here, and `referenceX`).
        difference.withUnsafeMutableBufferPointer { hi in
            referenceX.withUnsafeMutableBufferPointer { lo in
                for j in 0..<n {
                    var h = x[j], l = 0.0
                    for _ in 1..<max(L, 1) {
                        let p = h * x[j]
                        l = (-p).addingProduct(h, x[j]) + l * x[j]
                        h = p
                    }
                    hi[j] = h
                    lo[j] = l
                }
                matrix.storage.withUnsafeBufferPointer { a in
                    for i in 0..<m {
                        let (s, c) = compensatedDot(a.baseAddress! + i * n, hi.baseAddress!, lo.baseAddress!, n, start: -y[i])
                        e[i] = s + c
                    }
                }
                lo.baseAddress!.update(from: x, count: n)
            }
        }
        referenceResidual.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: e, count: m) }
        referenceSize = maxAbs(e, m)
        hasReference = true
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

/// The promise of docs/math.md §6b, shared by `LossWorkspace` and the dual
/// coordinates: the residual `e` carries a relative rounding of about
/// `factor·ε`.
struct ResidualAccuracy {
    static let factor = 1e4
    /// `max_ij |A_ij|` and `‖y‖∞`.
    let maxAbsEntry: Double, yScale: Double

    init(problem: Problem) {
        maxAbsEntry = problem.matrix.storage.reduce(0) { max($0, abs($1)) }
        yScale = problem.y.reduce(0) { max($0, abs($1)) }
    }

    /// Whether a direct sum with `‖e‖∞ = size` (rounding ≈ ε‖y‖∞) breaks the
    /// promise, so that `e` should come from a reference.
    func needsReference(directSize size: Double) -> Bool { size.isFinite && size * Self.factor < yScale }

    /// Whether a residual with `‖e‖∞ = size` and rounding at most `ε·bound`
    /// keeps the promise (below ε‖y‖∞ its relative accuracy matters to nothing).
    func keeps(bound: Double, size: Double) -> Bool {
        bound <= Self.factor * max(size, Double.ulpOfOne * yScale)
    }
}

/// `max_i |v_i|` of `count` entries; NaN if any entry is NaN (`Swift.max`
/// would drop it, and a NaN residual would pass for a small one).
///
/// Four running maxima without branches (`a > r ? a : r`, which drops a NaN) and a running
/// `Σ 0·v_i`, NaN exactly when some entry is NaN or infinite; only then the sequential loop,
/// for the first NaN. The same value in every case; the branchy loop alone was 2.8% of a GF
/// dual run (M = 40, 2.3 calls a step in `weightErrorBound`).
@inline(__always)
func maxAbs(_ v: UnsafePointer<Double>, _ count: Int) -> Double {
    var r0 = 0.0, r1 = 0.0, r2 = 0.0, r3 = 0.0, z0 = 0.0, z1 = 0.0
    var i = 0
    while i + 4 <= count {
        let a0 = abs(v[i]), a1 = abs(v[i + 1]), a2 = abs(v[i + 2]), a3 = abs(v[i + 3])
        r0 = a0 > r0 ? a0 : r0; r1 = a1 > r1 ? a1 : r1
        r2 = a2 > r2 ? a2 : r2; r3 = a3 > r3 ? a3 : r3
        z0 += (a0 + a1) * 0; z1 += (a2 + a3) * 0
        i += 4
    }
    while i < count { let a = abs(v[i]); r0 = a > r0 ? a : r0; z0 += a * 0; i += 1 }
    if z0 + z1 == 0 { return max(max(r0, r1), max(r2, r3)) }
    var r = 0.0
    for i in 0..<count {
        let a = abs(v[i])
        if a > r || a.isNaN { r = a }
        if r.isNaN { return r }
    }
    return r
}

/// `start + Σ_j a_j (hi_j + lo_j)` summed in double-double (each product split
/// exactly by a fused multiply-add, the sum by TwoSum: Ogita–Rump–Oishi's
/// Dot2); the value is `s + c`, with a relative error of about ε plus ε² times
/// the condition number.
@inline(__always)
func compensatedDot(_ a: UnsafePointer<Double>, _ hi: UnsafePointer<Double>, _ lo: UnsafePointer<Double>?,
                    _ n: Int, start: Double) -> (s: Double, c: Double) {
    var s = start, c = 0.0
    for j in 0..<n {
        let q = a[j] * hi[j]
        let qErr = (-q).addingProduct(a[j], hi[j])
        let t = s + q
        let z = t - s
        c += ((s - (t - z)) + (q - z)) + qErr
        if let lo { c += a[j] * lo[j] }
        s = t
    }
    return (s, c)
}
