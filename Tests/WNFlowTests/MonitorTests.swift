import Foundation
import Testing
@testable import WNFlow
import GSLKit

// MARK: - Helpers

/// A small generated config (M = 10, N = 25) run to loss 1e-26 at the
/// default tolerances (msbdf, rtol 1e-10, atol 1e-14).
private func smallConfig(flow: String, depth: Int, signed: Bool = false, scale: Double = 0.3,
                         seed: Int = 3, etaG: Double = 0.2, extraModel: String = "", stop: Double = 1e-26) throws -> SimulationConfig {
    try SimulationConfig.parse("""
    {"problem": {"generate": {"M": 10, "N": 25, "seed": \(seed), "signed": \(signed)}},
     "model": {"flow": "\(flow)", "depth": \(depth), "eta_g": \(etaG)\(extraModel)},
     "init": {"scale": \(scale), "direction": "abs-gaussian", "seed": \(seed)},
     "integrator": {"method": "msbdf", "stop": {"loss_below": \(stop)}},
     "record": {"points": 0}}
    """)
}

private func byName(_ reports: [CheckReport]) -> [String: CheckReport] {
    Dictionary(reports.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
}

/// A flow whose right-hand side is the base flow's plus a perturbation
/// `extra(t, y, dydt)` (Jacobian: the base's, which BDF tolerates).
private final class PerturbedFlow: Flow {
    let base: any Flow
    let extra: (Double, UnsafeBufferPointer<Double>, UnsafeMutableBufferPointer<Double>) -> Void
    var problem: Problem { base.problem }
    var kind: FlowKind { base.kind }
    var dimension: Int { base.dimension }
    var hasJacobian: Bool { true }

    init(_ base: any Flow, extra: @escaping (Double, UnsafeBufferPointer<Double>, UnsafeMutableBufferPointer<Double>) -> Void) {
        self.base = base
        self.extra = extra
    }
    func weights(of state: UnsafeBufferPointer<Double>, into x: UnsafeMutablePointer<Double>) { base.weights(of: state, into: x) }
    func rhs(t: Double, y: UnsafeBufferPointer<Double>, dydt: UnsafeMutableBufferPointer<Double>) throws {
        try base.rhs(t: t, y: y, dydt: dydt)
        extra(t, y, dydt)
    }
    func jacobian(t: Double, y: UnsafeBufferPointer<Double>, dfdy: UnsafeMutableBufferPointer<Double>,
                  dfdt: UnsafeMutableBufferPointer<Double>) throws {
        try base.jacobian(t: t, y: y, dfdy: dfdy, dfdt: dfdt)
    }
}

/// Integrates `flow` from `y0` with the monitor of `config`, hitting the
/// times `marks` (window edges) exactly; returns the reports by name.
private func monitoredRun(_ flow: any Flow, config: SimulationConfig, y0: [Double], marks: [Double] = [],
                          tEnd: Double = 1e5) throws -> [String: CheckReport] {
    let monitor = try Monitor(config: config, flow: flow, initialState: y0)
    let stop = StopCriteria(flow: flow, lossBelow: config.lossThreshold, speedBelow: nil)
    let solver = try ODEIntegrator(system: flow, options: ODEOptions(stepper: .msbdf, rtol: config.integrator.rtol,
                                                                     atol: config.integrator.atol))
    _ = solver.integrate(from: 0, y0: y0, to: tEnd, saveTimes: marks, observers: [stop] + monitor.observers)
    return byName(monitor.reports())
}

/// A unit vector in ker Ã with mostly positive entries: `P 1 / ‖P 1‖`.
private func kernelDirection(_ p: Problem) throws -> [Double] {
    let k = try KernelProjector(p.matrix).apply([Double](repeating: 1, count: p.weightCount))
    let n = norm2(k)
    return k.map { $0 / n }
}

private func initialState(_ cfg: SimulationConfig) -> [Double] { Simulation(config: cfg).initialState }

/// Lemma 3.7's report on GF `states` fed as steps at t = 0, 1, 2, … (`logs[k]`: the solver's
/// logs at step k).
private func lemma37Report(_ cfg: SimulationConfig, rule: ToleranceRule, states: [[Double]],
                           logs: [Int: [Double]] = [:]) throws -> CheckReport {
    let check = Lemma37Invariant(context: try MonitorContext(flow: GradientFlow(problem: cfg.problem)), rule: rule)
    for (n, x) in states.enumerated() {
        let ly = logs[n]
        x.withUnsafeBufferPointer { y in
            func observe(_ l: UnsafeBufferPointer<Double>?) {
                _ = check.observe(AcceptedStep(t: Double(n), y: y, h: n == 0 ? 0 : 1, saveIndex: nil, stepNumber: n, logY: l))
            }
            if let ly { ly.withUnsafeBufferPointer { observe($0) } } else { observe(nil) }
        }
    }
    return check.report()
}

// MARK: - True flows: every applicable check passes

struct MonitorTrueFlowTests {
    static let cases: [(String, Int, Bool)] = ["gf", "wn", "wn-timedep"].flatMap { f in
        [1, 2, 3].flatMap { l in [false, true].map { (f, l, $0) } }
    }

    @Test(arguments: cases)
    func everyApplicableCheckPasses(_ c: (String, Int, Bool)) throws {
        let (flow, depth, signed) = c
        let cfg = try smallConfig(flow: flow, depth: depth, signed: signed)
        let sim = Simulation(config: cfg)
        let (result, monitor) = sim.runMonitored(recordTrajectory: false)
        #expect(result.status == .converged)
        let m = try #require(monitor)
        let names = Set(result.monitor.map(\.name))
        // The expected set of checks.
        #expect(names.contains("lemma-3.5-monotone-loss") && names.contains("loss-decay-rate"))
        #expect(names.contains("lemma-3.2-norm") == (flow != "gf"))
        #expect(names.contains("lemma-3.3-sign") == (depth >= 2))
        #expect(names.contains("lemma-3.7-invariant") == (flow != "wn"))
        #expect(names.contains("lemma-3.8-invariant") == (flow == "wn"))
        #expect(names.contains("lemma-3.9-effective-init") == (flow == "wn"))
        #expect(names.contains("lemma-3.18-bregman") == (flow != "wn"))
        #expect(names.contains("signed-coordinate-invariant") == (signed && flow != "wn"))
        for r in result.monitor where !r.isMeasurement {
            #expect(r.passed, "\(flow) L=\(depth) signed=\(signed): \(r.name) \(r.maxViolation) > \(r.tolerance)")
            #expect(r.maxViolation <= r.tolerance)
            // ≤ 100·rtol scaled by the documented rule (κ ≤ 40 here, K ≤ 1e4 steps).
            #expect(r.maxViolation <= 100 * cfg.integrator.rtol * 40 * 10)
        }
        let kappa = try #require(byName(result.monitor)["loss-decay-rate"]?.value)
        #expect(kappa > 0)
        _ = m
    }

    /// Lemma 3.5 down to ℒ = 1e-26: the tail's roundoff and integrator noise
    /// must not count as an increase.
    @Test func monotoneLossPassesDownTo1e26() throws {
        let cfg = try smallConfig(flow: "gf", depth: 2, stop: 1e-26)
        let (result, _) = Simulation(config: cfg).runMonitored(recordTrajectory: false)
        #expect(result.loss <= 1e-26)
        let r = try #require(byName(result.monitor)["lemma-3.5-monotone-loss"])
        #expect(r.passed)
    }

    /// The log-invariants read the solver's logs (`AcceptedStep.logY`) where it gives them: a
    /// weight below double range, 0 in the state, keeps its log (`h = log x` finite; without
    /// the logs it is −∞, and Lemmas 3.8/3.9 failed with violation 1.8e308 on a WN run whose
    /// v entries decayed by e^{-1e5}); WN's `log x = log g + log v − log‖v‖`.
    @Test(arguments: ["gf", "wn"]) func logInvariantsReadTheSolversLogs(flow: String) throws {
        let cfg = try smallConfig(flow: flow, depth: 2, stop: 1e-20)
        let sim = Simulation(config: cfg)
        let context = try MonitorContext(flow: sim.flow)
        var y = sim.initialState
        let off = flow == "wn" ? 1 : 0
        y[off + 3] = 0
        var logs = y.map { log(abs($0)) }
        logs[off + 3] = -1e5
        y.withUnsafeBufferPointer { context.update(AcceptedStep(t: 1, y: $0, h: 1, saveIndex: nil, stepNumber: 1)) }
        context.ensureInvariantMap()
        #expect(context.hBase[3] == -.infinity && context.logWeight(3) == -.infinity)
        y.withUnsafeBufferPointer { yb in
            logs.withUnsafeBufferPointer { context.update(AcceptedStep(t: 2, y: yb, h: 1, saveIndex: nil, stepNumber: 2, logY: $0)) }
        }
        context.ensureInvariantMap()
        #expect(context.hBase[3] == -1e5 && context.hBase.allSatisfy(\.isFinite))
        let expected = flow == "wn" ? logs[0] - 1e5 - log(context.vNorm) : -1e5
        #expect(abs(context.logWeight(3) - expected) <= 1e-12 * 1e5)
        #expect(abs(context.logWeight(0) - log(context.x[0])) <= 1e-13)
    }

    /// A computed GF trajectory whose weight crossed 0 (bdf's overshoot at rounding level:
    /// −4.4e-180 on a depth-2 run continued in weight space after its dual leg): Lemma 3.7
    /// fails (log|x| = −414 there), and both its and Lemma 3.18's `quantity` say a weight
    /// crossed 0; a positive trajectory's reports carry no such note.
    @Test func nonPositiveWeightIsNamedInTheLogChecks() throws {
        let cfg = try smallConfig(flow: "gf", depth: 2, stop: 1e-20)
        let sim = Simulation(config: cfg)
        func reports(crossing: Bool) throws -> [String: CheckReport] {
            let context = try MonitorContext(flow: sim.flow)
            let rule = ToleranceRule(config: cfg, initialState: sim.initialState)
            guard case let .point(z, source) = ZeroLossSet.find(problem: cfg.problem, x0: sim.flow.weights(of: sim.initialState)) else {
                throw ConfigError("test", "no point of S₊")
            }
            let checks: [any Check] = [Lemma37Invariant(context: context, rule: rule),
                                       try Lemma318Bregman(context: context, rule: rule, reference: (z, source))]
            var y = sim.initialState
            for (k, t) in [0.0, 1, 2].enumerated() {
                if k == 2 && crossing { y[3] = -4.4e-180 }
                y.withUnsafeBufferPointer { yb in
                    for c in checks { _ = c.observe(AcceptedStep(t: t, y: yb, h: 1, saveIndex: nil, stepNumber: k)) }
                }
            }
            return Dictionary(uniqueKeysWithValues: checks.map { ($0.name, $0.report()) })
        }
        let crossed = try reports(crossing: true), clean = try reports(crossing: false)
        for name in ["lemma-3.7-invariant", "lemma-3.18-bregman"] {
            let r = try #require(crossed[name]), c = try #require(clean[name])
            // log|x| jumps to −414 there; D_F(z, x²) is blind to the sign and barely moves.
            #expect(r.passed == (name == "lemma-3.18-bregman"))
            #expect(r.quantity.contains("a weight reached -4.4e-180 at t = 2"), "\(r.quantity)")
            #expect(c.passed && !c.quantity.contains("crossed 0"), "\(c.quantity)")
        }
    }

    @Test func toleranceRuleFollowsTheDocumentedFormula() {
        let rule = ToleranceRule(rtol: 1e-10, atol: 1e-14, stateScale: 0.5, dimension: 26)
        let base = 100 * (1e-10 + 1e-14 / 0.5) + 10 * 26 * Double.ulpOfOne
        #expect(abs(rule.base(steps: 50) - base) < 1e-22)
        let b4 = 100 * (1e-10 + 1e-14 / 0.5) * 2 + 10 * 26 * Double.ulpOfOne
        #expect(abs(rule.base(steps: 400) - b4) < 1e-22)
        #expect(abs(rule.tolerance(conditioning: 3, steps: 400) - 3 * b4) < 1e-21)
    }

    @Test func scaledDistanceNeverOverflows() {
        let a: [Double] = [1, 2, 3], b: [Double] = [1, 2, 3]
        // e^{2000} a vs e^{2000} b: equal, distance 0.
        let d0 = scaledRelativeDistance(a, logScaleA: 2000, refA: 4, b, logScaleB: 2000, refB: 4, count: 3)
        #expect(d0 == 0)
        // e^{2000} a vs e^{-2000} b: relative distance ‖a‖/ref.
        let d1 = scaledRelativeDistance(a, logScaleA: 2000, refA: norm2(a), b, logScaleB: -2000, refB: norm2(b), count: 3)
        #expect(abs(d1 - 1) < 1e-12)
    }
}

// MARK: - Broken flows: every check fails

struct MonitorBrokenFlowTests {
    /// lemma-3.7: GF plus a small drift in ker A during t ∈ [0, 2].
    @Test func lemma37FailsOnKernelDrift() throws {
        let cfg = try smallConfig(flow: "gf", depth: 2)
        let base = GradientFlow(problem: cfg.problem)
        let k = try kernelDirection(cfg.problem)
        let flow = PerturbedFlow(base) { t, _, d in
            if t < 2 { for i in 0..<d.count { d[i] += 1e-4 * k[i] } }
        }
        let r = try monitoredRun(flow, config: cfg, y0: cfg.x0, marks: [2])
        let c = try #require(r["lemma-3.7-invariant"])
        #expect(!c.passed && c.maxViolation > 100 * c.tolerance)
    }

    /// lemma-3.7 at L = 3 and L = 1 as well (the log-space and linear paths).
    @Test(arguments: [1, 3])
    func lemma37FailsOnKernelDriftOtherDepths(_ depth: Int) throws {
        let cfg = try smallConfig(flow: "gf", depth: depth)
        let k = try kernelDirection(cfg.problem)
        let flow = PerturbedFlow(GradientFlow(problem: cfg.problem)) { t, _, d in
            if t < 2 { for i in 0..<d.count { d[i] += 1e-4 * k[i] } }
        }
        let r = try monitoredRun(flow, config: cfg, y0: cfg.x0, marks: [2])
        #expect(r["lemma-3.7-invariant"]?.passed == false)
    }

    /// From a mixed-sign start (entries 0, 3, 7 negated) Lemma 3.3 checks each entry's sign
    /// and Lemma 3.7 uses log|x| (L = 2) or the signed x^{2−L} (L = 3): both pass on the
    /// true flow, 3.7 fails with a drift in ker A and 3.3 when a negative entry is pushed
    /// through 0 (t ∈ [0.2, 0.6]).
    @Test(arguments: [2, 3])
    func mixedSignStartIsCheckedAndBrokenFlowsFail(_ depth: Int) throws {
        let cfg = try smallConfig(flow: "gf", depth: depth)
        var y0 = cfg.x0
        for i in [0, 3, 7] { y0[i] = -y0[i] }
        let k = try kernelDirection(cfg.problem)
        let clean = try monitoredRun(GradientFlow(problem: cfg.problem), config: cfg, y0: y0)
        #expect(clean["lemma-3.3-sign"]?.passed == true && clean["lemma-3.7-invariant"]?.passed == true,
                "\(String(describing: clean["lemma-3.7-invariant"]))")
        let drift = PerturbedFlow(GradientFlow(problem: cfg.problem)) { t, _, d in
            if t < 2 { for i in 0..<d.count { d[i] += 1e-4 * k[i] } }
        }
        let drifted = try monitoredRun(drift, config: cfg, y0: y0, marks: [2])
        #expect(drifted["lemma-3.7-invariant"]?.passed == false)
        let push = PerturbedFlow(GradientFlow(problem: cfg.problem)) { t, _, d in
            if t >= 0.2 && t < 0.6 { d[3] += 1 }
        }
        let pushed = try monitoredRun(push, config: cfg, y0: y0, marks: [0.2, 0.6], tEnd: 5)
        let sign = try #require(pushed["lemma-3.3-sign"])
        #expect(!sign.passed && sign.maxViolation > 0.01)
    }

    /// lemma-3.5 and lemma-3.18: gradient *ascent* during t ∈ [1, 1.5]
    /// raises the loss and `D_F(z, x^L)` (d/dt D_F = +L²‖e‖² there).
    @Test(arguments: [1, 2, 3])
    func lemma35And318FailWhenTheFlowReverses(_ depth: Int) throws {
        let cfg = try smallConfig(flow: "gf", depth: depth)
        let flow = PerturbedFlow(GradientFlow(problem: cfg.problem)) { t, _, d in
            if t >= 1 && t < 1.5 { for i in 0..<d.count { d[i] = -d[i] } }
        }
        let r = try monitoredRun(flow, config: cfg, y0: cfg.x0, marks: [1, 1.5])
        let loss = try #require(r["lemma-3.5-monotone-loss"])
        let breg = try #require(r["lemma-3.18-bregman"])
        #expect(!loss.passed && loss.maxViolation > 100 * loss.tolerance)
        #expect(!breg.passed && breg.maxViolation > 100 * breg.tolerance)
        #expect(loss.tWorst >= 1 && loss.tWorst <= 1.5 + 1e-9)
    }

    /// lemma-3.18 on the time-dependent WN flow: reversing it (g and v) for a window.
    @Test func lemma318FailsOnReversedTimeDependentWN() throws {
        let cfg = try smallConfig(flow: "wn-timedep", depth: 2)
        let flow = PerturbedFlow(makeFlow(problem: cfg.problem, model: cfg.model)) { t, _, d in
            if t >= 1 && t < 1.5 { for i in 0..<d.count { d[i] = -d[i] } }
        }
        let r = try monitoredRun(flow, config: cfg, y0: initialState(cfg), marks: [1, 1.5])
        #expect(r["lemma-3.18-bregman"]?.passed == false)
        #expect(r["lemma-3.2-norm"]?.passed == true)   // the reversal keeps ⟨v, v'⟩ = 0
    }

    /// lemma-3.3: a push that drives x₀ through zero during t ∈ [0.2, 0.6].
    @Test(arguments: ["gf", "wn"])
    func lemma33FailsOnASignFlip(_ kind: String) throws {
        let cfg = try smallConfig(flow: kind, depth: 2)
        let flow = PerturbedFlow(makeFlow(problem: cfg.problem, model: cfg.model)) { t, _, d in
            if t >= 0.2 && t < 0.6 { d[kind == "gf" ? 0 : 1] -= 1 }
        }
        let r = try monitoredRun(flow, config: cfg, y0: initialState(cfg), marks: [0.2, 0.6], tEnd: 5)
        let c = try #require(r["lemma-3.3-sign"])
        #expect(!c.passed && c.maxViolation > 0.01)
    }

    /// lemma-3.3 under atol = 0: a subnormal negative entry (a weight decaying to 0 ended at
    /// −3.6e-321 under bdf) has no determined sign and passes; a normal one fails.
    @Test func lemma33SubnormalFloorUnderZeroAtol() throws {
        let cfg = try smallConfig(flow: "gf", depth: 2)
        let sim = Simulation(config: cfg)
        var verdicts: [Bool] = []
        for entry in [-3.6e-321, -1e-300] {
            let check = Lemma33Sign(context: try MonitorContext(flow: sim.flow),
                                    rule: ToleranceRule(rtol: 1e-10, atol: 0, stateScale: 1, dimension: sim.initialState.count))
            _ = sim.initialState.withUnsafeBufferPointer { check.observe(AcceptedStep(t: 0, y: $0, h: 0, saveIndex: nil, stepNumber: 0)) }
            var y = sim.initialState
            y[2] = entry
            _ = y.withUnsafeBufferPointer { check.observe(AcceptedStep(t: 1, y: $0, h: 1, saveIndex: nil, stepNumber: 1)) }
            verdicts.append(check.report().passed)
        }
        #expect(verdicts == [true, false])
    }

    /// Lemmas 3.8/3.9 still test the integration when the monitor reads the logs of a dual
    /// run (`AcceptedStep.logY`): a dual WN integrated with η_g 10% off the configured one
    /// (a broken θ' against μ') fails them; the same run at the configured rate passes.
    @Test func lemma38And39FailOnADualRunWithAnotherRate() throws {
        let cfg = try smallConfig(flow: "wn", depth: 2)
        let y0 = initialState(cfg)
        var verdicts: [Double: (Bool?, Bool?)] = [:]
        for eta in [cfg.model.etaG, 1.1 * cfg.model.etaG] {
            let flow = makeFlow(problem: cfg.problem, model: cfg.model)
            let monitor = try Monitor(config: cfg, flow: flow, initialState: y0, dualCoordinates: true)
            let integrated = WeightNormFlow(problem: cfg.problem, rate: .constant(eta), etaV: cfg.model.etaV)
            let dual = try DualSolver(flow: integrated, rtol: cfg.integrator.rtol, maxSteps: 100_000)
            let run = dual.integrate(from: 0, y0: y0, to: 1e3, saveTimes: [], observers: monitor.observers)
            #expect(run.termination == .reachedEnd && dual.handoverTime == nil)
            let r = byName(monitor.reports())
            verdicts[eta] = (r["lemma-3.8-invariant"]?.passed, r["lemma-3.9-effective-init"]?.passed)
        }
        #expect(verdicts[cfg.model.etaG]! == (true, true))
        #expect(verdicts[1.1 * cfg.model.etaG]! == (false, false))
    }

    /// Lemma 3.18 also tests a dual run while it reads the dual state's logs
    /// (`MonitorContext.logWeight`): a GF integrated in dual coordinates on `2y` (its
    /// `Ax²` passes 1.5y, where `d/dt D_F(z, x²) = −4⟨Ax² − y, Ax² − 2y⟩ > 0` for `Az = y`)
    /// fails it against the configured `y`; the run on `y` passes.
    @Test func lemma318FailsOnADualRunOfAnotherProblem() throws {
        let cfg = try smallConfig(flow: "gf", depth: 2)
        let y0 = initialState(cfg)
        var verdicts: [Bool?] = []
        for factor in [1.0, 2.0] {
            let flow = makeFlow(problem: cfg.problem, model: cfg.model)
            let monitor = try Monitor(config: cfg, flow: flow, initialState: y0, dualCoordinates: true)
            let integrated = try Problem(A: cfg.problem.A, y: cfg.problem.y.map { factor * $0 }, depth: 2)
            let dual = try DualSolver(flow: GradientFlow(problem: integrated), rtol: cfg.integrator.rtol, maxSteps: 100_000)
            let run = dual.integrate(from: 0, y0: y0, to: 1e3, saveTimes: [], observers: monitor.observers)
            #expect(run.termination == .reachedEnd && dual.handoverTime == nil)
            verdicts.append(byName(monitor.reports())["lemma-3.18-bregman"]?.passed)
        }
        #expect(verdicts == [true, false])
    }

    /// At large |log ρ| the L = 2 log-invariants hold each step to its own κ_t (docs/monitor.md):
    /// WN from x₀ = (10 d)^{1/2} (M = 24, N = 60, seed 2, η_g = 0.01, log ρ ≈ −3e3) integrated
    /// with η_g off by 1e-4 relative fails Lemma 3.9 (measured 1.6e-6 against 5.4e-8; at the
    /// configured rate 3.1e-11 against 5.2e-8, and Lemma 3.8 passes too). With the run's
    /// largest κ = 2 + 2c·max g² (before stop 19) the tolerance was 3.5e-4 and the broken run
    /// passed.
    @Test func lemma39CatchesASmallRateErrorAtLargeMagnification() throws {
        let p = try Fixture.problem(m: 24, n: 60, seed: 2, sparsity: 4)
        let x0 = InitDirection.uniform.vector(60).map { (10 * $0).squareRoot() }
        let cfg = Fixture.config(p, flow: .wn, x0: x0, etaG: 0.01)
        let y0 = WeightNormFlow.initialState(x0: x0, vNorm: 1, g0: nil, v0: nil)
        var reports: [Double: [String: CheckReport]] = [:]
        for eta in [0.01, 0.01 * (1 + 1e-4)] {
            let flow = WeightNormFlow(problem: p, rate: .constant(0.01))
            let monitor = try Monitor(config: cfg, flow: flow, initialState: y0, dualCoordinates: true)
            let integrated = WeightNormFlow(problem: p, rate: .constant(eta))
            let dual = try DualSolver(flow: integrated, rtol: cfg.integrator.rtol, atol: cfg.integrator.atol, maxSteps: 100_000)
            let stop = StopCriteria(flow: flow, lossBelow: cfg.lossThreshold, speedBelow: nil)
            let run = dual.integrate(from: 0, y0: y0, to: 1e12, saveTimes: [], observers: [stop] + monitor.observers)
            #expect(run.termination == .stoppedByObserver)
            reports[eta] = byName(monitor.reports())
        }
        let good = try #require(reports[0.01]?["lemma-3.9-effective-init"])
        let bad = try #require(reports[0.01 * (1 + 1e-4)]?["lemma-3.9-effective-init"])
        #expect(good.passed && reports[0.01]?["lemma-3.8-invariant"]?.passed == true)
        #expect(good.tolerance < 1e-6, "tolerance \(good.tolerance)")
        #expect(!bad.passed && bad.maxViolation < 3.5e-4, "\(bad.maxViolation) vs \(bad.tolerance)")
        // Lemma 3.8 too: its per-step conditioning carries ‖P1‖/D_t (a mutation that dropped it
        // widened the tolerance 8.6e-8 → 6.6e-5 and let this run pass; stop 31's audit).
        let bad38 = try #require(reports[0.01 * (1 + 1e-4)]?["lemma-3.8-invariant"])
        #expect(!bad38.passed, "\(bad38.maxViolation) vs \(bad38.tolerance)")
    }

    /// At the saddle x = 0 (WN, η_g = 0.05 from 1e-3, M = 40, N = 100) g decays below double
    /// range in dual coordinates: 0 in the state, log g kept. Lemma 3.9 reads log ρ from log g
    /// there (it reported 1.8e308, "log ρ undefined", before). At L = 2 log g cancels between
    /// `P log x` and `P log(x₀/ρ)`, so moving it by 1 changes nothing. The check is relative to
    /// ‖log x‖ ≈ 1.3e10 here (log g = −1.26e9 at t_end), so it resolves log v only to ~1e2
    /// (Lemma 3.8 is the sharp check at the saddle): one log v_i moved by 1e3 fails it.
    @Test func lemma39ReadsLogGAtTheSaddle() throws {
        let cfg = try SimulationConfig.parse("""
        {"problem": {"generate": {"M": 40, "N": 100, "sparsity": 5, "seed": 1}},
         "model": {"flow": "wn", "depth": 2, "eta_g": 0.05},
         "init": {"scale": 0.001, "direction": "abs-gaussian", "seed": 2}, "record": {"points": 0}}
        """)
        let sim = Simulation(config: cfg)
        let (r, monitor) = sim.runMonitored(recordTrajectory: false)
        let m = try #require(monitor)
        #expect(r.status == .tEnd && r.g == 0 && m.context.hasLogState)
        // log ρ∞ from log g (it was +∞, written as null): log g₀ − log g + c(g² − g₀²).
        let logRho = try #require(r.logRho)
        let g0 = sim.initialState[0], c = magnificationConstant(etaG: 0.05, etaV: 1, vNorm0: 1)
        #expect(logRho.isFinite && abs(logRho - (log(g0) - m.context.logState[0] - c * g0 * g0)) <= 1e-12 * logRho)
        let report = try #require(byName(m.reports())["lemma-3.9-effective-init"])
        #expect(report.passed && report.maxViolation < 1e-10, "\(report.maxViolation)")
        // The two end points alone: as run, log g + 1, log v₁ + 1e3.
        var verdicts: [Bool] = []
        for (index, shift) in [(0, 0.0), (0, 1.0), (1, 1e3)] {
            let ctx = try MonitorContext(flow: sim.flow)
            let check = Lemma39EffectiveInit(context: ctx, rule: m.rule, etaG: 0.05, etaV: 1,
                                             vNorm0: norm2(Array(sim.initialState.dropFirst())))
            sim.initialState.withUnsafeBufferPointer { _ = check.observe(AcceptedStep(t: 0, y: $0, h: 0, saveIndex: nil, stepNumber: 0)) }
            var logs = m.context.logState
            logs[index] += shift
            r.state.withUnsafeBufferPointer { y in
                logs.withUnsafeBufferPointer { l in
                    _ = check.observe(AcceptedStep(t: r.t, y: y, h: 0, saveIndex: nil, stepNumber: 1, logY: l))
                }
            }
            verdicts.append(check.report().passed)
        }
        #expect(verdicts == [true, true, false])
    }

    /// Stop 25 (a differential-testing helper): WN at L = 3 with η_g = 1e-3 reaches
    /// log ρ ≈ 444, where v^{2−L} has entries near 1e195 and their plain sum of squares
    /// overflowed: Lemmas 3.8, 3.9 and limit-kkt all reported 1.8e308 on a good run. With the
    /// scaled norm they measure 3.6e-7 (tolerance 9.4e-5, κ ≈ 900). The same run integrated
    /// with η_g 2% off fails both: the check still sees the flow at this magnification.
    @Test func lemma38And39AtLogRho444() throws {
        let text = #"{"problem": {"A": [[-1.033, 0.32, 0.888]], "y": [-0.879]}, "model": {"flow": "wn", "depth": 3, "eta_g": ETA},"#
            + #" "init": {"scale": 0.01, "direction": "uniform"}, "integrator": {"rtol": 1e-10}}"#
        let cfg = try SimulationConfig.parse(text.replacingOccurrences(of: "ETA", with: "0.001"))
        let wrong = try SimulationConfig.parse(text.replacingOccurrences(of: "ETA", with: "0.00102"))
        var verdicts: [(Double, Bool, Double, Bool)] = []
        for run in [cfg, wrong] {
            let sim = Simulation(config: run)
            let monitor = try Monitor(config: cfg, flow: makeFlow(problem: cfg.problem, model: cfg.model), initialState: sim.initialState)
            let result = sim.run(observers: monitor.observers, recordTrajectory: false)
            #expect(result.status == .converged)
            let r = byName(monitor.reports())
            let inv = try #require(r["lemma-3.8-invariant"]), eff = try #require(r["lemma-3.9-effective-init"])
            verdicts.append((inv.maxViolation, inv.passed, eff.maxViolation, eff.passed))
        }
        #expect(verdicts[0].1 && verdicts[0].3 && verdicts[0].0 < 1e-5 && verdicts[0].2 < 1e-5, "\(verdicts[0])")
        #expect(!verdicts[1].1 && !verdicts[1].3 && verdicts[1].0.isFinite, "\(verdicts[1])")
    }

    /// WN whose v-update is not projected: `v' = −η_v (g/‖v‖) G`. Breaks
    /// lemma-3.2 (‖v‖ drifts) and lemma-3.8.
    @Test(arguments: [1, 2, 3])
    func lemma32And38FailOnUnprojectedVUpdate(_ depth: Int) throws {
        let cfg = try smallConfig(flow: "wn", depth: depth)
        let etaG = cfg.model.etaG, etaV = cfg.model.etaV
        let n = cfg.problem.weightCount
        let flow = PerturbedFlow(makeFlow(problem: cfg.problem, model: cfg.model)) { _, y, d in
            // base v' = −η_v (g/‖v‖)(G − s u), g' = −η_g s: add back −η_v (g/‖v‖) s u.
            var nv = 0.0
            for i in 1...n { nv += y[i] * y[i] }
            nv = nv.squareRoot()
            let s = -d[0] / etaG
            let coef = -etaV * y[0] / nv * s / nv
            for i in 1...n { d[i] += coef * y[i] }
        }
        let r = try monitoredRun(flow, config: cfg, y0: initialState(cfg))
        let norm = try #require(r["lemma-3.2-norm"])
        let inv = try #require(r["lemma-3.8-invariant"])
        #expect(!norm.passed && norm.maxViolation > 100 * norm.tolerance)
        #expect(!inv.passed && inv.maxViolation > 100 * inv.tolerance)
    }

    /// WN with a drift in ker A, projected orthogonally to v so that ‖v‖ is
    /// kept: lemma-3.2 still passes, lemma-3.8 and lemma-3.9 fail.
    @Test(arguments: [1, 2, 3])
    func lemma38And39FailOnKernelDriftInV(_ depth: Int) throws {
        let cfg = try smallConfig(flow: "wn", depth: depth)
        let k = try kernelDirection(cfg.problem)
        let n = cfg.problem.weightCount
        let flow = PerturbedFlow(makeFlow(problem: cfg.problem, model: cfg.model)) { t, y, d in
            guard t < 2 else { return }
            var nv2 = 0.0, kv = 0.0
            for i in 0..<n { nv2 += y[i + 1] * y[i + 1]; kv += k[i] * y[i + 1] }
            for i in 0..<n { d[i + 1] += 1e-4 * (k[i] - kv / nv2 * y[i + 1]) }
        }
        let r = try monitoredRun(flow, config: cfg, y0: initialState(cfg), marks: [2])
        #expect(r["lemma-3.2-norm"]?.passed == true)
        let inv = try #require(r["lemma-3.8-invariant"])
        let eff = try #require(r["lemma-3.9-effective-init"])
        #expect(!inv.passed && inv.maxViolation > 10 * inv.tolerance)
        #expect(!eff.passed && eff.maxViolation > 10 * eff.tolerance)
    }

    /// WN from a mixed-sign v₀ (entries 0, 3, 7 negated; g₀ > 0): Lemmas 3.8 and 3.9 take each
    /// entry's own sign (log|v|, the signed v^{2−L}) and pass on the true flow at depths 2–4,
    /// and the drift in ker A above fails both. Before stop 30 they were skipped there.
    @Test(arguments: [2, 3, 4])
    func lemma38And39FromAMixedSignStart(_ depth: Int) throws {
        let cfg = try smallConfig(flow: "wn", depth: depth)
        var y0 = initialState(cfg)
        for i in [0, 3, 7] { y0[i + 1] = -y0[i + 1] }
        let base = makeFlow(problem: cfg.problem, model: cfg.model)
        let clean = try monitoredRun(base, config: cfg, y0: y0)
        for name in ["lemma-3.3-sign", "lemma-3.8-invariant", "lemma-3.9-effective-init"] {
            #expect(clean[name]?.passed == true, "\(name): \(String(describing: clean[name]))")
        }
        let k = try kernelDirection(cfg.problem)
        let n = cfg.problem.weightCount
        let drift = PerturbedFlow(base) { t, y, d in
            guard t < 2 else { return }
            var nv2 = 0.0, kv = 0.0
            for i in 0..<n { nv2 += y[i + 1] * y[i + 1]; kv += k[i] * y[i + 1] }
            for i in 0..<n { d[i + 1] += 1e-4 * (k[i] - kv / nv2 * y[i + 1]) }
        }
        let r = try monitoredRun(drift, config: cfg, y0: y0, marks: [2])
        let inv = try #require(r["lemma-3.8-invariant"]), eff = try #require(r["lemma-3.9-effective-init"])
        #expect(!inv.passed && inv.maxViolation > 10 * inv.tolerance)
        #expect(!eff.passed && eff.maxViolation > 10 * eff.tolerance)
    }

    /// GF at even depth from a mixed-sign start: Lemma 3.18 reads x^L = |x|^L and passes on
    /// the true flow; gradient ascent during t ∈ [1, 1.5] fails it. At odd depth it stays
    /// skipped (x^L keeps the sign there).
    @Test(arguments: [2, 4])
    func lemma318FromAMixedSignStartAtEvenDepth(_ depth: Int) throws {
        let cfg = try smallConfig(flow: "gf", depth: depth)
        var y0 = cfg.x0
        for i in [0, 3, 7] { y0[i] = -y0[i] }
        let clean = try monitoredRun(GradientFlow(problem: cfg.problem), config: cfg, y0: y0)
        #expect(clean["lemma-3.18-bregman"]?.passed == true, "\(String(describing: clean["lemma-3.18-bregman"]))")
        let ascent = PerturbedFlow(GradientFlow(problem: cfg.problem)) { t, _, d in
            if t >= 1 && t < 1.5 { for i in 0..<d.count { d[i] = -d[i] } }
        }
        let r = try monitoredRun(ascent, config: cfg, y0: y0, marks: [1, 1.5])
        let breg = try #require(r["lemma-3.18-bregman"])
        #expect(!breg.passed && breg.maxViolation > 100 * breg.tolerance)
        let odd = try smallConfig(flow: "gf", depth: 3)
        var y3 = odd.x0
        y3[0] = -y3[0]
        let monitor = try Monitor(config: odd, flow: GradientFlow(problem: odd.problem), initialState: y3)
        #expect(monitor.skipped.contains { $0.0 == "lemma-3.18-bregman" })
    }

    /// Signed GF with a drift along (1, …, 1) ∈ ker [A, −A]: u ⊙ w (L = 2),
    /// u^{2−L} + w^{2−L} (L ≠ 2) stop being constant.
    @Test(arguments: [1, 2, 3])
    func signedCoordinateInvariantFailsOnCommonDrift(_ depth: Int) throws {
        let cfg = try smallConfig(flow: "gf", depth: depth, signed: true)
        let flow = PerturbedFlow(GradientFlow(problem: cfg.problem)) { t, _, d in
            if t < 1 { for i in 0..<d.count { d[i] += 1e-4 } }
        }
        let r = try monitoredRun(flow, config: cfg, y0: cfg.x0, marks: [1])
        let c = try #require(r["signed-coordinate-invariant"])
        #expect(!c.passed && c.maxViolation > 100 * c.tolerance)
    }

    /// loss-decay-rate is a measurement: on `x' = −(x − 1)` (A = [1], y = [1],
    /// L = 1) the loss is ½(x₀−1)² e^{−2t}, κ = 2; the same flow slowed to
    /// half speed (a "broken" clock) measures κ = 1.
    @Test func lossDecayRateMeasuresTheRate() throws {
        let cfg = try SimulationConfig.parse("""
        {"problem": {"A": [[1.0]], "y": [1.0]}, "model": {"flow": "gf", "depth": 1},
         "init": {"x0": [0.0]}, "integrator": {"method": "msbdf", "stop": {"loss_below": 1e-26}}}
        """)
        let r = try monitoredRun(GradientFlow(problem: cfg.problem), config: cfg, y0: cfg.x0)
        let k = try #require(r["loss-decay-rate"])
        #expect(k.isMeasurement && k.passed)
        #expect(abs(try #require(k.value) - 2) < 2e-2)
        let slow = PerturbedFlow(GradientFlow(problem: cfg.problem)) { _, _, d in d[0] *= 0.5 }
        let r2 = try monitoredRun(slow, config: cfg, y0: cfg.x0)
        #expect(abs(try #require(r2["loss-decay-rate"]?.value) - 1) < 1e-2)
        // A measurement without enough samples still carries `value`, as null (interface.md).
        var unmeasured = k
        unmeasured.value = nil
        #expect(unmeasured.json["value"] == .null)
    }

    /// A weight that is 0 without a log after one near the bottom of double range (a
    /// weight-space stepper's underflow after the dual coordinates' logs) takes its step out of
    /// Lemma 3.7's evaluation; a violation at an evaluated step before it still fails the check;
    /// with the solver's log the same step is evaluated; and a weight that jumps to 0 from a
    /// normal size (a broken step, not underflow) fails it.
    @Test func stepsWithUnderflowedWeightsKeepEarlierViolations() throws {
        let cfg = try smallConfig(flow: "gf", depth: 2)
        let k = try kernelDirection(cfg.problem)
        let rule = ToleranceRule(config: cfg, initialState: cfg.x0)
        func states(drift: Double) -> [[Double]] {
            let x1 = zip(cfg.x0, k).map { $0 * exp(drift * $1) }  // P log x moves by drift·k
            var x2 = x1, x3 = x1
            x2[4] = 1e-250  // the weight as the dual coordinates' logs held it (logs: x1's)
            x3[4] = 0       // then underflowed in weight space
            return [cfg.x0, x1, x2, x3]
        }
        func logs(_ s: [[Double]], at steps: [Int]) -> [Int: [Double]] {
            Dictionary(uniqueKeysWithValues: steps.map { ($0, s[1].map { log($0) }) })
        }
        let s0 = states(drift: 0)
        let clean = try lemma37Report(cfg, rule: rule, states: s0, logs: logs(s0, at: [2]))
        #expect(clean.passed && clean.quantity.contains("evaluated at 3 of 4 steps"), "\(clean.quantity)")
        let s1 = states(drift: 1e-3)
        let drifted = try lemma37Report(cfg, rule: rule, states: s1, logs: logs(s1, at: [2]))
        #expect(!drifted.passed && drifted.maxViolation > 100 * drifted.tolerance && drifted.tWorst == 1)
        let withLog = try lemma37Report(cfg, rule: rule, states: s0, logs: logs(s0, at: [2, 3]))
        #expect(withLog.passed && !withLog.quantity.contains("evaluated at"))
        #expect(withLog.maxViolation <= 1e-14)
        var broken = s0
        broken[2] = s0[1]  // a normal size right before the zero
        let jumped = try lemma37Report(cfg, rule: rule, states: broken)
        #expect(!jumped.passed && jumped.maxViolation > 1e300)
    }
}

