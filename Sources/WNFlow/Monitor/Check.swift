import Foundation
import GSLKit

/// A property of the paper that a trajectory must keep (MATH.md §2–§5),
/// checked online: it observes the initial state and every accepted step
/// (`StepObserver`), keeps O(N) memory (never the trajectory), and reports
/// the worst violation it saw.
///
/// A check observes one run; build a new one for the next run.
public protocol Check: StepObserver {
    /// The check's name in `result.json`, e.g. `lemma-3.8-invariant`.
    var name: String { get }
    /// The verdict on everything observed so far.
    func report() -> CheckReport
}

/// How the monitor's tolerances scale with the integrator and the problem.
///
/// Every relative check is held to
/// ```
/// tol = κ · [ 100 · (rtol + atol / s₀) · √max(1, K/100) + 10 · n · ε ]
/// ```
/// where `rtol`, `atol` are the integrator's tolerances, `s₀ = ‖state₀‖∞` the
/// scale of the initial state (so `atol/s₀` is atol in relative terms),
/// `K` the number of accepted steps (the drift of an invariant is the sum
/// of K local errors, each ≤ rtol relative, which add up like a random walk:
/// measured drifts at rtol 1e-9…1e-11 are ∝ rtol and reach ~1000·rtol
/// after ~4000 steps), `n` the state dimension (roundoff of length-n sums,
/// `ε = 2⁻⁵²`), and `κ ≥ 1` a conditioning factor each check documents (1
/// unless the quantity amplifies a relative error of the state, e.g.
/// `exp((2−L)c g²)`).
/// Discrete runs (GD, WN-GD) are held to the same numbers, taken from the
/// config's `rtol` (default 1e-10), on what the iteration keeps exactly; the
/// flow's statements are measurements there (`DiscreteRuns`).
public struct ToleranceRule: Sendable, Equatable {
    public var rtol: Double
    public var atol: Double
    /// `‖state₀‖∞`.
    public var stateScale: Double
    /// The state dimension `n`.
    public var dimension: Int
    /// The safety factor on the integrator's tolerances (100).
    public var factor: Double

    public init(rtol: Double, atol: Double, stateScale: Double, dimension: Int, factor: Double = 100) {
        self.rtol = rtol
        self.atol = atol
        self.stateScale = stateScale > 0 && stateScale.isFinite ? stateScale : 1
        self.dimension = dimension
        self.factor = factor
    }

    /// The rule for a config and its initial state.
    public init(config: SimulationConfig, initialState: [Double]) {
        let s = initialState.reduce(0) { max($0, abs($1)) }
        self.init(rtol: config.integrator.rtol, atol: config.integrator.atol, stateScale: s,
                  dimension: initialState.count)
    }

    /// The tolerance of an identity a discrete run keeps exactly (`DiscreteRuns`): rounding
    /// only, `100 ε (n + L + √K)` after `K` steps, with neither rtol nor atol (no step is
    /// controlled; under the flow rule a start of 1e-150 made it 8.8e135, and rtol 1e-3 0.1).
    public func discreteIdentityTolerance(steps: Int, depth: Int) -> Double {
        100 * Double.ulpOfOne * (Double(dimension + depth) + Double(max(steps, 0)).squareRoot())
    }

    /// `100 (rtol + atol/s₀) √max(1, K/100) + 10 n ε` after `K` steps.
    public func base(steps: Int) -> Double {
        factor * (rtol + atol / stateScale) * max(1, Double(steps) / 100).squareRoot()
            + 10 * Double(dimension) * Double.ulpOfOne
    }

    /// `κ · base(K)`.
    public func tolerance(conditioning: Double = 1, steps: Int) -> Double { max(conditioning, 1) * base(steps: steps) }
}

/// The worst value of a violation seen so far and when it happened.
/// NaN and ±∞ count as the worst possible violation.
struct WorstTracker {
    private(set) var value = 0.0
    private(set) var t = 0.0
    private(set) var seen = false

    mutating func record(_ v: Double, at time: Double) {
        let x = v.isNaN || v.isInfinite ? Double.greatestFiniteMagnitude : v
        if !seen || x > value {
            value = x
            t = time
        }
        seen = true
    }
}

/// −1, 0 or 1 for each entry (0 also for NaN): the start signs Lemma 3.3 holds entries to.
func entrySigns<C: Collection>(_ v: C) -> [Double] where C.Element == Double {
    v.map { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }
}

