import Foundation
import GSLKit

/// Which flow a run integrates (INTERFACE.md, `model.flow`).
public enum FlowKind: String, Sendable, CaseIterable {
    /// Gradient flow (1.11).
    case gf
    /// Weight-normalized flow (1.13)–(1.14), constant η_g.
    case wn
    /// Weight-normalized flow with η_g(t) = η_v g²/‖v‖² (Thm 2.4).
    case wnTimeDependent = "wn-timedep"
    /// Discrete gradient descent (MATH.md §7).
    case gd
    /// Discrete WN gradient descent (MATH.md §7).
    case wnGD = "wn-gd"

    /// Whether the state is `[g, v]`.
    public var isWeightNormalized: Bool { self == .wn || self == .wnTimeDependent || self == .wnGD }
    /// Whether the run is a discrete iteration rather than an ODE.
    public var isDiscrete: Bool { self == .gd || self == .wnGD }
}

/// The integration method: `auto`, a GSL stepper, or one of WNFlow's own.
public enum Method: Sendable, Equatable, CustomStringConvertible {
    case auto
    case gsl(Stepper)
    /// Rodas4 with Woodbury solves of the diagonal-plus-low-rank Jacobian
    /// (`RosenbrockSolver`), O(NM) memory: `auto` uses it only for WN deeper than
    /// `Simulation.weightNormBDFDepth` above dimension 5000.
    case rosenbrock
    /// Variable-order NDF/BDF with Jacobian reuse and Woodbury solves (`BDFSolver`), O(NM)
    /// memory; for WN with Lemma 3.2 as a projection and relative control of v
    /// (docs/math.md §6d). `auto` for GF and WN outside `dual`.
    case bdf
    /// Depth-2 GF/WN in dual coordinates (`DualSolver`): state `λ ∈ R^M`
    /// (plus `log g`) on the invariant manifold of Lemmas 3.7–3.8, by
    /// `BDFSolver` with a dense M×M Jacobian.
    case dual

    public init?(name: String) {
        if name == "auto" { self = .auto; return }
        if name == "rosenbrock" { self = .rosenbrock; return }
        if name == "bdf" { self = .bdf; return }
        if name == "dual" { self = .dual; return }
        guard let s = Stepper(rawValue: name) else { return nil }
        self = .gsl(s)
    }

    public var description: String {
        switch self {
        case .auto: return "auto"
        case let .gsl(s): return s.rawValue
        case .rosenbrock: return "rosenbrock"
        case .bdf: return "bdf"
        case .dual: return "dual"
        }
    }

    public static var allNames: [String] { ["auto"] + Stepper.allCases.map(\.rawValue) + ["rosenbrock", "bdf", "dual"] }
}

/// Model settings (`model`).
public struct ModelSpec: Sendable {
    /// The largest depth a config may ask for.
    public static let maxDepth = 10_000
    public var flow: FlowKind = .gf
    public var depth: Int = 2
    public var signed = false
    /// η_g, the learning-rate ratio (constant-rate WN, WN-GD).
    public var etaG: Double = 0.05
    /// η_v.
    public var etaV: Double = 1
    /// Step size μ of GD and WN-GD.
    public var step: Double?
    public init() {}
}

/// Integrator settings (`integrator`).
public struct IntegratorSpec: Sendable {
    public var method: Method = .auto
    public var rtol = 1e-10
    public var atol = 1e-18
    public var tEnd = 1e12
    public var initialStep: Double?
    public var maxSteps = 2_000_000
    /// `max_recenterings`: how often `dual` may re-center WN's coordinates before it hands
    /// the run to weight space (`DualSolver.maxRecenterings`).
    public var maxRecenterings = 1000
    /// `stop.loss_below`; `nil` means the default `1e-24 · ½‖y‖²` (scale-aware).
    public var lossBelow: Double?
    /// `stop.speed_below`: stop when ‖state'‖ falls below.
    public var speedBelow: Double?
    public init() {}
}

/// Recording settings (`record`).
public struct RecordSpec: Sendable {
    public enum Times: Sendable { case log, list([Double]) }
    public var times: Times = .log
    public var points = 200
    /// First log-spaced time (default `1e-3`, below `t_end`).
    public var tMin: Double?
    public init() {}
}

