import Foundation

/// A variable-order (1–5, or 1–6 for a Jacobian with a real spectrum), variable-step BDF
/// solver in the NDF form of Shampine & Reichelt (MATLAB's `ode15s`; the scheme of scipy's `BDF`):
/// the state history is held as backward differences `D` of the
/// interpolating polynomial on an equally spaced grid, rescaled
/// (`rescaleDifferences`) whenever the step changes. Each step solves
/// `y − c f(t+h, y) = ψ` by a simplified Newton iteration whose matrix
/// `I − c J` is factored through the diagonal-plus-low-rank structure of `J`
/// (`ShiftedLowRankSolver`, the Woodbury capacitance matrix of `σI − J`,
/// `σ = 1/c`) for a `LowRankJacobianSystem`, and densely for any other
/// system with a Jacobian (Cholesky for a `NegativeSemidefiniteJacobianSystem`,
/// else LU; `ShiftedJacobian`).
///
/// Work reuse, as in CVODE and `ode15s`:
/// - the Jacobian is kept across steps and re-evaluated when Newton fails to
///   converge with a stale one, or once it is `jacobianMaxAge` steps old;
/// - the factorization is kept while `σ` stays within `refactorRatio` of the
///   factored `σ_f`; the Newton correction is then scaled by
///   `2σσ_f/(σ+σ_f)` (CVODE's `2/(1+γ/γ_p)`);
/// - after a convergence failure with a current Jacobian the matrix is first
///   refactored at the exact `σ`, and only then the step halved.
///
/// Error control: the local error estimate `C_k · (y_new − y_pred)` in the
/// max norm weighted by `atol + rtol·|y_new|` (GSL's norm) must be ≤ 1. Save times and
/// `t1` are hit exactly by shortening the step to land on them.
public final class BDFSolver: ODESolver {
    public let system: any ODESystem
    public let options: ODEOptions
    /// Highest order used (1 … 6); nil: 6 when the system declares
    /// `jacobianSpectrumIsReal` (the flows: gradient flows, MATH.md §6) and its factorization
    /// cost is at most `orderSixFactorCost`, else 5 as in
    /// `ode15s`, CVODE and LSODA. Order 6 is plain BDF6 (no NDF κ): stable on the negative
    /// real axis, but outside a sector of half-angle 17.8° around it, so not for
    /// Jacobians with complex eigenvalues far from that axis. At rtol 1e-10 it takes
    /// 21–27% fewer steps on the bench's depth-2 flows (Benchmarks/HISTORY.md).
    public var maxOrder: Int? = nil
    /// Largest factorization cost (`ShiftedJacobian.factorCost`: Woodbury rank or dense
    /// dimension) at which `maxOrder` nil means 6. Above it the Jacobian is refreshed rarely
    /// (`jacobianMaxAge` 3× the cost) and refactored less often (`refactorRatio` 0.3), and
    /// BDF6's longer steps on that stale Newton matrix doubled the rejected steps: dual WN
    /// M = 160 440 → 843 (RHS 6,023 → 7,146), M = 400 356 → 675, dual GF M = 400 148 → 270.
    public static let orderSixFactorCost = 100
    /// Newton iterations per attempt.
    public var newtonMaxIterations = 4
    /// Newton convergence: the iteration has converged when the estimated
    /// remaining error `min(1, crate)·‖Δy‖` is at most this fraction of the
    /// local error tolerance, i.e. `min(1, crate)·‖Δy‖·C_k ≤ newtonFraction`
    /// (GSL msbdf's test with its 0.1; `crate` is the contraction estimate,
    /// carried across steps as in CVODE so that one iteration can suffice).
    public var newtonFraction = 0.1
    /// Largest pair of successive Newton corrections (in error-weighted
    /// max-norm units, where the local error test is 1) accepted as the rounding
    /// floor when the iteration stops contracting. That floor grows with h
    /// (`c = h/α` multiplies the rounding error of f, undamped along
    /// near-null directions of J such as WN's scale invariance); a strict
    /// value caps the step there (WN η = 0.05: 0.05 gave 65k steps, 0.5 14k).
    public var noiseTolerance = 0.5
    /// Steps after which the Newton contraction estimate is measured afresh
    /// (a second iteration is forced), as CVODE re-sets up every 20 steps.
    public var rateRefresh = 20
    /// Accepted steps after which the Jacobian is evaluated afresh even though Newton
    /// still converges (CVODE re-evaluates after 51); nil: `max(50, 3·factorCost)`, so
    /// that large problems, whose Jacobian and factorization cost grows with `factorCost`
    /// (the Woodbury rank or dense dimension: M or M + 1 here) against an RHS, refresh
    /// rarely. Without an age limit a stale Jacobian can hold the step at the edge of
    /// BDF5's stability for good: WN in dual coordinates (M = 25, N = 100, η_g = 0.01,
    /// α = 0.03) alternated local errors 0.5 / 0.06 at h ≈ 3.1 and ran out of 2 million
    /// steps at t = 6e6 (loss 1.6e-13) on the Jacobian of its second step; with the limit
    /// it converges in 4,952 steps. On the bench problems fresher Jacobians also cut the
    /// RHS evaluations by 10–38% (Benchmarks/PROFILE.md).
    public var jacobianMaxAge: Int? = nil
    /// Refactor when `σ/σ_f` leaves `[1/(1+r), 1+r]`; nil: 0.1 when the
    /// factorization cost (`ShiftedJacobian.factorCost`: the Woodbury rank k,
    /// or the dense dimension) is at most 100, else 0.3 (CVODE's). A Woodbury
    /// factorization costs about k/2 RHS evaluations, so a stale σ (slower
    /// Newton, more rejected steps) pays off only for large k. Measured (GF, wnflow bench):
    /// M = 40, 0.1 vs 0.3: 1,657 vs 1,930 steps, 0.016 vs 0.019 s;
    /// M = 500: 0.1 / 0.2 / 0.3: 8.5 / 6.8 / 6.2 s.
    public var refactorRatio: Double? = nil
    /// Smallest and largest factor `h_new/h`.
    public var minFactor = 0.2, maxFactor = 10.0
    /// Called after every accepted step with `t` and the solution; it may translate the
    /// solution in place by a constant, together with a matching change of the system's own
    /// coordinates (`DualSolver`'s re-centering). The interpolating polynomial moves with
    /// it: only its constant term (`D[0]`) changes, and the Jacobian and its factorization
    /// stay valid.
    public var stateTranslation: ((Double, UnsafeMutableBufferPointer<Double>) -> Void)?
    /// Called after every accepted step, before the observers, with the new solution; it may
    /// move it onto an invariant manifold of the flow (a projection method: Hairer, Lubich &
    /// Wanner, *Geometric Numerical Integration* §IV.4; CVODE's `CVodeSetProjFn`). Only the
    /// solution row `D[0]` changes, so the whole interpolating polynomial moves by the
    /// (rounding-sized) correction; the order of the method is kept.
    public var projection: ((UnsafeMutableBufferPointer<Double>) -> Void)?
    /// The norm of a local error `v` of the state `y` in place of the weighted max norm
    /// `max_i |v_i|/(atol + rtol|y_i|)` (1 is the tolerance); `y` is the state the scale is
    /// taken at (the prediction in the Newton iteration, the new solution afterwards).
    /// `DualSolver` measures there the error of the weights the state stands for.
    public var errorNormOverride: ((_ v: UnsafePointer<Double>, _ y: UnsafePointer<Double>) -> Double)?
    /// A cheap upper bound on `errorNormOverride` (never below it) for the Newton iteration's
    /// convergence test, divided there by the factor `b/n ∈ [1, maxBoundRatio]` by which it
    /// overstated the last error estimate: Newton then runs without the override's cost
    /// (`DualSolver`: a mat-vec per iteration), the error estimate in the override itself,
    /// except between order selections where the bound alone shows the error within the
    /// tolerance (the same acceptance as the norm's).
    public var errorNormBound: ((_ v: UnsafePointer<Double>, _ y: UnsafePointer<Double>) -> Double)?
    /// Cap on that factor: a Newton correction whose bound overstates it less than the error
    /// estimate's did is still held to `maxBoundRatio` times the test's tolerance.
    public var maxBoundRatio = 10.0
    /// How far a new state lies relative to the range its coordinates hold (above 1: outside);
    /// such a step is rejected and shortened like one whose error is too large. `DualSolver`:
    /// `‖μ‖∞` against the range where μ's rounding stays within the tolerance (WN) or the
    /// weights within double range (GF).
    public var stateReach: ((UnsafePointer<Double>) -> Double)?
    /// Whether `stateReach` is measured against the system's last RHS evaluation
    /// (`DualPowerGradientSystem.stepReach`: how far `x^{2−L}` shrinks from there). Then a
    /// prediction found out of reach is measured again after evaluating `f` at the step's
    /// start, unless the last evaluation was there: after a rejected attempt it is at an
    /// iterate or the end of that attempt. Without that, a failed first step of GF at L = 3
    /// or 5 (x₀ up to 15) left a reference from which even the start itself lay out of reach
    /// (1.4), and the retries shrank h to 4e-323.
    public var reachReadsLastEvaluation = false
    /// Shift cap and dense-fallback size of the linear solver.
    public var maxShifted = 32, denseLimit = 1000
    /// Check every Woodbury solve by its residual, refine it, and replace the factorization
    /// by a dense LU where refinement does not converge (`ShiftedLowRankSolver.checksResidual`).
    public var checkedSolves = false

