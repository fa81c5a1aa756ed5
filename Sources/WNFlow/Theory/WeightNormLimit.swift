import Foundation
import GSLKit

/// The limit of the weight-normalized flow (1.13)–(1.14) predicted without integrating
/// (MATH.md §3 Lemma 3.9, §4 "WN limit").
public struct WNLimitPrediction: Sendable {
    /// `g_∞`, the chosen root of `g = ‖X(x₀/ρ(g))‖₂` (time-dependent rate: `‖x_∞‖₂`).
    public var gInf: Double
    /// `log ρ_∞ = log(g₀/g_∞) + c(g_∞² − g₀²)` (2.4); nil for the time-dependent rate,
    /// where `c` is not constant and Thm 2.4 makes the limit the GF limit from x₀.
    public var logRho: Double?
    /// `z_∞` and `x_∞` (= the GF prediction from `x̃₀ = x₀/ρ_∞`).
    public var z: [Double]
    public var x: [Double]
    /// Every root of `φ(g) = ‖X(x₀/ρ(g))‖ − g` found by the scan, increasing.
    public var roots: [Double]
    /// The GF prediction at the chosen root.
    public var gf: GFLimitPrediction
    /// `g₀ = ‖x₀‖` and `c = η_v/(2η_g‖v₀‖²)` (nil for the time-dependent rate).
    public var g0: Double
    public var c: Double?
    /// Caveats (several roots, L = 1 sign changes of g, …).
    public var warnings: [String]
}

/// WN limits (MATH.md §3–4).
public enum WeightNormLimit {
    /// `log ρ(g) = log(g₀/g) + c(g² − g₀²)` (MATH.md (2.4), Lemma 3.9), for g > 0.
    public static func logMagnification(g: Double, g0: Double, c: Double) -> Double {
        Foundation.log(g0 / g) + c * (g * g - g0 * g0)
    }

