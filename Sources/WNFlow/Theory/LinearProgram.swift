import CGLPK
import Foundation
import GSLKit
import Synchronization

// MARK: - Errors

/// Why a theory computation (MATH.md §4) could not produce an answer.
/// Every message names what is wrong and what to change.
public enum TheoryError: Error, CustomStringConvertible, Sendable, Equatable {
    /// `S₊ = {z ≥ 0 : Az = y}` (MATH.md §0) is empty: no non-negative solution exists,
    /// so no flow with x₀ > 0 and depth ≥ 2 can reach zero loss.
    case emptyFeasibleSet
    /// The linear program has no finite minimum (a weight is negative along a ray of S₊).
    case unboundedProgram(String)
    /// GLPK or a linear solve failed for a numerical reason.
    case solverFailure(String)
    /// Dimensions, signs or non-finite values in the input.
    case invalidInput(String)
    /// An iteration (dual Newton, root search) did not reach its tolerance.
    case notConverged(String)

    public var description: String {
        switch self {
        case .emptyFeasibleSet:
            return "the feasible set S+ = {z >= 0 : A z = y} is empty: no non-negative solution of A z = y exists; "
                + "use a y in the cone spanned by A's columns (e.g. y = A z* with z* >= 0) or a signed model ([A, -A])"
        case .unboundedProgram(let s):
            return "linear program is unbounded (\(s)); use non-negative weights"
        case .solverFailure(let s):
            return "numerical failure: \(s)"
        case .invalidInput(let s):
            return "invalid input: \(s)"
        case .notConverged(let s):
            return "did not converge: \(s)"
        }
    }
}

// MARK: - GLPK wrapper

/// An optimal basic solution of `min cᵀx s.t. A x = b, x ≥ lower`.
public struct LPSolution: Sendable {
    /// The primal solution (length N).
    public var x: [Double]
    /// `cᵀx` as GLPK reports it (for the problem as posed to GLPK).
    public var objective: Double
    /// The row duals λ (length M): at an optimum `Aᵀλ ≤ c` with equality on the basis.
    public var rowDuals: [Double]
    /// Whether each structural column is basic in GLPK's final basis.
    public var basic: [Bool]
}

/// Why GLPK stopped without an optimum (mapped to `TheoryError` by callers).
enum LPFailure: Error {
    case infeasible
    case unbounded
    case failure(String)
}

/// Serializes every use of GLPK. GLPK keeps per-thread state (its environment is
/// thread-local), so each problem is created, solved and deleted inside one
/// synchronous scope (one thread), and the lock keeps those scopes apart.
private let glpkLock = Mutex<Int>(0)

/// Owns one `glp_prob`; deleted in `deinit`. Never escapes the synchronous
/// scope of `LinearProgram.minimize` (see `glpkLock`).
final class GLPKProblem {
    let prob: OpaquePointer

    init() {
        cglpk_quiet()
        prob = glp_create_prob()
    }

    deinit { glp_delete_prob(prob) }

    /// Runs the simplex method (primal, or `dual`: GLPK's two-phase dual simplex, which
    /// falls back to the primal one itself); returns GLPK's return code and status.
    func simplex(presolve: Bool, dual: Bool = false) -> (ret: Int32, status: Int32) {
        var parm = glp_smcp()
        glp_init_smcp(&parm)
        parm.msg_lev = cglpk_msg_off()
        parm.presolve = presolve ? GLP_ON : GLP_OFF
        if dual { parm.meth = Int32(GLP_DUALP) }
        if !presolve { glp_adv_basis(prob, 0) }
        let ret = glp_simplex(prob, &parm)
        return (ret, glp_get_status(prob))
    }

    /// The primal simplex again from the current basis, with GLPK's primal and dual
    /// feasibility tolerances at 1e-12 instead of 1e-7 (on the scaled problem).
    func tighten() -> (ret: Int32, status: Int32) {
        var parm = glp_smcp()
        glp_init_smcp(&parm)
        parm.msg_lev = cglpk_msg_off()
        parm.presolve = GLP_OFF
        parm.tol_bnd = 1e-12
        parm.tol_dj = 1e-12
        let ret = glp_simplex(prob, &parm)
        return (ret, glp_get_status(prob))
    }

