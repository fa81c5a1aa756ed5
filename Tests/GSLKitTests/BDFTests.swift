import Foundation
import Testing
@testable import GSLKit

/// `y' = J (y − g(t)) + g'(t)`, `g_i(t) = 1 + sin(t + 0.1 i)`, with a stiff
/// diagonal-plus-low-rank `J` (eigenvalues from about −1 to −10⁴): the exact
/// solution from `y₀ = g(0)` is `g(t)`. Hooks to throw or produce NaN.
private final class ForcedLinear: LowRankJacobianSystem {
    let jac: LowRankJacobian
    var homogeneous = false
    var throwAfter: Double?
    var nanAfter: Double?
    struct Boom: Error {}
    init(n: Int = 30, k1: Int = 4, m: Int = 20, offset: Int = 5, k2: Int = 2) {
        var state: UInt64 = 7
        func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53) * 2 - 1
        }
        var r = Matrix(rows: k1, cols: m)
        for i in 0..<(k1 * m) { r.storage[i] = next() }
        jac = LowRankJacobian(dimension: n, gram: r, gramOffset: offset, explicitRank: k2)
        for i in 0..<n { jac.diagonal[i] = -pow(10, 4 * Double(i) / Double(n - 1)) }
        jac.gramWeight = -3
        for i in 0..<m { jac.gramColumnScale[i] = 1 + 0.5 * next() }
        for i in 0..<(n * k2) { jac.u[i] = 0.1 * next(); jac.v[i] = 0.1 * next() }
    }
    var dimension: Int { jac.dimension }
    func g(_ t: Double, _ i: Int) -> Double { homogeneous ? 0 : 1 + sin(t + 0.1 * Double(i)) }
    func gPrime(_ t: Double, _ i: Int) -> Double { homogeneous ? 0 : cos(t + 0.1 * Double(i)) }
    func exact(_ t: Double) -> [Double] { (0..<dimension).map { g(t, $0) } }
    func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws {
        if let ta = throwAfter, t > ta { throw Boom() }
        let e = (0..<dimension).map { y[$0] - g(t, $0) }
        let out = jac.apply(e)
        for i in 0..<dimension { dydt[i] = out[i] + gPrime(t, i) }
        if let na = nanAfter, t > na { dydt[0] = .nan }
    }
    func makeLowRankJacobian() -> LowRankJacobian { jac.sameShape() }
    func lowRankJacobian(t: Double, y: UnsafeBufferPointer<Double>, into j: LowRankJacobian,
                         dfdt: UnsafeMutableBufferPointer<Double>) throws {
        jac.copyValues(into: j)
        // ∂f/∂t = −J g'(t) + g''(t) (the system is not autonomous unless homogeneous).
        let jg = jac.apply((0..<dimension).map { gPrime(t, $0) })
        for i in 0..<dimension { dfdt[i] = homogeneous ? 0 : -jg[i] - sin(t + 0.1 * Double(i)) }
    }
}

private func relErr(_ a: [Double], _ b: [Double]) -> Double {
    var num = 0.0, den = 0.0
    for i in 0..<a.count { num = max(num, abs(a[i] - b[i])); den = max(den, abs(b[i])) }
    return num / den
}

@Suite struct BDFSolverTests {
    @Test func stiffLinearMatchesExactSolution() throws {
        let sys = ForcedLinear()
        let s = try BDFSolver(system: sys, options: ODEOptions(rtol: 1e-8, atol: 1e-12))
        let run = s.integrate(from: 0, y0: sys.exact(0), to: 5)
        #expect(run.termination == .reachedEnd)
        #expect(run.t == 5)
        let e = relErr(run.y, sys.exact(5))
        print("BDF forced stiff linear: rel error \(e), \(run.stats)")
        #expect(e < 1e-7)
        // Jacobian reuse: a constant Jacobian is rarely re-evaluated.
        #expect(run.stats.jacobianEvaluations < run.stats.acceptedSteps / 10)
        #expect(run.stats.factorizations < run.stats.acceptedSteps / 2)
    }

