import GSLKit

/// A flow on the weights of a diagonal linear network: an `ODESystem` whose
/// state maps to weights `x` (identity for GF, `x = g v/‖v‖` for WN (1.1)).
public protocol Flow: ODESystem {
    /// The problem the flow descends.
    var problem: Problem { get }
    /// Which flow this is.
    var kind: FlowKind { get }
    /// Writes the weights `x` of `state` into `x` (length `problem.weightCount`).
    func weights(of state: UnsafeBufferPointer<Double>, into x: UnsafeMutablePointer<Double>)
    /// The loss workspace the RHS evaluates through, if any: observers read the
    /// loss of the state the integrator evaluated last from it
    /// (`lastLoss(ifAt:)`) instead of computing it again.
    var lossWorkspace: LossWorkspace? { get }
}

extension Flow {
    public var lossWorkspace: LossWorkspace? { nil }

    /// The weights of a state (allocating; for cold paths).
    public func weights(of state: [Double]) -> [Double] {
        var x = [Double](repeating: 0, count: problem.weightCount)
        state.withUnsafeBufferPointer { s in x.withUnsafeMutableBufferPointer { weights(of: s, into: $0.baseAddress!) } }
        return x
    }

    /// The loss (1.10) at a state.
    public func loss(of state: [Double]) -> Double { problem.loss(weights(of: state)) }

    /// `f(state)` (allocating; for cold paths and tests).
    public func velocity(of state: [Double], t: Double = 0) throws -> [Double] {
        var out = [Double](repeating: 0, count: dimension)
        try state.withUnsafeBufferPointer { s in
            try out.withUnsafeMutableBufferPointer { try rhs(t: t, y: s, dydt: $0) }
        }
        return out
    }

    /// The dense Jacobian `∂f/∂y` at a state (allocating; for tests).
    public func jacobianMatrix(of state: [Double], t: Double = 0) throws -> Matrix {
        var j = Matrix(rows: dimension, cols: dimension)
        var dfdt = [Double](repeating: 0, count: dimension)
        try state.withUnsafeBufferPointer { s in
            try j.storage.withUnsafeMutableBufferPointer { jb in
                try dfdt.withUnsafeMutableBufferPointer { try jacobian(t: t, y: s, dfdy: jb, dfdt: $0) }
            }
        }
        return j
    }
}

/// The gradient flow (1.11) `x' = −∇ℒ(x)` (no 1/L clock factor; MATH.md §1).
public final class GradientFlow: Flow {
    public let problem: Problem
    public let kind = FlowKind.gf
    public var dimension: Int { problem.weightCount }
    public var hasJacobian: Bool { true }
    /// True: `J = −∇²ℒ` is symmetric (BDF up to order 6).
    public var jacobianSpectrumIsReal: Bool { true }
    let workspace: LossWorkspace
    private var scaled: [Double]

    public init(problem: Problem) {
        self.problem = problem
        workspace = LossWorkspace(problem: problem)
        scaled = []  // M·N workspace of the dense Jacobian, allocated on first use
    }

    public func weights(of state: UnsafeBufferPointer<Double>, into x: UnsafeMutablePointer<Double>) {
        x.update(from: state.baseAddress!, count: problem.weightCount)
    }

    public var lossWorkspace: LossWorkspace? { workspace }

    /// (1.11): `x' = −L x^{⊙(L−1)} ⊙ Aᵀ(A x^{⊙L} − y)`.
    public func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws {
        workspace.gradient(at: y.baseAddress!, into: dydt.baseAddress!)
        for i in 0..<dydt.count { dydt[i] = -dydt[i] }
    }

    /// MATH.md §6: `J = −[L(L−1) diag(x^{L−2} ⊙ Aᵀe) + L² D AᵀA D]`.
    public func jacobian(t: Double, y: UnsafeBufferPointer<Double>, dfdy: UnsafeMutableBufferPointer<Double>,
                         dfdt: UnsafeMutableBufferPointer<Double>) throws {
        let n = dimension
        // The gradient (into dfdt as scratch) fills Aᵀe for the Hessian.
        workspace.gradient(at: y.baseAddress!, into: dfdt.baseAddress!)
        if scaled.count != problem.m * n { scaled = [Double](repeating: 0, count: problem.m * n) }
        scaled.withUnsafeMutableBufferPointer { s in
            workspace.hessian(at: y.baseAddress!, into: dfdy.baseAddress!, scaled: s.baseAddress!)
        }
        for k in 0..<(n * n) { dfdy[k] = -dfdy[k] }
        for i in 0..<n { dfdt[i] = 0 }
    }
}
