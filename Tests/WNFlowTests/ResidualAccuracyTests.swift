import Foundation
import GSLKit
import Testing
@testable import WNFlow

/// docs/math.md §6b: near a zero of the loss the residual `e = A x^L − y` is
/// kept to a relative rounding of about `accuracyFactor·ε`.
@Suite("Residual near a zero of the loss")
struct ResidualAccuracyTests {
    /// Dyadic data with an exactly known residual. `A = k/1024`, `x* = j/4`,
    /// `y = A x*²` (exact in double); `x = x* + δ` with `δ = k·2⁻³⁰`, so that
    /// `x² − x*² = 2x*δ + δ²` and `A (x² − x*²)` are exact too (every partial
    /// sum is a multiple of 2⁻⁷⁰ below 2⁻¹⁸). `fl(x²)` itself is not exact.
    struct Exact {
        let problem: Problem
        let x: [Double]
        let e: [Double]
    }

    static func exact(m: Int = 20, n: Int = 60, seed: UInt = 3, offset: Int = 0) throws -> Exact {
        let rng = RNG(seed: seed)
        var a = [Double](repeating: 0, count: m * n)
        for i in 0..<(m * n) { a[i] = Double(rng.uniformInt(2049) - 1024) / 1024 }
        var xs = [Double](repeating: 0, count: n), x = xs, d = xs
        for j in 0..<n {
            xs[j] = Double(1 + Int(rng.uniformInt(8))) / 4
            let delta = Double(rng.uniformInt(15) - 7 + offset) * 0x1p-30
            x[j] = xs[j] + delta
            d[j] = 2 * xs[j] * delta + delta * delta
        }
        var y = [Double](repeating: 0, count: m), e = y
        for i in 0..<m {
            for j in 0..<n {
                y[i] += a[i * n + j] * xs[j] * xs[j]
                e[i] += a[i * n + j] * d[j]
            }
        }
        let problem = try Problem(A: Matrix(rows: m, cols: n, storage: a)!, y: y, depth: 2)
        return Exact(problem: problem, x: x, e: e)
    }

    static func residualError(_ ws: LossWorkspace, at x: [Double], exact e: [Double]) -> Double {
        x.withUnsafeBufferPointer { _ = ws.loss(at: $0.baseAddress!) }
        var err = 0.0
        for i in 0..<e.count { err = max(err, abs(ws.residual[i] - e[i])) }
        return err / e.reduce(0) { max($0, abs($1)) }
    }

    static let promise = LossWorkspace.accuracyFactor * Double.ulpOfOne

    @Test("The residual is accurate near a zero, also from a moved reference")
    func accurateNearZero() throws {
        let first = try Self.exact()
        let ws = LossWorkspace(problem: first.problem)
        let err1 = Self.residualError(ws, at: first.x, exact: first.e)
        #expect(err1 <= Self.promise, "relative error \(err1)")
        #expect(ws.rebases == 1)
        // A nearby point (other δ, same A, y): served from the reference.
        let second = try Self.exact(offset: 1)
        #expect(second.problem.y == first.problem.y)
        let err2 = Self.residualError(ws, at: second.x, exact: second.e)
        #expect(err2 <= Self.promise, "relative error \(err2)")
        #expect(ws.rebases <= 2)
        // Far from a zero the direct sum is used (no reference needed).
        let far = LossWorkspace(problem: first.problem)
        _ = [Double](repeating: 1, count: first.problem.n).withUnsafeBufferPointer { far.loss(at: $0.baseAddress!) }
        #expect(far.rebases == 0)
    }

    @Test("A NaN residual is not taken for a small one (no reference at a NaN state)")
    func nanStateDoesNotRebase() throws {
        let p = try Problem(A: Matrix(rowArrays: [[1, -1], [-1, 1]])!, y: [0.5, 0.5], depth: 2)
        let ws = LossWorkspace(problem: p)
        let value = [Double.nan, 1].withUnsafeBufferPointer { ws.loss(at: $0.baseAddress!) }
        #expect(value.isNaN)
        #expect(ws.rebases == 0)
    }

    @Test("Companion: the direct sum misses the promise on the same data")
    func directSumIsNoisy() throws {
        let data = try Self.exact()
        let plain = LossWorkspace(problem: data.problem, accurateResidual: false)
        let err = Self.residualError(plain, at: data.x, exact: data.e)
        #expect(err > 100 * Self.promise, "direct-sum relative error \(err)")
    }