    /// `saveIndex` is the index in the caller's array (unsorted, with times
    /// outside (t0, t1]), for both structured solvers as for `ODEIntegrator`.
    @Test func saveIndicesReferToCallerArray() throws {
        // Homogeneous: autonomous, so the zero dfdt that Rosenbrock uses is exact.
        let sys = ForcedLinear()
        sys.homogeneous = true
        let y0 = (0..<sys.dimension).map { 1 + 0.1 * Double($0 % 7) }
        let saves = [3.0, -1, 0.5, 0, 1, 9]
        let solvers: [any ODESolver] = [try BDFSolver(system: sys, options: ODEOptions(rtol: 1e-8, atol: 1e-12)),
                                        try RosenbrockSolver(system: sys, options: ODEOptions(rtol: 1e-8, atol: 1e-12))]
        for s in solvers {
            let rec = Recorder()
            let run = s.integrate(from: 0, y0: y0, to: 5, saveTimes: saves, observers: [rec])
            #expect(run.termination == .reachedEnd)
            let hits = rec.entries.compactMap { e in e.saveIndex.map { ($0, e.t) } }
            #expect(hits.map(\.0) == [2, 4, 0], "\(type(of: s))")
            #expect(hits.map(\.1) == [0.5, 1, 3], "\(type(of: s))")
        }
    }

    @Test func homogeneousDecayMatchesRosenbrock() throws {
        let sys = ForcedLinear()
        sys.homogeneous = true
        let y0 = (0..<sys.dimension).map { 1 + 0.1 * Double($0 % 7) }
        let bdf = try BDFSolver(system: sys, options: ODEOptions(rtol: 1e-8, atol: 1e-14))
            .integrate(from: 0, y0: y0, to: 2)
        let ref = try RosenbrockSolver(system: sys, options: ODEOptions(rtol: 1e-12, atol: 1e-16))
            .integrate(from: 0, y0: y0, to: 2)
        #expect(bdf.termination == .reachedEnd)
        let e = relErr(bdf.y, ref.y)
        print("BDF homogeneous decay vs Rodas4: rel error \(e), \(bdf.stats)")
        #expect(e < 1e-6)
    }

