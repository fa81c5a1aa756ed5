import Foundation
import Testing
import GSLKit
@testable import WNFlow

@Suite struct BDFFlowLimitTests {
    private func run(_ flow: FlowKind, method: Method, etaG: Double = 0.5) throws -> SimulationResult {
        let d = ProblemGenerator(m: 10, n: 25, sparsity: 3, signed: false, seed: 1).draw()
        let p = try Problem(A: d.A, y: d.y, depth: 2, signed: false, groundTruth: d.groundTruth)
        var model = ModelSpec()
        model.flow = flow
        model.depth = 2
        model.etaG = etaG
        let x0 = InitDirection.uniform.vector(25).map { 0.1 * $0 }
        var it = IntegratorSpec()
        it.method = method
        var rec = RecordSpec()
        rec.points = 0
        let sim = Simulation(config: SimulationConfig(problem: p, model: model, x0: x0, integrator: it, record: rec))
        return sim.run(recordTrajectory: false)
    }

    private func relDiff(_ a: [Double], _ b: [Double]) -> Double {
        var num = 0.0, den = 0.0
        for i in 0..<a.count { num = max(num, abs(a[i] - b[i])); den = max(den, abs(b[i])) }
        return num / den
    }

    @Test func methodNameParses() {
        #expect(Method(name: "bdf") == .bdf)
        #expect(Method.bdf.description == "bdf")
        #expect(Method.allNames.contains("bdf"))
    }

    @Test(arguments: [FlowKind.gf, .wn, .wnTimeDependent]) func limitMatchesMsbdf(flow: FlowKind) throws {
        let ours = try run(flow, method: .bdf)
        let ref = try run(flow, method: .gsl(.msbdf))
        #expect(ours.status == .converged)
        #expect(ref.status == .converged)
        #expect(ours.method == "bdf")
        let d = relDiff(ours.z, ref.z)
        print("\(flow.rawValue): bdf vs msbdf limit rel diff \(d); bdf \(ours.stats), msbdf \(ref.stats)")
        #expect(d < 1e-8)
    }
}