// MARK: - Discrete runs and verify

struct MonitorVerifyTests {
    /// WN-GD grows ‖v‖ (MATH.md §7). Until stop 32 verify failed lemma-3.2-norm on it (exit 1
    /// on every WN-GD run); now the row checks WN-GD's own identity ‖v_k‖² = ‖v₀‖² + Σ‖Δv‖² and
    /// reports the growth of ‖v‖ in its quantity, and the flow's Lemma 3.8 is a measurement.
    @Test func verifyMeasuresNormGrowthOfWNGD() throws {
        let cfg = try smallConfig(flow: "wn-gd", depth: 2, extraModel: ", \"step\": 0.05", stop: 1e-20)
        let v = Verification.run(config: cfg)
        #expect(v.result.status == .converged)
        #expect(v.allPassed, "\(v.failed)")
        let r = try #require(byName(v.reports)["lemma-3.2-norm"])
        #expect(!r.isMeasurement && r.maxViolation < 1e-12)
        let drift = try #require(r.quantity.split(separator: "drifted by ").last.flatMap { Double($0.split(separator: " ")[0]) })
        #expect(drift > 1e-5, "\(r.quantity)")
        let l38 = try #require(byName(v.reports)["lemma-3.8-invariant"])
        #expect(l38.isMeasurement && (l38.value ?? 0) > 1e-5)
        #expect(v.table.contains("lemma-3.2-norm") && v.table.contains("MEASURED") && !v.table.contains("FAIL"))
        #expect(v.markdown.contains("lemma-3.2-norm"))
    }