    @Test func hitsSaveTimesExactly() throws {
        let sys = ForcedLinear()
        let saves = [0.1, 0.25, 1.0 / 3.0, 0.7, 1.0, 2.5]
        var seen: [(Int, Double)] = []
        var initial = 0
        var values: [[Double]] = []
        let obs = ClosureObserver { step in
            if step.isInitial { initial += 1 }
            if let i = step.saveIndex { seen.append((i, step.t)); values.append(Array(step.y)) }
            return .proceed
        }
        let s = try BDFSolver(system: sys, options: ODEOptions(rtol: 1e-9, atol: 1e-13))
        let run = s.integrate(from: 0, y0: sys.exact(0), to: 3, saveTimes: saves.reversed() + [-1, 7], observers: [obs])
        #expect(run.termination == .reachedEnd)
        #expect(run.t == 3)
        #expect(initial == 1)
        #expect(seen.map(\.1) == saves)
        for (k, t) in saves.enumerated() where k < values.count { #expect(relErr(values[k], sys.exact(t)) < 1e-7) }
    }

    @Test func observerStopsTheRun() throws {
        let sys = ForcedLinear()
        var calls = 0
        let obs = ClosureObserver { step in
            calls += 1
            return step.stepNumber >= 3 ? .stop : .proceed
        }
        let s = try BDFSolver(system: sys, options: ODEOptions(rtol: 1e-8, atol: 1e-12))
        let run = s.integrate(from: 0, y0: sys.exact(0), to: 100, saveTimes: [], observers: [obs])
        #expect(run.termination == .stoppedByObserver)
        #expect(run.stats.acceptedSteps == 3)
        #expect(calls == 4)
        #expect(run.t < 100)
    }

    @Test func throwingRightHandSideFails() throws {
        let sys = ForcedLinear()
        sys.throwAfter = 0.5
        let s = try BDFSolver(system: sys, options: ODEOptions(rtol: 1e-8, atol: 1e-12))
        let run = s.integrate(from: 0, y0: sys.exact(0), to: 2)
        #expect(run.termination == .failed)
        #expect(run.failure is ForcedLinear.Boom)
        #expect(run.t <= 0.5 && run.t > 0)
    }

    @Test func nonFiniteStateFails() throws {
        let sys = ForcedLinear()
        sys.nanAfter = 0.5
        let s = try BDFSolver(system: sys, options: ODEOptions(rtol: 1e-8, atol: 1e-12))
        let run = s.integrate(from: 0, y0: sys.exact(0), to: 2)
        #expect(run.termination == .failed)
        if case .nonFiniteState? = run.failure as? ODEError {} else { Issue.record("expected nonFiniteState, got \(String(describing: run.failure))") }
        #expect(run.y.allSatisfy { $0.isFinite })
        #expect(run.t <= 0.5)
    }

    @Test func maxStepsHonoured() throws {
        let sys = ForcedLinear()
        let s = try BDFSolver(system: sys, options: ODEOptions(rtol: 1e-10, atol: 1e-14, maxSteps: 5))
        let run = s.integrate(from: 0, y0: sys.exact(0), to: 100)
        #expect(run.termination == .maxSteps)
        #expect(run.stats.acceptedSteps == 5)
    }

    @Test func invalidInputsFail() throws {
        let s = try BDFSolver(system: ForcedLinear(), options: ODEOptions())
        #expect(s.integrate(from: 0, y0: [1, 2], to: 1).termination == .failed)
        #expect(s.integrate(from: 1, y0: ForcedLinear().exact(0), to: 1).termination == .failed)
    }

    @Test func stiffScalarStaysStable() throws {
        final class Stiff: LowRankJacobianSystem {
            var dimension: Int { 1 }
            func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws {
                dydt[0] = -1e8 * (y[0] - cos(t))
            }
            func makeLowRankJacobian() -> LowRankJacobian { LowRankJacobian(dimension: 1) }
            func lowRankJacobian(t: Double, y: UnsafeBufferPointer<Double>, into j: LowRankJacobian,
                                 dfdt: UnsafeMutableBufferPointer<Double>) throws {
                j.diagonal[0] = -1e8
                dfdt[0] = 1e8 * -sin(t)
            }
        }
        let s = try BDFSolver(system: Stiff(), options: ODEOptions(rtol: 1e-8, atol: 1e-12))
        let run = s.integrate(from: 0, y0: [1], to: 10)
        #expect(run.termination == .reachedEnd)
        #expect(abs(run.y[0] - cos(10.0)) < 1e-7)
        #expect(run.stats.acceptedSteps < 2000)
    }
}

/// `y' = −(y − c(t))·k` with `c = cos t + offset`: a translation of y by s together with
/// `offset −= s` is a change of coordinates that leaves `y − offset` unchanged.
private final class ShiftedRelaxation: LowRankJacobianSystem {
    var offset = 0.0
    var dimension: Int { 1 }
    func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws {
        dydt[0] = -50 * (y[0] - cos(t) - offset)
    }
    func makeLowRankJacobian() -> LowRankJacobian { LowRankJacobian(dimension: 1) }
    func lowRankJacobian(t: Double, y: UnsafeBufferPointer<Double>, into j: LowRankJacobian,
                         dfdt: UnsafeMutableBufferPointer<Double>) throws {
        j.diagonal[0] = -50
        dfdt[0] = -50 * sin(t)
    }
}

@Suite struct BDFTranslationTests {
    /// `stateTranslation` moves only the constant term of the history: a run translated
    /// every 10 steps by 1000 follows the run that never is, step for step (absolute error
    /// control, as `DualSolver` uses, so that the tolerance does not move with y).
    @Test func translationFollowsTheSameSolution() throws {
        let options = ODEOptions(rtol: 1e-30, atol: 1e-10)
        let plain = try BDFSolver(system: ShiftedRelaxation(), options: options)
        let a = plain.integrate(from: 0, y0: [2], to: 20)
        let moved = ShiftedRelaxation()
        let s = try BDFSolver(system: moved, options: options)
        var count = 0
        s.stateTranslation = { _, y in
            count += 1
            guard count % 10 == 0 else { return }
            y[0] -= 1000
            moved.offset -= 1000
        }
        let b = s.integrate(from: 0, y0: [2], to: 20)
        #expect(count == b.stats.acceptedSteps && moved.offset <= -1000)
        #expect(abs(b.stats.acceptedSteps - a.stats.acceptedSteps) <= 2)
        // The state carries the rounding of |offset| (up to ~1e5: ~1e-11).
        #expect(abs((b.y[0] - moved.offset) - a.y[0]) <= 1e-9)
        // Both at the periodic solution (k² cos t + k sin t)/(k² + 1), k = 50.
        #expect(abs(a.y[0] - (2500 * cos(20.0) + 50 * sin(20.0)) / 2501) <= 1e-8)
    }
}

/// `y' = −50(y − t − offset)`: after a transient `y` drifts linearly, which BDF follows
/// exactly, so its steps grow without bound.
private final class Drift: LowRankJacobianSystem {
    var offset = 0.0
    var dimension: Int { 1 }
    func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws {
        dydt[0] = -50 * (y[0] - t - offset)
    }
    func makeLowRankJacobian() -> LowRankJacobian { LowRankJacobian(dimension: 1) }
    func lowRankJacobian(t: Double, y: UnsafeBufferPointer<Double>, into j: LowRankJacobian,
                         dfdt: UnsafeMutableBufferPointer<Double>) throws {
        j.diagonal[0] = -50
        dfdt[0] = 50
    }
}

@Suite struct BDFHookTests {
    /// `stateReach` keeps every accepted state within range, also where the solution drifts
    /// and the steps grow: translated back past 5, the state never passes 10 (it does
    /// without the hook), and the run still follows `y = t + offset − 1/50`.
    @Test(arguments: [false, true]) func stateReachBoundsEveryStep(limited: Bool) throws {
        let system = Drift()
        let s = try BDFSolver(system: system, options: ODEOptions(rtol: 1e-30, atol: 1e-10))
        var largest = 0.0
        s.stateTranslation = { _, y in
            largest = max(largest, abs(y[0]))
            guard y[0] > 5 else { return }
            let c = y[0].rounded(.down)
            y[0] -= c
            system.offset -= c
        }
        if limited { s.stateReach = { abs($0[0]) / 10 } }
        let run = s.integrate(from: 0, y0: [0], to: 1e6)
        #expect(run.termination == .reachedEnd)
        #expect(abs((run.y[0] - system.offset) - (1e6 - 0.02)) <= 1e-6 * 1e6)
        if limited {
            #expect(largest <= 10)
            #expect(run.stats.acceptedSteps > 10_000)
        } else {
            #expect(largest > 1000)
        }
    }

