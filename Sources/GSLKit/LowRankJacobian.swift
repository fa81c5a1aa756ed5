/// A Jacobian that is a diagonal plus a low-rank matrix,
/// ```
/// J = diag(d) + ω·Fᵀ F + U V,     F = R · diag(c) placed at columns offset ..< offset + R.cols
/// ```
/// with `U` (`n × k₂`) and `V` (`k₂ × n`) explicit and row-major, and the
/// Gram factor `F` (`k₁ × n`) given implicitly by a shared matrix `R`
/// (`k₁ × m`, row-major, not copied) and a column scaling `c` (length `m`).
/// In the plain form `J = diag(d) + U V` of the literature, `U = [ω Fᵀ, U₂]`
/// and `V = [F; V₂]`, rank `k = k₁ + k₂`.
///
/// The implicit Gram factor exists for memory: a gradient flow's Hessian
/// term `L² D AᵀA D` has `F = A D`, and storing `F` and `Fᵀ` explicitly would
/// cost two more copies of `A` (160 MB each at N = 10000, M = 2000).
///
/// A workspace: systems fill it in place (`LowRankJacobianSystem`), solvers
/// read it; nothing allocates once the shape is fixed.
public final class LowRankJacobian {
    /// `n`.
    public let dimension: Int
    /// `d` (length `n`).
    public var diagonal: [Double]
    /// `R` of the Gram term, or `nil` for none.
    public private(set) var gramMatrix: Matrix?
    /// `ω` of the Gram term.
    public var gramWeight: Double = 0
    /// `c` (length `R.cols`).
    public var gramColumnScale: [Double]
    /// First column of `J` that `F`'s columns occupy.
    public let gramOffset: Int
    /// `k₂`, the rank of the explicit term.
    public let explicitRank: Int
    /// `U` (`n × k₂`, row-major).
    public var u: [Double]
    /// `V` (`k₂ × n`, row-major).
    public var v: [Double]
    /// Scratch space the system may use while filling the Jacobian (sized
    /// at creation), so that evaluations allocate nothing.
    public var scratch: [Double]

    /// A zero Jacobian of the given shape.
    /// - Parameters:
    ///   - gram: `R` of the Gram term (shared, not copied), or `nil`.
    ///   - gramOffset: column of `J` where `F`'s first column goes.
    ///   - explicitRank: `k₂`.
    ///   - scratchCount: length of `scratch`.
    public init(dimension n: Int, gram: Matrix? = nil, gramOffset: Int = 0, explicitRank: Int = 0, scratchCount: Int = 0) {
        precondition(n > 0 && explicitRank >= 0)
        if let r = gram { precondition(gramOffset >= 0 && gramOffset + r.cols <= n, "Gram factor does not fit") }
        dimension = n
        diagonal = [Double](repeating: 0, count: n)
        gramMatrix = gram
        self.gramOffset = gramOffset
        gramColumnScale = [Double](repeating: 0, count: gram?.cols ?? 0)
        self.explicitRank = explicitRank
        u = [Double](repeating: 0, count: n * explicitRank)
        v = [Double](repeating: 0, count: explicitRank * n)
        scratch = [Double](repeating: 0, count: scratchCount)
    }

    /// `k₁`, the rank of the Gram term (rows of `R`).
    public var gramRank: Int { gramMatrix?.rows ?? 0 }
    /// `k = k₁ + k₂`.
    public var rank: Int { gramRank + explicitRank }

    /// `out ← J x` in O(n k) (allocating; for tests and checks).
    public func apply(_ x: [Double]) -> [Double] {
        let n = dimension
        precondition(x.count == n)
        var out = (0..<n).map { diagonal[$0] * x[$0] }
        if let r = gramMatrix, r.rows > 0 {
            let m = r.cols
            let cx = (0..<m).map { gramColumnScale[$0] * x[gramOffset + $0] }
            let rcx = r.multiply(cx)
            let back = r.multiplyTransposed(rcx)
            for j in 0..<m { out[gramOffset + j] += gramWeight * gramColumnScale[j] * back[j] }
        }
        let k2 = explicitRank
        for a in 0..<k2 {
            var s = 0.0
            for i in 0..<n { s += v[a * n + i] * x[i] }
            for i in 0..<n { out[i] += u[i * k2 + a] * s }
        }
        return out
    }

    /// The dense `n × n` matrix (allocating, O(n² k); for tests).
    public func dense() -> Matrix {
        let n = dimension
        var j = Matrix(rows: n, cols: n)
        for i in 0..<n { j[i, i] = diagonal[i] }
        if let r = gramMatrix, r.rows > 0 {
            let m = r.cols
            var f = Matrix(rows: r.rows, cols: m)
            for a in 0..<r.rows { for c in 0..<m { f[a, c] = r[a, c] * gramColumnScale[c] } }
            let g = f.gram(rowsTimesRowsT: false)
            for p in 0..<m { for q in 0..<m { j[gramOffset + p, gramOffset + q] += gramWeight * g[p, q] } }
        }
        let k2 = explicitRank
        if k2 > 0 {
            for i in 0..<n {
                for c in 0..<n {
                    var s = 0.0
                    for a in 0..<k2 { s += u[i * k2 + a] * v[a * n + c] }
                    j[i, c] += s
                }
            }
        }
        return j
    }
}

/// A system whose Jacobian is diagonal plus low rank, for structured
/// implicit solvers (`RosenbrockSolver`): O(n k² + k³) per factorization
/// instead of O(n³).
public protocol LowRankJacobianSystem: ODESystem {
    /// A workspace of the right shape for `lowRankJacobian(t:y:into:dfdt:)`.
    func makeLowRankJacobian() -> LowRankJacobian

    /// Writes `∂f/∂y` at `(t, y)` into `jacobian` (a workspace from
    /// `makeLowRankJacobian()`) and `∂f/∂t` into `dfdt` (length `dimension`).
    /// Should allocate nothing.
    func lowRankJacobian(t: Double, y: UnsafeBufferPointer<Double>, into jacobian: LowRankJacobian,
                         dfdt: UnsafeMutableBufferPointer<Double>) throws
}

extension LowRankJacobianSystem {
    /// The Jacobian at `(t, y)` in a fresh workspace (allocating; for tests).
    public func lowRankJacobian(t: Double, y: [Double]) throws -> LowRankJacobian {
        let jac = makeLowRankJacobian()
        var dfdt = [Double](repeating: 0, count: dimension)
        try y.withUnsafeBufferPointer { yb in
            try dfdt.withUnsafeMutableBufferPointer { try lowRankJacobian(t: t, y: yb, into: jac, dfdt: $0) }
        }
        return jac
    }
}
