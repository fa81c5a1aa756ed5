import GSLKit

/// The learning rate of `g` in weight normalization.
public enum GRate: Sendable, Equatable {
    /// A constant η_g (the learning-rate ratio when η_v = 1).
    case constant(Double)
    /// η_g(t) = η_v g(t)²/‖v(t)‖² (Thm 2.4).
    case timeDependent
}

/// The weight-normalized gradient flow (1.13)–(1.14) on the state
/// `[g, v₁ … v_N]`, with `x = g v/‖v‖` (1.1), `u = v/‖v‖`, `G = ∇ℒ(x)`:
/// ```
/// g' = −η_g ⟨G, u⟩
/// v' = −η_v (g/‖v‖) (G − ⟨G, u⟩ u)
/// ```
public final class WeightNormFlow: Flow {
    public let problem: Problem
    public let rate: GRate
    public let etaV: Double
    public var kind: FlowKind { rate == .timeDependent ? .wnTimeDependent : .wn }
    public var dimension: Int { problem.weightCount + 1 }
    public var hasJacobian: Bool { true }
    /// Constant η_g: `J = −P∇²ℒ̃` with `P = diag(η_g, η_v I)` (a preconditioned gradient
    /// flow), similar to the symmetric `−P^{1/2}∇²ℒ̃P^{1/2}`, so its spectrum is real (BDF up
    /// to order 6). Thm 2.4's rate adds `−⟨G, u⟩ ∇η_g` to the g row: no such guarantee.
    public var jacobianSpectrumIsReal: Bool { rate != .timeDependent }
    let workspace: LossWorkspace
    private var x: [Double]
    private var grad: [Double]
    private var hess: [Double]
    private var hu: [Double]
    private var scaled: [Double]

    public init(problem: Problem, rate: GRate, etaV: Double = 1) {
        self.problem = problem
        self.rate = rate
        self.etaV = etaV
        let n = problem.weightCount
        workspace = LossWorkspace(problem: problem)
        x = [Double](repeating: 0, count: n)
        grad = [Double](repeating: 0, count: n)
        hess = []
        hu = [Double](repeating: 0, count: n)
        scaled = []
    }

    /// The initial state `[g₀, v₀]`: by default `g₀ = ‖x₀‖`, `v₀ = r x₀/‖x₀‖`
    /// (MATH.md §1), so that WN and GF start from the same `x₀`.
    public static func initialState(x0: [Double], vNorm: Double = 1, g0: Double? = nil, v0: [Double]? = nil) -> [Double] {
        let nx = norm2(x0)
        let g = g0 ?? nx
        let v = v0 ?? (nx > 0 ? x0.map { vNorm * $0 / nx } : x0)
        return [g] + v
    }

    public func weights(of state: UnsafeBufferPointer<Double>, into out: UnsafeMutablePointer<Double>) {
        let n = problem.weightCount
        let v = state.baseAddress! + 1
        let nv = blasNorm(n, v)
        let s = state[0] / nv
        for i in 0..<n { out[i] = s * v[i] }
    }

    public var lossWorkspace: LossWorkspace? { workspace }

    /// A local-error norm for a weight-space integrator of a positive WN state `[g, v]` (depth
    /// ≥ 2, Lemma 3.3): GSL's `|δg|/(atol + rtol|g|)` for g, and `|δv_n|/(rtol|v_n|)` for v,
    /// relative however small `v_n` is. `v_n' ∝ v_n` in (1.14) at depth ≥ 2, so a tiny entry
    /// moves on the scale of its own size, and the log-invariants of Lemmas 3.8/3.9 read its
    /// relative error: under GSL's norm an entry far below atol/rtol carries only atol's absolute
    /// accuracy (depth-3 WN runs that stall with entries near 1e-16 failed Lemma 3.8 by 5×;
    /// docs/math.md §6d). The scale has a floor, `relativeNormFloor`: near the subnormal range
    /// `rtol|v_n|` is a few units of the last place or 0, and an entry at 1e-316 stalled a run
    /// (2e6 steps, almost all rejected) that bsimp finished in 23. A NaN gives NaN.
    public static func relativeErrorNorm(dimension n: Int, rtol: Double, atol: Double)
        -> @Sendable (UnsafePointer<Double>, UnsafePointer<Double>) -> Double {
        { v, y in
            var s = abs(v[0]) / (atol + rtol * abs(y[0]))
            for i in 1..<max(n, 1) {
                let d = abs(v[i]), sc = max(rtol * abs(y[i]), relativeNormFloor)
                if d.isNaN { return .nan }
                if d > s * sc { s = d / sc }
            }
            return s
        }
    }

    /// The absolute floor of `relativeErrorNorm`'s scale for v: entries above 1e-290 (at
    /// rtol 1e-10) stay under relative control, those below are held to 1e-300.
    public static let relativeNormFloor = 1e-300

    /// Lemma 3.2 as a projection for a weight-space integrator: `v ← r·v/‖v‖` on a state
    /// `[g, v]`. It leaves `x = g·v/‖v‖` unchanged and removes only the integrator's drift of
    /// `‖v‖` (a multistep method does not keep quadratic invariants), which the flow feels
    /// through `g/‖v‖` in (1.14) and in Thm 2.4's rate (docs/math.md §6d).
    public func normProjection(radius r: Double) -> @Sendable (UnsafeMutableBufferPointer<Double>) -> Void {
        { state in
            let n = state.count - 1
            guard n > 0, r > 0, let base = state.baseAddress else { return }
            let nv = blasNorm(n, base + 1)
            guard nv > 0, nv.isFinite else { return }
            let s = r / nv
            for i in 1...n { state[i] *= s }
        }
    }

