import Foundation
import GSLKit

/// One check's verdict on a trajectory (INTERFACE.md, `monitor`).
public struct CheckReport: Sendable, Equatable {
    /// The check's name, e.g. `lemma-3.8-invariant`.
    public var name: String
    /// The worst violation measured (in the unit `quantity` names).
    public var maxViolation: Double
    /// The tolerance it is held to.
    public var tolerance: Double
    /// Whether `maxViolation ≤ tolerance` (always true for measurements).
    public var passed: Bool
    /// Time of the worst violation.
    public var tWorst: Double
    /// What was measured, in words and unit.
    public var quantity: String
    /// A measurement (e.g. a fitted rate) rather than a pass/fail check.
    public var isMeasurement: Bool = false
    /// The measured value for measurements (e.g. κ).
    public var value: Double?
    /// The run's coordinates make the statement exact up to rounding (method
    /// `dual`: e.g. Lemma 3.7 for GF, whose state lives on the invariant
    /// manifold); the check then measures rounding, not the integrator.
    public var byConstruction = false

    public init(name: String, maxViolation: Double, tolerance: Double, passed: Bool, tWorst: Double,
                quantity: String, isMeasurement: Bool = false, value: Double? = nil) {
        self.name = name
        self.maxViolation = maxViolation
        self.tolerance = tolerance
        self.passed = passed
        self.tWorst = tWorst
        self.quantity = quantity
        self.isMeasurement = isMeasurement
        self.value = value
    }
}

/// How a run ended (INTERFACE.md, `status`).
public enum RunStatus: String, Sendable {
    /// A stop criterion (loss or speed) held.
    case converged
    /// `t_end` was reached first.
    case tEnd = "t_end"
    /// The step budget ran out.
    case maxSteps = "max_steps"
    /// The integration failed; partial results are kept.
    case failed
}

/// One recorded row of `trajectory.csv`.
public struct TrajectoryRow: Sendable {
    public var t: Double
    public var loss: Double
    public var g: Double?
    public var vNorm: Double?
    public var x: [Double]
}

/// Everything a run produced (INTERFACE.md, `result.json`).
public struct SimulationResult: Sendable {
    public var status: RunStatus
    public var t: Double
    public var loss: Double
    public var x: [Double]
    public var z: [Double]
    public var g: Double?
    public var v: [Double]?
    /// `log ρ(t)` at the end (constant-rate WN, Lemma 3.9).
    public var logRho: Double?
    public var stats: ODEStatistics
    /// Wall time of the integration alone.
    public var wallSeconds: Double
    /// The method actually used (`auto` resolved).
    public var method: String
    public var monitor: [CheckReport] = []
    public var trajectory: [TrajectoryRow] = []
    /// Why the run failed, with a suggested fix.
    public var message: String?
    public var warnings: [String] = []
    /// The final state (`x` for GF, `[g, v]` for WN).
    public var state: [Double]
    /// When a `dual` run handed over to weight space (`DualSolver`), if it did.
    public var dualHandover: Double?
    /// Whether `converged` came from `stop.speed_below` (a stationary point, maybe a saddle)
    /// rather than from `loss_below` (`StopCriteria.stoppedBySpeed`).
    public var stoppedBySpeed = false
}

/// Builds the flow a config asks for.
public func makeFlow(problem: Problem, model: ModelSpec) -> any Flow {
    switch model.flow {
    case .gf, .gd: return GradientFlow(problem: problem)
    case .wn, .wnGD: return WeightNormFlow(problem: problem, rate: .constant(model.etaG), etaV: model.etaV)
    case .wnTimeDependent: return WeightNormFlow(problem: problem, rate: .timeDependent, etaV: model.etaV)
    }
}

/// `c = η_v / (2 η_g ‖v₀‖²)` of Lemmas 3.8 and 3.9.
public func magnificationConstant(etaG: Double, etaV: Double, vNorm0: Double) -> Double {
    etaV / (2 * etaG * vNorm0 * vNorm0)
}

/// `log ρ = log(g₀/g) + c(g² − g₀²)`, `c = η_v/(2η_g‖v₀‖²)` (Lemma 3.9,
/// (2.4)), evaluated in log form: ρ itself overflows.
public func logMagnification(g0: Double, g: Double, etaG: Double, etaV: Double, vNorm0: Double) -> Double {
    let c = magnificationConstant(etaG: etaG, etaV: etaV, vNorm0: vNorm0)
    return log(abs(g0) / abs(g)) + magnificationExponent(c: c, g: g, g0: g0)
}

/// `c(g² − g₀²)` of (2.4) as `c(g − g₀)(g + g₀)`: `g − g₀` is exact near g₀, while
/// `g² − g₀²` keeps only the bits of g₀² that do not cancel; with `c g₀²` large (η_g = 1e-4,
/// ‖v₀‖ = 0.05, ‖x₀‖ = 30: 2.7e10) that left log ρ wrong by ~1e-7 and the predicted `x_∞`
/// wrong by 1.9e-6 relative, while `g_∞` agreed with the flow to 4e-15.
@inline(__always)
public func magnificationExponent(c: Double, g: Double, g0: Double) -> Double {
    c * ((g - g0) * (g + g0))
}

/// (2.4) in log form from `log|g|` (`logAbsG`): dual coordinates keep it where g itself
/// underflows to 0 (WN at the saddle x = 0), and `log(g₀/g)` would be +∞.
public func logMagnification(g0: Double, g: Double, logAbsG: Double, c: Double) -> Double {
    log(abs(g0)) - logAbsG + magnificationExponent(c: c, g: g, g0: g0)
}

/// Whether `x` is 0 or subnormal: where a g held as `exp(log g)` has lost its value and only
/// its log (dual coordinates) still says where it is.
@inline(__always)
func isBelowNormalRange(_ x: Double) -> Bool { !(abs(x) >= .leastNormalMagnitude) }

/// Runs one simulation: the config's flow, integrator, stop criteria and
/// recording, plus any extra observers (the monitor).
public final class Simulation {
    public let config: SimulationConfig
    public let flow: any Flow
    public let initialState: [Double]

    public init(config: SimulationConfig) {
        self.config = config
        flow = makeFlow(problem: config.problem, model: config.model)
        if config.model.flow.isWeightNormalized {
            initialState = WeightNormFlow.initialState(x0: config.x0, vNorm: config.vNorm, g0: config.g0, v0: config.v0)
        } else {
            initialState = config.x0
        }
    }

