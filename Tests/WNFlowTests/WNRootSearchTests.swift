import Foundation
import GSLKit
import Testing
@testable import WNFlow

/// The derivative information the WN root search uses (MATH.md §4 "WN limit"), checked
/// against finite differences, and the pieces of the search built on it.
@Suite("Theory: WN root search derivatives")
struct WNRootSearchTests {
    /// A Gaussian problem with M = 15, N = 40 and a random positive x₀ of norm ≈ 0.1.
    private func setup(seed: UInt) throws -> (A: Matrix, y: [Double], x0: [Double]) {
        let p = try Fixture.problem(m: 15, n: 40, depth: 2, seed: seed, sparsity: 3)
        let x0 = Fixture.positivePoint(40, seed: seed + 100, scale: 0.02)
        return (p.A, p.y, x0)
    }

    @Test("λ' = dλ/dlog ρ (L = 2) matches central differences of z")
    func lambdaSlopeMatchesFiniteDifferences() throws {
        let (a, y, x0) = try setup(seed: 11)
        let lx0 = x0.map { log($0) }
        let ws = DualWorkspace(A: a, y: y)
        for ell in [0.0, 2.0, 5.0] {
            var lam: [Double]? = nil
            _ = try LimitPredictor.entropic(A: a, y: y, logX0: lx0.map { $0 - ell }, warmStart: &lam, workspace: ws)
            ws.factorNearBest = false  // a fresh H at the solution
            var slope = [Double](repeating: 0, count: a.rows)
            let ok = slope.withUnsafeMutableBufferPointer { ws.entropicSlope(ws.best, into: $0.baseAddress!) }
            #expect(ok)
            // dz/dℓ = z ⊙ (Aᵀλ' − 2) (compared through z: log z of the tiny entries is
            // ill-determined at the solver's tolerance, their z is not).
            let z = ws.best.zArray
            let dz = zip(z, a.multiplyTransposed(slope)).map { $0 * ($1 - 2) }
            // h balances the O(h²) truncation against the solver's noise in z divided by h.
            let h = 1e-4
            var lp: [Double]? = nil, lm: [Double]? = nil
            let zp = try LimitPredictor.entropic(A: a, y: y, logX0: lx0.map { $0 - ell - h }, warmStart: &lp)
            let zm = try LimitPredictor.entropic(A: a, y: y, logX0: lx0.map { $0 - ell + h }, warmStart: &lm)
            let fd = zip(zp.z, zm.z).map { ($0 - $1) / (2 * h) }
            let err = zip(dz, fd).map { abs($0 - $1) }.max()! / fd.map(abs).max()!
            #expect(err <= 1e-6, "log rho \(ell): dz/d log rho differs from central differences by \(err)")
        }
    }

