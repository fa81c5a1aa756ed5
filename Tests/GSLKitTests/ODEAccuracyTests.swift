import Foundation
import Testing
@testable import GSLKit

/// Accuracy of the adaptive integrator against closed forms and reference
/// solutions.
@Suite struct ODEAccuracyTests {

    @Test(arguments: [Stepper.rkf45, .rk8pd])
    func exponentialDecay(stepper: Stepper) throws {
        let rtol = 1e-10
        let integrator = try ODEIntegrator(system: decaySystem(),
                                           options: ODEOptions(stepper: stepper, rtol: rtol, atol: 1e-14))
        let run = integrator.integrate(from: 0, y0: [1], to: 5)
        #expect(run.termination == .reachedEnd)
        #expect(run.t == 5)
        let exact = exp(-5.0)
        let rel = abs(run.y[0] - exact) / exact
        print("decay \(stepper): rel err \(rel), steps \(run.stats.acceptedSteps), rhs \(run.stats.rhsEvaluations)")
        #expect(rel <= 10 * rtol)
        #expect(run.stats.acceptedSteps > 0)
    }

    /// x' = v, v' = -x over 100 periods with rk8pd at rtol 1e-10.
    @Test func harmonicOscillatorRK8PD() throws {
        let system = FnSystem(dimension: 2, rhs: { _, y, dydt in dydt[0] = y[1]; dydt[1] = -y[0] })
        let integrator = try ODEIntegrator(system: system,
                                           options: ODEOptions(stepper: .rk8pd, rtol: 1e-10, atol: 1e-14))
        let tEnd = 200 * Double.pi
        let run = integrator.integrate(from: 0, y0: [1, 0], to: tEnd)
        #expect(run.termination == .reachedEnd)
        let energy = 0.5 * (run.y[0] * run.y[0] + run.y[1] * run.y[1])
        let drift = abs(energy - 0.5) / 0.5
        // Exact solution: (cos t, -sin t); at t = 200π the phase is 0.
        let phase = atan2(-run.y[1], run.y[0])
        let stateErr = maxAbsDiff(run.y, [cos(tEnd), -sin(tEnd)])
        print("oscillator rk8pd: energy drift \(drift), phase err \(phase), state err \(stateErr), steps \(run.stats.acceptedSteps), rhs \(run.stats.rhsEvaluations)")
        // Measured: drift 1.06e-9, phase 4.0e-10, state 5.3e-10 (2070 steps).
        #expect(drift < 1e-8)
        #expect(abs(phase) < 5e-9)
        #expect(stateErr < 1e-8)
    }

    /// Robertson's stiff kinetics to t = 40 with msbdf and the analytic Jacobian.
    @Test func robertsonMSBDF() throws {
        let run = try robertson(stepper: .msbdf, rtol: 1e-8, atol: 1e-12)
        // Reference (Hairer & Wanner; SUNDIALS cvRoberts): y(40) =
        // (0.7158270687, 9.185534764e-6, 0.2841637457).
        let err1 = abs(run.y[0] - 0.7158270687), err2 = abs(run.y[1] - 9.185534764e-6), err3 = abs(run.y[2] - 0.2841637457)
        print("robertson msbdf: y = \(run.y), errs \(err1) \(err2) \(err3), stats \(run.stats)")
        #expect(run.termination == .reachedEnd)
        #expect(err1 < 5e-7)
        #expect(err3 < 5e-7)
        #expect(err2 < 1e-9)
        #expect(abs(run.y[0] + run.y[1] + run.y[2] - 1) < 1e-8)
        #expect(run.stats.acceptedSteps < 2_000)
        #expect(run.stats.jacobianEvaluations > 0)
        #expect(run.stats.rhsEvaluations > 0)
    }

    /// The same problem with bsimp: a second implicit method agrees.
    @Test func robertsonBSIMP() throws {
        let run = try robertson(stepper: .bsimp, rtol: 1e-8, atol: 1e-12)
        print("robertson bsimp: y = \(run.y), stats \(run.stats)")
        #expect(run.termination == .reachedEnd)
        #expect(abs(run.y[0] - 0.7158270687) < 5e-7)
        #expect(abs(run.y[2] - 0.2841637457) < 5e-7)
        #expect(run.stats.acceptedSteps < 2_000)
    }