/// A validated simulation config (INTERFACE.md, CONFIG.json).
public struct SimulationConfig: Sendable {
    public var problem: Problem
    public var model: ModelSpec
    /// Starting weights `x₀` (length `problem.weightCount`).
    public var x0: [Double]
    /// WN overrides: `g₀` and `v₀`.
    public var g0: Double?
    public var v0: [Double]?
    /// `‖v₀‖` for WN (default 1).
    public var vNorm: Double = 1
    public var integrator: IntegratorSpec
    public var record: RecordSpec
    /// Legal but suspect inputs (e.g. a non-positive start at depth ≥ 2).
    public var warnings: [String] = []

    public init(problem: Problem, model: ModelSpec, x0: [Double], integrator: IntegratorSpec = .init(),
                record: RecordSpec = .init()) {
        self.problem = problem
        self.model = model
        self.x0 = x0
        self.integrator = integrator
        self.record = record
    }

    /// The effective loss threshold (scale-aware default).
    public var lossThreshold: Double {
        integrator.lossBelow ?? max(1e-24 * problem.lossScale, 1e-300)
    }
}

// MARK: - Reading CONFIG.json

extension SimulationConfig {
    /// Reads and validates a config file. Data-file paths are relative to
    /// the config's folder.
    public static func load(path: String) throws -> SimulationConfig {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConfigError("config", "file '\(path)' not found")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("config", "file '\(path)' cannot be read")
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(String(decoding: data, as: UTF8.self), baseDirectory: base)
    }

    /// Parses config text.
    public static func parse(_ text: String, baseDirectory: String = ".") throws -> SimulationConfig {
        let json: JSON
        do { json = try JSON.parse(text) } catch let e as JSONSyntaxError {
            throw ConfigError("config", e.description)
        }
        return try from(json: json, baseDirectory: baseDirectory)
    }

