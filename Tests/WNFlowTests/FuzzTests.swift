import Foundation
import GSLKit
import Testing
@testable import WNFlow

/// Mutates valid configs (types, sizes, values, truncation) and asserts that
/// each one is either rejected with a `ConfigError` naming a field, or runs
/// to a result: never a crash. The mutations are drawn from GSL's mt19937,
/// so a failure is reproducible from its case number.
@Suite("Config fuzzing")
struct FuzzTests {
    static let seeds: [String] = [
        #"{"problem": {"A": [[1.0, 2.0, 0.5], [0.5, -1.0, 2.0]], "y": [1.0, 0.5], "ground_truth": [0.2, 0.3, 0.1]}, "model": {"flow": "wn", "depth": 2, "eta_g": 0.05, "eta_v": 1.0}, "init": {"x0": [0.1, 0.1, 0.1]}, "integrator": {"method": "auto", "rtol": 1e-8, "atol": 1e-14, "t_end": 50, "stop": {"loss_below": 1e-20}}, "record": {"times": "log", "points": 10}}"#,
        #"{"problem": {"generate": {"M": 3, "N": 6, "sparsity": 2, "l1_norm": 1, "seed": 4}}, "model": {"flow": "gf", "depth": 3, "signed": true}, "init": {"scale": 0.1, "direction": "abs-gaussian", "seed": 2}, "integrator": {"method": "rkf45", "t_end": 20}, "record": {"times": [1, 2, 5]}}"#,
        #"{"problem": {"A": [[1.0, 0.0], [0.0, 2.0]], "y": [1.0, 1.0]}, "model": {"flow": "wn-gd", "depth": 1, "eta_g": 0.5, "step": 0.1}, "init": {"x0": [0.5, -0.5], "g0": 1.0, "v0": [1, 1], "v_norm": 2}, "integrator": {"t_end": 10}}"#,
        #"{"problem": {"A": [[2.0, 1.0, 1.0]], "y": [1.0]}, "model": {"flow": "wn-timedep", "depth": 2}, "init": {"scale": 0.2, "direction": [1, 2, 3]}, "integrator": {"method": "msbdf", "t_end": 30, "max_steps": 500}}"#,
    ]

    static let replacements: [JSON] = [
        .null, .bool(true), .number(0), .number(-1), .number(2.5), .number(1e308), .number(-1e308), .number(1e-308),
        .number(3), .number(1e4), .string(""), .string("wn"), .string("msbdf"), .array([]), .array([.number(1)]),
        .object([]), .array([.array([.number(1), .number(2)])]), .number(Double.leastNonzeroMagnitude),
    ]

    /// Every path (list of keys/indices) in a JSON tree.
    static func paths(_ v: JSON, _ prefix: [PathStep] = []) -> [[PathStep]] {
        var out = [prefix]
        switch v {
        case let .object(pairs): for (k, c) in pairs { out += paths(c, prefix + [.key(k)]) }
        case let .array(items): for (i, c) in items.enumerated() { out += paths(c, prefix + [.index(i)]) }
        default: break
        }
        return out
    }

    enum PathStep { case key(String), index(Int) }

    /// `v` with the node at `path` transformed (nil removes it).
    static func modify(_ v: JSON, _ path: ArraySlice<PathStep>, _ f: (JSON) -> JSON?) -> JSON? {
        guard let step = path.first else { return f(v) }
        switch (v, step) {
        case let (.object(pairs), .key(k)):
            var out: [(String, JSON)] = []
            for (kk, c) in pairs {
                if kk == k { if let m = modify(c, path.dropFirst(), f) { out.append((kk, m)) } } else { out.append((kk, c)) }
            }
            return .object(out)
        case let (.array(items), .index(i)):
            var out: [JSON] = []
            for (j, c) in items.enumerated() {
                if j == i { if let m = modify(c, path.dropFirst(), f) { out.append(m) } } else { out.append(c) }
            }
            return .array(out)
        default: return v
        }
    }