    func robertson(stepper: Stepper, rtol: Double, atol: Double) throws -> ODERun {
        let system = FnSystem(dimension: 3, rhs: { _, y, f in
            f[0] = -0.04 * y[0] + 1e4 * y[1] * y[2]
            f[1] = 0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] * y[1]
            f[2] = 3e7 * y[1] * y[1]
        }, jacobian: { _, y, j, dt in
            j[0] = -0.04; j[1] = 1e4 * y[2]; j[2] = 1e4 * y[1]
            j[3] = 0.04; j[4] = -1e4 * y[2] - 6e7 * y[1]; j[5] = -1e4 * y[1]
            j[6] = 0; j[7] = 6e7 * y[1]; j[8] = 0
            dt[0] = 0; dt[1] = 0; dt[2] = 0
        })
        let integrator = try ODEIntegrator(system: system, options: ODEOptions(stepper: stepper, rtol: rtol, atol: atol))
        return integrator.integrate(from: 0, y0: [1, 0, 0], to: 40)
    }

    /// Van der Pol, μ = 1000, over one period with two implicit methods.
    @Test func vanDerPolStiff() throws {
        let mu = 1000.0
        let system = FnSystem(dimension: 2, rhs: { _, y, f in
            f[0] = y[1]
            f[1] = mu * (1 - y[0] * y[0]) * y[1] - y[0]
        }, jacobian: { _, y, j, dt in
            j[0] = 0; j[1] = 1
            j[2] = -2 * mu * y[0] * y[1] - 1; j[3] = mu * (1 - y[0] * y[0])
            dt[0] = 0; dt[1] = 0
        })
        let period = (3 - 2 * log(2.0)) * mu  // leading-order period, ≈ 1613.7
        let tEnd = period
        let saves: [Double] = [400, 800, 1200, 1500]
        var results: [Stepper: (run: ODERun, rec: Recorder)] = [:]
        for stepper in [Stepper.msbdf, .bsimp] {
            let integrator = try ODEIntegrator(system: system, options: ODEOptions(stepper: stepper, rtol: 1e-6, atol: 1e-8))
            let rec = Recorder()
            let run = integrator.integrate(from: 0, y0: [2, 0], to: tEnd, saveTimes: saves, observers: [rec])
            results[stepper] = (run, rec)
            let maxY1 = rec.entries.map { abs($0.y[0]) }.max() ?? .nan
            let firstNegative = rec.entries.first { $0.y[0] < 0 }?.t ?? .nan
            print("vdp \(stepper): y(\(run.t)) = \(run.y), max|y1| \(maxY1), first y1<0 at t = \(firstNegative), stats \(run.stats)")
            #expect(run.termination == .reachedEnd)
            #expect(run.t == tEnd)
            #expect(maxY1 <= 2.1)
            #expect(rec.entries.contains { $0.y[0] < 0 })
            // The first relaxation jump comes near half a period (≈ 807).
            #expect(firstNegative > 700 && firstNegative < 900)
        }
        let a = results[.msbdf]!, b = results[.bsimp]!
        for i in 0..<saves.count {
            let ya = a.rec.entries.first { $0.saveIndex == i }!.y
            let yb = b.rec.entries.first { $0.saveIndex == i }!.y
            print("vdp t=\(saves[i]): msbdf \(ya) bsimp \(yb)")
            // Measured differences ≤ 6.8e-4 (largest at t = 800, just before the jump).
            #expect(abs(ya[0] - yb[0]) < 2e-3)
        }
        print("vdp end: msbdf \(a.run.y) bsimp \(b.run.y)")
        // At the end both are on the slow branch near the knee y1 ≈ −1, where
        // small phase differences are amplified: measured 5.3e-3.
        #expect(abs(a.run.y[0] - b.run.y[0]) < 2e-2)
        #expect(a.run.y[0] < -1 && a.run.y[0] > -1.1 && b.run.y[0] < -1 && b.run.y[0] > -1.1)
    }

    /// y' = B y with B = Q C Qᵀ, C a rotation-with-decay block and a decay,
    /// Q a Householder reflection; exact y = Q exp(Ct) Q y0.
    static let householder: Matrix = {
        let v = [1.0 / 3, 2.0 / 3, 2.0 / 3]
        var q = Matrix.identity(3)
        for i in 0..<3 { for j in 0..<3 { q[i, j] -= 2 * v[i] * v[j] } }
        return q
    }()

    static func expC(_ t: Double) -> Matrix {
        let e = exp(-0.5 * t)
        return Matrix(rowArrays: [[e * cos(t), e * sin(t), 0], [-e * sin(t), e * cos(t), 0], [0, 0, exp(-2 * t)]])!
    }

    static let linearB: Matrix = {
        let c = Matrix(rowArrays: [[-0.5, 1, 0], [-1, -0.5, 0], [0, 0, -2]])!
        return householder.multiply(c).multiply(householder)
    }()

    @Test(arguments: Stepper.allCases)
    func everyStepperOnLinearSystem(stepper: Stepper) throws {
        let y0 = [1.0, -0.5, 2.0]
        let t1 = 2.0
        let q = Self.householder
        let exact = q.multiply(Self.expC(t1).multiply(q.multiply(y0)))
        let integrator = try ODEIntegrator(system: linearSystem(Self.linearB),
                                           options: ODEOptions(stepper: stepper, rtol: 1e-8, atol: 1e-12))
        let run = integrator.integrate(from: 0, y0: y0, to: t1)
        let err = maxAbsDiff(run.y, exact) / norm2(exact)
        print("linear \(stepper): rel err \(err), steps \(run.stats.acceptedSteps), rejected \(run.stats.rejectedSteps), rhs \(run.stats.rhsEvaluations), jac \(run.stats.jacobianEvaluations)")
        #expect(run.termination == .reachedEnd)
        #expect(run.t == t1)
        #expect(err < Self.linearBound(stepper))
        #expect(run.stats.acceptedSteps > 0)
        #expect(run.stats.rhsEvaluations > 0)
        if stepper.needsJacobian { #expect(run.stats.jacobianEvaluations > 0) }
    }

    /// Relative global error bounds at rtol 1e-8, about 10× what was
    /// measured (in parentheses). GSL controls the error per step, so the
    /// low-order methods, which take many steps, accumulate more: rk1imp
    /// (implicit Euler with step-doubling estimates) takes ~63k steps.
    static func linearBound(_ s: Stepper) -> Double {
        switch s {
        case .rk2, .rkf45, .rkck, .rk8pd, .rk4imp, .bsimp: return 1e-7  // (2e-9, 2.5e-9, 2e-9, 3.5e-11, 9e-9, 1e-13)
        case .rk4: return 1e-7                                         // (1.3e-8)
        case .msadams, .msbdf: return 1e-6                             // (8.3e-8, 4.4e-8)
        case .rk2imp: return 5e-6                                      // (5.1e-7)
        case .rk1imp: return 2e-4                                      // (2.1e-5)
        }
    }
}
