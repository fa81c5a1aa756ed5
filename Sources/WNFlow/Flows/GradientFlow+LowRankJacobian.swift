import GSLKit

/// MATH.md §6 in structured form: `J = −L(L−1) diag(x^{L−2} ⊙ Aᵀe) − L² D AᵀA D`,
/// `D = diag(x^{L−1})`, i.e. `diag(d) + ω Fᵀ F` with `F = A D` (`R = A`
/// shared, `c = x^{L−1}`, `ω = −L²`). O(NM) to build (one gradient), no
/// N × N matrix.
extension GradientFlow: LowRankJacobianSystem {
    public func makeLowRankJacobian() -> LowRankJacobian {
        LowRankJacobian(dimension: dimension, gram: workspace.matrix, gramOffset: 0, explicitRank: 0)
    }

    public func lowRankJacobian(t: Double, y: UnsafeBufferPointer<Double>, into jacobian: LowRankJacobian,
                                dfdt: UnsafeMutableBufferPointer<Double>) throws {
        let n = dimension, L = problem.depth, dL = Double(L)
        let x = y.baseAddress!
        // The gradient (into dfdt as scratch) fills Aᵀe.
        workspace.gradient(at: x, into: dfdt.baseAddress!)
        jacobian.gramWeight = -dL * dL
        let c2 = dL * (dL - 1)
        workspace.backprojected.withUnsafeBufferPointer { r in
            jacobian.diagonal.withUnsafeMutableBufferPointer { d in
                jacobian.gramColumnScale.withUnsafeMutableBufferPointer { c in
                    for i in 0..<n {
                        c[i] = ipow(x[i], L - 1)
                        d[i] = L >= 2 ? -c2 * ipow(x[i], L - 2) * r[i] : 0
                    }
                }
            }
        }
        for i in 0..<n { dfdt[i] = 0 }
    }
}
