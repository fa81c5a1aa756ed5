import Foundation
import GSLKit

/// The theory predictor applied to a config (MATH.md §4, §5): which limit
/// the configured flow reaches, without integrating. Discrete flows are
/// predicted by their flows (`gd` → GF, `wn-gd` → WN), which they follow as
/// the step tends to 0. Signed problems run on `[A, −A]`; `z` is reported
/// end to end, `u^L − w^L`.
public struct Prediction: Sendable {
    public var report: TheoryReport
    /// End-to-end predicted `z` (length N).
    public var z: [Double]
    /// Predicted weights `x_∞` (length N, or 2N signed).
    public var x: [Double]
    /// Wall time of the prediction.
    public var wallSeconds: Double

    /// Whether only the limit was computed (`Theory.report`'s `limitOnly`).
    public var limitOnly: Bool

    /// Depth-1 constant-rate WN: the limit if g ends below 0 (docs/math.md §4c), `z` end to end
    /// like `z`. Nil otherwise.
    public var negativeBranch: WNBranch?

    /// Predicts the limit of `config`'s flow from its start; with `limitOnly`, the
    /// limit alone (no LPs, no bounds: `wnflow predict --limit-only`).
    /// - Throws: `ConfigError` for inputs the predictor cannot take (an
    ///   empty S₊, a non-positive start at depth ≥ 2); `TheoryError` for
    ///   numerical failures.
    public init(config: SimulationConfig, limitOnly: Bool = false) throws {
        self.limitOnly = limitOnly
        let p = config.problem
        let flow: TheoryFlow
        switch config.model.flow {
        case .gf, .gd: flow = .gf
        case .wn, .wnGD:
            let v0 = config.v0 ?? []
            flow = .wn(etaG: config.model.etaG, etaV: config.model.etaV, vNorm: config.v0 == nil ? config.vNorm : norm2(v0))
        case .wnTimeDependent: flow = .wnTimeDependent(etaV: config.model.etaV)
        }
        if config.model.flow.isWeightNormalized && (config.g0 != nil || config.v0 != nil) {
            throw ConfigError("config.init", "predict takes the WN start from x0 (g₀ = ‖x₀‖, v₀ = v_norm·x₀/‖x₀‖), not from g0/v0; give x0 or scale instead of g0/v0, or use simulate")
        }
        if p.depth >= 2 && p.y.allSatisfy({ $0 == 0 }) {
            // The flows then go to x = 0, which no dual point reaches (log x → −∞): not a
            // numerical failure (exit 3) but a degenerate input.
            throw ConfigError("config.problem.y", "is all zeros, so the depth-\(p.depth) limit is z = 0 (x → 0), which the dual Newton cannot reach; give a non-zero y (or generate with sparsity ≥ 1)")
        }
        let zeroYAtDepth1 = p.depth == 1 && flow.isConstantRateWN && p.y.allSatisfy({ $0 == 0 })
        let noRootMessage = "is all zeros and no g > 0 solves g = ||X(x0/rho(g))||, so the depth-1 WN flow takes g -> 0 (x -> 0), a limit the root search does not return; give a non-zero y (or simulate the run)"
        // y = 0 and x₀ ⟂ ker A: X(x₀/ρ) = P x₀/ρ = 0 for every g, and the root search read rounding
        // noise as a root (a limit with residual 5.3, exit 0).
        if zeroYAtDepth1, let projector = try? KernelProjector(p.matrix),
           norm2(projector.apply(config.x0)) <= 1e-12 * norm2(config.x0) {
            throw ConfigError("config.problem.y", noRootMessage)
        }
        // The dual Newton's Hessian and its factor are M × M (more with the LPs' copies).
        try MemoryBudget.require(MemoryBudget.squares(p.m, count: 4), field: "config.problem",
                                 what: "predict with M = \(p.m) rows (its dual Newton works with M × M matrices)",
                                 fix: "use fewer rows (the paper's setting is M < N), or simulate")
        let start = DispatchTime.now().uptimeNanoseconds
        do {
            report = try Theory.report(A: p.matrix, y: p.y, depth: p.depth, x0: config.x0, flow: flow, limitOnly: limitOnly, signed: p.signed)
        } catch TheoryError.emptyFeasibleSet where p.signed {
            // Signed: S₊ of [A, −A] is empty exactly when y ∉ range A (no z = u^L − w^L solves it).
            throw ConfigError("config.problem", "y is not in the range of A, so no signed z = u^L - w^L solves Az = y and no flow reaches zero loss; check y (M > N needs y = A z for some z)")
        } catch TheoryError.emptyFeasibleSet {
            throw ConfigError("config.problem", "S₊ = {z ≥ 0 : Az = y} is empty, so no depth-\(p.depth) flow can reach zero loss; check y (or use signed: true)")
        } catch let TheoryError.invalidInput(msg) {
            throw ConfigError("config.init.x0", msg)
        } catch TheoryError.notConverged where zeroYAtDepth1 {
            // y = 0 at depth 1: X(x₀/ρ) = P_ker x₀/ρ, and g = ‖P_ker x₀‖/ρ(g) has no root g > 0 when
            // ‖P_ker x₀‖ < g₀·exp(−c·g₀²); the flow then takes g → 0 (simulate: g 1e-152 at loss
            // 1e-304), the depth ≥ 2 case's degenerate limit x = 0, not a numerical failure.
            throw ConfigError("config.problem.y", noRootMessage)
        }
        wallSeconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        x = report.x
        z = p.signed ? Prediction.foldSigned(report.z) : report.z
        negativeBranch = report.negativeBranch.map { b in
            var folded = b
            if p.signed { folded.z = Prediction.foldSigned(b.z) }
            return folded
        }
    }