    /// A true flow verifies clean, including the limit identities.
    @Test func verifyPassesOnGF() throws {
        let cfg = try smallConfig(flow: "gf", depth: 2, stop: 1e-24)
        let v = Verification.run(config: cfg)
        #expect(v.allPassed, "\(v.failed)")
        let names = Set(v.reports.map(\.name))
        #expect(names.contains("limit-residual") && names.contains("limit-kkt"))
    }

    /// The predictor plug-in point: extra checks land in the monitor array
    /// and decide the verdict.
    @Test func extraChecksPlugIn() throws {
        let cfg = try smallConfig(flow: "gf", depth: 1, stop: 1e-20)
        let v = Verification.run(config: cfg) { _, _ in
            [CheckReport(name: "predict-limit", maxViolation: 1, tolerance: 1e-8, passed: false, tWorst: 0, quantity: "test")]
        }
        #expect(v.failed == ["predict-limit"])
        #expect(v.result.json(config: cfg).serialized().contains("predict-limit"))
    }

    /// WN with ‖v₀‖ = 1e-5 (c = 3e10, log ρ∞ = 2.9e10): after the dual hand-over, bdf holds 11
    /// weights near e^{−1e10} as 0, whose logs Lemmas 3.8 and 3.9 need. Those steps are left
    /// out (they read 1.8e308 and failed before) and the 1,244 before them pass; limit-kkt,
    /// whose one end point is such a step, is a measurement without a value.
    @Test func underflowedWeightsAreNotEvaluated() throws {
        let cfg = try SimulationConfig.parse(hugeMagnificationConfig)
        let v = Verification.run(config: cfg)
        #expect(v.result.status == .converged)
        #expect(v.allPassed, "\(v.failed)")
        let r = byName(v.reports)
        for name in ["lemma-3.8-invariant", "lemma-3.9-effective-init"] {
            let c = try #require(r[name])
            #expect(!c.isMeasurement && c.maxViolation <= 1e-6 && c.quantity.contains("evaluated at"), "\(name): \(c.quantity)")
        }
        let kkt = try #require(r["limit-kkt"])
        #expect(kkt.isMeasurement && kkt.value == nil && kkt.quantity.contains("not evaluated"))
    }

