import GSLKit

/// Discrete gradient descent on a flow's own right-hand side (MATH.md §7):
/// `state_{k+1} = state_k + μ f(state_k)`, i.e. GD `x_{k+1} = x_k − μ∇ℒ(x_k)`
/// for `GradientFlow` and WN-GD for `WeightNormFlow` (constant η_g), which
/// grows ‖v‖² by `μ²η_v²‖∇_vℒ̃‖²` per step. Iterate `k` sits at time `t = kμ`;
/// a save time is reported at the first iterate at or after it.
///
/// The loss of every iterate whose gradient is taken comes free from the RHS
/// (`LossWorkspace`), and the last iterate's is computed on its own, so the iteration
/// watches every iterate's loss: GD lowers the loss only for steps
/// below about 2 over its curvature, and a loss that rises by more than its rounding says the
/// step is too large (`lossRises`, `firstRise`, `lastRise`). A loss that grows past
/// `divergenceFactor` times the larger of its start and `lossScale` (the loss at x = 0) ends
/// the run as diverged (`DiscreteDivergence`), as does a state that leaves double range;
/// either way the run returns the last finite iterate.
public final class DiscreteDescent: ODESolver {
    public let system: any ODESystem
    /// The step size μ.
    public let step: Double
    /// Largest number of iterations.
    public let maxSteps: Int
    /// Rises of the loss below this are not counted (the stop threshold: near it, rounding).
    public let lossFloor: Double
    /// ½‖y‖², the loss at x = 0: with the start's loss, the scale divergence is measured
    /// against (a start next to a zero of the loss, at 4e-22, would otherwise count a
    /// transient 6.8e-12 as diverged).
    public let lossScale: Double

    /// Loss growth over the start's at which the iteration counts as diverged.
    public static let divergenceFactor = 1e10
    /// Relative rise of the loss between two iterates that `lossRises` counts, on top of the
    /// residual's rounding bound (`Problem.reportedLoss`'s √w·ε‖Ã‖_F‖x^L‖).
    public static let riseTolerance = 1e-9

    /// How many iterates had a higher loss than the one before (above `lossFloor`).
    public private(set) var lossRises = 0
    /// The first such rise: iterate `step` at time `t`, the loss going `from` → `to`.
    public private(set) var firstRise: (step: Int, t: Double, from: Double, to: Double)?
    /// The iterate of the last rise.
    public private(set) var lastRise: Int?
    /// The smallest loss of any watched iterate (nil without a loss workspace).
    public private(set) var lowestLoss: Double?

    public init(system: any ODESystem, step: Double, maxSteps: Int, lossFloor: Double = 0, lossScale: Double = 0) {
        self.system = system
        self.step = step
        self.maxSteps = maxSteps
        self.lossFloor = lossFloor
        self.lossScale = lossScale
    }

    /// Whether `loss` is above `previous` by more than rounding: the relative `riseTolerance`
    /// plus what the residual's rounding `δ ≈ √w·ε‖Ã‖_F‖x^L‖` can do to ½‖e‖²
    /// (`‖e‖δ + δ²/2`). Where x^L dwarfs y the plain residual's rounding alone moved the
    /// loss of a stable run (depth 1, step 12× under the limit: 2,717 "rises" in 20,000 steps).
    static func rose(_ loss: Double, over previous: Double, workspace: LossWorkspace, frobenius: Double) -> Bool {
        guard loss > previous * (1 + riseTolerance) else { return false }
        let delta = Problem.residualRounding(count: workspace.n, frobeniusNorm: frobenius, powerNorm: norm2(workspace.power))
        let e = (2 * max(loss, previous)).squareRoot()
        return loss - previous > previous * riseTolerance + 2 * (e * delta + 0.5 * delta * delta)
    }

    /// Whether the iterate at `t` is at or past time `s` within k·step's rounding (a relative
    /// 1e-15): the rule for t_end (the last iterate is the one at or before it) and for
    /// record times (saved at the first iterate at or after it).
    static func reaches(_ t: Double, _ s: Double) -> Bool { t >= s - 1e-15 * abs(s) }

