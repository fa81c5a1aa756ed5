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

    /// `maxRelativeDifference` of the entries of two matrices.
    static func maxRelativeDifference(_ a: Matrix, _ b: Matrix) -> Double {
        let scale = max(b.storage.map(abs).max() ?? 0, 1e-300)
        return zip(a.storage, b.storage).map { abs($0 - $1) }.max()! / scale
    }

    /// Central finite differences of `f` at `y`, column by column.
    static func finiteDifferenceJacobian(_ system: any ODESystem, at y: [Double]) throws -> Matrix {
        let d = y.count
        var j = Matrix(rows: d, cols: d)
        var fp = [Double](repeating: 0, count: d), fm = fp
        for k in 0..<d {
            let h = 1e-6 * max(abs(y[k]), 1e-3)
            var yp = y, ym = y
            yp[k] += h
            ym[k] -= h
            try yp.withUnsafeBufferPointer { b in try fp.withUnsafeMutableBufferPointer { try system.rhs(t: 0, y: b, dydt: $0) } }
            try ym.withUnsafeBufferPointer { b in try fm.withUnsafeMutableBufferPointer { try system.rhs(t: 0, y: b, dydt: $0) } }
            for i in 0..<d { j[i, k] = (fp[i] - fm[i]) / (2 * h) }
        }
        return j
    }

    /// The analytic Jacobian of `system` at `y` (dense).
    static func jacobian(_ system: any ODESystem, at y: [Double]) throws -> Matrix {
        let d = y.count
        var j = Matrix(rows: d, cols: d)
        var dfdt = [Double](repeating: 0, count: d)
        try y.withUnsafeBufferPointer { s in
            try j.storage.withUnsafeMutableBufferPointer { jb in
                try dfdt.withUnsafeMutableBufferPointer { try system.jacobian(t: 0, y: s, dfdy: jb, dfdt: $0) }
            }
        }
        return j
    }

    static func relativeError(_ a: [Double], _ b: [Double]) -> Double {
        let d = zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        return d / max(norm2(b), 1e-300)
    }
}