    /// Builds from parsed JSON.
    public static func from(json: JSON, baseDirectory: String = ".") throws -> SimulationConfig {
        let root = try ObjectReader(json, path: "config")
        // `monitor` was accepted and ignored, whatever it held: the lemma checks are not
        // configured in the config (simulate runs them, --no-monitor skips them).
        if root.has("monitor") {
            throw ConfigError("config.monitor", "is not a config setting: simulate runs the lemma checks by default (--no-monitor skips them) and verify judges them; remove it")
        }
        try root.allowOnly(["problem", "model", "init", "integrator", "record", "comment"])
        _ = try root.value("comment")  // free-form, but not null (the contract: null is no value)

        // model first: depth and signedness shape the problem.
        var model = ModelSpec()
        var explicitSigned: Bool?  // model.signed as given (generate.signed must not contradict it)
        var unused: [String] = []  // model settings the chosen flow does not read (warnings)
        if let m = try root.object("model") {
            try m.allowOnly(["flow", "depth", "signed", "eta_g", "eta_v", "step", "eta"])
            if let f = try m.string("flow") {
                guard let k = FlowKind(rawValue: f) else {
                    throw ConfigError(m.field("flow"), "unknown flow '\(f)'; expected one of \(FlowKind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                model.flow = k
            }
            if let d = try m.int("depth", min: 1) {
                // x^L stays in double range only where |ln|x_n|| ≤ 709/L (7e-2 at this cap), and
                // the compensated x^L of the residual costs L products an entry (depth 1e9 ran
                // for minutes).
                guard d <= ModelSpec.maxDepth else {
                    throw ConfigError(m.field("depth"), "must be at most \(ModelSpec.maxDepth), got \(d): x^L stays in double range only where |ln|x|| ≤ 709/L")
                }
                model.depth = d
            }
            if let s = try m.bool("signed") { model.signed = s; explicitSigned = s }
            try m.exclusive("eta", "eta_g", hint: " (eta is an alias of eta_g)")
            // Rates and steps below 1e-150 (the floor t_end and h0 share): 1/η overflows for a
            // subnormal η_g (predict failed with non-finite values at 1e-320), and gd with step
            // 1e-320 ran 2e6 iterations that left x₀ unchanged.
            for key in ["eta", "eta_g", "eta_v", "step"] {
                if let v = try m.positive(key), v < 1e-150 {
                    throw ConfigError(m.field(key), "must be at least 1e-150, got \(JSON.format(v))" + (key == "step" ? "; a smaller step leaves the iterates unchanged" : "; rescale time instead"))
                }
            }
            if let e = try m.positive("eta") { model.etaG = e }
            if let e = try m.positive("eta_g") { model.etaG = e }
            if let e = try m.positive("eta_v") { model.etaV = e }
            if let s = try m.positive("step") { model.step = s }
            try m.finish()
            let f = model.flow
            if m.has("step") && !f.isDiscrete {
                unused.append("model.step is not used: \(f.rawValue) is a flow (an ODE solve); step is for gd and wn-gd")
            }
            for key in ["eta_g", "eta"] where m.has(key) && !(f == .wn || f == .wnGD) {
                unused.append("model.\(key) is not used by \(f.rawValue)" + (f == .wnTimeDependent ? " (its rate η_g = η_v g²/‖v‖² follows from eta_v, Thm 2.4)" : "; it is the rate of g in wn and wn-gd"))
            }
            if m.has("eta_v") && !f.isWeightNormalized {
                unused.append("model.eta_v is not used by \(f.rawValue); it is the rate of v in wn, wn-timedep and wn-gd")
            }
        }
        if model.flow.isDiscrete && model.step == nil {
            throw ConfigError("config.model.step", "flow '\(model.flow.rawValue)' is discrete and needs a positive \"step\" (e.g. 0.01)")
        }

        guard let p = try root.object("problem") else {
            throw ConfigError("config.problem", "missing; give \"A\" and \"y\", \"A_file\" and \"y_file\", or \"generate\"")
        }
        // x₀'s length, known before a generated A is drawn (N = 2e8 took 50 s to draw before
        // a wrong x₀ length was reported).
        var x0Count: Int?
        if case let .object(top) = json, let initValue = top.first(where: { $0.0 == "init" })?.1,
           case let .object(ip) = initValue, let xv = ip.first(where: { $0.0 == "x0" })?.1, case let .array(items) = xv {
            x0Count = items.count
        }
        let problem = try readProblem(p, model: &model, baseDirectory: baseDirectory, x0Count: x0Count,
                                      modelSigned: explicitSigned)

        var config = SimulationConfig(problem: problem, model: model, x0: [])
        config.warnings += unused
        // init
        let nW = problem.weightCount
        guard let i = try root.object("init") else {
            throw ConfigError("config.init", "missing; give \"x0\" (\(nW) numbers) or {\"scale\": α, \"direction\": \"uniform\"}")
        }
        try i.allowOnly(["x0", "scale", "direction", "seed", "g0", "v0", "v_norm", "root_of_depth"])
        try i.exclusive("x0", "scale", hint: " (x0 is the start itself; scale and direction build one)")
        try i.exclusive("x0", "direction", hint: " (x0 is the start itself; scale and direction build one)")
        if let x0 = try i.numbers("x0") {
            guard x0.count == nW else {
                throw ConfigError(i.field("x0"), "expected \(nW) numbers (\(problem.signed ? "2N for signed, N" : "N") from problem.A), got \(x0.count)")
            }
            config.x0 = x0
        } else if let scale = try i.double("scale") {
            guard scale > 0, scale.isFinite else { throw ConfigError(i.field("scale"), "must be a positive number, got \(JSON.format(scale))") }
            let seed = try i.int("seed", min: 0) ?? 1
            let dir: InitDirection
            switch try i.value("direction") {
            case nil: dir = .uniform
            case let .string(s)?:
                switch s {
                case "uniform": dir = .uniform
                case "abs-gaussian": dir = .absGaussian(seed: UInt(seed))
                default: throw ConfigError(i.field("direction"), "unknown direction '\(s)'; expected \"uniform\", \"abs-gaussian\" or an array of \(problem.n) numbers")
                }
            case let v?:
                let d = try ObjectReader.numbers(v, path: i.field("direction"))
                guard d.count == problem.n else { throw ConfigError(i.field("direction"), "expected \(problem.n) numbers (N from problem.A), got \(d.count)") }
                guard d.allSatisfy({ $0.isFinite }) else { throw ConfigError(i.field("direction"), "contains NaN or Inf") }
                guard norm2(d) > 0 else { throw ConfigError(i.field("direction"), "is all zeros; give a non-zero direction") }
                dir = .given(d)
            }
            var half = dir.vector(problem.n).map { scale * $0 }
            if try i.bool("root_of_depth") ?? false {
                half = half.map { $0 >= 0 ? Foundation.pow($0, 1 / Double(model.depth)) : -Foundation.pow(-$0, 1 / Double(model.depth)) }
            }
            config.x0 = problem.signed ? half + half : half
        } else if !(model.flow.isWeightNormalized && i.has("g0") && i.has("v0")) {
            throw ConfigError("config.init", "give \"x0\" (\(nW) numbers) or \"scale\" with an optional \"direction\""
                              + (model.flow.isWeightNormalized ? " (or both \"g0\" and \"v0\")" : ""))
        }
        let startGiven = !config.x0.isEmpty
        // Keys that build x₀ from a scale, given with g0 and v0 instead: read, then warned about below.
        let unusedWithG0V0 = model.flow.isWeightNormalized && i.has("g0") && i.has("v0")
            ? ["direction", "seed", "root_of_depth", "v_norm"].filter { i.has($0) } : []
        if !unusedWithG0V0.isEmpty { _ = try i.value("direction") }
        _ = try i.value("seed")
        _ = try i.value("root_of_depth")
        if let bad = config.x0.firstIndex(where: { !$0.isFinite }) {
            throw ConfigError("config.init.x0[\(bad)]", "is NaN or Inf; every entry must be finite")
        }
        if let vn = try i.positive("v_norm") { config.vNorm = vn }
        if let g0 = try i.double("g0") {
            guard g0.isFinite else { throw ConfigError(i.field("g0"), "must be finite") }
            config.g0 = g0
        }
        if let v0 = try i.numbers("v0") {
            guard v0.count == nW else { throw ConfigError(i.field("v0"), "expected \(nW) numbers, got \(v0.count)") }
            guard v0.allSatisfy({ $0.isFinite }) else { throw ConfigError(i.field("v0"), "contains NaN or Inf") }
            guard norm2(v0) > 0 else { throw ConfigError(i.field("v0"), "is all zeros; v must be non-zero") }
            config.v0 = v0
        }
        try i.finish()
        // g0 and v0 together are the whole WN start: x0 (or scale) is then not needed, and when
        // given it is not used (it was dropped silently); x0 becomes that start's weights
        // g₀v₀/‖v₀‖, which is what the run starts from.
        if model.flow.isWeightNormalized, let g0 = config.g0, let v0 = config.v0 {
            if startGiven {
                config.warnings.append("init.x0/scale is not used: g0 and v0 give the whole WN start (x₀ = g₀v₀/‖v₀‖); drop x0/scale, or drop g0/v0 to start from x0")
            }
            for key in unusedWithG0V0 where !(startGiven && key != "v_norm") {
                config.warnings.append("init.\(key) is not used: g0 and v0 give the whole WN start; drop it")
            }
            let nv = norm2(v0)
            config.x0 = v0.map { g0 * $0 / nv }
        } else if model.flow.isWeightNormalized, config.v0 != nil, i.has("v_norm") {
            config.warnings.append("init.v_norm is not used: v0 sets the start's ‖v₀‖; drop it")
        }
        // The WN start's keys on a flow without g and v.
        if !model.flow.isWeightNormalized {
            for key in ["g0", "v0", "v_norm"] where i.has(key) {
                config.warnings.append("init.\(key) is not used by \(model.flow.rawValue); it sets the start of wn, wn-timedep and wn-gd")
            }
            config.g0 = nil
            config.v0 = nil
        }
        if model.flow.isWeightNormalized && config.v0 == nil && norm2(config.x0) == 0 {
            throw ConfigError("config.init.x0", "is all zeros, but weight normalization needs x₀ ≠ 0 (v₀ = x₀/‖x₀‖); give a non-zero x0")
        }
        // A start whose loss overflows cannot be integrated: the first step failed with "step
        // size underflow at t = 0 … try msbdf" (x0 = 1e200 at depth 2), which blamed the method.
        let state = model.flow.isWeightNormalized
            ? WeightNormFlow.initialState(x0: config.x0, vNorm: config.vNorm, g0: config.g0, v0: config.v0) : config.x0
        let start = makeFlow(problem: problem, model: model).weights(of: state)
        if !problem.loss(start).isFinite {
            let big = start.map { abs($0) }.max() ?? 0
            throw ConfigError(config.v0 != nil || config.g0 != nil ? "config.init" : "config.init.x0",
                              "the loss ½‖A x^L − y‖² overflows at the start (largest |x_n| \(JSON.format(big)) at depth \(model.depth)); "
                              + "rescale x0 (or A and y)")
        }
        // The start the run takes (g0 alone flips or rescales x0 for WN).
        if model.depth >= 2 && start.contains(where: { $0 <= 0 }) {
            let zeros = start.contains(0)
            let wn = model.flow.isWeightNormalized && model.flow != .wnTimeDependent
            let even = model.depth % 2 == 0
            let invariants = wn ? "Lemmas 3.3, 3.8 and 3.9" : "Lemmas 3.3 and 3.7"
            let checked = zeros ? "Lemma 3.3 is checked with each entry's sign (zero entries never move), the invariants and Lemma 3.18 are not (h_L(0) is undefined)"
                : invariants + " (and verify's limit-kkt) are checked with each entry's sign"
                    + (wn ? "" : (even ? ", Lemma 3.18 on |x| (x^L = |x|^L at even depth)" : "; Lemma 3.18 assumes a positive start at odd depth"))
            let predict = zeros ? "predict needs non-zero entries"
                : (even ? "predict (and verify's predict checks) run from |x0|, to which the flow is equivalent at even depth"
                        : "predict needs x0 > 0 at odd depth")
            let subject = config.g0 != nil || config.v0 != nil ? "the start (from g0/v0)" : "init.x0"
            config.warnings.append("\(subject) has non-positive entries at depth \(model.depth): " + checked + "; " + predict)
        }

        if let it = try root.object("integrator") {
            try it.allowOnly(["method", "rtol", "atol", "t_end", "h0", "max_steps", "max_recenterings", "stop"])
            if let name = try it.string("method") {
                guard let m = Method(name: name) else {
                    throw ConfigError(it.field("method"), "unknown method '\(name)'; expected one of \(Method.allNames.joined(separator: ", "))")
                }
                if m == .dual {
                    guard !model.flow.isDiscrete, model.depth == 2 || (model.depth >= 3 && model.flow == .gf) else {
                        throw ConfigError(it.field("method"), "dual is for gf at depth ≥ 2 and for wn and wn-timedep at depth 2 (got \(model.flow.rawValue) at depth \(model.depth)); use auto or bdf")
                    }
                    if model.flow.isWeightNormalized && (config.g0 ?? 1) == 0 {
                        throw ConfigError(it.field("method"), "dual integrates log |g| and needs init.g0 ≠ 0; use auto")
                    }
                    try MemoryBudget.require(MemoryBudget.squares(problem.m, count: 4), field: it.field("method"),
                                             what: "dual with M = \(problem.m) coordinates (dense M × M Jacobian and factors)",
                                             fix: "use auto (weight space where M × M work does not fit) or msbdf")
                    // x^{2−L} = x₀^{2−L} + Aᵀλ is integrated from x₀ ≥ 0 only (was exit 3 at t = 0).
                    if model.depth >= 3, let j = config.x0.firstIndex(where: { $0 < 0 }) {
                        throw ConfigError(it.field("method"), "dual at depth \(model.depth) needs x₀ ≥ 0 (init.x0 entry \(j) is \(JSON.format(config.x0[j]))); use auto or bdf")
                    }
                }
                // WNFlow's bdf and rosenbrock solve with Woodbury: an (M + 32)² capacitance.
                if m == .bdf || m == .rosenbrock {
                    try MemoryBudget.require(MemoryBudget.squares(problem.m + 32, count: 2), field: it.field("method"),
                                             what: "\(name) with M = \(problem.m) rows (its Woodbury solves keep (M + 32) × (M + 32) matrices)",
                                             fix: "use auto or msbdf")
                }
                config.integrator.method = m
                if model.flow.isDiscrete && m != .auto {
                    config.warnings.append("integrator.method \(name) is not used: \(model.flow.rawValue) is an iteration with model.step, not an ODE solve")
                }
            }
            if let r = try it.positive("rtol") {
                // Below double precision the step control cannot succeed and shrinks h until max_steps (minutes).
                guard r >= 1e-16 else { throw ConfigError(it.field("rtol"), "must be at least 1e-16 (double precision), got \(JSON.format(r))") }
                // A relative tolerance of 1 or more allows errors as large as the state: rtol = 10
                // ended at t_end with loss 1e-2 where the default reaches 1e-19, 1e300 in NaN.
                guard r < 1 else { throw ConfigError(it.field("rtol"), "must be below 1 (a relative error; the default is 1e-10), got \(JSON.format(r))") }
                config.integrator.rtol = r
            }
            if let a = try it.double("atol") {
                guard a >= 0 else { throw ConfigError(it.field("atol"), "must be ≥ 0, got \(JSON.format(a))") }
                config.integrator.atol = a
            }
            // Below 1e-150 (the floor A's entries share) a step's own arithmetic leaves the
            // double range: `bdf` failed at t_end = 1e-200 with "step size underflow at t = 0".
            for key in ["t_end", "h0"] {
                if let v = try it.positive(key), v < 1e-150 {
                    throw ConfigError(it.field(key), "must be at least 1e-150, got \(JSON.format(v)); rescale time (scale A and y) instead")
                }
            }
            if let t = try it.positive("t_end") { config.integrator.tEnd = t }
            if let h = try it.positive("h0") { config.integrator.initialStep = h }
            if let n = try it.int("max_steps", min: 1) { config.integrator.maxSteps = n }
            if let n = try it.int("max_recenterings", min: 0) { config.integrator.maxRecenterings = n }
            if let s = try it.object("stop") {
                try s.allowOnly(["loss_below", "speed_below"])
                if let l = try s.positive("loss_below") { config.integrator.lossBelow = l }
                if let v = try s.positive("speed_below") { config.integrator.speedBelow = v }
                try s.finish()
            }
            try it.finish()
        }
        // The iteration's own rule (a step within a relative 1e-15 of t_end is taken), so that a
        // step t_end·(1 + ε) is not refused while steps of t_end/3 end there.
        if let step = model.step, model.flow.isDiscrete, !DiscreteDescent.reaches(config.integrator.tEnd, step) {
            throw ConfigError("config.model.step", "\(JSON.format(step)) is longer than integrator.t_end = \(JSON.format(config.integrator.tEnd)), so \(model.flow.rawValue) would take no step; lower model.step or raise integrator.t_end")
        }
        if let r = try root.object("record") {
            try r.allowOnly(["times", "points", "t_min"])
            switch try r.value("times") {
            case nil: break
            case .string("log")?: config.record.times = .log
            case let .array(items)?:
                let ts = try ObjectReader.numbers(.array(items), path: r.field("times"))
                guard ts.allSatisfy({ $0 >= 0 && $0.isFinite }) else { throw ConfigError(r.field("times"), "times must be finite and ≥ 0") }
                // The floor t_end and h0 share: an implicit step that lands on 1e-300 needs
                // 1/h, which overflows (gf under auto, bdf, bsimp: NaN at t = 9.5e-307).
                if let tiny = ts.first(where: { $0 > 0 && $0 < 1e-150 }) {
                    throw ConfigError(r.field("times"), "positive times must be at least 1e-150, got \(JSON.format(tiny)); rescale time (scale A and y) instead")
                }
                config.record.times = .list(ts.sorted())
            case let v?:
                throw ConfigError(r.field("times"), "expected \"log\" or an array of times, got \(v.typeName)")
            }
            if let n = try r.int("points", min: 0) {
                guard n <= 1_000_000 else { throw ConfigError(r.field("points"), "at most 1,000,000 recorded points, got \(n)") }
                config.record.points = n
            }
            if let t = try r.positive("t_min") {
                guard t >= 1e-150 else {
                    throw ConfigError(r.field("t_min"), "must be at least 1e-150, got \(JSON.format(t)); rescale time (scale A and y) instead")
                }
                config.record.tMin = t
            }
            try r.finish()
        }
        try root.finish()
        return config
    }

    static func readProblem(_ p: ObjectReader, model: inout ModelSpec, baseDirectory: String, x0Count: Int? = nil,
                            modelSigned: Bool? = nil) throws -> Problem {
        try p.allowOnly(["A", "y", "A_file", "y_file", "generate", "ground_truth", "ground_truth_file"])
        func resolve(_ s: String) -> String { s.hasPrefix("/") ? s : baseDirectory + "/" + s }
        try p.exclusive("A", "A_file")
        try p.exclusive("y", "y_file")
        try p.exclusive("ground_truth", "ground_truth_file")
        var a: Matrix?, y: [Double]?, truth: [Double]?
        if let g = try p.object("generate") {
            try g.allowOnly(["M", "N", "sparsity", "l1_norm", "signed", "seed"])
            guard let mm = try g.int("M", min: 1) else { throw ConfigError(g.field("M"), "missing; the number of measurements, e.g. 40") }
            guard let nn = try g.int("N", min: 1) else { throw ConfigError(g.field("N"), "missing; the number of unknowns, e.g. 100") }
            guard Double(mm) * Double(nn) <= 2e8 else {
                throw ConfigError(g.field("M"), "M·N = \(mm)·\(nn) exceeds 2e8 entries (1.6 GB); use a smaller problem or A_file")
            }
            let s = try g.int("sparsity", min: 1) ?? min(5, nn)  // 0 would give y = 0
            guard s <= nn else { throw ConfigError(g.field("sparsity"), "must be ≤ N = \(nn), got \(s)") }
            let l1 = try g.positive("l1_norm") ?? 1
            // y = A z* with |A_mn| up to ~6/√M: keep it within y's 1e150 (Problem.magnitudeLimit).
            guard l1 <= 1e140 else { throw ConfigError(g.field("l1_norm"), "must be at most 1e140 (y = A z* must stay within 1e150), got \(JSON.format(l1))") }
            let given = try g.bool("signed")
            if let given, let modelSigned, given != modelSigned {
                throw ConfigError(g.field("signed"), "is \(given) but model.signed is \(modelSigned); give one of them (either makes the problem signed)")
            }
            let signed = given ?? model.signed
            let seed = try g.int("seed", min: 0) ?? 1
            try g.finish()
            // The problem is signed when either generate.signed or model.signed says so.
            let weights = signed || model.signed ? 2 * nn : nn
            if let c = x0Count, c != weights {
                throw ConfigError("config.init.x0", "expected \(weights) numbers (\(weights == 2 * nn ? "2N for signed, N" : "N") from problem.generate), got \(c)")
            }
            // Before drawing A (1.6 GB at the cap): a run the machine cannot hold is bad input.
            try MemoryBudget.check(entries: Double(mm) * Double(nn), signed: signed, field: g.field("M"))
            if signed { model.signed = true }
            let gen = ProblemGenerator(m: mm, n: nn, sparsity: s, l1Norm: l1, signed: signed, seed: UInt(seed))
            let d = gen.draw()
            a = d.A; y = d.y; truth = d.groundTruth
            if p.has("A") || p.has("y") || p.has("A_file") || p.has("y_file") {
                throw ConfigError("config.problem.generate", "cannot be combined with A/y or A_file/y_file; choose one")
            }
        } else {
            if let v = try p.value("A") {
                guard case let .array(rows) = v else { throw ConfigError(p.field("A"), "expected an array of rows, got \(v.typeName)") }
                guard !rows.isEmpty else { throw ConfigError(p.field("A"), "is empty; give at least one row") }
                var rr: [[Double]] = []
                for (k, row) in rows.enumerated() {
                    let r = try ObjectReader.numbers(row, path: "\(p.field("A"))[\(k)]")
                    if let first = rr.first, first.count != r.count {
                        throw ConfigError("\(p.field("A"))[\(k)]", "has \(r.count) numbers, row 0 has \(first.count) (ragged rows)")
                    }
                    rr.append(r)
                }
                a = Matrix(rowArrays: rr)
            } else if let f = try p.string("A_file") {
                a = try DataFile.matrix(path: resolve(f), field: p.field("A_file"))
            }
            if let yy = try p.numbers("y") { y = yy } else if let f = try p.string("y_file") {
                y = try DataFile.vector(path: resolve(f), field: p.field("y_file"))
            }
            guard a != nil else { throw ConfigError(p.field("A"), "missing; give \"A\" (rows), \"A_file\", or \"generate\"") }
            guard y != nil else { throw ConfigError(p.field("y"), "missing; give \"y\" (M numbers) or \"y_file\"") }
        }
        if let t = try p.numbers("ground_truth") { truth = t } else if let f = try p.string("ground_truth_file") {
            truth = try DataFile.vector(path: resolve(f), field: p.field("ground_truth_file"))
        }
        try p.finish()
        if let a, let bad = a.storage.firstIndex(where: { !$0.isFinite }) {
            throw ConfigError("config.problem.A[\(bad / a.cols)][\(bad % a.cols)]", "is NaN or Inf; every entry must be finite")
        }
        return try Problem(A: a!, y: y!, depth: model.depth, signed: model.signed, groundTruth: truth)
    }
}
