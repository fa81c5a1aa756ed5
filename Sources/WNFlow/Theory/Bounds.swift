import Foundation
import GSLKit

/// Bounds and gaps around the predicted limit (MATH.md §4 "What the limit is biased towards").
public struct TheoryBounds: Sendable, Equatable {
    /// `‖z_∞‖₁ − Q` (plain ℓ1 gap; ≥ 0 up to LP tolerance).
    public var l1Gap: Double?
    /// `‖z_∞‖_{w,1} − Q_w` with the report's weights (`TheoryReport.weights`).
    public var weightedGap: Double?
    /// Its a-posteriori upper bound: L = 2 `H(z_w) − H(z_∞)`; L ≥ 3
    /// `κ·(L/2)(Σ z_∞^{2/L} − Σ z_w^{2/L})` with κ the weights' normalization (see `powerGapBound`).
    public var weightedGapBound: Double?
    /// `g_∞ ≥ Q^{1/L}` (L ≥ 2; `‖x‖₂² = Σ z^{2/L} ≥ (Σ z)^{2/L}`), `g_∞ ≥ ‖A⁺y‖` (L = 1).
    public var gInfLowerBound: Double?
    /// (3.19) in log form: `log ρ_∞ ≥ log(g₀/g_lb) + c(g_lb² − g₀²)` when `g_lb ≥ (2c)^{-1/2}` (WN only).
    public var logRhoLowerBound: Double?
    /// Cover's probability that a Gaussian M×N matrix meets the kernel assumption (1 for a
    /// signed problem, whose `[A, −A]` always meets it).
    public var kernelProbabilityGaussian: Double

    public init(l1Gap: Double? = nil, weightedGap: Double? = nil, weightedGapBound: Double? = nil,
                gInfLowerBound: Double? = nil, logRhoLowerBound: Double? = nil, kernelProbabilityGaussian: Double) {
        self.l1Gap = l1Gap; self.weightedGap = weightedGap; self.weightedGapBound = weightedGapBound
        self.gInfLowerBound = gInfLowerBound; self.logRhoLowerBound = logRhoLowerBound
        self.kernelProbabilityGaussian = kernelProbabilityGaussian
    }
}

/// The formulas behind `TheoryBounds` (MATH.md §4).
public enum Bounds {
    /// `H(z) = Σ z log z − z` with `0 log 0 = 0` (MATH.md §4, L = 2 gap bound).
    public static func entropy(_ z: [Double]) -> Double {
        var h = 0.0
        for v in z where v > 0 { h += v * Foundation.log(v) - v }
        return h
    }

    /// L = 2 a-posteriori gap (MATH.md §4): with `w_n = log(1/x̃₀,n²)` (i.e. `log z₀ = −w`),
    /// `D_F(z, z₀) = H(z) + ⟨w, z⟩ + Σz₀`, so optimality of z_∞ gives
    /// `‖z_∞‖_{w,1} − Q_w ≤ H(z_w) − H(z_∞)` for any weighted-ℓ1 minimizer `z_w`.
    /// (Valid for any w for which `Q_w` is finite; w > 0 iff x̃₀ < 1.)
    public static func entropicGapBound(zInf: [Double], zW: [Double]) -> Double {
        entropy(zW) - entropy(zInf)
    }

    /// L ≥ 3 a-posteriori gap (MATH.md §4): `D_F(z, x̃₀^L) = (L/(L−2))[⟨w, z⟩ − (L/2)Σ z^{2/L}] + const`
    /// with `w = x̃₀^{⊙(2−L)}`, hence `‖z_∞‖_{w,1} − Q_w ≤ (L/2)(Σ z_∞^{2/L} − Σ z_w^{2/L})`.
    /// The left side is linear in w, the right side is not: for normalized weights
    /// `w' = κ w` (here `κ = exp(−logFactor)`, `logFactor` from
    /// `LimitPredictor.normalizedPowerWeights`) the bound on `‖z_∞‖_{w',1} − Q_{w'}` is
    /// `κ·(L/2)(…)`. Returns that normalized bound (0 when κ underflows).
    public static func powerGapBound(zInf: [Double], zW: [Double], depth L: Int, logFactor: Double = 0) -> Double {
        let e = 2 / Double(L)
        var d = 0.0
        for v in zInf where v > 0 { d += Foundation.pow(v, e) }
        for v in zW where v > 0 { d -= Foundation.pow(v, e) }
        let raw = Double(L) / 2 * d
        return raw * Foundation.exp(-logFactor)
    }

