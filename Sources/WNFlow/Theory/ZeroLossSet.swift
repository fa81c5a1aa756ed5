import Foundation
import GSLKit

/// The end-to-end weights a flow can reach with zero loss (MATH.md §0): `S₊ = {z ≥ 0 : Ãz = y}`
/// at depth ≥ 2 (signed runs: `Ã = [A, −A]`, so S₊ is non-empty exactly when y ∈ range A), and
/// `{z : Az = y}` at depth 1, where signs may change. When the set is empty no flow reaches
/// zero loss: the loss has a positive minimum over the reachable weights (`minimumLoss`),
/// Lemma 3.18 holds for no z, and no t_end reaches a loss stop below that minimum.
public enum ZeroLossSet {
    /// What `find` learned.
    public enum Answer: Sendable, Equatable {
        /// A point of the set; `source` says where it came from and which set it is in.
        case point([Double], source: String)
        /// The set is empty: `set` names it, `minimumLoss` is the lowest ½‖Ãz − y‖² over the
        /// reachable z (least squares, or non-negative least squares at depth ≥ 2; nil when
        /// that solve failed).
        case empty(set: String, minimumLoss: Double?)
        /// Not decided (a start whose signs restrict the set otherwise, a problem too large
        /// for the SVD and LP here, or GLPK failing).
        case undecided
    }

    /// `M·N` above which `find` runs neither the SVD nor the LP and answers only from the
    /// ground truth. GLPK's simplex added 0.45 s to a monitored 200 × 500 run (0.6 s before)
    /// and 3.4 s to a 500 × 2000 one (9.1 s); at N = 10000, M = 2000 the SVD's factors alone
    /// would double the memory a run of that size is allowed (2.5× A).
    public static let lpEntryLimit = 250_000.0

    /// Whether `find` can say anything for this start: depth 1, or depth ≥ 2 from a start
    /// without zero entries (those stay 0, Lemma 3.3), positive at odd depth.
    public static func applies(depth: Int, x0: [Double]) -> Bool {
        depth == 1 || x0.allSatisfy { $0 != 0 && $0.isFinite } && (depth % 2 == 0 || x0.allSatisfy { $0 > 0 })
    }

    /// `find`, remembered per problem for the process (a sweep's t_end
    /// runs of one problem, and a verify run's monitor, end message and limit checks, ask
    /// the same question).
    public static func find(problem p: Problem, x0: [Double]) -> Answer {
        guard applies(depth: p.depth, x0: x0), x0.count == p.weightCount,
              p.groundTruth != nil || Double(p.matrix.rows) * Double(p.matrix.cols) <= lpEntryLimit else { return .undecided }
        let key = cacheKey(p)
        if let hit = cache.value(key) { return hit }
        let answer = solve(problem: p)
        cache.store(key, answer)
        return answer
    }

