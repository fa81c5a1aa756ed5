import Foundation
import Testing
@testable import GSLKit

/// A deterministic pseudo-random stream for test data.
private struct TestRNG {
    var state: UInt64
    mutating func next() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) / Double(1 << 53) * 2 - 1
    }
}

/// A random diagonal-plus-low-rank Jacobian with a Gram block at an offset
/// and an explicit block.
private func randomJacobian(n: Int = 40, k1: Int = 6, m: Int = 30, offset: Int = 5, k2: Int = 3,
                            seed: UInt64 = 1) -> LowRankJacobian {
    var rng = TestRNG(state: seed)
    var r = Matrix(rows: k1, cols: m)
    for i in 0..<(k1 * m) { r.storage[i] = rng.next() }
    let j = LowRankJacobian(dimension: n, gram: r, gramOffset: offset, explicitRank: k2)
    for i in 0..<n { j.diagonal[i] = -2 + rng.next() }
    j.gramWeight = -1.7
    for i in 0..<m { j.gramColumnScale[i] = 0.5 + rng.next() }
    for i in 0..<(n * k2) { j.u[i] = 0.3 * rng.next(); j.v[i] = 0.3 * rng.next() }
    return j
}

/// Solves (σI − J) x = b with the structured solver.
private func structuredSolve(_ s: ShiftedLowRankSolver, _ b: [Double]) -> [Double] {
    var x = b
    x.withUnsafeMutableBufferPointer { s.solve($0.baseAddress!) }
    return x
}

/// Solves (σI − J) x = b densely.
private func denseSolve(_ j: LowRankJacobian, sigma: Double, _ b: [Double]) throws -> [Double] {
    var w = j.dense()
    for i in 0..<(w.rows * w.cols) { w.storage[i] = -w.storage[i] }
    for i in 0..<w.rows { w[i, i] += sigma }
    return try LinearSolve.lu(w, b)
}

private func relErr(_ a: [Double], _ b: [Double]) -> Double {
    var num = 0.0, den = 0.0
    for i in 0..<a.count { num = max(num, abs(a[i] - b[i])); den = max(den, abs(b[i])) }
    return num / den
}

@Suite struct RosenbrockLinearAlgebraTests {
    @Test func applyMatchesDense() {
        let j = randomJacobian()
        var rng = TestRNG(state: 9)
        let x = (0..<j.dimension).map { _ in rng.next() }
        #expect(relErr(j.apply(x), j.dense().multiply(x)) < 1e-13)
    }

    /// Both paths: OpenBLAS dgemm per chunk and the SIMD kernel used with GSL's CBLAS.
    @Test(arguments: [true, false]) func weightedGramKernelMatchesNaive(useBLAS: Bool) {
        var rng = TestRNG(state: 3)
        for (k, m, chunk) in [(7, 13, 4), (8, 16, 8), (5, 3, 128), (1, 9, 2)] {
            let r = (0..<(k * m)).map { _ in rng.next() }
            let w = (0..<m).map { _ in rng.next() }
            var out = [Double](repeating: 0, count: k * k)
            var scratch = [Double](repeating: 0, count: k * chunk)
            r.withUnsafeBufferPointer { rb in w.withUnsafeBufferPointer { wb in
                out.withUnsafeMutableBufferPointer { ob in scratch.withUnsafeMutableBufferPointer { sb in
                    weightedGramUpper(k: k, m: m, r: rb.baseAddress!, ldr: m, w: wb.baseAddress!, alpha: 2,
                                      out: ob.baseAddress!, ldo: k, scratch: sb.baseAddress!, chunk: chunk,
                                      useBLAS: useBLAS)
                }}
            }}
            for p in 0..<k {
                for q in p..<k {
                    var e = 0.0
                    for t in 0..<m { e += 2 * r[p * m + t] * w[t] * r[q * m + t] }
                    #expect(abs(out[p * k + q] - e) < 1e-12)
                }
            }
        }
    }