    /// (3.19) in log form: `log ρ(g) = log(g₀/g) + c(g² − g₀²)` falls on `(0, (2c)^{-1/2}]`
    /// and rises after, so `g_∞ ≥ gLower` gives `log ρ_∞ ≥ log ρ(max(gLower, (2c)^{-1/2}))`:
    /// the paper's bound where `gLower ≥ (2c)^{-1/2}`, and the minimum of log ρ (weaker, still
    /// valid) where not — before stop 30 nil there (18 of 177 WN configs of a helper's round).
    /// Use `gLower = Q^{1/L}` (L ≥ 2) or `‖A⁺y‖` (L = 1).
    public static func logRhoLowerBound(gLower: Double, g0: Double, c: Double) -> Double? {
        guard gLower > 0, c > 0, g0 > 0 else { return nil }
        let g = max(gLower, 1 / (2 * c).squareRoot())
        let bound = WeightNormLimit.logMagnification(g: g, g0: g0, c: c)
        return bound.isFinite ? bound : nil
    }

    /// (3.19) from Q: `gLower = Q^{1/L}` (MATH.md §4), for L ≥ 2.
    public static func logRhoLowerBound(l1Min q: Double, depth L: Int, g0: Double, c: Double) -> Double? {
        guard L >= 2, q > 0 else { return nil }
        return logRhoLowerBound(gLower: Foundation.pow(q, 1 / Double(L)), g0: g0, c: c)
    }

    /// Cover/Wendel (MATH.md §4): the probability that an M×N Gaussian A admits w > 0 with
    /// A w = 0, `2^{1−N} Σ_{i<N−M} C(N−1, i)`, by a log-sum-exp of `lgamma` terms.
    /// 1 for M = 0, 0 for M ≥ N, ½ for M = N/2.
    public static func coverProbability(rows m: Int, columns n: Int) -> Double {
        if n <= 0 || m >= n { return 0 }
        if m <= 0 { return 1 }
        let top = n - m - 1  // i = 0 … top
        let nm1 = Double(n - 1)
        func lnChoose(_ i: Int) -> Double {
            Foundation.lgamma(nm1 + 1) - Foundation.lgamma(Double(i) + 1) - Foundation.lgamma(nm1 - Double(i) + 1)
        }
        let terms = (0...top).map(lnChoose)
        let mx = terms.max()!
        var s = 0.0
        for t in terms { s += Foundation.exp(t - mx) }
        let lp = (1 - Double(n)) * Foundation.log(2.0) + mx + Foundation.log(s)
        return min(1, Foundation.exp(lp))
    }
}

// MARK: - The predict report

/// Which flow `Theory.report` predicts the limit of (MATH.md §1).
public enum TheoryFlow: Sendable, Equatable {
    /// Gradient flow (1.11).
    case gf
    /// WN flow (1.13)–(1.14) with constant rates, `vNorm = ‖v₀‖`.
    case wn(etaG: Double, etaV: Double, vNorm: Double)
    /// WN with the time-dependent rate of Thm 2.4.
    case wnTimeDependent(etaV: Double)

    /// WN with constant rates, whose limit carries the magnification ρ (Thm 2.1).
    var isConstantRateWN: Bool { if case .wn = self { return true } else { return false } }
}

