import Foundation
import GSLKit

/// `h_L` of MATH.md §3 on one entry: `x` (L = 1), `log|x|` (L = 2),
/// `x^{2−L}` (L ≥ 3). The flow keeps every sign (Lemma 3.3), and `(d/dt) h_L(x)` is the same
/// on either side of 0, so Lemma 3.7 holds from any start without zero entries.
@inline(__always)
func invariantMap(_ x: Double, depth: Int) -> Double {
    switch depth {
    case 1: return x
    case 2: return log(abs(x))
    default: return 1 / ipow(x, depth - 2)
    }
}

/// The per-step quantities the checks share, computed once per accepted
/// step however many checks ask (the first to call `update` pays):
/// the weights `x`, the loss and residual, `g` and `‖v‖` for WN, and on
/// demand `h_L` of the *base vector* (`x` for GF, `v` for WN) and its kernel
/// projection `P h_L(base)` (one O(N·rank A) application of the projector).
///
/// `h_L(x) = α · h_L(base) + β · 1` relates the two: GF `α = 1, β = 0`;
/// WN (`x = (g/‖v‖) v`) L = 1 `α = g/‖v‖`, L = 2 `α = 1, β = log(g/‖v‖)`,
/// L ≥ 3 `α = (g/‖v‖)^{2−L}` (kept as `log α`).
/// Memory O(N); nothing allocates after `init`.
public final class MonitorContext {
    public let flow: any Flow
    public let problem: Problem
    public let projector: KernelProjector
    public let depth: Int
    /// Whether the state is `[g, v]`.
    public let isWeightNormalized: Bool
    /// `n`, the number of weights (`N`, or `2N` signed).
    public let weightCount: Int
    /// `‖Ã‖_F` and `‖y‖`, for roundoff estimates of the loss.
    public let matrixNorm: Double
    public let yNorm: Double
    /// `P 1` (for the `β · 1` part of `h_L(x)`).
    public let projectedOnes: [Double]

    // Per step.
    public private(set) var t = 0.0
    public private(set) var stepNumber = -1
    /// The weights `x` at the current step.
    public private(set) var x: [Double]
    /// `ℒ` at the current step.
    public private(set) var loss = 0.0
    /// `‖e‖`, `e = Ã x^{⊙L} − y`.
    public private(set) var residualNorm = 0.0
    /// `‖x^{⊙L}‖`.
    public private(set) var powerNorm = 0.0
    /// The first weight seen off its starting sign, or NaN, and when (depth ≥ 2; see `SignCrossings`).
    private(set) var crossings = SignCrossings()
    /// The steps where a weight below double range is 0 without a log (see `LostLogs`).
    private(set) var lostLogs = LostLogs()
    /// Whether a zero weight is always taken as underflow (`LostLogs.observe`).
    var zerosAreUnderflow = false
    /// The smallest non-zero entry of the base vector (x, WN v: the integrated state) over the
    /// steps without the solver's logs, and when: the integrator holds an entry s to
    /// `rtol·|s| + atol`, so below atol/rtol its relative accuracy is only `atol/|s|`
    /// (`belowAtolNote`).
    private(set) var smallestWeight = Double.infinity
    private(set) var smallestWeightT = 0.0
    /// WN: `g`, `‖v‖` (GF: 1, 1).
    public private(set) var g = 1.0
    public private(set) var vNorm = 1.0
    /// `h_L(base)`, `P h_L(base)`, `‖h_L(base)‖`, `Σ h_L(base)`; valid after `ensureInvariantMap()`.
    public private(set) var hBase: [Double]
    public private(set) var projectedHBase: [Double]
    public private(set) var hBaseNorm = 0.0
    public private(set) var hBaseSum = 0.0
    private var hStep = -1
    private var hT = Double.nan
    private var scratch: [Double]
    private let workspace: LossWorkspace
    /// The state of the current step (a copy; O(N)).
    public private(set) var state: [Double]
    /// `log|state|` of the current step when the solver gave it (`AcceptedStep.logY`: dual
    /// coordinates, where weights below double range are 0 in `state` but keep their logs).
    public private(set) var logState: [Double]
    public private(set) var hasLogState = false
    /// WN with `logState`: `log|g| − log‖v‖`, so that `log x_i = logState[i + 1] + logGOverV`.
    private var logGOverV = 0.0