/// The first step at which some weight had left the sign it started with, or was NaN
/// (depth ≥ 2), where the checks that need `log|x|` or `x^{2−L}` are undefined: the flow keeps
/// every weight's sign (Lemma 3.3), so only a computed trajectory that crossed 0 (a
/// weight-space stepper's overshoot at rounding level) gets there. Kept once per step by
/// `MonitorContext.update` (`crossings`); the reports of Lemmas 3.7 and 3.18 say so instead
/// of leaving a bare 1.8e308.
struct SignCrossings {
    private(set) var value: Double?
    private(set) var t = 0.0
    /// The signs of the first weights observed (the start), −1, 0 or 1.
    private var startSigns: [Double] = []

    /// Entries of the other sign than at the start, or NaN: an exact 0 is a weight below
    /// double range, whose log the dual coordinates keep (`MonitorContext.logWeight`), not a
    /// crossing. The worst is the deepest past 0.
    mutating func observe(_ x: [Double], depth: Int, at time: Double) {
        guard value == nil, depth >= 2 else { return }
        if startSigns.isEmpty { startSigns = entrySigns(x) }
        var depthPast = 0.0
        for (v, s) in zip(x, startSigns) {
            if v.isNaN { value = v; break }
            if -s * v > depthPast { depthPast = -s * v; value = v }
        }
        if value != nil { t = time }
    }

    /// `quantity` with the note appended when such a step was seen.
    func annotate(_ quantity: String, function: String) -> String {
        guard let value else { return quantity }
        return quantity + "; a weight reached \(value.isNaN ? "NaN" : JSON.format(value)) at t = \(JSON.format(t)), where \(function) is undefined: "
            + "the computed trajectory crossed 0, which the flow cannot (it keeps every sign) (lemma-3.3-sign measures by how much)"
    }
}

/// Steps at which a weight that started nonzero is exactly 0 in the state with no log of it
/// from the solver (depth ≥ 2): a weight-space stepper holds a weight below double range as 0
/// (after the dual hand-over of WN at log ρ = 2.9e10, entries near e^{−1e10}), and the
/// invariant checks need its `log|x|` (L = 2) or `x^{2−L}` (L ≥ 3). Those steps are not
/// evaluated (1.8e308 there said nothing about the flow); `annotate` says which part of the
/// run was. Kept once per step by `MonitorContext.update` (`lostLogs`).
struct LostLogs {
    /// Steps observed, the start included.
    private(set) var steps = 0
    /// Of them, the steps with such a weight.
    private(set) var lost = 0
    /// Whether the current step is one.
    private(set) var current = false
    private(set) var first = 0.0
    private(set) var mostWeights = 0
    private var startNonzero: [Bool] = []
    /// Each entry's last known size (0 where the solver's logs covered a weight below double
    /// range): a zero is taken as underflow only after a size below `underflowLevel`. A step
    /// of the flow scales a weight (x' ∝ x), so it reaches exactly 0 only by underflow; a
    /// weight that jumps to 0 from a normal size is a broken step, which the checks must see
    /// (their 1.8e308).
    private var lastNonzero: [Double] = []
    static let underflowLevel = 1e-200

    /// `base` the state's base vector (`x`, WN `v`), `scaleIsZero` a WN `g` of exactly 0;
    /// `logsCover` whether the solver's logs stand in for zeros (L = 2 with `logY`).
    /// `zerosAreUnderflow`: take every zero as underflow (verify's two-point `limit-kkt`,
    /// which sees no steps between; the run's own checks judged those).
    mutating func observe(base: (Int) -> Double, count n: Int, scaleIsZero: Bool, logsCover: Bool,
                          depth: Int, at t: Double, zerosAreUnderflow: Bool = false) {
        steps += 1
        current = false
        guard depth >= 2 else { return }
        if startNonzero.isEmpty {
            startNonzero = (0..<n).map { base($0) != 0 }
            lastNonzero = (0..<n).map { abs(base($0)) }
            return
        }
        if logsCover {
            for i in 0..<n { lastNonzero[i] = abs(base(i)) }
            return
        }
        var k = scaleIsZero ? n : 0
        for i in 0..<n where startNonzero[i] {
            let v = abs(base(i))
            if v != 0 { lastNonzero[i] = v; continue }
            if k < n && (zerosAreUnderflow || lastNonzero[i] <= LostLogs.underflowLevel) { k += 1 }
        }
        guard k > 0 else { return }
        if lost == 0 { first = t }
        lost += 1
        mostWeights = max(mostWeights, k)
        current = true
    }

