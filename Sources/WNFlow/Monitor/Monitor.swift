import Foundation
import GSLKit

/// Every applicable check of the paper's lemmas for one run, as observers of
/// the integration (DESIGN.md: Recorder, Monitor, StopCriteria).
///
/// Which checks apply (L = depth, "positive" = `x₀ > 0`, or `g₀ > 0` and
/// `v₀ > 0` for WN):
///
/// | check | flows | needs |
/// |---|---|---|
/// | `lemma-3.2-norm` | wn, wn-timedep, wn-gd | — |
/// | `lemma-3.3-sign` | all | L ≥ 2 (any start: every entry keeps its sign) |
/// | `lemma-3.5-monotone-loss` | all | — |
/// | `lemma-3.7-invariant` | gf, gd, wn-timedep | no zero entry if L ≥ 2 (`h_2 = log|x|`) |
/// | `lemma-3.8-invariant` | wn, wn-gd | positive if L ≥ 2 |
/// | `lemma-3.9-effective-init` | wn, wn-gd | positive if L ≥ 2 |
/// | `lemma-3.18-bregman` | gf, gd, wn-timedep | positive if L ≥ 2 |
/// | `signed-coordinate-invariant` | gf, gd, wn-timedep, signed | positive if L ≥ 2 |
/// | `loss-decay-rate` (measurement) | all | — |
///
/// Discrete runs (gd, wn-gd): `lemma-3.2-norm` and `lemma-3.7-invariant` check what the
/// iteration keeps exactly (`DiscreteNormIdentity`, `DiscreteKernelStep`), 3.3 and 3.5 are
/// checks as for the flows, and the flow's other statements (3.8, 3.9, 3.18, the signed
/// coordinates) are measurements of the discretization (`DiscreteRuns`). Tolerances: `ToleranceRule`.
///
/// Under method `dual` (`DualSolver`) some statements hold by construction
/// and are reported with `byConstruction`: GF's `lemma-3.3-sign`,
/// `lemma-3.7-invariant` and `signed-coordinate-invariant`, WN's
/// `lemma-3.2-norm` and `lemma-3.3-sign`. The others (3.5, 3.8, 3.9, 3.18,
/// 3.7 for time-dependent WN) relate quantities the coordinates do not tie
/// together and remain checks of the integration. Under `bdf` in weight space a WN run's
/// `lemma-3.2-norm` holds by construction too: the solver projects `v` back onto
/// `‖v‖ = ‖v₀‖` after every step (`WeightNormFlow.normProjection`).
public final class Monitor {
    public let context: MonitorContext
    public let rule: ToleranceRule
    public let checks: [any Check]
    /// Checks that do not apply to this run, with the reason.
    public let skipped: [(name: String, reason: String)]
    /// Names of the checks that hold by construction in this run's coordinates.
    public let byConstruction: Set<String>
    /// The step μ of a discrete run (gd, wn-gd), whose rows about the flow are measurements
    /// (`DiscreteRuns`); nil for the flows.
    public let discreteStep: Double?
    /// The run's flow (the config's: a gd run integrates a `GradientFlow`).
    public let flowKind: FlowKind