    /// The method `auto` resolves to for this problem, on measured evidence
    /// (release build, N = 100, M = 40, rtol 1e-10; README "Performance" and Benchmarks/HISTORY.md):
    /// - depth-2 WN (constant or Thm 2.4 rate): `dual`, WNFlow's BDF on the
    ///   (M+1)-dimensional dual state with the accurate residual of
    ///   docs/math.md §6b. N = 100, M = 40: η = 0.05 0.05–0.08 s vs bsimp in
    ///   weight space 0.16–0.21 s; N = 50 0.02 s vs 0.07–0.10 s (N = 25: a
    ///   tie); N = 400 0.85 s vs msbdf 8.4 s, N = 1000 3.6 s vs 120 s,
    ///   N = 2000 (M = 500, to loss 1e-20) 7.8–8.8 s vs msbdf 179 s. Lemmas
    ///   3.2 and 3.3 then hold by construction; 3.8 and 3.9 stay checks of
    ///   the integration;
    /// - other WN up to depth `weightNormBDFDepth` (4), either rate (depth ≠ 2; or g₀ = 0,
    ///   rtol < 1e-13, or the weight space a `dual` run hands over to), at every size: `bdf`
    ///   with Lemma 3.2 as a projection and, from a non-negative start at depth ≥ 2, every
    ///   entry of v under relative error control (`WeightNormFlow.normProjection`,
    ///   `relativeErrorNorm`; docs/math.md §6d). `wnflow verify` on the 576 WN
    ///   configurations of `Benchmarks/sweeps.py verify`/`verify-signed` at
    ///   depths 1–3 in weight space: the same verdicts as bsimp (msbdf for
    ///   the Thm 2.4 rate) at depths 1 and 3, and at depth 2 it passes the 9
    ///   where bsimp fails Lemmas 3.8/3.9 (entries of v far below atol lose
    ///   their relative accuracy); total wall time 2.6× (plain) and 5.5×
    ///   (signed) lower at depths 1 and 3. The bench's depth-3 WN case:
    ///   0.135 s vs bsimp 0.38 s; N = 1000, M = 400 (η_g = 0.2, x₀ = 1): 21 s
    ///   vs `rosenbrock` 257 s, both in 32 MB. (Before: bsimp up to dimension
    ///   400, msbdf (dense N × N) up to 5000, `rosenbrock` above; `bdf` with
    ///   GSL's norm and no projection failed Lemma 3.2 on that case by 1.25× and
    ///   Lemma 3.8 by 5× on stalling runs.) Deeper WN: `bdf` with checked solves (every
    ///   Woodbury solve checked by its residual, refined, or replaced by a dense LU up to
    ///   dimension 1000; `checksBDFSolves`) up to dimension `checkedBDFDimension` (5000), either
    ///   rate, `rosenbrock` above (before stop 23: msbdf above 1000; before stop 22: bsimp up
    ///   to 400 for the constant rate);
    /// - depth-2 GF: the same BDF in dual coordinates (`dual`). Since the
    ///   Jacobian age limit it is faster at every size measured (M = 0.4N,
    ///   α = 0.1 and 1e-3, best of 10): N = 10 0.9/1.9 ms vs `bdf` 1.1/3.4 ms,
    ///   N = 50 4.0/6.7 vs 6.2/15.6, N = 100 8.9/16.7 vs 20.7/29.8, N = 400
    ///   144/449 vs 304/980; N = 1000/2000/10000: 1.45/3.1/176 s vs
    ///   2.3/7.0/350 s. Lemma 3.7 then holds by construction (as 3.2/3.3 for
    ///   WN); run `bdf` to test it against the integration. Only from x₀ with
    ///   every |x₀_n| ≤ `dualInitLimit`: from larger x₀ the dual's residual
    ///   (z ~ x₀² carried as exp of a rounded exponent) has a floor near the
    ///   default stop, and runs that `bdf` takes to it ended at t_end (x₀ = 100:
    ///   3 of 10 small problems), or handed over on a loose bound (‖μ‖∞ > 300
    ///   where no weight had moved by more than e^23, x₀ = 30);
    /// - GF at depth ≥ 3 from x₀ ≥ 0: `dual` in `x^{2−L} = x₀^{2−L} + Aᵀλ`
    ///   (`DualPowerGradientSystem`, stop 24): the bench's depth-3 case 1,913 steps in
    ///   15.8–17.9 ms vs `bdf` 2,453 in 27.6 ms; N = 400, M = 160 0.16 s vs 0.33 s; 168 `verify`
    ///   runs at depths 3–6 with every check passing under both (docs/math.md §6a). It hands over
    ///   to `bdf` where `x₀^{2−L} + Aᵀλ` would cancel digits past rtol/10 (x₀ = 1e-3 at L = 4);
    /// - other GF: WNFlow's own variable-order BDF (`bdf`) with Jacobian reuse
    ///   and Woodbury solves (N = 100: 2,273 RHS evaluations, 4 Jacobians,
    ///   0.024 s vs msbdf 3,792 / 37 / 0.044 s; N = 2000, M = 500: 6.1 s vs
    ///   msbdf 79 s);
    /// - a flow without the structured Jacobian: GSL's BDF (`msbdf`) with the analytic Jacobian.
    public var resolvedMethod: Method {
        switch config.integrator.method {
        case .auto:
            let d = config.model.depth
            // The dual coordinates carry a dense M × M Jacobian and its factors: with more rows
            // than weights and too many to fit (M = 2e5, N = 20: an allocation of 3.2e11 bytes
            // ended the run), weight space. Where they fit they stay the faster choice even for
            // M > N (M = 30, N = 20: GF 0.012 s against msbdf's 0.070 s, WN 0.014 s vs 0.150 s).
            if !mByMWorkFits { return weightSpaceMethod }
            // Below rtol 1e-13 the dual state's rounding (≈ 4ε|μ|) nears the tolerance:
            // N = 400, rtol 1e-14: dual 1.99 s vs bdf 1.54 s (1e-13: 0.72 vs 0.93 s).
            if config.model.flow == .gf && d == 2 && config.integrator.rtol >= 1e-13
                && initialState.allSatisfy({ abs($0) <= Simulation.dualInitLimit }) { return .dual }
            // Depth ≥ 3 GF from x₀ ≥ 0 (not 0): the dual coordinates x^{2−L} = x₀^{2−L} + Aᵀλ
            // (`DualPowerGradientSystem`), handing over to `bdf` should they lose precision.
            if config.model.flow == .gf && d >= 3 && config.integrator.rtol >= 1e-13
                && initialState.allSatisfy({ $0 >= 0 }) && initialState.contains(where: { $0 > 0 }) { return .dual }
            // dual integrates log g: not from g₀ = 0.
            if (config.model.flow == .wn || config.model.flow == .wnTimeDependent) && d == 2
                && config.integrator.rtol >= 1e-13 && initialState.first != 0 { return .dual }
            return weightSpaceMethod
        default:
            return config.integrator.method
        }
    }

    /// Whether dense M × M work (the dual Jacobian and factors, Woodbury's capacitance) fits in
    /// the available memory: always below M = N (the paper's setting, where N × N work is larger).
    public var mByMWorkFits: Bool {
        config.problem.m <= config.problem.weightCount
            || MemoryBudget.fits(MemoryBudget.squares(config.problem.m, count: 4))
    }

    /// `auto`'s choice among the methods that integrate in weight space (also
    /// where a `dual` run hands over when its residual does not vanish).
    public var weightSpaceMethod: Method {
        switch config.integrator.method {
        case .auto, .dual:
            // Woodbury's capacitance is M × M: where that does not fit, msbdf's dense N × N solves.
            if flow is any LowRankJacobianSystem && mByMWorkFits {
                if config.model.flow == .gf || (flow is WeightNormFlow && config.model.depth <= Simulation.weightNormBDFDepth) { return .bdf }
                // Deeper WN: `bdf` with checked solves up to `checkedBDFDimension` (`makeSolver`),
                // `rosenbrock` above.
                if checksBDFSolves { return .bdf }
                if flow.dimension > Simulation.checkedBDFDimension { return .rosenbrock }
            }
            return .gsl(.msbdf)
        default:
            return config.integrator.method
        }
    }

