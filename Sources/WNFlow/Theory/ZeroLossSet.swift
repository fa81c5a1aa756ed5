import Foundation
import GSLKit

/// The end-to-end weights a flow can reach with zero loss (MATH.md §0): `S₊ = {z ≥ 0 : Ãz = y}`
/// at depth ≥ 2 (signed runs: `Ã = [A, −A]`, so S₊ is non-empty exactly when y ∈ range A), and
/// `{z : Az = y}` at depth 1, where signs may change. When the set is empty no flow reaches
/// zero loss: the loss has a positive minimum over the reachable weights, Lemma 3.18 holds
/// for no z, and no t_end or max_steps reaches the loss stop.
public enum ZeroLossSet {
    /// What `find` learned.
    public enum Answer: Sendable, Equatable {
        /// A point of the set, and where it came from.
        case point([Double], source: String)
        /// The set is empty; the text names it ("S₊ = {z ≥ 0 : Ãz = y}" or "y ∉ range A").
        case empty(String)
        /// Not decided (a start whose signs restrict the set otherwise, an LP too large to
        /// run here, or GLPK failing).
        case undecided
    }

    /// `M·N` above which `find` runs neither the SVD nor the LP and answers only from the
    /// ground truth. GLPK's simplex added 0.45 s to a monitored 200 × 500 run (0.6 s before)
    /// and 3.4 s to a 500 × 2000 one (9.1 s).
    public static let lpEntryLimit = 250_000.0

    /// A point of the set the flow from `x0` (the weights at t = 0, length `weightCount`)
    /// moves in: the ground truth when it lies in S₊ (generated problems), else `Ã⁺y` when
    /// it solves `Ãz = y` to 1e-8 (and is ≥ 0 at depth ≥ 2, or for signed runs its split
    /// `(max(s, 0), max(−s, 0))`, `s = A⁺y`), else GLPK's ℓ1 minimizer over S₊. Depth ≥ 2
    /// needs a start without zero entries (those stay 0, Lemma 3.3), positive at odd depth;
    /// other starts give `.undecided`.
    public static func find(problem p: Problem, x0: [Double], pseudoInverse given: [Double]? = nil) -> Answer {
        let a = p.matrix, y = p.y
        let yNorm = max(norm2(y), .leastNormalMagnitude)
        func solves(_ z: [Double]) -> Bool {
            let r = zip(a.multiply(z), y).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
            return r <= 1e-8 * yNorm
        }
        if p.depth >= 2 {
            guard x0.count == p.weightCount, x0.allSatisfy({ $0 != 0 && $0.isFinite }),
                  p.depth % 2 == 0 || x0.allSatisfy({ $0 > 0 }) else { return .undecided }
        }
        if p.depth >= 2, let truth = p.groundTruth {
            let z = p.signed ? truth.map { max($0, 0) } + truth.map { max(-$0, 0) } : truth
            if z.allSatisfy({ $0 >= 0 }), solves(z) { return .point(z, source: "ground truth") }
        }
        // Past the LP's size the SVD is skipped too: at N = 10000, M = 2000 its factors alone
        // would double the memory a run of that size is allowed (2.5× A).
        guard given != nil || Double(a.rows) * Double(a.cols) <= lpEntryLimit else { return .undecided }
        guard let pinv = given ?? (try? SVD(a).pseudoInverseApply(y)), pinv.count == p.weightCount else { return .undecided }
        let inRange = solves(pinv)
        if p.depth == 1 || p.signed {
            guard inRange else { return .empty("y ∉ range A (no z with Az = y; least-squares residual " + residualText(a, pinv, y) + ")") }
            if p.depth == 1 { return .point(pinv, source: "Ã⁺y") }
            let n = p.n
            let s = (0..<n).map { pinv[$0] - pinv[n + $0] }
            return .point(s.map { max($0, 0) } + s.map { max(-$0, 0) }, source: "Ã⁺y split into its signs")
        }
        if inRange, pinv.allSatisfy({ $0 >= 0 }) { return .point(pinv, source: "Ã⁺y") }
        guard Double(a.rows) * Double(a.cols) <= lpEntryLimit else { return .undecided }
        do {
            let r = try L1Minimization.minimum(A: a, y: y)
            return .point(r.minimizer, source: "the l1 minimizer over S₊")
        } catch TheoryError.emptyFeasibleSet {
            return .empty("S₊ = {z ≥ 0 : Az = y} is empty (GLPK: no non-negative solution)")
        } catch {
            return .undecided
        }
    }

    /// `‖Ãz − y‖/‖y‖` as text.
    static func residualText(_ a: Matrix, _ z: [Double], _ y: [Double]) -> String {
        let r = zip(a.multiply(z), y).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
        return "\(JSON.format(r / max(norm2(y), .leastNormalMagnitude))) of ‖y‖"
    }
}
