import GSLKit

/// Discrete gradient descent on a flow's own right-hand side (MATH.md §7):
/// `state_{k+1} = state_k + μ f(state_k)`, i.e. GD `x_{k+1} = x_k − μ∇ℒ(x_k)`
/// for `GradientFlow` and WN-GD for `WeightNormFlow` (constant η_g), which
/// grows ‖v‖ by `μ²η_v²‖∇_vℒ̃‖²` per step. Iterate `k` sits at time `t = kμ`;
/// a save time is reported at the first iterate at or after it.
public final class DiscreteDescent: ODESolver {
    public let system: any ODESystem
    /// The step size μ.
    public let step: Double
    /// Largest number of iterations.
    public let maxSteps: Int

    public init(system: any ODESystem, step: Double, maxSteps: Int) {
        self.system = system
        self.step = step
        self.maxSteps = maxSteps
    }

    public func integrate(from t0: Double, y0: [Double], to t1: Double, saveTimes: [Double],
                          observers: [any StepObserver]) -> ODERun {
        var stats = ODEStatistics()
        var y = y0
        var f = [Double](repeating: 0, count: y0.count)
        var t = t0
        let saves = saveTimes.filter { $0 > t0 && $0 <= t1 }
        var saveIndex = 0
        let initialStop = y.withUnsafeBufferPointer { notify(observers, AcceptedStep(t: t, y: $0, h: 0, saveIndex: nil, stepNumber: 0)) }
        if initialStop { return ODERun(t: t, y: y, stats: stats, termination: .stoppedByObserver) }
        var k = 0
        while true {
            if k >= maxSteps { return ODERun(t: t, y: y, stats: stats, termination: .maxSteps) }
            let next = t0 + Double(k + 1) * step
            if next > t1 * (1 + 1e-15) { return ODERun(t: t, y: y, stats: stats, termination: .reachedEnd) }
            do {
                try y.withUnsafeBufferPointer { yb in try f.withUnsafeMutableBufferPointer { try system.rhs(t: t, y: yb, dydt: $0) } }
            } catch {
                return ODERun(t: t, y: y, stats: stats, termination: .failed, failure: error)
            }
            stats.rhsEvaluations += 1
            var finite = true
            for i in 0..<y.count {
                y[i] += step * f[i]
                if !y[i].isFinite { finite = false }
            }
            k += 1
            t = next
            stats.acceptedSteps = k
            if !finite {
                return ODERun(t: t, y: y, stats: stats, termination: .failed,
                              failure: ODEError.nonFiniteState(t: t))
            }
            var hit: Int?
            if saveIndex < saves.count && t >= saves[saveIndex] {
                hit = saveIndex
                while saveIndex < saves.count && saves[saveIndex] <= t { saveIndex += 1 }
            }
            let stop = y.withUnsafeBufferPointer { notify(observers, AcceptedStep(t: t, y: $0, h: step, saveIndex: hit, stepNumber: k)) }
            if stop { return ODERun(t: t, y: y, stats: stats, termination: .stoppedByObserver) }
        }
    }
}
