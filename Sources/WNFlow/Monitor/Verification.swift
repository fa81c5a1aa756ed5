import Foundation
import GSLKit

/// `wnflow verify`: one simulation with every applicable check (`Monitor`),
/// plus identities the limit must satisfy, plus any further comparisons
/// (`extraChecks`: the theory predictor's plug-in point).
public struct Verification {
    public var config: SimulationConfig
    /// The run; `result.monitor` holds every report below.
    public var result: SimulationResult
    /// Online checks, then limit identities, then extra checks.
    public var reports: [CheckReport] { result.monitor }
    /// Checks that did not apply, with reasons.
    public var skipped: [(name: String, reason: String)]

    /// Whether every pass/fail check passed.
    public var allPassed: Bool { reports.allSatisfy(\.passed) }
    /// Names of the failed checks.
    public var failed: [String] { reports.filter { !$0.passed }.map(\.name) }

    /// Simulates `config` with the monitor, then appends `limitChecks` and
    /// `extraChecks(config, result)` (e.g. the predicted limit against the
    /// integrated one; empty until the theory predictor lands).
    public static func run(config: SimulationConfig,
                           extraChecks: (SimulationConfig, SimulationResult) -> [CheckReport] = predictorComparisons)
        -> Verification {
        let sim = Simulation(config: config)
        let (result0, monitor) = sim.runMonitored()
        var result = result0
        if let monitor {
            result.monitor += limitChecks(simulation: sim, result: result, rule: monitor.rule)
        }
        result.monitor += extraChecks(config, result)
        return Verification(config: config, result: result, skipped: monitor?.skipped ?? [])
    }

    /// Comparisons of the run with the theory predictor (MATH.md §4). The
    /// plug-in point for `Theory/`: return one `CheckReport` per compared
    /// quantity (e.g. `predict-limit`: ‖z_∞ − z_pred‖/‖z_pred‖). Empty for now.
    public static func predictorComparisons(_ config: SimulationConfig, _ result: SimulationResult) -> [CheckReport] {
        []
    }

    /// Identities of the limit that need no predictor:
    /// - `limit-residual`: `‖Ã z_∞ − y‖ / ‖y‖` ≤ `√(2 loss_below)/‖y‖` — the run
    ///   reached `S` (`Ãz = y`); fails when it stopped at t_end/max_steps.
    /// - `limit-kkt`: the optimality condition of the Bregman projection
    ///   (MATH.md §4, KKT `h_L(x_∞) = h_L(x̃₀) + Ãᵀλ`), i.e.
    ///   `P h_L(x_∞) = P h_L(x̃₀)` with `x̃₀ = x₀` (GF, time-dependent WN) or
    ///   `x₀/ρ_∞` (constant-rate WN), measured as Lemma 3.7/3.9 on the two
    ///   end points only, same tolerance.
    public static func limitChecks(simulation sim: Simulation, result: SimulationResult, rule: ToleranceRule) -> [CheckReport] {
        let cfg = sim.config
        var out: [CheckReport] = []
        let yn = norm2(cfg.problem.y)
        let e = cfg.problem.residual(result.x)
        let rel = norm2(e) / max(yn, .leastNormalMagnitude)
        let tol = (2 * cfg.lossThreshold).squareRoot() / max(yn, .leastNormalMagnitude)
        out.append(CheckReport(name: "limit-residual", maxViolation: rel, tolerance: tol, passed: rel <= tol,
                               tWorst: result.t,
                               quantity: "‖Ã z_∞ − y‖ / ‖y‖ at the end (status \(result.status.rawValue); relative residual, dimensionless)"))
        // KKT: feed a fresh invariant check the two end points.
        let L = cfg.problem.depth
        let kind = cfg.model.flow
        guard L == 1 || sim.initialState.allSatisfy({ $0 > 0 }), result.state.count == sim.initialState.count,
              let ctx = try? MonitorContext(flow: sim.flow) else { return out }
        let check: any Check
        switch kind {
        case .gf, .gd, .wnTimeDependent:
            check = Lemma37Invariant(context: ctx, rule: rule)
        case .wn, .wnGD:
            check = Lemma39EffectiveInit(context: ctx, rule: rule, etaG: cfg.model.etaG, etaV: cfg.model.etaV,
                                         vNorm0: norm2(Array(sim.initialState.dropFirst())))
        }
        sim.initialState.withUnsafeBufferPointer { _ = check.observe(AcceptedStep(t: 0, y: $0, h: 0, saveIndex: nil, stepNumber: 0)) }
        result.state.withUnsafeBufferPointer { _ = check.observe(AcceptedStep(t: result.t, y: $0, h: 0, saveIndex: nil, stepNumber: max(1, result.stats.acceptedSteps))) }
        var r = check.report()
        r.name = "limit-kkt"
        r.quantity = "at the limit: " + r.quantity + (kind.isWeightNormalized && kind != .wnTimeDependent ? " with x̃₀ = x₀/ρ_∞" : " with x̃₀ = x₀")
        out.append(r)
        return out
    }