    /// A failed Lemma 3.7 whose weights fell below atol says so, with the fix (wn-timedep,
    /// L = 2, bsimp at the default atol 1e-18: weights at 8e-78 and 3.7 at 2.1e-8 against
    /// 5.9e-9, where atol = 0 gives 1.9e-11); without a weight below atol, or with atol = 0,
    /// a failure carries no such note.
    @Test func belowAtolFailureSaysSo() throws {
        let cfg = try smallConfig(flow: "gf", depth: 2)
        let k = try kernelDirection(cfg.problem)
        func report(tiny: Double, atol: Double) throws -> CheckReport {
            var x1 = zip(cfg.x0, k).map { $0 * exp(1e-3 * $1) }  // off the invariant
            x1[2] = tiny
            return try lemma37Report(cfg, rule: ToleranceRule(rtol: 1e-10, atol: atol, stateScale: cfg.x0.max() ?? 1, dimension: cfg.x0.count),
                                     states: [cfg.x0, x1])
        }
        let below = try report(tiny: 1e-40, atol: 1e-18)
        #expect(!below.passed && below.quantity.contains("where atol = 1e-18") && below.quantity.contains("atol = 0"), "\(below.quantity)")
        let above = try report(tiny: 1e-3, atol: 1e-18)
        #expect(!above.passed && !above.quantity.contains("where atol"))
        let relative = try report(tiny: 1e-40, atol: 0)
        #expect(!relative.passed && !relative.quantity.contains("where atol"))
    }
}

