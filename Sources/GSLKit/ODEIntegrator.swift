import CGSL

/// The context GSL's C callbacks receive: the system, the counters and the
/// first error thrown by a callback.
final class ODECallbackContext {
    let system: any ODESystem
    let n: Int
    var rhsEvaluations = 0
    var jacobianEvaluations = 0
    var error: (any Error)?

    init(system: any ODESystem) {
        self.system = system
        self.n = system.dimension
    }
}

private func rhsTrampoline(_ t: Double, _ y: UnsafePointer<Double>?, _ dydt: UnsafeMutablePointer<Double>?,
                           _ params: UnsafeMutableRawPointer?) -> Int32 {
    guard let params, let y, let dydt else { return cgsl_ebadfunc() }
    let ctx = Unmanaged<ODECallbackContext>.fromOpaque(params).takeUnretainedValue()
    ctx.rhsEvaluations += 1
    do {
        try ctx.system.rhs(t: t, y: UnsafeBufferPointer(start: y, count: ctx.n),
                           dydt: UnsafeMutableBufferPointer(start: dydt, count: ctx.n))
    } catch {
        if ctx.error == nil { ctx.error = error }
        return cgsl_ebadfunc()
    }
    return cgsl_success()
}

private func jacobianTrampoline(_ t: Double, _ y: UnsafePointer<Double>?, _ dfdy: UnsafeMutablePointer<Double>?,
                                _ dfdt: UnsafeMutablePointer<Double>?, _ params: UnsafeMutableRawPointer?) -> Int32 {
    guard let params, let y, let dfdy, let dfdt else { return cgsl_ebadfunc() }
    let ctx = Unmanaged<ODECallbackContext>.fromOpaque(params).takeUnretainedValue()
    ctx.jacobianEvaluations += 1
    do {
        try ctx.system.jacobian(t: t, y: UnsafeBufferPointer(start: y, count: ctx.n),
                                dfdy: UnsafeMutableBufferPointer(start: dfdy, count: ctx.n * ctx.n),
                                dfdt: UnsafeMutableBufferPointer(start: dfdt, count: ctx.n))
    } catch {
        if ctx.error == nil { ctx.error = error }
        return cgsl_ebadfunc()
    }
    return cgsl_success()
}

/// An adaptive integrator on GSL's `gsl_odeiv2_evolve_apply` with the
/// standard error control (`control_standard`).
///
/// Resources are allocated through `gsl_odeiv2_driver_alloc_standard_new`
/// and the evolve loop uses the driver's own step, control and evolve
/// objects, so the multistep methods (`msadams`, `msbdf`), which read their
/// driver, work like every other stepper. One integrator is one GSL
/// workspace: use one per task when running in parallel.
public final class ODEIntegrator: ODESolver {
    public let system: any ODESystem
    public let options: ODEOptions
    private let context: ODECallbackContext
    private let gslSystem: UnsafeMutablePointer<gsl_odeiv2_system>
    private let driver: UnsafeMutablePointer<gsl_odeiv2_driver>

    /// Allocates the GSL workspace for `system`.
    /// - Throws: `ODEError.invalidOptions`, `ODEError.jacobianUnavailable`
    ///   when an implicit stepper meets a system without Jacobian, or
    ///   `ODEError.gsl` if GSL cannot allocate.
    public init(system: any ODESystem, options: ODEOptions) throws {
        ensureGSLErrorsOff()
        try options.validate()
        guard system.dimension > 0 else { throw ODEError.invalidOptions("the system has dimension 0") }
        if options.stepper.needsJacobian && !system.hasJacobian { throw ODEError.jacobianUnavailable }
        self.system = system
        self.options = options
        self.context = ODECallbackContext(system: system)
        gslSystem = .allocate(capacity: 1)
        gslSystem.initialize(to: gsl_odeiv2_system(
            function: rhsTrampoline,
            jacobian: system.hasJacobian ? jacobianTrampoline : nil,
            dimension: system.dimension,
            params: Unmanaged.passUnretained(context).toOpaque()))
        guard let d = gsl_odeiv2_driver_alloc_standard_new(
            gslSystem, options.stepper.gslType, options.initialStep ?? 1e-6,
            options.atol, options.rtol, options.scaleY, options.scaleDyDt) else {
            gslSystem.deinitialize(count: 1)
            gslSystem.deallocate()
            throw ODEError.gsl(GSLError(code: cgsl_failure(), context: "gsl_odeiv2_driver_alloc_standard_new(\(options.stepper))"))
        }
        driver = d
    }

    deinit {
        gsl_odeiv2_driver_free(driver)
        gslSystem.deinitialize(count: 1)
        gslSystem.deallocate()
    }

    /// Consecutive evolve calls that may return without moving `t` (h below
    /// the resolution of t) before the run fails with `stepSizeUnderflow`.
    static let maxStallCount = 1000

