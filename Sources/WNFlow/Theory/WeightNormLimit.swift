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
    /// Every root of `φ(g) = ‖X(x₀/ρ(g))‖ − g` found by the scan, increasing (L = 2: the
    /// unique root, docs/math.md §4b).
    public var roots: [Double]
    /// The GF prediction at the chosen root.
    public var gf: GFLimitPrediction
    /// `g₀ = ‖x₀‖` and `c = η_v/(2η_g‖v₀‖²)` (nil for the time-dependent rate).
    public var g0: Double
    public var c: Double?
    /// Caveats (several roots, L = 1 sign changes of g, …).
    public var warnings: [String]
    /// Depth 1, constant rates: the limit of the mirrored root `−g_∞` (g crossed 0 during the
    /// flow). `φ` depends on g only through g² at L = 1 (docs/math.md §4c), so both signs
    /// satisfy every invariant; nil at other depths and for the time-dependent rate.
    public var negativeBranch: WNBranch? = nil
    /// Whether the root was refined in `ℓ = log ρ` (`polishInLogRho`, `solveNormInLogRho`), so
    /// that log ρ does not carry the amplified rounding of g.
    public var logRhoPolished = false
}

/// One sign of a depth-1 WN limit (docs/math.md §4c): `g_∞ < 0`, `log|ρ_∞|` (the same as the
/// positive root's), and `x_∞ = z_∞ = A⁺y − P x₀/|ρ_∞|`, the kernel part flipped.
public struct WNBranch: Sendable {
    public var gInf: Double
    public var logRho: Double
    public var z: [Double]
    public var x: [Double]
}

/// WN limits (MATH.md §3–4).
public enum WeightNormLimit {
    /// `log ρ(g) = log(g₀/g) + c(g² − g₀²)` (MATH.md (2.4), Lemma 3.9), for g > 0.
    public static func logMagnification(g: Double, g0: Double, c: Double) -> Double {
        Foundation.log(g0 / g) + magnificationExponent(c: c, g: g, g0: g0)
    }

    /// The WN limit with constant rates (MATH.md §4 "WN limit"): by Lemma 3.9 the flow ends
    /// at the GF limit from `x̃₀ = x₀/ρ_∞`, and `g_∞ = ‖x_∞‖₂` solves
    /// `φ(g) := ‖X(x₀/ρ(g))‖₂ − g = 0`, `X` the GF predictor (log form, so log ρ ≫ 700 is fine).
    ///
    /// L = 2: `log‖X(x₀/ρ(g))‖ − log g` is strictly decreasing in g (docs/math.md §4b), so φ
    /// has at most one root, and it is found by safeguarded Newton on log g from g₀
    /// (`monotoneRoot`: 4–6 evaluations instead of the scan's 26 on the bench problems, and
    /// it also reaches roots the scan misses where the GF predictor fails on grid points far
    /// below g₀). Should that search fail, the scan below runs.
    ///
    /// Root search of the other depths: `φ(g₀) = ‖X(x₀)‖ − g₀`. A log-spaced grid of `scanPoints` points on
    /// `[g₀, g_hi]`, `g_hi = 2 max(g₀, ‖X(x₀)‖)` (extended an octave at a time, at the same
    /// spacing, until φ(g_hi) < 0) and, when φ(g₀) < 0, one on
    /// `[g₀·1e-8, g₀]`, each sign change refined to a relative 1e-14 in g. λ is warm-started
    /// along the scan. Next to a grid point where the GF predictor fails (x₀/ρ(g) so large
    /// that the dual overflows: g far below g₀ with c g₀² large), the scan bisects towards the
    /// failure for the nearest point that evaluates, so that a root between is not hidden
    /// (Figure 4's L = 3 WN run at α = 1 has its root there). All roots found are reported
    /// in `roots`.
    ///
    /// L = 2 speed-ups (of the scan, and of `monotoneRoot`'s evaluations): λ' = dλ/d log ρ solves `H λ' = 2y` with the
    /// Newton Hessian `H = A diag(z) Aᵀ` at the solution, so each evaluation also yields
    /// φ'(g) and warm-starts the next one at `λ + Δlog ρ·λ'`; at g₀, g_hi and the grid points
    /// the dual Newton stops as soon as the sign of φ is certain (see `Evaluator.predict`),
    /// most grid points after chord steps with the previous point's factor, without a new
    /// Hessian (`LimitPredictor.entropic`);
    /// sign changes are refined by Newton on g from the root of the cubic Hermite interpolant,
    /// kept inside the bracket (bisection otherwise), and the prediction at the root is the
    /// full solve made there. Other depths refine with GSL's Brent solver and solve the GF
    /// limit at the root afresh.
    ///
    /// Which root the flow reaches when there are several (L ≠ 2; a heuristic, not a theorem): g(t) is continuous and
    /// starts at g₀, so we take the root nearest to g₀ in the direction φ(g₀) points to —
    /// the smallest root above g₀ when φ(g₀) > 0 (g₀ below the solution's norm, the usual
    /// case of small initialization), the largest root below g₀ when φ(g₀) < 0 (g₀ above it;
    /// then ρ first grows through log(g₀/g)). Several roots add a warning.
    ///
    /// L ≥ 2 needs x₀ > 0 (Lemma 3.3); L = 1 allows signs, and g may cross 0 during the flow
    /// (Lemma 3.3 does not hold for L = 1): `gInf`, `z`, `x` are the limit with g > 0, and
    /// `negativeBranch` the mirrored one with g < 0 (docs/math.md §4c).
    /// - Parameters: `etaG`, `etaV` the constant rates, `vNorm = ‖v₀‖` (MATH.md §1 init:
    ///   `g₀ = ‖x₀‖`, `v₀ = vNorm·x₀/‖x₀‖`).
    public static func constantRate(A: Matrix, y: [Double], depth: Int, x0: [Double],
                                    etaG: Double, etaV: Double, vNorm: Double = 1,
                                    scanPoints: Int = 24) throws -> WNLimitPrediction {
        try constantRate(A: A, y: y, depth: depth, x0: x0, etaG: etaG, etaV: etaV, vNorm: vNorm,
                         scanPoints: scanPoints, chordShortcut: true, search: .monotone)
    }