    /// The JSON of `wnflow predict` (INTERFACE.md "predict FILE").
    public func json(config: SimulationConfig) -> JSON {
        let r = report
        let b = r.bounds
        var bounds: [(String, JSON)] = []
        bounds.append(("l1_gap", .optionalNumber(b.l1Gap)))
        bounds.append(("weighted_l1_gap", .optionalNumber(b.weightedGap)))
        bounds.append(("weighted_l1_gap_bound", .optionalNumber(b.weightedGapBound)))
        bounds.append(("g_inf_lower_bound", .optionalNumber(b.gInfLowerBound)))
        bounds.append(("log_rho_lower_bound", .optionalNumber(b.logRhoLowerBound)))
        bounds.append(("kernel_probability_gaussian", .number(b.kernelProbabilityGaussian)))
        var pairs: [(String, JSON)] = [
            ("z", .numbers(z)),
            ("x", .numbers(x)),
            ("g_inf", .optionalNumber(r.gInf)),
            ("log_rho", .optionalNumber(r.logRho)),
            ("l1_min", .optionalNumber(r.l1Min)),
            ("weighted_l1_min", .optionalNumber(r.weightedL1Min)),
            ("kernel_positive", r.kernelPositive.map { .bool($0) } ?? .null),
            ("bounds", .object(bounds)),
            ("flow", .string(config.model.flow.rawValue)),
            ("depth", .number(Double(r.depth))),
            ("signed", .bool(config.problem.signed)),
            ("method", .string(r.prediction.method)),
            ("newton_iterations", .number(Double(r.prediction.iterations))),
            ("kkt_residual", .number(r.prediction.kktResidual)),
            ("lost_digits", .bool(r.prediction.lostDigits)),
            ("error_estimate", r.prediction.errorEstimate.map { .object([("z", .number($0.z)), ("g", .number($0.g))]) } ?? .null),
            ("wn_roots", .numbers(r.wnRoots)),
            ("negative_branch", negativeBranch.map { b in
                .object([("g_inf", .number(b.gInf)), ("log_rho", .number(b.logRho)), ("z", .numbers(b.z)), ("x", .numbers(b.x))])
            } ?? .null),
            ("limit_only", .bool(limitOnly)),
        ]
        if let zq = r.l1Minimizer { pairs.append(("l1_minimizer", .numbers(config.problem.signed ? Prediction.foldSigned(zq) : zq))) }
        if let truth = config.problem.groundTruth {
            let err = zip(z, truth).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
            pairs.append(("rec_error", .number(err)))
        }
        pairs.append(("warnings", .array((r.warnings + config.warnings).map { .string($0) })))
        return .object(pairs)
    }

    /// `(u, w) ↦ u − w` for vectors over `[A, −A]`'s 2N columns (MATH.md §5).
    static func foldSigned(_ v: [Double]) -> [Double] {
        let n = v.count / 2
        return (0..<n).map { v[$0] - v[n + $0] }
    }
}