    /// The value of η_g at a state.
    @inline(__always)
    func etaG(g: Double, vNorm2: Double) -> Double {
        switch rate {
        case let .constant(e): return e
        case .timeDependent: return etaV * g * g / vNorm2
        }
    }

    /// (1.13)–(1.14).
    public func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws {
        let n = problem.weightCount
        let g = y[0]
        let v = y.baseAddress! + 1
        // x exactly as `weights(of:)` computes it, so that observers find
        // the loss of an evaluated state cached (`lossWorkspace`).
        let nv = blasNorm(n, v)
        let nv2 = nv * nv
        x.withUnsafeMutableBufferPointer { xb in
            grad.withUnsafeMutableBufferPointer { gb in
                let scale = g / nv
                for i in 0..<n { xb[i] = scale * v[i] }
                workspace.gradient(at: xb.baseAddress!, into: gb.baseAddress!)
                let s = blasDot(n, gb.baseAddress!, v) / nv  // ⟨G, u⟩
                dydt[0] = -etaG(g: g, vNorm2: nv2) * s
                let c = -etaV * g / nv
                let su = s / nv
                for i in 0..<n { dydt[i + 1] = c * (gb[i] - su * v[i]) }
            }
        }
    }

    /// The derivative of (1.13)–(1.14). With `H = ∇²ℒ(x)`, `Π = I − uuᵀ`,
    /// `s = ⟨G, u⟩`, `w = ΠG`:
    /// ```
    /// ∂s/∂g = uᵀHu              ∂s/∂v = (g/‖v‖) ΠHu + w/‖v‖
    /// ∂v'/∂g = −η_v (w + g ΠHu)/‖v‖
    /// ∂v'/∂v = −η_v (g/‖v‖)² ΠHΠ + η_v (g/‖v‖²)(w uᵀ + u wᵀ + s Π)
    /// ```
    /// and for the time-dependent rate the extra terms from
    /// `∂η_g/∂g = 2η_v g/‖v‖²`, `∂η_g/∂v = −2η_v g² v/‖v‖⁴`.
    public func jacobian(t: Double, y: UnsafeBufferPointer<Double>, dfdy: UnsafeMutableBufferPointer<Double>,
                         dfdt: UnsafeMutableBufferPointer<Double>) throws {
        let n = problem.weightCount, d = n + 1
        if hess.count != n * n { hess = [Double](repeating: 0, count: n * n) }
        if scaled.count != problem.m * n { scaled = [Double](repeating: 0, count: problem.m * n) }
        let g = y[0]
        let v = y.baseAddress! + 1
        let nv2 = blasDot(n, v, v)
        let nv = nv2.squareRoot()
        let eg = etaG(g: g, vNorm2: nv2)
        x.withUnsafeMutableBufferPointer { xb in
        grad.withUnsafeMutableBufferPointer { G in
        hess.withUnsafeMutableBufferPointer { H in
        hu.withUnsafeMutableBufferPointer { Hu in
        scaled.withUnsafeMutableBufferPointer { sc in
            let gs = g / nv
            for i in 0..<n { xb[i] = gs * v[i] }
            workspace.gradient(at: xb.baseAddress!, into: G.baseAddress!)
            workspace.hessian(at: xb.baseAddress!, into: H.baseAddress!, scaled: sc.baseAddress!)
            // u = v/nv (read on the fly), Hu, uHu, s, w = G − s u.
            let inv = 1 / nv
            blasGemv(transpose: false, rows: n, cols: n, alpha: inv, a: H.baseAddress!, x: v, beta: 0, out: Hu.baseAddress!)
            let uHu = blasDot(n, Hu.baseAddress!, v) * inv
            let s = blasDot(n, G.baseAddress!, v) * inv
            // Row 0: g' = −η_g s.
            var dgdg = -eg * uHu
            var extraV = 0.0  // coefficient of v_j in ∂g'/∂v_j from ∂η_g/∂v
            if rate == .timeDependent {
                dgdg -= s * 2 * etaV * g / nv2
                extraV = s * 2 * etaV * g * g / (nv2 * nv2)
            }
            dfdy[0] = dgdg
            for j in 0..<n {
                let uj = v[j] * inv
                let piHu = Hu[j] - uHu * uj
                let wj = G[j] - s * uj
                let dsdv = gs * piHu + wj * inv
                dfdy[1 + j] = -eg * dsdv + extraV * v[j]
            }
            // Column 0, rows 1…n: ∂v'/∂g.
            for i in 0..<n {
                let ui = v[i] * inv
                let piHu = Hu[i] - uHu * ui
                let wi = G[i] - s * ui
                dfdy[(1 + i) * d] = -etaV * (wi + g * piHu) * inv
            }
            // Block ∂v'/∂v.
            let a = -etaV * gs * gs
            let b = etaV * g / nv2
            for i in 0..<n {
                let ui = v[i] * inv
                let wi = G[i] - s * ui
                let hui = Hu[i]
                let row = dfdy.baseAddress! + (1 + i) * d + 1
                let hrow = H.baseAddress! + i * n
                for j in 0..<n {
                    let uj = v[j] * inv
                    let wj = G[j] - s * uj
                    let phpi = hrow[j] - ui * Hu[j] - hui * uj + uHu * ui * uj
                    let pij = (i == j ? 1.0 : 0.0) - ui * uj
                    row[j] = a * phpi + b * (wi * uj + ui * wj + s * pij)
                }
            }
        }}}}}
        for i in 0..<d { dfdt[i] = 0 }
    }
}
