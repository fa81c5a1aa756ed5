// example-magnification: the magnification ρ_∞ and the ℓ1 gap ‖z_∞‖₁ − Q
// against the learning-rate ratio η (MATH.md §3–4), GF as the reference.
// Usage: swift run example-magnification [--fast]
import Foundation
import WNFlow

let fast = ExampleArguments.parseOrExit(usage: "example-magnification [--fast]").fast
let (m, n) = fast ? (10, 25) : (40, 100)
let etas = fast ? [0.01, 0.1, 1.0] : [0.003, 0.01, 0.03, 0.1, 0.3, 1, 3]
func config(flow: String, eta: Double) throws -> SimulationConfig {
    try SimulationConfig.parse("""
    {"problem": {"generate": {"M": \(m), "N": \(n), "sparsity": 3, "seed": 4}},
     "model": {"flow": "\(flow)", "depth": 2, "eta_g": \(eta)},
     "init": {"scale": 0.5, "direction": "abs-gaussian", "seed": 5},
     "integrator": {"t_end": 1e10}, "record": {"points": 0}}
    """)
}
let gfConfig = try config(flow: "gf", eta: 1)
let q = try L1Minimization.minimum(A: gfConfig.problem.matrix, y: gfConfig.problem.y).value
// Each η on its own worker; results come back in order.
let configs = [gfConfig] + (try etas.map { try config(flow: "wn", eta: $0) })
let runs = ParallelRunner.map(count: configs.count) { i -> SimulationResult in
    Simulation(config: configs[i]).run(recordTrajectory: false)
}
func gap(_ r: SimulationResult) -> Double { r.z.reduce(0, +) - q }
/// Left-aligned in `width` columns (`%-Ns` takes a C string, not a Swift String, on Linux:
/// it printed the header and status columns blank).
func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count) }
print("Q = min ℓ1 over S₊ = \(q)")
print(pad("eta", 9) + pad("log rho", 13) + pad("l1 gap", 13) + "status")
print(pad("GF", 9) + pad("0", 13) + pad(String(format: "%.4g", gap(runs[0])), 13) + runs[0].status.rawValue)
for (k, eta) in etas.enumerated() {
    let r = runs[k + 1]
    print(pad(String(format: "%g", eta), 9) + pad(String(format: "%.5g", r.logRho ?? .nan), 13)
          + pad(String(format: "%.4g", gap(r)), 13) + r.status.rawValue)
}
print("smaller η → larger ρ → smaller effective init x₀/ρ → smaller ℓ1 gap (MATH.md §4)")