    /// The WN limit with constant rates (MATH.md §4 "WN limit"): by Lemma 3.9 the flow ends
    /// at the GF limit from `x̃₀ = x₀/ρ_∞`, and `g_∞ = ‖x_∞‖₂` solves
    /// `φ(g) := ‖X(x₀/ρ(g))‖₂ − g = 0`, `X` the GF predictor (log form, so log ρ ≫ 700 is fine).
    ///
    /// Root search: `φ(g₀) = ‖X(x₀)‖ − g₀`. A log-spaced grid of `scanPoints` points on
    /// `[g₀, g_hi]` (g_hi doubled until φ(g_hi) < 0) and, when φ(g₀) < 0, one on
    /// `[g₀·1e-8, g₀]`, each sign
    /// change refined by GSL's Brent solver (relative tolerance 1e-14); λ is warm-started
    /// along the scan. All roots found are reported in `roots`.
    ///
    /// Which root the flow reaches (a heuristic, not a theorem): g(t) is continuous and
    /// starts at g₀, so we take the root nearest to g₀ in the direction φ(g₀) points to —
    /// the smallest root above g₀ when φ(g₀) > 0 (g₀ below the solution's norm, the usual
    /// case of small initialization), the largest root below g₀ when φ(g₀) < 0 (g₀ above it;
    /// then ρ first grows through log(g₀/g)). Several roots add a warning.
    ///
    /// L ≥ 2 needs x₀ > 0 (Lemma 3.3); L = 1 allows signs, but g may cross 0 during the flow
    /// (Lemma 3.3 does not hold for L = 1): the prediction assumes g stays positive.
    /// - Parameters: `etaG`, `etaV` the constant rates, `vNorm = ‖v₀‖` (MATH.md §1 init:
    ///   `g₀ = ‖x₀‖`, `v₀ = vNorm·x₀/‖x₀‖`).
    public static func constantRate(A: Matrix, y: [Double], depth: Int, x0: [Double],
                                    etaG: Double, etaV: Double, vNorm: Double = 1,
                                    scanPoints: Int = 24) throws -> WNLimitPrediction {
        try LimitPredictor.validate(A: A, y: y, n: x0.count, depth: depth)
        guard etaG > 0, etaV > 0, vNorm > 0, etaG.isFinite, etaV.isFinite, vNorm.isFinite else {
            throw TheoryError.invalidInput("eta_g, eta_v and v_norm must be finite and > 0")
        }
        guard x0.allSatisfy(\.isFinite) else { throw TheoryError.invalidInput("x0 must be finite") }
        if depth >= 2 {
            guard x0.allSatisfy({ $0 > 0 }) else {
                throw TheoryError.invalidInput("x0 must be > 0 entry-wise for depth >= 2 (MATH.md Lemma 3.3)")
            }
        }
        let g0 = norm2(x0)
        guard g0 > 0 else { throw TheoryError.invalidInput("x0 must be non-zero (g0 = ||x0|| > 0)") }
        let c = etaV / (2 * etaG * vNorm * vNorm)
        var warnings: [String] = []
        if depth == 1 {
            warnings.append("depth 1: g may change sign during the WN flow (MATH.md Lemma 3.3); this prediction assumes g > 0 throughout")
        }

        let eval = try Evaluator(A: A, y: y, depth: depth, x0: x0)
        func phi(_ g: Double) throws -> Double {
            let pred = try eval.predict(logRho: logMagnification(g: g, g0: g0, c: c))
            return eval.norm(pred) - g
        }

        let f0 = try phi(g0)
        let lambdaAtG0 = eval.lambda
        var roots: [Double] = []
        var chosen: Double? = f0 == 0 ? g0 : nil
        if f0 == 0 { roots.append(g0) }

        // Up: (g₀, g_hi].
        var gHi = 2 * max(g0, f0 + g0)
        var fHi = try phi(gHi)
        var doublings = 0
        while !(fHi < 0) && doublings < 200 {
            gHi *= 2; doublings += 1
            fHi = try phi(gHi)
        }
        if fHi < 0 {
            eval.lambda = lambdaAtG0
            roots += try scan(phi, from: g0, fFrom: f0, to: gHi, points: scanPoints, eval: eval)
        } else {
            warnings.append("no g above g0 found with ||X(x0/rho(g))|| < g (up to \(gHi))")
        }
        // Down: [g₀·1e-8, g₀), scanned only when φ(g₀) < 0 (g₀ above the
        // solution's norm): otherwise g grows from g₀ and the bracket is
        // (g₀, ∞) (MATH.md §4).
        let gLo = g0 * 1e-8
        if f0 < 0 {
            eval.lambda = lambdaAtG0
            roots += try scan(phi, from: g0, fFrom: f0, to: gLo, points: scanPoints, eval: eval)
        }
        roots = Array(Set(roots)).sorted()

        if chosen == nil {
            if f0 > 0 { chosen = roots.first(where: { $0 > g0 }) } else { chosen = roots.last(where: { $0 < g0 }) }
        }
        guard let gInf = chosen else {
            throw TheoryError.notConverged("no root of g = ||X(x0/rho(g))|| found on [\(gLo), \(gHi)] "
                + "(phi(g0) = \(f0)); the WN flow may not converge to a zero-loss point")
        }
        if roots.count > 1 {
            warnings.append("several roots g = \(roots); chose \(gInf), the nearest to g0 = \(g0) in the direction of phi(g0) (heuristic)")
        }
        let logRho = logMagnification(g: gInf, g0: g0, c: c)
        eval.lambda = nil
        let gf = try eval.predict(logRho: logRho)
        return WNLimitPrediction(gInf: gInf, logRho: logRho, z: gf.z, x: gf.x, roots: roots, gf: gf,
                                 g0: g0, c: c, warnings: warnings)
    }

    /// WN with the time-dependent rate `η_g(t) = η_v g²/‖v‖²` (Thm 2.4, MATH.md §1, §4):
    /// its limit is the GF limit from x₀ itself (no magnification), so this returns the
    /// GF prediction with `g_∞ = ‖x_∞‖₂`. `logRho` is nil: with this rate `c` is not a
    /// constant and (2.4) does not define ρ; the effective initialization is x₀ (ρ = 1).
    /// `etaV` does not affect the limit (only the clock).
    public static func timeDependent(A: Matrix, y: [Double], depth: Int, x0: [Double], etaV: Double = 1) throws -> WNLimitPrediction {
        guard etaV > 0, etaV.isFinite else { throw TheoryError.invalidInput("eta_v must be finite and > 0") }
        let gf = try LimitPredictor.gradientFlow(A: A, y: y, depth: depth, x0: x0)
        var warnings: [String] = []
        if depth == 1 { warnings.append("depth 1: g may change sign during the WN flow; the GF limit is reported") }
        return WNLimitPrediction(gInf: norm2(gf.x), logRho: nil, z: gf.z, x: gf.x, roots: [], gf: gf,
                                 g0: norm2(x0), c: nil, warnings: warnings)
    }