    /// Whether `method` keeps Lemma 3.2 by construction by projection for this run's flow:
    /// `bdf` moves a WN state onto `‖v‖ = ‖v₀‖` after every step (`makeSolver`). (`dual`
    /// keeps it through its coordinates; `Monitor` knows that separately.)
    public func projectsNorm(method: Method) -> Bool {
        flow is WeightNormFlow && !config.model.flow.isDiscrete && method == .bdf
    }

    /// Whether `bdf` checks its Woodbury solves for this run (`BDFSolver.checkedSolves`: refined,
    /// or replaced by a dense LU, where their residual is large): WN deeper than
    /// `weightNormBDFDepth` up to dimension `checkedBDFDimension`.
    public var checksBDFSolves: Bool {
        flow is WeightNormFlow && config.model.depth > Simulation.weightNormBDFDepth
            && flow.dimension <= Simulation.checkedBDFDimension
    }

    /// Largest dimension at which `auto` runs WN deeper than `weightNormBDFDepth` on `bdf` with
    /// checked solves (above it `rosenbrock`; an explicit `bdf` above it keeps the plain
    /// Woodbury solves). Up to `BDFSolver.denseLimit` (1000) a solve whose residual refinement
    /// fails falls back to the dense LU; above it the checks refine only. Stop 23 (was 1000,
    /// msbdf above): depth 5, M = N/4, N = 1200 and 2000, η_g 0.05 and 0.3, from 1e-3, 0.03 and
    /// 1 (12 `verify` runs): every check passes under both; `verify` 11–18 s against 16–51 s
    /// at N = 1200 and 41–69 s against 77–258 s at N = 2000; `simulate` at N = 1200 0.93 s
    /// against 4.5 s (from 1) and 8.1 s against 42.7 s (from 1e-3), with the same steps as
    /// plain Woodbury solves (no solve needed more than the check). N = 4000, M = 1000 from 1e-3
    /// (η_g 0.05): every check passes, 7,474 steps in 252 s (msbdf not run: a dense 4000 × 4000
    /// LU per factorization).
    /// Stop 22: depth 5, M/N = 160/400 and 300/750 (η_g 0.01, 0.3, the Thm 2.4
    /// rate; from 1e-3 and 1; 12 runs): every check passes under both, `bdf` 1.7–2.8× faster
    /// than msbdf (N = 750 from 1e-3: 5.9 s against 15.2 s); N = 1000, M = 400 (plain solves):
    /// 5.0 s against 18.1 s, both passing. Stop 22, `wnflow verify` on 288 WN
    /// configurations at depths 5 and 6 (M/N = 25/100, 10/25, 20/60; η_g 0.01/0.05/0.3 and
    /// the Thm 2.4 rate; from 1e-3, 0.03, 1; two directions; plain and signed): the verdicts of
    /// bsimp (constant rate) and msbdf (Thm 2.4 rate) on every run, except two Thm 2.4 runs
    /// msbdf fails (`predict-limit`) and this passes, in 30.9 s against 72.0 s. With dense LU
    /// solves throughout (2,791 steps on the run below) one signed depth-5 stall failed
    /// Lemma 3.8 (3.6e-5 against 1.2e-5) that the Woodbury solves pass (Lemma 3.8 at 2.57e-8).
    public static let checkedBDFDimension = 5000

    /// Deepest WN that `auto` runs on `bdf` with plain Woodbury solves: the depths its sweeps
    /// covered (1–3: 576 weight-space `verify` runs with bsimp's or msbdf's verdicts or better;
    /// 4: the 192 WN runs of the verify grids flag only t_end stalls). At depth 5 WN from
    /// `(10⁻³d)^{1/5}`, M = 20, N = 60, η_g = 0.05 took 63,284 steps (20,942 rejected, 13,994
    /// of them Newton failures) and failed Lemmas 3.8/3.9 at 2.3e-4 against 2.9e-5: the
    /// Woodbury solves lost accuracy (`ShiftedLowRankSolver.solve`). With checked solves
    /// (`checksBDFSolves`, deeper WN) it takes 2,538 steps and passes (Lemma 3.8 at 8.5e-9).
    public static let weightNormBDFDepth = 4

    /// Largest |x₀_n| from which `auto` runs depth-2 GF in dual coordinates.
    public static let dualInitLimit = 10.0

    /// The save times of the recorder.
    public var saveTimes: [Double] {
        let tEnd = config.integrator.tEnd
        switch config.record.times {
        case let .list(ts): return ts.filter { $0 > 0 && $0 <= tEnd }
        case .log:
            let n = config.record.points
            if n <= 0 { return [] }
            let lo = min(config.record.tMin ?? 1e-3, tEnd)
            if n == 1 { return [tEnd] }
            // In decades (10^e), so that grid points on whole decades are exact: lo·e^{k r/(n−1)}
            // gave 999.9999999999998 for 1000.
            let a = log10(lo), r = log10(tEnd) - a
            var ts = (0..<n).map { pow(10, a + r * Double($0) / Double(n - 1)) }
            ts[0] = lo
            ts[n - 1] = tEnd
            return ts
        }
    }

    /// Makes the solver for the resolved method (or for `method`).
    public func makeSolver(method: Method? = nil) throws -> any ODESolver {
        let it = config.integrator
        if config.model.flow.isDiscrete {
            return DiscreteDescent(system: flow, step: config.model.step ?? 0.01, maxSteps: it.maxSteps,
                                   lossFloor: config.lossThreshold, lossScale: config.problem.lossScale)
        }
        switch method ?? resolvedMethod {
        case let .gsl(stepper):
            return try ODEIntegrator(system: flow, options: ODEOptions(
                stepper: stepper, rtol: it.rtol, atol: it.atol, initialStep: it.initialStep, maxSteps: it.maxSteps))
        case .rosenbrock:
            guard let structured = flow as? any LowRankJacobianSystem else {
                throw ODEError.invalidOptions("method rosenbrock needs a flow with a structured Jacobian")
            }
            return try RosenbrockSolver(system: structured, options: ODEOptions(
                rtol: it.rtol, atol: it.atol, initialStep: it.initialStep, maxSteps: it.maxSteps))
        case .bdf:
            guard let structured = flow as? any LowRankJacobianSystem else {
                throw ODEError.invalidOptions("method bdf needs a flow with a structured Jacobian")
            }
            let bdf = try BDFSolver(system: structured, options: ODEOptions(
                rtol: it.rtol, atol: it.atol, initialStep: it.initialStep, maxSteps: it.maxSteps))
            bdf.checkedSolves = checksBDFSolves
            // One predicate says where the projection runs, here and in the monitor's by-construction marks.
            if projectsNorm(method: .bdf), let wn = flow as? WeightNormFlow {
                bdf.projection = wn.normProjection(radius: norm2(Array(initialState.dropFirst())))
                if wn.problem.depth >= 2 && initialState.allSatisfy({ $0 >= 0 }) {
                    bdf.errorNormOverride = WeightNormFlow.relativeErrorNorm(dimension: wn.dimension, rtol: it.rtol, atol: it.atol)
                }
            }
            return bdf
        case .dual:
            let fallback = weightSpaceMethod
            // WNFlow's BDF for GF and WN (WN: GSL's bsimp took 14,043 RHS
            // evaluations where the BDF takes 7,007 in the same wall time, and
            // its solves contend for OpenBLAS's dtrsv lock in parallel runs:
            // Benchmarks/HISTORY.md).
            let dual = try DualSolver(flow: flow, stepper: nil,
                                      rtol: it.rtol, atol: it.atol, initialStep: it.initialStep, maxSteps: it.maxSteps,
                                      fallback: { try self.makeSolver(method: fallback) })  // no cycle: the solver is not stored
            dual.maxRecenterings = it.maxRecenterings
            return dual
        case .auto:
            // `resolvedMethod` never returns `.auto`; report rather than trap.
            throw ODEError.invalidOptions("method auto did not resolve to a concrete method")
        }
    }

