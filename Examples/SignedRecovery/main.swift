// example-signed: recovery of a signed sparse vector with the signed model
// (2.8) on [A, −A] (MATH.md §5), GF vs WN from the same start.
// Usage: swift run example-signed [--fast]
import Foundation
import WNFlow

let fast = ExampleArguments.parseOrExit(usage: "example-signed [--fast]").fast
let (m, n) = fast ? (10, 25) : (40, 100)
func run(_ flow: String) throws -> (SimulationConfig, SimulationResult) {
    let cfg = try SimulationConfig.parse("""
    {"problem": {"generate": {"M": \(m), "N": \(n), "sparsity": 3, "signed": true, "seed": 7}},
     "model": {"flow": "\(flow)", "depth": 2, "signed": true, "eta_g": 0.05},
     "init": {"scale": 0.3, "direction": "abs-gaussian", "seed": 8},
     "record": {"points": 0}}
    """)
    return (cfg, Simulation(config: cfg).run(recordTrajectory: false))
}
for flow in ["gf", "wn"] {
    let (cfg, r) = try run(flow)
    let truth = cfg.problem.groundTruth!
    let err = zip(r.z, truth).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
    let support = truth.indices.filter { truth[$0] != 0 }
    print("\(flow.uppercased()): status \(r.status.rawValue), ‖z_∞ − z*‖₂ = \(String(format: "%.3g", err))")
    for i in support { print(String(format: "   z*[%d] = %+.4f   z_∞[%d] = %+.4f", i, truth[i], i, r.z[i])) }
}
