import CGSL

/// What an implicit solver needs of a system's Jacobian `J`: evaluate it,
/// factor `σI − J`, and solve with the factorization. `BDFSolver` works
/// through it, so one solver serves structured (diagonal plus low rank,
/// Woodbury) and small dense Jacobians alike.
public protocol ShiftedJacobian: AnyObject {
    /// Cost of one factorization in units that decide how long a stale
    /// factorization is kept (the Woodbury rank, or the dense dimension).
    var factorCost: Int { get }
    /// Evaluates `J` at `(t, y)` and `∂f/∂t` into `dfdt`.
    func evaluate(t: Double, y: UnsafeBufferPointer<Double>, dfdt: UnsafeMutableBufferPointer<Double>) throws
    /// Factors `σI − J` for the last evaluated `J`; throws `LowRankSolveError`
    /// when it is singular.
    func factor(sigma: Double) throws
    /// Solves `(σI − J) x = b` in place.
    func solve(_ x: UnsafeMutablePointer<Double>)
}

/// `ShiftedJacobian` of a `LowRankJacobianSystem`: Woodbury solves
/// (`ShiftedLowRankSolver`), O(n k) per solve.
public final class LowRankShiftedJacobian: ShiftedJacobian {
    let system: any LowRankJacobianSystem
    let jacobian: LowRankJacobian
    let solver: ShiftedLowRankSolver

    public init(system: any LowRankJacobianSystem, maxShifted: Int = 32, denseLimit: Int = 1000,
                checksResidual: Bool = false) {
        self.system = system
        jacobian = system.makeLowRankJacobian()
        solver = ShiftedLowRankSolver(shape: jacobian, maxShifted: maxShifted, denseLimit: denseLimit)
        solver.checksResidual = checksResidual
    }

    public var factorCost: Int { jacobian.rank }

    public func evaluate(t: Double, y: UnsafeBufferPointer<Double>, dfdt: UnsafeMutableBufferPointer<Double>) throws {
        try system.lowRankJacobian(t: t, y: y, into: jacobian, dfdt: dfdt)
    }

    public func factor(sigma: Double) throws { try solver.factor(sigma: sigma, jacobian: jacobian) }
    public func solve(_ x: UnsafeMutablePointer<Double>) { solver.solve(x) }
}

/// A system whose Jacobian is symmetric negative semidefinite (e.g. the
/// gradient flow of a convex function), so that `σI − J` is symmetric
/// positive definite for `σ > 0` and factors by Cholesky.
public protocol NegativeSemidefiniteJacobianSystem: ODESystem {}

/// `ShiftedJacobian` of any system with a dense Jacobian, O(n³) per
/// factorization: a Cholesky of `σI − J` (`choleskyFactorInPlace`: LAPACK's `dpotrf`) for a
/// `NegativeSemidefiniteJacobianSystem` (LU when rounding makes it fail),
/// GSL's LU otherwise. For small systems (the dual coordinates of the
/// flows, n = M).
public final class DenseShiftedJacobian: ShiftedJacobian {
    let system: any ODESystem
    let n: Int
    private let symmetric: Bool
    private var cholesky = false
    /// Factorizations done by Cholesky and by LU so far.
    public private(set) var choleskyCount = 0, luCount = 0
    private let j: UnsafeMutablePointer<Double>
    private let w: UnsafeMutablePointer<Double>
    private let perm: UnsafeMutablePointer<Int>
    private let scratch: UnsafeMutablePointer<Double>
    private let lowerByColumns: UnsafeMutablePointer<Double>  // L of the LU by columns

    public init(system: any ODESystem) {
        ensureGSLErrorsOff()
        self.system = system
        symmetric = system is any NegativeSemidefiniteJacobianSystem
        n = system.dimension
        j = .allocate(capacity: n * n)
        j.initialize(repeating: 0, count: n * n)
        w = .allocate(capacity: n * n)
        w.initialize(repeating: 0, count: n * n)
        perm = .allocate(capacity: n)
        perm.initialize(repeating: 0, count: n)
        scratch = .allocate(capacity: max(n, 1))
        scratch.initialize(repeating: 0, count: max(n, 1))
        lowerByColumns = .allocate(capacity: max(n * n, 1))
        lowerByColumns.initialize(repeating: 0, count: max(n * n, 1))
    }

    deinit {
        j.deallocate()
        w.deallocate()
        perm.deallocate()
        scratch.deallocate()
        lowerByColumns.deallocate()
    }

    public var factorCost: Int { n }

    public func evaluate(t: Double, y: UnsafeBufferPointer<Double>, dfdt: UnsafeMutableBufferPointer<Double>) throws {
        try system.jacobian(t: t, y: y, dfdy: UnsafeMutableBufferPointer(start: j, count: n * n), dfdt: dfdt)
    }

    public func factor(sigma: Double) throws {
        // One pass without an exit per entry, which vectorizes (the per-entry test and throw
        // kept it scalar: 2.3% of a GF dual run at M = 40, 119 factorizations): an entry is
        // not finite when its exponent bits are all set, i.e. when adding one to the exponent
        // field carries into the sign bit.
        let exponent = Double.infinity.bitPattern, one: UInt64 = 1 << 52
        var carries: UInt64 = 0
        for i in 0..<(n * n) {
            let x = -j[i]
            w[i] = x
            carries |= (x.bitPattern & exponent) &+ one
        }
        if carries >> 63 != 0 { throw LowRankSolveError.singular(sigma: sigma) }
        for i in 0..<n { w[i * n + i] += sigma }
        cholesky = false
        if symmetric {
            if choleskyFactorInPlace(w, n) { cholesky = true; choleskyCount += 1; return }
            for i in 0..<(n * n) { w[i] = -j[i] }
            for i in 0..<n { w[i * n + i] += sigma }
        }
        luCount += 1
        guard luFactorInPlace(w, n, perm: perm, lowerByColumns: lowerByColumns) else {
            throw LowRankSolveError.singular(sigma: sigma)
        }
    }

    public func solve(_ x: UnsafeMutablePointer<Double>) {
        if cholesky { choleskySolveInPlace(w, n, x); return }
        luSolveInPlace(w, n, perm, x, scratch: scratch, lowerByColumns: lowerByColumns)
    }
}
