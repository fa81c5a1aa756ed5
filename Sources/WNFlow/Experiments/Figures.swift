import Foundation
import GSLKit

/// The paper's experiments (MATH.md §8), run on `SweepEngine`.
public enum Figure: String, Sendable, CaseIterable {
    case figure2, figure3, figure4, figure5

    public var number: Int { Int(rawValue.dropFirst("figure".count))! }
}

/// Sizes and parameters of the figures. Every default is MATH.md §8's.
public struct FigureSettings: Sendable {
    public var m = 40
    public var n = 100
    public var sparsity = 5
    /// Figure 4's measurements and sparsity. With M = 40, s = 5 even the
    /// weighted ℓ1 minimum (L = 3, random weights) recovers z*, so the
    /// direction effect of MATH.md §4 cannot show; at M = 25, s = 6 plain ℓ1
    /// still recovers z* but weighted ℓ1 with random weights does not
    /// (predictor, 6 instances, α = 0.01: L = 3 WN error 0.13 from a random
    /// direction, 6e-10 from the uniform one).
    public var figure4M = 25
    public var figure4Sparsity = 6
    public var instances = 10
    /// The one seed every instance's A, z* and init direction derive from.
    public var seed = 1
    /// η of Figures 2, 4, 5.
    public var eta = 0.05
    /// α of Figures 2, 4, 5.
    public var alphas: [Double] = [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1]
    /// η of Figure 3 and its fixed α.
    public var etas: [Double] = [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1, 3]
    public var figure3Alpha = 1.0
    /// `--discrete STEP`: GD / WN-GD with step μ instead of the flows.
    public var discreteStep: Double?
    /// Stop when loss ≤ `lossRelative · ½‖y‖²` (per instance).
    public var lossRelative = 1e-20
    public var tEnd = 1e12
    /// Step budget (ODE); discrete runs get `discreteMaxSteps`.
    public var maxSteps = 200_000
    public var discreteMaxSteps = 5_000_000

    public init() {}

    /// The full figures (MATH.md §8).
    public static var full: FigureSettings { FigureSettings() }

    /// `--quick`: 3 instances, 4 α and 4 η points.
    public static var quick: FigureSettings {
        var s = FigureSettings()
        s.instances = 3
        s.alphas = [1e-3, 1e-2, 0.1, 1]
        s.etas = [1e-3, 1e-2, 0.1, 1]
        return s
    }

    /// A tiny problem for tests (N = 20, M = 10, s = 2, 2 instances).
    public static var tiny: FigureSettings {
        var s = FigureSettings()
        s.m = 10; s.n = 20; s.sparsity = 2; s.instances = 2
        s.figure4M = 10; s.figure4Sparsity = 2
        s.alphas = [1e-2, 1]
        s.etas = [1e-2, 1]
        s.tEnd = 1e6
        s.maxSteps = 20_000
        return s
    }

    /// Seeds of instance `k` (0-based): the problem and the init direction.
    public func problemSeed(_ k: Int) -> Int { 1000 * seed + k + 1 }
    public func initSeed(_ k: Int) -> Int { 1000 * seed + 500 + k + 1 }

    var flows: (gf: String, wn: String) { discreteStep == nil ? ("gf", "wn") : ("gd", "wn-gd") }
}

/// One instance: its problem, `½‖y‖²` and `Q`.
struct FigureInstance: Sendable {
    var seed: Int
    var lossScale: Double
    var q: Double?
}

/// Builds and evaluates the runs of a figure.
public struct FigurePlan: Sendable {
    public var figure: Figure
    public var settings: FigureSettings
    public var points: [SweepPoint]
    var instances: [FigureInstance]
    var signed: Bool