    /// GLPK's simplex in exact rational arithmetic from the current basis (`glp_exact`), at
    /// most `exactIterations` pivots: a count, not a time, so that the answer does not depend
    /// on the machine's speed (a 10 s time limit let one config give two answers on reruns:
    /// GF, L = 5, M = 23, N = 74, weights spanning 1e12, whose exact solve takes 40 pivots
    /// in 9.9–10.2 s). `exactSafetySeconds` stops a solve that would run for minutes.
    func exact(columns n: Int) -> (ret: Int32, status: Int32) {
        var parm = glp_smcp()
        glp_init_smcp(&parm)
        parm.msg_lev = cglpk_msg_off()
        parm.it_lim = Int32(clamping: LinearProgram.exactIterations(columns: n))  // counted down within this call
        parm.tm_lim = Int32(LinearProgram.exactSafetySeconds * 1000)
        let ret = glp_exact(prob, &parm)
        return (ret, glp_get_status(prob))
    }

    /// Whether the current basis is dual feasible relative to each column's own cost:
    /// `c_j − a_jᵀν ≥ −(1e-9|c_j| + 16ε (|A|ᵀ|ν|)_j)` for every column at its bound.
    /// GLPK's own test (`tol_dj` = 1e-7 on the scaled problem) passes columns whose costs are
    /// far below the largest as optimal when they are not: weights `w ∝ x̃₀^{2−L}` spanning
    /// 1e10 (L = 5, M = 3, N = 14) left the weighted-ℓ1 minimum 36% too high, on another
    /// support, and the WN root search on a spurious root.
    func dualFeasible(A: Matrix, c: [Double]) -> Bool {
        let m = A.rows, n = A.cols
        var nu = [Double](repeating: 0, count: m)
        for i in 0..<m { nu[i] = glp_get_row_dual(prob, Int32(i + 1)) }
        for j in 0..<n where glp_get_col_stat(prob, Int32(j + 1)) != GLP_BS {
            var dot = 0.0, mag = 0.0
            for i in 0..<m {
                let a = A.storage[i * n + j]
                dot += a * nu[i]; mag += abs(a * nu[i])
            }
            if c[j] - dot < -(1e-9 * abs(c[j]) + 16 * Double.ulpOfOne * mag) { return false }
        }
        return true
    }
}

/// A safe interface to GLPK's simplex method (the linear programs of MATH.md §0 and §4:
/// `Q`, `Q_w` and the kernel assumption).
public enum LinearProgram {
    /// Pivots the exact simplex may take to finish an LP whose floating-point optimum still
    /// fails the per-column dual check (`GLPKProblem.dualFeasible`); past them the
    /// floating-point answer stands. A count keeps the answer independent of the machine.
    static func exactIterations(columns n: Int) -> Int { 2 * n + 20 }
    /// The exact simplex's time limit, a safety net only: a solve stopped by it is reported
    /// as a failure of the LP (its field null, with a warning), not as the floating-point
    /// answer, since where it stops depends on the machine. (GLPK's lock is held meanwhile,
    /// so other workers' LPs wait.)
    static let exactSafetySeconds = 60.0

    /// The relative residual a basic solution must meet to be taken as it is (a
    /// non-degenerate vertex re-solved on its support meets ~1e-16).
    static let acceptedResidual = 1e-11

    /// Above this relative residual a basic solution is not a solution of the data at all.
    static let materialResidual = 1e-9