    /// The table printed by `wnflow verify`: check, measured, tolerance, verdict.
    public var table: String {
        let w = max(28, reports.map { $0.name.count }.max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        var lines = [pad("check", w) + "  " + pad("measured", 12) + "  " + pad("tolerance", 12) + "  verdict"]
        for r in reports {
            let measured = r.isMeasurement ? (r.value.map { String(format: "%.4g", $0) } ?? "n/a") : String(format: "%.3e", r.maxViolation)
            let tol = r.isMeasurement ? "-" : String(format: "%.3e", r.tolerance)
            let verdict = r.isMeasurement ? "MEASURED" : (r.passed ? "PASS" : "FAIL")
            lines.append(pad(r.name, w) + "  " + pad(measured, 12) + "  " + pad(tol, 12) + "  " + verdict)
        }
        return lines.joined(separator: "\n")
    }

    /// `report.md`.
    public var markdown: String {
        let p = config.problem
        var s = "# wnflow verify\n\n"
        s += "flow `\(config.model.flow.rawValue)`, depth \(config.model.depth)\(config.model.signed ? ", signed" : ""), M = \(p.m), N = \(p.n), method `\(result.method)`, rtol \(JSON.format(config.integrator.rtol)), atol \(JSON.format(config.integrator.atol))\n\n"
        s += "status **\(result.status.rawValue)** at t = \(JSON.format(result.t)), loss \(JSON.format(result.loss)), \(result.stats.acceptedSteps) steps\n\n"
        s += "**\(allPassed ? "all checks passed" : "FAILED: " + failed.joined(separator: ", "))**\n\n"
        s += "| check | measured | tolerance | verdict | t worst | quantity |\n|---|---|---|---|---|---|\n"
        for r in reports {
            let measured = r.isMeasurement ? (r.value.map { JSON.format($0) } ?? "n/a") : JSON.format(r.maxViolation)
            let verdict = r.isMeasurement ? "measured" : (r.passed ? "PASS" : "**FAIL**")
            s += "| `\(r.name)` | \(measured) | \(r.isMeasurement ? "–" : JSON.format(r.tolerance)) | \(verdict) | \(JSON.format(r.tWorst)) | \(r.quantity.replacingOccurrences(of: "|", with: "\\|")) |\n"
        }
        if !skipped.isEmpty {
            s += "\n## Not applicable\n\n"
            for (n, r) in skipped { s += "- `\(n)`: \(r)\n" }
        }
        if let m = result.message { s += "\n## Message\n\n\(m)\n" }
        if !result.warnings.isEmpty {
            s += "\n## Warnings\n\n" + result.warnings.map { "- \($0)\n" }.joined()
        }
        s += "\nTolerance rule: κ · [100 (rtol + atol/‖state₀‖∞) √max(1, steps/100) + 10 n ε] (docs/monitor.md).\n"
        return s
    }
}