    /// A point of the set: the ground truth when it solves `Ãz = y` to 1e-8 (and lies in S₊
    /// at depth ≥ 2; generated problems), else `A⁺y` when it solves it (at depth ≥ 2 when it
    /// is ≥ 0, for signed runs its split `(max(s, 0), max(−s, 0))`, `s = A⁺y`), else GLPK's
    /// ℓ1 minimizer over S₊. Empty: GLPK's verdict at depth ≥ 2 unsigned; at depth 1 and for
    /// signed runs a part of y outside every left singular vector of A with a nonzero
    /// singular value, above 1e-8‖y‖ and equal (to 1e-8‖y‖) to the part outside the
    /// numerical range.
    static func solve(problem p: Problem) -> Answer {
        let a = p.matrix, y = p.y
        let yNorm = max(norm2(y), .leastNormalMagnitude)
        func solves(_ z: [Double]) -> Bool { residualNorm(a, z, y) <= 1e-8 * yNorm }
        let inS = p.depth == 1 ? "{z : Ãz = y}" : "S₊"
        if let truth = p.groundTruth {
            let z = p.signed ? truth.map { max($0, 0) } + truth.map { max(-$0, 0) } : truth
            if p.depth == 1 || z.allSatisfy({ $0 >= 0 }), solves(z) { return .point(z, source: "ground truth ∈ \(inS)") }
        }
        // A's own SVD, also for signed runs (range Ã = range A): Ã = [A, −A] has rank ≤ N with
        // its other singular values at rounding level, not zero.
        guard Double(a.rows) * Double(a.cols) <= lpEntryLimit, let svd = try? SVD(p.A) else { return .undecided }
        let pinv = svd.pseudoInverseApply(y)  // A⁺y
        guard pinv.count == p.n else { return .undecided }
        let inRange = residualNorm(p.A, pinv, y) <= 1e-8 * yNorm
        if p.depth == 1 || p.signed {
            guard inRange else {
                // A⁺y drops singular values below the numerical rank, but a flow reaches along
                // any nonzero one (A = diag(1, 1e-16), y = (1, 1): z = (1, 1e16), converged at
                // t ≈ 1e40, had been told "y ∉ range A"); and a rank-deficient A's rounding-level
                // singular values are not zero either, so counting every s > 0 in made its
                // minimum too small (1.25 for 2.57). Claimed only where the part of y outside the
                // numerical range and the part outside every s > 0 agree.
                let out = outsideRange(svd, y, above: 0)
                let numerical = outsideRange(svd, y, above: Double(max(p.A.rows, p.A.cols)) * Double.ulpOfOne * (svd.s.first ?? 0))
                guard out > 1e-8 * yNorm, abs(numerical - out) <= 1e-8 * yNorm else { return .undecided }
                return .empty(set: "y ∉ range A (no z with Az = y; the part of y outside it is \(JSON.format(out / yNorm)) of ‖y‖)",
                              minimumLoss: 0.5 * out * out)
            }
            if !p.signed { return .point(pinv, source: "A⁺y ∈ {z : Az = y}") }
            return .point(pinv.map { max($0, 0) } + pinv.map { max(-$0, 0) }, source: "A⁺y split into its signs ∈ \(inS)")
        }
        if inRange, pinv.allSatisfy({ $0 >= 0 }) { return .point(pinv, source: "A⁺y ∈ S₊") }
        do {
            let r = try L1Minimization.minimum(A: a, y: y)
            return .point(r.minimizer, source: "the l1 minimizer over S₊ ∈ S₊")
        } catch TheoryError.emptyFeasibleSet {
            let z = nonNegativeLeastSquares(a, y)
            return .empty(set: "S₊ = {z ≥ 0 : Az = y} is empty (GLPK: no non-negative solution)",
                          minimumLoss: z.map { 0.5 * pow(residualNorm(a, $0, y), 2) })
        } catch {
            return .undecided
        }
    }

    /// Where the answer is `.empty` and `lossBelow` lies below its minimum loss (by more than
    /// that minimum's rounding): the words for a run that cannot reach its stop, and whether
    /// `finalLoss` is at that minimum (within 1e-6 relative), i.e. the run levelled off there
    /// rather than stopping short of it (a run to t_end = 0.01 at 0.9993 against a minimum of
    /// 0.5 had passed verify). Nil where the stop is reachable (a `loss_below` above the
    /// minimum: a run that ends short of it just ran out of t_end) or nothing is known.
    public static func unreachableStop(_ answer: Answer, lossBelow: Double, finalLoss: Double)
        -> (why: String, atMinimum: Bool)? {
        guard case let .empty(set, minimum?) = answer, lossBelow < minimum * (1 - 1e-6) else { return nil }
        // Eight digits: the minimum's plain sums and the run's compensated loss differ in the
        // last ones (a run ended 3.6e-10 below the minimum as printed in full).
        return (set + ", and the lowest loss any weights reach is \(String(format: "%.8g", minimum)), above the stop \(JSON.format(lossBelow))",
                finalLoss <= minimum * (1 + 1e-6))
    }

    /// Lawson–Hanson: `argmin_{z ≥ 0} ‖Az − y‖`, the passive set's least squares by SVD; nil
    /// past `3n` inner iterations or when a solve fails.
    static func nonNegativeLeastSquares(_ a0: Matrix, _ y: [Double]) -> [Double]? {
        // On unit columns (zero ones left out): a column of norm 1e-13 never entered against
        // a tolerance set by the others, and the minimum came out 1 where z = (1, 1e13) gives 0.5.
        let m = a0.rows, n = a0.cols
        var norms = [Double](repeating: 0, count: n)
        for i in 0..<m { for j in 0..<n { norms[j] += a0[i, j] * a0[i, j] } }
        norms = norms.map { $0.squareRoot() }
        var a = a0
        for i in 0..<m { for j in 0..<n { a.storage[i * n + j] = norms[j] > 0 ? a0[i, j] / norms[j] : 0 } }
        guard let scaled = nnlsUnitColumns(a, y, usable: norms.map { $0 > 0 }) else { return nil }
        return (0..<n).map { norms[$0] > 0 ? scaled[$0] / norms[$0] : 0 }
    }

