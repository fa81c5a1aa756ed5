import CGSL

/// Every stepping method of GSL's `odeiv2` module.
///
/// Explicit Runge–Kutta methods (`rk2` … `rk8pd`) need only the right-hand
/// side. The implicit ones (`rk1imp`, `rk2imp`, `rk4imp`, `bsimp`, `msbdf`)
/// need the Jacobian `∂f/∂y` too; `msadams` is a multistep predictor–corrector
/// that uses functional iteration and needs none.
public enum Stepper: String, CaseIterable, Sendable, Codable {
    case rk2, rk4, rkf45, rkck, rk8pd, rk1imp, rk2imp, rk4imp, bsimp, msadams, msbdf

    /// Whether GSL calls the system's Jacobian for this method.
    public var needsJacobian: Bool {
        switch self {
        case .rk1imp, .rk2imp, .rk4imp, .bsimp, .msbdf: return true
        case .rk2, .rk4, .rkf45, .rkck, .rk8pd, .msadams: return false
        }
    }

    /// Whether the method is implicit (suited to stiff systems).
    public var isImplicit: Bool { needsJacobian }

    /// Whether the method reads its driver (the multistep methods do; a bare
    /// `gsl_odeiv2_step_alloc` followed by `evolve_apply` aborts for them).
    public var isMultistep: Bool { self == .msadams || self == .msbdf }

    /// The GSL step type. Only GSLKit sees it.
    var gslType: UnsafePointer<gsl_odeiv2_step_type> {
        switch self {
        case .rk2: return cgsl_step_rk2()
        case .rk4: return cgsl_step_rk4()
        case .rkf45: return cgsl_step_rkf45()
        case .rkck: return cgsl_step_rkck()
        case .rk8pd: return cgsl_step_rk8pd()
        case .rk1imp: return cgsl_step_rk1imp()
        case .rk2imp: return cgsl_step_rk2imp()
        case .rk4imp: return cgsl_step_rk4imp()
        case .bsimp: return cgsl_step_bsimp()
        case .msadams: return cgsl_step_msadams()
        case .msbdf: return cgsl_step_msbdf()
        }
    }
}