    /// How the L = 2 root is searched: Newton on log g (`monotone`, the default; φ has at most
    /// one root, docs/math.md §4b) or the grid scan that every other depth uses (tests).
    enum Search { case monotone, scan }

    /// `constantRate` with the chord shortcut of the sign-only solves and the refinement of the
    /// root in log ρ (`polishInLogRho` at L = 2, `solveNormInLogRho` for a root within rounding
    /// of g₀) switchable (tests).
    static func constantRate(A: Matrix, y: [Double], depth: Int, x0: [Double], etaG: Double, etaV: Double,
                             vNorm: Double, scanPoints: Int, chordShortcut: Bool,
                             search: Search = .monotone, polish: Bool = true) throws -> WNLimitPrediction {
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
            warnings.append("depth 1: g may change sign during the WN flow (MATH.md Lemma 3.3): z, x and g_inf are the "
                + "limit with g > 0, negative_branch the one where g ends below 0 (both satisfy every invariant; "
                + "only the trajectory tells them apart)")
        }

        let eval = try Evaluator(A: A, y: y, depth: depth, x0: x0, g0: g0, c: c)
        eval.workspace?.chordShortcut = chordShortcut
        // Where only the sign of φ matters (g₀ and the scans), the dual Newton may stop early
        // (see `Evaluator.predict`); roots are refined with full solves.
        let first = try eval.evaluate(g0, signOnly: true)
        let f0 = first.phi
        // The downward scan restarts from g₀ with its warm start and the factor that goes with it.
        let warmAtG0 = eval.warm, factorAtG0 = eval.workspace?.savedFactor()
        var roots: [Double] = []
        var chosen: Double? = f0 == 0 ? g0 : nil
        if f0 == 0 { roots.append(g0); eval.keepRoot(g0) }
        // L = 2: φ has at most one root (docs/math.md §4b), found by Newton on log g.
        if depth == 2 && f0 != 0 && search == .monotone,
           let root = try? monotoneRoot(first: first, eval: eval) {
            return try answer(at: root, roots: [root], eval: eval, g0: g0, c: c, warnings: warnings, polish: polish)
        }
        if depth == 2 && f0 != 0 {
            // The monotone search failed (an evaluation threw or it did not converge): the scan
            // starts afresh from g₀.
            eval.warm = warmAtG0
            eval.workspace?.restoreFactor(factorAtG0)
        }

        // Up: (g₀, g_hi], g_hi = 2 max(g₀, ‖X(x₀)‖), its sign read at the scan's last point;
        // while φ(g_hi) ≥ 0 the bracket doubles, each new octave scanned at the same log
        // spacing (at most 8 points per octave).
        var gHi = 2 * max(g0, f0 + g0)
        let up = try scan(from: g0, first: first, to: gHi, points: scanPoints, eval: eval)
        roots += up.roots
        var last = up.last
        let perOctave = min(8, max(2, Int((Double(max(scanPoints, 2) - 1) * Foundation.log(2)
                                             / Foundation.log(gHi / g0)).rounded(.up)) + 1))
        var doublings = 0
        while !(last.phi < 0) && doublings < 200 {
            let more = try scan(from: gHi, first: last, to: 2 * gHi, points: perOctave, eval: eval)
            roots += more.roots
            last = more.last
            gHi *= 2; doublings += 1
        }
        if !(last.phi < 0) {
            warnings.append("no g above g0 found with ||X(x0/rho(g))|| < g (up to \(gHi))")
        }
        // Down: [g₀·1e-8, g₀), scanned only when φ(g₀) < 0 (g₀ above the
        // solution's norm): otherwise g grows from g₀ and the bracket is
        // (g₀, ∞) (MATH.md §4).
        let gLo = g0 * 1e-8
        if f0 < 0 {
            eval.warm = warmAtG0
            eval.workspace?.restoreFactor(factorAtG0)
            roots += try scan(from: g0, first: first, to: gLo, points: scanPoints, eval: eval).roots
        }
        roots = Array(Set(roots)).sorted()