    /// `errorNormOverride` is measured at the state the scale is taken at: the standard
    /// weighted max norm given as an override reproduces the run exactly.
    @Test func errorNormOverrideSeesTheScaleState() throws {
        let options = ODEOptions(rtol: 1e-8, atol: 1e-12)
        let a = try BDFSolver(system: ShiftedRelaxation(), options: options).integrate(from: 0, y0: [2], to: 20)
        let s = try BDFSolver(system: ShiftedRelaxation(), options: options)
        s.errorNormOverride = { v, y in abs(v[0]) / (1e-12 + 1e-8 * abs(y[0])) }
        let b = s.integrate(from: 0, y0: [2], to: 20)
        #expect(a.y == b.y && a.stats.acceptedSteps == b.stats.acceptedSteps && a.stats.rhsEvaluations == b.stats.rhsEvaluations)
        // Newton in a cheap bound on the norm (here 3× it, scaled back by the last error
        // estimate's overstatement, at most 10): the same solution to within the tolerance.
        s.errorNormBound = { v, y in 3 * abs(v[0]) / (1e-12 + 1e-8 * abs(y[0])) }
        let c = s.integrate(from: 0, y0: [2], to: 20)
        #expect(c.termination == .reachedEnd && abs(c.y[0] - a.y[0]) <= 1e-8 * abs(a.y[0]) + 1e-12)
        s.errorNormBound = nil
        // A norm twice as strict takes more steps (the override is read).
        s.errorNormOverride = { v, y in 2 * abs(v[0]) / (1e-12 + 1e-8 * abs(y[0])) }
        #expect(s.integrate(from: 0, y0: [2], to: 20).stats.acceptedSteps > a.stats.acceptedSteps)
    }
}

/// `ForcedLinear` seen as a plain system with a dense Jacobian, so that
/// `BDFSolver` factors `σI − J` by LU (`DenseShiftedJacobian`).
private class DenseForced: ODESystem {
    let inner: ForcedLinear
    init(_ inner: ForcedLinear) { self.inner = inner }
    var dimension: Int { inner.dimension }
    var hasJacobian: Bool { true }
    func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws {
        try inner.rhs(t: t, y: y, dydt: dydt)
    }
    func jacobian(t: Double, y: UnsafeBufferPointer<Double>, dfdy: UnsafeMutableBufferPointer<Double>,
                  dfdt: UnsafeMutableBufferPointer<Double>) throws {
        let j = inner.makeLowRankJacobian()
        try inner.lowRankJacobian(t: t, y: y, into: j, dfdt: dfdt)
        let dense = j.dense()
        for i in 0..<dense.storage.count { dfdy[i] = dense.storage[i] }
    }
}

/// The same with a symmetric negative definite `J` (no explicit term): Cholesky.
private final class DenseForcedSymmetric: DenseForced, NegativeSemidefiniteJacobianSystem {}

@Suite struct DenseBDFTests {
    @Test(arguments: [false, true]) func denseJacobianMatchesExactSolution(symmetric: Bool) throws {
        let base = ForcedLinear(k2: symmetric ? 0 : 2)
        let sys: DenseForced = symmetric ? DenseForcedSymmetric(base) : DenseForced(base)
        let s = try BDFSolver(system: sys, options: ODEOptions(rtol: 1e-8, atol: 1e-12))
        let run = s.integrate(from: 0, y0: base.exact(0), to: 5)
        #expect(run.termination == .reachedEnd)
        #expect(relErr(run.y, base.exact(5)) < 1e-6)
        // Same steps as through the structured (Woodbury) path, up to rounding.
        let structured = try BDFSolver(system: base, options: ODEOptions(rtol: 1e-8, atol: 1e-12)).integrate(from: 0, y0: base.exact(0), to: 5)
        #expect(relErr(run.y, structured.y) < 1e-9)
    }

