import ArgumentParser
import Foundation
import WNFlow

/// `wnflow predict CONFIG.json --out FILE`: the limit without integrating
/// (MATH.md §4): Bregman projection by dual Newton, the WN fixed point for
/// g_∞ and log ρ, ℓ1 minima and the kernel assumption by LP, and bounds.
struct Predict: ParsableCommand, WritesOutput {
    static let configuration = CommandConfiguration(
        abstract: "Predict the limit without integrating: z, x, g_inf, log_rho, l1_min, weighted_l1_min, kernel_positive, bounds.")

    @Argument(help: "The run's CONFIG.json.")
    var config: String

    @Option(name: .long, help: "Output JSON file.")
    var out: String

    @Flag(name: .long, help: "Print nothing on success.")
    var quiet = false

    @Flag(name: .long, help: "Only the limit (z, x, g_inf, log_rho): skip the l1 LPs, the kernel assumption and the bounds built on them (null in the JSON); about ten times faster.")
    var limitOnly = false

    func run() throws {
        let cfg = try SimulationConfig.load(path: config)
        let prediction: Prediction
        do {
            prediction = try Prediction(config: cfg, limitOnly: limitOnly)
        } catch let e as TheoryError {
            throw CommandExit(code: ExitStatus.integrationFailed, message: "error: prediction failed: \(e)")
        }
        do {
            try AtomicFile.write(prediction.json(config: cfg).serialized(), to: out)
        } catch {
            throw ConfigError.cannotWrite(out, error)
        }
        if quiet { return }
        let r = prediction.report
        var lines = ["flow \(cfg.model.flow.rawValue)  depth \(cfg.model.depth)\(cfg.problem.signed ? "  signed" : "")  M=\(cfg.problem.m) N=\(cfg.problem.n)  method \(r.prediction.method) (\(r.prediction.iterations) iterations)"]
        if let g = r.gInf { lines.append("g_inf            \(fmt(g))") }
        if let b = r.negativeBranch { lines.append("g_inf if g < 0   \(fmt(b.gInf))  (negative_branch: z, x of that limit)") }
        if let lr = r.logRho { lines.append("log rho          \(fmt(lr))") }
        if let q = r.l1Min { lines.append("l1 min (Q)       \(fmt(q))   gap ‖z‖₁ − Q = \(r.bounds.l1Gap.map(fmt) ?? "–")") }
        if let qw = r.weightedL1Min {
            // The gap is a difference of two sums of size Q_w: at WN log ρ = 2.9e10 (Q_w =
            // 5.8e10) it read 7.6e-6 against a bound of 0, which is its rounding.
            var bound = r.bounds.weightedGapBound.map(fmt) ?? "–"
            if let gap = r.bounds.weightedGap, let b = r.bounds.weightedGapBound, gap > b {
                let rounding = 16 * Double.ulpOfOne * abs(qw)
                bound += gap - b <= rounding ? " + rounding (16ε·Q_w = \(fmt(rounding)))" : "  EXCEEDED by \(fmt(gap - b))"
            }
            lines.append("weighted l1 min  \(fmt(qw))   gap \(r.bounds.weightedGap.map(fmt) ?? "–") ≤ bound \(bound)")
        }
        if let lb = r.bounds.logRhoLowerBound { lines.append("log rho ≥        \(fmt(lb))  (3.19)") }
        let kernel = r.kernelPositive.map { $0 ? "holds" : "fails" } ?? "not checked (--limit-only)"
        lines.append("kernel assumption \(kernel)   (Gaussian probability \(fmt(r.bounds.kernelProbabilityGaussian)))")
        lines.append("KKT residual     \(fmt(r.prediction.kktResidual))")
        if let e = r.prediction.errorEstimate { lines.append("own error        \(fmt(e.z)) in z, \(fmt(e.g)) in g (relative; verify widens by it)") }
        if let truth = cfg.problem.groundTruth {
            let err = zip(prediction.z, truth).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
            lines.append("‖z − z*‖         \(fmt(err))")
        }
        lines.append("time             \(fmt(prediction.wallSeconds * 1000)) ms")
        for w in r.warnings + cfg.warnings { lines.append("warning          \(w)") }
        print(lines.joined(separator: "\n"))
    }
}