    /// Integrates and returns the result (always; failures are in `status`).
    /// `monitorContext`, when the monitor runs, lends the stop criterion the
    /// loss it computes anyway, so the loss is evaluated once per step.
    public func run(observers extra: [any StepObserver] = [], recordTrajectory: Bool = true,
                    monitorContext: MonitorContext? = nil) -> SimulationResult {
        // Same config, same numbers: the flow's residual reference (docs/math.md §6b)
        // must not carry over from an earlier run of this simulation.
        flow.lossWorkspace?.reset()
        let recorder = TrajectoryRecorder(flow: flow, enabled: recordTrajectory)
        let stop = StopCriteria(flow: flow, lossBelow: config.lossThreshold, speedBelow: config.integrator.speedBelow,
                                context: monitorContext)
        var run: ODERun
        var method = config.model.flow.isDiscrete ? "discrete" : resolvedMethod.description
        let start = DispatchTime.now().uptimeNanoseconds
        var handover: Double?, recenterings = 0, finalLogs: [Double]?, handoverFailure: (any Error)?
        var descent: DiscreteDescent?
        do {
            let solver = try makeSolver()
            run = solver.integrate(from: 0, y0: initialState, to: config.integrator.tEnd, saveTimes: saveTimes,
                                   observers: [stop] + extra + [recorder])
            descent = solver as? DiscreteDescent
            handover = (solver as? DualSolver)?.handoverTime
            handoverFailure = (solver as? DualSolver)?.handoverFailure
            recenterings = (solver as? DualSolver)?.farRecenterings ?? 0
            finalLogs = (solver as? DualSolver)?.finalLogState
        } catch {
            run = ODERun(t: 0, y: initialState, stats: ODEStatistics(), termination: .failed, failure: error)
            method = config.integrator.method.description
        }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        recorder.finish(t: run.t, state: run.y)

        let x = flow.weights(of: run.y)
        var status: RunStatus
        var message: String?
        switch run.termination {
        case .stoppedByObserver: status = stop.converged ? .converged : .tEnd
        case .reachedEnd: status = stop.converged ? .converged : .tEnd
        case .maxSteps:
            status = .maxSteps
            var advice = ""
            if !config.model.flow.isDiscrete {
                if case let .gsl(stepper) = resolvedMethod, !stepper.isImplicit {
                    advice = " or use an implicit method (msbdf)"
                } else {
                    let others = ["bsimp", "msbdf", "bdf"].filter { $0 != resolvedMethod.description }
                    advice = " or try another method (\(others.joined(separator: ", ")))"
                }
            }
            if let unreachable = zeroLossUnreachable(finalLoss: 0.5 * config.problem.accurateResidual(x).reduce(0) { $0 + $1 * $1 }) {
                message = "max_steps (\(config.integrator.maxSteps)) reached at t = \(Simulation.time(run.t)); " + unreachable
            } else {
                message = "max_steps (\(config.integrator.maxSteps)) reached at t = \(Simulation.time(run.t)); raise integrator.max_steps" + advice
            }
        case .failed:
            status = .failed
            if config.model.flow.isDiscrete, case .nonFiniteState? = run.failure as? ODEError {
                // Not an ODE solve: no method or tolerance changes a diverging iteration.
                message = "the iteration diverged (the next iterate left double range) after step \(run.stats.acceptedSteps), t = \(Simulation.time(run.t)); "
                    + lowerStepAdvice + "; the result holds the last finite iterate"
            } else if let d = run.failure as? DiscreteDivergence {
                message = "the iteration diverged: \(d); " + lowerStepAdvice + "; the result holds that iterate"
            } else if case let .stepSizeUnderflow(tFail, h)? = run.failure as? ODEError {
                message = underflowAdvice(t: tFail, h: h, state: run.y)
            } else {
                message = run.failure.map { "\($0)" } ?? "integration failed"
            }
        }
        // Compensated: near a zero of the loss the plain sum's rounding ε|Ã||x^L| can exceed
        // the loss itself (from x₀ = 300: 7.5e-25 reported at a loss of 2.2e-25).
        let residual = config.problem.accurateResidual(x)
        let loss = 0.5 * residual.reduce(0) { $0 + $1 * $1 }
        // A discrete run whose loss still rose late in the run (in its last tenth, or it ended
        // above its lowest loss): the step, not t_end, is what to change. Rises early on that
        // the loss has since recovered from get a note after the usual advice.
        var earlyRises: String?
        if let d = descent, d.lossRises > 0, let rise = d.firstRise, let last = d.lastRise, status == .tEnd || status == .maxSteps {
            let steps = run.stats.acceptedSteps
            let rising = last >= steps - max(steps / 10, 1) || loss > (d.lowestLoss ?? loss) * (1 + 1e-6)
            let rose = "the loss rose at \(d.lossRises) of \(steps) steps (first at step \(rise.step), t = \(Simulation.time(rise.t)): "
                + "\(JSON.format(rise.from)) → \(JSON.format(rise.to)); last at step \(last))"
            if rising {
                let head = status == .tEnd ? tEndHead(t: run.t, loss: loss)
                    : maxStepsHead(t: run.t, loss: loss)
                message = head + "; " + rose + ", so a longer run will not help: " + lowerStepAdvice
            } else {
                earlyRises = "; " + rose + " and has fallen since"
            }
        }
        // WN's dual coordinates used up `max_recenterings` and handed over (not on a failure):
        // weights that were below double range are 0 in weight space, where they cannot grow
        // back. Where the run then falls short, that is the likeliest cause (WN, ‖v₀‖ = 2.8e-5,
        // log ρ∞ = 1.2e9: 1000 re-centerings by t = 1.5, then t_end = 1e12 at loss 2.5e-3 with
        // the advice that a larger t_end may not help; with max_recenterings 1e5 it converges at
        // t = 226, z within 1.3e-12 of `wnflow predict`).
        if config.model.flow.isWeightNormalized, let h = handover, handoverFailure == nil, recenterings >= config.integrator.maxRecenterings,
           status == .tEnd || status == .maxSteps || status == .failed {
            let n = initialState.count
            let zeros = (1..<n).filter { initialState[$0] != 0 && run.y.count == n && run.y[$0] == 0 }.count
            if zeros > 0 {
                let note = "after \(recenterings) re-centerings (integrator.max_recenterings) the dual coordinates handed over at t = \(Simulation.time(h)), "
                    + "where \(zeros) weight(s) below double range became 0 in weight space, which cannot grow back there, so the run may stall short of the limit: "
                    + "raise integrator.max_recenterings (e.g. 100000; wnflow predict gives the limit to compare)"
                message = status == .tEnd && message == nil ? tEndHead(t: run.t, loss: loss) + "; " + note : (message.map { $0 + "; " } ?? "") + note
            }
        }
        if status == .tEnd && message == nil { message = tEndAdvice(t: run.t, state: run.y, loss: loss, history: recorder.rows) }
        // A run that ended in weight space with a residual below how far one ulp of its weights
        // moves it has met double precision's floor there, not the step limit or t_end: signed
        // GF, L = 4, from starts up to 642 (pairs u ≈ w ≈ 600, z = u⁴ − w⁴ small) ran 300,000
        // steps to t = 1204 at residual 2.7e-6, where one ulp moves it by about 1e-4 (bdf's
        // Newton corrections sit at that noise: 86% of the attempts rejected); bsimp timed out.
        if !config.model.flow.isDiscrete, status == .maxSteps || status == .tEnd,
           let note = representationFloorNote(x: x, loss: loss, stats: run.stats, dualThroughout: handover == nil && resolvedMethod == .dual) {
            let head = status == .tEnd ? tEndHead(t: run.t, loss: loss)
                : maxStepsHead(t: run.t, loss: loss)
            message = head + "; " + note
        }
        if let earlyRises, let m = message { message = m + earlyRises }
        var result = SimulationResult(
            status: status, t: run.t, loss: loss, x: x, z: config.problem.endToEnd(x),
            g: nil, v: nil, logRho: nil, stats: run.stats, wallSeconds: wall, method: method,
            trajectory: recorder.rows, message: message, warnings: config.warnings, state: run.y)
        result.stoppedBySpeed = stop.stoppedBySpeed
        if let d = descent, d.lossRises > 0, let rise = d.firstRise, status == .converged {
            result.warnings.append("the loss rose at \(d.lossRises) of \(run.stats.acceptedSteps) steps (first at step \(rise.step), t = \(Simulation.time(rise.t)): "
                + "\(JSON.format(rise.from)) → \(JSON.format(rise.to))): model.step \(JSON.format(config.model.step ?? .nan)) is at or above the stable limit there, so the iterates need not follow the flow")
        }
        if stop.stoppedBySpeed {
            // A stationary point, which may be a saddle (WN at g → 0).
            result.warnings.append("stopped by stop.speed_below at loss \(JSON.format(loss)), above loss_below \(JSON.format(config.lossThreshold)): "
                                   + "a stationary point, possibly a saddle, not necessarily a zero of the loss")
        }
        if config.model.flow.isWeightNormalized {
            result.g = run.y[0]
            result.v = Array(run.y.dropFirst())
            if case let .constant(eg) = (flow as? WeightNormFlow)?.rate ?? .timeDependent {
                let v0 = Array(initialState.dropFirst())
                let g0 = initialState[0], g = run.y[0]
                if isBelowNormalRange(g), let lg = finalLogs?.first {
                    // g below double range (the saddle x = 0, dual coordinates): from log g.
                    let c = magnificationConstant(etaG: eg, etaV: config.model.etaV, vNorm0: norm2(v0))
                    result.logRho = logMagnification(g0: g0, g: g, logAbsG: lg, c: c)
                } else {
                    result.logRho = logMagnification(g0: g0, g: g, etaG: eg, etaV: config.model.etaV, vNorm0: norm2(v0))
                    // One ulp of g moves (2.4) by (1 + 2cg²)ε: with c g² ~ 1e12 (‖v₀‖ = 1e-5)
                    // the formula has no digits left where g hardly moves (log ρ = 0.0241
                    // reported, 0.02484 true: the GF limit from x₀/ρ at that ℓ is the run's to
                    // 6.5e-14, at 0.0241 6e-4 off). Lemma 3.9 at L = 2 gives ℓ from the
                    // weights instead, when its own residual says it is the better value.
                    let c = magnificationConstant(etaG: eg, etaV: config.model.etaV, vNorm0: norm2(v0))
                    if config.problem.depth == 2, let lr = result.logRho,
                       (1 + 2 * c * g * g) * 4 * Double.ulpOfOne > 1e-9 * max(1, abs(lr)),
                       let invariant = invariantLogRho(state: run.y, logs: finalLogs, projector: monitorContext?.projector),
                       invariant.error < (1 + 2 * c * g * g) * 4 * Double.ulpOfOne {
                        result.logRho = invariant.value
                    }
                }
            }
        }
        if let handover {
            result.dualHandover = handover
            result.method = "dual+\(weightSpaceMethod)"
            let moved = config.model.flow.isWeightNormalized
                ? "the dual state passed ‖μ‖∞ = \(JSON.format(DualSolver.weightNormDeparture(rtol: config.integrator.rtol)))"
                    + (recenterings > 0 ? " after \(recenterings) re-centerings" : "")
                : "a weight moved by e^300 from its start"
            // WN: a long enough run of re-centerings also comes from a flow that moves its
            // weights very far (x₀ = (1e4 d)^{1/2}: 1000 by t = 0.55, and 68,900 on the way to
            // its limit, docs/math.md §6a).
            let why = recenterings > 0
                ? "the residual may not vanish (y outside the cone A·R₊ᴺ, or zero entries of x₀), or the limit has exact zeros (the kernel assumption of Thm 2.2 fails), or the weights moved further than the re-centerings follow: raise integrator.max_recenterings (now \(config.integrator.maxRecenterings))"
                : "the residual does not vanish (y outside the cone A·R₊ᴺ, or zero entries of x₀), or the limit has exact zeros (the kernel assumption of Thm 2.2 fails)"
            if let handoverFailure {
                result.warnings.append("method dual failed at t = \(JSON.format(handover)) (\(handoverFailure)); "
                    + "continued in weight space with \(weightSpaceMethod)")
            } else if !config.model.flow.isWeightNormalized && config.problem.depth >= 3 {
                // DualPowerGradientSystem hands over on precision (docs/math.md §6a), not on distance.
                result.warnings.append("method dual: by t = \(JSON.format(handover)) a weight grew so far above its start that "
                    + "u = x^(2-L) = x0^(2-L) + A^T lambda kept fewer digits than rtol needs (cancellation), or reached u <= 0; "
                    + "continued in weight space with \(weightSpaceMethod) (expected from small starts at tight rtol; the limit is unaffected)")
            } else {
                result.warnings.append("method dual: \(moved) by t = \(JSON.format(handover)) (\(why)); continued in weight space with \(weightSpaceMethod)")
            }
        }
        return result
    }
}

