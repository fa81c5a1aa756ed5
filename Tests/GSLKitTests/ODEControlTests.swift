import Foundation
import Testing
@testable import GSLKit

final class Counter: @unchecked Sendable { var value = 0 }

/// The integrator's control flow: errors, observers, save times, budgets,
/// option checks and re-use.
@Suite struct ODEControlTests {

    /// Robertson with an RHS and/or Jacobian that throw after a number of calls.
    func throwingRobertson(rhsLimit: Int?, jacobianLimit: Int?) -> FnSystem {
        let rhsCalls = Counter(), jacCalls = Counter()
        return FnSystem(dimension: 3, rhs: { _, y, f in
            rhsCalls.value += 1
            if let rhsLimit, rhsCalls.value > rhsLimit { throw InjectedError(tag: "rhs", evaluation: rhsCalls.value) }
            f[0] = -0.04 * y[0] + 1e4 * y[1] * y[2]
            f[1] = 0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] * y[1]
            f[2] = 3e7 * y[1] * y[1]
        }, jacobian: { _, y, j, dt in
            jacCalls.value += 1
            if let jacobianLimit, jacCalls.value > jacobianLimit { throw InjectedError(tag: "jacobian", evaluation: jacCalls.value) }
            j[0] = -0.04; j[1] = 1e4 * y[2]; j[2] = 1e4 * y[1]
            j[3] = 0.04; j[4] = -1e4 * y[2] - 6e7 * y[1]; j[5] = -1e4 * y[1]
            j[6] = 0; j[7] = 6e7 * y[1]; j[8] = 0
            dt[0] = 0; dt[1] = 0; dt[2] = 0
        })
    }

    func checkFailure(_ run: ODERun, _ rec: Recorder, expected: InjectedError) {
        #expect(run.termination == .failed)
        #expect((run.failure as? InjectedError) == expected)
        #expect(throws: InjectedError.self) { try run.get() }
        #expect(run.t > 0 && run.t.isFinite)
        #expect(run.y.allSatisfy { $0.isFinite })
        // The returned state is the last accepted one, bit for bit.
        let last = rec.entries.last!
        #expect(last.stepNumber == run.stats.acceptedSteps)
        #expect(run.t == last.t)
        #expect(run.y == last.y)
    }

    @Test(arguments: [Stepper.rkf45, .msbdf, .rk8pd, .bsimp])
    func throwingRHS(stepper: Stepper) throws {
        // bsimp spends hundreds of evaluations on its first step.
        let k = stepper == .bsimp ? 400 : 60
        let integrator = try ODEIntegrator(system: throwingRobertson(rhsLimit: k, jacobianLimit: nil),
                                           options: ODEOptions(stepper: stepper, rtol: 1e-8, atol: 1e-12))
        let rec = Recorder()
        let run = integrator.integrate(from: 0, y0: [1, 0, 0], to: 40, saveTimes: [], observers: [rec])
        print("throwing rhs \(stepper): t \(run.t), steps \(run.stats.acceptedSteps), rhs \(run.stats.rhsEvaluations), failure \(String(describing: run.failure))")
        checkFailure(run, rec, expected: InjectedError(tag: "rhs", evaluation: k + 1))
        #expect(run.stats.rhsEvaluations == k + 1)
    }

    @Test func throwingJacobianMSBDF() throws {
        let integrator = try ODEIntegrator(system: throwingRobertson(rhsLimit: nil, jacobianLimit: 3),
                                           options: ODEOptions(stepper: .msbdf, rtol: 1e-8, atol: 1e-12))
        let rec = Recorder()
        let run = integrator.integrate(from: 0, y0: [1, 0, 0], to: 40, saveTimes: [], observers: [rec])
        print("throwing jacobian msbdf: t \(run.t), steps \(run.stats.acceptedSteps), jac \(run.stats.jacobianEvaluations)")
        checkFailure(run, rec, expected: InjectedError(tag: "jacobian", evaluation: 4))
        #expect(run.stats.jacobianEvaluations == 4)
    }

    /// y' = y² blows up at t = 1: the run must fail (not hang), keeping the
    /// last accepted, finite state before the singularity.
    @Test(arguments: [Stepper.rkf45, .rk8pd, .msbdf])
    func blowUpFailsCleanly(stepper: Stepper) throws {
        let system = FnSystem(dimension: 1, rhs: { _, y, f in f[0] = y[0] * y[0] },
                              jacobian: { _, y, j, dt in j[0] = 2 * y[0]; dt[0] = 0 })
        let integrator = try ODEIntegrator(system: system, options: ODEOptions(stepper: stepper, rtol: 1e-8, atol: 1e-12))
        let rec = Recorder()
        let run = integrator.integrate(from: 0, y0: [1], to: 2, saveTimes: [], observers: [rec])
        print("blow-up \(stepper): \(run.termination) at t = \(run.t), y = \(run.y), \(String(describing: run.failure)), steps \(run.stats.acceptedSteps)")
        #expect(run.termination == .failed)
        // Near the singularity the accepted steps lose all accuracy (an
        // explicit method may even step across t = 1), so only where the run
        // stopped and that it returns an accepted, finite state are checked.
        #expect(run.t > 0.99 && run.t < 1.01)
        #expect(run.y[0].isFinite && run.y[0] > 1e6)
        #expect(run.t == rec.entries.last!.t)
        #expect(run.y == rec.entries.last!.y)
        #expect(run.stats.acceptedSteps == rec.entries.count - 1)
        // y = 1/(1 - t) holds well away from the singularity.
        let early = rec.entries.first { $0.t >= 0.9 }!
        #expect(abs(early.y[0] * (1 - early.t) - 1) < 1e-4)  // msbdf: 1.07e-5
    }

    /// A step too small to move t (h far below ulp(t)) must not spin forever.
    @Test(arguments: [Stepper.rkf45, .msbdf])
    func noProgressDoesNotSpin(stepper: Stepper) throws {
        let options = ODEOptions(stepper: stepper, rtol: 1e-6, atol: 1e-10, maxStepSize: 1e-12, maxSteps: 100)
        let integrator = try ODEIntegrator(system: decaySystem(), options: options)
        let run = integrator.integrate(from: 1e6, y0: [1], to: 1e6 + 1)
        print("no progress: \(run.termination), \(String(describing: run.failure)), t = \(run.t)")
        #expect(run.termination == .failed)
        #expect(run.t == 1e6)
        if case .stepSizeUnderflow = run.failure as? ODEError {} else { Issue.record("expected stepSizeUnderflow, got \(String(describing: run.failure))") }
    }

    @Test func observerStopAndCounts() throws {
        let integrator = try ODEIntegrator(system: decaySystem(), options: ODEOptions(stepper: .rkf45, rtol: 1e-8, atol: 1e-12))
        // Full run: initial state plus every accepted step.
        let all = Recorder()
        let full = integrator.integrate(from: 0, y0: [1], to: 3, saveTimes: [], observers: [all])
        #expect(full.termination == .reachedEnd)
        #expect(all.entries.count == full.stats.acceptedSteps + 1)
        #expect(all.entries.map(\.stepNumber) == Array(0...full.stats.acceptedSteps))
        #expect(all.entries[0].t == 0 && all.entries[0].y == [1] && all.entries[0].h == 0)
        for i in 1..<all.entries.count {
            #expect(all.entries[i].t > all.entries[i - 1].t)
            #expect(abs(all.entries[i].h - (all.entries[i].t - all.entries[i - 1].t)) <= 1e-15)
        }
        #expect(all.entries.last!.t == 3)

        // Stop at the first step with t ≥ 1; a second observer still sees it.
        let stopper = Recorder(stopWhen: { $0.t >= 1 })
        let watcher = Recorder()
        let run = integrator.integrate(from: 0, y0: [1], to: 3, saveTimes: [], observers: [stopper, watcher])
        #expect(run.termination == .stoppedByObserver)
        #expect(run.failure == nil)
        #expect(run.t >= 1)
        #expect(stopper.entries.count >= 2)
        #expect(stopper.entries[stopper.entries.count - 2].t < 1)
        #expect(run.t == stopper.entries.last!.t)
        #expect(run.y == stopper.entries.last!.y)
        #expect(watcher.entries.count == stopper.entries.count)
        #expect(stopper.entries.count == run.stats.acceptedSteps + 1)
        // Same trajectory as the full run up to the stop.
        #expect(run.t == all.entries[stopper.entries.count - 1].t)

        // Stopping on the initial state.
        let immediate = integrator.integrate(from: 0, y0: [1], to: 3, saveTimes: [],
                                             observers: [Recorder(stopWhen: { _ in true })])
        #expect(immediate.termination == .stoppedByObserver)
        #expect(immediate.t == 0 && immediate.stats.acceptedSteps == 0)
    }

    @Test(arguments: [Stepper.rkf45, .rk8pd, .msbdf])
    func saveTimesHitExactly(stepper: Stepper) throws {
        let saves = (0..<50).map { 1e-3 * pow(10, 4 * Double($0) / 49) }
        let q = ODEAccuracyTests.householder
        let y0 = [1.0, -0.5, 2.0]
        let integrator = try ODEIntegrator(system: linearSystem(ODEAccuracyTests.linearB),
                                           options: ODEOptions(stepper: stepper, rtol: 1e-8, atol: 1e-12))
        let rec = Recorder()
        let run = integrator.integrate(from: 0, y0: y0, to: 20, saveTimes: saves, observers: [rec])
        #expect(run.termination == .reachedEnd)
        let hits = rec.entries.filter { $0.saveIndex != nil }
        #expect(hits.map { $0.saveIndex! } == Array(0..<50))
        var worst = 0.0
        for e in hits {
            let i = e.saveIndex!
            #expect(e.t == saves[i])
            let exact = q.multiply(ODEAccuracyTests.expC(saves[i]).multiply(q.multiply(y0)))
            worst = max(worst, maxAbsDiff(e.y, exact))
        }
        let plain = integrator.integrate(from: 0, y0: y0, to: 20)
        print("save times \(stepper): worst err \(worst), steps \(run.stats.acceptedSteps) (without save times \(plain.stats.acceptedSteps)), rhs \(run.stats.rhsEvaluations) (\(plain.stats.rhsEvaluations))")
        #expect(worst < 1e-6)
        // Save hits are steps: the count identity holds.
        #expect(rec.entries.count == run.stats.acceptedSteps + 1)
    }

    /// Save times outside (t0, t1] are skipped; indices refer to the array passed.
    @Test func saveIndicesReferToCallerArray() throws {
        let integrator = try ODEIntegrator(system: decaySystem(), options: ODEOptions(stepper: .rkf45))
        let saves = [-1.0, 0, 0.5, 1, 3]
        let rec = Recorder()
        let run = integrator.integrate(from: 0, y0: [1], to: 2, saveTimes: saves, observers: [rec])
        #expect(run.termination == .reachedEnd)
        let hits = rec.entries.compactMap { e in e.saveIndex.map { ($0, e.t) } }
        #expect(hits.map(\.0) == [2, 3])
        #expect(hits.map(\.1) == [0.5, 1])
    }

    @Test func maxStepsBudget() throws {
        let integrator = try ODEIntegrator(system: decaySystem(),
                                           options: ODEOptions(stepper: .rkf45, rtol: 1e-10, atol: 1e-14, maxSteps: 10))
        let rec = Recorder()
        let run = integrator.integrate(from: 0, y0: [1], to: 100, saveTimes: [], observers: [rec])
        #expect(run.termination == .maxSteps)
        #expect(run.stats.acceptedSteps == 10)
        #expect(rec.entries.count == 11)
        #expect(run.t == rec.entries.last!.t && run.t < 100)
    }

    @Test func maxStepSizeHonoured() throws {
        let integrator = try ODEIntegrator(system: decaySystem(),
                                           options: ODEOptions(stepper: .rk8pd, rtol: 1e-6, initialStep: 1e-3, maxStepSize: 0.1))
        let rec = Recorder()
        let run = integrator.integrate(from: 0, y0: [1], to: 5, saveTimes: [], observers: [rec])
        #expect(run.termination == .reachedEnd)
        #expect(rec.entries[1].h <= 1e-3)
        #expect(rec.entries.allSatisfy { $0.h <= 0.1 * (1 + 1e-12) })
        #expect(run.stats.acceptedSteps >= 50)
    }

    @Test func initValidation() throws {
        for stepper in Stepper.allCases where stepper.needsJacobian {
            let noJac = FnSystem(dimension: 1, rhs: { _, y, f in f[0] = -y[0] })
            #expect(throws: ODEError.jacobianUnavailable) {
                _ = try ODEIntegrator(system: noJac, options: ODEOptions(stepper: stepper))
            }
        }
        // Explicit steppers and msadams do not need one.
        for stepper in Stepper.allCases where !stepper.needsJacobian {
            let noJac = FnSystem(dimension: 1, rhs: { _, y, f in f[0] = -y[0] })
            let run = try ODEIntegrator(system: noJac, options: ODEOptions(stepper: stepper)).integrate(from: 0, y0: [1], to: 1)
            #expect(run.termination == .reachedEnd)
        }
        for rtol in [0.0, -1e-6, .nan, .infinity] {
            #expect(throws: ODEError.self) {
                _ = try ODEIntegrator(system: decaySystem(), options: ODEOptions(rtol: rtol))
            }
        }
        #expect(throws: ODEError.self) { _ = try ODEIntegrator(system: decaySystem(), options: ODEOptions(atol: -1)) }
        #expect(throws: ODEError.self) { _ = try ODEIntegrator(system: decaySystem(), options: ODEOptions(maxSteps: 0)) }
        #expect(throws: ODEError.self) { _ = try ODEIntegrator(system: decaySystem(), options: ODEOptions(maxStepSize: .nan)) }
        #expect(throws: ODEError.self) { _ = try ODEIntegrator(system: decaySystem(), options: ODEOptions(initialStep: 0)) }

        // Bad calls fail the run rather than trapping.
        let integrator = try ODEIntegrator(system: decaySystem(), options: ODEOptions())
        let wrongDim = integrator.integrate(from: 0, y0: [1, 2], to: 1)
        #expect(wrongDim.termination == .failed)
        #expect((wrongDim.failure as? ODEError) == .dimensionMismatch(expected: 1, got: 2))
        #expect(integrator.integrate(from: 1, y0: [1], to: 0).termination == .failed)
        #expect(integrator.integrate(from: 0, y0: [.nan], to: 1).termination == .failed)
    }

    /// One integrator used twice gives the same run both times (the driver
    /// is reset), and the same as a fresh integrator.
    @Test(arguments: [Stepper.rkf45, .rk8pd, .bsimp, .msadams, .msbdf])
    func reuseIsReproducible(stepper: Stepper) throws {
        let options = ODEOptions(stepper: stepper, rtol: 1e-8, atol: 1e-12)
        let system = linearSystem(ODEAccuracyTests.linearB)
        let integrator = try ODEIntegrator(system: system, options: options)
        let saves = [0.25, 0.5, 1.5]
        let a = integrator.integrate(from: 0, y0: [1, -0.5, 2], to: 2, saveTimes: saves, observers: [])
        // A different problem in between, to leave state behind.
        _ = integrator.integrate(from: 5, y0: [3, 3, -3], to: 9)
        let b = integrator.integrate(from: 0, y0: [1, -0.5, 2], to: 2, saveTimes: saves, observers: [])
        let fresh = try ODEIntegrator(system: system, options: options)
            .integrate(from: 0, y0: [1, -0.5, 2], to: 2, saveTimes: saves, observers: [])
        for other in [b, fresh] {
            #expect(other.termination == .reachedEnd)
            #expect(other.t == a.t)
            #expect(other.y == a.y)
            #expect(other.stats == a.stats)
        }
    }
}