    /// Builds the checks for `flow` started at `initialState` under `config`;
    /// `dualCoordinates` when the run integrates in dual coordinates; `projectedNorm` when the
    /// integrator projects WN's `v` onto `‖v‖ = ‖v₀‖` (Lemma 3.2).
    public init(config: SimulationConfig, flow: any Flow, initialState: [Double], dualCoordinates: Bool = false,
                projectedNorm: Bool = false) throws {
        context = try MonitorContext(flow: flow)
        rule = ToleranceRule(config: config, initialState: initialState)
        let kind = config.model.flow
        let L = flow.problem.depth
        let wn = kind.isWeightNormalized
        let positive = initialState.allSatisfy { $0 > 0 }
        let positiveOK = L == 1 || positive
        // Lemma 3.7 needs h_L(x₀) finite: every entry non-zero (either sign) at L ≥ 2.
        let nonzeroOK = L == 1 || initialState.allSatisfy { $0 != 0 }
        let posReason = "depth \(L) needs a positive start (\(wn ? "g₀ > 0, v₀ > 0" : "x₀ > 0"))"
        let gfLike = kind == .gf || kind == .gd || kind == .wnTimeDependent
        let constantWN = kind == .wn || kind == .wnGD
        var cs: [any Check] = []
        var skip: [(String, String)] = []

        // Discrete runs: what the iteration keeps exactly (`DiscreteRuns`).
        let discreteStep = kind.isDiscrete ? config.model.step ?? 0.01 : nil
        self.discreteStep = discreteStep
        flowKind = kind
        if wn {
            cs.append(discreteStep != nil ? DiscreteNormIdentity(context: context, rule: rule) as any Check
                                          : Lemma32Norm(context: context, rule: rule))
        } else { skip.append(("lemma-3.2-norm", "not a weight-normalized flow")) }
        if L >= 2 { cs.append(Lemma33Sign(context: context, rule: rule)) } else {
            skip.append(("lemma-3.3-sign", "depth 1: signs may change (MATH.md §2)"))
        }
        cs.append(Lemma35MonotoneLoss(context: context, rule: rule))
        if gfLike && nonzeroOK {
            if let discreteStep {
                cs.append(DiscreteKernelStep(context: context, rule: rule, step: discreteStep))
            } else {
                cs.append(Lemma37Invariant(context: context, rule: rule))
            }
        } else {
            skip.append(("lemma-3.7-invariant", gfLike ? "depth \(L) needs a start without zero entries (h_L(0) is undefined)" : "constant-rate WN: see lemma-3.8/3.9"))
        }
        // WN: Lemmas 3.8 and 3.9 in h_L of each entry's own sign (log|v|, the signed v^{2−L}),
        // as Lemma 3.7: the flow keeps every sign, and g > 0 at depth ≥ 2.
        let wnStartOK = L == 1 || (initialState.first ?? 0) > 0 && nonzeroOK
        if constantWN && wnStartOK {
            let etaG = config.model.etaG
            let vNorm0 = norm2(Array(initialState.dropFirst()))
            cs.append(Lemma38Invariant(context: context, rule: rule, etaG: etaG, etaV: config.model.etaV, vNorm0: vNorm0))
            cs.append(Lemma39EffectiveInit(context: context, rule: rule, etaG: etaG, etaV: config.model.etaV, vNorm0: vNorm0))
        } else {
            let r = constantWN ? "depth \(L) needs g₀ > 0 and a v₀ without zero entries (h_L(0) is undefined)" : "needs constant-rate WN"
            skip.append(("lemma-3.8-invariant", r))
            skip.append(("lemma-3.9-effective-init", r))
        }
        // Lemma 3.18 at even depth from any start without zeros: there x^L = |x|^L, and the flow
        // from x₀ is the one from |x₀| with the signs kept (docs/math.md §5).
        let bregmanApplies = gfLike && (positiveOK || L % 2 == 0 && nonzeroOK)
        let zeroLoss = bregmanApplies ? ZeroLossSet.find(problem: flow.problem, x0: flow.weights(of: initialState)) : .undecided
        if case let .empty(set, _) = zeroLoss {
            skip.append(("lemma-3.18-bregman", set + ": the lemma holds for no z, and the loss cannot reach 0"))
        } else if bregmanApplies {
            var reference: (z: [Double], source: String)? = nil
            if case let .point(z, source) = zeroLoss { reference = (z, source) }
            cs.append(try Lemma318Bregman(context: context, rule: rule, reference: reference))
        } else {
            skip.append(("lemma-3.18-bregman", gfLike ? posReason + (L % 2 == 0 ? " or one without zero entries" : " at odd depth") : "holds for GF and time-dependent WN only"))
        }
        if flow.problem.signed && gfLike && positiveOK { cs.append(SignedCoordinateInvariant(context: context, rule: rule)) } else {
            skip.append(("signed-coordinate-invariant", !flow.problem.signed ? "not a signed run" : (gfLike ? posReason : "holds for GF and time-dependent WN only")))
        }
        cs.append(LossDecayRate(context: context, rule: rule))
        checks = cs
        skipped = skip
        if !dualCoordinates {
            byConstruction = projectedNorm && wn ? ["lemma-3.2-norm"] : []
        } else if kind.isWeightNormalized {
            byConstruction = ["lemma-3.2-norm", "lemma-3.3-sign"]
        } else {
            byConstruction = ["lemma-3.3-sign", "lemma-3.7-invariant", "signed-coordinate-invariant"]
        }
    }

    /// The monitor of a simulation's flow and start.
    public convenience init(simulation: Simulation) throws {
        try self.init(config: simulation.config, flow: simulation.flow, initialState: simulation.initialState,
                      dualCoordinates: !simulation.config.model.flow.isDiscrete && simulation.resolvedMethod == .dual,
                      projectedNorm: simulation.projectsNorm(method: simulation.resolvedMethod))
    }

    /// The checks as observers, for `Simulation.run(observers:)`.
    public var observers: [any StepObserver] { checks }

    /// Every check's verdict.
    public func reports() -> [CheckReport] {
        DiscreteRuns.measured(checks.map { check in
            var r = check.report()
            r.byConstruction = byConstruction.contains(r.name)
            return r
        }, flow: flowKind, step: discreteStep)
    }
}

extension Simulation {
    /// Runs with the monitor attached and returns the result with
    /// `result.monitor` filled (INTERFACE.md: every simulate run carries it).
    /// When the monitor cannot be built (its SVD failed) the run proceeds
    /// without it and says so in `warnings`.
    public func runMonitored(observers extra: [any StepObserver] = [], recordTrajectory: Bool = true)
        -> (result: SimulationResult, monitor: Monitor?) {
        let monitor: Monitor?
        var warning: String?
        do { monitor = try Monitor(simulation: self) } catch {
            monitor = nil
            warning = "monitor disabled: \(error)"
        }
        var result = run(observers: (monitor?.observers ?? []) + extra, recordTrajectory: recordTrajectory,
                         monitorContext: monitor?.context)
        result.monitor = monitor?.reports() ?? []
        // After a hand-over to weight space nothing holds by construction, except Lemma 3.2
        // when the weight-space method projects onto it.
        if result.dualHandover != nil {
            let kept = projectsNorm(method: weightSpaceMethod) ? "lemma-3.2-norm" : nil
            for i in result.monitor.indices where result.monitor[i].name != kept { result.monitor[i].byConstruction = false }
        }
        if let warning { result.warnings.append(warning) }
        return (result, monitor)
    }
}