    /// The dense strategy factors a symmetric negative semidefinite J by
    /// Cholesky and any other by LU, and both solve (σI − J)x = b.
    @Test(arguments: [false, true]) func denseStrategyPicksTheFactorization(symmetric: Bool) throws {
        let base = ForcedLinear(k2: symmetric ? 0 : 2)
        let sys: DenseForced = symmetric ? DenseForcedSymmetric(base) : DenseForced(base)
        let strategy = DenseShiftedJacobian(system: sys)
        let n = sys.dimension
        var dfdt = [Double](repeating: 0, count: n)
        let y = base.exact(0)
        try y.withUnsafeBufferPointer { yb in try dfdt.withUnsafeMutableBufferPointer { try strategy.evaluate(t: 0, y: yb, dfdt: $0) } }
        try strategy.factor(sigma: 7)
        #expect(strategy.choleskyCount == (symmetric ? 1 : 0) && strategy.luCount == (symmetric ? 0 : 1))
        let b = (0..<n).map { Double($0 % 5) - 2 }
        var x = b
        x.withUnsafeMutableBufferPointer { strategy.solve($0.baseAddress!) }
        let jx = base.jac.apply(x)
        let residual = (0..<n).map { 7 * x[$0] - jx[$0] - b[$0] }
        #expect(residual.map(abs).max()! <= 1e-10 * b.map(abs).max()!)
    }

