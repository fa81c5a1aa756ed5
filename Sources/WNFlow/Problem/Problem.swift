import Foundation
import GSLKit

/// A recovery problem: `½‖A x^{⊙L} − y‖²` (1.10) with depth `L`, and, when
/// `signed`, the signed model (2.8) run on the augmentation `[A, −A]`.
public struct Problem: Sendable {
    /// The measurement matrix `A ∈ R^{M×N}` as given.
    public let A: Matrix
    /// Measurements `y ∈ R^M`.
    public let y: [Double]
    /// Depth `L ≥ 1`.
    public let depth: Int
    /// Whether the signed model (2.8) is used.
    public let signed: Bool
    /// The ground truth `z*` (length N), when known.
    public let groundTruth: [Double]?
    /// The matrix the flows run on: `A`, or `[A, −A]` when signed (MATH.md §5).
    public let matrix: Matrix

    /// Largest magnitude of an entry of A or y, and the reciprocal of the smallest nonzero one of
    /// A: squares and products of the loss and the LP stay in double range.
    public static let magnitudeLimit = 1e150

    public init(A: Matrix, y: [Double], depth: Int, signed: Bool = false, groundTruth: [Double]? = nil) throws {
        guard A.rows >= 1, A.cols >= 1 else { throw ConfigError("config.problem.A", "needs at least one row and one column") }
        guard A.isFinite else { throw ConfigError("config.problem.A", "contains NaN or Inf; every entry must be finite") }
        guard y.count == A.rows else {
            throw ConfigError("config.problem.y", "expected \(A.rows) numbers (M from problem.A), got \(y.count)")
        }
        guard y.allSatisfy({ $0.isFinite }) else { throw ConfigError("config.problem.y", "contains NaN or Inf") }
        // The loss ½‖A x^L − y‖² and GLPK's scaling need squares and products in double range:
        // y = 1e200 gave a run "converged" at t = 0 with loss null, and |A_mn| of 1e155 or 1e-200
        // aborted GLPK (glp_set_rii: invalid scale factor, exit 134).
        let limit = Problem.magnitudeLimit
        if let bad = A.storage.first(where: { $0 != 0 && !(abs($0) <= limit && abs($0) >= 1 / limit) }) {
            throw ConfigError("config.problem.A", "has an entry of magnitude \(abs(bad)); nonzero entries must lie within 1e-150…1e150 (rescale A)")
        }
        if let bad = y.first(where: { abs($0) > limit }) {
            throw ConfigError("config.problem.y", "has an entry of magnitude \(abs(bad)); entries must be at most 1e150 (rescale y)")
        }
        guard depth >= 1 else { throw ConfigError("config.model.depth", "must be an integer ≥ 1, got \(depth)") }
        if let z = groundTruth {
            guard z.count == A.cols else {
                throw ConfigError("config.problem.ground_truth", "expected \(A.cols) numbers (N from problem.A), got \(z.count)")
            }
            guard z.allSatisfy({ $0.isFinite }) else { throw ConfigError("config.problem.ground_truth", "contains NaN or Inf") }
        }
        try MemoryBudget.check(entries: Double(A.rows) * Double(A.cols), signed: signed, field: "config.problem.A")
        self.A = A
        self.y = y
        self.depth = depth
        self.signed = signed
        self.groundTruth = groundTruth
        matrix = signed ? A.augmentedWithNegation : A
    }

    /// `M`, the number of measurements.
    public var m: Int { A.rows }
    /// `N`, the number of unknowns of `z`.
    public var n: Int { A.cols }
    /// The length of the weight vector `x` the flows evolve (`N`, or `2N` signed).
    public var weightCount: Int { matrix.cols }

    /// The end-to-end vector `z = x^{⊙L}` (signed: `u^{⊙L} − w^{⊙L}`).
    public func endToEnd(_ x: [Double]) -> [Double] {
        let p = x.map { ipow($0, depth) }
        if !signed { return p }
        return (0..<n).map { p[$0] - p[n + $0] }
    }

    /// The loss (1.10) at weights `x` (length `weightCount`).
    public func loss(_ x: [Double]) -> Double {
        let e = residual(x)
        return 0.5 * e.reduce(0) { $0 + $1 * $1 }
    }