        if chosen == nil {
            if f0 > 0 { chosen = roots.first(where: { $0 > g0 }) } else { chosen = roots.last(where: { $0 < g0 }) }
        }
        // Where c·g₀²·ε is not small, φ(g) near g₀ is rounding noise (one ulp of g moves log ρ by
        // 2cg²·ulp(g)) and the scan can miss the root (depth 1 and 3 at c·g₀²·ε = 550: exit 3,
        // while the flows converge with g at g₀): solve in ℓ from ℓ = 0 before giving up.
        if chosen == nil, polish, rootUnresolvedInG(g: g0, g0: g0, c: c),
           let solved = try? solveNormInLogRho(from: 0, g0: g0, c: c, eval: eval) {
            return try answer(at: g0, roots: [g0], eval: eval, g0: g0, c: c, warnings: warnings, polish: polish,
                              solvedLogRho: solved.logRho)
        }
        guard let gInf = chosen else {
            throw TheoryError.notConverged("no root of g = ||X(x0/rho(g))|| found on [\(gLo), \(gHi)] "
                + "(phi(g0) = \(f0)); the WN flow may not converge to a zero-loss point")
        }
        if roots.count > 1 {
            warnings.append("several roots g = \(roots); chose \(gInf), the nearest to g0 = \(g0) in the direction of phi(g0) (heuristic)")
        }
        return try answer(at: gInf, roots: roots, eval: eval, g0: g0, c: c, warnings: warnings, polish: polish)
    }

    /// The prediction at the chosen root `gInf`: the search's own full solve there when it
    /// evaluated that g (L = 2, solved to the same tolerance as a fresh one), else a fresh one.
    /// `solvedLogRho`: ℓ of a root the search already solved in ℓ (`solveNormInLogRho`): one
    /// fresh solve there, with the error estimate the search's solves skip.
    private static func answer(at gInf: Double, roots: [Double], eval: Evaluator, g0: Double, c: Double,
                               warnings: [String], polish: Bool,
                               solvedLogRho: Double? = nil) throws -> WNLimitPrediction {
        var logRho = solvedLogRho ?? logMagnification(g: gInf, g0: g0, c: c)
        var gf: GFLimitPrediction
        eval.workspace?.estimatesErrors = true
        if solvedLogRho == nil, eval.depth < 3, let kept = eval.rootPredictions[gInf.bitPattern] {
            gf = kept
        } else {
            // L ≥ 3 (or a root solved in ℓ): afresh, with the error estimate the search's solves skip.
            eval.warm = Evaluator.Warm()
            gf = try eval.predict(logRho: logRho)
        }
        var g = solvedLogRho == nil ? gInf : eval.norm(gf), roots = roots, polishedRoot = solvedLogRho != nil
        if solvedLogRho == nil, polish {
            var refined: (g: Double, logRho: Double, prediction: GFLimitPrediction)?
            if rootUnresolvedInG(g: gInf, g0: g0, c: c) {
                // Any depth: g cannot place ℓ at all (depth 3, M = 8, N = 20: z 0.65 off the
                // integrated limit).
                refined = try? solveNormInLogRho(from: logRho, g0: g0, c: c, eval: eval)
            }
            if refined == nil, eval.depth == 2, abs(eval.norm(gf) - gInf) > consistencyTolerance * gInf {
                refined = try? polishInLogRho(logRho, g0: g0, c: c, eval: eval)
            }
            if let refined {
                g = refined.g; logRho = refined.logRho; gf = refined.prediction
                polishedRoot = true
            }
        }
        if polishedRoot { roots = roots.map { $0 == gInf ? g : $0 } }
        // The root search's solves, warm-started along it: the last one alone took 0 iterations.
        gf.iterations = eval.iterations
        var branch: WNBranch? = nil
        if eval.depth == 1 {
            // ρ(−g) = −ρ(g): the same X with the kernel part's sign flipped.
            let mirrored = eval.linearLimit(kernelScale: -Foundation.exp(-logRho))
            branch = WNBranch(gInf: -g, logRho: logRho, z: mirrored, x: mirrored)
        }
        return WNLimitPrediction(gInf: g, logRho: logRho, z: gf.z, x: gf.x, roots: roots, gf: gf,
                                 g0: g0, c: c, warnings: warnings, negativeBranch: branch, logRhoPolished: polishedRoot)
    }

    /// `c·g₀²·ε` above which a root within rounding of g₀ leaves log ρ unresolved in g.
    static let unresolvedKappa = 1e-3

    /// Whether a root g is one the search in g cannot resolve: within 1000 ulp of g₀ while
    /// `c·g₀²·ε > unresolvedKappa` (one ulp of g moves log ρ by 2cg²·ulp(g)).
    static func rootUnresolvedInG(g: Double, g0: Double, c: Double) -> Bool {
        c * g0 * g0 * Double.ulpOfOne > unresolvedKappa && abs(g - g0) <= 1e3 * g0.ulp
    }

    /// A root within rounding of g₀ while `κ = c·g₀²·ε` is not small: `ℓ = log ρ` solved from
    /// `‖X(ℓ)‖ = g₀ − ℓ/(2cg₀)` (the root equation with `ℓ(g) = log(g₀/g) + c(g² − g₀²)`
    /// inverted to first order in g − g₀, exact to rounding there since the correction is
    /// `ℓ·ε/(2κ)` of g₀) by Brent in ℓ: no cancellation, where ψ(ℓ) of `polishInLogRho`
    /// carries noise of about κ (depth 1, κ = 6.8: ℓ off by 19). The bracket grows from the
    /// search's ℓ by 1, 2, 4, … (up to 2⁴⁰) in the direction `‖X‖` points (`‖X(ℓ)‖` falls as
    /// ℓ grows, docs/math.md §4b).
    static func solveNormInLogRho(from start: Double, g0: Double, c: Double, eval: Evaluator) throws
        -> (g: Double, logRho: Double, prediction: GFLimitPrediction) {
        func f(_ l: Double) throws -> Double { eval.norm(try eval.predict(logRho: l)) - (g0 - l / (2 * c * g0)) }
        let f0 = try f(start)
        guard f0.isFinite else { throw TheoryError.notConverged("log rho solve: no finite start") }
        var lo = start, hi = start
        if f0 != 0 {
            // ‖X‖ too large: ρ must grow (ℓ up); too small: ℓ down. `last` keeps f0's sign.
            let direction = f0 > 0 ? 1.0 : -1.0
            var last = start, step = 1.0, found = false
            for _ in 0..<40 {
                let next = start + direction * step
                let fn = try f(next)
                guard fn.isFinite else { break }
                if (fn > 0) != (f0 > 0) || fn == 0 {
                    (lo, hi) = (min(last, next), max(last, next))
                    found = true
                    break
                }
                last = next
                step *= 2
            }
            guard found else { throw TheoryError.notConverged("log rho solve: no sign change of ||X(l)|| - g0 within 2^40 of \(start)") }
        }
        let l = lo == hi ? lo : try RootFinder.brent({ try f($0) }, lower: lo, upper: hi, absTol: 1e-15, relTol: 1e-15)
        // The first-order inversion of ℓ(g) holds only while g − g₀ is tiny against g₀.
        guard abs(l) / (2 * c * g0 * g0) < 1e-6 else {
            throw TheoryError.notConverged("log rho solve: l = \(l) moves g by more than 1e-6 of g0")
        }
        let prediction = try eval.predict(logRho: l)
        return (eval.norm(prediction), l, prediction)
    }

    /// Relative mismatch `|‖x_∞‖ − g_∞|/g_∞` above which `answer` polishes the root in log ρ.
    static let consistencyTolerance = 1e-13

    /// L = 2: the root found in g, refined in `ℓ = log ρ` by Newton on
    /// `ψ(ℓ) = log(g₀/‖X(ℓ)‖) + c(‖X(ℓ)‖² − g₀²) − ℓ`. Where `k = 2cg²` is large, a g
    /// that is right to 1e-14 relative still leaves ℓ(g) wrong by about k·1e-14 (the map
    /// g ↦ ℓ amplifies by k), and x∞ with it (η_g = 1e-4, ‖v₀‖ = 0.05, ‖x₀‖ = 30, k = 3.6e9:
    /// ‖x∞‖/g∞ − 1 = 1.9e-6). In ℓ the fixed point is well conditioned: `ψ' = (2c‖X‖ −
    /// 1/‖X‖)·d‖X‖/dℓ − 1 ≤ −1` when k ≥ 1 (‖X‖ does not grow with ℓ, docs/math.md §4b), so
    /// the rounding of ψ (about k·ε) moves ℓ by only about k·ε/|ψ'|. `g_∞` is then
    /// `‖X(ℓ_∞)‖` itself. Returns the iterate with the smallest |ψ| (at most 6 full solves).
    static func polishInLogRho(_ start: Double, g0: Double, c: Double, eval: Evaluator) throws
        -> (g: Double, logRho: Double, prediction: GFLimitPrediction) {
        var l = start
        var best: (psi: Double, g: Double, logRho: Double, prediction: GFLimitPrediction)? = nil
        for _ in 0..<6 {
            let (pred, norm, dNorm) = try eval.normAndSlope(logRho: l)
            guard norm > 0, norm.isFinite else { break }
            let psi = logMagnification(g: norm, g0: g0, c: c) - l
            if abs(psi) < (best?.psi ?? .infinity) { best = (abs(psi), norm, l, pred) }
            guard let dNorm else { break }
            let dPsi = (2 * c * norm - 1 / norm) * dNorm - 1
            guard dPsi < 0, dPsi.isFinite else { break }
            let step = -psi / dPsi
            if abs(step) <= 1e-15 * max(1, abs(l)) { break }
            l += step
        }
        guard let best else { throw TheoryError.notConverged("log rho polish: no finite evaluation") }
        return (best.g, best.logRho, best.prediction)
    }

    /// WN with the time-dependent rate `η_g(t) = η_v g²/‖v‖²` (Thm 2.4, MATH.md §1, §4):
    /// its limit is the GF limit from x₀ itself (no magnification), so this returns the
    /// GF prediction with `g_∞ = ‖x_∞‖₂`. `logRho` is nil: with this rate `c` is not a
    /// constant and (2.4) does not define ρ; the effective initialization is x₀ (ρ = 1).
    /// `etaV` does not affect the limit (only the clock).
    public static func timeDependent(A: Matrix, y: [Double], depth: Int, x0: [Double], etaV: Double = 1) throws -> WNLimitPrediction {
        guard etaV > 0, etaV.isFinite else { throw TheoryError.invalidInput("eta_v must be finite and > 0") }
        let gf = try LimitPredictor.gradientFlow(A: A, y: y, depth: depth, x0: x0)
        // Unlike the constant rate, g keeps its sign here at every depth: g' = −η_v (g/‖v‖)² ⟨G, u⟩
        // vanishes at g = 0 (docs/math.md §4c).
        return WNLimitPrediction(gInf: norm2(gf.x), logRho: nil, z: gf.z, x: gf.x, roots: [], gf: gf,
                                 g0: norm2(x0), c: nil, warnings: [])
    }

    /// L = 2: the root of φ by Newton on `t = log g` applied to `Φ(t) = log‖X‖ − t`, which is
    /// strictly decreasing with `−max(1, 2cg²) ≤ dΦ/dt ≤ −min(1, 2cg²)` (docs/math.md §4b).
    /// The Newton slope is clamped to that interval (every step makes progress and overshoots
    /// by at most that ratio), and a step to `|Δt| ≤ maxLogStep`. Once φ has changed sign the
    /// iterate stays in the bracket: a Newton step that leaves it, or a bracket that did not
    /// halve in two steps, is replaced by bisection in t. Evaluations are sign-only (they
    /// stop early only where the sign of φ is certain, so near the root they are full
    /// solves); the search ends when a full evaluation's Newton step is ≤ 1e-14 (relative in
    /// g, as `refine`) or the bracket is 1e-14 wide. Nil when an evaluation fails, a slope is missing, g leaves
    /// `[g₀·1e-8, g₀·2^200]` or 100 steps pass; the caller then scans.
    private static func monotoneRoot(first: Evaluator.Value, eval: Evaluator) throws -> Double? {
        let g0 = first.g, c = eval.c
        var cur = first
        var lo: Evaluator.Value? = first.phi > 0 ? first : nil
        var hi: Evaluator.Value? = first.phi < 0 ? first : nil
        var widths: [Double] = []  // bracket widths in t, newest last
        for _ in 0..<100 {
            guard let d = cur.slope, d.isFinite else { return nil }
            let g = cur.g, xn = cur.phi + g
            guard xn > 0 else { return nil }
            let k = 2 * c * g * g
            let slope = min(max(g * (d + 1) / xn - 1, -max(1, k)), -min(1, k))
            let dt = -Foundation.log(xn / g) / slope
            if abs(dt) <= 1e-14 {
                if !(eval.workspace?.stoppedEarly ?? true) {
                    eval.keepRoot(g)
                    return g
                }
                // A sign-only solve stopped early this close to the root: solve g fully.
                cur = try eval.evaluate(g)
                guard cur.phi.isFinite else { return nil }
                if cur.phi == 0 { eval.keepRoot(g); return g }
                if cur.phi > 0 { lo = cur } else { hi = cur }
                continue
            }
            var t = Foundation.log(g) + min(max(dt, -maxLogStep), maxLogStep)
            if let l = lo, let h = hi {
                let tl = Foundation.log(l.g), th = Foundation.log(h.g)
                let w = abs(th - tl)
                widths.append(w)
                let stalled = widths.count >= 3 && w > 0.5 * widths[widths.count - 3]
                if !(t > min(tl, th) && t < max(tl, th)) || stalled {
                    t = 0.5 * (tl + th)
                    widths.removeAll()
                }
                // A bracket at rounding width: its end with the smaller |φ|, fully solved.
                if w <= 1e-14 {
                    let end = abs(l.phi) <= abs(h.phi) ? l.g : h.g
                    _ = try eval.evaluate(end)
                    eval.keepRoot(end)
                    return end
                }
            }
            let gNext = Foundation.exp(t)
            guard gNext >= g0 * 1e-8, gNext <= g0 * 0x1p200, gNext != g else { return nil }
            let v = try eval.evaluate(gNext, signOnly: true)
            guard v.phi.isFinite else { return nil }
            if v.phi == 0 { eval.keepRoot(gNext); return gNext }
            if v.phi > 0 { lo = v } else { hi = v }
            cur = v
        }
        return nil
    }

    /// The largest step in log g of `monotoneRoot` before φ changes sign.
    static let maxLogStep = 2.0

    /// Sign changes of φ on a log-spaced grid from `from` to `to` (either direction). The first
    /// grid point is `from` with the known evaluation `first`. Each sign change is refined by
    /// `refine` (safeguarded Newton when φ' is known, L = 2) or by GSL's Brent solver.
    private static func scan(from: Double, first: Evaluator.Value, to: Double, points: Int,
                             eval: Evaluator) throws -> (roots: [Double], last: Evaluator.Value) {
        var roots: [Double] = []
        var prev = first
        let k = max(points, 2)
        /// A root between two evaluated points of opposite sign, refined; the scan goes on from
        /// the refined root's full solve (its λ, exact λ' and factor), or from where it was
        /// when the refinement failed.
        func bracketed(_ a: Evaluator.Value, _ b: Evaluator.Value) {
            guard a.phi != 0, b.phi != 0, a.phi.isFinite, b.phi.isFinite, (a.phi < 0) != (b.phi < 0) else { return }
            let saved = eval.warm, savedFactor = eval.workspace?.savedFactor()
            if let root = (try? refine(a, b, eval: eval)) ?? refineAcrossFailures(a, b, eval: eval) {
                roots.append(root)
            } else {
                eval.warm = saved
                eval.workspace?.restoreFactor(savedFactor)
            }
        }
        for i in 1..<k {
            let g = from * Foundation.pow(to / from, Double(i) / Double(k - 1))
            let cur = evaluateOrFail(g, eval: eval)
            if cur.phi == 0 { roots.append(g); eval.keepRoot(g) }
            if cur.phi.isFinite && prev.phi.isFinite {
                bracketed(prev, cur)
            } else if prev.phi.isFinite && prev.phi != 0 {
                // The GF predictor fails at g (e.g. x₀/ρ(g) so large that the dual overflows)
                // but not at the previous point: the nearest point to the failure that still
                // evaluates may show a root the failed point would hide.
                if let e = evaluableEdge(from: prev, toward: g, eval: eval) { bracketed(prev, e) }
            } else if cur.phi.isFinite && cur.phi != 0 {
                // Out of a failing stretch: the same from this side. Unless that finds a root
                // (whose solve the scan goes on from), it goes on from g's solve.
                let saved = eval.warm, savedFactor = eval.workspace?.savedFactor(), found = roots.count
                if let e = evaluableEdge(from: cur, toward: prev.g, eval: eval) { bracketed(e, cur) }
                if roots.count == found {
                    eval.warm = saved
                    eval.workspace?.restoreFactor(savedFactor)
                }
            }
            prev = cur
        }
        return (roots, prev)
    }

    /// φ at g, or NaN when the GF predictor fails there (skipped by the scan: no sign change
    /// is read across it).
    private static func evaluateOrFail(_ g: Double, eval: Evaluator) -> Evaluator.Value {
        (try? eval.evaluate(g, signOnly: true)) ?? Evaluator.Value(g: g, phi: .nan, slope: nil)
    }

    /// Between an evaluated point `good` and a g where the GF predictor fails: bisection in
    /// log g for the evaluable point nearest the failure (to a width of 1e-14 in log g, at
    /// most 64 evaluations), stopping early at the first point where φ has the other sign than
    /// at `good`. Nil when no point other than `good` evaluates. (At large c the evaluable
    /// stretch next to g₀ can be a relative 1e-7 wide, with the root inside it: WN, L = 3,
    /// c g₀² = 4.5e5; stopping at 1e-3 of the interval, as before stop 26, missed it.)
    private static func evaluableEdge(from good: Evaluator.Value, toward bad: Double,
                                      eval: Evaluator) -> Evaluator.Value? {
        var inside = good, outside = bad
        let width = abs(Foundation.log(bad / good.g))
        var found: Evaluator.Value? = nil
        for _ in 0..<64 {
            guard abs(Foundation.log(outside / inside.g)) > max(1e-14, 1e-16 * width) else { break }
            let mid = (inside.g * outside).squareRoot()
            let v = evaluateOrFail(mid, eval: eval)
            if v.phi.isFinite {
                inside = v; found = v
                if v.phi == 0 || (v.phi < 0) != (good.phi < 0) { break }
            } else {
                outside = mid
            }
        }
        return found
    }

    /// A root of φ between two evaluations of opposite sign. With φ' at both ends (L = 2):
    /// start at the root of the cubic Hermite interpolant, then Newton steps on g kept inside
    /// the shrinking bracket, with bisection when a step leaves it or |φ| does not halve
    /// (`rtsafe`); stops when the next correction is ≤ 1e-14·g and returns that evaluated g
    /// (its prediction is kept for the answer). Otherwise GSL's Brent (relative tolerance 1e-14).
    private static func refine(_ a: Evaluator.Value, _ b: Evaluator.Value, eval: Evaluator) throws -> Double {
        var (lo, hi) = a.g < b.g ? (a, b) : (b, a)
        guard let dLo = lo.slope, let dHi = hi.slope, dLo.isFinite, dHi.isFinite else {
            return try RootFinder.brent({ try eval.evaluate($0).phi }, lower: lo.g, upper: hi.g,
                                        absTol: 0, relTol: 1e-14, maxIterations: 200)
        }
        let relTol = 1e-14
        var x = hermiteRoot(lo.g, lo.phi, dLo, hi.g, hi.phi, dHi)
        var dxOld = hi.g - lo.g, dx = dxOld
        for _ in 0..<200 {
            let v = try eval.evaluate(x)
            if v.phi == 0 { eval.keepRoot(x); return x }
            guard v.phi.isFinite else { break }
            if (v.phi < 0) == (lo.phi < 0) { lo = v } else { hi = v }
            if let d = v.slope, d.isFinite, d != 0 {
                let step = v.phi / d
                if abs(step) <= relTol * x { eval.keepRoot(x); return x }
                let xn = x - step
                // Newton when it stays inside the bracket and |φ| shrinks fast enough.
                if xn > lo.g && xn < hi.g && abs(2 * v.phi) <= abs(dxOld * d) {
                    dxOld = dx; dx = step; x = xn
                    continue
                }
            }
            dxOld = dx
            dx = 0.5 * (hi.g - lo.g)
            let xn = lo.g + dx
            if hi.g - lo.g <= relTol * lo.g || xn == lo.g || xn == hi.g { eval.keepRoot(x); return x }
            x = xn
        }
        // Not converged by the safeguarded iteration (e.g. a failed evaluation): Brent on what
        // is left of the bracket.
        return try RootFinder.brent({ try eval.evaluate($0).phi }, lower: lo.g, upper: hi.g,
                                    absTol: 0, relTol: relTol, maxIterations: 200)
    }

    /// A root between two evaluations of opposite sign when `refine` failed because the GF
    /// predictor fails somewhere between them: bisection in log g where a failed midpoint is
    /// replaced by the evaluable edge next to it (`evaluableEdge`) from whichever end shows
    /// the sign change, to a bracket 1e-14 wide (relative), whose end with the smaller |φ| is
    /// returned. Nil when the sign change lies inside a stretch where the predictor fails
    /// (both edges keep their end's sign). (Signed WN, L = 5, c g₀² = 350: the evaluation
    /// scan's edge search reached an evaluable point with the other sign at g = 18.26, past
    /// a failing stretch 18.3–19.0 — there x̃₀ = x₀/ρ reaches 1e5 and `s = x̃₀^{2−L} + Aᵀλ`
    /// cancels below rounding — while the root, 19.0289, sits in the evaluable stretch next
    /// to g₀ = 19.19; Brent stepped into the failing stretch and the search reported no root.)
    private static func refineAcrossFailures(_ a: Evaluator.Value, _ b: Evaluator.Value, eval: Evaluator) -> Double? {
        var (lo, hi) = a.g < b.g ? (a, b) : (b, a)
        func full(_ g: Double) -> Evaluator.Value {
            (try? eval.evaluate(g)) ?? Evaluator.Value(g: g, phi: .nan, slope: nil)
        }
        for _ in 0..<400 {
            guard (lo.phi < 0) != (hi.phi < 0) else { return nil }
            let mid = (lo.g * hi.g).squareRoot()
            if hi.g - lo.g <= 1e-14 * lo.g || mid <= lo.g || mid >= hi.g {
                let end = abs(lo.phi) <= abs(hi.phi) ? lo : hi
                // The kept prediction must be a full solve at that g.
                guard full(end.g).phi.isFinite else { return nil }
                eval.keepRoot(end.g)
                return end.g
            }
            var v = full(mid)
            if v.phi == 0 { eval.keepRoot(mid); return mid }
            if !v.phi.isFinite {
                // Replace the failure by the evaluable point nearest to it that shows the sign change.
                if let e = evaluableEdge(from: lo, toward: mid, eval: eval), (e.phi < 0) != (lo.phi < 0) {
                    v = e
                } else if let e = evaluableEdge(from: hi, toward: mid, eval: eval), (e.phi < 0) != (hi.phi < 0) {
                    v = e
                } else {
                    return nil
                }
                if v.phi == 0 { _ = full(v.g); eval.keepRoot(v.g); return v.g }
            }
            if (v.phi < 0) == (lo.phi < 0) { lo = v } else { hi = v }
        }
        return nil
    }

    /// The root in (x0, x1) of the cubic Hermite interpolant of (f0, d0) at x0 and (f1, d1) at
    /// x1 (f0, f1 of opposite signs), by bisection on the cubic; strictly inside the interval.
    static func hermiteRoot(_ x0: Double, _ f0: Double, _ d0: Double, _ x1: Double, _ f1: Double, _ d1: Double) -> Double {
        let h = x1 - x0
        func p(_ t: Double) -> Double {
            let t2 = t * t, t3 = t2 * t
            return (2 * t3 - 3 * t2 + 1) * f0 + (t3 - 2 * t2 + t) * h * d0
                + (-2 * t3 + 3 * t2) * f1 + (t3 - t2) * h * d1
        }
        var a = 0.0, b = 1.0
        let negAtA = f0 < 0
        for _ in 0..<60 {
            let t = 0.5 * (a + b)
            if (p(t) < 0) == negAtA { a = t } else { b = t }
        }
        let x = x0 + 0.5 * (a + b) * h
        return x > x0 && x < x1 ? x : x0 + 0.5 * h
    }

    /// GF predictions along the root search, warm-starting λ (MATH.md §4). For L = 2 it also
    /// carries `λ' = dλ/d log ρ` (see `DualWorkspace.entropicSlope`), which gives φ'(g) and a
    /// first-order predictor `λ + Δ log ρ·λ'` for the next warm start.
    final class Evaluator {
        let A: Matrix
        let y: [Double]
        let depth: Int
        let x0: [Double]
        let logX0: [Double]
        let g0: Double
        let c: Double
        /// The warm start: λ, λ' and the log ρ they belong to.
        struct Warm {
            var lambda: [Double]? = nil
            var slope: [Double]? = nil
            var logRho: Double = 0
            /// The log ρ at which `slope` was computed (a kept slope keeps it).
            var slopeLogRho: Double = 0
        }
        var warm = Warm()
        /// φ at g with φ'(g) when known.
        struct Value {
            var g: Double
            var phi: Double
            var slope: Double?
        }
        /// Predictions at the roots found on evaluated points, by `g.bitPattern`.
        var rootPredictions: [UInt64: GFLimitPrediction] = [:]
        private var last: (g: Double, prediction: GFLimitPrediction)?
        /// λ' from a fresh factorization of H whenever it is computed, never from the Newton
        /// iteration's last factor (which leaves a relative error up to ~1e-4; for tests).
        /// λ' is still kept across moves of log ρ up to `slopeReuse`.
        var exactSlopes = false
        /// Dual Newton iterations over every evaluation (the report's `newton_iterations`).
        var iterations = 0
        /// Newton buffers for depth ≥ 2, reused by every evaluation.
        let workspace: DualWorkspace?
        // L = 1 closed form: X(ρ) = P x₀/ρ + A⁺y (P x₀ ∈ ker A and A⁺y ∈ range Aᵀ are orthogonal).
        let px0: [Double]
        let pinvY: [Double]

        init(A: Matrix, y: [Double], depth: Int, x0: [Double], g0: Double, c: Double) throws {
            self.A = A; self.y = y; self.depth = depth; self.x0 = x0; self.g0 = g0; self.c = c
            logX0 = depth >= 2 ? x0.map { Foundation.log($0) } : []
            workspace = depth >= 2 ? DualWorkspace(A: A, y: y) : nil
            // The search reads only ‖x‖; `answer` solves the root afresh with the estimate.
            workspace?.estimatesErrors = false
            if depth == 1 {
                let svd = try SVD(A)
                let proj = KernelProjector(svd: svd, columns: A.cols)
                px0 = proj.apply(x0)
                pinvY = A.rows > 0 ? svd.pseudoInverseApply(y) : [Double](repeating: 0, count: A.cols)
            } else {
                px0 = []; pinvY = []
            }
        }

        /// Remembers the prediction of the last evaluation as that of the root `g`.
        func keepRoot(_ g: Double) {
            if let last, last.g == g { rootPredictions[g.bitPattern] = last.prediction }
        }

        /// φ(g) = ‖X(x₀/ρ(g))‖ − g and, for L = 2, φ'(g) = (d‖x‖/dℓ)(dℓ/dg) − 1 with
        /// ℓ = log ρ(g), dℓ/dg = −1/g + 2cg and d log x/dℓ = (Aᵀλ' − 2)/2.
        func evaluate(_ g: Double, signOnly: Bool = false) throws -> Value {
            let logRho = logMagnification(g: g, g0: g0, c: c)
            let (pred, xNorm, dNorm) = try normAndSlope(logRho: logRho, signFor: signOnly ? g : nil)
            last = (g, pred)
            let phi = xNorm - g
            guard let dNorm else { return Value(g: g, phi: phi, slope: nil) }
            let dPhi = dNorm * (-1 / g + 2 * c * g) - 1
            return Value(g: g, phi: phi, slope: dPhi.isFinite ? dPhi : nil)
        }

        /// The prediction at `logRho`, `‖x‖` and (L = 2) `d‖x‖/dℓ`.
        func normAndSlope(logRho: Double, signFor: Double? = nil) throws
            -> (prediction: GFLimitPrediction, norm: Double, slope: Double?) {
            let pred = try predict(logRho: logRho, signFor: signFor)
            // L = 2: ‖x‖ = √Σz and d‖x‖/dℓ = Σ z (Aᵀλ'/2 − 1)/‖x‖ straight from z when its
            // largest entry is a normal number; otherwise in logs.
            let fromZ = zIsNormal(pred)
            let xNorm = norm(pred)
            guard depth == 2, let slope = warm.slope, let lx = pred.logX, let ws = workspace else {
                return (pred, xNorm, nil)
            }
            let m = A.rows, n = A.cols
            if m > 0 && n > 0 {
                slope.withUnsafeBufferPointer { ws.multiplyTransposed($0.baseAddress!, into: ws.u) }
            } else {
                ws.u.update(repeating: 0, count: n)
            }
            let dNorm: Double
            if fromZ {
                var ds = 0.0
                for j in 0..<n { ds += pred.z[j] * (0.5 * ws.u[j] - 1) }
                dNorm = ds / xNorm
            } else {
                let mx = lx.max() ?? -.infinity
                guard mx.isFinite else { return (pred, xNorm, nil) }
                var s = 0.0, ds = 0.0
                for j in 0..<n {
                    let e = Foundation.exp(lx[j] - mx), e2 = e * e
                    s += e2
                    ds += e2 * (0.5 * ws.u[j] - 1)
                }
                dNorm = Foundation.exp(mx) * ds / s.squareRoot()
            }
            return (pred, xNorm, dNorm.isFinite ? dNorm : nil)
        }

        /// The GF prediction at `logRho`. With `signFor: g` (L = 2), the dual Newton may stop
        /// before its tolerance once the sign of φ(g) = ‖x‖ − g is settled: when
        /// `|‖x‖ − g| > 10‖x‖·max|δ log z| + 1e-14·g`, `δ log z` the remaining correction
        /// estimated by a chord step (|δ‖x‖| ≤ ‖x‖·max|δ log z|/2), and `max|δ log z| ≤ 0.1`.
        /// Such a prediction is only used for its sign and as a warm start.
        func predict(logRho: Double, signFor: Double? = nil) throws -> GFLimitPrediction {
            if depth == 1 {
                let x = linearLimit(kernelScale: Foundation.exp(-logRho))
                let res = residualNorm(A, x, y)
                let ny = norm2(y)
                return GFLimitPrediction(depth: 1, z: x, x: x, logX: nil, lambda: [], iterations: 0,
                                         kktResidual: ny > 0 ? res / ny : res, lostDigits: false,
                                         amplification: nil, method: "closed-form")
            }
            let lx = logX0.map { $0 - logRho }
            var predictor: [Double]? = nil
            if let lam = warm.lambda, let sl = warm.slope, lam.count == sl.count {
                let dl = logRho - warm.logRho
                predictor = zip(lam, sl).map { $0 + dl * $1 }
            }
            var lambda = warm.lambda
            // Whatever happens, λ now belongs to this log ρ and the old slope is stale, unless
            // log ρ moved by at most `slopeReuse` (see there).
            let previousSlope = warm.slope, moved = abs(logRho - warm.slopeLogRho)
            var slopeAt = logRho
            defer { warm = Warm(lambda: lambda, slope: warm.slope, logRho: logRho, slopeLogRho: slopeAt) }
            warm.slope = nil
            var settled: LimitPredictor.SignTest? = nil
            if let g = signFor {
                let n = A.cols
                settled = { v, z, du in
                    var mx = -Double.infinity, umax = 0.0
                    for j in 0..<n { mx = max(mx, v[j]); umax = max(umax, abs(du[j])) }
                    guard mx.isFinite, umax <= 0.1 else { return false }
                    let xn = Self.norm(logZ: v, z: z, count: n, max: mx)
                    return abs(xn - g) > 10 * xn * umax + 1e-14 * g
                }
            }
            let p = try LimitPredictor.gradientFlow(A: A, y: y, depth: depth, logX0: lx, warmStart: &lambda,
                                                   predictor: predictor, workspace: workspace, signSettled: settled)
            iterations += p.iterations
            if depth == 2, let previousSlope, moved <= Self.slopeReuse, p.method == "dual-newton" {
                warm.slope = previousSlope
                slopeAt = warm.slopeLogRho
            } else if depth == 2, let ws = workspace, p.method == "dual-newton" {
                if exactSlopes { ws.factorNearBest = false }
                var sl = [Double](repeating: 0, count: A.rows)
                let ok = sl.withUnsafeMutableBufferPointer { ws.entropicSlope(ws.best, into: $0.baseAddress ?? ws.tm) }
                if ok { warm.slope = sl }
            }
            return p
        }

        /// L = 1: `X(σ x₀) = σ P x₀ + A⁺y` (σ = 1/ρ; negative for the g < 0 branch).
        func linearLimit(kernelScale s: Double) -> [Double] {
            var x = [Double](repeating: 0, count: x0.count)
            for j in 0..<x.count { x[j] = px0[j] * s + pinvY[j] }
            return x
        }

        /// Largest move of log ρ over which λ' is kept instead of computed afresh (a Gram
        /// matrix and its Cholesky factor): λ' changes by O(Δℓ), so φ' and the next warm
        /// start are off by a relative O(1e-8) at most, far below what Newton on g or the
        /// dual Newton can notice. Saves the slope of the last evaluations of a root
        /// search, which land within 1e-10 of each other.
        static let slopeReuse = 1e-8

        /// Whether an L = 2 prediction's `z` can stand in for `exp(2 log x)`: its largest
        /// entry is a normal number (`LimitPredictor.normalLogZ`).
        func zIsNormal(_ p: GFLimitPrediction) -> Bool {
            depth == 2 && 2 * (p.logX?.max() ?? -.infinity) > LimitPredictor.normalLogZ
        }

        /// `‖x‖₂`: `√Σz` when `zIsNormal` (entries that underflow add nothing then), else from
        /// `log x` when available (no underflow issues).
        func norm(_ p: GFLimitPrediction) -> Double {
            if zIsNormal(p) { return p.z.reduce(0, +).squareRoot() }
            guard let lx = p.logX else { return norm2(p.x) }
            let mx = lx.max() ?? -.infinity
            if mx == -.infinity { return 0 }
            var s = 0.0
            for v in lx { let e = Foundation.exp(v - mx); s += e * e }
            return Foundation.exp(mx) * s.squareRoot()
        }

        /// `norm(_:)` for the sign test, which sees the dual Newton's raw iterate: `√Σz`
        /// (L = 2, `x² = z`) when `max log z = mx` is above `LimitPredictor.normalLogZ`, else
        /// from `log z` scaled by `mx`.
        static func norm(logZ v: UnsafePointer<Double>, z: UnsafePointer<Double>, count n: Int, max mx: Double) -> Double {
            var s = 0.0
            if mx > LimitPredictor.normalLogZ {
                for j in 0..<n { s += z[j] }
                return s.squareRoot()
            }
            for j in 0..<n { s += Foundation.exp(v[j] - mx) }
            return Foundation.exp(0.5 * mx) * s.squareRoot()
        }
    }
}