    /// Lawson–Hanson proper, on columns of unit norm (`usable`: the nonzero ones).
    static func nnlsUnitColumns(_ a: Matrix, _ y: [Double], usable: [Bool]) -> [Double]? {
        let n = a.cols
        var z = [Double](repeating: 0, count: n)
        var passive = [Bool](repeating: false, count: n)
        let tol = 1e-12 * max(a.multiplyTransposed(y).map(abs).max() ?? 0, .leastNormalMagnitude)
        var iterations = 0
        while true {
            let r = zip(y, a.multiply(z)).map { $0 - $1 }
            let w = a.multiplyTransposed(r)
            // Zero columns (not `usable`) never enter, so their z stays 0.
            guard let j = (0..<n).filter({ usable[$0] && !passive[$0] && w[$0] > tol }).max(by: { w[$0] < w[$1] }) else { return z }
            passive[j] = true
            while true {
                iterations += 1
                guard iterations <= 3 * n else { return nil }
                let idx = (0..<n).filter { passive[$0] }
                // Every column left the passive set (a column entered at the tolerance's edge
                // with a non-positive solution): no answer rather than a wrong minimum.
                guard !idx.isEmpty else { return nil }
                guard let s = try? SVD(selectColumns(a, idx)).pseudoInverseApply(y) else { return nil }
                if s.allSatisfy({ $0 > 0 }) {
                    for (k, c) in idx.enumerated() { z[c] = s[k] }
                    break
                }
                var alpha = 1.0
                for (k, c) in idx.enumerated() where s[k] <= 0 && z[c] - s[k] > 0 { alpha = min(alpha, z[c] / (z[c] - s[k])) }
                for (k, c) in idx.enumerated() {
                    z[c] += alpha * (s[k] - z[c])
                    if z[c] <= 0 || s[k] <= 0 && abs(z[c]) <= 1e-15 * max(abs(s[k]), 1) { z[c] = 0; passive[c] = false }
                }
            }
        }
    }

    /// `‖y − Σ_{s_j > above} u_j u_jᵀ y‖`: the part of y outside the span of A's left singular
    /// vectors with singular values above `above` (0: outside range A).
    static func outsideRange(_ svd: SVD, _ y: [Double], above: Double) -> Double {
        var r = y
        let m = svd.u.rows, k = svd.s.count
        for j in 0..<k where svd.s[j] > above {
            var c = 0.0
            for i in 0..<m { c += svd.u[i, j] * y[i] }
            for i in 0..<m { r[i] -= c * svd.u[i, j] }
        }
        return norm2(r)
    }

    /// FNV-1a over the problem's matrix, y, depth, sign flag and ground truth (the answer
    /// depends on nothing else).
    static func cacheKey(_ p: Problem) -> String {
        var h = SweepPoint.fnv([UInt8]())
        func fold(_ xs: [Double]) { xs.withUnsafeBytes { h = SweepPoint.fnv($0, from: h) } }
        fold(p.matrix.storage)
        fold(p.y)
        // The ground truth picks the point returned.
        fold([Double(p.depth), p.signed ? 1 : 0, Double(p.matrix.rows), p.groundTruth == nil ? 0 : 1])
        if let truth = p.groundTruth { fold(truth) }
        return String(h, radix: 16)
    }

    static let cache = AnswerCache()

    /// A small lock-protected memo (at most 64 problems).
    final class AnswerCache: @unchecked Sendable {
        private let lock = NSLock()
        private var answers: [String: Answer] = [:]
        func value(_ key: String) -> Answer? { lock.lock(); defer { lock.unlock() }; return answers[key] }
        func store(_ key: String, _ a: Answer) {
            lock.lock(); defer { lock.unlock() }
            if answers.count >= 64 { answers.removeAll() }
            answers[key] = a
        }
    }
}