    public init(flow: any Flow) throws {
        self.flow = flow
        problem = flow.problem
        depth = problem.depth
        isWeightNormalized = flow.kind.isWeightNormalized
        weightCount = problem.weightCount
        projector = try KernelProjector(problem.matrix)
        matrixNorm = problem.matrix.frobeniusNorm
        yNorm = norm2(problem.y)
        projectedOnes = projector.apply([Double](repeating: 1, count: problem.weightCount))
        x = [Double](repeating: 0, count: weightCount)
        hBase = [Double](repeating: 0, count: weightCount)
        projectedHBase = [Double](repeating: 0, count: weightCount)
        scratch = [Double](repeating: 0, count: max(projector.rank, 1))
        workspace = LossWorkspace(problem: problem)
        state = [Double](repeating: 0, count: flow.dimension)
        logState = [Double](repeating: 0, count: flow.dimension)
    }

    /// Loads a step (no-op when it is already loaded).
    public func update(_ step: AcceptedStep) {
        if step.stepNumber == stepNumber && step.t == t { return }
        t = step.t
        stepNumber = step.stepNumber
        let n = weightCount
        state.withUnsafeMutableBufferPointer { s in
            s.baseAddress!.update(from: step.y.baseAddress!, count: min(step.y.count, s.count))
        }
        hasLogState = false
        if let ly = step.logY, ly.count == logState.count {
            logState.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: ly.baseAddress!, count: ly.count) }
            hasLogState = true
        }
        // The loss where the integrator evaluated the RHS last is cached by the flow.
        let source = x.withUnsafeMutableBufferPointer { xb -> LossWorkspace in
            flow.weights(of: step.y, into: xb.baseAddress!)
            if let cached = flow.lossWorkspace, let value = cached.lastLoss(ifAt: xb.baseAddress!) {
                loss = value
                return cached
            }
            loss = workspace.loss(at: xb.baseAddress!)
            return workspace
        }
        residualNorm = (2 * loss).squareRoot()
        powerNorm = source.power.withUnsafeBufferPointer { blasNorm(n, $0.baseAddress!) }
        crossings.observe(x, depth: depth, at: t)
        if isWeightNormalized {
            g = step.y[0]
            vNorm = blasNorm(n, step.y.baseAddress! + 1)
            if hasLogState { logGOverV = logState[0] - log(vNorm) }
        }
        let off = isWeightNormalized ? 1 : 0
        if !hasLogState {
            for i in 0..<n {
                let v = abs(state[i + off])
                if v != 0 && v < smallestWeight { smallestWeight = v; smallestWeightT = t }
            }
        }
        lostLogs.observe(base: { self.state[$0 + off] }, count: n, scaleIsZero: isWeightNormalized && g == 0,
                         logsCover: hasLogState && depth == 2, depth: depth, at: t, zerosAreUnderflow: zerosAreUnderflow)
    }

    /// The base vector of the current state (`x` for GF, `v` for WN).
    @inline(__always)
    func base(_ i: Int) -> Double { isWeightNormalized ? state[i + 1] : state[i] }

    /// Fills `hBase`, `projectedHBase`, `hBaseNorm`, `hBaseSum` for the current step.
    public func ensureInvariantMap() {
        if hStep == stepNumber && hT == t { return }
        hStep = stepNumber
        hT = t
        let n = weightCount, L = depth
        let off = isWeightNormalized ? 1 : 0
        var ss = 0.0, sum = 0.0
        // L = 2: h = log(base), from the solver's logs where it gave them.
        let logs = L == 2 && hasLogState
        hBase.withUnsafeMutableBufferPointer { h in
            (logs ? logState : state).withUnsafeBufferPointer { s in
                for i in 0..<n {
                    let v = logs ? s[i + off] : invariantMap(s[i + off], depth: L)
                    h[i] = v
                    ss += v * v
                    sum += v
                }
            }
            projectedHBase.withUnsafeMutableBufferPointer { p in
                scratch.withUnsafeMutableBufferPointer { sc in
                    projector.apply(UnsafePointer(h.baseAddress!), into: p.baseAddress!, scratch: sc.baseAddress!)
                }
            }
            // The plain sum of squares overflows from entries of 1e154 on: at L ≥ 3, v^{2−L}
            // reaches that where log ρ is a few hundred (WN, L = 3, η_g = 1e-3: every
            // invariant check reported 1.8e308). BLAS's scaled norm then.
            hBaseNorm = ss.isFinite && ss > 1e-280 || n == 0 ? ss.squareRoot() : blasNorm(n, UnsafePointer(h.baseAddress!))
        }
        hBaseSum = sum
    }

    /// `(log α, β)` of `h_L(x) = α h_L(base) + β 1` (L = 1 uses `alpha1`).
    public var logAlphaBeta: (logAlpha: Double, beta: Double) {
        guard isWeightNormalized else { return (0, 0) }
        let lr = gBelowRange ? logGOverV : log(abs(g / vNorm))
        switch depth {
        case 1: return (lr, 0)
        case 2: return (0, lr)
        default: return (Double(2 - depth) * lr, 0)
        }
    }

    /// WN: `log|g|` of the current step; from the solver's logs where g is below the normal
    /// range (dual coordinates: a g that decayed at the saddle x = 0 is 0 in `state` but keeps
    /// its log there).
    public var logG: Double { gBelowRange ? logState[0] : log(abs(g)) }

    /// WN with the solver's logs, and g not a normal number (0 or subnormal in `state`).
    var gBelowRange: Bool { isWeightNormalized && hasLogState && isBelowNormalRange(g) }

    /// `log|x_i|` (L = 2) of the current step: from the solver's logs where it gave
    /// them (WN: `log|g| + log|v_i| − log‖v‖`), else `log|x_i|`.
    @inline(__always)
    public func logWeight(_ i: Int) -> Double {
        guard hasLogState else { return log(abs(x[i])) }
        return isWeightNormalized ? logState[i + 1] + logGOverV : logState[i]
    }

    /// A failed log-invariant report (`h_L` of the weights) with the likeliest cause added
    /// when an entry of the state fell below `atol/(10·rtol)` in weight space: the integrator
    /// holds it to `atol`, i.e. to `atol/|s|` relative, which is what `h_L` then measures
    /// (docs/monitor.md; wn-timedep, L = 2, bsimp, default atol 1e-18: entries down to 8e-78
    /// and Lemma 3.7 at 2.1e-8 against 5.9e-9, where an independent integration keeps it to
    /// 4e-12; WN, L = 3, msbdf, atol 1e-14: 3.8 at 1.3e-4 against 6.2e-6, none with atol 0).
    private func belowAtolNote(_ report: CheckReport, rule: ToleranceRule) -> CheckReport {
        let atol = rule.atol
        // Not for GD / WN-GD: an iteration has no atol (their failures are the discretization's).
        guard depth >= 2, !flow.kind.isDiscrete, !report.passed, !report.isMeasurement, atol > 0,
              10 * rule.rtol * smallestWeight < atol else { return report }
        var r = report
        r.quantity += "; a state entry fell to \(JSON.format(smallestWeight)) (t = \(JSON.format(smallestWeightT))), where atol = \(JSON.format(atol)) "
            + "allows a relative error of \(JSON.format(atol / smallestWeight)), above rtol = \(JSON.format(rule.rtol)), which this check measures: "
            + "rerun with integrator.atol = 0 (or method dual at depth 2) to tell that from the flow"
        return r
    }

    /// A log-invariant check's report (Lemmas 3.7, 3.8, 3.9, 3.18, `limit-kkt`; `function` the
    /// `h_L` it reads) with what the run's representation did to it: the steps left out where a
    /// weight underflowed to 0 (`LostLogs.annotate`), and on a failure, weights below
    /// atol/(10·rtol) (`belowAtolNote`).
    func qualified(_ report: CheckReport, function: String, rule: ToleranceRule) -> CheckReport {
        belowAtolNote(lostLogs.annotate(report, function: function), rule: rule)
    }

    /// `α` for L = 1 (signed: `g/‖v‖`; GF: 1).
    public var alpha1: Double { isWeightNormalized ? g / vNorm : 1 }

    /// A roundoff bound on the loss at the current step:
    /// `ε (L ‖Ã‖_F ‖x^L‖ + ‖y‖) ‖e‖` (the error of `e` times `‖e‖`).
    public var lossRoundoff: Double {
        Double.ulpOfOne * (Double(depth) * matrixNorm * powerNorm + yNorm) * residualNorm
    }
}

extension MonitorContext {
    /// `h_L` of a weight vector (allocating; for setup).
    static func invariantMapped(_ v: [Double], depth: Int) -> [Double] {
        v.map { invariantMap($0, depth: depth) }
    }
}