    /// `e = Ã x^{⊙L} − y`.
    public func residual(_ x: [Double]) -> [Double] {
        let w = x.map { ipow($0, depth) }
        let aw = matrix.multiply(w)
        return zip(aw, y).map { $0 - $1 }
    }

    /// `e = Ã x^{⊙L} − y` of the given (exactly representable) weights, accurate to about
    /// `ε|e| + ε²·|Ã||x^L|` instead of the `ε·|Ã||x^L|` of `residual`: the powers in
    /// double-double (`fma` error terms) and each row in a compensated dot product (Ogita,
    /// Rump and Oishi's Dot2). For checks of a converged run, where `|e|` is far below
    /// `|Ã||x^L|`: from x₀ = 300 the plain sum's rounding alone was 1.7e-12‖y‖, above the
    /// 1e-12‖y‖ the stop rule promised and the run had reached.
    public func accurateResidual(_ x: [Double]) -> [Double] {
        let w = x.count
        var hi = [Double](repeating: 0, count: w), lo = [Double](repeating: 0, count: w)
        for j in 0..<w {
            var h = x[j], l = 0.0
            for _ in 1..<max(depth, 1) {
                let p = h * x[j]
                let e = (-p).addingProduct(h, x[j])  // h·x − p exactly (fused)
                let t = l * x[j] + e
                h = p + t
                l = t - (h - p)
            }
            hi[j] = h; lo[j] = l
        }
        var out = [Double](repeating: 0, count: matrix.rows)
        matrix.storage.withUnsafeBufferPointer { a in
            for i in 0..<matrix.rows {
                var s = -y[i], c = 0.0
                let row = i * matrix.cols
                for j in 0..<w {
                    let aij = a[row + j]
                    let p = aij * hi[j]
                    let pe = (-p).addingProduct(aij, hi[j])
                    let t = s + p
                    let z = t - s
                    let se = (s - (t - z)) + (p - z)
                    s = t
                    c += se + pe + aij * lo[j]
                }
                out[i] = s + c
            }
        }
        return out
    }

    /// The loss (1.10) as trajectory rows report it: the plain sum where its rounding is
    /// below about 1e-3 of the residual, else from `accurateResidual`. The plain rows
    /// of `Ã x^L` carry about `√w·ε·‖Ã‖_F‖x^L‖` of rounding; near a zero of the loss that
    /// is the loss's floor (from x₀ = 300 the last row read 7.5e-25 where the loss was
    /// 2.2e-25). `frobeniusNorm` is `matrix.frobeniusNorm`, computed once per run.
    /// `known` is the loss at exactly `x` when the caller has it (the flow's last RHS
    /// evaluation, `LossWorkspace.lastLoss(ifAt:)`), which saves the mat-vec.
    public func reportedLoss(_ x: [Double], frobeniusNorm: Double, known: Double? = nil) -> Double {
        let plain = known ?? loss(x)
        let rounding = Problem.residualRounding(count: x.count, frobeniusNorm: frobeniusNorm,
                                                powerNorm: norm2(x.map { ipow($0, depth) }))
        guard (2 * plain).squareRoot() < 1e3 * rounding else { return plain }
        return 0.5 * accurateResidual(x).reduce(0) { $0 + $1 * $1 }
    }

    /// The typical rounding of a plainly summed residual `Ã x^L − y` in the 2-norm:
    /// `√w·ε·‖Ã‖_F‖x^L‖` for `w` weights (a random-walk estimate; the worst case has `w`
    /// for `√w`). Shared by `reportedLoss` and the discrete iteration's rise test.
    public static func residualRounding(count w: Int, frobeniusNorm: Double, powerNorm: Double) -> Double {
        Double(w).squareRoot() * .ulpOfOne * frobeniusNorm * powerNorm
    }

    /// How far one unit in the last place of each weight moves the residual `Ã x^L − y`:
    /// `‖ |Ã| (L |x|^{L−1} ⊙ ulp(x)) ‖₂`, an upper bound on any one weight's ulp move and about
    /// the rounding of the residual a flow evaluates there. A residual below it is at what double
    /// precision resolves at these weights (signed pairs `u ≈ w` large at depth L whose
    /// `z = u^L − w^L` is small, or large weights in the kernel of A).
    public func residualULPSpread(_ x: [Double]) -> Double {
        let Ab = matrix, L = depth, dL = Double(depth)
        guard x.count == Ab.cols else { return .nan }
        let v = x.map { dL * abs(ipow($0, L - 1)) * $0.ulp }
        var total = 0.0
        for i in 0..<Ab.rows {
            var s = 0.0
            for j in 0..<Ab.cols { s += abs(Ab.storage[i * Ab.cols + j]) * v[j] }
            total += s * s
        }
        return total.squareRoot()
    }

