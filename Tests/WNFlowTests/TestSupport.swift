import GSLKit
@testable import WNFlow

/// Small generated problems and configs shared by the WNFlow tests.
enum Fixture {
    static func problem(m: Int = 10, n: Int = 25, depth: Int = 2, signed: Bool = false, seed: UInt = 7,
                        sparsity: Int = 3) throws -> Problem {
        let d = ProblemGenerator(m: m, n: n, sparsity: sparsity, signed: signed, seed: seed).draw()
        return try Problem(A: d.A, y: d.y, depth: depth, signed: signed, groundTruth: d.groundTruth)
    }

    /// A random positive point of length `n` (entries in [0.2, 1.2]·scale).
    static func positivePoint(_ n: Int, seed: UInt, scale: Double = 1) -> [Double] {
        let rng = RNG(seed: seed)
        return (0..<n).map { _ in scale * (0.2 + rng.uniform()) }
    }

    static func config(_ problem: Problem, flow: FlowKind, x0: [Double], etaG: Double = 0.05,
                       method: Method = .auto, rtol: Double = 1e-10, atol: Double = 1e-18,
                       tEnd: Double = 1e12, step: Double? = nil, points: Int = 0,
                       lossBelow: Double? = nil) -> SimulationConfig {
        var model = ModelSpec()
        model.flow = flow
        model.depth = problem.depth
        model.signed = problem.signed
        model.etaG = etaG
        model.step = step
        var it = IntegratorSpec()
        it.method = method
        it.rtol = rtol
        it.atol = atol
        it.tEnd = tEnd
        it.lossBelow = lossBelow
        var rec = RecordSpec()
        rec.points = points
        return SimulationConfig(problem: problem, model: model, x0: x0, integrator: it, record: rec)
    }

    /// `max|a − b| / max|b|` (entry-wise, relative to the largest entry).
    static func maxRelativeDifference(_ a: [Double], _ b: [Double]) -> Double {
        var num = 0.0, den = 0.0
        for i in 0..<a.count { num = max(num, abs(a[i] - b[i])); den = max(den, abs(b[i])) }
        return num / den
    }

    static func relativeError(_ a: [Double], _ b: [Double]) -> Double {
        let d = zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        return d / max(norm2(b), 1e-300)
    }
}
