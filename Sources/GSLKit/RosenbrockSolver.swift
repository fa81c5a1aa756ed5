import Foundation

/// The coefficients of Rodas4 (Hairer & Wanner, *Solving ODEs II*, §VI.4,
/// Table 4.1 transformed; the `METH = 1` set of Hairer's `rodas.f`, routine
/// `ROCOE`, cross-checked against OrdinaryDiffEq.jl's `Rodas4Tableau`):
/// 6 stages, order 4 with an embedded order-3 solution, L-stable and stiffly
/// accurate, γ = 1/4. In the transformed variables `k_i` (no matrix–vector
/// products with J), with `W = I/(hγ) − J`:
/// ```
/// W k_i = f(t + c_i h, y + Σ_{j<i} a_ij k_j) + Σ_{j<i} (C_ij/h) k_j + h d_i ∂f/∂t
/// ```
/// Stages 5 and 6 sit at `t + h`; `y + Σ a_5j k_j + k_5` is the embedded
/// solution, `y_{n+1} = that + k_6`, so `k_6` is the error estimate.
enum Rodas4 {
    static let gamma = 0.25
    static let c2 = 0.386, c3 = 0.21, c4 = 0.63
    static let d1 = 0.25, d2 = -0.1043, d3 = 0.1035, d4 = -0.0362
    static let a21 = 1.544
    static let a31 = 0.9466785280815826, a32 = 0.2557011698983284
    static let a41 = 3.314825187068521, a42 = 2.896124015972201, a43 = 0.9986419139977817
    static let a51 = 1.221224509226641, a52 = 6.019134481288629, a53 = 12.53708332932087, a54 = -0.6878860361058950
    static let C21 = -5.6688
    static let C31 = -2.430093356833875, C32 = -0.2063599157091915
    static let C41 = -0.1073529058151375, C42 = -9.594562251023355, C43 = -20.47028614809616
    static let C51 = 7.496443313967647, C52 = -10.24680431464352, C53 = -33.99990352819905, C54 = 11.70890893206160
    static let C61 = 8.083246795921522, C62 = -7.981132988064893, C63 = -31.52159432874371
    static let C64 = 16.31930543123136, C65 = -6.058818238834054
    /// Order of the embedded error estimate plus one (the controller's exponent is 1/4).
    static let errorOrder = 4.0
}

/// A linearly implicit Rosenbrock–Wanner solver (Rodas4, order 4(3)) for
/// systems with a diagonal-plus-low-rank Jacobian, solving each stage by the
/// Woodbury identity (`ShiftedLowRankSolver`): O(n k² + k³) per step instead
/// of the O(n³) of GSL's dense implicit steppers.
///
/// Error control: the local error estimate `k_6` is held to
/// `max_i |k_6,i| / (atol + rtol·|y_new,i|) ≤ 1`, the max norm of GSL's
/// standard control (`scaleY = 1`, `scaleDyDt = 0`; the options' `scaleY`
/// and `scaleDyDt` are honoured the same way). Step-size control as in
/// `rodas.f`: `h_new = h · clamp(0.9·err^{−1/4}, 0.2, 6)`, Gustafsson's
/// predictive controller after accepted steps, no increase right after a
/// rejection. The Jacobian is evaluated at every new point and `W` refactored
/// for every step size tried. Singular or ill-conditioned factorizations and
/// non-finite trial values halve the step (at most 10 times in a row).
public final class RosenbrockSolver: ODESolver {
    public let system: any LowRankJacobianSystem
    public let options: ODEOptions
    /// Safety factor of the step-size controller.
    public var safety = 0.9
    /// Smallest and largest factor `h_new/h`.
    public var minFactor = 0.2, maxFactor = 6.0
    /// Whether to use Gustafsson's predictive controller (as `rodas.f`).
    public var predictiveController = true
    /// Shift cap and dense-fallback size of the linear solver.
    public var maxShifted = 32, denseLimit = 1000

    /// - Throws: `ODEError.invalidOptions` for bad options or dimension 0.
    public init(system: any LowRankJacobianSystem, options: ODEOptions) throws {
        try options.validate()
        guard system.dimension > 0 else { throw ODEError.invalidOptions("the system has dimension 0") }
        self.system = system
        self.options = options
    }