    /// Solves `min cᵀx s.t. A x = b, x ≥ lower` with GLPK (automatic scaling): the dual simplex
    /// from the lower bounds when `c ≥ 0`, else (or when it fails) the primal simplex with the
    /// presolver, and a last attempt without the presolver when that reports trouble.
    /// GLPK output is switched off.
    /// - Throws: `TheoryError.emptyFeasibleSet` (infeasible), `.unboundedProgram`, `.solverFailure`.
    /// `residual`, when given, measures how far a basic solution misses `A x = b` (relative;
    /// inside the GLPK scope). Above `acceptedResidual` GLPK's optimum is re-solved from its
    /// basis at tolerances 1e-12 (`GLPKProblem.tighten`); the re-solved vertex replaces it when
    /// it meets `acceptedResidual`, passes the dual check, and either costs at most 1e-6 more
    /// (a clean-up) or the first missed by more than `materialResidual` (then moving is
    /// required: a column of norm 1e-7 that GLPK's scaled test dropped made Q 1.1, not 1.0).
    /// A re-solve that costs far more from a nearly feasible start is not taken: at tolerance
    /// 1e-12 GLPK reported as optimal a vertex 69% above the minimum on a 25 × 48 problem with
    /// seven columns of norm 5e-10 (the optimum it left missed A z = y by 5e-11). Still
    /// missing by more than `materialResidual` (or failing the dual check) goes to the exact
    /// simplex.
    public static func minimize(A: Matrix, b: [Double], c: [Double], lower: [Double],
                                residual: ((LPSolution) -> Double)? = nil) throws -> LPSolution {
        do {
            return try solveRaw(A: A, b: b, c: c, lower: lower, residual: residual)
        } catch {
            switch error {
            case .infeasible: throw TheoryError.emptyFeasibleSet
            case .unbounded: throw TheoryError.unboundedProgram("GLPK: objective unbounded below")
            case .failure(let s): throw TheoryError.solverFailure(s)
            }
        }
    }