    @Test func woodburyMatchesDenseLU() throws {
        let j = randomJacobian()
        let s = ShiftedLowRankSolver(shape: j)
        var rng = TestRNG(state: 5)
        for sigma in [2.3, 40.0, 1e6, -0.7] {
            try s.factor(sigma: sigma, jacobian: j)
            #expect(s.mode == .woodbury)
            let b = (0..<j.dimension).map { _ in rng.next() }
            #expect(relErr(structuredSolve(s, b), try denseSolve(j, sigma: sigma, b)) < 1e-10)
        }
    }

    @Test func illConditionedDiagonalIsShiftedExactly() throws {
        let j = randomJacobian()
        let sigma = 1.5
        for i in [0, 7, 20, 39] { j.diagonal[i] = sigma }          // σ − d_i = 0 exactly
        j.diagonal[12] = sigma * (1 + 1e-12)                       // nearly zero
        let s = ShiftedLowRankSolver(shape: j)
        try s.factor(sigma: sigma, jacobian: j)
        #expect(s.mode == .shifted(5))
        var rng = TestRNG(state: 6)
        let b = (0..<j.dimension).map { _ in rng.next() }
        #expect(relErr(structuredSolve(s, b), try denseSolve(j, sigma: sigma, b)) < 1e-10)
    }

    @Test func tooManyNearZeroEntriesFallBackToDenseOrThrow() throws {
        let j = randomJacobian()
        let sigma = 1.5
        for i in [1, 2, 3] { j.diagonal[i] = sigma }
        let dense = ShiftedLowRankSolver(shape: j, maxShifted: 2, denseLimit: 1000)
        try dense.factor(sigma: sigma, jacobian: j)
        #expect(dense.mode == .dense)
        var rng = TestRNG(state: 7)
        let b = (0..<j.dimension).map { _ in rng.next() }
        #expect(relErr(structuredSolve(dense, b), try denseSolve(j, sigma: sigma, b)) < 1e-10)
        let large = ShiftedLowRankSolver(shape: j, maxShifted: 2, denseLimit: 10)
        #expect(throws: LowRankSolveError.illConditioned(sigma: sigma, count: 3)) {
            try large.factor(sigma: sigma, jacobian: j)
        }
    }

    /// Checked solves (`checksResidual`): where the Woodbury solve is accurate they are the
    /// plain solve, bit for bit; a residual that cannot meet the tolerance (0 here) is refined
    /// twice and the factorization replaced by the dense LU, whose answer is then returned and
    /// used by the next solve; the next `factor` goes back to Woodbury.
    @Test func checkedSolvesRefineThenReplace() throws {
        let j = randomJacobian()
        let plain = ShiftedLowRankSolver(shape: j), checked = ShiftedLowRankSolver(shape: j)
        checked.checksResidual = true
        var rng = TestRNG(state: 8)
        let b = (0..<j.dimension).map { _ in rng.next() }
        try plain.factor(sigma: 2.3, jacobian: j)
        try checked.factor(sigma: 2.3, jacobian: j)
        #expect(structuredSolve(checked, b) == structuredSolve(plain, b))
        #expect(checked.refinements == 0 && checked.denseReplacements == 0)
        checked.residualTolerance = 0
        let x = structuredSolve(checked, b)
        #expect(checked.refinements == 2 && checked.denseReplacements == 1 && checked.mode == .dense)
        #expect(relErr(x, try denseSolve(j, sigma: 2.3, b)) < 1e-12)
        _ = structuredSolve(checked, b)
        #expect(checked.refinements == 2 && checked.denseReplacements == 1)
        try checked.factor(sigma: 40, jacobian: j)
        #expect(checked.mode == .woodbury)
    }

    /// A dense LU that fails (σI − J singular; Woodbury's capacitance only nearly so) leaves the
    /// Woodbury factors in use and returns the refined iterate with the smallest residual,
    /// not a half-made LU's `x = b` (review of stop 22).
    @Test func failedReplacementKeepsWoodbury() throws {
        let j = LowRankJacobian(dimension: 2, explicitRank: 1)
        j.diagonal = [0, -0.2]
        j.u = [-0.7, -0.1]
        j.v = [-2, 39]
        let s = ShiftedLowRankSolver(shape: j)
        s.checksResidual = true
        s.residualTolerance = 0
        try s.factor(sigma: 0.1, jacobian: j)  // σI − J = [[−1.3, 27.3], [−0.2, 4.2]], det 0
        _ = structuredSolve(s, [1, 2])
        #expect(s.mode == .woodbury && s.denseReplacements == 0)
        let again = structuredSolve(s, [1, 2])
        #expect(again.allSatisfy(\.isFinite) && again != [1, 2])
    }
}