/// Everything `wnflow predict` writes (INTERFACE.md "predict FILE"), MATH.md §4.
public struct TheoryReport: Sendable {
    public var depth: Int
    public var flow: TheoryFlow
    /// Predicted `z_∞` and `x_∞`.
    public var z: [Double]
    public var x: [Double]
    /// `g_inf` and `log_rho` (WN only; `logRho` nil for the time-dependent rate).
    public var gInf: Double?
    public var logRho: Double?
    /// Every root of the WN scalar equation found (WN constant rate).
    public var wnRoots: [Double]
    /// `l1_min` = Q and a minimizer (nil when S₊ is empty, possible only for L = 1).
    public var l1Min: Double?
    public var l1Minimizer: [Double]?
    /// `weighted_l1_min` = Q_w for `weights` (L = 2: `log(1/x̃₀²)`; L ≥ 3: `x̃₀^{2−L}`
    /// normalized to max 1; nil for L = 1), and a minimizer.
    public var weightedL1Min: Double?
    public var weightedL1Minimizer: [Double]?
    public var weights: [Double]?
    /// `kernel_positive`: the kernel assumption (Thm 2.2) holds; a witness w ≥ 1, A w = 0.
    /// nil when not checked (`limitOnly`).
    public var kernelPositive: Bool?
    public var kernelWitness: [Double]?
    public var bounds: TheoryBounds
    /// The underlying GF prediction (method, Newton iterations, residual, lost digits).
    public var prediction: GFLimitPrediction
    public var warnings: [String]
    /// Depth-1 constant-rate WN: the limit if g ends below 0 (`WNLimitPrediction.negativeBranch`).
    public var negativeBranch: WNBranch? = nil
}