/// An observer that can tell, before a step is shown to it, whether it needs the
/// step's state: `DualSolver` then passes over steps that no observer needs
/// without mapping dual coordinates back to weights (a mat-vec and N
/// exponentials per step). Observers that are not of this kind see every step.
public protocol StateOnDemandObserver: StepObserver {
    /// Whether `observe` must see this step. `lossLowerBound` bounds the loss
    /// (1.10) at the step's state from below (nil when unknown).
    func needsState(stepNumber: Int, saveIndex: Int?, lossLowerBound: Double?) -> Bool
}

/// Stops the run when the loss falls below its threshold (or the speed
/// ‖state'‖ below `speedBelow`), and remembers that it did. A step whose loss
/// is bounded above the threshold needs no look (`StateOnDemandObserver`),
/// unless the speed rule or a monitor context is in use.
public final class StopCriteria: StateOnDemandObserver {
    let flow: any Flow
    let lossBelow: Double
    let speedBelow: Double?
    public private(set) var converged = false
    /// Whether the speed rule, not the loss rule, ended the run.
    public private(set) var stoppedBySpeed = false
    /// Whether a step whose loss the flow's `LossWorkspace.lossLowerBound` puts above the
    /// threshold is passed without computing the loss (on by default; off to compare).
    public var usesLowerBound = true
    private var x: [Double]
    private var f: [Double]
    private let workspace: LossWorkspace
    private let context: MonitorContext?