    static func mutate(_ base: JSON, rng: RNG) -> String {
        var v = base
        for _ in 0..<(1 + rng.uniformInt(3)) {
            let ps = paths(v)
            let p = ps[rng.uniformInt(ps.count)]
            switch rng.uniformInt(6) {
            case 0: v = modify(v, p[...]) { _ in nil } ?? v                       // delete
            case 1: v = modify(v, p[...]) { _ in replacements[rng.uniformInt(replacements.count)] } ?? v
            case 2: v = modify(v, p[...]) { node in                             // resize arrays
                if case let .array(items) = node {
                    return rng.uniform() < 0.5 ? .array(Array(items.dropLast())) : .array(items + [items.last ?? .number(1)])
                }
                return node
            } ?? v
            case 3: v = modify(v, p[...]) { node in                             // perturb numbers
                if case let .number(d) = node { return .number(d * [-1, 0, 1e-300, 1e300, 10, 0.5][rng.uniformInt(6)]) }
                return node
            } ?? v
            case 4: v = modify(v, p[...]) { node in                             // add unknown key
                if case let .object(pairs) = node { return .object(pairs + [("bogus", .number(1))]) }
                return node
            } ?? v
            default: break
            }
        }
        var text = v.serialized(indent: false)
        switch rng.uniformInt(8) {
        case 0: text = String(text.prefix(rng.uniformInt(max(text.count, 1))))  // truncate
        case 1:
            var chars = Array(text)
            if !chars.isEmpty { chars[rng.uniformInt(chars.count)] = ["{", "]", ",", "\"", "x", "9", "-"][rng.uniformInt(7)] }
            text = String(chars)
        default: break
        }
        return text
    }

    @Test("2,000 mutated configs are rejected with a named field or run, never crash")
    func fuzzConfigs() throws {
        let rng = RNG(seed: 20261129)
        let bases = try FuzzTests.seeds.map { try JSON.parse($0) }
        var rejected = 0, ran = 0
        for k in 0..<2000 {
            let text = FuzzTests.mutate(bases[k % bases.count], rng: rng)
            do {
                var cfg = try SimulationConfig.parse(text)
                cfg.integrator.maxSteps = min(cfg.integrator.maxSteps, 300)
                cfg.integrator.tEnd = min(cfg.integrator.tEnd, 50)
                let r = Simulation(config: cfg).run()
                #expect(r.x.count == cfg.problem.weightCount, "case \(k)")
                _ = r.json(config: cfg).serialized()
                ran += 1
            } catch let e as ConfigError {
                #expect(e.field.hasPrefix("config"), "case \(k): \(e)")
                #expect(!e.message.isEmpty)
                rejected += 1
            }
        }
        #expect(ran > 100 && rejected > 100, "ran \(ran), rejected \(rejected)")
    }

    @Test("extreme scales: init 1e-12, N = M = 1, a zero column")
    func extremeScales() throws {
        // Tiny init: converges (slowly) or stops at t_end, never NaN.
        let tiny = #"{"problem": {"generate": {"M": 4, "N": 8, "sparsity": 2, "seed": 1}}, "model": {"flow": "wn", "depth": 2, "eta_g": 0.05}, "init": {"scale": 1e-12}, "integrator": {"t_end": 1e8}}"#
        let r1 = Simulation(config: try SimulationConfig.parse(tiny)).run()
        #expect(r1.status != .failed, "\(r1.message ?? "")")
        #expect(r1.x.allSatisfy { $0.isFinite })
        // N = M = 1.
        let one = #"{"problem": {"A": [[2.0]], "y": [1.0]}, "model": {"flow": "gf", "depth": 2}, "init": {"x0": [0.1]}}"#
        let r2 = Simulation(config: try SimulationConfig.parse(one)).run()
        #expect(r2.status == .converged)
        #expect(abs(r2.z[0] - 0.5) < 1e-10)
        // A zero column: that weight never moves.
        let zc = #"{"problem": {"A": [[1.0, 0.0, 2.0], [0.5, 0.0, -1.0]], "y": [1.0, 0.2]}, "model": {"flow": "gf", "depth": 2}, "init": {"x0": [0.1, 0.3, 0.1]}}"#
        let r3 = Simulation(config: try SimulationConfig.parse(zc)).run()
        #expect(r3.status == .converged)
        #expect(r3.x[1] == 0.3)
    }
}
