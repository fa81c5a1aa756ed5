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
                // λ' kept from a point 1e-11 away in g (log ρ within `slopeReuse`): still this
                // close; from a point 10% away it must be computed afresh.
                let near = try WeightNormLimit.Evaluator(A: a, y: y, depth: 2, x0: x0, g0: g0, c: c)
                near.exactSlopes = true
                _ = try near.evaluate(g * (1 + 1e-11))
                let kept = try #require(try near.evaluate(g).slope)
                #expect(abs(kept - d) <= 1e-8 * max(abs(d), 1))
                let far = try WeightNormLimit.Evaluator(A: a, y: y, depth: 2, x0: x0, g0: g0, c: c)
                far.exactSlopes = true
                _ = try far.evaluate(g * 0.9)
                #expect(abs(try #require(try far.evaluate(g).slope) - d) <= 1e-8 * max(abs(d), 1))
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
                                                          scanPoints: 24, chordShortcut: chord, search: .scan)
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
        let wn = try WeightNormLimit.constantRate(A: a, y: y, depth: 2, x0: x0, etaG: etaG, etaV: 1, vNorm: 1,
                                                  scanPoints: 24, chordShortcut: true, search: .scan)
        // The Newton search of the default finds the same root.
        let newton = try WeightNormLimit.constantRate(A: a, y: y, depth: 2, x0: x0, etaG: etaG, etaV: 1)
        #expect(abs(newton.gInf - wn.gInf) <= 1e-13 * wn.gInf)
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

    @Test("L = 2: ‖X‖ never grows with log ρ, and at most as fast as x̃₀ shrinks (docs/math.md §4b)")
    func normSlopeBounds() throws {
        // ψ(ℓ) = log‖X(x₀e^{−ℓ})‖: ψ' = Σ z(Aᵀλ' − 2)/(2Σz) must lie in [−1, 0], and Σz must not
        // increase along ℓ. Checked from large x̃₀ (ℓ = −3) to tiny (ℓ = 40), where ψ' → 0.
        for seed in [UInt(21), 22, 23] {
            let (a, y, x0) = try setup(seed: seed)
            let lx0 = x0.map { log($0) }
            let ws = DualWorkspace(A: a, y: y)
            var lam: [Double]? = nil
            var previous = Double.infinity
            var steepest = 0.0, flattest = -1.0
            for k in 0...86 {
                let ell = -3 + 0.5 * Double(k)
                _ = try LimitPredictor.entropic(A: a, y: y, logX0: lx0.map { $0 - ell }, warmStart: &lam, workspace: ws)
                ws.factorNearBest = false
                var slope = [Double](repeating: 0, count: a.rows)
                #expect(slope.withUnsafeMutableBufferPointer { ws.entropicSlope(ws.best, into: $0.baseAddress!) })
                let z = ws.best.zArray
                let sum = z.reduce(0, +)
                let u = a.multiplyTransposed(slope)
                let psi = zip(z, u).map { $0 * ($1 - 2) }.reduce(0, +) / (2 * sum)
                #expect(psi >= -1 - 1e-9 && psi <= 1e-9, "seed \(seed) log rho \(ell): psi' = \(psi)")
                #expect(sum <= previous * (1 + 1e-12), "seed \(seed) log rho \(ell): sum z grew from \(previous) to \(sum)")
                previous = sum
                steepest = min(steepest, psi); flattest = max(flattest, psi)
            }
            // Both ends of the interval are approached: not a vacuous check.
            #expect(steepest < -0.5 && flattest > -1e-3, "seed \(seed): psi' only in [\(steepest), \(flattest)]")
        }
    }

    @Test("L = 2: log‖X(x₀/ρ(g))‖ − log g is strictly decreasing in g, so φ has one root")
    func phiIsDecreasing() throws {
        let (a, y, x0) = try setup(seed: 24)
        let g0 = norm2(x0)
        for etaG in [0.002, 0.05, 2.0] {
            let c = 1 / (2 * etaG)
            let eval = try WeightNormLimit.Evaluator(A: a, y: y, depth: 2, x0: x0, g0: g0, c: c)
            var last: (g: Double, big: Double)? = nil
            var signChanges = 0
            for k in 0...120 {
                let g = g0 * pow(10, 3 * Double(k) / 120)  // g₀ … 1000 g₀
                guard let v = try? eval.evaluate(g) else { continue }
                let big = log(v.phi + g) - log(g)
                if let last {
                    // Φ(t₂) − Φ(t₁) ≤ −min(1, 2c g₁²)(t₂ − t₁), plus the solver's noise in log ‖X‖:
                    // ~1e-11, and the rounding of log x̃₀ = log x₀ − log ρ, ε|log ρ| per entry
                    // (with OpenBLAS's Nehalem kernels Φ rose 1.3e-9 above the bound here).
                    let bound = -min(1, 2 * c * last.g * last.g) * log(g / last.g)
                    let noise = 1e-9 + 50 * Double.ulpOfOne * abs(WeightNormLimit.logMagnification(g: g, g0: g0, c: c))
                    #expect(big - last.big <= bound + noise, "eta_g \(etaG): Phi rose from g = \(last.g) to \(g)")
                    if (big < 0) != (last.big < 0) { signChanges += 1 }
                }
                last = (g, big)
            }
            #expect(signChanges == 1, "eta_g \(etaG): \(signChanges) sign changes of phi")
        }
    }

    @Test("L = 2: the Newton search and the scan find the same root", arguments: [0.002, 0.05, 2.0])
    func newtonSearchMatchesScan(etaG: Double) throws {
        var compared = 0
        for (m, n, seed) in [(10, 25, UInt(1)), (20, 50, 2), (40, 100, 3)] {
            let p = try Fixture.problem(m: m, n: n, seed: seed, sparsity: max(2, m / 8))
            for scale in [1e-3, 0.1, 1.0] {
                for dir in [InitDirection.uniform, .absGaussian(seed: seed + 7)] {
                    let x0 = dir.vector(n).map { $0 * scale }
                    let scan = try WeightNormLimit.constantRate(A: p.A, y: p.y, depth: 2, x0: x0, etaG: etaG, etaV: 1,
                                                                vNorm: 1, scanPoints: 24, chordShortcut: true, search: .scan)
                    let newton = try WeightNormLimit.constantRate(A: p.A, y: p.y, depth: 2, x0: x0, etaG: etaG, etaV: 1)
                    let label = "M \(m) scale \(scale) eta_g \(etaG)"
                    #expect(scan.roots.count == 1, "\(label): the scan found roots \(scan.roots)")
                    #expect(newton.roots == [newton.gInf])
                    #expect(abs(newton.gInf - scan.gInf) <= 1e-12 * scan.gInf, "\(label): \(newton.gInf) vs \(scan.gInf)")
                    #expect(Fixture.maxRelativeDifference(newton.z, scan.z) <= 1e-10, "\(label)")
                    #expect(abs(norm2(newton.x) - newton.gInf) <= 1e-11 * newton.gInf)
                    #expect(newton.gf.kktResidual <= 1e-12)
                    compared += 1
                }
            }
        }
        #expect(compared == 18)
    }

    @Test("L = 2: a root just below g₀, past grid points where the GF predictor fails, is found by both searches, and it is where the flow ends")
    func rootBesideFailingGridPoints() throws {
        // x₀ of norm 5, far above the solution's, and c g₀² = 250: the scan's grid points
        // below g₀ have log ρ ≈ −200, where the GF predictor overflows. Before stop 27 the
        // scan reported no root here: the refinement of its bracket stepped onto points where
        // the predictor fails and gave up (without `refineAcrossFailures` it still does). The
        // Newton search on log g never leaves the evaluable stretch. Both find the same root.
        let p = try Fixture.problem(m: 10, n: 25, seed: 1, sparsity: 2)
        let x0 = InitDirection.uniform.vector(25).map { 5 * $0 }
        let scanned = try WeightNormLimit.constantRate(A: p.A, y: p.y, depth: 2, x0: x0, etaG: 0.05, etaV: 1, vNorm: 1,
                                                       scanPoints: 24, chordShortcut: true, search: .scan)
        let wn = try WeightNormLimit.constantRate(A: p.A, y: p.y, depth: 2, x0: x0, etaG: 0.05, etaV: 1)
        #expect(wn.gInf < 5 && wn.gInf > 4.9)
        #expect(scanned.roots.count == 1 && abs(scanned.gInf - wn.gInf) <= 1e-13 * wn.gInf)
        // Independently: the GF limit from x₀/ρ(g_∞) has norm g_∞.
        let logRho = try #require(wn.logRho)
        let gf = try LimitPredictor.gradientFlow(A: p.A, y: p.y, depth: 2, logX0: x0.map { log($0) - logRho })
        #expect(abs(norm2(gf.x) - wn.gInf) <= 1e-12 * wn.gInf)
        // And the integrated WN flow ends there.
        let sim = Simulation(config: Fixture.config(p, flow: .wn, x0: x0, etaG: 0.05)).run(recordTrajectory: false)
        #expect(sim.status == .converged)
        #expect(Fixture.maxRelativeDifference(sim.z, wn.z) <= 1e-9)
        #expect(abs((sim.g ?? 0) - wn.gInf) <= 1e-9 * wn.gInf)
    }

    @Test("the scan (L = 3) finds a root next to grid points where the GF predictor fails")
    func scanLooksBesideFailedPoints() throws {
        // Figure 4's L = 3 WN run at α = 1 (M = 25, N = 100, s = 6, x₀ = (α/√N)^{1/3}·1,
        // g₀ = 4.64): g₀ is just above the limit's norm, and the downward scan's next grid
        // point (g ≈ 2.1, log ρ ≈ −180) overflows the GF predictor. The scan used to skip it
        // and report no root (`predict` exit 3); it now bisects towards the failure.
        let p = try Fixture.problem(m: 25, n: 100, depth: 3, seed: 1, sparsity: 6)
        let x0 = [Double](repeating: pow(0.1, 1.0 / 3), count: 100)
        let wn = try WeightNormLimit.constantRate(A: p.A, y: p.y, depth: 3, x0: x0, etaG: 0.05, etaV: 1)
        #expect(wn.roots.count == 1)
        #expect(wn.gInf < norm2(x0) && wn.gInf > 4.6)
        let logRho = try #require(wn.logRho)
        let gf = try LimitPredictor.gradientFlow(A: p.A, y: p.y, depth: 3, logX0: x0.map { log($0) - logRho })
        #expect(abs(norm2(gf.x) - wn.gInf) <= 1e-12 * wn.gInf)
        let sim = Simulation(config: Fixture.config(p, flow: .wn, x0: x0, etaG: 0.05)).run(recordTrajectory: false)
        #expect(sim.status == .converged)
        #expect(abs((sim.g ?? 0) - wn.gInf) <= 1e-9 * wn.gInf)
        #expect(Fixture.maxRelativeDifference(sim.z, wn.z) <= 1e-9)
    }

    @Test("signed L = 5: a root beside g₀ is found past a stretch where the GF predictor fails, and the flow ends there")
    func rootPastFailingStretch() throws {
        // A random differential test's case (signed, M = 5, N = 15, x₀ spread over six decades,
        // c g₀² = 350 with ‖v₀‖ = 0.21): φ(g₀) = −17.6 and the root is 0.9% below g₀. Below
        // about 19.02 the GF predictor fails (x̃₀ = x₀/ρ grows like e^{c(g₀² − g²)}), except
        // at g = 18.26, where the scan's edge search landed with φ > 0; Brent on [18.26, g₀]
        // stepped into the failing stretch and `predict` reported no root (exit 3).
        let p = try Fixture.problem(m: 5, n: 15, depth: 5, signed: true, seed: 11614, sparsity: 2)
        let x0 = [0.00020935687208639152, 13.648356311779775, 0.021870206575566303, 0.01239254759239009,
                  0.01103225733287949, 0.0001855629298374946, 0.017352655863240384, 0.026112291719244108,
                  0.0008266158932820253, 0.018821751824628134, 0.001290657119845684, 0.00989426416250193,
                  7.490776466195334e-05, 0.003097809951499733, 0.06271937749748009, 6.584829555163105,
                  0.0032428227488911473, 0.0011896760742879328, 6.356710704886201e-05, 0.0011196737772857473,
                  3.688505787051478e-05, 10.538206626087447, 2.3346529117371075e-05, 0.0005632178116914265,
                  0.21740474409902535, 0.016066433456255642, 3.7641802704807884e-05, 5.259888803791007,
                  6.72626411261354e-05, 3.1493885216882745e-05]
        let (etaG, etaV, vNorm) = (4.677499604021707, 0.3963134953210077, 0.21062683736134705)
        let wn = try WeightNormLimit.constantRate(A: p.matrix, y: p.y, depth: 5, x0: x0, etaG: etaG, etaV: etaV,
                                                  vNorm: vNorm)
        let g0 = norm2(x0)
        #expect(wn.gInf < g0 && wn.gInf > 0.99 * g0)
        #expect(abs(norm2(wn.x) - wn.gInf) <= 1e-12 * wn.gInf)
        var config = Fixture.config(p, flow: .wn, x0: x0, etaG: etaG)
        config.model.etaV = etaV
        config.vNorm = vNorm
        let sim = Simulation(config: config).run(recordTrajectory: false)
        #expect(sim.status == .converged)
        #expect(abs((sim.g ?? 0) - wn.gInf) <= 1e-9 * wn.gInf)
        // (rtol 1e-10: the run's x is 1.3e-8 off, its end-to-end z 1e-7.)
        #expect(Fixture.maxRelativeDifference(sim.x, wn.x) <= 1e-7)
        #expect(Fixture.maxRelativeDifference(sim.z, p.endToEnd(wn.x)) <= 1e-6)
    }

    @Test("L = 5 with the weighted-ℓ1 LP answering part of the scan: no spurious root where φ switches methods")
    func noSpuriousRootAtMethodSwitch() throws {
        // Random differential test's case: M = 3, N = 14, x₀ of two values 2.3e3 apart. Above
        // g ≈ 1.59 the GF predictor answers with the weighted-ℓ1 LP; GLPK's LP stopped 36%
        // above its minimum there, φ jumped from −0.05 (Newton) to +0.03 (LP), and `predict`
        // reported g∞ = 1.610 at that jump while the flow ends at 1.5303.
        let p = try Fixture.problem(m: 3, n: 14, depth: 5, seed: 803355, sparsity: 1)
        let big: Set = [2, 6, 8, 10, 12]
        let x0 = (0..<14).map { big.contains($0) ? 0.0018244357496007468 : 7.831521617852828e-07 }
        let (etaG, etaV, vNorm) = (0.5961848530085112, 6.382249530355291, 1.5276963645617507)
        let wn = try WeightNormLimit.constantRate(A: p.A, y: p.y, depth: 5, x0: x0, etaG: etaG, etaV: etaV, vNorm: vNorm)
        var config = Fixture.config(p, flow: .wn, x0: x0, etaG: etaG)
        config.model.etaV = etaV
        config.vNorm = vNorm
        let sim = Simulation(config: config).run(recordTrajectory: false)
        #expect(sim.status == .converged)
        #expect(abs((sim.g ?? 0) - wn.gInf) <= 1e-8 * wn.gInf, "predicted \(wn.gInf), integrated \(sim.g ?? .nan)")
        #expect(Fixture.maxRelativeDifference(sim.z, wn.z) <= 1e-6)
    }

    /// The g part of the L ≥ 3 error estimate covers entries the residual leaves loose (a
    /// random differential test's case: signed WN, L = 5, M = 4, N = 20, two levels of x₀
    /// 1e4 apart). One entry's z came out 8.7e-8 where the integrated flow has 1.5e-9; that is
    /// invisible in z but moves g by 2.2e-4, while the estimate said 1.8e-10 and `verify`
    /// would have failed a correct run. The flow's g∞ below is `wnflow simulate` on this
    /// config at rtol 1e-10: converged at t = 9.5e17, loss 2.1e-23 (3.9 s, too slow to run here).
    @Test("the g error estimate covers an entry the residual leaves loose (signed L = 5)")
    func gErrorEstimateCoversLooseEntries() throws {
        let text = """
{"problem":{"A":[[-1.4712724685668945,-0.2874336242675781,-0.43077564239501953,0.21155548095703125,-\
2.962822914123535,0.05138874053955078,-0.16773033142089844,0.12769222259521484,-0.4813098907470703,-\
0.0416107177734375,-1.7200031280517578,-0.7591285705566406,-1.0925779342651367,1.0435447692871094,0.\
4239187240600586,-0.70294189453125,-1.911118507385254,-0.04708671569824219,0.3846855163574219,-1.225\
7699966430664],[-0.05430316925048828,-0.3594970703125,0.38306713104248047,0.040615081787109375,-0.58\
69283676147461,-0.36226463317871094,1.3502025604248047,0.7236051559448242,1.238931655883789,0.205717\
0867919922,0.2831001281738281,1.4340143203735352,-0.4691200256347656,0.11207389831542969,0.233277320\
8618164,-1.3454103469848633,2.0771360397338867,-1.7504758834838867,-1.511693000793457,-0.97126197814\
94141],[0.1412506103515625,0.7939395904541016,1.656174659729004,0.6266279220581055,-0.78154182434082\
03,0.44863414764404297,-1.673884391784668,1.4807634353637695,-0.18620872497558594,-2.474432945251465\
,-0.1501941680908203,0.36490631103515625,-1.3432397842407227,-0.6810646057128906,-0.4870576858520508\
,-0.11296367645263672,-1.400496482849121,0.5282373428344727,-0.4505748748779297,-2.4325103759765625]\
,[-1.2717514038085938,1.1666021347045898,1.5931053161621094,0.5545768737792969,-0.07320594787597656,\
-0.6352291107177734,-1.660038948059082,-1.5916633605957031,1.3807964324951172,-2.554941177368164,0.1\
0034847259521484,1.7389965057373047,0.49306774139404297,-1.4606008529663086,-0.35837268829345703,0.5\
617694854736328,-1.0558786392211914,-0.363677978515625,0.9007425308227539,-1.0907115936279297]],"y":\
[-1.332835078239441,0.25167592242360115,3.69041661079973,5.153203468769789],"ground_truth":[0.0,0.0,\
0.0,0.0,0.0,0.0,0.0,0.0,0.0,-1.1494140625,0.0,0.419921875,0.0,-1.017578125,0.0,0.0,0.0,0.0,0.0,0.0]}\
,"model":{"flow":"wn","depth":5,"signed":true,"eta_g":0.08563952374074166,"eta_v":0.0071449822024398\
03},"init":{"x0":[8.671688862975454e-08,8.671688862975454e-08,8.671688862975454e-08,8.67168886297545\
4e-08,8.671688862975454e-08,8.671688862975454e-08,8.671688862975454e-08,8.671688862975454e-08,8.6716\
88862975454e-08,8.671688862975454e-08,8.671688862975454e-08,0.0008818834814314898,8.671688862975454e\
-08,8.671688862975454e-08,8.671688862975454e-08,8.671688862975454e-08,8.671688862975454e-08,8.671688\
862975454e-08,8.671688862975454e-08,8.671688862975454e-08,8.671688862975454e-08,8.671688862975454e-0\
8,8.671688862975454e-08,0.0008818834814314898,8.671688862975454e-08,8.671688862975454e-08,8.67168886\
2975454e-08,8.671688862975454e-08,8.671688862975454e-08,0.0008818834814314898,8.671688862975454e-08,\
8.671688862975454e-08,8.671688862975454e-08,0.0008818834814314898,8.671688862975454e-08,8.6716888629\
75454e-08,8.671688862975454e-08,8.671688862975454e-08,8.671688862975454e-08,8.671688862975454e-08],"\
v_norm":0.3179561486099684}}
"""
        let cfg = try SimulationConfig.parse(text)
        let pred = try Prediction(config: cfg, limitOnly: true)
        let g = try #require(pred.report.gInf)
        let estimate = try #require(pred.report.prediction.errorEstimate)
        let integrated = 1.6647292558699995
        #expect(abs(g - integrated) / g <= estimate.g, "g \(g), integrated \(integrated), estimate \(estimate.g)")
        // Not far above it either: the largest |cᵀH⁻¹e| over the ellipsoid says 2.3e-3 (10.7×
        // the true 2.2e-4); summing each term's own largest size said 4.0e-3 (18.6×).
        #expect(estimate.g <= 15 * abs(g - integrated) / g, "estimate \(estimate.g)")
    }

    @Test("an effective init whose z overflows at λ = 0 (log ρ below −600) is predicted", arguments: [2, 3])
    func overflowingEffectiveInit(depth: Int) throws {
        // M = 10, N = 25 without the kernel assumption (S₊ bounded, so the limit is finite from
        // any init). WN from x₀ = (3d)^{1/L}, η_g = 0.01: g falls from ‖x₀‖ to about 1, and
        // log ρ_∞ is −699 (L = 2) or −828 (L = 3), so z̃₀ overflows at λ = 0; the dual Newton
        // starts from the LP `minimaxStart` instead (it threw "non-finite values" or
        // "x0^(2-L) overflows" before).
        let p = try Fixture.problem(m: 10, n: 25, depth: depth, seed: 2, sparsity: 2)
        #expect(try !KernelAssumption.check(A: p.A).holds)
        let x0 = InitDirection.uniform.vector(25).map { pow(3 * $0, 1 / Double(depth)) }
        let wn = try WeightNormLimit.constantRate(A: p.A, y: p.y, depth: depth, x0: x0, etaG: 0.01, etaV: 1)
        #expect(try #require(wn.logRho) < -600)
        #expect(wn.gf.kktResidual <= 1e-10)
        // The flow nears that limit only algebraically (entries of z → 0): by t = 1e12 its
        // loss is 1e-22 (L = 2) or 1e-18 (L = 3), and z agrees to what that allows.
        let sim = Simulation(config: Fixture.config(p, flow: .wn, x0: x0, etaG: 0.01)).run(recordTrajectory: false)
        #expect(sim.loss <= 1e-17)
        #expect(Fixture.maxRelativeDifference(sim.z, wn.z) <= (depth == 2 ? 1e-8 : 1e-6))
    }

    @Test("L = 2 with 2cg² = 3.6e9: the root polished in log ρ gives ‖x∞‖ = g∞ and the flow's limit")
    func rootPolishedInLogRho() throws {
        // η_g = 1e-4, ‖v₀‖ = 0.05, ‖x₀‖ = 30: c = 2e6. A g right to 1e-14 leaves ℓ(g) wrong by
        // k·1e-14 = 3.6e-5; unpolished, x∞ was 1.9e-6 off in norm and 3.8e-6 off the flow's.
        let p = try Fixture.problem(m: 40, n: 100, depth: 2, seed: 2, sparsity: 5)
        let x0 = InitDirection.uniform.vector(100).map { 30 * $0 }
        func predict(polish: Bool) throws -> WNLimitPrediction {
            try WeightNormLimit.constantRate(A: p.A, y: p.y, depth: 2, x0: x0, etaG: 1e-4, etaV: 1, vNorm: 0.05,
                                             scanPoints: 24, chordShortcut: true, polish: polish)
        }
        var cfg = Fixture.config(p, flow: .wn, x0: x0, etaG: 1e-4)
        cfg.vNorm = 0.05
        let sim = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(sim.status == .converged)
        let wn = try predict(polish: true)
        #expect(abs(norm2(wn.x) / wn.gInf - 1) <= 1e-13)
        #expect(abs((sim.g ?? 0) / wn.gInf - 1) <= 1e-13)
        #expect(Fixture.maxRelativeDifference(wn.z, sim.z) <= 1e-12)
        // The same search without the polish: these checks would fail.
        let raw = try predict(polish: false)
        #expect(abs(norm2(raw.x) / raw.gInf - 1) > 1e-8)
        #expect(Fixture.maxRelativeDifference(raw.z, sim.z) > 1e-8)
    }

    @Test("one minimax LP serves a root search: shifted (L = 2) and scaled (L ≥ 3) c reuse it exactly")
    func minimaxStartIsCached() throws {
        let (a, y, _) = try setup(seed: 21)
        let rng = RNG(seed: 22)
        // L = 2 (floor 0): c = log z̃₀ near 800, where the kernel assumption bounds t above the floor.
        let c0 = (0..<a.cols).map { _ in 800 + 5 * rng.uniform() }
        let ws = DualWorkspace(A: a, y: y)
        let first = try #require(LimitPredictor.cachedMinimaxStart(ws: ws, c: c0, floor: 0, relation: .shift))
        #expect(first.t > 0)
        for k in [-7.5, 3.0] {
            let moved = c0.map { $0 + k }
            let cached = try #require(LimitPredictor.cachedMinimaxStart(ws: ws, c: moved, floor: 0, relation: .shift))
            let fresh = try #require(LimitPredictor.minimaxStart(A: a, c: moved, floor: 0))
            #expect(abs(cached.t - fresh.t) <= 1e-9 * abs(fresh.t), "shift \(k): cached t \(cached.t), fresh \(fresh.t)")
            #expect(abs(cached.t - first.t - k) <= 1e-9 * abs(first.t))
        }
        #expect(ws.minimaxSolves == 1)
        // A c that is not a shift of the cached one gets its own LP (the cache must not answer it).
        var other = c0
        other[0] += 1
        _ = LimitPredictor.cachedMinimaxStart(ws: ws, c: other, floor: 0, relation: .shift)
        #expect(ws.minimaxSolves == 2)
        // L ≥ 3 (floor −1): c = −b scaled by S; the optimum (above the floor here) scales with it.
        let b0 = (0..<a.cols).map { _ in 0.5 + rng.uniform() }
        let ws3 = DualWorkspace(A: a, y: y)
        let reference = try #require(LimitPredictor.minimaxStart(A: a, c: b0.map { -$0 }, floor: -1))
        #expect(reference.t > -1 && reference.t < 0)
        for s in [1.0, 0.01, 1e-200] {
            let start = try #require(LimitPredictor.cachedMinimaxStart(ws: ws3, c: b0.map { -s * $0 }, floor: -1,
                                                                       relation: .scale))
            #expect(abs(start.t - s * reference.t) <= 1e-9 * s * abs(reference.t), "scale \(s)")
        }
        #expect(ws3.minimaxSolves == 1)
    }

    /// Root searches whose LP starts sit at the floor (no kernel assumption, M = 10, N = 25):
    /// a cache that took t = 1e-8 for c ≈ 7.6e4 as above the floor moved it to t = 1388 and
    /// the search found no root (L = 2, x₀ = (1000d)^{1/2}); one that moved a floor-pinned L = 5
    /// start to λ·1e19 made Newton fail. Each prediction now equals a fresh, uncached solve
    /// at its log ρ.
    @Test("WN root searches from floor-pinned LP starts find the root", arguments: [(2, 1000.0, 0.01), (2, 1e4, 0.1), (5, 0.05, 0.01)])
    func pinnedStartsFindTheRoot(depth: Int, scale: Double, etaG: Double) throws {
        let p = try Fixture.problem(m: 10, n: 25, depth: depth, seed: 2, sparsity: 2)
        let x0 = InitDirection.uniform.vector(25).map { pow(scale * $0, 1 / Double(depth)) }
        let wn = try WeightNormLimit.constantRate(A: p.A, y: p.y, depth: depth, x0: x0, etaG: etaG, etaV: 1)
        let logRho = try #require(wn.logRho)
        var warm: [Double]? = nil
        let fresh = try LimitPredictor.gradientFlow(A: p.A, y: p.y, depth: depth, logX0: x0.map { log($0) - logRho },
                                                    warmStart: &warm)
        #expect(Fixture.maxRelativeDifference(wn.z, fresh.z) <= 1e-9)
        // g = ‖x‖ to 1e-9, or to the predictor's own error in g where that is larger (the
        // depth-5 case: 1.3e-3 at log ρ = −126.6; with OpenBLAS's Prescott kernels its root
        // search ended where ‖x‖/g − 1 = 7.5e-6).
        let own = wn.gf.errorEstimate?.g ?? 0
        #expect(abs(norm2(wn.x) / wn.gInf - 1) <= max(1e-9, own), "own error in g \(own)")
    }

    /// WN from x₀ = (s d)^{1/2} on M = 24, N = 60 (seed 2), η_g = 0.01: log ρ ≈ −3.9e5
    /// (s = 1000) and −1.2e6 (s = 3000). There the Bregman projection is an LP's entropic
    /// regularization at temperature ~1/|log ρ|, and plain dual Newton stopped at its 3000
    /// iteration cap (s = 1000, residual 2.4e-8) or found no root (s = 3000). With the
    /// continuation in the shift of log x̃₀ both agree with the g∞ that the dual BDF
    /// integrates to (status converged; `wnflow verify` on the same configs).
    @Test("far magnifications: the WN root from continuation matches the integrated g∞",
          arguments: [(1000.0, 4.220228623294491), (3000.0, 4.220228623299302)])
    func farMagnificationsFindTheIntegratedRoot(scale: Double, integrated: Double) throws {
        let p = try Fixture.problem(m: 24, n: 60, seed: 2, sparsity: 4)
        let x0 = InitDirection.uniform.vector(60).map { (scale * $0).squareRoot() }
        let wn = try WeightNormLimit.constantRate(A: p.A, y: p.y, depth: 2, x0: x0, etaG: 0.01, etaV: 1)
        let logRho = try #require(wn.logRho)
        // Relative to 50ε|log ρ| (4.3e-9 and 1.3e-8 here): log x̃₀ = log x₀ − log ρ carries
        // ε|log ρ| of rounding, summed over the support. Measured: 3e-11 (Haswell/Zen
        // kernels), 1.1e-10 (SkylakeX), 1.4e-9 (Prescott) at s = 1000.
        let tolerance = max(1e-10, 50 * Double.ulpOfOne * abs(logRho))
        #expect(abs(wn.gInf - integrated) <= tolerance * integrated, "g∞ \(wn.gInf)")
        #expect(logRho < -3e5)
        #expect(wn.gf.kktResidual <= 1e-6)
    }

    @Test("a minimax optimum pinned at its floor is solved afresh when a shift moves it")
    func minimaxStartAtTheFloor() throws {
        // Without the kernel assumption t can go down to the floor: the cached optimum t = 0
        // moved by +3 would be a start with log z up to 3 where 0 is possible.
        let p = try Fixture.problem(m: 10, n: 25, depth: 2, seed: 2, sparsity: 2)
        #expect(try !KernelAssumption.check(A: p.A).holds)
        let rng = RNG(seed: 5)
        let c0 = (0..<25).map { _ in 800 + 5 * rng.uniform() }
        let ws = DualWorkspace(A: p.A, y: p.y)
        let first = try #require(LimitPredictor.cachedMinimaxStart(ws: ws, c: c0, floor: 0, relation: .shift))
        #expect(abs(first.t) <= 1e-6)
        let up = try #require(LimitPredictor.cachedMinimaxStart(ws: ws, c: c0.map { $0 + 3 }, floor: 0, relation: .shift))
        #expect(ws.minimaxSolves == 2)
        #expect(abs(up.t) <= 1e-6)
        // Nor is it moved down to t = −6 (a start below the floor lets z collapse): a fresh LP.
        let down = try #require(LimitPredictor.cachedMinimaxStart(ws: ws, c: c0.map { $0 - 3 }, floor: 0, relation: .shift))
        #expect(ws.minimaxSolves == 3)
        #expect(abs(down.t) <= 1e-6)
        // L ≥ 3: c = −S·b stays pinned at the floor −1 as S shrinks. Scaling the pinned λ down
        // would lift t to −S, so 1 → 1e-3 takes a new LP; once c is negligible against the floor
        // (x̃₀^{2−L} underflowing) the cached λ itself reaches the floor for every S.
        let b0 = (0..<25).map { _ in 0.5 + rng.uniform() }
        let ws3 = DualWorkspace(A: p.A, y: p.y)
        for (s, solves) in [(1.0, 1), (1e-3, 2), (1e-100, 3), (1e-150, 3), (1e-200, 3)] {
            let pinned = try #require(LimitPredictor.cachedMinimaxStart(ws: ws3, c: b0.map { -s * $0 }, floor: -1,
                                                                        relation: .scale))
            #expect(abs(pinned.t + 1) <= 1e-6, "scale \(s): t = \(pinned.t)")
            #expect(ws3.minimaxSolves == solves, "scale \(s)")
        }
    }

    @Test("the weighted-ℓ1 fallback (L = 3, tiny x̃₀) solves one LP per root search, with the fresh LP's answer")
    func weightedLPIsCached() throws {
        let p = try Fixture.problem(m: 15, n: 40, depth: 3, seed: 23, sparsity: 3)
        let x0 = Fixture.positivePoint(40, seed: 24, scale: 1e-12)
        let g0 = norm2(x0)
        let eval = try WeightNormLimit.Evaluator(A: p.A, y: p.y, depth: 3, x0: x0, g0: g0, c: 10)
        for k in 0..<5 {
            let g = g0 * pow(3, Double(k))
            _ = try eval.evaluate(g)
            let logRho = WeightNormLimit.logMagnification(g: g, g0: g0, c: 10)
            var warm: [Double]? = nil
            let fresh = try LimitPredictor.power(A: p.A, y: p.y, depth: 3, logX0: x0.map { log($0) - logRho },
                                                 warmStart: &warm)
            let cached = try LimitPredictor.power(A: p.A, y: p.y, depth: 3, logX0: x0.map { log($0) - logRho },
                                                  warmStart: &warm, workspace: eval.workspace)
            #expect(fresh.method == "weighted-l1-lp")
            #expect(cached.z == fresh.z, "g = \(g): the cached minimizer differs from a fresh LP")
        }
        #expect(eval.workspace!.weightedL1Solves == 1)
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

    /// The same WN problem at log ρ∞ = 2.9e10 (‖v₀‖ = 1e-5): `log z = 2 log x̃₀ + Aᵀλ` sums
    /// terms of 6e10, whose rounding (~7e-6) held the dual residual at 6e-6‖y‖, above the 1e-6
    /// it must meet, so the root search found no root (exit 3). Rebased on the exactly summed
    /// `2 log x̃₀ + Aᵀλ` it meets 1e-15, and the limit is the flow's.
    @Test("log ρ = 2.9e10: the rebased dual solve gives the integrated limit")
    func hugeMagnificationIsPredicted() throws {
        let cfg = try SimulationConfig.parse(hugeMagnificationConfig)
        let pred = try Prediction(config: cfg, limitOnly: true)
        let sim = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(sim.status == .converged)
        let g = try #require(pred.report.gInf), lr = try #require(pred.report.logRho)
        #expect(lr > 2.9e10)
        // newton_iterations counts the root search's solves (the last alone took 0).
        #expect(pred.report.prediction.iterations > 0)
        #expect(pred.report.prediction.kktResidual <= 1e-14)
        #expect(abs(g - (sim.g ?? 0)) <= 1e-12 * g)
        #expect(abs(lr - (sim.logRho ?? 0)) <= 1e-12 * lr)
        #expect(Fixture.maxRelativeDifference(pred.report.z, sim.z) <= 1e-11)
    }

    @Test("an L = 2 dual solve at log x̃₀ shifted by −3e10 meets its tolerance (it stalled at 6e-6 before)")
    func rebasedSolveAtAHugeShift() throws {
        let p = try Fixture.problem(m: 10, n: 25, depth: 2, seed: 4, sparsity: 3)
        let logX0 = InitDirection.uniform.vector(25).map { log($0) - 3e10 }
        var warm: [Double]? = nil
        let r = try LimitPredictor.gradientFlow(A: p.A, y: p.y, depth: 2, logX0: logX0, warmStart: &warm)
        #expect(r.kktResidual <= 1e-14)
        // The limit there is the ℓ1 minimizer over S₊ (entries off its support e^{−1e10}).
        let lp = try L1Minimization.solve(A: p.A, y: p.y, weights: nil)
        #expect(Fixture.maxRelativeDifference(r.z, lp.minimizer) <= 1e-12)
    }

    /// ‖v₀‖ = 1e-5 with x₀ large (c g² = 6e11): g hardly moves, and one ulp of g moves
    /// (2.4) by 2.8e-4, so simulate reported log ρ = 0.02407 where the limit is the GF limit
    /// from x₀/ρ at ℓ = 0.024839 (at 0.02407 it is 6e-4 off). simulate now takes ℓ from
    /// Lemma 3.9 there (`Simulation.invariantLogRho`), and agrees with predict.
    @Test("g pinned at g₀ with c g² = 6e11: simulate's log ρ from Lemma 3.9 agrees with predict")
    func logRhoWhereGHardlyMoves() throws {
        let cfg = try SimulationConfig.parse("""
        {"problem": {"generate": {"M": 3, "N": 40, "sparsity": 1, "l1_norm": 1.0, "seed": 986}},
         "model": {"flow": "wn", "depth": 2, "eta_v": 0.3, "eta_g": 0.01},
         "init": {"scale": 2.0495221988732366, "direction": "uniform", "seed": 388, "v_norm": 1.0047020243984026e-05}}
        """)
        let sim = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(sim.status == .converged)
        let pred = try Prediction(config: cfg, limitOnly: true)
        let lp = try #require(pred.report.logRho), ls = try #require(sim.logRho)
        #expect(abs(ls - lp) <= 1e-10, "simulate \(ls), predict \(lp)")
        #expect(Fixture.maxRelativeDifference(pred.report.z, sim.z) <= 1e-11)
    }

    /// GF at depth 3 from small starts: s = x̃₀^{−1} + Aᵀλ cancels b ~ 1e6 against Aᵀλ, and
    /// Newton, with s carried along its steps, stalled at 1e-10…2e-8 relative residual (z
    /// 2.5e-8 off the integrated limit in a helper's round, where a 40-digit projection and
    /// the flow agree to 3e-12). Rebased on the exactly summed b + Aᵀλ it meets 1e-13.
    @Test("depth 3 from x₀ ~ 1e-6: the rebased dual solve meets 1e-13", arguments: [1, 2, 3, 4, 5, 6])
    func rebasedPowerSolve(seed: UInt) throws {
        let p = try Fixture.problem(m: 15, n: 45, depth: 3, seed: seed, sparsity: 3)
        let x0 = Fixture.positivePoint(45, seed: seed + 10, scale: 1e-6)
        var warm: [Double]? = nil
        let r = try LimitPredictor.gradientFlow(A: p.A, y: p.y, depth: 3, logX0: x0.map { log($0) }, warmStart: &warm)
        #expect(r.method == "dual-newton")
        #expect(r.kktResidual <= 1e-13, "seed \(seed): \(r.kktResidual)")
    }
}