    @Test("The reference path agrees with a fresh double-double sum", arguments: [1, 2, 3])
    func referencePathMatchesRebase(depth: Int) throws {
        let p0 = try Fixture.problem(m: 8, n: 30, depth: depth, seed: 5)
        // A point with (nearly) zero loss: y := A x*^L, then perturb.
        let xs = Fixture.positivePoint(p0.n, seed: 9)
        let y = p0.matrix.multiply(xs.map { ipow($0, depth) })
        let p = try Problem(A: p0.matrix, y: y, depth: depth)
        func near(_ scale: Double, _ k: Int) -> [Double] {
            xs.enumerated().map { j, v in v * (1 + scale * sin(Double(j * 7 + k))) }
        }
        let ws = LossWorkspace(problem: p)
        _ = near(1e-9, 1).withUnsafeBufferPointer { ws.loss(at: $0.baseAddress!) }
        let before = ws.rebases
        let x2 = near(1.3e-9, 2)
        _ = x2.withUnsafeBufferPointer { ws.loss(at: $0.baseAddress!) }
        #expect(ws.rebases == before, "the second point should be served by the reference")
        let fresh = LossWorkspace(problem: p)
        _ = x2.withUnsafeBufferPointer { fresh.loss(at: $0.baseAddress!) }
        #expect(fresh.rebases == 1)
        let scale = fresh.residual.reduce(0) { max($0, abs($1)) }
        var diff = 0.0
        for i in 0..<p.m { diff = max(diff, abs(ws.residual[i] - fresh.residual[i])) }
        #expect(diff <= 2 * Self.promise * scale, "depth \(depth): \(diff) vs ‖e‖∞ \(scale)")
    }

    @Test("A simulation run twice gives the same numbers (the reference does not carry over)",
          arguments: ["bdf", "msbdf"])
    func rerunIsReproducible(method: String) throws {
        let text = BenchSuite.stiffCases[0].config.replacingOccurrences(of: #""method": "auto""#,
                                                                          with: #""method": "\#(method)""#)
        let sim = Simulation(config: try SimulationConfig.parse(text))
        let first = sim.run(recordTrajectory: false)
        let second = sim.run(recordTrajectory: false)
        #expect(first.status == .converged)
        #expect(first.stats.acceptedSteps == second.stats.acceptedSteps)
        #expect(first.stats.rhsEvaluations == second.stats.rhsEvaluations)
        let same = first.state == second.state
        #expect(same, "final states differ (max |Δ| \(zip(first.state, second.state).map { abs($0 - $1) }.max() ?? 0))")
    }

    @Test("Companion: a reference left from near the end changes the numbers at the start; reset undoes it")
    func staleReferenceChangesTheStart() throws {
        let sim = Simulation(config: try SimulationConfig.parse(BenchSuite.stiffCases[0].config))
        let end = sim.run(recordTrajectory: false).x
        let x0 = sim.config.x0
        let fresh = LossWorkspace(problem: sim.flow.problem)
        _ = x0.withUnsafeBufferPointer { fresh.loss(at: $0.baseAddress!) }
        let ws = LossWorkspace(problem: sim.flow.problem)
        _ = end.withUnsafeBufferPointer { ws.loss(at: $0.baseAddress!) }  // a reference near the end
        #expect(ws.rebases == 1)
        _ = x0.withUnsafeBufferPointer { ws.loss(at: $0.baseAddress!) }
        #expect(ws.residual != fresh.residual, "the stale reference should round the start differently")
        ws.reset()
        _ = x0.withUnsafeBufferPointer { ws.loss(at: $0.baseAddress!) }
        #expect(ws.residual == fresh.residual)
    }

    /// `Problem.residualULPSpread` against the residual itself: moving one weight by one ulp
    /// moves the (compensated) residual by at most the spread, and the spread is at most the
    /// sum of those moves (it is the norm of their absolute sum). Signed, depth 4, weights
    /// spread over four decades, near a zero of the loss.
    @Test("residualULPSpread bounds the residual's move under one-ulp changes of each weight")
    func ulpSpreadBoundsMoves() throws {
        let rng = RNG(seed: 11)
        let m = 6, n = 9
        let a = (0..<(m * n)).map { _ in rng.gaussian() }
        let x = (0..<(2 * n)).map { _ in Foundation.pow(10, 4 * rng.uniform() - 1) }
        // y = Ã x⁴ (rounded): a residual near zero, so that its own rounding (ε|r|) stays far
        // below the one-ulp moves (about 4ε x⁴|a| for x up to 1e3).
        let p0 = try Problem(A: Matrix(rows: m, cols: n, storage: a)!, y: [Double](repeating: 0, count: m), depth: 4, signed: true)
        let p = try Problem(A: p0.A, y: p0.accurateResidual(x), depth: 4, signed: true)
        let spread = p.residualULPSpread(x)
        let r0 = p.accurateResidual(x)
        var largest = 0.0, sum = 0.0
        for j in 0..<x.count {
            var xj = x
            xj[j] = x[j].nextUp
            let r1 = p.accurateResidual(xj)
            let move = zip(r1, r0).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
            largest = max(largest, move)
            sum += move
        }
        #expect(largest > 0)
        #expect(largest <= spread * (1 + 1e-6), "largest move \(largest), spread \(spread)")
        #expect(spread <= sum * (1 + 1e-6), "spread \(spread), sum of moves \(sum)")
    }
}