    /// With `context`, the loss is read from the monitor's per-step state
    /// instead of being computed a second time.
    public init(flow: any Flow, lossBelow: Double, speedBelow: Double?, context: MonitorContext? = nil) {
        self.flow = flow
        self.lossBelow = lossBelow
        self.speedBelow = speedBelow
        x = [Double](repeating: 0, count: flow.problem.weightCount)
        f = [Double](repeating: 0, count: flow.dimension)
        workspace = LossWorkspace(problem: flow.problem)
        self.context = context
    }

    /// Whether a lower bound on the loss may stand in for it: the speed rule needs every
    /// state, and with a monitor context the loss is computed anyway.
    private var boundsSuffice: Bool { usesLowerBound && speedBelow == nil && context == nil }

    public func needsState(stepNumber: Int, saveIndex: Int?, lossLowerBound: Double?) -> Bool {
        guard boundsSuffice, let lossLowerBound else { return true }
        return !(lossLowerBound > lossBelow)
    }

    public func observe(_ step: AcceptedStep) -> StepDecision {
        let loss: Double
        if let context {
            context.update(step)
            loss = context.loss
        } else {
            var bounded = false
            loss = x.withUnsafeMutableBufferPointer { xb -> Double in
                flow.weights(of: step.y, into: xb.baseAddress!)
                guard let cached = flow.lossWorkspace else { return workspace.loss(at: xb.baseAddress!) }
                if let value = cached.lastLoss(ifAt: xb.baseAddress!) { return value }
                // Bounded above the threshold from the flow's last evaluation: no mat-vec.
                if boundsSuffice, let lower = cached.lossLowerBound(at: xb.baseAddress!), lower > lossBelow {
                    bounded = true
                    return lower
                }
                return workspace.loss(at: xb.baseAddress!)
            }
            if bounded { return .proceed }
        }
        if loss <= lossBelow { converged = true; return .stop }
        if let speedBelow, step.stepNumber > 0 {
            let ok = (try? f.withUnsafeMutableBufferPointer { try flow.rhs(t: step.t, y: step.y, dydt: $0) }) != nil
            if ok && norm2(f) <= speedBelow { converged = true; stoppedBySpeed = true; return .stop }
        }
        return .proceed
    }
}

extension Simulation {
    /// `dℒ/dt` at `state` (Lemma 3.5): minus the flow's dissipation, `‖x'‖²` for GF and
    /// `g'²/η_g + ‖v'‖²/η_v` for WN (η_g = η_v g²/‖v‖² for the Thm 2.4 rate). Nil for the
    /// discrete flows and where the velocity is not finite.
    public func lossRate(t: Double, state: [Double]) -> Double? {
        let kind = config.model.flow
        guard !kind.isDiscrete, let v = try? flow.velocity(of: state, t: t), v.allSatisfy(\.isFinite) else { return nil }
        if !kind.isWeightNormalized { return -v.reduce(0) { $0 + $1 * $1 } }
        guard let wn = flow as? WeightNormFlow else { return nil }
        let vv = v.dropFirst().reduce(0) { $0 + $1 * $1 }
        let etaG = wn.etaG(g: state[0], vNorm2: state.dropFirst().reduce(0) { $0 + $1 * $1 })
        let rate = -(etaG > 0 ? v[0] * v[0] / etaG : 0) - vv / wn.etaV
        return rate.isFinite ? rate : nil
    }

    /// The message of a step size underflow. Under atol = 0 with a subnormal state entry the
    /// error control asks that entry for relative digits the format does not carry (msbdf,
    /// WN, a weight at 7.7e-314: "step size underflow at t = 122.7", where bdf, bsimp and
    /// msbdf with atol 1e-18 go on); otherwise the method or the tolerances, naming methods
    /// other than the one that failed.
    func underflowAdvice(t: Double, h: Double, state: [Double]) -> String {
        let head = "step size underflow at t = \(Simulation.time(t)) (h = \(JSON.format(h)))"
        if config.integrator.atol == 0,
           let i = state.indices.first(where: { state[$0] != 0 && abs(state[$0]) < Double.leastNormalMagnitude }) {
            return head + "; state entry \(i) is subnormal (\(JSON.format(state[i]))), and with integrator.atol = 0 the error control "
                + "asks it for relative digits a subnormal number does not carry: set integrator.atol > 0 (e.g. 1e-300) or use bdf"
        }
        let others = ["msbdf", "bdf", "bsimp"].filter { $0 != resolvedMethod.description }
        return head + "; the system is too stiff for this method or the tolerances too tight: try \(others.joined(separator: " or ")), or loosen rtol/atol"
    }

    /// What a discrete run that diverged or whose loss rose should change.
    var lowerStepAdvice: String {
        "lower model.step (now \(JSON.format(config.model.step ?? .nan))): gradient descent lowers the loss only for steps below about 2 over its curvature"
    }

    /// A time for messages: 12 significant digits, so that a discrete run's kμ reads 99.9,
    /// not 99.89999999999999.
    static func time(_ t: Double) -> String { JSON.format(Double(String(format: "%.12g", t)) ?? t) }

    /// The note of a run that ended at the resolution of its weights (`Problem.residualULPSpread`,
    /// how far one ulp of each weight moves the residual `‖Ãz − y‖ = √(2ℒ)`), nil otherwise:
    /// - a run that ended in weight space with its residual below the spread (an upper bound
    ///   on one ulp's move, about the rounding of the residual the flow evaluates): more steps,
    ///   a larger t_end or another weight-space method are unlikely to lower the loss;
    /// - any run within 10× of the spread whose stop `loss_below` asks for a residual below
    ///   it: the stop is out of reach (a GF L = 5 run ended converged at 0.22× the spread with
    ///   one build and at t_end = 1e12 at 1.06× with the next, which rounded differently).
    func representationFloorNote(x: [Double], loss: Double, stats: ODEStatistics, dualThroughout: Bool) -> String? {
        guard loss.isFinite, loss > 0 else { return nil }
        let spread = config.problem.residualULPSpread(x)
        let r = (2 * loss).squareRoot()
        guard spread.isFinite, spread > 0 else { return nil }
        let stop = config.lossThreshold
        let stopResidual = (2 * stop).squareRoot()
        let raise = "raise integrator.stop.loss_below to about 2·spread² = \(JSON.format(2 * spread * spread))"
        let top = x.map(abs).max() ?? 0
        if !dualThroughout && r <= spread {
            let attempts = stats.acceptedSteps + stats.rejectedSteps
            let rejected = attempts > 0 ? " (\(stats.rejectedSteps) of \(attempts) step attempts rejected)" : ""
            return "the residual ‖Ãz − y‖ = \(JSON.format(r)) is below \(JSON.format(spread)), how far one unit in the last place "
                + "of the weights (up to \(JSON.format(top))) moves it together, about the rounding of the residual the flow evaluates, "
                + "so double precision can hardly follow the flow further from these weights\(rejected): more steps, a larger t_end "
                + "or another method that integrates the weights are unlikely to lower the loss"
                + (config.problem.signed && config.model.depth >= 2 ? " (signed pairs u ≈ w both large leave z = u^L − w^L few digits; smaller starts avoid it)" : "")
                + (stopResidual < spread ? "; the stop asks for a residual of \(JSON.format(stopResidual)), below that spread: " + raise : "")
        }
        if r <= 10 * spread && stopResidual < spread {
            return "the stop loss_below asks for a residual of \(JSON.format(stopResidual)), below \(JSON.format(spread)), how far one "
                + "unit in the last place of the weights (up to \(JSON.format(top))) moves the residual, and the run ended at "
                + "\(JSON.format(r)), within 10× of that: the loss is resolved only to about ½·spread² at these weights, so a larger "
                + "t_end will not reliably reach the stop; " + raise
        }
        return nil
    }

