// example-magnification: the magnification ρ_∞ and the ℓ1 gap ‖z_∞‖₁ − Q
// against the learning-rate ratio η (MATH.md §3–4), GF as the reference.
// Usage: swift run example-magnification [--fast]
import Foundation
import WNFlow

let fast = CommandLine.arguments.contains("--fast") || ProcessInfo.processInfo.environment["WNFLOW_FAST"] != nil
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
let runs = ParallelRunner.map(count: etas.count + 1) { i -> SimulationResult in
    let cfg = i == 0 ? gfConfig : try! config(flow: "wn", eta: etas[i - 1])
    return Simulation(config: cfg).run(recordTrajectory: false)
}
func gap(_ r: SimulationResult) -> Double { r.z.reduce(0, +) - q }
print("Q = min ℓ1 over S₊ = \(q)")
print(String(format: "%-8s %-12s %-12s %-10s", "eta", "log rho", "l1 gap", "status"))
print(String(format: "%-8s %-12s %-12.4g %-10s", "GF", "0", gap(runs[0]), runs[0].status.rawValue))
for (k, eta) in etas.enumerated() {
    let r = runs[k + 1]
    print(String(format: "%-8g %-12.5g %-12.4g %-10s", eta, r.logRho ?? .nan, gap(r), r.status.rawValue))
}
print("smaller η → larger ρ → smaller effective init x₀/ρ → smaller ℓ1 gap (MATH.md §4)")