    @Test func systemWithoutJacobianIsRefused() throws {
        final class NoJac: ODESystem {
            var dimension: Int { 2 }
            func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws {
                dydt[0] = -y[0]; dydt[1] = -y[1]
            }
        }
        #expect(throws: ODEError.jacobianUnavailable) { try BDFSolver(system: NoJac(), options: ODEOptions()) }
    }
}

/// `y' = B(y − g(t)) + g'(t)`, `g_i(t) = 1 + sin(t + 0.1 i)`, with `B = Q diag(λ) Qᵀ`
/// symmetric (λ from −1 to −10⁴, `Q` a Householder reflection): exact solution `g(t)`.
private func forcedSymmetric(n: Int = 12, realSpectrum: Bool) -> (FnSystem, (Double) -> [Double]) {
    let v = (0..<n).map { 1 + 0.3 * Double($0 % 5) }
    let vv = v.reduce(0) { $0 + $1 * $1 }
    var b = [Double](repeating: 0, count: n * n)
    for i in 0..<n { for j in 0..<n {
        var s = 0.0
        for k in 0..<n {
            let qik = (i == k ? 1 : 0) - 2 * v[i] * v[k] / vv, qjk = (j == k ? 1 : 0) - 2 * v[j] * v[k] / vv
            s += qik * -pow(10, 4 * Double(k) / Double(n - 1)) * qjk
        }
        b[i * n + j] = s
    } }
    func g(_ t: Double) -> [Double] { (0..<n).map { 1 + sin(t + 0.1 * Double($0)) } }
    let sys = FnSystem(dimension: n, rhs: { t, y, dydt in
        for i in 0..<n {
            var s = cos(t + 0.1 * Double(i))
            for j in 0..<n { s += b[i * n + j] * (y[j] - 1 - sin(t + 0.1 * Double(j))) }
            dydt[i] = s
        }
    }, jacobian: { t, _, dfdy, dfdt in
        for k in 0..<(n * n) { dfdy[k] = b[k] }
        for i in 0..<n {
            var s = -sin(t + 0.1 * Double(i))
            for j in 0..<n { s -= b[i * n + j] * cos(t + 0.1 * Double(j)) }
            dfdt[i] = s
        }
    })
    sys.realSpectrum = realSpectrum
    return (sys, g)
}

@Suite struct BDFOrderSixTests {
    /// A system that declares a real spectrum runs up to BDF6: as accurate, in fewer steps
    /// than with order 5 (one that does not declare it runs exactly as with order 5).
    @Test func realSpectrumRunsToOrderSix() throws {
        var steps: [String: Int] = [:]
        for (name, real, order) in [("real, auto", true, nil), ("real, 5", true, 5), ("complex, auto", false, nil)] as [(String, Bool, Int?)] {
            let (sys, exact) = forcedSymmetric(realSpectrum: real)
            let s = try BDFSolver(system: sys, options: ODEOptions(rtol: 1e-10, atol: 1e-14))
            s.maxOrder = order
            let run = s.integrate(from: 0, y0: exact(0), to: 20)
            #expect(run.termination == .reachedEnd)
            let e = relErr(run.y, exact(20))
            print("BDF order test \(name): rel error \(e), \(run.stats)")
            #expect(e < 1e-8, "\(name): error \(e)")
            steps[name] = run.stats.acceptedSteps
        }
        #expect(steps["real, auto"]! < steps["real, 5"]! * 9 / 10)
        #expect(steps["complex, auto"] == steps["real, 5"])
    }
}


@Suite struct BDFProjectionTests {
    /// The rotation `y' = (−y₂, y₁)` keeps `‖y‖`; BDF does not (it damps the rotation). With
    /// the projection hook moving each accepted solution back onto the unit circle, every
    /// observed state has `‖y‖ = 1` to rounding and the solution stays within the
    /// tolerance's reach of `(cos t, sin t)`; without it `‖y‖` drifts far more.
    @Test func projectionKeepsTheInvariantAndTheSolution() throws {
        let rotation = FnSystem(dimension: 2, rhs: { _, y, dydt in dydt[0] = -y[1]; dydt[1] = y[0] },
                                jacobian: { _, _, dfdy, dfdt in
                                    dfdy[0] = 0; dfdy[1] = -1; dfdy[2] = 1; dfdy[3] = 0
                                    dfdt[0] = 0; dfdt[1] = 0 })
        var drift: [Bool: Double] = [:], error: [Bool: Double] = [:]
        for projected in [false, true] {
            let s = try BDFSolver(system: rotation, options: ODEOptions(rtol: 1e-8, atol: 1e-12))
            if projected {
                s.projection = { y in
                    let r = (y[0] * y[0] + y[1] * y[1]).squareRoot()
                    y[0] /= r; y[1] /= r
                }
            }
            let rec = Recorder()
            let run = s.integrate(from: 0, y0: [1, 0], to: 50, saveTimes: [], observers: [rec])
            #expect(run.termination == .reachedEnd)
            drift[projected] = rec.entries.map { abs(($0.y[0] * $0.y[0] + $0.y[1] * $0.y[1]).squareRoot() - 1) }.max() ?? .nan
            error[projected] = max(abs(run.y[0] - cos(50)), abs(run.y[1] - sin(50)))
            print("rotation to t = 50, projected \(projected): max |‖y‖ − 1| \(drift[projected]!), error \(error[projected]!), \(run.stats)")
        }
        #expect(drift[true]! <= 4 * Double.ulpOfOne)
        #expect(drift[false]! > 1e3 * drift[true]!)
        #expect(error[true]! < 1e-5)
    }
}

extension BDFSolverTests {
    /// An autonomous stiff system started at t₀ = 1e15, where ulp(t) = 0.125 and the fast
    /// modes (rates up to 1e4) need steps of 1e-4: the time is kept as t + tLo, so such steps
    /// still add up and the run matches the same integration started at 0 (before, steps below
    /// 10·ulp(t) were a step size underflow). Both the BDF and the Rosenbrock solver.
    @Test func stepsBelowTheTimesResolution() throws {
        let sys = ForcedLinear()
        sys.homogeneous = true
        let y0 = [Double](repeating: 1, count: sys.dimension)
        let t0 = 1e15
        let solvers: [() throws -> any ODESolver] = [
            { try BDFSolver(system: sys, options: ODEOptions(rtol: 1e-8, atol: 1e-12)) },
            { try RosenbrockSolver(system: sys, options: ODEOptions(rtol: 1e-8, atol: 1e-12)) },
        ]
        for make in solvers {
            let late = try make().integrate(from: t0, y0: y0, to: t0 + 2)
            let early = try make().integrate(from: 0, y0: y0, to: 2)
            #expect(late.termination == .reachedEnd && early.termination == .reachedEnd, "\(late.termination)")
            #expect(late.t == t0 + 2)
            #expect(relErr(late.y, early.y) < 1e-6, "\(relErr(late.y, early.y))")
            #expect(late.stats.acceptedSteps > 20)
        }
    }
}