    public func integrate(from t0: Double, y0: [Double], to t1: Double, saveTimes: [Double],
                          observers: [any StepObserver]) -> ODERun {
        let n = system.dimension
        var stats = ODEStatistics()
        if let invalid = invalidInputRun(dimension: n, t0: t0, y0: y0, t1: t1) { return invalid }
        var saves = SaveSchedule(saveTimes, from: t0, to: t1)
        var t = t0
        var tLo = 0.0  // the time is t + tLo, as in `BDFSolver` (steps below ulp(t) still count)

        // Buffers: y, ynew, f(t, y), f at stages, ∂f/∂t, the six stages.
        let buf = UnsafeMutablePointer<Double>.allocate(capacity: 11 * n)
        defer { buf.deallocate() }
        buf.initialize(repeating: 0, count: 11 * n)
        let y = buf, ynew = buf + n, dy1 = buf + 2 * n, dy = buf + 3 * n, fx = buf + 4 * n
        let k1 = buf + 5 * n, k2 = buf + 6 * n, k3 = buf + 7 * n, k4 = buf + 8 * n, k5 = buf + 9 * n, k6 = buf + 10 * n
        for i in 0..<n { y[i] = y0[i] }

        func state() -> [Double] { Array(UnsafeBufferPointer(start: y, count: n)) }
        func finish(_ termination: ODETermination, _ failure: (any Error)? = nil) -> ODERun {
            ODERun(t: t, y: state(), stats: stats, termination: termination, failure: failure)
        }
        func rhs(_ time: Double, _ at: UnsafeMutablePointer<Double>, _ out: UnsafeMutablePointer<Double>) throws {
            stats.rhsEvaluations += 1
            try system.rhs(t: time, y: UnsafeBufferPointer(start: at, count: n),
                           dydt: UnsafeMutableBufferPointer(start: out, count: n))
        }

        if notify(observers, AcceptedStep(t: t, y: UnsafeBufferPointer(start: y, count: n), h: 0, saveIndex: nil, stepNumber: 0)) {
            return finish(.stoppedByObserver)
        }

        let jac = system.makeLowRankJacobian()
        let linear = ShiftedLowRankSolver(shape: jac, maxShifted: maxShifted, denseLimit: denseLimit)
        let span = t1 - t0
        let hmax = min(options.maxStepSize ?? span, span)
        var h: Double
        if let h0 = options.initialStep {
            h = h0
        } else {
            do {
                h = try estimateInitialStep(system: system, t0: t0, y0: y0, t1: t1, rtol: options.rtol, atol: options.atol)
                stats.rhsEvaluations += 1
            } catch {
                return finish(.failed, error)
            }
        }
        h = min(h, hmax)
        let rtol = options.rtol, atol = options.atol, ay = options.scaleY, adydt = options.scaleDyDt
        let g = Rodas4.self
        var needJacobian = true
        var rejectedLast = false
        var failuresInARow = 0
        var hAcc = 0.0, errAcc = 0.0
        var firstAccepted = true
        var lastRejectNonFinite = false

        while true {
            if stats.acceptedSteps >= options.maxSteps { return finish(.maxSteps) }
            let target = saves.target(orEnd: t1)
            // The step to try: land exactly on the target when close.
            var hStep = min(h, hmax)
            var landing = false
            let remaining = timeLeft(to: target, t, tLo)
            if hStep * 1.0001 >= remaining {
                hStep = remaining
                landing = true
            }
            if !(hStep > 0) || hStep < minimumStep(at: t) {
                // When trial values kept turning non-finite, say so.
                if lastRejectNonFinite { return finish(.failed, ODEError.nonFiniteState(t: t)) }
                return finish(.failed, ODEError.stepSizeUnderflow(t: t, h: hStep))
            }
            do {
                if needJacobian {
                    try rhs(t, y, dy1)
                    stats.jacobianEvaluations += 1
                    try system.lowRankJacobian(t: t, y: UnsafeBufferPointer(start: y, count: n), into: jac,
                                               dfdt: UnsafeMutableBufferPointer(start: fx, count: n))
                    needJacobian = false
                }
            } catch {
                return finish(.failed, error)
            }
            // Factor W = I/(hγ) − J.
            do {
                stats.factorizations += 1
                try linear.factor(sigma: 1 / (hStep * g.gamma), jacobian: jac)
            } catch is LowRankSolveError {
                failuresInARow += 1
                if failuresInARow > 10 {
                    return finish(.failed, ODEError.stepSizeUnderflow(t: t, h: hStep))
                }
                h = hStep * 0.5
                rejectedLast = true
                stats.rejectedSteps += 1
                continue
            } catch {
                return finish(.failed, error)
            }
            let ih = 1 / hStep
            let hc21 = g.C21 * ih, hc31 = g.C31 * ih, hc32 = g.C32 * ih
            let hc41 = g.C41 * ih, hc42 = g.C42 * ih, hc43 = g.C43 * ih
            let hc51 = g.C51 * ih, hc52 = g.C52 * ih, hc53 = g.C53 * ih, hc54 = g.C54 * ih
            let hc61 = g.C61 * ih, hc62 = g.C62 * ih, hc63 = g.C63 * ih, hc64 = g.C64 * ih, hc65 = g.C65 * ih
            let hd1 = hStep * g.d1, hd2 = hStep * g.d2, hd3 = hStep * g.d3, hd4 = hStep * g.d4
            do {
                // Stage 1.
                for i in 0..<n { k1[i] = dy1[i] + hd1 * fx[i] }
                linear.solve(k1)
                // Stage 2.
                for i in 0..<n { ynew[i] = y[i] + g.a21 * k1[i] }
                try rhs(t + (tLo + g.c2 * hStep), ynew, dy)
                for i in 0..<n { k2[i] = dy[i] + hc21 * k1[i] + hd2 * fx[i] }
                linear.solve(k2)
                // Stage 3.
                for i in 0..<n { ynew[i] = y[i] + g.a31 * k1[i] + g.a32 * k2[i] }
                try rhs(t + (tLo + g.c3 * hStep), ynew, dy)
                for i in 0..<n { k3[i] = dy[i] + hc31 * k1[i] + hc32 * k2[i] + hd3 * fx[i] }
                linear.solve(k3)
                // Stage 4.
                for i in 0..<n { ynew[i] = y[i] + g.a41 * k1[i] + g.a42 * k2[i] + g.a43 * k3[i] }
                try rhs(t + (tLo + g.c4 * hStep), ynew, dy)
                for i in 0..<n { k4[i] = dy[i] + hc41 * k1[i] + hc42 * k2[i] + hc43 * k3[i] + hd4 * fx[i] }
                linear.solve(k4)
                // Stage 5 (at t + h).
                for i in 0..<n { ynew[i] = y[i] + g.a51 * k1[i] + g.a52 * k2[i] + g.a53 * k3[i] + g.a54 * k4[i] }
                try rhs(t + (tLo + hStep), ynew, dy)
                for i in 0..<n { k5[i] = dy[i] + hc51 * k1[i] + hc52 * k2[i] + hc53 * k3[i] + hc54 * k4[i] }
                linear.solve(k5)
                // Stage 6: embedded solution, then the error estimate k6.
                for i in 0..<n { ynew[i] += k5[i] }
                try rhs(t + (tLo + hStep), ynew, dy)
                for i in 0..<n {
                    k6[i] = dy[i] + hc61 * k1[i] + hc62 * k2[i] + hc63 * k3[i] + hc64 * k4[i] + hc65 * k5[i]
                }
                linear.solve(k6)
                for i in 0..<n { ynew[i] += k6[i] }
            } catch {
                return finish(.failed, error)
            }
            // Error: max_i |k6_i| / (atol + rtol (a_y |ynew_i| + a_dydt h |f_i|)).
            var err = 0.0
            var finite = true
            for i in 0..<n {
                let yi = ynew[i]
                if !yi.isFinite { finite = false; break }
                let sk = atol + rtol * (ay * abs(yi) + adydt * hStep * abs(dy1[i]))
                let e = abs(k6[i]) / sk
                if !(e <= err) { err = e }  // also catches NaN
            }
            if !finite || !err.isFinite {
                failuresInARow += 1
                if failuresInARow > 10 { return finish(.failed, ODEError.nonFiniteState(t: t + (tLo + hStep))) }
                h = hStep * 0.25
                rejectedLast = true
                lastRejectNonFinite = true
                stats.rejectedSteps += 1
                continue
            }
            var fac = min(1 / minFactor, max(1 / maxFactor, pow(err, 1 / g.errorOrder) / safety))
            var hNew = hStep / fac
            if err <= 1 {
                // Accept.
                failuresInARow = 0
                if predictiveController {
                    if !firstAccepted {
                        var facGus = (hAcc / hStep) * pow(err * err / errAcc, 1 / g.errorOrder) / safety
                        facGus = min(1 / minFactor, max(1 / maxFactor, facGus))
                        fac = max(fac, facGus)
                        hNew = hStep / fac
                    }
                    hAcc = hStep
                    errAcc = max(1e-2, err)
                }
                firstAccepted = false
                if landing {
                    t = target
                    tLo = 0
                } else {
                    advanceTime(&t, &tLo, by: hStep)
                }
                y.update(from: ynew, count: n)
                stats.acceptedSteps += 1
                needJacobian = true
                if rejectedLast {
                    h = min(hNew, hStep)
                } else {
                    // A step shortened to land on a save time says little
                    // about the next: keep the larger of the proposals.
                    h = landing ? max(hNew, h) : hNew
                }
                rejectedLast = false
                let hit = landing ? saves.hit(at: t) : nil
                let stop = notify(observers, AcceptedStep(t: t, y: UnsafeBufferPointer(start: y, count: n),
                                                          h: hStep, saveIndex: hit, stepNumber: stats.acceptedSteps))
                saves.advance(past: t, low: tLo)
                if stop { return finish(.stoppedByObserver) }
                if timeReached(t1, t, tLo) { return finish(.reachedEnd) }
            } else {
                // Reject: retry from the same point (Jacobian kept).
                stats.rejectedSteps += 1
                lastRejectNonFinite = false
                rejectedLast = true
                h = hNew
            }
        }
    }
}