    /// `report` with the unevaluated steps said; a report that evaluated no step after the
    /// start becomes a measurement without a value (not a verdict).
    func annotate(_ report: CheckReport, function: String) -> CheckReport {
        guard lost > 0 else { return report }
        var r = report
        let why = "from t = \(JSON.format(first)) on, up to \(mostWeights) weight(s) that started nonzero were 0 in the state "
            + "(below double range in a weight-space stepper, which keeps no logs), where \(function) is undefined"
        if steps - lost <= 1 {
            r.isMeasurement = true
            r.value = nil
            r.passed = true
            r.maxViolation = 0
            // The tracker's words about its worst step describe the start alone.
            let head = r.quantity.components(separatedBy: "; at the step closest to its tolerance").first ?? r.quantity
            r.quantity = head + "; not evaluated: " + why
        } else {
            r.quantity += "; evaluated at \(steps - lost) of \(steps) steps: " + why
        }
        return r
    }
}

/// For checks whose conditioning factor κ changes along the run (the WN log-invariants at
/// L = 2): the step with the largest `violation/κ_t`, with that step's violation and κ, so
/// that the report compares a violation with the tolerance of its own step. NaN and ±∞
/// count as the worst possible violation.
struct ConditionedWorstTracker {
    private(set) var value = 0.0
    private(set) var kappa = 1.0
    private(set) var t = 0.0
    private(set) var seen = false
    private var ratio = 0.0

    mutating func record(_ v: Double, kappa k: Double, at time: Double) {
        let x = v.isNaN || v.isInfinite ? Double.greatestFiniteMagnitude : v
        let kk = k.isFinite ? max(k, 1) : 1  // no κ known: the strictest
        let r = x / kk
        if !seen || r > ratio {
            value = x
            kappa = kk
            ratio = r
            t = time
        }
        seen = true
    }

    /// The report of that step: its violation against its own tolerance after `steps`;
    /// `quantity` is extended with κ_t and the largest violation over the run (`overall`).
    func report(name: String, rule: ToleranceRule, steps: Int, quantity: String, overall: WorstTracker) -> CheckReport {
        let tol = rule.tolerance(conditioning: kappa, steps: steps)
        return CheckReport(name: name, maxViolation: value, tolerance: tol, passed: value <= tol, tWorst: t,
                           quantity: quantity + "; at the step closest to its tolerance (κ_t = \(JSON.format(kappa)); "
                               + "largest over the run \(JSON.format(overall.value)) at t = \(JSON.format(overall.t)))")
    }
}

/// The distance `‖e^{sa} a − e^{sb} b‖ / max(e^{sa} ra, e^{sb} rb)` computed in
/// log space (with optional signs of the two scale factors), so that neither scale factor has to be representable: both are
/// divided by the larger of `e^{sa} ra`, `e^{sb} rb` first. `ra`, `rb` are
/// the reference sizes of the two sides (norms of the unprojected vectors,
/// whose projections `a`, `b` are).
@inline(__always)
func scaledRelativeDistance(_ a: UnsafePointer<Double>, logScaleA sa: Double, refA ra: Double,
                            _ b: UnsafePointer<Double>, logScaleB sb: Double, refB rb: Double,
                            count n: Int, signA: Double = 1, signB: Double = 1) -> Double {
    let la = ra > 0 ? sa + log(ra) : -Double.infinity
    let lb = rb > 0 ? sb + log(rb) : -Double.infinity
    let m = max(la, lb)
    guard m.isFinite else { return m.isNaN || m == .infinity ? .infinity : 0 }
    let ca = ra > 0 ? signA * exp(sa - m) : 0
    let cb = rb > 0 ? signB * exp(sb - m) : 0
    var s = 0.0
    for i in 0..<n {
        let d = ca * a[i] - cb * b[i]
        s += d * d
    }
    return s.squareRoot()
}

/// `‖a − b‖ / max(ra, rb, tiny)`.
@inline(__always)
func relativeDistance(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, refA ra: Double, refB rb: Double,
                      count n: Int) -> Double {
    var s = 0.0
    for i in 0..<n {
        let d = a[i] - b[i]
        s += d * d
    }
    return s.squareRoot() / max(ra, rb, Double.leastNormalMagnitude)
}
