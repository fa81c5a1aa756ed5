// example-trajectory: x_n(t), g(t) and log ρ(t) of a WN run on log time,
// plotted with gnuplot to out/example-trajectory/trajectory.png and .svg.
// Usage: swift run example-trajectory [--fast] [OUT_DIR]
import Foundation
import WNFlow

let args = ExampleArguments.parseOrExit(usage: "example-trajectory [--fast] [OUT_DIR]", acceptsFolder: true)
let fast = args.fast
let out = ExampleArguments.folderOrExit(args.folder ?? "out/example-trajectory")
let (m, n) = fast ? (10, 25) : (40, 100)
let eta = 0.05
let config = try SimulationConfig.parse("""
{"problem": {"generate": {"M": \(m), "N": \(n), "sparsity": 3, "seed": 1}},
 "model": {"flow": "wn", "depth": 2, "eta_g": \(eta)},
 "init": {"scale": 0.05, "direction": "abs-gaussian", "seed": 2},
 "record": {"points": \(fast ? 60 : 300)}}
""")
let result = Simulation(config: config).run()
let table = TrajectoryTable(result: result)
let logRho = table.logRho(etaG: eta, etaV: 1) ?? []
print("t            loss          g           log rho")
for k in stride(from: 0, to: table.t.count, by: max(1, table.t.count / 12)) {
    print(String(format: "%-12.4g %-13.4g %-11.5g %.5g", table.t[k], table.loss[k], table.g[k] ?? .nan, logRho[k]))
}
var info = TrajectoryPlot.Info(flow: "wn", depth: 2)
info.etaG = eta
info.status = result.status.rawValue
let base = URL(fileURLWithPath: out).standardizedFileURL.path + "/trajectory"
ExampleArguments.orExit("plotting to \(out)") {
    try Gnuplot.run(script: TrajectoryPlot.script(table: table, info: info, base: base), scriptPath: out + "/trajectory.gp")
}
print("plots: \(base).png, \(base).svg")