/// WN, depth 2, ‖v₀‖ = 1e-5: c = 3e10 and log ρ∞ = 2.9e10 (a helper's round, stop 29).
let hugeMagnificationConfig = """
{"problem": {"generate": {"M": 5, "N": 12, "sparsity": 1, "l1_norm": 1.0, "seed": 6}},
 "model": {"flow": "wn", "depth": 2, "eta_v": 0.8012104602157417, "eta_g": 0.13503452824547843},
 "init": {"scale": 0.12752906032037933, "direction": "uniform", "seed": 66, "v_norm": 1e-05},
 "integrator": {"method": "auto", "max_steps": 200000}}
"""

/// `ZeroLossSet`: where no weights reach zero loss (M ≥ N, y outside the cone or the range),
/// Lemma 3.18 is skipped, `limit-residual` is a measurement and simulate says why it stopped
/// short; where S₊ is not empty but `Ã⁺y` leaves it, Lemma 3.18 uses GLPK's point of S₊.
@Suite("Zero-loss set")
struct ZeroLossSetTests {
    /// The generated M = 10, N = 25 problem's A restricted to its first `columns`, with `y`
    /// (the generated one unless given), no ground truth.
    static func config(columns: Int, depth: Int = 2, signed: Bool = false, y: ((Matrix, [Double]) -> [Double])? = nil) throws -> SimulationConfig {
        var cfg = try smallConfig(flow: "gf", depth: depth, stop: 1e-24)
        let a = cfg.problem.A
        let rows = (0..<a.rows).map { i in (0..<columns).map { a[i, $0] } }
        let sub = try #require(Matrix(rowArrays: rows))
        cfg.problem = try Problem(A: sub, y: y?(sub, cfg.problem.y) ?? cfg.problem.y, depth: depth, signed: signed)
        cfg.x0 = [Double](repeating: 0.3, count: cfg.problem.weightCount)
        cfg.integrator.tEnd = 1e3
        return cfg
    }