    /// Sign changes of φ on a log-spaced grid from `from` to `to` (either direction),
    /// refined by Brent. The first grid point is `from` with known value `fFrom`.
    private static func scan(_ phi: @escaping (Double) throws -> Double, from: Double, fFrom: Double,
                             to: Double, points: Int, eval: Evaluator) throws -> [Double] {
        var roots: [Double] = []
        var gPrev = from, fPrev = fFrom
        let k = max(points, 2)
        for i in 1..<k {
            let g = from * Foundation.pow(to / from, Double(i) / Double(k - 1))
            // A g where the GF predictor fails (e.g. x₀/ρ(g) so large that
            // the dual overflows) is skipped, not fatal: no sign change is
            // read across it.
            let f = (try? phi(g)) ?? .nan
            if f == 0 { roots.append(g) }
            else if fPrev != 0 && f.isFinite && fPrev.isFinite && (f < 0) != (fPrev < 0) {
                let saved = eval.lambda
                if let root = try? RootFinder.brent(phi, lower: min(g, gPrev), upper: max(g, gPrev),
                                                    absTol: 0, relTol: 1e-14, maxIterations: 200) {
                    roots.append(root)
                }
                eval.lambda = saved
            }
            gPrev = g; fPrev = f
        }
        return roots
    }

    /// GF predictions along the root search, warm-starting λ (MATH.md §4).
    final class Evaluator {
        let A: Matrix
        let y: [Double]
        let depth: Int
        let x0: [Double]
        let logX0: [Double]
        var lambda: [Double]?
        // L = 1 closed form: X(ρ) = P x₀/ρ + A⁺y (P x₀ ∈ ker A and A⁺y ∈ range Aᵀ are orthogonal).
        let px0: [Double]
        let pinvY: [Double]

        init(A: Matrix, y: [Double], depth: Int, x0: [Double]) throws {
            self.A = A; self.y = y; self.depth = depth; self.x0 = x0
            logX0 = depth >= 2 ? x0.map { Foundation.log($0) } : []
            if depth == 1 {
                let svd = try SVD(A)
                let proj = KernelProjector(svd: svd, columns: A.cols)
                px0 = proj.apply(x0)
                pinvY = A.rows > 0 ? svd.pseudoInverseApply(y) : [Double](repeating: 0, count: A.cols)
            } else {
                px0 = []; pinvY = []
            }
        }

        func predict(logRho: Double) throws -> GFLimitPrediction {
            if depth == 1 {
                let s = Foundation.exp(-logRho)
                var x = [Double](repeating: 0, count: x0.count)
                for j in 0..<x.count { x[j] = px0[j] * s + pinvY[j] }
                let res = residualNorm(A, x, y)
                let ny = norm2(y)
                return GFLimitPrediction(depth: 1, z: x, x: x, logX: nil, lambda: [], iterations: 0,
                                         kktResidual: ny > 0 ? res / ny : res, lostDigits: false,
                                         amplification: nil, method: "closed-form")
            }
            let lx = logX0.map { $0 - logRho }
            return try LimitPredictor.gradientFlow(A: A, y: y, depth: depth, logX0: lx, warmStart: &lambda)
        }

        /// `‖x‖₂` computed from `log x` when available (no underflow issues).
        func norm(_ p: GFLimitPrediction) -> Double {
            guard let lx = p.logX else { return norm2(p.x) }
            let mx = lx.max() ?? -.infinity
            if mx == -.infinity { return 0 }
            var s = 0.0
            for v in lx { let e = Foundation.exp(v - mx); s += e * e }
            return Foundation.exp(mx) * s.squareRoot()
        }
    }
}
