import Foundation
import GSLKit

/// The exponential decay rate of the loss (Thm 2.2(1), (2.5)/Lemma 3.6:
/// `ℒ(t) ≤ ℒ(0) e^{−κt}`): a measurement, not a pass/fail check.
///
/// Online and O(1) memory: the check keeps one sample `(t, ln ℒ)` each time
/// the loss falls through a new quarter decade, in a ring buffer of 512
/// samples (128 decades), plus the last step. At the end it fits
/// `ln ℒ ≈ a − κ t` by least squares over the tail: the samples below the
/// first third of the decades the loss descended, and above the loss's
/// integrator noise floor `ℒ_noise = ½ (100 · rtol · L ‖Ã‖_F ‖x^L‖)²` (below
/// it the state is only known to rtol·|x|, which moves e by more than e:
/// the measured loss there follows the integrator, not the flow). With
/// fewer than 3 samples in that window it falls back to the last third of
/// the decades. κ has unit 1/time of the flow's clock (GD/WN-GD: t = kμ). `maxViolation` and `tolerance`
/// are 0 and `passed` is true; the fit's RMS residual (in ln ℒ) is in
/// `quantity`. With fewer than 3 tail samples, `value` is nil.
public final class LossDecayRate: Check {
    public let name = "loss-decay-rate"
    let context: MonitorContext
    let rule: ToleranceRule
    static let capacity = 512
    private var ts = [Double](repeating: 0, count: LossDecayRate.capacity)
    private var ls = [Double](repeating: 0, count: LossDecayRate.capacity)
    private var count = 0
    private var head = 0
    private var nextMark = Double.infinity   // in log10
    private var initialLog = Double.nan
    private var lastT = Double.nan, lastLog = Double.nan, lastStored = true

    public init(context: MonitorContext, rule: ToleranceRule) {
        self.context = context
        self.rule = rule
    }

    public func observe(_ step: AcceptedStep) -> StepDecision {
        context.update(step)
        let l = context.loss
        guard l > 0, l.isFinite else { return .proceed }
        let lg = log10(l)
        if initialLog.isNaN { initialLog = lg }
        lastT = step.t; lastLog = lg; lastStored = false
        if lg <= nextMark {
            push(step.t, lg)
            lastStored = true
            nextMark = (4 * lg).rounded(.down) / 4 - 0.25
        }
        return .proceed
    }

    private func push(_ t: Double, _ lg: Double) {
        ts[head] = t
        ls[head] = lg
        head = (head + 1) % Self.capacity
        count = min(count + 1, Self.capacity)
    }

    /// `(κ, rms residual in ln ℒ, samples used)`, or nil.
    public func fit() -> (kappa: Double, rms: Double, samples: Int)? {
        guard !lastLog.isNaN else { return nil }
        var pts: [(Double, Double)] = []
        for k in 0..<count {
            let j = (head - count + k + Self.capacity) % Self.capacity
            pts.append((ts[j], ls[j]))
        }
        if !lastStored { pts.append((lastT, lastLog)) }
        let cutoff = lastLog + 2 * (initialLog - lastLog) / 3
        let noise = 0.5 * pow(rule.factor * rule.rtol * Double(context.depth) * context.matrixNorm * context.powerNorm, 2)
        let floor = log10(max(noise, .leastNormalMagnitude))
        var tail = pts.filter { $0.1 <= cutoff && $0.1 >= floor }.map { ($0.0, $0.1 * M_LN10) }
        if tail.count < 3 {
            let lastThird = lastLog + (initialLog - lastLog) / 3
            tail = pts.filter { $0.1 <= lastThird }.map { ($0.0, $0.1 * M_LN10) }
        }
        guard tail.count >= 3 else { return nil }
        let n = Double(tail.count)
        let mt = tail.reduce(0) { $0 + $1.0 } / n, ml = tail.reduce(0) { $0 + $1.1 } / n
        var stt = 0.0, stl = 0.0
        for (t, l) in tail { stt += (t - mt) * (t - mt); stl += (t - mt) * (l - ml) }
        guard stt > 0 else { return nil }
        let slope = stl / stt
        var ss = 0.0
        for (t, l) in tail { let r = l - (ml + slope * (t - mt)); ss += r * r }
        return (-slope, (ss / n).squareRoot(), tail.count)
    }

    public func report() -> CheckReport {
        let f = fit()
        let q: String
        if let f {
            q = "fitted exponential decay rate κ of the loss, ln ℒ ≈ a − κt over its tail above the integrator noise floor (1/time; \(f.samples) samples, RMS residual \(JSON.format(f.rms)) in ln ℒ)"
        } else {
            q = "fitted exponential decay rate κ of the loss (1/time): too few tail samples to fit"
        }
        return CheckReport(name: name, maxViolation: 0, tolerance: 0, passed: true, tWorst: lastT.isNaN ? 0 : lastT,
                           quantity: q, isMeasurement: true, value: f?.kappa)
    }
}