    public func integrate(from t0: Double, y0: [Double], to t1: Double, saveTimes: [Double],
                          observers: [any StepObserver]) -> ODERun {
        var stats = ODEStatistics()
        var y = y0, next = y0
        var f = [Double](repeating: 0, count: y0.count)
        var t = t0
        let saves = saveTimes.filter { $0 > t0 && $0 <= t1 }
        var saveIndex = 0
        let flow = system as? any Flow
        let workspace = flow?.lossWorkspace
        let frobenius = workspace == nil ? 0 : (flow?.problem.matrix.frobeniusNorm ?? 0)
        lossRises = 0; firstRise = nil; lastRise = nil; lowestLoss = nil
        var previousLoss: Double?, startLoss: Double?
        let initialStop = y.withUnsafeBufferPointer { notify(observers, AcceptedStep(t: t, y: $0, h: 0, saveIndex: nil, stepNumber: 0)) }
        if initialStop { return ODERun(t: t, y: y, stats: stats, termination: .stoppedByObserver) }
        var k = 0
        /// Watches the loss of iterate k (rises, divergence); a run to return when it diverged.
        func watch(_ loss: Double, _ ws: LossWorkspace) -> ODERun? {
            // An infinite loss of a finite iterate is past any divergence factor. So is a NaN one:
            // the iterate is finite (checked before it is taken) but x^L overflowed and the
            // residual formed ∞ − ∞ (gd, L = 4, step 1e300: reported as "the next iterate left
            // double range" one step later).
            if !loss.isFinite && !(loss < 0), let start = startLoss {
                return ODERun(t: t, y: y, stats: stats, termination: .failed,
                              failure: DiscreteDivergence(step: k, t: t, startLoss: start, loss: .infinity))
            }
            guard loss.isFinite else { return nil }
            if let prev = previousLoss, loss > lossFloor,
               DiscreteDescent.rose(loss, over: prev, workspace: ws, frobenius: frobenius) {
                lossRises += 1
                lastRise = k
                if firstRise == nil { firstRise = (k, t, prev, loss) }
            }
            let start = startLoss ?? loss
            startLoss = start
            lowestLoss = min(lowestLoss ?? loss, loss)
            previousLoss = loss
            if loss > DiscreteDescent.divergenceFactor * max(start, lossScale, .leastNormalMagnitude) {
                return ODERun(t: t, y: y, stats: stats, termination: .failed,
                              failure: DiscreteDivergence(step: k, t: t, startLoss: start, loss: loss))
            }
            return nil
        }
        /// The last iterate's loss, which no gradient evaluated (loss only, no RHS): the same
        /// iterate diverged (exit 3) when t_end lay one step later and ended at t_end with exit 0
        /// when it did not (gd, step 50: loss 0.56 → 1.6e7 → 2.3e32).
        func end(_ termination: ODETermination) -> ODERun {
            if let ws = workspace, let flow, stats.rhsEvaluations > 0 {
                let x = flow.weights(of: y)
                let loss = x.withUnsafeBufferPointer { ws.loss(at: $0.baseAddress!) }
                if let diverged = watch(loss, ws) { return diverged }
            }
            return ODERun(t: t, y: y, stats: stats, termination: termination)
        }
        while true {
            if k >= maxSteps { return end(.maxSteps) }
            let tNext = t0 + Double(k + 1) * step
            if !DiscreteDescent.reaches(t1, tNext) { return end(.reachedEnd) }
            do {
                try y.withUnsafeBufferPointer { yb in try f.withUnsafeMutableBufferPointer { try system.rhs(t: t, y: yb, dydt: $0) } }
            } catch {
                return ODERun(t: t, y: y, stats: stats, termination: .failed, failure: error)
            }
            stats.rhsEvaluations += 1
            // The RHS just evaluated the loss of iterate k.
            if let ws = workspace, let diverged = watch(ws.lastEvaluationLoss, ws) { return diverged }
            var finite = true
            for i in 0..<y.count {
                next[i] = y[i] + step * f[i]
                if !next[i].isFinite { finite = false }
            }
            if !finite {
                // The last finite iterate stays the result (its loss and weights are reported).
                return ODERun(t: t, y: y, stats: stats, termination: .failed,
                              failure: ODEError.nonFiniteState(t: tNext))
            }
            swap(&y, &next)
            k += 1
            t = tNext
            stats.acceptedSteps = k
            // A save time on the step grid is that iterate's, with the t_end rule's rounding
            // allowance (11·0.03 = 0.32999999999999996 saved 0.33 one iterate late).
            var hit: Int?
            if saveIndex < saves.count && DiscreteDescent.reaches(t, saves[saveIndex]) {
                hit = saveIndex
                while saveIndex < saves.count && DiscreteDescent.reaches(t, saves[saveIndex]) { saveIndex += 1 }
            }
            let stop = y.withUnsafeBufferPointer { notify(observers, AcceptedStep(t: t, y: $0, h: step, saveIndex: hit, stepNumber: k)) }
            if stop { return ODERun(t: t, y: y, stats: stats, termination: .stoppedByObserver) }
        }
    }
}

/// A discrete iteration whose loss grew past `DiscreteDescent.divergenceFactor` times its
/// start: the step is too large for the loss's curvature.
public struct DiscreteDivergence: Error, CustomStringConvertible, Sendable {
    public var step: Int
    public var t: Double
    public var startLoss: Double
    public var loss: Double
    public var description: String {
        "the loss grew from \(JSON.format(startLoss)) to \(loss.isFinite ? JSON.format(loss) : "inf (it overflowed)") by step \(step) (t = \(Simulation.time(t)))"
    }
}