/// The theory side of `wnflow predict` (MATH.md §4).
public enum Theory {
    /// Predicts the limit of `flow` at depth `depth` from `x0` on `(A, y)` and gathers Q, Q_w,
    /// the kernel assumption and the bounds of MATH.md §4. Signed problems: pass
    /// `A.augmentedWithNegation`, `x0 = (u₀, w₀)` and `signed: true` (MATH.md §5; the ℓ1 gap is
    /// then of the end-to-end `u^L − w^L`).
    /// `limitOnly`: the limit alone (z, x, g_∞, log ρ); the three LPs and the bounds that
    /// need them are skipped (nil), which makes it about ten times faster. An empty S₊ then
    /// shows as the dual Newton's `.notConverged`, not `.emptyFeasibleSet`.
    /// - Throws: `TheoryError.emptyFeasibleSet` when S₊ is empty and depth ≥ 2;
    ///   `.invalidInput` for bad dimensions/signs; `.notConverged`, `.solverFailure`.
    public static func report(A: Matrix, y: [Double], depth: Int, x0 start: [Double], flow: TheoryFlow,
                              limitOnly: Bool = false, signed: Bool) throws -> TheoryReport {
        try LimitPredictor.validate(A: A, y: y, n: start.count, depth: depth)
        guard start.allSatisfy(\.isFinite) else { throw TheoryError.invalidInput("x0 must be finite") }
        var warnings: [String] = []
        // At even depth z = x^L, the loss and both flows commute with flipping any entry's sign
        // (∇ℒ(Dx) = D∇ℒ(x) for D = diag(±1)), so the limit from x₀ is D·(the limit from |x₀|).
        var x0 = start
        var signs: [Double]? = nil
        if depth >= 2 && !start.allSatisfy({ $0 > 0 }) {
            guard depth % 2 == 0, start.allSatisfy({ $0 != 0 }) else {
                throw TheoryError.invalidInput(depth % 2 == 0
                    ? "x0 must be non-zero entry-wise for depth >= 2 (MATH.md Lemma 3.3: zero entries never move)"
                    : "x0 must be > 0 entry-wise at odd depth \(depth) (MATH.md Lemma 3.3; at even depth signs are allowed)")
            }
            signs = start.map { $0 < 0 ? -1 : 1 }
            x0 = start.map { abs($0) }
            warnings.append("x0 has negative entries: at even depth the flow is blind to each entry's sign, so the limit is predicted from |x0| and x carries x0's signs")
        }

        // Q (throws emptyFeasibleSet for depth ≥ 2).
        var q: Double? = nil, zQ: [Double]? = nil
        var kernel: (holds: Bool, witness: [Double]?)? = nil
        if !limitOnly {
            do {
                let r = try L1Minimization.minimum(A: A, y: y)
                q = r.value; zQ = r.minimizer
            } catch TheoryError.emptyFeasibleSet where depth == 1 {
                warnings.append("S+ is empty: no non-negative solution, l1_min undefined (depth 1 allows signs)")
            } catch let TheoryError.solverFailure(why) {
                // Q only reports on the limit: its LP failing leaves the limit standing.
                warnings.append("l1_min not computed (\(why))")
            }
            do {
                let k = try KernelAssumption.check(A: A)
                if !k.holds {
                    warnings.append("kernel assumption (Thm 2.2) fails: no w > 0 with A w = 0; convergence to zero loss is not guaranteed")
                }
                kernel = k
            } catch let TheoryError.solverFailure(why) {
                warnings.append("kernel assumption not decided (\(why))")
            }
        }

        // The limit.
        var gInf: Double? = nil, logRho: Double? = nil, roots: [Double] = []
        var negativeBranch: WNBranch? = nil
        var pred: GFLimitPrediction
        var c: Double? = nil
        switch flow {
        case .gf:
            pred = try LimitPredictor.gradientFlow(A: A, y: y, depth: depth, x0: x0)
        case let .wn(etaG, etaV, vNorm):
            let wn = try WeightNormLimit.constantRate(A: A, y: y, depth: depth, x0: x0, etaG: etaG, etaV: etaV, vNorm: vNorm)
            pred = wn.gf; gInf = wn.gInf; logRho = wn.logRho; roots = wn.roots; c = wn.c
            negativeBranch = wn.negativeBranch
            warnings += wn.warnings
            // log ρ = log(g₀/g) + c(g² − g₀²) rounds to about ε(|log(g₀/g)| + c(g² + g₀²)), and
            // x̃₀ = x₀/ρ carries that into z at about max(1, L − 1) times it: the floor of any comparison
            // (WN, L = 3, 2cg² = 2.9e4: 6.8e-12 between run and prediction at every rtol
            // from 1e-12 to 1e-14 and under four methods).
            let g0 = wn.g0, gi = abs(wn.gInf), cc = wn.c ?? 0
            let ell = 2 * Double.ulpOfOne * (abs(Foundation.log(g0 / gi)) + cc * (gi * gi + g0 * g0))
            var floor = Double(max(depth - 1, 1)) * ell
            // g_∞ within rounding of g₀ while c·g₀²·ε is not small (v much faster than g): the
            // root search in g cannot place log ρ, since one ulp of g moves it by 2cg²·ulp(g)
            // (a helper's round, depth 1, 3, 4, M = 8, N = 20, scale 10: at c·g₀²·ε = 5.5e-3 z
            // was 0.65 off, estimate 0.089; at 6.8, depth 1, 2.6e9 off). `WeightNormLimit`
            // then solves ‖X(ℓ)‖ = g₀ − ℓ/(2cg₀) in ℓ itself, whose rounding is about ε|ℓ|
            // (those cases: 5e-10, 3e-15 and 1e-13 from the integrated limits). Should that
            // solve fail, the answer claims no digits in z, so verify measures, not judges, it.
            var ellError = ell
            // g's share of log ρ's rounding: z's floor over L, but not the "no digits in z" floor
            // below, where g itself is within rounding of g₀ (that bump made g's estimate 1/L).
            var gFloor = floor
            if WeightNormLimit.rootUnresolvedInG(g: gi, g0: g0, c: cc) {
                let kappa = cc * g0 * g0 * Double.ulpOfOne
                if wn.logRhoPolished {
                    ellError = 2 * Double.ulpOfOne * (abs(wn.logRho ?? 0) + 1)
                    floor = Double(max(depth - 1, 1)) * ellError
                    gFloor = floor
                } else {
                    floor = max(floor, 1)
                    warnings.append("g_inf is within rounding of g0 while c·g0²·ε = \(kappa) > 1e-3: log rho = log(g0/g) + c(g² − g0²) "
                        + "moves by 2cg²·ulp(g) per ulp of g, so the root search cannot place it and z is not resolved; integrate with simulate")
                }
            }
            if depth == 2 && floor > sensitivityLevel && floor < 1, let lr = wn.logRho,
               let moved = zMoves(A: A, y: y, prediction: pred, logX0: x0.map { Foundation.log($0) - lr }) {
                floor = min(floor, ellError * moved.shift + 4 * Double.ulpOfOne * moved.entries)
                gFloor = min(gFloor, floor)
            }
            if floor.isFinite && floor > 0 {
                // g∞ = ‖z∞^{1/L}‖ at the root, so z's floor reaches g at 1/L of it (the g part
                // had kept the GF solve's own 4ε while log ρ's rounding moved z by up to 1e-11).
                let old = pred.errorEstimate
                pred.errorEstimate = PredictionError(z: (old?.z ?? 0) + floor,
                                                     g: (old?.g ?? 0) + (gFloor.isFinite ? gFloor : 0) / Double(max(depth, 1)))
            }
        case let .wnTimeDependent(etaV):
            let wn = try WeightNormLimit.timeDependent(A: A, y: y, depth: depth, x0: x0, etaV: etaV)
            pred = wn.gf; gInf = wn.gInf
            warnings += wn.warnings
        }
        if pred.lostDigits {
            warnings.append("depth \(depth): x0^(2-L) dwarfs the limit (amplification \(pred.amplification ?? .infinity)); "
                + "reported the weighted-l1 LP minimizer instead of the Bregman projection")
        }
        if pred.kktResidual > 1e-10 {
            warnings.append("prediction residual ||Az - y||/||y|| = \(pred.kktResidual)")
        }

        // Effective initialization in log form (depth ≥ 2).
        var weights: [Double]? = nil, qw: Double? = nil, zw: [Double]? = nil
        // Signed: [A, −A] meets the kernel assumption for every A (w = 1), so Cover's count of a
        // Gaussian M×2N matrix (below 1 for 2N ≤ 2M) would not describe it.
        var bounds = TheoryBounds(kernelProbabilityGaussian: signed ? 1 : Bounds.coverProbability(rows: A.rows, columns: A.cols))
        // ‖z‖₁ − Q of the end-to-end z: with absolute values (depth 1 allows signs), and for a
        // signed problem of u^L − w^L, not of the lifted (u^L, w^L), whose sum also counts the mass
        // u and w cancel (signed L = 2 from a large start: 3.12 where ‖z‖₁ − Q was 0).
        if let q {
            let zEnd = signed ? Prediction.foldSigned(pred.z) : pred.z
            bounds.l1Gap = zEnd.reduce(0) { $0 + abs($1) } - q
        }
        // Q, Q_w, the kernel assumption and the bounds built on them: not in limit-only mode.
        if !limitOnly {
            if depth >= 2 {
                let lr = logRho ?? 0
                let logXt = x0.map { Foundation.log($0) - lr }
                var logFactor = 0.0
                if depth == 2 {
                    weights = logXt.map { -2 * $0 }
                } else {
                    let nw = LimitPredictor.normalizedPowerWeights(depth: depth, logX0: logXt)
                    weights = nw.weights; logFactor = nw.logFactor
                }
                do {
                    let r = try L1Minimization.minimum(A: A, y: y, weights: weights)
                    qw = r.value; zw = r.minimizer
                } catch TheoryError.unboundedProgram {
                    warnings.append("weighted l1 minimum is unbounded (some weights <= 0: effective init x0/rho >= 1)")
                } catch let TheoryError.solverFailure(why) {
                    warnings.append("weighted_l1_min not computed (\(why))")
                }
                if let w = weights, let qw, let zw {
                    bounds.weightedGap = weightedSum(w, pred.z) - qw
                    bounds.weightedGapBound = depth == 2
                        ? Bounds.entropicGapBound(zInf: pred.z, zW: zw)
                        : Bounds.powerGapBound(zInf: pred.z, zW: zw, depth: depth, logFactor: logFactor)
                }
                if let q { bounds.gInfLowerBound = Foundation.pow(q, 1 / Double(depth)) }
            } else {
                if let svd = try? SVD(A) { bounds.gInfLowerBound = A.rows > 0 ? norm2(svd.pseudoInverseApply(y)) : 0 }
            }
        }
        // A limit in S₊ has ‖z‖₁ ≥ Q and Σ w z ≥ Q_w: a gap below that by more than rounding
        // means the predicted z misses A z = y along a direction the LP prices high (a column
        // of norm 1e-7: residual 1e-9 relative, ‖z‖₁ 1% below Q).
        for (name, gap, level) in [("l1_gap ||z||_1 - Q", bounds.l1Gap, q), ("weighted_l1_gap", bounds.weightedGap, qw)] {
            if let gap, let level, gap < -1e-9 * abs(level) {
                warnings.append("\(name) = \(gap) < 0: the prediction misses A z = y (residual \(pred.kktResidual) relative) "
                    + "along a direction the LP prices high, so z is not resolved to better than about \(abs(gap / level)) relative")
            }
        }
        if let c, let gl = bounds.gInfLowerBound {
            bounds.logRhoLowerBound = Bounds.logRhoLowerBound(gLower: gl, g0: norm2(x0), c: c)
        }

        if let signs { pred.x = zip(pred.x, signs).map { $0 * $1 } }
        return TheoryReport(depth: depth, flow: flow, z: pred.z, x: pred.x, gInf: gInf, logRho: logRho,
                            wnRoots: roots, l1Min: q, l1Minimizer: zQ, weightedL1Min: qw, weightedL1Minimizer: zw,
                            weights: weights, kernelPositive: kernel?.holds, kernelWitness: kernel?.witness,
                            bounds: bounds, prediction: pred, warnings: warnings, negativeBranch: negativeBranch)
    }
}