    static func solveRaw(A: Matrix, b: [Double], c: [Double], lower: [Double],
                         residual: ((LPSolution) -> Double)? = nil) throws(LPFailure) -> LPSolution {
        let m = A.rows, n = A.cols
        guard b.count == m, c.count == n, lower.count == n else {
            throw .failure("LP dimensions: A is \(m)x\(n), b has \(b.count), c has \(c.count), lower has \(lower.count)")
        }
        guard A.isFinite, b.allSatisfy(\.isFinite), c.allSatisfy(\.isFinite), lower.allSatisfy(\.isFinite) else {
            throw .failure("LP data contain NaN or infinity")
        }
        if n == 0 {
            if b.allSatisfy({ $0 == 0 }) { return LPSolution(x: [], objective: 0, rowDuals: [Double](repeating: 0, count: m), basic: []) }
            throw .infeasible
        }
        return try glpkLock.withLock { (_: inout Int) throws(LPFailure) -> LPSolution in
            let p = GLPKProblem()
            let lp = p.prob
            glp_set_obj_dir(lp, GLP_MIN)
            if m > 0 { glp_add_rows(lp, Int32(m)) }
            glp_add_cols(lp, Int32(n))
            for i in 0..<m { glp_set_row_bnds(lp, Int32(i + 1), GLP_FX, b[i], b[i]) }
            for j in 0..<n {
                glp_set_col_bnds(lp, Int32(j + 1), GLP_LO, lower[j], 0)
                glp_set_obj_coef(lp, Int32(j + 1), c[j])
            }
            // glp_load_matrix: 1-based triplets, index 0 unused.
            var ia: [Int32] = [0], ja: [Int32] = [0], ar: [Double] = [0]
            ia.reserveCapacity(m * n + 1); ja.reserveCapacity(m * n + 1); ar.reserveCapacity(m * n + 1)
            for i in 0..<m {
                for j in 0..<n {
                    let v = A.storage[i * n + j]
                    if v != 0 { ia.append(Int32(i + 1)); ja.append(Int32(j + 1)); ar.append(v) }
                }
            }
            let ne = Int32(ar.count - 1)
            if ne > 0 { glp_load_matrix(lp, ne, ia, ja, ar) }
            glp_scale_prob(lp, GLP_SF_AUTO)

            // With c ≥ 0 (all three LPs of the theory, whenever they are bounded) the starting
            // basis of the structural columns at their lower bounds is dual feasible, and the
            // dual simplex only has to restore primal feasibility: 0.2 s at 500 × 2000 where
            // the primal simplex took over 60 s. The primal simplex with the presolver stays
            // the fallback.
            var (ret, status) = c.allSatisfy({ $0 >= 0 }) ? p.simplex(presolve: false, dual: true) : (Int32(-1), Int32(0))
            if ret != 0 || (status != GLP_OPT && status != GLP_NOFEAS) { (ret, status) = p.simplex(presolve: true) }
            if ret != 0 && ret != GLP_ENOPFS {
                // The presolver cannot tell infeasible from unbounded (GLP_ENODFS) and may
                // fail on degenerate inputs: re-solve without it for a definite status.
                (ret, status) = p.simplex(presolve: false)
            }
            if ret == GLP_ENOPFS { throw .infeasible }
            guard ret == 0 else { throw .failure("glp_simplex returned \(glpkReturnName(ret))") }
            switch status {
            case GLP_OPT: break
            case GLP_NOFEAS, GLP_INFEAS: throw .infeasible
            case GLP_UNBND: throw .unbounded
            default: throw .failure("glp_simplex finished with status \(status) (not optimal)")
            }
            func read() -> LPSolution {
                var x = [Double](repeating: 0, count: n)
                var basic = [Bool](repeating: false, count: n)
                for j in 0..<n {
                    x[j] = glp_get_col_prim(lp, Int32(j + 1))
                    basic[j] = glp_get_col_stat(lp, Int32(j + 1)) == GLP_BS
                }
                var duals = [Double](repeating: 0, count: m)
                for i in 0..<m { duals[i] = glp_get_row_dual(lp, Int32(i + 1)) }
                return LPSolution(x: x, objective: glp_get_obj_val(lp), rowDuals: duals, basic: basic)
            }
            let floating = read()
            let floatingDualOK = p.dualFeasible(A: A, c: c)
            let miss = residual?(floating) ?? 0
            if miss > acceptedResidual {
                // GLPK's primal tolerance on the scaled problem lets a tiny column's share go:
                // continue from this basis at tighter tolerances (see `minimize`).
                let t = p.tighten()
                if t.ret == 0, t.status == GLP_OPT {
                    let tightened = read()
                    let cleanUp = tightened.objective <= floating.objective + 1e-6 * abs(floating.objective)
                    if let residual, residual(tightened) <= acceptedResidual, cleanUp || miss > materialResidual,
                       p.dualFeasible(A: A, c: c) {
                        return tightened
                    }
                }
            }
            guard !floatingDualOK || miss > materialResidual else { return floating }
            // Not optimal by the columns' own costs, or materially infeasible: finish in exact
            // arithmetic from the current basis.
            // Only an optimum it finds replaces the floating-point answer: on the exact data a
            // feasible set that is a single point (kernel assumption failing) can come out
            // empty, which the floating-point simplex did not claim.
            // Not on data below normal range or near overflow (weights x̃₀^{2−L} from a start
            // entry at 5e-324, GF L = 3, reached here; the crash there was a recursion, fixed in
            // `power`, but exact rationals of 2^-1074 are not worth the risk). The
            // floating-point answer stands then, as when the exact simplex finds no optimum.
            guard LinearProgram.exactArithmeticIsSafe(A: A, b: b, c: c) else { return floating }
            let exact = p.exact(columns: n)
            if exact.ret == GLP_ETMLIM {
                throw .failure("the exact simplex (run because the floating-point optimum is not optimal by the columns' own costs) "
                    + "did not finish in \(Int(exactSafetySeconds)) s")
            }
            guard exact.ret == 0, exact.status == GLP_OPT else { return floating }
            return read()
        }
    }