/// `y' = J y` with a constant diagonal-plus-low-rank `J`, optionally plus a
/// time forcing `sin(t)·1`, and hooks to throw or produce NaN.
private final class LinearSystem: LowRankJacobianSystem {
    let jac: LowRankJacobian
    var forcing = false
    var throwAfter: Double?
    var nanAfter: Double?
    struct Boom: Error {}
    init(_ j: LowRankJacobian) { jac = j }
    var dimension: Int { jac.dimension }
    func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws {
        if let ta = throwAfter, t > ta { throw Boom() }
        let out = jac.apply(Array(y))
        for i in 0..<dimension { dydt[i] = out[i] + (forcing ? sin(t) : 0) }
        if let na = nanAfter, t > na { dydt[0] = .nan }
    }
    func makeLowRankJacobian() -> LowRankJacobian { jac.sameShape() }
    func lowRankJacobian(t: Double, y: UnsafeBufferPointer<Double>, into j: LowRankJacobian,
                         dfdt: UnsafeMutableBufferPointer<Double>) throws {
        jac.copyValues(into: j)
        for i in 0..<dimension { dfdt[i] = forcing ? cos(t) : 0 }
    }
}

@Suite struct RosenbrockSolverTests {
    /// Fixed-step run: tolerances so loose that every step is accepted, and
    /// `maxStepSize = h` so the controller cannot grow it.
    private func fixedStep(_ sys: LinearSystem, h: Double, y0: [Double], to t1: Double) throws -> [Double] {
        let s = try RosenbrockSolver(system: sys, options: ODEOptions(rtol: 1e6, atol: 1e6, initialStep: h, maxStepSize: h))
        let run = s.integrate(from: 0, y0: y0, to: t1)
        #expect(run.termination == .reachedEnd)
        #expect(run.stats.rejectedSteps == 0)
        return run.y
    }

    @Test(arguments: [false, true]) func empiricalOrderIsFour(forcing: Bool) throws {
        let j = randomJacobian(n: 12, k1: 3, m: 8, offset: 2, k2: 2, seed: 11)
        let sys = LinearSystem(j)
        sys.forcing = forcing
        let y0 = (0..<12).map { Double($0 % 5) * 0.2 - 0.3 }
        let reference = try fixedStep(sys, h: 1.0 / 1280, y0: y0, to: 1)
        var errors: [Double] = []
        for steps in [10, 20, 40] {
            let y = try fixedStep(sys, h: 1.0 / Double(steps), y0: y0, to: 1)
            errors.append(relErr(y, reference))
        }
        let p1 = log2(errors[0] / errors[1]), p2 = log2(errors[1] / errors[2])
        print("Rodas4 empirical order (forcing \(forcing)): errors \(errors), orders \(p1), \(p2)")
        #expect(abs(p2 - 4) < 0.35)
        #expect(abs(p1 - 4) < 0.5)
    }

    @Test func adaptiveRunMatchesReferenceAndHitsSaveTimes() throws {
        let j = randomJacobian(n: 12, k1: 3, m: 8, offset: 2, k2: 2, seed: 11)
        let sys = LinearSystem(j)
        let y0 = (0..<12).map { Double($0 % 5) * 0.2 - 0.3 }
        let saves = [0.1, 0.25, 1.0 / 3.0, 0.7, 1.0]
        var seen: [(Int, Double)] = []
        var initial = 0
        let obs = ClosureObserver { step in
            if step.isInitial { initial += 1 }
            if let i = step.saveIndex { seen.append((i, step.t)) }
            return .proceed
        }
        let s = try RosenbrockSolver(system: sys, options: ODEOptions(rtol: 1e-10, atol: 1e-14))
        let run = s.integrate(from: 0, y0: y0, to: 1, saveTimes: saves, observers: [obs])
        #expect(run.termination == .reachedEnd)
        #expect(run.t == 1)
        #expect(initial == 1)
        #expect(seen.map(\.0) == [0, 1, 2, 3, 4])
        #expect(seen.map(\.1) == saves)
        #expect(run.stats.jacobianEvaluations == run.stats.acceptedSteps)
        #expect(run.stats.factorizations == run.stats.acceptedSteps + run.stats.rejectedSteps)
        let reference = try fixedStep(sys, h: 1.0 / 1280, y0: y0, to: 1)
        #expect(relErr(run.y, reference) < 1e-8)
    }