    /// Where no weights reach zero loss (`ZeroLossSet`, from the run's start) and the loss
    /// stop lies below the lowest loss they reach: why, and that neither t_end nor max_steps
    /// will reach the stop. Nil otherwise (a stop above that minimum is reachable). Costs an
    /// SVD, an LP and a non-negative least squares (remembered per problem), so only at the
    /// end of a run that fell short.
    func zeroLossUnreachable(finalLoss: Double) -> String? {
        guard let u = unreachableStop(finalLoss: finalLoss) else { return nil }
        // predict exits 2 where GLPK found S₊ empty (unsigned, depth ≥ 2); at depth 1 it gives the
        // least-squares point, and for signed runs its LP's looser tolerance may find a point.
        let predict = config.problem.depth >= 2 && !config.problem.signed ? " (wnflow predict exits 2 on this problem)" : ""
        // Not "raise loss_below above the minimum": a run stopped just above it is short of the
        // limit, and verify's predict-limit then fails (depth 1: 0.2 against 1.2e-8).
        let speed = "set integrator.stop.speed_below to end the run where the loss levels off" + predict
        if u.atMinimum { return u.why + ", so neither a larger t_end nor more steps reach it; " + speed }
        return u.why + "; the run ended above that minimum, so a larger t_end lowers the loss toward it but never to the stop; " + speed
    }

    /// `ZeroLossSet.unreachableStop` for this run's problem, start, loss stop and final loss.
    func unreachableStop(finalLoss: Double) -> (why: String, atMinimum: Bool)? {
        ZeroLossSet.unreachableStop(ZeroLossSet.find(problem: config.problem, x0: flow.weights(of: initialState)),
                                    lossBelow: config.lossThreshold, finalLoss: finalLoss)
    }

    /// "max_steps (…) reached at t = …, loss …".
    func maxStepsHead(t: Double, loss: Double) -> String {
        "max_steps (\(config.integrator.maxSteps)) reached at t = \(Simulation.time(t)), loss \(JSON.format(loss))"
    }

    /// "t_end = … reached at loss …": the configured t_end, and the last iterate's time where
    /// a discrete run's grid kμ stops short of it.
    func tEndHead(t: Double, loss: Double) -> String {
        let tEnd = config.integrator.tEnd
        let at = t == tEnd ? "" : " (last iterate at t = \(Simulation.time(t)))"
        return "t_end = \(JSON.format(tEnd)) reached\(at) at loss \(JSON.format(loss)), above the stop \(JSON.format(config.lossThreshold))"
    }

    /// Depth-2 constant-rate WN: `log ρ` from Lemma 3.9, `P log x = P log x₀ − ℓ P1`, as
    /// `ℓ = −⟨P1, log x − log x₀⟩/‖P1‖²`, with an error estimate from what ℓ·P1 leaves of
    /// `P(log x − log x₀)` (the run's drift off the invariant) plus rounding, over ‖P1‖.
    /// `logs`: the solver's `[log g, log|v|]` where it kept them. Nil where a weight is 0 with
    /// no log, P1 = 0 (1 ∈ range Aᵀ), or the projector cannot be built.
    func invariantLogRho(state: [Double], logs: [Double]?, projector given: KernelProjector? = nil) -> (value: Double, error: Double)? {
        let n = config.problem.weightCount
        guard state.count == n + 1, initialState.count == n + 1 else { return nil }
        func logWeights(_ y: [Double], _ ly: [Double]?) -> [Double]? {
            if let ly, ly.count == n + 1 {
                var vn = 0.0
                for i in 1...n { vn += y[i] * y[i] }
                let shift = ly[0] - 0.5 * Foundation.log(vn)
                let out = (1...n).map { ly[$0] + shift }
                return out.allSatisfy(\.isFinite) ? out : nil
            }
            let out = flow.weights(of: y).map { Foundation.log(abs($0)) }
            return out.allSatisfy(\.isFinite) ? out : nil
        }
        // The monitor's projector when it ran (an SVD of Ã: seconds at N = 10000, M = 2000).
        guard let lx = logWeights(state, logs), let lx0 = logWeights(initialState, nil),
              let projector = given ?? (try? KernelProjector(config.problem.matrix)) else { return nil }
        let d = zip(lx, lx0).map { $0 - $1 }
        let p1 = projector.apply([Double](repeating: 1, count: n))
        let p1p1 = p1.reduce(0) { $0 + $1 * $1 }
        guard p1p1 > 1e-20 * Double(n) else { return nil }
        let ell = -zip(p1, d).reduce(0) { $0 + $1.0 * $1.1 } / p1p1
        let pd = projector.apply(d)
        let left = zip(pd, p1).reduce(0) { $0 + ($1.0 + ell * $1.1) * ($1.0 + ell * $1.1) }.squareRoot()
        let rounding = 4 * Double.ulpOfOne * Double(n).squareRoot() * (norm2(lx) + norm2(lx0))
        let error = (left + rounding) / p1p1.squareRoot()
        return ell.isFinite && error.isFinite ? (ell, error) : nil
    }