    public init(figure: Figure, settings base: FigureSettings) {
        self.figure = figure
        var adjusted = base
        if figure == .figure4 { adjusted.m = base.figure4M; adjusted.sparsity = base.figure4Sparsity }
        let s = adjusted
        settings = s
        signed = figure == .figure5
        let sg = signed
        let insts = ParallelRunner.map(count: s.instances, jobs: 1) { k -> FigureInstance in
            let gen = ProblemGenerator(m: s.m, n: s.n, sparsity: s.sparsity, l1Norm: 1, signed: sg, seed: UInt(s.problemSeed(k)))
            let d = gen.draw()
            let scale = 0.5 * d.y.reduce(0) { $0 + $1 * $1 }
            let a = sg ? d.A.augmentedWithNegation : d.A
            let q = try? L1Minimization.minimum(A: a, y: d.y).value
            return FigureInstance(seed: s.problemSeed(k), lossScale: scale, q: q)
        }
        instances = insts
        var pts: [SweepPoint] = []
        let (gf, wn) = s.flows
        func add(flow: String, depth: Int, alpha: Double, eta: Double?, direction: String, rootOfDepth: Bool) {
            for k in 0..<s.instances {
                var model: [(String, JSON)] = [("flow", .string(flow)), ("depth", .number(Double(depth)))]
                if let eta { model.append(("eta_g", .number(eta))) }
                if sg { model.append(("signed", .bool(true))) }
                if let st = s.discreteStep { model.append(("step", .number(st))) }
                var initPairs: [(String, JSON)] = [("scale", .number(alpha)), ("direction", .string(direction)),
                                                   ("seed", .number(Double(s.initSeed(k))))]
                if rootOfDepth { initPairs.append(("root_of_depth", .bool(true))) }
                let config: JSON = .object([
                    ("problem", .object([("generate", .object([
                        ("M", .number(Double(s.m))), ("N", .number(Double(s.n))), ("sparsity", .number(Double(s.sparsity))),
                        ("l1_norm", .number(1)), ("signed", .bool(sg)), ("seed", .number(Double(s.problemSeed(k)))),
                    ]))])),
                    ("model", .object(model)),
                    ("init", .object(initPairs)),
                    ("integrator", .object([
                        ("t_end", .number(s.tEnd)),
                        ("max_steps", .number(Double(s.discreteStep == nil ? s.maxSteps : s.discreteMaxSteps))),
                        ("stop", .object([("loss_below", .number(s.lossRelative * insts[k].lossScale))])),
                    ])),
                    ("record", .object([("points", .number(0))])),
                ])
                let params: [(String, JSON)] = [
                    ("figure", .string(figure.rawValue)), ("flow", .string(flow)), ("depth", .number(Double(depth))),
                    ("alpha", .number(alpha)), ("eta", eta.map { .number($0) } ?? .null), ("direction", .string(direction)),
                    ("instance", .number(Double(k))), ("seed", .number(Double(s.problemSeed(k)))),
                ]
                var point = SweepPoint(index: pts.count, params: params, config: config)
                // The config without its stop, which is computed from y (BLAS-dependent in its
                // last bits): `--resume` then refuses runs of another step, t_end or budget (a
                // run resumed with another --discrete step mixed both steps in one figure).
                // (A null grid value removes its key: the sweep engine's own setter.)
                let withoutStop = (try? SweepSpec.setting(config, path: "integrator.stop", to: .null, field: "integrator.stop")) ?? config
                point.configDigest = SweepPoint.digest(of: withoutStop,
                                                       extra: ["loss_relative=\(JSON.format(s.lossRelative))"])
                pts.append(point)
            }
        }
        switch figure {
        case .figure2, .figure5:
            for a in s.alphas {
                add(flow: gf, depth: 2, alpha: a, eta: nil, direction: "abs-gaussian", rootOfDepth: false)
                add(flow: wn, depth: 2, alpha: a, eta: s.eta, direction: "abs-gaussian", rootOfDepth: false)
            }
        case .figure3:
            add(flow: gf, depth: 2, alpha: s.figure3Alpha, eta: nil, direction: "abs-gaussian", rootOfDepth: false)
            for e in s.etas { add(flow: wn, depth: 2, alpha: s.figure3Alpha, eta: e, direction: "abs-gaussian", rootOfDepth: false) }
        case .figure4:
            for dir in ["abs-gaussian", "uniform"] {
                for depth in [2, 3] {
                    for a in s.alphas {
                        add(flow: gf, depth: depth, alpha: a, eta: nil, direction: dir, rootOfDepth: true)
                        add(flow: wn, depth: depth, alpha: a, eta: s.eta, direction: dir, rootOfDepth: true)
                    }
                }
            }
        }
        points = pts
    }

    /// Per-run metrics: `l1_min`, `l1_gap`, `weighted_l1_gap`, `g_inf`.
    public var metrics: SweepMetrics {
        let table = Dictionary(uniqueKeysWithValues: instances.map { ($0.seed, $0.q) })
        return { point, cfg, result in
            var out: [(String, JSON)] = []
            let seed = point.params.first { $0.0 == "seed" }.flatMap { p -> Int? in
                if case let .number(d) = p.1 { return Int(d) } else { return nil }
            }
            let q = seed.flatMap { table[$0] } ?? nil
            let z1 = result.z.reduce(0) { $0 + abs($1) }
            out.append(("l1_min", q.map { .number($0) } ?? .null))
            out.append(("l1_gap", q.map { .number(z1 - $0) } ?? .null))
            out.append(("weighted_l1_gap", FigurePlan.weightedGap(config: cfg, result: result).map { .number($0) } ?? .null))
            out.append(("g_inf", result.g.map { .number($0) } ?? .null))
            return out
        }
    }

