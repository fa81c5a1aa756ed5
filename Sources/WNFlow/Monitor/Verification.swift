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
            // The monitor saw the last step: under dual coordinates it holds that step's logs.
            let ctx = monitor.context
            let finalLog = ctx.hasLogState && ctx.t == result.t ? ctx.logState : nil
            result.monitor += limitChecks(simulation: sim, result: result, rule: monitor.rule, finalLogState: finalLog)
        }
        result.monitor += extraChecks(config, result)
        // A discrete run against the flow's limit and theorems: measurements (`DiscreteRuns`).
        result.monitor = DiscreteRuns.measured(result.monitor, flow: config.model.flow,
                                               step: config.model.flow.isDiscrete ? config.model.step : nil)
        result.warnings += predictionWarnings(config)
        if let hint = driftHint(result.monitor) { result.warnings.append(hint) }
        return Verification(config: config, result: result, skipped: monitor?.skipped ?? [])
    }

    /// When `predict-limit` fails while the invariant checks pass with a measured drift above
    /// its tolerance, the run itself is off its invariant by more than the comparison allows
    /// (the invariant checks' tolerances carry their conditioning, `predict-limit`'s does not):
    /// say so, and that a smaller rtol tells the run's error from the theorem's. Signed WN,
    /// L = 5: `predict-limit` 1.8e-4 against 6.5e-7 with `lemma-3.9` at 4.2e-5 (tolerance
    /// 3.8e-3); at rtol 1e-11 and 1e-13 the gap fell to 2.3e-7 and 2.4e-9, with the drift.
    static func driftHint(_ reports: [CheckReport]) -> String? {
        guard let limit = reports.first(where: { $0.name == "predict-limit" }), !limit.passed, !limit.isMeasurement
        else { return nil }
        let invariants = reports.filter {
            ["lemma-3.7-invariant", "lemma-3.8-invariant", "lemma-3.9-effective-init"].contains($0.name)
                && $0.passed && !$0.byConstruction
        }
        guard let worst = invariants.max(by: { $0.maxViolation < $1.maxViolation }),
              worst.maxViolation > limit.tolerance else { return nil }
        return "predict-limit failed (\(JSON.format(limit.maxViolation)) against \(JSON.format(limit.tolerance))) while "
            + "\(worst.name) passed with a measured drift of \(JSON.format(worst.maxViolation)), itself above that tolerance: "
            + "the run is off its invariant by about as much; rerun with a smaller integrator.rtol to tell the run's error "
            + "from the prediction's (the gap should shrink with rtol if the run is the cause)"
    }

    /// Comparisons of the run with the theory predictor (MATH.md §4), each
    /// held to the monitor's tolerance rule after the run's step count:
    /// - `predict-limit`: `‖z_∞ − z_pred‖ / ‖z_pred‖` (Bregman projection);
    /// - `predict-g-inf`, `predict-log-rho` (constant-rate WN): the WN fixed
    ///   point `g = ‖X(x₀/ρ(g))‖` against the run's `g` and `log ρ`
    ///   (log ρ compared relative to `max(1, |log ρ|)`, with the tolerance times
    ///   `κ = 1 + |2c g∞² − 1|/max(1, |log ρ|)`: a relative error δ of g moves log ρ by `(2cg² − 1)δ`);
    /// - `bound-weighted-l1-gap`: the run's own weighted ℓ1 gap stays below
    ///   the a-posteriori bound computed from the prediction;
    /// - `bound-log-rho` (3.19): the run's log ρ is at least the lower bound.
    /// Nothing is compared when the run did not converge (`limit-residual`
    /// already fails then) or the predictor does not apply (a non-positive
    /// start at depth ≥ 2, an explicit g₀/v₀).
    public static func predictorComparisons(_ config: SimulationConfig, _ result: SimulationResult) -> [CheckReport] {
        predictorComparisons(config, result, ownError: nil)
    }

    /// `predictorComparisons` with the predictor's own error replaced by `ownError` when given
    /// (tests of the measurement fallback).
    static func predictorComparisons(_ config: SimulationConfig, _ result: SimulationResult,
                                     ownError: PredictionError?) -> [CheckReport] {
        guard result.status == .converged, let pred = try? Prediction(config: config) else { return [] }
        let sim0 = config.model.flow.isWeightNormalized
            ? WeightNormFlow.initialState(x0: config.x0, vNorm: config.vNorm) : config.x0
        let rule = ToleranceRule(config: config, initialState: sim0)
        let tol = rule.tolerance(steps: result.stats.acceptedSteps)
        var out: [CheckReport] = []
        func add(_ name: String, _ v: Double, _ tolerance: Double, _ quantity: String) {
            out.append(CheckReport(name: name, maxViolation: v, tolerance: tolerance, passed: v <= tolerance,
                                   tWorst: result.t, quantity: quantity))
        }
        // A comparison whose tolerance the predictor's own error would widen past 100× the rule's
        // is no test of the run: it is reported as a measurement (no verdict).
        func compare(_ name: String, _ v: Double, rule base: Double, own: Double, _ quantity: String) {
            if own > 100 * base {
                out.append(CheckReport(name: name, maxViolation: v, tolerance: base + own, passed: true, tWorst: result.t,
                                       quantity: quantity + "; not a verdict: the predictor's own error \(JSON.format(own)) "
                                           + "exceeds 100× the tolerance \(JSON.format(base))",
                                       isMeasurement: true, value: v))
            } else {
                add(name, v, base + own, quantity)
            }
        }
        // Depth-1 constant-rate WN: g may cross 0, and both signs of the root satisfy every
        // invariant (docs/math.md §4c); the run's sign of g_∞ picks the branch compared.
        let branch = (result.g ?? 0) < 0 ? pred.negativeBranch : nil
        let zPred = branch?.z ?? pred.z
        let which = branch == nil ? "" : ", its g < 0 branch (depth 1: g crossed 0)"
        let dz = zip(result.z, zPred).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        // An L ≥ 3 prediction's own error (rounding of Newton, or entries at its residual's
        // level, LimitPredictor's `PredictionError`) widens the comparisons with it.
        let own = ownError ?? pred.report.prediction.errorEstimate
        let ownNote = own.map { "; tolerance includes the predictor's own error \(JSON.format($0.z)) in z, \(JSON.format($0.g)) in g" } ?? ""
        // The run stops at a residual, not at the limit: twice the distance that residual
        // leaves (`stopDistance`) joins the tolerance. It matters only at rtol ≲ 1e-13, where
        // the rule's tolerance fell below it (6.8e-12 against 3.8e-12 at rtol 1e-14, the same
        // error under bdf, msbdf, bsimp and dual).
        // Only for a stop by the loss rule: the estimate is one linearized step (a run stopped
        // by speed_below at a saddle, loss 0.14, would get a tolerance of 2).
        let stop = !result.stoppedBySpeed ? 2 * (stopDistance(config.problem, x: result.x) ?? 0) / max(norm2(zPred), .leastNormalMagnitude) : 0
        let stopNote = stop > 0 ? "; tolerance includes \(JSON.format(stop)) for the residual the run stopped at" : ""
        compare("predict-limit", dz / max(norm2(zPred), .leastNormalMagnitude), rule: tol + stop, own: own?.z ?? 0,
            "‖z_∞ − z_pred‖/‖z_pred‖, z_pred the Bregman projection (\(pred.report.prediction.method))\(which); relative, dimensionless" + ownNote + stopNote)
        if let gi = branch?.gInf ?? pred.report.gInf, let g = result.g, config.model.flow == .wn || config.model.flow == .wnGD {
            compare("predict-g-inf", abs(g - gi) / abs(gi), rule: tol, own: own?.g ?? 0,
                "|g_∞ − g_pred|/|g_pred| from g = ‖X(x₀/ρ(g))‖\(which); relative" + ownNote)
        }
        if let lp = pred.report.logRho, let lr = result.logRho {
            // log ρ inherits g's error: a relative error δ of g moves it by (2cg² − 1)δ, which
            // the measure divides by max(1, |log ρ|) (signed WN, L = 4, M = 10, N = 25: g off
            // by 3.2e-10 gave 1.1e-8 here, with 2cg² = 28 and log ρ = 6.6).
            let gi = abs(branch?.gInf ?? pred.report.gInf ?? 0)
            let c = magnificationConstant(etaG: config.model.etaG, etaV: config.model.etaV, vNorm0: config.vNorm)
            let kappa = 1 + abs(2 * c * gi * gi - 1) / max(1, abs(lp))
            compare("predict-log-rho", abs(lr - lp) / max(1, abs(lp)),
                    rule: rule.tolerance(conditioning: kappa, steps: result.stats.acceptedSteps), own: kappa * (own?.g ?? 0),
                "|log ρ_∞ − log ρ_pred|/max(1, |log ρ_pred|) (dimensionless); tolerance × κ = 1 + |2c g_∞² − 1|/max(1, |log ρ_pred|) = \(JSON.format(kappa))" + ownNote)
        }
        let b = pred.report.bounds
        if let w = pred.report.weights, let qw = pred.report.weightedL1Min, let bound = b.weightedGapBound {
            let zz = config.problem.signed ? config.problem.endToEnd(result.x) : result.z
            let zAug = config.problem.signed ? result.x.map { ipow($0, config.problem.depth) } : zz
            let gap = zip(w, zAug).map { $0 * $1 }.reduce(0, +) - qw
            let slack = tol * max(abs(qw), 1)
            add("bound-weighted-l1-gap", max(0, gap - bound), slack,
                "excess of ‖z_∞‖_{w,1} − Q_w = \(JSON.format(gap)) over its a-posteriori bound \(JSON.format(bound)) (MATH.md §4); same unit as ‖z‖₁")
        }
        if let lb = b.logRhoLowerBound, let lr = result.logRho {
            add("bound-log-rho", max(0, lb - lr) / max(1, abs(lb)), tol,
                "shortfall of log ρ_∞ = \(JSON.format(lr)) below the (3.19) lower bound \(JSON.format(lb)); dimensionless")
        }
        return out
    }

    /// How far the end-to-end `z` still is from the limit when the run stops at the residual
    /// `e = Ã x^L − y` (computed compensated): the Bregman-projection step that removes `e`,
    /// `δz = −D Ãᵀ (Ã D Ãᵀ)⁻¹ e` with `D = diag(x^{2L−2})` (∝ dz/dh_L, h_L the invariant map of
    /// MATH.md §3; one Newton step of the predictor's dual problem, folded for signed runs),
    /// as `‖δz‖`. Nil when `Ã D Ãᵀ` is singular (zero weights, dependent rows).
    static func stopDistance(_ p: Problem, x: [Double]) -> Double? {
        let m = p.matrix.rows, w = p.matrix.cols, L = p.depth
        guard x.count == w, m > 0 else { return nil }
        var e = p.accurateResidual(x)
        let d = x.map { ipow(abs($0), 2 * L - 2) }
        var gram = [Double](repeating: 0, count: m * m)
        var scratch: [Double] = []
        gram.withUnsafeMutableBufferPointer { DualKernel.weightedGram(p.matrix, weights: d, alpha: 1, into: $0.baseAddress!, ld: m,
                                                                       scratch: &scratch, chunk: 64) }
        let solved = gram.withUnsafeMutableBufferPointer { g -> Bool in
            guard choleskyFactorInPlace(g.baseAddress!, m) else { return false }
            e.withUnsafeMutableBufferPointer { choleskySolveInPlace(g.baseAddress!, m, $0.baseAddress!) }
            return true
        }
        guard solved, e.allSatisfy({ $0.isFinite }) else { return nil }
        let atw = p.matrix.multiplyTransposed(e)
        let dzAug = (0..<w).map { d[$0] * atw[$0] }
        let dz = p.signed ? (0..<p.n).map { dzAug[$0] - dzAug[p.n + $0] } : dzAug
        let r = norm2(dz)
        return r.isFinite ? r : nil
    }

    /// Legal but suspect inputs the theory flags (reported, not failed): the
    /// kernel assumption of Thm 2.2 failing, and WN started with g₀ above the
    /// predicted g_∞ (MATH.md §4: then ρ first grows through log(g₀/g)).
    public static func predictionWarnings(_ config: SimulationConfig) -> [String] {
        guard let pred = try? Prediction(config: config) else { return [] }
        var out: [String] = []
        if pred.report.kernelPositive == false {
            out.append("kernel assumption (Thm 2.2) fails: no w > 0 with Aw = 0; convergence to a zero-loss point is not guaranteed")
        }
        if config.model.flow == .wn || config.model.flow == .wnGD, let gi = pred.report.gInf {
            let g0 = norm2(config.x0)
            if g0 > gi {
                out.append("g₀ = \(JSON.format(g0)) is above the predicted g_∞ = \(JSON.format(gi)): the flow shrinks g, and the magnification ρ is driven by log(g₀/g)")
            }
        }
        return out
    }

    /// Identities of the limit that need no predictor:
    /// - `limit-residual`: `‖Ã z_∞ − y‖ / ‖y‖` ≤ `√(2 loss_below)/‖y‖` — the run
    ///   reached `S` (`Ãz = y`); fails when it stopped at t_end/max_steps, and is a
    ///   measurement where `ZeroLossSet` finds no zero-loss point at all and the stop lies
    ///   below the lowest reachable loss.
    /// - `limit-kkt`: the optimality condition of the Bregman projection
    ///   (MATH.md §4, KKT `h_L(x_∞) = h_L(x̃₀) + Ãᵀλ`), i.e.
    ///   `P h_L(x_∞) = P h_L(x̃₀)` with `x̃₀ = x₀` (GF, time-dependent WN) or
    ///   `x₀/ρ_∞` (constant-rate WN), measured as Lemma 3.7/3.9 on the two
    ///   end points only, same tolerance. `finalLogState` is `log|state|` at the end where the
    ///   solver kept it (dual coordinates, `AcceptedStep.logY`): weights below double range
    ///   are 0 in `result.state`, and their logs are what the check needs.
    public static func limitChecks(simulation sim: Simulation, result: SimulationResult, rule: ToleranceRule,
                                   finalLogState: [Double]? = nil) -> [CheckReport] {
        let cfg = sim.config
        var out: [CheckReport] = []
        let yn = norm2(cfg.problem.y)
        // Compensated: the plain sum's rounding (ε|Ã||x^L|) can exceed the threshold itself.
        let e = cfg.problem.accurateResidual(result.x)
        // y = 0: the residual itself (relative to ‖y‖ it read 3.6e291 against 6.4e157).
        let scale = yn > 0 ? yn : 1
        let rel = norm2(e) / scale
        let tol = (2 * cfg.lossThreshold).squareRoot() / scale
        var residualReport = CheckReport(name: "limit-residual", maxViolation: rel, tolerance: tol, passed: rel <= tol,
                                         tWorst: result.t,
                                         quantity: yn > 0
                                             ? "‖Ã z_∞ − y‖ / ‖y‖ at the end (status \(result.status.rawValue); relative residual, dimensionless)"
                                             : "‖Ã z_∞‖ at the end (status \(result.status.rawValue); y = 0, so the absolute residual)")
        // No weights reach zero loss, the stop lies below the lowest loss they reach, and the
        // run levelled off at that minimum: the residual is a measurement, not a failed claim
        // (a correct GF run, M = N = 9, y outside the cone, failed verify on it alone). A run
        // that stopped short of a reachable loss_below, or of the minimum, still fails.
        if rel > tol, let u = sim.unreachableStop(finalLoss: result.loss) {
            if u.atMinimum {
                residualReport.isMeasurement = true
                residualReport.passed = true
                residualReport.value = rel
                residualReport.quantity += "; measured, not judged: " + u.why + ", and the run ended at that minimum"
            } else {
                residualReport.quantity += "; " + u.why + ", and the run ended above that minimum (loss \(JSON.format(result.loss)))"
            }
        }
        out.append(residualReport)
        // KKT: feed a fresh invariant check the two end points.
        let L = cfg.problem.depth
        let kind = cfg.model.flow
        // Lemma 3.7 (GF, time-dependent WN) needs a start without zeros, either sign; Lemma 3.9
        // (constant-rate WN) that and g₀ > 0.
        let nonzero = sim.initialState.allSatisfy({ $0 != 0 })
        let startOK = L == 1 || nonzero && (!kind.isWeightNormalized || kind == .wnTimeDependent || sim.initialState[0] > 0)
        guard startOK, result.state.count == sim.initialState.count,
              let ctx = try? MonitorContext(flow: sim.flow) else { return out }
        // Two points only: a weight at 0 at the end is taken as underflow (the run's own
        // checks saw the steps between).
        ctx.zerosAreUnderflow = true
        let check: any Check
        switch kind {
        case .gf, .gd, .wnTimeDependent:
            check = Lemma37Invariant(context: ctx, rule: rule)
        case .wn, .wnGD:
            check = Lemma39EffectiveInit(context: ctx, rule: rule, etaG: cfg.model.etaG, etaV: cfg.model.etaV,
                                         vNorm0: norm2(Array(sim.initialState.dropFirst())))
        }
        sim.initialState.withUnsafeBufferPointer { _ = check.observe(AcceptedStep(t: 0, y: $0, h: 0, saveIndex: nil, stepNumber: 0)) }
        let logs = finalLogState?.count == result.state.count ? finalLogState : nil
        result.state.withUnsafeBufferPointer { y in
            func observe(_ logY: UnsafeBufferPointer<Double>?) {
                _ = check.observe(AcceptedStep(t: result.t, y: y, h: 0, saveIndex: nil,
                                               stepNumber: max(1, result.stats.acceptedSteps), logY: logY))
            }
            if let logs { logs.withUnsafeBufferPointer { observe($0) } } else { observe(nil) }
        }
        var r = check.report()
        // GF under dual coordinates: P log x_∞ = P log x₀ exactly (Lemma 3.7's construction).
        r.byConstruction = result.method == Method.dual.description && !kind.isWeightNormalized
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
            let verdict = r.isMeasurement ? "MEASURED" : (r.passed ? "PASS" : "FAIL") + (r.byConstruction ? " (by construction)" : "")
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
            let verdict = r.isMeasurement ? "measured" : (r.passed ? "PASS" : "**FAIL**") + (r.byConstruction ? " (by construction)" : "")
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