    /// The `message` of a run that reached t_end above its stop. When the loss's e-folding
    /// time at the end, `ℒ/|dℒ/dt|`, exceeds 10 t_end, the flow has all but stopped (MATH.md §4:
    /// the saddle g → 0, depth 3 with a small rate) and a larger t_end may not help. A short
    /// e-folding time says less: near the stop, the state's small errors along stiff directions
    /// dominate `|dℒ/dt|` (signed WN, η_g = 0.01, M = 10, N = 25: 3.9e6 from the final state at
    /// t_end = 1e12, where the trajectory decays like t^{−1.9}, alike under dual, bdf and msbdf,
    /// i.e. an e-folding time near 5e11), so that case points to the trajectory instead.
    func tEndAdvice(t: Double, state: [Double], loss: Double, history: [TrajectoryRow] = []) -> String {
        let head = tEndHead(t: t, loss: loss)
        // No zero-loss point at all (M ≥ N, or y outside the cone A·R₊ᴺ): the loss levels off
        // above 0 wherever the flow goes (wn-timedep, L = 5, M = N = 12: told it "reaches the
        // stop near t = 4.8e62" while it sat at 0.0951; WN, L = 2, M = 9 > N = 8: blamed on
        // "the saddle g → 0" at g = 0.98).
        if let unreachable = zeroLossUnreachable(finalLoss: loss) { return head + "; " + unreachable }
        // WN whose g decayed to (or below) 1e-8 g₀: the saddle x = 0, where the dissipation
        // vanishes (M = 40, N = 100, η_g = 0.05 from 1e-3: g = 0 at t_end, loss 0.13).
        if config.model.flow.isWeightNormalized, let g0 = initialState.first, g0 != 0, let g = state.first,
           abs(g) <= 1e-8 * abs(g0) {
            return head + "; g fell from g₀ = \(JSON.format(g0)) to \(JSON.format(g)): the flow sits at the saddle x = 0 "
                + "(MATH.md §4: η_g too large for this start), so a larger t_end will not help; lower eta_g or start from a larger init"
        }
        // g₀ = 0 at depth ≥ 2: x = 0 and ∇ℒ(0) = 0, so g' = 0 and v' ∝ g = 0 (1.13)–(1.14).
        if config.model.flow.isWeightNormalized, config.model.depth >= 2, initialState.first == 0, state.first == 0 {
            return head + "; g₀ = 0 puts x = 0, a stationary point of the flow at depth ≥ 2 (∇ℒ(0) = 0, and v' carries a factor g), "
                + "so nothing moves; give init.g0 > 0 (or drop g0 and v0 and start from x0 or scale)"
        }
        // The recorded trajectory over the last decade of t: a loss that fell by more than 2×
        // there still moves, from plateau to plateau, even where the rate at the end is nil
        // (WN, L = 3, N = 291: e-folding time 3.3e26 at t_end, yet 8.6× down over the last
        // 1.2 decades; a time-dependent WN run told the same converged at 1.26 t_end).
        // The average power over that span, and where it would reach the stop: depth-2 runs
        // whose kernel assumption fails decay like t^−2 (129× over t = 8.8e10…1e12).
        if let earlier = history.last(where: { $0.t > 0 && $0.t <= t / 10 }), earlier.loss > 2 * loss, loss.isFinite {
            let power = log(earlier.loss / loss) / log(t / earlier.t)
            var pace = ""
            if power.isFinite, power > 0, loss > config.lossThreshold, config.lossThreshold > 0 {
                let tStop = t * pow(loss / config.lossThreshold, 1 / power)
                pace = ", like t^−\(String(format: "%.2g", power)) over that span (at that pace it reaches the stop near t = \(String(format: "%.2g", tStop)))"
            }
            return head + "; the loss fell \(JSON.format((earlier.loss / loss * 10).rounded() / 10))× since t = \(JSON.format(earlier.t))"
                + pace + ", so it still moves, whatever the rate at the end says: raise integrator.t_end"
        }
        if let rate = lossRate(t: t, state: state) {
            let tau = loss / abs(rate)  // ∞ where the dissipation vanishes
            // A run that ends before the flow's own time scale: the loss has hardly fallen
            // from its start, so a slow rate is the flow not having got going, not a stall
            // (WN, M = 5, N = 12 to t_end = 1e-3: 0.354 from 0.354, ℒ/|dℒ/dt| = 8.7).
            let initialResidual = config.problem.accurateResidual(flow.weights(of: initialState))
            let initialLoss = 0.5 * initialResidual.reduce(0) { $0 + $1 * $1 }
            if tau > 10 * t, tau.isFinite, loss > 0.5 * initialLoss {
                return head + "; the loss has fallen only from \(JSON.format(initialLoss)) over the run, and at its end "
                    + "ℒ/|dℒ/dt| = \(JSON.format(tau)), over 10× t_end: the run ends before the flow's own time scale; "
                    + "raise integrator.t_end (toward that time: a flow leaving a plateau speeds up, so it may take less)"
            }
            if tau > 10 * t {
                let time = tau.isFinite ? "e-folding time ℒ/|dℒ/dt| = \(JSON.format(tau)), over 10× t_end" : "dℒ/dt = 0 there"
                let unseen = history.count < 2 ? " (no trajectory was recorded to tell a stall from a plateau between drops of the loss: set record.points)" : ""
                // The cause named by flow: only constant-rate WN has a g and an η_g (a GF run
                // at depth 4 was told of "the saddle g → 0").
                let cause = config.model.flow == .wn
                    ? "MATH.md §4: the saddle g → 0, or depth ≥ 3 with a small η_g"
                    : "near a saddle of the loss, or creeping through ever slower time scales"
                return head + "; the loss has all but stopped falling (\(time)): "
                    + "the flow stalls or creeps there (\(cause)), so a larger t_end may not help" + unseen
            }
        }
        // The Gauss methods are A- but not L-stable (|R(∞)| = 1): at large steps the stiff
        // components do not decay (rk4imp, WN M = 6, N = 15: the loss fell to 3.4e-23 at
        // t = 1.7e4, then rose to 2.1e-17 by t_end; bsimp converges at t = 5.3e3).
        if case let .gsl(stepper) = resolvedMethod, stepper == .rk2imp || stepper == .rk4imp {
            return head + "; \(stepper.rawValue) is A-stable but not L-stable, so at large steps the stiff components "
                + "do not decay and the loss can stall or rise: use bdf, msbdf or bsimp"
        }
        return head + "; raise integrator.t_end (or integrator.stop.loss_below); the trajectory (record.points) shows whether the loss still falls"
    }
}

/// Records the trajectory at the save times (and the first and last states).
public final class TrajectoryRecorder: StateOnDemandObserver {
    let flow: any Flow
    let enabled: Bool
    public private(set) var rows: [TrajectoryRow] = []
    private var lastT = -Double.infinity
    /// `‖Ã‖_F` for `Problem.reportedLoss` (0 when not recording).
    private let frobenius: Double

    public init(flow: any Flow, enabled: Bool) {
        self.flow = flow
        self.enabled = enabled
        frobenius = enabled ? flow.problem.matrix.frobeniusNorm : 0
    }

    func row(t: Double, state: [Double]) -> TrajectoryRow {
        let x = flow.weights(of: state)
        let wn = flow.kind.isWeightNormalized
        // Explicit steppers evaluated the RHS at this very state: its loss comes free.
        let known = flow.lossWorkspace.flatMap { ws in x.withUnsafeBufferPointer { ws.lastLoss(ifAt: $0.baseAddress!) } }
        return TrajectoryRow(t: t, loss: flow.problem.reportedLoss(x, frobeniusNorm: frobenius, known: known), g: wn ? state[0] : nil,
                             vNorm: wn ? norm2(Array(state.dropFirst())) : nil, x: x)
    }

    public func needsState(stepNumber: Int, saveIndex: Int?, lossLowerBound: Double?) -> Bool {
        enabled && (stepNumber == 0 || saveIndex != nil)
    }

    public func observe(_ step: AcceptedStep) -> StepDecision {
        guard enabled, step.isInitial || step.saveIndex != nil else { return .proceed }
        rows.append(row(t: step.t, state: Array(step.y)))
        lastT = step.t
        return .proceed
    }

    /// Adds the final state when it was not a save time.
    public func finish(t: Double, state: [Double]) {
        guard enabled, t > lastT else { return }
        rows.append(row(t: t, state: state))
        lastT = t
    }
}