    @Test func observerStopsTheRun() throws {
        let sys = LinearSystem(randomJacobian(n: 12, k1: 3, m: 8, offset: 2, k2: 2))
        var calls = 0
        let obs = ClosureObserver { step in
            calls += 1
            return step.stepNumber >= 3 ? .stop : .proceed
        }
        let s = try RosenbrockSolver(system: sys, options: ODEOptions(rtol: 1e-8, atol: 1e-12))
        let run = s.integrate(from: 0, y0: [Double](repeating: 1, count: 12), to: 100, saveTimes: [], observers: [obs])
        #expect(run.termination == .stoppedByObserver)
        #expect(run.stats.acceptedSteps == 3)
        #expect(calls == 4)
        #expect(run.t < 100)
    }

    @Test func throwingRightHandSideFails() throws {
        let sys = LinearSystem(randomJacobian(n: 12, k1: 3, m: 8, offset: 2, k2: 2))
        sys.throwAfter = 0.5
        let s = try RosenbrockSolver(system: sys, options: ODEOptions(rtol: 1e-8, atol: 1e-12))
        let run = s.integrate(from: 0, y0: [Double](repeating: 1, count: 12), to: 2)
        #expect(run.termination == .failed)
        #expect(run.failure is LinearSystem.Boom)
        #expect(run.t <= 0.5 && run.t > 0)
    }

    @Test func nonFiniteStateFails() throws {
        let sys = LinearSystem(randomJacobian(n: 12, k1: 3, m: 8, offset: 2, k2: 2))
        sys.nanAfter = 0.5
        let s = try RosenbrockSolver(system: sys, options: ODEOptions(rtol: 1e-8, atol: 1e-12))
        let run = s.integrate(from: 0, y0: [Double](repeating: 1, count: 12), to: 2)
        #expect(run.termination == .failed)
        if case .nonFiniteState? = run.failure as? ODEError {} else { Issue.record("expected nonFiniteState, got \(String(describing: run.failure))") }
        #expect(run.y.allSatisfy { $0.isFinite })
    }

    @Test func maxStepsHonoured() throws {
        let sys = LinearSystem(randomJacobian(n: 12, k1: 3, m: 8, offset: 2, k2: 2))
        let s = try RosenbrockSolver(system: sys, options: ODEOptions(rtol: 1e-10, atol: 1e-14, maxSteps: 5))
        let run = s.integrate(from: 0, y0: [Double](repeating: 1, count: 12), to: 100)
        #expect(run.termination == .maxSteps)
        #expect(run.stats.acceptedSteps == 5)
    }

    @Test func stiffScalarStaysStable() throws {
        // y' = −1e8 (y − cos t): explicit methods need h ~ 1e-8; Rodas4 is L-stable.
        let j = LowRankJacobian(dimension: 1)
        j.diagonal[0] = -1e8
        final class Stiff: LowRankJacobianSystem {
            var dimension: Int { 1 }
            func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws {
                dydt[0] = -1e8 * (y[0] - cos(t))
            }
            func makeLowRankJacobian() -> LowRankJacobian { LowRankJacobian(dimension: 1) }
            func lowRankJacobian(t: Double, y: UnsafeBufferPointer<Double>, into j: LowRankJacobian,
                                 dfdt: UnsafeMutableBufferPointer<Double>) throws {
                j.diagonal[0] = -1e8
                dfdt[0] = -1e8 * sin(t)
            }
        }
        let s = try RosenbrockSolver(system: Stiff(), options: ODEOptions(rtol: 1e-8, atol: 1e-12))
        let run = s.integrate(from: 0, y0: [1], to: 10)
        #expect(run.termination == .reachedEnd)
        #expect(abs(run.y[0] - cos(10.0)) < 1e-7)
        #expect(run.stats.acceptedSteps < 2000)
    }
}
