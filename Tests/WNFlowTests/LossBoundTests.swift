import Foundation
import GSLKit
import Testing
@testable import WNFlow

/// The loss lower bounds that let the stop rule pass steps without a mat-vec
/// (`LossWorkspace.lossLowerBound`) and let `DualSolver` pass steps without
/// mapping them to weights (`DualKernel.lossLowerBound`): they hold at every
/// step, they are not vacuous, and a run gives the same numbers with and
/// without them.
@Suite("Loss lower bounds for unread steps")
struct LossBoundTests {
    private func smallCase() throws -> (p: Problem, x0: [Double]) {
        let p = try Fixture.problem(m: 8, n: 20, depth: 2, seed: 4)
        return (p, Fixture.positivePoint(p.weightCount, seed: 9, scale: 0.2))
    }

    private func flow(_ kind: FlowKind, _ p: Problem) -> any Flow {
        kind == .gf ? GradientFlow(problem: p) : WeightNormFlow(problem: p, rate: .constant(0.05))
    }

    /// Tallies over the accepted steps of a run: bound above the loss
    /// (`violations`), bound at least half the loss (`useful`), and the last
    /// evaluation's own loss above the loss (`naive`, what a bound without the
    /// spread terms would have claimed).
    struct Tally { var checked = 0, violations = 0, useful = 0, naive = 0 }

    @Test("dual: below the observers' loss at every step, and useful on most (GF, WN)", arguments: [FlowKind.gf, .wn])
    func dualBoundHolds(kind: FlowKind) throws {
        let (p, x0) = try smallCase()
        let f = flow(kind, p)
        let system = try makeDualCoordinates(for: f)
        let kernel = try #require((system as? DualGradientSystem)?.kernel ?? (system as? DualWeightNormSystem)?.kernel)
        let base = try system.setBase(kind == .gf ? x0 : WeightNormFlow.initialState(x0: x0))
        let ws = LossWorkspace(problem: p)
        var natural = [Double](repeating: 0, count: f.dimension), x = [Double](repeating: 0, count: p.weightCount)
        var tally = Tally()
        let observer = ClosureObserver { step in
            guard !step.isInitial, let lower = system.lossLowerBound(step.y), let naive = kernel.lastEvaluationLoss else {
                return .proceed
            }
            natural.withUnsafeMutableBufferPointer { system.natural(of: step.y, into: $0.baseAddress!) }
            natural.withUnsafeBufferPointer { n in x.withUnsafeMutableBufferPointer { f.weights(of: n, into: $0.baseAddress!) } }
            let loss = x.withUnsafeBufferPointer { ws.loss(at: $0.baseAddress!) }
            tally.checked += 1
            if lower > loss { tally.violations += 1 }
            if lower >= 0.5 * loss { tally.useful += 1 }
            if naive > loss { tally.naive += 1 }
            return .proceed
        }
        let solver = try BDFSolver(system: system, options: ODEOptions(rtol: 4 * .ulpOfOne, atol: 1e-10, maxSteps: 100_000))
        let run = solver.integrate(from: 0, y0: base, to: 1e9, saveTimes: [], observers: [observer])
        #expect(run.termination == .reachedEnd)
        #expect(tally.checked > 200 && tally.violations == 0, "\(kind): \(tally)")
        #expect(tally.useful * 2 > tally.checked, "\(kind): the bound is vacuous too often: \(tally)")
        #expect(tally.naive > 0, "\(kind): the last evaluation's loss never exceeded the step's (\(tally)): the companion is vacuous")
    }

    @Test("weight space: below the loss at every step of bdf, and useful on most")
    func weightSpaceBoundHolds() throws {
        let (p, x0) = try smallCase()
        let f = GradientFlow(problem: p)
        let cached = try #require(f.lossWorkspace)
        let fresh = LossWorkspace(problem: p)
        var tally = Tally()
        let observer = ClosureObserver { step in
            guard !step.isInitial, let lower = cached.lossLowerBound(at: step.y.baseAddress!) else { return .proceed }
            let naive = cached.lastEvaluationLoss
            let loss = fresh.loss(at: step.y.baseAddress!)
            tally.checked += 1
            if lower > loss { tally.violations += 1 }
            if lower >= 0.5 * loss { tally.useful += 1 }
            if naive > loss { tally.naive += 1 }
            return .proceed
        }
        let solver = try BDFSolver(system: f, options: ODEOptions(rtol: 1e-10, atol: 1e-18, maxSteps: 100_000))
        _ = solver.integrate(from: 0, y0: x0, to: 1e9, saveTimes: [], observers: [observer])
        #expect(tally.checked > 200 && tally.violations == 0, "\(tally)")
        #expect(tally.useful * 2 > tally.checked, "\(tally)")
        #expect(tally.naive > 0, "\(tally)")
    }

    @Test("a run gives the same numbers with and without passing unread steps (dual GF, dual WN, bdf)",
          arguments: ["gf-dual", "wn-dual", "gf-bdf"])
    func sameRunEitherWay(name: String) throws {
        let (p, x0) = try smallCase()
        let kind: FlowKind = name.hasPrefix("wn") ? .wn : .gf
        let y0 = kind == .gf ? x0 : WeightNormFlow.initialState(x0: x0)
        let saves = [1.0, 10, 100, 1000]
        let threshold = 1e-22 * p.loss([Double](repeating: 0, count: p.weightCount))
        func integrate(skipping: Bool) throws -> (run: ODERun, rows: [TrajectoryRow], converged: Bool, skipped: Int) {
            let f = flow(kind, p)  // a fresh flow: its residual reference (§6b) must not carry over
            let stop = StopCriteria(flow: f, lossBelow: threshold, speedBelow: nil)
            stop.usesLowerBound = skipping
            let recorder = TrajectoryRecorder(flow: f, enabled: true)
            if name.hasSuffix("dual") {
                let solver = try DualSolver(flow: f, rtol: 1e-10, maxSteps: 100_000)
                solver.skipsUnreadSteps = skipping
                let run = solver.integrate(from: 0, y0: y0, to: 1e12, saveTimes: saves, observers: [stop, recorder])
                return (run, recorder.rows, stop.converged, solver.skippedSteps)
            }
            let solver = try BDFSolver(system: f, options: ODEOptions(rtol: 1e-10, atol: 1e-18, maxSteps: 100_000))
            let run = solver.integrate(from: 0, y0: y0, to: 1e12, saveTimes: saves, observers: [stop, recorder])
            return (run, recorder.rows, stop.converged, 0)
        }
        let fast = try integrate(skipping: true), plain = try integrate(skipping: false)
        #expect(fast.converged && plain.converged)
        #expect(fast.run.t == plain.run.t && fast.run.y == plain.run.y)
        #expect(fast.run.stats.acceptedSteps == plain.run.stats.acceptedSteps)
        #expect(fast.run.stats.rhsEvaluations == plain.run.stats.rhsEvaluations)
        #expect(fast.rows.map(\.t) == plain.rows.map(\.t) && fast.rows.map(\.x) == plain.rows.map(\.x))
        if name.hasSuffix("dual") {
            #expect(fast.skipped > fast.run.stats.acceptedSteps / 2, "\(name): \(fast.skipped) of \(fast.run.stats.acceptedSteps) steps passed")
            #expect(plain.skipped == 0)
        }
    }
}
