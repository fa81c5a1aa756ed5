import Foundation
import Testing
import GSLKit
@testable import WNFlow

/// A random positive point (weights 0.05 … 1).
private func randomPoint(_ n: Int, seed: UInt) -> [Double] {
    let rng = RNG(seed: seed)
    return (0..<n).map { _ in 0.05 + 0.95 * rng.uniform() }
}

private func maxRelDiff(_ a: Matrix, _ b: Matrix) -> Double {
    var num = 0.0, den = 0.0
    for i in 0..<a.storage.count { num = max(num, abs(a.storage[i] - b.storage[i])); den = max(den, abs(b.storage[i])) }
    return num / den
}

@Suite struct RosenbrockFlowJacobianTests {
    @Test(arguments: [1, 2, 3, 4, 5]) func gradientFlowStructuredJacobianMatchesDense(depth: Int) throws {
        for signed in [false, true] {
            let p = try Fixture.problem(m: 6, n: 15, depth: depth, signed: signed, seed: 1)
            let flow = GradientFlow(problem: p)
            let x = randomPoint(flow.dimension, seed: UInt(depth))
            let structured = try flow.lowRankJacobian(t: 0, y: x).dense()
            #expect(maxRelDiff(structured, try flow.jacobianMatrix(of: x)) < 1e-10)
        }
    }

    @Test(arguments: [1, 2, 3, 4, 5]) func weightNormStructuredJacobianMatchesDense(depth: Int) throws {
        for signed in [false, true] {
            let p = try Fixture.problem(m: 6, n: 15, depth: depth, signed: signed, seed: 1)
            for rate in [GRate.constant(0.3), .timeDependent] {
                let flow = WeightNormFlow(problem: p, rate: rate, etaV: 1.3)
                let x0 = randomPoint(p.weightCount, seed: UInt(10 + depth))
                let state = WeightNormFlow.initialState(x0: x0, vNorm: 0.8)
                let structured = try flow.lowRankJacobian(t: 0, y: state).dense()
                #expect(maxRelDiff(structured, try flow.jacobianMatrix(of: state)) < 1e-10,
                        "depth \(depth) signed \(signed) rate \(rate)")
            }
        }
    }
}

@Suite struct RosenbrockFlowLimitTests {
    private func run(_ flow: FlowKind, method: Method, etaG: Double = 0.5) throws -> SimulationResult {
        let p = try Fixture.problem(seed: 1)
        let x0 = InitDirection.uniform.vector(25).map { 0.1 * $0 }
        return Simulation(config: Fixture.config(p, flow: flow, x0: x0, etaG: etaG, method: method))
            .run(recordTrajectory: false)
    }

    @Test(arguments: [FlowKind.gf, .wn, .wnTimeDependent]) func limitMatchesMsbdf(flow: FlowKind) throws {
        let ros = try run(flow, method: .rosenbrock)
        let bdf = try run(flow, method: .gsl(.msbdf))
        #expect(ros.status == .converged)
        #expect(bdf.status == .converged)
        #expect(ros.method == "rosenbrock")
        let d = Fixture.maxRelativeDifference(ros.z, bdf.z)
        print("\(flow.rawValue): rosenbrock vs msbdf limit rel diff \(d); rosenbrock \(ros.stats), msbdf \(bdf.stats)")
        #expect(d < 1e-8)
    }
}
