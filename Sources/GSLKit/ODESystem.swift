/// A system of ordinary differential equations `y' = f(t, y)` in `R^n`.
///
/// Both callbacks work in place on caller-owned buffers and should allocate
/// nothing. An error thrown by either stops the integration, and
/// `ODEIntegrator.integrate` reports it in `ODERun.failure`.
public protocol ODESystem: AnyObject {
    /// The dimension `n` of the state `y`.
    var dimension: Int { get }

    /// Writes `f(t, y)` into `dydt` (both of length `dimension`).
    func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws

    /// Whether `jacobian` is implemented; implicit steppers require it.
    var hasJacobian: Bool { get }

    /// Whether `∂f/∂y` has only real eigenvalues wherever it is evaluated (it is similar to a
    /// symmetric matrix, as the Jacobian `−P∇²ℒ` of a gradient flow with a constant positive
    /// diagonal preconditioner `P` is). `BDFSolver` then runs up to order 6: BDF6 is stable on
    /// the whole negative real axis but only in a sector of half-angle 17.8° around it, where
    /// BDF5's is 51.8°. False by default.
    var jacobianSpectrumIsReal: Bool { get }

    /// Writes `∂f/∂y` into `dfdy` (row-major, `n × n`: entry `(i, j)` is
    /// `∂f_i/∂y_j`) and `∂f/∂t` into `dfdt`.
    func jacobian(t: Double, y: UnsafeBufferPointer<Double>,
                  dfdy: UnsafeMutableBufferPointer<Double>,
                  dfdt: UnsafeMutableBufferPointer<Double>) throws
}

extension ODESystem {
    public var hasJacobian: Bool { false }
    public var jacobianSpectrumIsReal: Bool { false }
    public func jacobian(t: Double, y: UnsafeBufferPointer<Double>,
                         dfdy: UnsafeMutableBufferPointer<Double>,
                         dfdt: UnsafeMutableBufferPointer<Double>) throws {
        throw ODEError.jacobianUnavailable
    }
}

/// Errors the integrator raises itself.
public enum ODEError: Error, CustomStringConvertible, Sendable, Equatable {
    /// An implicit stepper was chosen for a system without a Jacobian.
    case jacobianUnavailable
    /// The dimension of the initial state does not match the system.
    case dimensionMismatch(expected: Int, got: Int)
    /// Non-finite values appeared in the state.
    case nonFiniteState(t: Double)
    /// The step size fell below the smallest representable increment of t.
    case stepSizeUnderflow(t: Double, h: Double)
    /// A GSL routine failed.
    case gsl(GSLError)
    /// Invalid options (tolerances, times).
    case invalidOptions(String)

    public var description: String {
        switch self {
        case .jacobianUnavailable:
            return "the chosen stepper is implicit and needs a Jacobian, but the system has none"
        case let .dimensionMismatch(e, g):
            return "initial state has \(g) entries, the system has dimension \(e)"
        case let .nonFiniteState(t):
            return "the state became NaN or infinite at t = \(t); try an implicit method (msbdf) or tighter tolerances"
        case let .stepSizeUnderflow(t, h):
            return "step size underflow at t = \(t) (h = \(h)); the system is too stiff for this method or the tolerances too tight: try msbdf, or loosen rtol/atol"
        case let .gsl(e):
            return e.description
        case let .invalidOptions(s):
            return s
        }
    }
}