    /// Whether `glp_exact` may run on this data: every nonzero |entry| of A, b and c is a normal
    /// number below 2^1000 (costs may span any range: weights x̃₀^{2−L} at L = 1000 span 1e200
    /// from a 1.6× spread of x̃₀).
    static func exactArithmeticIsSafe(A: Matrix, b: [Double], c: [Double]) -> Bool {
        func normal(_ v: Double) -> Bool { v == 0 || (abs(v) >= Double.leastNormalMagnitude && abs(v) < 0x1p1000) }
        return A.storage.allSatisfy(normal) && b.allSatisfy(normal) && c.allSatisfy(normal)
    }

    private static func glpkReturnName(_ r: Int32) -> String {
        switch r {
        case GLP_EBADB: return "GLP_EBADB (invalid basis)"
        case GLP_ESING: return "GLP_ESING (singular basis matrix)"
        case GLP_ECOND: return "GLP_ECOND (ill-conditioned basis matrix)"
        case GLP_EBOUND: return "GLP_EBOUND (inconsistent bounds)"
        case GLP_EFAIL: return "GLP_EFAIL (solver failure)"
        case GLP_EITLIM: return "GLP_EITLIM (iteration limit)"
        case GLP_ETMLIM: return "GLP_ETMLIM (time limit)"
        case GLP_ENODFS: return "GLP_ENODFS (no dual feasible solution)"
        default: return "code \(r)"
        }
    }
}

// MARK: - Small dense helpers shared by the theory code

/// `‖v‖_∞`.
@inline(__always) func maxAbs(_ v: [Double]) -> Double { v.reduce(0) { max($0, abs($1)) } }

/// `Σ w_n z_n`.
@inline(__always) func weightedSum(_ w: [Double]?, _ z: [Double]) -> Double {
    guard let w else { return z.reduce(0, +) }
    var s = 0.0
    for i in 0..<z.count { s += w[i] * z[i] }
    return s
}

/// Columns `cols` of `a` as a new `M × k` matrix.
func selectColumns(_ a: Matrix, _ cols: [Int]) -> Matrix {
    var out = Matrix(rows: a.rows, cols: cols.count)
    for i in 0..<a.rows {
        for (k, j) in cols.enumerated() { out.storage[i * cols.count + k] = a.storage[i * a.cols + j] }
    }
    return out
}

/// `‖A z − y‖₂`.
func residualNorm(_ a: Matrix, _ z: [Double], _ y: [Double]) -> Double {
    let az = a.multiply(z)
    var s = 0.0
    for i in 0..<y.count { let d = az[i] - y[i]; s += d * d }
    return s.squareRoot()
}

/// Re-solves `A_S z_S = y` on the support `S` (GLPK's basic columns and positive entries)
/// by a least-squares SVD solve plus one refinement step, so that a vertex GLPK found to
/// ~1e-9 satisfies `Az = y` to rounding; entries at the solve's rounding level
/// (`ε·κ(A_S)·max z`) are set to 0. Keeps the GLPK point when the re-solve would leave
/// the non-negative orthant or is not better.
func polishVertex(A: Matrix, y: [Double], z: [Double], basic: [Bool]) -> [Double] {
    let n = A.cols
    let support = (0..<n).filter { basic[$0] || z[$0] > 0 }
    if support.isEmpty || A.rows == 0 { return z }
    let sub = selectColumns(A, support)
    guard let svd = try? SVD(sub) else { return z }
    var zs = svd.pseudoInverseApply(y)
    let r = zip(y, sub.multiply(zs)).map { $0 - $1 }
    let corr = svd.pseudoInverseApply(r)
    for k in 0..<zs.count { zs[k] += corr[k] }
    let scale = max(maxAbs(zs), Double.leastNormalMagnitude)
    guard zs.allSatisfy({ $0.isFinite && $0 >= -1e-9 * scale }) else { return z }
    // A degenerate vertex's basic columns at 0 come back as rounding, ε·κ(A_S)·max z at most:
    // they are 0 (z^{1/L} would make 1e-18 of a unit z into 2.7e-4 of x, and the weighted-ℓ1
    // LP's g 1e-7 too large: WN L = 5, M = 20, N = 60).
    // κ over the singular values the solve used (its numerical rank).
    let rank = svd.rank
    let kappa = rank > 0 ? svd.s[0] / svd.s[rank - 1] : 1
    let noise = Double.ulpOfOne * max(kappa, 1) * scale
    var out = [Double](repeating: 0, count: n)
    for (k, j) in support.enumerated() where zs[k] > noise { out[j] = zs[k] }
    return residualNorm(A, out, y) <= residualNorm(A, z, y) ? out : z
}