    /// Steps in a row that may end in a non-finite state, each retried with a tenth of the
    /// step, before the run fails with `nonFiniteState`.
    static let maxNonFiniteRetries = 30

    public func integrate(from t0: Double, y0: [Double], to t1: Double, saveTimes: [Double],
                          observers: [any StepObserver]) -> ODERun {
        let n = system.dimension
        var stats = ODEStatistics()
        if let invalid = invalidInputRun(dimension: n, t0: t0, y0: y0, t1: t1) { return invalid }
        context.rhsEvaluations = 0
        context.jacobianEvaluations = 0
        context.error = nil
        // Clears the evolve counters and the stepper's memory (the multistep
        // methods keep history), so a re-used integrator repeats a fresh one.
        gsl_odeiv2_driver_reset(driver)

        // `y` is GSL's working state: a failed or rejected evolve call can
        // leave it (and `t`) at an unaccepted value, so the last accepted
        // state is kept apart and is what every run returns.
        var y = y0
        var t = t0
        var lastY = y0
        var lastT = t0
        var saves = SaveSchedule(saveTimes, from: t0, to: t1)
        func finish(_ termination: ODETermination, _ failure: (any Error)? = nil) -> ODERun {
            stats.rhsEvaluations = context.rhsEvaluations
            stats.jacobianEvaluations = context.jacobianEvaluations
            stats.rejectedSteps = Int(cgsl_evolve_failed(driver))
            return ODERun(t: lastT, y: lastY, stats: stats, termination: termination, failure: failure)
        }

        // Initial state.
        let initialStop = y.withUnsafeBufferPointer { buf in
            notify(observers, AcceptedStep(t: t, y: buf, h: 0, saveIndex: nil, stepNumber: 0))
        }
        if initialStop { return finish(.stoppedByObserver) }

        var h: Double
        if let h0 = options.initialStep {
            h = h0
        } else {
            do {
                context.rhsEvaluations += 1
                h = try estimateInitialStep(system: system, t0: t0, y0: y0, t1: t1,
                                            rtol: options.rtol, atol: options.atol)
            } catch {
                return finish(.failed, error)
            }
        }
        let hmax = options.maxStepSize ?? .infinity
        var stalls = 0
        var nonFiniteRetries = 0
        var sliverF = [Double]()
        while true {
            if stats.acceptedSteps >= options.maxSteps { return finish(.maxSteps) }
            let target = saves.target(orEnd: t1)
            let tBefore = t
            // A target a few ulp ahead (save times 1 and 1 + 2.2e-16, or one just short of
            // t₁): GSL would be asked for an ulp-sized step, which msbdf and rk4imp fail.
            let bridged: Bool
            do { bridged = try closeSliver(t: &t, y: &y, to: target, scratch: &sliverF) } catch { return finish(.failed, error) }
            if !bridged {
                h = min(h, hmax)
                let hTried = h
                let status = y.withUnsafeMutableBufferPointer { buf in
                    cgsl_driver_evolve_apply(driver, &t, target, &h, buf.baseAddress!)
                }
                if let error = context.error { return finish(.failed, error) }
                if status != cgsl_success() {
                    if status == cgsl_failure() {
                        // GSL could not meet the tolerance with a step that still
                        // moves t (it leaves t advanced and y at the rejected step).
                        return finish(.failed, ODEError.stepSizeUnderflow(t: lastT, h: h))
                    }
                    return finish(.failed, ODEError.gsl(GSLError(code: status, context: "gsl_odeiv2_evolve_apply(\(options.stepper)) at t = \(lastT)")))
                }
                if t == tBefore {
                    // GSL "accepted" a step too small to change t (h below ulp(t)):
                    // y may have moved while t did not. Undo it; a step that can
                    // never move t (h pinned by maxStepSize, or not growing) fails.
                    stalls += 1
                    t = lastT
                    for i in 0..<n { y[i] = lastY[i] }
                    cgsl_evolve_forget_derivative(driver)
                    // A multistep method has taken the step into its history.
                    if options.stepper.isMultistep { _ = cgsl_driver_step_reset(driver) }
                    if stalls >= Self.maxStallCount { return finish(.failed, ODEError.stepSizeUnderflow(t: lastT, h: hTried)) }
                    continue
                }
                stalls = 0
                var finite = true
                for v in y where !v.isFinite { finite = false; break }
                if !finite {
                    // GSL's error control compares a NaN error estimate as small and accepts the
                    // step (rk8pd on signed WN, L = 3, from 1e-3: a first step of 2e7 gave NaN).
                    // Undo it and retry from the last state with a tenth of the step.
                    nonFiniteRetries += 1
                    if nonFiniteRetries > Self.maxNonFiniteRetries { return finish(.failed, ODEError.nonFiniteState(t: t)) }
                    t = lastT
                    for i in 0..<n { y[i] = lastY[i] }
                    // Evolve would start the next step from the NaN step's f(t₁, y₁).
                    cgsl_evolve_forget_derivative(driver)
                    _ = cgsl_driver_step_reset(driver)
                    h = (t + 0.1 * hTried == t) ? hTried : 0.1 * hTried
                    continue
                }
                nonFiniteRetries = 0
                // A step GSL ended a few ulp short of the target joins it.
                do { _ = try closeSliver(t: &t, y: &y, to: target, scratch: &sliverF) } catch { return finish(.failed, error) }
            }
            stats.acceptedSteps += 1
            lastT = t
            for i in 0..<n { lastY[i] = y[i] }
            let hit = saves.hit(at: t)
            let stop = y.withUnsafeBufferPointer { buf in
                notify(observers, AcceptedStep(t: t, y: buf, h: t - tBefore, saveIndex: hit, stepNumber: stats.acceptedSteps))
            }
            saves.advance(past: t)
            if stop { return finish(.stoppedByObserver) }
            if t >= t1 { return finish(.reachedEnd) }
        }
    }
}

