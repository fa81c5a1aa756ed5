import GSLKit

/// Random problems of the paper's experiments (MATH.md §8): `A = Ã/√M` with
/// `Ã` i.i.d. N(0, 1), an `s`-sparse ground truth `z*` with `‖z*‖₁ = l1Norm`
/// (non-negative, or with random signs when `signed`), and `y = A z*`.
/// Everything is drawn from GSL's mt19937, so a seed gives the same problem
/// on every machine.
public struct ProblemGenerator: Sendable, Equatable {
    public var m: Int
    public var n: Int
    public var sparsity: Int
    public var l1Norm: Double
    public var signed: Bool
    public var seed: UInt

    public init(m: Int, n: Int, sparsity: Int = 5, l1Norm: Double = 1, signed: Bool = false, seed: UInt = 1) {
        self.m = m
        self.n = n
        self.sparsity = sparsity
        self.l1Norm = l1Norm
        self.signed = signed
        self.seed = seed
    }

    /// Draws `(A, z*, y)`. Order of draws: A row by row, the support, the
    /// magnitudes `|N(0,1)|`, then (signed) the signs.
    public func draw() -> (A: Matrix, groundTruth: [Double], y: [Double]) {
        let rng = RNG(seed: seed)
        let scale = 1 / Double(m).squareRoot()
        var a = Matrix(rows: m, cols: n)
        for k in 0..<(m * n) { a.storage[k] = rng.gaussian() * scale }
        let support = rng.choose(sparsity, from: n)
        var z = [Double](repeating: 0, count: n)
        for i in support { z[i] = abs(rng.gaussian()) + 1e-3 }
        if signed { for i in support where rng.uniform() < 0.5 { z[i] = -z[i] } }
        let l1 = z.reduce(0) { $0 + abs($1) }
        if l1 > 0 { z = z.map { $0 * l1Norm / l1 } }
        return (a, z, a.multiply(z))
    }
}

/// The initialization (4.1): `x₀ = α d` with a unit direction `d`, or its
/// depth-th root `(α d)^{⊙1/L}` (Figure 4 fixes the product across depths).
public enum InitDirection: Sendable, Equatable {
    /// `1/√N`.
    case uniform
    /// `|ξ|/‖ξ‖`, ξ Gaussian (the paper's random initialization).
    case absGaussian(seed: UInt)
    /// A given direction (normalized to unit length).
    case given([Double])

    /// The unit direction of length `n`.
    public func vector(_ n: Int) -> [Double] {
        switch self {
        case .uniform:
            return [Double](repeating: 1 / Double(n).squareRoot(), count: n)
        case let .absGaussian(seed):
            let rng = RNG(seed: seed)
            let xi = (0..<n).map { _ in abs(rng.gaussian()) }
            let s = norm2(xi)
            return xi.map { $0 / s }
        case let .given(d):
            let s = norm2(d)
            return s > 0 ? d.map { $0 / s } : d
        }
    }
}