    /// - Throws: `ODEError.invalidOptions` for bad options or dimension 0,
    ///   `ODEError.jacobianUnavailable` for a system without a Jacobian.
    public init(system: any ODESystem, options: ODEOptions) throws {
        try options.validate()
        guard system.dimension > 0 else { throw ODEError.invalidOptions("the system has dimension 0") }
        guard system is any LowRankJacobianSystem || system.hasJacobian else { throw ODEError.jacobianUnavailable }
        self.system = system
        self.options = options
    }

    // NDF coefficients (κ of Shampine & Reichelt; orders 5 and 6 are plain BDF).
    private static let kappa: [Double] = [0, -0.1850, -1.0 / 9.0, -0.0823, -0.0415, 0, 0]
    /// γ_k = Σ_{j≤k} 1/j.
    private static let gammaK: [Double] = {
        var g: [Double] = [0]
        for k in 1...6 { g.append(g[k - 1] + 1 / Double(k)) }
        return g
    }()
    private static let alphaK: [Double] = {
        var a: [Double] = []
        for k in 0...6 { a.append((1 - kappa[k]) * gammaK[k]) }
        return a
    }()
    private static let errorConst: [Double] = {
        var e: [Double] = []
        for k in 0...6 {
            let inv: Double = 1 / Double(k + 1)
            e.append(kappa[k] * gammaK[k] + inv)
        }
        return e
    }()

