/// Options of an adaptive integration: the stepper, GSL's standard error
/// control and the step limits. Each can be changed without the others.
///
/// GSL's standard control keeps the local error of component `i` below
/// `D_i = atol + rtol · (scaleY·|y_i| + scaleDyDt·h·|y'_i|)`.
public struct ODEOptions: Sendable, Equatable {
    /// The stepping method.
    public var stepper: Stepper
    /// Relative tolerance `rtol` (> 0).
    public var rtol: Double
    /// Absolute tolerance `atol` (≥ 0).
    public var atol: Double
    /// Weight `a_y` of `|y|` in the error target.
    public var scaleY: Double
    /// Weight `a_dydt` of `h|y'|` in the error target.
    public var scaleDyDt: Double
    /// First trial step; `nil` estimates one from `y₀` and `f(t₀, y₀)`.
    public var initialStep: Double?
    /// Largest step allowed; `nil` for none.
    public var maxStepSize: Double?
    /// Largest number of accepted steps before the run stops with `.maxSteps`.
    public var maxSteps: Int

    public init(stepper: Stepper = .rkf45, rtol: Double = 1e-6, atol: Double = 1e-10,
                scaleY: Double = 1, scaleDyDt: Double = 0, initialStep: Double? = nil,
                maxStepSize: Double? = nil, maxSteps: Int = 50_000_000) {
        self.stepper = stepper
        self.rtol = rtol
        self.atol = atol
        self.scaleY = scaleY
        self.scaleDyDt = scaleDyDt
        self.initialStep = initialStep
        self.maxStepSize = maxStepSize
        self.maxSteps = maxSteps
    }

    /// Checks the options, naming the first bad one.
    public func validate() throws {
        guard rtol > 0, rtol.isFinite else { throw ODEError.invalidOptions("rtol must be a positive number, got \(rtol)") }
        guard atol >= 0, atol.isFinite else { throw ODEError.invalidOptions("atol must be a non-negative number, got \(atol)") }
        guard scaleY >= 0, scaleDyDt >= 0 else { throw ODEError.invalidOptions("scaleY and scaleDyDt must be non-negative") }
        if let h = initialStep, !(h > 0 && h.isFinite) { throw ODEError.invalidOptions("initialStep must be positive, got \(h)") }
        if let h = maxStepSize, !(h > 0) { throw ODEError.invalidOptions("maxStepSize must be positive, got \(h)") }
        guard maxSteps > 0 else { throw ODEError.invalidOptions("maxSteps must be positive, got \(maxSteps)") }
    }
}

/// Counts of the work an integration did.
public struct ODEStatistics: Sendable, Equatable, Codable {
    /// Steps accepted by the error control.
    public var acceptedSteps: Int = 0
    /// Steps rejected and retried with a smaller size.
    public var rejectedSteps: Int = 0
    /// Evaluations of the right-hand side `f`.
    public var rhsEvaluations: Int = 0
    /// Evaluations of the Jacobian `∂f/∂y`.
    public var jacobianEvaluations: Int = 0
    /// Linear-system factorizations (solvers that report them; GSL's do not).
    public var factorizations: Int = 0

    public init() {}

    public static func + (a: ODEStatistics, b: ODEStatistics) -> ODEStatistics {
        var s = ODEStatistics()
        s.acceptedSteps = a.acceptedSteps + b.acceptedSteps
        s.rejectedSteps = a.rejectedSteps + b.rejectedSteps
        s.rhsEvaluations = a.rhsEvaluations + b.rhsEvaluations
        s.jacobianEvaluations = a.jacobianEvaluations + b.jacobianEvaluations
        s.factorizations = a.factorizations + b.factorizations
        return s
    }
}