extension ODEIntegrator {
    /// A step that GSL ends this many ulp or fewer short of its target (a save time or t₁)
    /// is carried onto the target by `closeSliver`.
    static let sliverULPs = 64

    /// Moves `(t, y)` from a few ulp short of `target` onto it by one explicit Euler step,
    /// when that step changes no component by more than 1e-3 of its error tolerance
    /// (`atol + rtol·|y|`), so its O(gap²) error is far below any step's. Returns whether it
    /// moved. Without it GSL is left a sliver of ~10 ulp(t) to integrate: after a rejected
    /// step the halved one stops that short of a save time, and `rk1imp`'s modified Newton
    /// iteration on the sliver compares two corrections of rounding size, reads divergence,
    /// and halves the step until t + h = t ("step size underflow", WN, M = 5, N = 12,
    /// rtol 1e-11, save time 1e-3).
    /// Only for a target at most `sliverULPs` ulp ahead; after a move, evolve forgets its kept
    /// f(t₁, y₁) and a multistep method its history, which do not know the sliver.
    func closeSliver(t: inout Double, y: inout [Double], to target: Double, scratch f: inout [Double]) throws -> Bool {
        guard t < target && target - t <= Double(Self.sliverULPs) * target.ulp else { return false }
        let n = y.count
        if f.count != n { f = [Double](repeating: 0, count: n) }
        try y.withUnsafeBufferPointer { yb in
            try f.withUnsafeMutableBufferPointer { fb in try system.rhs(t: t, y: yb, dydt: fb) }
        }
        context.rhsEvaluations += 1
        let gap = target - t
        for i in 0..<n {
            let change = abs(gap * f[i])
            if !(change <= 1e-3 * (options.atol + options.rtol * abs(y[i]))) { return false }
        }
        for i in 0..<n { y[i] += gap * f[i] }
        t = target
        cgsl_evolve_forget_derivative(driver)
        if options.stepper.isMultistep { _ = cgsl_driver_step_reset(driver) }
        return true
    }
}

/// Calls every observer (all of them, even after one asks to stop); true
/// when any asks to stop. Shared by every `ODESolver`.
@inline(__always)
public func notify(_ observers: [any StepObserver], _ step: AcceptedStep) -> Bool {
    var stop = false
    for o in observers where o.observe(step) == .stop { stop = true }
    return stop
}

/// A first step from the scaled sizes of `y₀` and `f(t₀, y₀)` (Hairer,
/// Nørsett & Wanner's starting-step heuristic, first stage only):
/// `h₀ = 0.01 · ‖y₀‖/‖f₀‖` in the error-weighted norm, clipped to
/// `[1e-12·|t₁−t₀|, |t₁−t₀|]`. Costs one evaluation of `f`.
public func estimateInitialStep(system: any ODESystem, t0: Double, y0: [Double], t1: Double,
                                rtol: Double, atol: Double) throws -> Double {
    let n = y0.count
    var f = [Double](repeating: 0, count: n)
    try y0.withUnsafeBufferPointer { yb in
        try f.withUnsafeMutableBufferPointer { fb in try system.rhs(t: t0, y: yb, dydt: fb) }
    }
    var d0 = 0.0, d1 = 0.0
    for i in 0..<n {
        let sc = atol + rtol * abs(y0[i])
        let a = y0[i] / sc, b = f[i] / sc
        d0 += a * a
        d1 += b * b
    }
    d0 = (d0 / Double(n)).squareRoot()
    d1 = (d1 / Double(n)).squareRoot()
    let span = abs(t1 - t0)
    var h = (d0 < 1e-5 || d1 < 1e-5 || !d1.isFinite) ? 1e-6 : 0.01 * d0 / d1
    h = min(max(h, 1e-12 * span), span)
    return h
}