// MARK: - ℓ1 minimization

/// The (weighted) ℓ1 minimum over `S₊` (MATH.md §0: `Q`, `Q_w`).
public enum L1Minimization {
    /// `Q_w = min Σ w_n z_n` s.t. `A z = y`, `z ≥ 0` (plain `Q` when `weights` is nil),
    /// by GLPK's simplex on data scaled to unit size, then a support re-solve
    /// (`Az = y` to ~1e-15 relative on non-degenerate vertices).
    /// `value` is `Σ w_n z_n` evaluated in the original scale.
    /// - Throws: `TheoryError.emptyFeasibleSet` when `S₊` is empty; `.unboundedProgram` when
    ///   a negative weight makes the minimum −∞; `.invalidInput` for bad dimensions.
    public static func minimum(A: Matrix, y: [Double], weights: [Double]? = nil) throws -> (value: Double, minimizer: [Double]) {
        let s = try solve(A: A, y: y, weights: weights, reducedCosts: false)
        return (s.value, s.minimizer)
    }

    /// `minimum`, with `reducedCosts` also the LP's reduced costs `r = w − Aᵀν` (ν GLPK's row
    /// duals, in the units of `weights`; nil for the trivial `y = 0`) and the level below
    /// which each is noise, `max(1e-7, 1e-9‖A_n‖₁‖ν‖∞)` on the scaled costs (1e-7 is GLPK's
    /// reduced-cost tolerance `tol_dj`: an optimal basis may leave a reduced cost that far
    /// below 0).
    static func solve(A: Matrix, y: [Double], weights: [Double]?, reducedCosts wanted: Bool = true) throws
        -> (value: Double, minimizer: [Double], reducedCosts: [Double]?, noise: [Double]?) {
        let m = A.rows, n = A.cols
        guard y.count == m else { throw TheoryError.invalidInput("y has \(y.count) entries but A has \(m) rows") }
        if let w = weights {
            guard w.count == n else { throw TheoryError.invalidInput("weights have \(w.count) entries but A has \(n) columns") }
            guard w.allSatisfy(\.isFinite) else { throw TheoryError.invalidInput("weights must be finite") }
        }
        guard A.isFinite, y.allSatisfy(\.isFinite) else { throw TheoryError.invalidInput("A and y must be finite") }
        let sy = maxAbs(y)
        if sy == 0, (weights ?? []).allSatisfy({ $0 >= 0 }) {
            return (0, [Double](repeating: 0, count: n), nil, nil)
        }
        let ys = sy > 0 ? y.map { $0 / sy } : y
        var c = weights ?? [Double](repeating: 1, count: n)
        let sc = maxAbs(c)
        if sc > 0 { c = c.map { $0 / sc } }
        // A vertex is judged by its support re-solve's residual (`LinearProgram.minimize`):
        // GLPK's feasibility test (1e-7 on the scaled problem) passed z = (0.99999999, 0, 0)
        // for A = [[1, 0, 1e-7], [0, 1, −1e-7]], y = (0.99999999, −1e-8), whose only solutions
        // need z₃ ≥ 0.1 (Q = 1.1, reported 1.0).
        let frobenius = A.frobeniusNorm
        func polished(_ sol: LPSolution) -> [Double] {
            polishVertex(A: A, y: ys, z: sol.x.map { max($0, 0) }, basic: sol.basic)
        }
        func relativeResidual(_ z: [Double], _ target: [Double]) -> Double {
            residualNorm(A, z, target) / (norm2(target) + frobenius * norm2(z))
        }
        var judged: (x: [Double], z: [Double])?  // the last vertex judged, re-solved
        let sol = try LinearProgram.minimize(A: A, b: ys, c: c, lower: [Double](repeating: 0, count: n)) { candidate in
            let z = polished(candidate)
            judged = (candidate.x, z)
            return relativeResidual(z, ys)
        }
        var z = judged.flatMap { $0.x == sol.x ? $0.z : nil } ?? polished(sol)
        if sy > 0 { z = z.map { $0 * sy } }
        let relative = relativeResidual(z, y)
        if relative > 1e-7 {
            throw TheoryError.solverFailure("GLPK's optimum violates A z = y (relative residual \(relative))")
        }
        if !wanted { return (weightedSum(weights, z), z, nil, nil) }
        // Reduced costs in the units of the weights: the LP ran on c = w/sc.
        let scale = sc > 0 ? sc : 1
        let nu = sol.rowDuals.map { $0 * scale }
        let atnu = A.multiplyTransposed(nu)
        let nuMax = maxAbs(nu)
        var reduced = [Double](repeating: 0, count: n), noise = [Double](repeating: 0, count: n)
        A.storage.withUnsafeBufferPointer { a in
            for j in 0..<n {
                var col = 0.0
                for i in 0..<m { col += abs(a[i * n + j]) }
                reduced[j] = (weights?[j] ?? 1) - atnu[j]
                noise[j] = max(1e-7, 1e-9 * col * nuMax / scale) * scale
            }
        }
        return (weightedSum(weights, z), z, reduced, noise)
    }
}