    @Test("φ'(g) of the evaluator matches central differences of φ")
    func phiSlopeMatchesFiniteDifferences() throws {
        let (a, y, x0) = try setup(seed: 12)
        let g0 = norm2(x0)
        for etaG in [0.05, 0.2] {
            let c = 1 / (2 * etaG)
            for g in [0.5, 1.0, 1.7] {
                let eval = try WeightNormLimit.Evaluator(A: a, y: y, depth: 2, x0: x0, g0: g0, c: c)
                eval.exactSlopes = true
                let v = try eval.evaluate(g)
                let d = try #require(v.slope)
                // The default reuses the Newton iteration's last factor: close, not exact.
                let reused = try #require(try WeightNormLimit.Evaluator(A: a, y: y, depth: 2, x0: x0, g0: g0, c: c)
                    .evaluate(g).slope)
                #expect(abs(reused - d) <= 1e-3 * max(abs(d), 1))
                let h = 1e-6 * g
                let fp = try WeightNormLimit.Evaluator(A: a, y: y, depth: 2, x0: x0, g0: g0, c: c).evaluate(g + h).phi
                let fm = try WeightNormLimit.Evaluator(A: a, y: y, depth: 2, x0: x0, g0: g0, c: c).evaluate(g - h).phi
                let fd = (fp - fm) / (2 * h)
                #expect(abs(d - fd) <= 1e-6 * max(abs(fd), 1), "eta_g \(etaG) g \(g): phi' \(d) vs central difference \(fd)")
            }
        }
    }

    @Test("a sign-only evaluation has the sign of the full one, and the search still finds the same root")
    func signOnlyEvaluations() throws {
        let (a, y, x0) = try setup(seed: 13)
        let g0 = norm2(x0), c = 1 / (2 * 0.05)
        var early = 0
        for g in stride(from: 0.2, through: 3.0, by: 0.2) {
            let loose = try WeightNormLimit.Evaluator(A: a, y: y, depth: 2, x0: x0, g0: g0, c: c)
            _ = try loose.evaluate(g * 0.9)  // a warm start at a neighbouring g, as in the scan
            let fl = try loose.evaluate(g, signOnly: true).phi
            if loose.workspace!.stoppedEarly { early += 1 }
            let ft = try WeightNormLimit.Evaluator(A: a, y: y, depth: 2, x0: x0, g0: g0, c: c).evaluate(g).phi
            #expect((fl < 0) == (ft < 0), "g \(g): sign-only phi \(fl), full phi \(ft)")
        }
        #expect(early > 0, "no evaluation stopped early")
        // The search result is a fully solved point: g_∞ = ‖x_∞‖ to rounding.
        let wn = try WeightNormLimit.constantRate(A: a, y: y, depth: 2, x0: x0, etaG: 0.05, etaV: 1)
        #expect(abs(wn.gInf - norm2(wn.x)) <= 1e-13 * wn.gInf)
        #expect(wn.gf.kktResidual <= 1e-13)
    }

    @Test("the chord shortcut settles most grid points and leaves the roots as they are", arguments: [0.05, 0.2])
    func chordShortcutKeepsTheRoots(etaG: Double) throws {
        for seed in [UInt(14), 15, 16] {
            let (a, y, x0) = try setup(seed: seed)
            let g0 = norm2(x0), c = 1 / (2 * etaG)
            func search(chord: Bool) throws -> (roots: [Double], gInf: Double, chordStops: Int, sign: [Bool]) {
                let eval = try WeightNormLimit.Evaluator(A: a, y: y, depth: 2, x0: x0, g0: g0, c: c)
                eval.workspace!.chordShortcut = chord
                // The scan's pattern: sign-only evaluations along a log grid, warm-started.
                var sign: [Bool] = []
                for k in 0..<24 {
                    let g = g0 * pow(40, Double(k) / 23)
                    sign.append(try eval.evaluate(g, signOnly: true).phi < 0)
                }
                let wn = try WeightNormLimit.constantRate(A: a, y: y, depth: 2, x0: x0, etaG: etaG, etaV: 1, vNorm: 1,
                                                          scanPoints: 24, chordShortcut: chord)
                return (wn.roots, wn.gInf, eval.workspace!.chordStops, sign)
            }
            let with = try search(chord: true), without = try search(chord: false)
            #expect(without.chordStops == 0)
            #expect(with.chordStops >= 8, "seed \(seed): only \(with.chordStops) of 24 grid points settled by chord steps")
            #expect(with.sign == without.sign, "seed \(seed): signs of phi differ on the grid")
            // Each sign checked against a full solve.
            for k in 0..<24 {
                let g = g0 * pow(40, Double(k) / 23)
                let full = try WeightNormLimit.Evaluator(A: a, y: y, depth: 2, x0: x0, g0: g0, c: c).evaluate(g).phi
                #expect(with.sign[k] == (full < 0), "seed \(seed) g \(g)")
            }
            #expect(with.roots.count == without.roots.count)
            for (r, s) in zip(with.roots, without.roots) { #expect(abs(r - s) <= 1e-13 * s) }
            // Close to a root |φ| is small, and a chord stop must not decide the sign early.
            for r in with.roots {
                for d in [3e-2, -3e-2, 1e-3, -1e-3, 1e-5, -1e-5, 1e-7, -1e-7] {
                    let g = r * (1 + d)
                    let eval = try WeightNormLimit.Evaluator(A: a, y: y, depth: 2, x0: x0, g0: g0, c: c)
                    // The factor and warm start of a point half a scan interval away, or farther.
                    _ = try eval.evaluate(r * (d > 0 ? 1.4 : 0.7), signOnly: true)
                    let fast = try eval.evaluate(g, signOnly: true).phi
                    let full = try WeightNormLimit.Evaluator(A: a, y: y, depth: 2, x0: x0, g0: g0, c: c).evaluate(g).phi
                    #expect((fast < 0) == (full < 0), "seed \(seed): g = root·(1 + \(d)): sign-only phi \(fast), full \(full)")
                }
            }
        }
    }

    @Test("the bracket grows by octaves while φ(g_hi) ≥ 0, and the first root above g₀ is found")
    func bracketExtension() throws {
        // A = [1, −1], y = 1: S₊ = {z₁ − z₂ = 1} is unbounded, and from x̃₀ = s(1, 1) the GF limit
        // has ‖X‖ = (1 + 4s⁴)^{1/4} > ‖x̃₀‖, so φ > 0 until the magnification's c g² term
        // shrinks x̃₀ (c = 1e-3): the root lies above the first bracket end 2 max(g₀, ‖X(x₀)‖).
        let a = Matrix(rows: 1, cols: 2, storage: [1, -1])!
        let y = [1.0], x0 = [0.3, 0.3]
        let etaG = 500.0, c = 1 / (2 * etaG)
        let g0 = norm2(x0)
        let wn = try WeightNormLimit.constantRate(A: a, y: y, depth: 2, x0: x0, etaG: etaG, etaV: 1)
        let eval = try WeightNormLimit.Evaluator(A: a, y: y, depth: 2, x0: x0, g0: g0, c: c)
        let gHi = 2 * max(g0, try eval.evaluate(g0).phi + g0)
        #expect(wn.gInf > gHi, "g_inf \(wn.gInf) should lie beyond the first bracket end \(gHi)")
        let atRoot = try WeightNormLimit.Evaluator(A: a, y: y, depth: 2, x0: x0, g0: g0, c: c).evaluate(wn.gInf).phi
        #expect(abs(atRoot) <= 1e-12 * wn.gInf)
        // No sign change before it: φ > 0 on a fine grid from g₀ up to the root.
        for k in 0..<200 {
            let g = g0 * pow(wn.gInf * (1 - 1e-6) / g0, Double(k) / 199)
            let f = try WeightNormLimit.Evaluator(A: a, y: y, depth: 2, x0: x0, g0: g0, c: c).evaluate(g).phi
            #expect(f > 0, "phi(\(g)) = \(f) before the reported root \(wn.gInf)")
        }
        #expect(!wn.warnings.contains { $0.contains("no g above g0") })
    }

    @Test("the Hermite start lies inside the bracket, at the root for a cubic")
    func hermiteRoot() {
        // f(x) = (x − 0.3)(x² + 1): a cubic, so its Hermite interpolant is exact.
        func f(_ x: Double) -> Double { (x - 0.3) * (x * x + 1) }
        func df(_ x: Double) -> Double { (x * x + 1) + 2 * x * (x - 0.3) }
        let r = WeightNormLimit.hermiteRoot(0, f(0), df(0), 1, f(1), df(1))
        #expect(abs(r - 0.3) <= 1e-12)
        // A non-cubic function: strictly inside and close to the root log 4.
        let r2 = WeightNormLimit.hermiteRoot(1, exp(1) - 4, exp(1), 2, exp(2) - 4, exp(2))
        #expect(r2 > 1 && r2 < 2 && abs(r2 - log(4)) <= 0.05)
    }
}