    /// `‖x_∞^L‖_{w,1} − Q_w` with weights from the effective init `x̃₀ = x₀/ρ`
    /// (MATH.md §4; L = 2: `log(1/x̃₀²)`, L ≥ 3: `x̃₀^{2−L}` normalized to
    /// max weight 1, so the gap is in those units). Nil when undefined (L = 1, a weight ≤ 0, x₀ ≯ 0),
    /// and for WN stuck at the saddle x = 0 (g below double range: its log ρ ~ 1e9 grows with t_end).
    public static func weightedGap(config cfg: SimulationConfig, result: SimulationResult) -> Double? {
        let L = cfg.model.depth
        guard L >= 2, cfg.x0.allSatisfy({ $0 > 0 }), result.status != .failed else { return nil }
        if let g = result.g, isBelowNormalRange(g) { return nil }
        let lr = result.logRho ?? 0
        let logXt = cfg.x0.map { Foundation.log($0) - lr }
        let w: [Double]
        if L == 2 {
            w = logXt.map { -2 * $0 }
            guard w.allSatisfy({ $0 > 0 }) else { return nil }
        } else {
            w = LimitPredictor.normalizedPowerWeights(depth: L, logX0: logXt).weights
        }
        guard let qw = try? L1Minimization.minimum(A: cfg.problem.matrix, y: cfg.problem.y, weights: w).value else { return nil }
        let zAug = result.x.map { ipow($0, L) }
        var s = 0.0
        for i in 0..<zAug.count { s += w[i] * zAug[i] }
        return s - qw
    }
}

/// One row of `figureK.csv`, read back from a sweep line.
public struct FigureRow: Sendable {
    public var figure: String
    public var flow: String
    public var depth: Int
    public var alpha: Double
    public var eta: Double?
    public var direction: String
    public var instance: Int
    public var seed: Int
    public var recError: Double?
    public var relRecError: Double?
    public var l1Gap: Double?
    public var weightedL1Gap: Double?
    public var logRho: Double?
    public var gInf: Double?
    public var loss: Double?
    public var status: String
    public var rhsEvals: Double?
    public var wallSeconds: Double?

    public var converged: Bool { status == "converged" }
    public var isWN: Bool { flow.hasPrefix("wn") }

    public init?(line j: JSON) {
        func num(_ v: JSON?) -> Double? { if case let .number(d)? = v { return d } else { return nil } }
        func str(_ v: JSON?) -> String? { if case let .string(s)? = v { return s } else { return nil } }
        guard let p = j["params"], let fig = str(p["figure"]), let flow = str(p["flow"]) else { return nil }
        figure = fig
        self.flow = flow
        depth = Int(num(p["depth"]) ?? 2)
        alpha = num(p["alpha"]) ?? .nan
        eta = num(p["eta"])
        direction = str(p["direction"]) ?? ""
        instance = Int(num(p["instance"]) ?? 0)
        seed = Int(num(p["seed"]) ?? 0)
        recError = num(j["rec_error"])
        relRecError = num(j["rel_rec_error"])
        l1Gap = num(j["l1_gap"])
        weightedL1Gap = num(j["weighted_l1_gap"])
        logRho = num(j["log_rho"])
        gInf = flow.hasPrefix("wn") ? num(j["g_inf"]) : nil
        loss = num(j["loss"])
        status = str(j["status"]) ?? "missing"
        rhsEvals = num(j["stats"]?["rhs_evals"])
        wallSeconds = num(j["stats"]?["wall_seconds"])
    }

    public static let csvHeader = "figure,flow,depth,alpha,eta,direction,instance,seed,rec_error,rel_rec_error,l1_gap,weighted_l1_gap,log_rho,g_inf,loss,status,rhs_evals,wall_seconds"

    public var csvLine: String {
        func f(_ x: Double?) -> String { x.map(JSON.format) ?? "" }
        return [figure, flow, String(depth), f(alpha), f(eta), direction, String(instance), String(seed),
                f(recError), f(relRecError), f(l1Gap), f(weightedL1Gap), f(logRho), f(gInf), f(loss), status,
                f(rhsEvals), f(wallSeconds)].joined(separator: ",")
    }
}

/// Mean and standard deviation (over instances) of one series at one x.
public struct PointStat: Sendable {
    public var x: Double
    public var mean: Double
    public var sd: Double
    public var count: Int
    public var notConverged: Int
    /// The smallest error of an instance (the lower whisker's end on the log axis where
    /// mean − sd ≤ 0).
    public var minimum: Double
    /// Mean log ρ∞ over the converged rows (nil when none has one).
    public var meanLogRho: Double?

    public init(x: Double, rows: [FigureRow]) {
        self.x = x
        let e = rows.map { $0.recError ?? .nan }
        count = e.count
        let mu = e.reduce(0, +) / Double(max(count, 1))
        mean = mu
        let v = e.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(max(count - 1, 1))
        sd = v.squareRoot()
        minimum = e.min() ?? .nan
        notConverged = rows.filter { !$0.converged }.count
        // log ρ∞ is a limit quantity: the converged runs only (a run stuck at the saddle
        // x = 0 ends with log ρ ~ 1e9 that grows with t_end).
        let lr = rows.filter(\.converged).compactMap(\.logRho)
        meanLogRho = lr.isEmpty ? nil : lr.reduce(0, +) / Double(lr.count)
    }
}

/// A labelled series of a figure (e.g. "WN, L = 3, uniform").
public struct Series: Sendable {
    public var label: String
    public var points: [PointStat]
}
