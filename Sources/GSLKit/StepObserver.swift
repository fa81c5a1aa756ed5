/// One accepted step of an integration, as observers see it. The buffer is
/// only valid during the call: copy what you keep.
public struct AcceptedStep {
    /// Time reached.
    public let t: Double
    /// State at `t`.
    public let y: UnsafeBufferPointer<Double>
    /// Size of the step that reached `t` (0 for the initial state).
    public let h: Double
    /// Index into the `saveTimes` array passed to `integrate` when `t` is one
    /// of them, hit exactly (for repeated times, the first such index).
    public let saveIndex: Int?
    /// Number of accepted steps so far (0 for the initial state).
    public let stepNumber: Int
    /// `log|y_i|` where the solver holds the state in log form (WNFlow's dual coordinates):
    /// finite also where `y_i` is below double range and stored as 0. Nil otherwise.
    public let logY: UnsafeBufferPointer<Double>?

    public init(t: Double, y: UnsafeBufferPointer<Double>, h: Double, saveIndex: Int?, stepNumber: Int,
                logY: UnsafeBufferPointer<Double>? = nil) {
        self.t = t
        self.y = y
        self.h = h
        self.saveIndex = saveIndex
        self.stepNumber = stepNumber
        self.logY = logY
    }

    /// Whether this is the initial state rather than a step.
    public var isInitial: Bool { stepNumber == 0 }
}

/// What an observer asks of the integrator after seeing a step.
public enum StepDecision: Sendable, Equatable {
    case proceed
    case stop
}

/// Sees the initial state and every accepted step, and may stop the run
/// (the callback system of OrdinaryDiffEq.jl, diffrax's events).
public protocol StepObserver: AnyObject {
    func observe(_ step: AcceptedStep) -> StepDecision
}

/// Wraps a closure as an observer.
public final class ClosureObserver: StepObserver {
    private let body: (AcceptedStep) -> StepDecision
    public init(_ body: @escaping (AcceptedStep) -> StepDecision) { self.body = body }
    public func observe(_ step: AcceptedStep) -> StepDecision { body(step) }
}

/// Why an integration ended.
public enum ODETermination: String, Sendable, Equatable {
    /// `t_end` was reached.
    case reachedEnd
    /// An observer asked to stop.
    case stoppedByObserver
    /// The step budget ran out.
    case maxSteps
    /// An error stopped the run; see `ODERun.failure`.
    case failed
}

/// What an integration reached: always returned, also when it stopped early.
public struct ODERun {
    /// The last time reached.
    public var t: Double
    /// The state at `t` (the last accepted one when the run failed).
    public var y: [Double]
    /// Work counts.
    public var stats: ODEStatistics
    /// Why the run ended.
    public var termination: ODETermination
    /// The error that stopped the run, when `termination == .failed`.
    public var failure: (any Error)?

    public init(t: Double, y: [Double], stats: ODEStatistics, termination: ODETermination, failure: (any Error)? = nil) {
        self.t = t
        self.y = y
        self.stats = stats
        self.termination = termination
        self.failure = failure
    }

    /// Returns `self`, or throws the failure.
    public func get() throws -> ODERun {
        if let failure { throw failure }
        return self
    }
}

/// Anything that integrates an `ODESystem` and reports to observers: the GSL
/// integrator, and the structured implicit solvers built on it.
public protocol ODESolver: AnyObject {
    /// Integrates from `(t0, y0)` toward `t1`, hitting every time of
    /// `saveTimes` inside `(t0, t1]` exactly (others are ignored; order does
    /// not matter), and calling the observers on the initial state and on
    /// every accepted step. On failure the run holds the last accepted state.
    func integrate(from t0: Double, y0: [Double], to t1: Double, saveTimes: [Double],
                   observers: [any StepObserver]) -> ODERun
}

extension ODESolver {
    public func integrate(from t0: Double, y0: [Double], to t1: Double) -> ODERun {
        integrate(from: t0, y0: y0, to: t1, saveTimes: [], observers: [])
    }
}

/// Checks an integration's inputs (dimension, finite `t0 < t1`, finite
/// `y0`) and returns the failed run to report, or `nil` when they are valid.
/// Shared by every `ODESolver`.
public func invalidInputRun(dimension n: Int, t0: Double, y0: [Double], t1: Double) -> ODERun? {
    let stats = ODEStatistics()
    guard y0.count == n else {
        return ODERun(t: t0, y: y0, stats: stats, termination: .failed,
                      failure: ODEError.dimensionMismatch(expected: n, got: y0.count))
    }
    guard t0.isFinite, t1.isFinite, t1 > t0 else {
        return ODERun(t: t0, y: y0, stats: stats, termination: .failed,
                      failure: ODEError.invalidOptions("need finite t0 < t1, got t0 = \(t0), t1 = \(t1)"))
    }
    guard y0.allSatisfy({ $0.isFinite }) else {
        return ODERun(t: t0, y: y0, stats: stats, termination: .failed, failure: ODEError.nonFiniteState(t: t0))
    }
    return nil
}

/// The save times of one run that lie in `(t0, t1]`, in time order, each with
/// its index in the caller's `saveTimes` (what `AcceptedStep.saveIndex`
/// reports). Shared by the solvers, which land their steps on `target`.
struct SaveSchedule {
    private let times: [(index: Int, time: Double)]
    private var next = 0

    init(_ saveTimes: [Double], from t0: Double, to t1: Double) {
        times = saveTimes.enumerated()
            .filter { $0.element > t0 && $0.element <= t1 }
            .sorted { $0.element < $1.element || ($0.element == $1.element && $0.offset < $1.offset) }
            .map { (index: $0.offset, time: $0.element) }
    }

    /// Where the next step must end at the latest: the next save time, else `t1`.
    func target(orEnd t1: Double) -> Double { next < times.count ? times[next].time : t1 }

    /// The caller's index when `t` is exactly the next save time, else nil.
    func hit(at t: Double) -> Int? { next < times.count && t == times[next].time ? times[next].index : nil }

    /// Moves past every save time `≤ t` (repeated times are reported once); with `low`, past
    /// every save time `≤ t + low` for a time kept as that unevaluated sum (`BDFSolver`).
    mutating func advance(past t: Double, low: Double = 0) {
        while next < times.count && (times[next].time - t) - low <= 0 { next += 1 }
    }
}

/// The time of `BDFSolver` and `RosenbrockSolver` is the unevaluated sum `t + lo`, so that
/// steps below ulp(t) still add up (docs/math.md §6e). These four read and move it.
///
/// `t + lo ← t + lo + h` with the rounding of the sum kept in `lo` (Knuth's TwoSum).
@inline(__always)
func advanceTime(_ t: inout Double, _ lo: inout Double, by h: Double) {
    let a = lo + h
    let sum = t + a
    let bv = sum - t
    lo = (t - (sum - bv)) + (a - bv)
    t = sum
}

/// What is left from the time `t + lo` to `target` (exact in sign near the target).
@inline(__always)
func timeLeft(to target: Double, _ t: Double, _ lo: Double) -> Double { (target - t) - lo }

/// Whether the time `t + lo` has reached `end`.
@inline(__always)
func timeReached(_ end: Double, _ t: Double, _ lo: Double) -> Bool { (t - end) + lo >= 0 }

/// The smallest step taken at time `t`: ten units of the sum's resolution (ulp(t)·ε), and
/// at least ten times the smallest subnormal near t = 0.
@inline(__always)
func minimumStep(at t: Double) -> Double { max(10 * t.ulp * .ulpOfOne, 10 * Double.leastNonzeroMagnitude) }