    public func integrate(from t0: Double, y0: [Double], to t1: Double, saveTimes: [Double],
                          observers: [any StepObserver]) -> ODERun {
        let n = system.dimension
        var stats = ODEStatistics()
        if let invalid = invalidInputRun(dimension: n, t0: t0, y0: y0, t1: t1) { return invalid }
        var saves = SaveSchedule(saveTimes, from: t0, to: t1)
        var t = t0
        // The time's low-order part: t + tLo is the time, so that steps below t's own
        // resolution still add up (a transition of O(1) time units at t = 7.7e11, where
        // ulp(t) = 1.2e-4: WN, L = 5, after a plateau; `minStep`).
        var tLo = 0.0
        // Whether the system's last RHS evaluation was at the current step's start (D[0]).
        var lastEvaluationAtStart = false
        let linear: any ShiftedJacobian = if let structured = system as? any LowRankJacobianSystem {
            LowRankShiftedJacobian(system: structured, maxShifted: maxShifted, denseLimit: denseLimit,
                                   checksResidual: checkedSolves)
        } else {
            DenseShiftedJacobian(system: system)
        }
        // A small factorization: refactored at every 10% change of σ, and (real spectra) BDF6.
        let smallFactor = linear.factorCost <= Self.orderSixFactorCost
        let maxK = min(max(maxOrder ?? (system.jacobianSpectrumIsReal && smallFactor ? 6 : 5), 1), 6)
        let rows = maxK + 3

        // D (rows × n), then y_pred, y_new, ψ, d, f, scale, dy, dfdt, change_D scratch (maxK+1 rows).
        let total = (rows + 8 + maxK + 1) * n
        let buf = UnsafeMutablePointer<Double>.allocate(capacity: total)
        defer { buf.deallocate() }
        buf.initialize(repeating: 0, count: total)
        let D = buf
        let yPred = buf + rows * n, yNew = yPred + n, psi = yNew + n, dAcc = psi + n
        let f = dAcc + n, scale = f + n, dy = scale + n, dfdt = dy + n, tmp = dfdt + n
        for i in 0..<n { D[i] = y0[i] }

        func state() -> [Double] { Array(UnsafeBufferPointer(start: D, count: n)) }
        func finish(_ termination: ODETermination, _ failure: (any Error)? = nil) -> ODERun {
            return ODERun(t: t, y: state(), stats: stats, termination: termination, failure: failure)
        }
        func rhs(_ time: Double, _ at: UnsafeMutablePointer<Double>, _ out: UnsafeMutablePointer<Double>) throws {
            stats.rhsEvaluations += 1
            try system.rhs(t: time, y: UnsafeBufferPointer(start: at, count: n),
                           dydt: UnsafeMutableBufferPointer(start: out, count: n))
        }
        // The optional closures, unwrapped once with a flag each: a call through an optional
        // closure retains and releases its context around the call (about 4 pairs a step,
        // 1.8% of a GF dual run at M = 40).
        let hasOverride = errorNormOverride != nil, hasBound = hasOverride && self.errorNormBound != nil
        let hasReach = self.stateReach != nil, maxBoundRatio = max(1, self.maxBoundRatio)
        let override = errorNormOverride ?? { _, _ in .nan }, errorNormBound = self.errorNormBound ?? { _, _ in .nan }
        let stateReach = self.stateReach ?? { _ in 0 }
        // How far the bound overstates the norm, from the last error estimate (≤ maxBoundRatio).
        var boundRatio = 1.0
        // The state `scale` was last taken at (`yPred` or `yNew`).
        var scaleState = yPred
        /// The weighted max norm `max_i |c·v_i|/(atol + rtol|y_i|)` of GSL's
        /// standard control (an RMS norm, as in CVODE or scipy, lets an error
        /// concentrated in the few support entries pass √N times larger), or the override.
        func errorNorm(_ v: UnsafeMutablePointer<Double>, times c: Double = 1) -> Double {
            if hasOverride { return abs(c) * override(v, scaleState) }
            var s = 0.0
            for i in 0..<n { s = max(s, abs(v[i] / scale[i])) }
            return abs(c) * s
        }
        // 3 × (7 × 7) scratch for the R, U and RU matrices of `rescaleDifferences` (order ≤ 6).
        let rScratch = UnsafeMutablePointer<Double>.allocate(capacity: 3 * 49)
        defer { rScratch.deallocate() }
        /// Rescales D[0...order] from step h to step factor·h (same polynomial).
        func rescaleDifferences(order: Int, factor: Double) {
            if factor == 1 { return }
            let k = order + 1
            func rMatrix(_ fac: Double, into m: UnsafeMutablePointer<Double>) {
                for i in 0..<(k * k) { m[i] = 0 }
                for j in 0..<k { m[j] = 1 }
                for i in 1..<max(k, 1) { for j in 1..<k { m[i * k + j] = (Double(i) - 1 - fac * Double(j)) / Double(i) } }
                for i in 1..<max(k, 1) { for j in 0..<k { m[i * k + j] *= m[(i - 1) * k + j] } }
            }
            let r = rScratch, u = rScratch + 49, ru = rScratch + 98
            rMatrix(factor, into: r)
            rMatrix(1, into: u)
            for i in 0..<k { for j in 0..<k {
                var s = 0.0
                for l in 0..<k { s += r[i * k + l] * u[l * k + j] }
                ru[i * k + j] = s
            } }
            // D_new[j] = Σ_i RU[i][j] D[i].
            tmp.update(from: D, count: k * n)
            for j in 0..<k {
                let out = D + j * n
                for p in 0..<n { out[p] = 0 }
                for i in 0..<k {
                    let c = ru[i * k + j]
                    if c == 0 { continue }
                    let src = tmp + i * n
                    for p in 0..<n { out[p] += c * src[p] }
                }
            }
        }

        if notify(observers, AcceptedStep(t: t, y: UnsafeBufferPointer(start: D, count: n), h: 0, saveIndex: nil, stepNumber: 0)) {
            return finish(.stoppedByObserver)
        }

        let refactorRatio = self.refactorRatio ?? (smallFactor ? 0.1 : 0.3)
        let maxAge = jacobianMaxAge ?? max(50, 3 * linear.factorCost)
        let span = t1 - t0
        let hmax = min(options.maxStepSize ?? span, span)
        let rtol = options.rtol, atol = options.atol
        // The settings the step loop reads, as locals: each read of a class `var` there is a
        // dynamic exclusivity check in the Swift runtime (about 4 a step).
        let newtonMaxIterations = self.newtonMaxIterations, newtonFraction = self.newtonFraction
        let noiseTolerance = self.noiseTolerance, rateRefresh = self.rateRefresh
        let minFactor = self.minFactor, maxFactor = self.maxFactor
        let hasProjection = self.projection != nil, hasTranslation = self.stateTranslation != nil
        let projection = self.projection ?? { _ in }, stateTranslation = self.stateTranslation ?? { _, _ in }
        let reachReadsLastEvaluation = self.reachReadsLastEvaluation
        var h: Double
        do {
            if let h0 = options.initialStep {
                h = h0
            } else {
                h = try estimateInitialStep(system: system, t0: t0, y0: y0, t1: t1, rtol: rtol, atol: atol)
                stats.rhsEvaluations += 1
            }
            h = min(h, hmax)
            try rhs(t, D, f)
            lastEvaluationAtStart = true
        } catch {
            return finish(.failed, error)
        }
        for i in 0..<n { D[n + i] = h * f[i] }
        var order = 1
        var equalSteps = 0
        var haveJacobian = false
        var jacobianAge = 0
        var factored = false
        var sigmaF = 0.0
        // Newton contraction estimate carried across steps (CVODE's `crate`):
        // with it a step may converge after one iteration. Reset to 1 (no
        // estimate) when the matrix changes and every `rateRefresh` steps.
        var crate = 1.0
        var stepsSinceRate = 0
        var nonFiniteInARow = 0
        var factorFailuresInARow = 0
        var lastRejectNonFinite = false

        while true {
            if stats.acceptedSteps >= options.maxSteps { return finish(.maxSteps) }
            let target = saves.target(orEnd: t1)
            let hBefore = h
            // Limit and land on the target.
            var hTry = min(h, hmax)
            var landing = false
            /// Retries the step at `factor·h` (the history rescaled, no landing).
            func shorten(by factor: Double) {
                rescaleDifferences(order: order, factor: factor)
                h *= factor
                equalSteps = 0
                landing = false
            }
            // What is left to the target of the time t + tLo.
            let remaining = timeLeft(to: target, t, tLo)
            if hTry * 1.0001 >= remaining {
                hTry = remaining
                landing = true
            } else if 2 * hTry > remaining {
                hTry = remaining / 2
            }
            if hTry != h {
                rescaleDifferences(order: order, factor: hTry / h)
                equalSteps = 0
                h = hTry
            }
            var jacCurrent = false
            if jacobianAge >= maxAge { haveJacobian = false }
            var accepted = false
            var nIter = 0
            var errNorm = 0.0
            attempt: while !accepted {
                // Ten units of the time's resolution (t + tLo carries about 2·53 bits), not of
                // t's: steps below ulp(t) still move the time through tLo. With 10·ulp(t) a WN
                // run (L = 5, M = 19, N = 35, η_g = 0.2 from 0.3) failed in the jump that ends
                // its plateau at t = 7.7e11 (steps of 1e-3 against ulp(t) = 1.2e-4), where bsimp
                // and msbdf converge.
                let minStep = minimumStep(at: t)
                if !(h > 0) || h < minStep {
                    if lastRejectNonFinite { return finish(.failed, ODEError.nonFiniteState(t: t)) }
                    return finish(.failed, ODEError.stepSizeUnderflow(t: t, h: h))
                }
                let tNew = landing ? target : t + (tLo + h)
                // Predictor and ψ.
                for p in 0..<n { yPred[p] = 0; psi[p] = 0 }
                for i in 0...order {
                    let row = D + i * n
                    for p in 0..<n { yPred[p] += row[p] }
                }
                let a = Self.alphaK[order]
                for i in 1...order {
                    let g = Self.gammaK[i] / a
                    let row = D + i * n
                    for p in 0..<n { psi[p] += g * row[p] }
                }
                // A prediction past the state's range: shorten the step before solving.
                if hasReach, case var reach = stateReach(yPred), reach > 1 {
                    if reachReadsLastEvaluation && !lastEvaluationAtStart {
                        do { try rhs(t, D, f) } catch { return finish(.failed, error) }
                        lastEvaluationAtStart = true
                        reach = stateReach(yPred)
                    }
                    if reach > 1 {
                        shorten(by: max(minFactor, 0.5 / reach))
                        continue attempt
                    }
                }
                for p in 0..<n { scale[p] = atol + rtol * abs(yPred[p]) }
                scaleState = yPred
                let c = h / a
                let sigma = 1 / c
                var converged = false
                var sawNonFinite = false
                newton: while true {
                    do {
                        if !haveJacobian {
                            stats.jacobianEvaluations += 1
                            let at = jacCurrent || stats.acceptedSteps > 0 ? yPred : D
                            try linear.evaluate(t: jacCurrent || stats.acceptedSteps > 0 ? tNew : t,
                                                y: UnsafeBufferPointer(start: at, count: n),
                                                dfdt: UnsafeMutableBufferPointer(start: dfdt, count: n))
                            haveJacobian = true
                            jacobianAge = 0
                            jacCurrent = true
                            factored = false
                            crate = 1
                        }
                        let ratio = sigma / sigmaF
                        if !factored || ratio > 1 + refactorRatio || ratio < 1 / (1 + refactorRatio) {
                            stats.factorizations += 1
                            factored = false
                            try linear.factor(sigma: sigma)
                            factored = true
                            crate = 1
                            sigmaF = sigma
                            factorFailuresInARow = 0
                        }
                    } catch is LowRankSolveError {
                        factorFailuresInARow += 1
                        if factorFailuresInARow > 10 { return finish(.failed, ODEError.stepSizeUnderflow(t: t, h: h)) }
                        break newton
                    } catch {
                        return finish(.failed, error)
                    }
                    let corr = 2 * sigma * sigmaF / (sigma + sigmaF)
                    // Simplified Newton on y − c f(tNew, y) = ψ, from y_pred.
                    yNew.update(from: yPred, count: n)
                    for p in 0..<n { dAcc[p] = 0 }
                    var oldNorm = -1.0
                    nIter = 0
                    if stepsSinceRate >= rateRefresh { crate = 1 }
                    // Newton tolerance of this order (GSL msbdf: 0.1/C_k).
                    let newtonTol = newtonFraction / Self.errorConst[order]
                    for k in 0..<newtonMaxIterations {
                        nIter = k + 1
                        do { try rhs(tNew, yNew, f) } catch { return finish(.failed, error) }
                        lastEvaluationAtStart = false
                        var finite = true
                        for p in 0..<n where !f[p].isFinite { finite = false; break }
                        if !finite { sawNonFinite = true; break }
                        for p in 0..<n { dy[p] = c * f[p] - psi[p] - dAcc[p] }
                        linear.solve(dy)
                        for p in 0..<n { dy[p] *= corr }
                        // With a cheap bound on the norm the iteration runs in the bound, divided by
                        // how far it overstated the last error estimate (at most `maxBoundRatio`).
                        let dyNorm = if hasBound { errorNormBound(dy, scaleState) / boundRatio } else { errorNorm(dy) }
                        if !dyNorm.isFinite { sawNonFinite = true; break }
                        let rate: Double? = oldNorm >= 0 ? dyNorm / oldNorm : nil
                        if let r = rate {
                            crate = max(0.3 * crate, r)
                            stepsSinceRate = 0
                        }
                        // Converged when the contraction-weighted correction is
                        // below the tolerance (GSL msbdf's test), first iteration
                        // included when a contraction estimate is carried over.
                        if min(crate, 1) * dyNorm <= newtonTol {
                            for p in 0..<n { yNew[p] += dy[p]; dAcc[p] += dy[p] }
                            converged = true
                            break
                        }
                        if let r = rate, r >= 1 || pow(r, Double(newtonMaxIterations - k)) / (1 - r) * dyNorm > newtonTol {
                            // Both corrections already far below the error
                            // tolerance: the iterate sits at the rounding floor
                            // of c·f (which grows with h); accept it.
                            if dyNorm < max(newtonTol, noiseTolerance) && oldNorm < max(newtonTol, noiseTolerance) {
                                for p in 0..<n { yNew[p] += dy[p]; dAcc[p] += dy[p] }
                                converged = true
                            }
                            break
                        }
                        for p in 0..<n { yNew[p] += dy[p]; dAcc[p] += dy[p] }
                        oldNorm = dyNorm
                    }
                    if converged { break newton }
                    // Not converged: exact σ, then a fresh Jacobian, then give up.
                    if sigmaF != sigma { factored = false; continue newton }
                    if !jacCurrent { haveJacobian = false; continue newton }
                    break newton
                }
                if !converged {
                    stats.rejectedSteps += 1
                    lastRejectNonFinite = sawNonFinite
                    shorten(by: 0.5)
                    continue attempt
                }
                // Error estimate.
                var finite = true
                for p in 0..<n {
                    if !yNew[p].isFinite { finite = false; break }
                    scale[p] = atol + rtol * abs(yNew[p])
                }
                scaleState = yNew
                // Between order and step selections the estimate only decides acceptance: a
                // bound within the tolerance accepts as the norm would, without the norm.
                let selects = equalSteps + 1 >= order + 1
                let bounded: Double? = !finite || selects || !hasBound ? nil : abs(Self.errorConst[order]) * errorNormBound(dAcc, scaleState)
                if let bounded, bounded <= 1 {
                    errNorm = bounded
                } else {
                    errNorm = finite ? errorNorm(dAcc, times: Self.errorConst[order]) : .nan
                    if hasBound, errNorm > 0, errNorm.isFinite {
                        boundRatio = min(maxBoundRatio, max(1, (bounded ?? abs(Self.errorConst[order]) * errorNormBound(dAcc, scaleState)) / errNorm))
                    }
                }
                if !errNorm.isFinite {
                    nonFiniteInARow += 1
                    if nonFiniteInARow > 10 { return finish(.failed, ODEError.nonFiniteState(t: tNew)) }
                    stats.rejectedSteps += 1
                    lastRejectNonFinite = true
                    shorten(by: 0.25)
                    continue attempt
                }
                nonFiniteInARow = 0
                let safety = 0.9 * Double(2 * newtonMaxIterations + 1) / Double(2 * newtonMaxIterations + nIter)
                // A new state past its range: shorten the step (the move is about linear in h).
                if hasReach, case let reach = stateReach(yNew), reach > 1 {
                    stats.rejectedSteps += 1
                    lastRejectNonFinite = false
                    shorten(by: max(minFactor, 0.5 / reach))
                    continue attempt
                }
                if errNorm > 1 {
                    stats.rejectedSteps += 1
                    lastRejectNonFinite = false
                    shorten(by: max(minFactor, safety * pow(errNorm, -1 / Double(order + 1))))
                    continue attempt
                }
                accepted = true
                lastRejectNonFinite = false
                // Accept: update the differences (D^{k+1} y_n = d, etc.).
                let dk1 = D + (order + 1) * n, dk2 = D + (order + 2) * n
                for p in 0..<n { dk2[p] = dAcc[p] - dk1[p]; dk1[p] = dAcc[p] }
                for i in stride(from: order, through: 0, by: -1) {
                    let row = D + i * n, next = D + (i + 1) * n
                    for p in 0..<n { row[p] += next[p] }
                }
                if landing {
                    t = target
                    tLo = 0
                } else {
                    advanceTime(&t, &tLo, by: h)
                }
                stats.acceptedSteps += 1
                jacobianAge += 1
                stepsSinceRate += 1
                equalSteps += 1
                if hasProjection { projection(UnsafeMutableBufferPointer(start: D, count: n)) }
                // A change of coordinates by a constant moves the solution row only.
                if hasTranslation { stateTranslation(t, UnsafeMutableBufferPointer(start: D, count: n)) }
                let hit = landing ? saves.hit(at: t) : nil
                let stop = notify(observers, AcceptedStep(t: t, y: UnsafeBufferPointer(start: D, count: n),
                                                          h: h, saveIndex: hit, stepNumber: stats.acceptedSteps))
                saves.advance(past: t, low: tLo)
                if stop { return finish(.stoppedByObserver) }
                if timeReached(t1, t, tLo) { return finish(.reachedEnd) }
                // Order and step selection after order + 1 equal steps.
                if equalSteps >= order + 1 {
                    let errM = order > 1 ? errorNorm(D + order * n, times: Self.errorConst[order - 1]) : Double.infinity
                    let errP = order < maxK ? errorNorm(D + (order + 2) * n, times: Self.errorConst[order + 1]) : Double.infinity
                    let facM = pow(errM, -1 / Double(order)), fac0 = pow(errNorm, -1 / Double(order + 1))
                    let facP = pow(errP, -1 / Double(order + 2))
                    var best = fac0, delta = 0
                    if facM > best { best = facM; delta = -1 }
                    if facP > best { best = facP; delta = 1 }
                    order += delta
                    let factor = min(maxFactor, safety * best)
                    rescaleDifferences(order: order, factor: factor)
                    h *= factor
                    equalSteps = 0
                } else if landing && hit != nil && h < hBefore {
                    // A step shortened to land on a save time: return to the
                    // step size from before (bounded growth).
                    let factor = min(hBefore / h, maxFactor)
                    rescaleDifferences(order: order, factor: factor)
                    h *= factor
                    equalSteps = 0
                }
            }
        }
    }
}
