import GSLKit

/// The Jacobian of (1.13)–(1.14) (see `WeightNormFlow.jacobian`) in
/// structured form, built in O(NM) without an N × N matrix. With
/// `H = diag(h) + L² BᵀB`, `h = L(L−1) x^{L−2} ⊙ Aᵀe`, `B = A diag(x^{L−1})`,
/// `Π = I − uuᵀ`, `s = ⟨G, u⟩`, `w = ΠG`, `a = −η_v (g/‖v‖)²`, `b = η_v g/‖v‖²`:
/// ```
/// ∂v'/∂v = a ΠHΠ + b (w uᵀ + u wᵀ + s Π)
///        = diag(a h + b s) + a L² BᵀB + q uᵀ + u qᵀ + κ u uᵀ,
///   q = −a Hu + b w,   κ = a uᵀHu − b s,
/// ```
/// and the `g` row `r` (∂g'/∂v) and column `c` (∂v'/∂g) as rank-one terms
/// `e₀ rᵀ + c e₀ᵀ`. So on the state `[g, v]`:
/// `J = diag(d) + ω FᵀF + U V` with `F = [0 | B]` (`R = A` shared,
/// `ω = a L²`, offset 1) and `U = [q + κu, u, e₀, c]`, `V = [u; q; r; e₀]`
/// (vectors in v's slots 1…N), rank M + 4. `Hu = h ⊙ u + L² Bᵀ(B u)` costs
/// two mat-vecs.
extension WeightNormFlow: LowRankJacobianSystem {
    public func makeLowRankJacobian() -> LowRankJacobian {
        let n = problem.weightCount
        return LowRankJacobian(dimension: n + 1, gram: workspace.matrix, gramOffset: 1, explicitRank: 4,
                               scratchCount: 5 * n + problem.m)
    }

    public func lowRankJacobian(t: Double, y: UnsafeBufferPointer<Double>, into jacobian: LowRankJacobian,
                                dfdt: UnsafeMutableBufferPointer<Double>) throws {
        let n = problem.weightCount, dim = n + 1, M = problem.m
        let L = problem.depth, dL = Double(L)
        let g = y[0]
        let v = y.baseAddress! + 1
        let nv2 = blasDot(n, v, v)
        let nv = nv2.squareRoot()
        let inv = 1 / nv
        let gs = g / nv
        let eg = etaG(g: g, vNorm2: nv2)
        let ev = etaV
        jacobian.scratch.withUnsafeMutableBufferPointer { sb in
        jacobian.diagonal.withUnsafeMutableBufferPointer { d in
        jacobian.gramColumnScale.withUnsafeMutableBufferPointer { c in
        jacobian.u.withUnsafeMutableBufferPointer { U in
        jacobian.v.withUnsafeMutableBufferPointer { V in
            let x = sb.baseAddress!, G = x + n, h = x + 2 * n, Hu = x + 3 * n, tmp = x + 4 * n, Bu = x + 5 * n
            for i in 0..<n { x[i] = gs * v[i] }
            workspace.gradient(at: x, into: G)
            workspace.backprojected.withUnsafeBufferPointer { r in
                let c2 = dL * (dL - 1)
                for i in 0..<n {
                    c[i] = ipow(x[i], L - 1)
                    h[i] = L >= 2 ? c2 * ipow(x[i], L - 2) * r[i] : 0
                    tmp[i] = c[i] * v[i] * inv  // c ⊙ u
                }
            }
            // Hu = h ⊙ u + L² c ⊙ Aᵀ(A (c ⊙ u)).
            workspace.matrix.gemv(x: tmp, into: Bu)
            workspace.matrix.gemv(transpose: true, x: Bu, into: tmp)
            let l2 = dL * dL
            var uHu = 0.0, s = 0.0
            for i in 0..<n {
                let ui = v[i] * inv
                Hu[i] = h[i] * ui + l2 * c[i] * tmp[i]
                uHu += Hu[i] * ui
                s += G[i] * ui
            }
            _ = M
            // Row 0: g' = −η_g s (plus ∂η_g terms for the time-dependent rate).
            var dgdg = -eg * uHu
            var extraV = 0.0
            if rate == .timeDependent {
                dgdg -= s * 2 * ev * g / nv2
                extraV = s * 2 * ev * g * g / (nv2 * nv2)
            }
            let a = -ev * gs * gs
            let b = ev * g / nv2
            let kappa = a * uHu - b * s
            jacobian.gramWeight = a * l2
            d[0] = dgdg
            // U: dim × 4, V: 4 × dim (row-major).
            U[0] = 0; U[1] = 0; U[2] = 1; U[3] = 0
            V[0] = 0; V[dim] = 0; V[2 * dim] = 0; V[3 * dim] = 1
            for i in 0..<n {
                let ui = v[i] * inv
                let piHu = Hu[i] - uHu * ui
                let wi = G[i] - s * ui
                let qi = -a * Hu[i] + b * wi
                d[1 + i] = a * h[i] + b * s
                let row = U.baseAddress! + (1 + i) * 4
                row[0] = qi + kappa * ui
                row[1] = ui
                row[2] = 0
                row[3] = -ev * (wi + g * piHu) * inv            // ∂v'_i/∂g
                V[1 + i] = ui
                V[dim + 1 + i] = qi
                V[2 * dim + 1 + i] = -eg * (gs * piHu + wi * inv) + extraV * v[i]  // ∂g'/∂v_i
                V[3 * dim + 1 + i] = 0
            }
        }}}}}
        for i in 0..<dim { dfdt[i] = 0 }
    }
}