    /// A tiny but nonzero singular value is a direction a flow reaches (with huge weights, late):
    /// A = diag(1, 1e-16), y = (1, 1) at depth 1 and signed is not "y ∉ range A"; a row of
    /// zeros is (a helper's round: the first had been told no weights reach zero loss).
    @Test("y along a tiny singular value is not outside range A; y along a zero row is")
    func tinySingularValues() throws {
        for signed in [false, true] {
            let tiny = try Problem(A: try #require(Matrix(rowArrays: [[1, 0], [0, 1e-16]])), y: [1, 1], depth: signed ? 2 : 1, signed: signed)
            let x0 = [Double](repeating: 0.5, count: tiny.weightCount)
            if case .empty = ZeroLossSet.find(problem: tiny, x0: x0) { Issue.record("signed \(signed): tiny singular value read as empty") }
            let zeroRow = try Problem(A: try #require(Matrix(rowArrays: [[1, 0], [0, 1], [0, 0]])), y: [1, 1, 1], depth: signed ? 2 : 1, signed: signed)
            guard case let .empty(_, minimum) = ZeroLossSet.find(problem: zeroRow, x0: x0) else {
                Issue.record("signed \(signed): a zero row not read as empty"); continue
            }
            #expect(abs((minimum ?? 0) - 0.5) < 1e-14)
        }
    }

    /// A review's cases: a column of norm 1e-13 still lowers the loss (z = (1, 1e13) reaches
    /// 0.5, the minimum had read 1), and a run that ends far above the minimum is no
    /// measurement (t_end = 0.01 at 0.9993 against a minimum of 0.5 had passed verify).
    @Test("NNLS on a column of tiny norm; a run short of the minimum still fails limit-residual")
    func tinyColumnAndShortRun() throws {
        let a = try #require(Matrix(rowArrays: [[1, 0], [0, 1e-13], [0, 0]]))
        let z = try #require(ZeroLossSet.nonNegativeLeastSquares(a, [1, 1, -1]))
        #expect(abs(0.5 * pow(residualNorm(a, z, [1, 1, -1]), 2) - 0.5) < 1e-12, "\(z)")
        let short = try SimulationConfig.parse(#"{"problem": {"A": [[1, 0], [0, 1]], "y": [1, -1]}, "model": {"flow": "gf", "depth": 2}, "init": {"x0": [0.5, 0.5]}, "integrator": {"t_end": 0.01, "stop": {"loss_below": 1e-20}}}"#)
        let v = Verification.run(config: short, extraChecks: { _, _ in [] })
        let r = try #require(v.reports.first { $0.name == "limit-residual" })
        #expect(!r.isMeasurement && !r.passed && r.quantity.contains("ended above that minimum"), "\(r)")
        #expect((v.result.message ?? "").contains("lowers the loss toward it"), "\(v.result.message ?? "")")
        var long = short
        long.integrator.tEnd = 1e6
        let w = Verification.run(config: long, extraChecks: { _, _ in [] })
        let r2 = try #require(w.reports.first { $0.name == "limit-residual" })
        #expect(r2.isMeasurement && r2.passed, "\(r2) \(w.result.loss)")
    }

    @Test("non-negative least squares (Lawson–Hanson) on small cases with known answers")
    func nnls() throws {
        let eye = try #require(Matrix(rowArrays: [[1, 0], [0, 1]]))
        #expect(ZeroLossSet.nonNegativeLeastSquares(eye, [1, -1]) == [1, 0])
        // Columns (1, 0, 1) and (0, 1, 1): y = (1, 1, 1) has the positive least-squares point
        // (2/3, 2/3); y = (1, 1, -1) has Aᵀy = 0, so z = 0.
        let a = try #require(Matrix(rowArrays: [[1, 0], [0, 1], [1, 1]]))
        let z = try #require(ZeroLossSet.nonNegativeLeastSquares(a, [1, 1, 1]))
        #expect(abs(z[0] - 2.0 / 3) < 1e-14 && abs(z[1] - 2.0 / 3) < 1e-14, "\(z)")
        #expect(ZeroLossSet.nonNegativeLeastSquares(a, [1, 1, -1]) == [0, 0])
        // y = (-1, 2, 0): least squares (-4/3, 5/3); with z ≥ 0, z₁ = 0 and z₂ = 1.
        let w = try #require(ZeroLossSet.nonNegativeLeastSquares(a, [-1, 2, 0]))
        #expect(w[0] == 0 && abs(w[1] - 1) < 1e-14, "\(w)")
    }

    @Test("empty: a square A with A⁻¹y < 0 somewhere (depth 2), y ∉ range A (signed, depth 1); a point otherwise")
    func find() throws {
        // y = A w with w of mixed signs: S₊ = {w}, not ≥ 0.
        let square = try Self.config(columns: 10) { a, _ in a.multiply((0..<10).map { $0 % 3 == 0 ? -0.5 : 1.0 }) }
        guard case let .empty(set, minimum) = ZeroLossSet.find(problem: square.problem, x0: square.x0) else {
            Issue.record("square: not empty"); return
        }
        #expect(set == "S₊ = {z ≥ 0 : Az = y} is empty (GLPK: no non-negative solution)")
        // The lowest loss over z ≥ 0 (non-negative least squares) is below every z ≥ 0's: the
        // start's z and A⁻¹y's positive part.
        let m = try #require(minimum)
        let p = square.problem
        func loss(_ z: [Double]) -> Double { 0.5 * zip(p.matrix.multiply(z), p.y).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) }
        let w = try SVD(p.matrix).pseudoInverseApply(p.y)
        #expect(m > 1e-4 && m <= loss(square.x0.map { $0 * $0 }) && m <= loss(w.map { max($0, 0) }), "\(m)")
        for (depth, signed) in [(2, true), (1, false), (3, true)] {
            let tall = try Self.config(columns: 5, depth: depth, signed: signed)
            guard case let .empty(text, least) = ZeroLossSet.find(problem: tall.problem, x0: tall.x0) else {
                Issue.record("depth \(depth) signed \(signed): not empty"); continue
            }
            #expect(text.hasPrefix("y ∉ range A") && (least ?? 0) > 0)
        }
        // The full problem without its ground truth: Ã⁺y has negative entries, GLPK's point does not.
        let wide = try Self.config(columns: 25)
        let pinv = try SVD(wide.problem.matrix).pseudoInverseApply(wide.problem.y)
        #expect(pinv.contains { $0 < 0 })
        guard case let .point(z, source) = ZeroLossSet.find(problem: wide.problem, x0: wide.x0) else { Issue.record("no point"); return }
        #expect(source == "the l1 minimizer over S₊ ∈ S₊" && z.allSatisfy { $0 >= 0 })
        let r = zip(wide.problem.matrix.multiply(z), wide.problem.y).map { abs($0 - $1) }.max() ?? 1
        #expect(r < 1e-10)
        // Signed and feasible: the split of A⁺y.
        let signed = try Self.config(columns: 25, signed: true)
        guard case let .point(zs, s2) = ZeroLossSet.find(problem: signed.problem, x0: signed.x0) else { Issue.record("no signed point"); return }
        #expect(s2 == "A⁺y split into its signs ∈ S₊" && zs.allSatisfy { $0 >= 0 })
    }

    @Test("an empty S₊: 3.18 skipped, limit-residual measured, simulate's message names the set; a reachable y still fails limit-residual")
    func emptySetReports() throws {
        let square = try Self.config(columns: 10) { a, _ in a.multiply((0..<10).map { $0 % 3 == 0 ? -0.5 : 1.0 }) }
        let v = Verification.run(config: square, extraChecks: { _, _ in [] })
        #expect(v.skipped.contains { $0.name == "lemma-3.18-bregman" && $0.reason.contains("S₊") })
        let residual = try #require(v.reports.first { $0.name == "limit-residual" })
        #expect(residual.isMeasurement && residual.passed && (residual.value ?? 0) > 0.01, "\(residual)")
        #expect(v.result.status == .tEnd && (v.result.message ?? "").contains("lowest loss any weights reach"), "\(v.result.message ?? "")")
        // The same A with y = A·1 (S₊ ∋ 1) stopped at t_end = 1e-2: a verdict, and it fails.
        var short = try Self.config(columns: 10) { a, _ in a.multiply([Double](repeating: 1, count: 10)) }
        short.integrator.tEnd = 1e-2
        let w = Verification.run(config: short, extraChecks: { _, _ in [] })
        let r2 = try #require(w.reports.first { $0.name == "limit-residual" })
        #expect(!r2.isMeasurement && !r2.passed)
        #expect(!(w.result.message ?? "").contains("lowest loss any weights reach"))
        #expect(w.reports.contains { $0.name == "lemma-3.18-bregman" })
        // The empty S₊ with a stop above its lowest loss, stopped short: a verdict, and it fails
        // (the stop was reachable; before the minimum was computed it passed as a measurement).
        var above = square
        above.integrator.lossBelow = 2 * (ZeroLossSet.nonNegativeLeastSquares(square.problem.matrix, square.problem.y)
            .map { 0.5 * pow(residualNorm(square.problem.matrix, $0, square.problem.y), 2) } ?? 1)
        above.integrator.tEnd = 1e-2
        let u = Verification.run(config: above, extraChecks: { _, _ in [] })
        let r3 = try #require(u.reports.first { $0.name == "limit-residual" })
        #expect(u.result.status == .tEnd && !r3.isMeasurement && !r3.passed, "\(u.result.status) \(r3)")
        #expect(!(u.result.message ?? "").contains("lowest loss any weights reach"))
    }

    /// Where Ã⁺y leaves S₊, the reference is GLPK's point: the true flow passes, gradient ascent
    /// over t ∈ [1, 1.5] fails (the companion of the check with its new reference).
    @Test("Lemma 3.18 with GLPK's point of S₊: passes on the flow, fails under ascent")
    func lpReference() throws {
        let cfg = try Self.config(columns: 25)
        let clean = try monitoredRun(GradientFlow(problem: cfg.problem), config: cfg, y0: cfg.x0)
        let c = try #require(clean["lemma-3.18-bregman"])
        #expect(c.passed && c.quantity.contains("the l1 minimizer over S₊ ∈ S₊"), "\(c)")
        let ascent = PerturbedFlow(GradientFlow(problem: cfg.problem)) { t, _, d in
            if t >= 1 && t < 1.5 { for i in 0..<d.count { d[i] = -d[i] } }
        }
        let r = try #require(try monitoredRun(ascent, config: cfg, y0: cfg.x0, marks: [1, 1.5])["lemma-3.18-bregman"])
        #expect(!r.passed && r.maxViolation > 100 * r.tolerance)
    }
}

// MARK: - Discrete runs: the iteration's own identities are checked, the flow's statements measured

/// Runs `flow` as gradient descent with `config`'s step for `steps` iterations, monitored.
private func discreteMonitoredRun(_ flow: any Flow, config: SimulationConfig, y0: [Double],
                                  steps: Int = 1500) throws -> [String: CheckReport] {
    let monitor = try Monitor(config: config, flow: flow, initialState: y0)
    let descent = DiscreteDescent(system: flow, step: try #require(config.model.step), maxSteps: steps)
    _ = descent.integrate(from: 0, y0: y0, to: 1e12, saveTimes: [], observers: monitor.observers)
    return byName(monitor.reports())
}

struct DiscreteMonitorTests {
    /// GD keeps `(x_{k+1} − x_k) ⊘ x_k^{L−1} ∈ range Ãᵀ` (depths 1–3, signed too) and WN-GD
    /// `‖v_k‖² = ‖v₀‖² + Σ‖Δv‖²`: both pass on the true iterations, while the flow's invariants
    /// (3.8, 3.9, 3.18) are measurements there, with the drift as value.
    @Test(arguments: [(1, false), (2, false), (3, false), (2, true)])
    func trueIterationsPassTheirIdentities(_ c: (Int, Bool)) throws {
        let (depth, signed) = c
        let gd = try smallConfig(flow: "gd", depth: depth, signed: signed, extraModel: #", "step": 0.05"#)
        let r = try discreteMonitoredRun(GradientFlow(problem: gd.problem), config: gd, y0: gd.x0)
        let k = try #require(r["lemma-3.7-invariant"])
        #expect(k.passed && !k.isMeasurement, "\(k.maxViolation) > \(k.tolerance)")
        #expect(k.quantity.contains("the flow's invariant drifted by"))
        if let b = r["lemma-3.18-bregman"] { #expect(b.isMeasurement) }
        if signed { #expect(r["signed-coordinate-invariant"]?.isMeasurement == true) }
        let wn = try smallConfig(flow: "wn-gd", depth: depth, signed: signed, extraModel: #", "step": 0.05"#)
        let flow = makeFlow(problem: wn.problem, model: wn.model)
        let w = try discreteMonitoredRun(flow, config: wn, y0: initialState(wn))
        let norm = try #require(w["lemma-3.2-norm"])
        #expect(norm.passed && !norm.isMeasurement, "\(norm.maxViolation) > \(norm.tolerance)")
        // WN-GD does grow ‖v‖ (the flow's Lemma 3.2 is off by O(μ)): the identity, not a constant norm.
        #expect(norm.quantity.contains("drifted by"))
        #expect(w["lemma-3.8-invariant"]?.isMeasurement == true && w["lemma-3.9-effective-init"]?.isMeasurement == true)
    }

    /// Companion: GD with a drift in ker Ã for t < 2 (a step off range Ãᵀ) fails the discrete
    /// Lemma 3.7; WN-GD whose v-step has a component along v fails the discrete Lemma 3.2.
    @Test(arguments: [1, 2, 3])
    func brokenIterationsFail(_ depth: Int) throws {
        let gd = try smallConfig(flow: "gd", depth: depth, extraModel: #", "step": 0.05"#)
        let k = try kernelDirection(gd.problem)
        let drift = PerturbedFlow(GradientFlow(problem: gd.problem)) { t, _, d in
            if t < 2 { for i in 0..<d.count { d[i] += 1e-4 * k[i] } }
        }
        let r = try #require(try discreteMonitoredRun(drift, config: gd, y0: gd.x0)["lemma-3.7-invariant"])
        #expect(!r.passed && r.maxViolation > 100 * r.tolerance, "\(r.maxViolation) vs \(r.tolerance)")
        let wn = try smallConfig(flow: "wn-gd", depth: depth, extraModel: #", "step": 0.05"#)
        let along = PerturbedFlow(makeFlow(problem: wn.problem, model: wn.model)) { t, y, d in
            if t < 2 { for i in 1..<d.count { d[i] += 1e-4 * y[i] } }
        }
        let n = try #require(try discreteMonitoredRun(along, config: wn, y0: initialState(wn))["lemma-3.2-norm"])
        #expect(!n.passed && n.maxViolation > 100 * n.tolerance, "\(n.maxViolation) vs \(n.tolerance)")
    }

    /// A weight that underflows (4.9e-324, then 0; S₊ is empty here, so x₃ → 0) carries an
    /// absolute rounding error, not ε-relative: the floor counts ulp(x_{k+1}), and the weights
    /// at 0 are left out with the kernel of the remaining columns (it read 0.13, a false FAIL,
    /// and then skipped 39,190 of 40,000 iterates; a reviewer's case, stop 32). A drift in ker Ã
    /// still fails. The tolerance is rounding only: from x₀ = 1e-150
    /// the flow rule gave 8.8e135.
    @Test func underflowingWeightAndTinyStart() throws {
        let text = #"{"problem": {"A": [[1, 2, 6], [1, -1, 0]], "y": [-1, 0.05]}, "model": {"flow": "gd", "depth": 2, "step": 0.05}, "init": {"x0": [0.3, 0.2, 0.1]}, "integrator": {"t_end": 2000}, "record": {"points": 0}}"#
        let cfg = try SimulationConfig.parse(text)
        let r = try #require(byName(Simulation(config: cfg).runMonitored().result.monitor)["lemma-3.7-invariant"])
        #expect(r.passed && r.quantity.contains("were left out"), "\(r.maxViolation) vs \(r.tolerance): \(r.quantity)")
        // A push in ker Ã during t < 2 (before the underflow) still fails.
        let k = try kernelDirection(cfg.problem)
        let drift = PerturbedFlow(GradientFlow(problem: cfg.problem)) { t, _, d in
            if t < 2 { for i in 0..<d.count { d[i] += 1e-4 * k[i] } }
        }
        let broken = try #require(try discreteMonitoredRun(drift, config: cfg, y0: cfg.x0, steps: 40_000)["lemma-3.7-invariant"])
        #expect(!broken.passed)
        let tiny = try smallConfig(flow: "gd", depth: 2, scale: 1e-150, extraModel: #", "step": 0.05"#)
        let t = try #require(try discreteMonitoredRun(GradientFlow(problem: tiny.problem), config: tiny, y0: tiny.x0)["lemma-3.7-invariant"])
        #expect(t.passed && t.tolerance < 1e-10, "\(t.tolerance)")
    }

    /// `verify` on a discrete run: the comparisons with the flow's limit (limit-kkt,
    /// predict-limit) are measurements, so a converged GD run passes; its identities are checks.
    @Test func verifyOfAConvergedGDRunPasses() throws {
        let cfg = try SimulationConfig.parse("""
        {"problem": {"generate": {"M": 5, "N": 10, "seed": 4}},
         "model": {"flow": "gd", "depth": 2, "step": 0.2},
         "init": {"scale": 0.5, "direction": "abs-gaussian", "seed": 4},
         "integrator": {"t_end": 1e6, "max_steps": 2000000, "stop": {"loss_below": 1e-22}},
         "record": {"points": 0}}
        """)
        let v = Verification.run(config: cfg)
        #expect(v.result.status == .converged)
        let r = byName(v.result.monitor)
        #expect(r["lemma-3.7-invariant"].map { $0.passed && !$0.isMeasurement } == true)
        #expect(r["limit-residual"].map { $0.passed && !$0.isMeasurement } == true)
        for name in ["limit-kkt", "predict-limit"] {
            let c = try #require(r[name], "\(name) missing")
            #expect(c.isMeasurement && (c.value ?? 0) > 0 && c.quantity.contains("O(μ)"), "\(name): \(c)")
        }
        let failed = v.result.monitor.filter { !$0.passed }.map(\.name)
        #expect(failed.isEmpty, "\(failed)")
    }
}

struct NegativeScaleTests {
    /// Time-dependent WN at odd depth from g₀ < 0 (x₀ = g₀v₀/‖v₀‖ < 0): Lemma 3.7 in the signed
    /// x^{2−L} holds (the flow is GF on another clock), and the monitor read x(t) as
    /// |g|/‖v‖·v, 1.73 away at t = 0 (a helper's round, stop 32). A drift in ker Ã still fails.
    /// g0 with v0 needs no x0 (the start is theirs); an x0 next to them is warned about.
    @Test(arguments: [3, 5])
    func timeDependentWNFromNegativeG(_ depth: Int) throws {
        let v0 = (0..<15).map { 0.2 + 0.05 * Double($0 % 4) }
        let text = """
        {"problem": {"generate": {"M": 6, "N": 15, "sparsity": 3, "seed": 7}},
         "model": {"flow": "wn-timedep", "depth": \(depth)},
         "init": {"g0": -0.8, "v0": \(v0)},
         "integrator": {"t_end": 50}, "record": {"points": 0}}
        """
        let cfg = try SimulationConfig.parse(text)
        let nv = norm2(v0)
        #expect(zip(cfg.x0, v0).allSatisfy { abs($0 - (-0.8) * $1 / nv) <= 1e-15 })
        #expect(cfg.warnings.contains { $0.hasPrefix("the start (from g0/v0) has non-positive entries") })
        let y0 = initialState(cfg)
        let flow = makeFlow(problem: cfg.problem, model: cfg.model)
        let clean = try monitoredRun(flow, config: cfg, y0: y0, tEnd: 50)
        let c = try #require(clean["lemma-3.7-invariant"])
        #expect(c.passed, "\(c.maxViolation) > \(c.tolerance)")
        let k = try kernelDirection(cfg.problem)
        let drift = PerturbedFlow(flow) { t, _, d in
            if t < 2 { for i in 0..<k.count { d[i + 1] += 1e-4 * k[i] } }
        }
        let drifted = try monitoredRun(drift, config: cfg, y0: y0, marks: [2], tEnd: 50)
        #expect(drifted["lemma-3.7-invariant"]?.passed == false)
        let both = try SimulationConfig.parse(text.replacingOccurrences(of: "\"init\": {", with: "\"init\": {\"scale\": 0.5, "))
        #expect(both.warnings.contains { $0.hasPrefix("init.x0/scale is not used") })
        #expect(both.x0 == cfg.x0)
        // The other keys that build x₀ from a scale are warned about too (they were dropped
        // silently, and "direction" alone was an "unknown key"; a reviewer's round).
        for key in [#""direction": "uniform""#, #""seed": 3"#, #""root_of_depth": true"#, #""v_norm": 5"#] {
            let c = try SimulationConfig.parse(text.replacingOccurrences(of: "\"init\": {", with: "\"init\": {\(key), "))
            let name = String(key.dropFirst().prefix { $0 != "\"" })
            #expect(c.warnings.contains { $0.hasPrefix("init.\(name) is not used") }, "\(name): \(c.warnings)")
        }
    }
}

/// Stop 32's mutation audit of the discrete checks: each test fails under its mutation.
struct DiscreteAuditStop32Tests {
    /// A diverging WN-GD run (step 30): the identity's rounding follows ‖v_k‖² (relative to
    /// ‖v₀‖² alone it read 1.1e-5).
    @Test func divergingWNGDKeepsItsNormIdentity() throws {
        let wn = try smallConfig(flow: "wn-gd", depth: 2, extraModel: #", "step": 30"#)
        let flow = makeFlow(problem: wn.problem, model: wn.model)
        let w = try discreteMonitoredRun(flow, config: wn, y0: initialState(wn), steps: 300)
        let norm = try #require(w["lemma-3.2-norm"])
        #expect(norm.passed, "\(norm.maxViolation) > \(norm.tolerance): \(norm.quantity)")
    }

    /// Iterates that stop moving (x_{k+1} = x_k) are skipped, not a 0/0 failure.
    @Test func frozenGDIteratesPassTheKernelStep() throws {
        let cfg = try SimulationConfig.parse("""
        {"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": {"flow": "gd", "depth": 1, "step": 0.1},
         "init": {"x0": [0.6, 0.7]}, "integrator": {"t_end": 1e12}, "record": {"points": 0}}
        """)
        let r = try #require(try discreteMonitoredRun(GradientFlow(problem: cfg.problem), config: cfg, y0: cfg.x0, steps: 2000)["lemma-3.7-invariant"])
        #expect(r.passed && r.maxViolation.isFinite, "\(r.maxViolation) > \(r.tolerance)")
    }

    /// At L = 3 a weight at 5e-324 has x^{L−1} = 0: it is left out like a weight at 0, and the
    /// others are checked (every step was "not checked" and the row passed with 0; a docs
    /// check's case, stop 32). On gf, g0/v0/v_norm are warned about and dropped.
    @Test func powerOutOfRangeIsLeftOut() throws {
        var x0 = [Double](repeating: 0.02, count: 25)
        x0[3] = 5e-324
        x0[7] = 1e-310
        let cfg = try SimulationConfig.parse("""
        {"problem": {"generate": {"M": 10, "N": 25, "sparsity": 3, "seed": 5}}, "model": {"flow": "gd", "depth": 3, "step": 0.05},
         "init": {"x0": \(x0)}, "integrator": {"t_end": 200}, "record": {"points": 0}}
        """)
        let r = try #require(try discreteMonitoredRun(GradientFlow(problem: cfg.problem), config: cfg, y0: cfg.x0, steps: 4000)["lemma-3.7-invariant"])
        #expect(r.passed && !r.isMeasurement && r.quantity.contains("were left out") && !r.quantity.contains("not checked"), "\(r.quantity)")
        let gf = try SimulationConfig.parse(#"{"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": {"flow": "gf"}, "init": {"x0": [0.6, 0.7], "g0": 2}}"#)
        #expect(gf.g0 == nil && gf.warnings.contains { $0.hasPrefix("init.g0 is not used by gf") })
    }

    /// verify on a converged GD run: the a-posteriori bounds are measurements too.
    @Test func verifyOfGDMeasuresTheBounds() throws {
        let cfg = try SimulationConfig.parse("""
        {"problem": {"generate": {"M": 5, "N": 10, "seed": 4}}, "model": {"flow": "gd", "depth": 2, "step": 0.2},
         "init": {"scale": 0.5, "direction": "abs-gaussian", "seed": 4},
         "integrator": {"t_end": 1e6, "max_steps": 2000000, "stop": {"loss_below": 1e-22}}, "record": {"points": 0}}
        """)
        let b = try #require(byName(Verification.run(config: cfg).result.monitor)["bound-weighted-l1-gap"])
        #expect(b.isMeasurement, "\(b)")
    }
}

/// The discrete Lemma 3.7 with a weight at 0 checks the others against ker Ã_S of the remaining
/// columns S: GD steps on S pass; the same steps plus a move in ker Ã_S fail (the restricted
/// projector catches a broken iteration too). Fed by hand: the monitor never starts there.
@Test func discreteKernelStepWithAZeroWeight() throws {
    let cfg = try SimulationConfig.parse(#"{"problem": {"A": [[1.0, 2.0, 0.5, -1.0, 3.0], [0.3, -1.0, 2.0, 1.0, 1.0]], "y": [1.0, 0.5]}, "model": {"flow": "gd", "depth": 2, "step": 0.01}, "init": {"x0": [0.3, 0.2, 0.4, 0.1, 0.25]}}"#)
    let p = cfg.problem
    let live = [0, 1, 2, 3]
    let kS = try KernelProjector(selectColumns(p.matrix, live)).apply([1, 0, 0, 0])
    func run(drift: Double) throws -> CheckReport {
        let check = DiscreteKernelStep(context: try MonitorContext(flow: GradientFlow(problem: p)),
                                       rule: ToleranceRule(rtol: 1e-10, atol: 0, stateScale: 1, dimension: 5), step: 0.01)
        var x = [0.3, 0.2, 0.4, 0.1, 0.0]
        for k in 0...20 {
            _ = x.withUnsafeBufferPointer { check.observe(AcceptedStep(t: Double(k) * 0.01, y: $0, h: 0.01, saveIndex: nil, stepNumber: k)) }
            let r = p.residual(x)   // Ã x² − y
            var grad = [Double](repeating: 0, count: 5)
            for j in 0..<5 { for i in 0..<2 { grad[j] += p.matrix[i, j] * r[i] } }
            for (a, j) in live.enumerated() { x[j] += -0.01 * 2 * x[j] * grad[j] + drift * kS[a] }
        }
        return check.report()
    }
    let clean = try run(drift: 0)
    #expect(clean.passed && clean.quantity.contains("were left out"), "\(clean.maxViolation) vs \(clean.tolerance): \(clean.quantity)")
    let broken = try run(drift: 1e-6)
    #expect(!broken.passed && broken.maxViolation > 100 * broken.tolerance, "\(broken.maxViolation) vs \(broken.tolerance)")
}