    /// `½‖y‖²`, the loss at `x = 0`: the scale of the loss.
    public var lossScale: Double { 0.5 * y.reduce(0) { $0 + $1 * $1 } }
}

/// `x^k` for a small non-negative integer `k`, by repeated multiplication
/// (exact for `k ≤ 2`, and faster than `pow` on the hot path).
@inlinable
public func ipow(_ x: Double, _ k: Int) -> Double {
    switch k {
    case 0: return 1
    case 1: return x
    case 2: return x * x
    case 3: return x * x * x
    case 4: let s = x * x; return s * s
    default:
        var r = 1.0, b = x, e = k
        while e > 0 {
            if e & 1 == 1 { r *= b }
            b *= b
            e >>= 1
        }
        return r
    }
}

/// Whether the machine has the memory a problem of a given size needs, asked before the
/// matrix is drawn or augmented: a run beyond it would be killed by the kernel (exit 137,
/// no message) instead of told why.
public enum MemoryBudget {
    /// Bytes a run needs for `entries` = M·N: A itself, `[A, −A]` when signed, and the
    /// flows' working copies (peak RSS measured at 1.82× A for N = 10000, M = 2000;
    /// README "Performance"), with some margin: 2.5× A, 4× signed.
    public static func bytesNeeded(entries: Double, signed: Bool) -> Double {
        8 * entries * (signed ? 4 : 2.5)
    }

    /// `MemAvailable` of /proc/meminfo in bytes; nil where it cannot be read (not Linux).
    public static var available: Double? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Double(parts[1]) { return kb * 1024 }
        }
        return nil
    }

    /// Throws a `ConfigError` naming `field` when a problem of `entries` needs more than
    /// `available` bytes. Problems under 1e7 entries (80 MB) are not checked.
    public static func check(entries: Double, signed: Bool, field: String, available: Double? = MemoryBudget.available) throws {
        guard entries >= 1e7, let free = available else { return }
        let need = bytesNeeded(entries: entries, signed: signed)
        guard need > free else { return }
        func gb(_ b: Double) -> String { String(format: "%.1f GB", b / 1e9) }
        throw ConfigError(field, "M·N = \(JSON.format(entries)) entries\(signed ? ", signed" : "") need about \(gb(need)) (A\(signed ? ", [A, −A]" : "") and the run's working copies), more than the \(gb(free)) this machine has available; use a smaller problem or a machine with more memory")
    }

    /// Dense work arrays whose size follows from the input (M × M matrices for M rows): throws
    /// `ConfigError(field, …)` when `bytes` exceed what is `available`, instead of ending in an
    /// allocation failure (a trap, exit 134: predict with M = 2e5, N = 20 asked for 3.2e11
    /// bytes). `what` names the need, `fix` the way out. Needs under 100 MB are not checked
    /// (reading /proc/meminfo took 50 µs, a third of a small `predict --limit-only`).
    public static func require(_ bytes: Double, field: String, what: String, fix: String,
                               available: @autoclosure () -> Double? = MemoryBudget.available) throws {
        guard bytes >= uncheckedBelow, let free = available(), bytes > free else { return }
        throw ConfigError(field, "\(what) needs about \(gb(bytes)), more than the \(gb(free)) this machine has available; \(fix)")
    }

    /// Whether `bytes` of dense work fit: needs under `uncheckedBelow` always do (no read of
    /// /proc/meminfo), others when `available` holds them or is unknown.
    public static func fits(_ bytes: Double, available: @autoclosure () -> Double? = MemoryBudget.available) -> Bool {
        guard bytes >= uncheckedBelow, let free = available() else { return true }
        return bytes <= free
    }

    /// Dense needs below 100 MB are not checked (reading /proc/meminfo costs 50 µs).
    static let uncheckedBelow = 1e8

    private static func gb(_ b: Double) -> String { String(format: "%.3g GB", b / 1e9) }

    /// Bytes of `count` dense M × M double matrices.
    public static func squares(_ m: Int, count: Int) -> Double { Double(count) * 8 * Double(m) * Double(m) }
}