// MARK: - Kernel assumption

/// The kernel assumption of Thm 2.2 (MATH.md §4): `∃ w > 0` with `A w = 0`.
public enum KernelAssumption {
    /// Checks `∃ w ≥ 1 with A w = 0`. First a cheap certificate: alternating projections
    /// `u ← P max(u, 1)` from `u = P 1` (P the projector onto `ker A`, MATH.md §0), up to
    /// `certificateIterations`; an iterate whose every entry is above `1e-6·max u` and far
    /// above the projection's rounding (`1e-8‖v‖` for `u = P v`) is in `ker A` to rounding
    /// and positive, so (scaled to `min = 1`) it is a witness. Otherwise an LP
    /// decides (it also proves the assumption false): `min Σ w` so that a witness of moderate
    /// size comes back, projected onto `ker A` so that `A w = 0` holds to rounding.
    public static func check(A: Matrix) throws -> (holds: Bool, witness: [Double]?) {
        try check(A: A, certificateIterations: 100)
    }

    /// `check` with the number of alternating projections tried before the LP (0: LP only).
    static func check(A: Matrix, certificateIterations: Int) throws -> (holds: Bool, witness: [Double]?) {
        let m = A.rows, n = A.cols
        guard A.isFinite else { throw TheoryError.invalidInput("A must be finite") }
        if n == 0 { return (false, nil) }
        let ones = [Double](repeating: 1, count: n)
        if m == 0 { return (true, ones) }
        let proj = try? KernelProjector(A)
        if let proj, certificateIterations > 0 {
            // `u = P v` carries a rounding error of about ε‖v‖ per entry: entries must clear
            // that by far (when 1 lies in the row space, P 1 is pure rounding noise).
            var v = ones
            for _ in 0..<certificateIterations {
                let u = proj.apply(v)
                let top = u.max() ?? 0, low = u.min() ?? 0
                if low > 1e-6 * top && low > 1e-8 * norm2(v) { return (true, u.map { $0 / low }) }
                v = u.map { max($0, 1) }
            }
        }
        do {
            let sol = try LinearProgram.minimize(A: A, b: [Double](repeating: 0, count: m), c: ones, lower: ones)
            var w = sol.x
            if let proj {
                let pw = proj.apply(w)
                if pw.allSatisfy({ $0 >= 0.5 }) { w = pw }
            }
            return (true, w)
        } catch TheoryError.emptyFeasibleSet {
            return (false, nil)
        }
    }
}