extension Theory {
    /// Above this rounding floor of a depth-2 WN prediction (ε·|log ρ| carried into z at 1×)
    /// the floor is replaced by z's measured first-order moves (`zMoves`).
    static let sensitivityLevel = 1e-10

    /// Depth 2: how far z moves, relative, per unit move of log ρ (`shift`; `δ log x̃₀ = −δℓ·1`)
    /// and under each entry's rounding of `log x̃₀ = log x₀ − log ρ` (`entries`: the larger of
    /// two ±ε|log x̃₀,n| sign patterns per unit ε, `DualWorkspace.entropicRelativeMoves`). Near the ℓ1
    /// LP's vertex, where |log ρ| is huge, both are far below 1: WN at log ρ = 2.9e10 (‖v₀‖ =
    /// 1e-5) gave 1.3e-5 as z's error from the rounding of log ρ, while the prediction and the
    /// integrated limit agree to 7.6e-13. Nil when z is not known in logs or the solve fails.
    static func zMoves(A: Matrix, y: [Double], prediction p: GFLimitPrediction, logX0: [Double])
        -> (shift: Double, entries: Double)? {
        guard let lx = p.logX, lx.count == A.cols, logX0.count == A.cols, logX0.allSatisfy(\.isFinite) else { return nil }
        let ws = DualWorkspace(A: A, y: y)
        let uniform = [Double](repeating: -2, count: A.cols)
        // Two sign patterns (alternating, and Thue–Morse: the parity of j's bits), so that one
        // lying near range(Aᵀ) (a row of A alternating in sign) does not hide the move.
        let alternating = logX0.indices.map { 2 * abs(logX0[$0]) * ($0 % 2 == 0 ? 1 : -1) }
        let thueMorse = logX0.indices.map { 2 * abs(logX0[$0]) * ($0.nonzeroBitCount % 2 == 0 ? 1 : -1) }
        guard let r = ws.entropicRelativeMoves(logZ: lx.map { 2 * $0 }, moves: [uniform, alternating, thueMorse]) else { return nil }
        return (r[0], max(r[1], r[2]))
    }
}
