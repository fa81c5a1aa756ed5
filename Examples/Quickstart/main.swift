// example-quickstart: one WN run on a generated problem, verified against
// the paper's lemmas with the library (`Verification.run`).
// Usage: swift run example-quickstart [--fast]
import Foundation
import WNFlow

let fast = ExampleArguments.parseOrExit(usage: "example-quickstart [--fast]").fast
let (m, n) = fast ? (10, 25) : (40, 100)
let config = try SimulationConfig.parse("""
{"problem": {"generate": {"M": \(m), "N": \(n), "sparsity": 3, "seed": 1}},
 "model": {"flow": "wn", "depth": 2, "eta_g": 0.05},
 "init": {"scale": 0.1, "direction": "abs-gaussian", "seed": 2},
 "record": {"points": 50}}
""")
let v = Verification.run(config: config)
let r = v.result
print("WN, L = 2, N = \(n), M = \(m): status \(r.status.rawValue), loss \(r.loss), log ρ \(r.logRho ?? .nan)")
if let truth = config.problem.groundTruth {
    let err = zip(r.z, truth).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
    print("reconstruction error ‖z_∞ − z*‖₂ = \(err)")
}
print(v.table)
print(v.allPassed ? "all checks passed" : "failed checks: \(v.failed.joined(separator: ", "))")
exit(v.allPassed && r.status == .converged ? 0 : 1)
