import Foundation
import Testing
import GSLKit
@testable import WNFlow

/// Library-level guards for inputs that used to trap.
@Suite("Library robustness")
struct LibraryRobustnessTests {
    static let base = #"{"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": {"flow": "gf"}, "init": {"x0": [0.1, 0.1]}}"#

    @Test("a run out of max_steps suggests an implicit method only when its own is explicit")
    func maxStepsAdvice() throws {
        let p = try Fixture.problem(seed: 1)
        let x0 = [Double](repeating: 0.01, count: 25)
        for (method, implicitAdvice) in [(Method.gsl(.rk8pd), true), (.bdf, false), (.dual, false), (.gsl(.msbdf), false)] {
            var cfg = Fixture.config(p, flow: .gf, x0: x0, method: method)
            cfg.integrator.maxSteps = 5
            let r = Simulation(config: cfg).run(recordTrajectory: false)
            #expect(r.status == .maxSteps)
            let message = r.message ?? ""
            #expect(message.contains("use an implicit method") == implicitAdvice, "\(method): \(message)")
            #expect(message.contains("raise integrator.max_steps"))
            #expect(!message.contains("(\(method.description)") && !message.contains(", \(method.description)"), "\(message)")
        }
    }

    /// Signed GF, L = 4, from starts spread up to 642 (a 160-config comparison of auto, bdf and
    /// bsimp, stop 27): `auto` hands over from `dual` at t = 2.4e-4 to `bdf`, whose pairs end at
    /// u ≈ w ≈ 230 with z = u⁴ − w⁴ small. From there the residual (8e-7) lies below how far one
    /// ulp of the weights moves it (4.6e-6), and bdf's Newton corrections sit at that noise; the
    /// old message told the user to raise max_steps or try bsimp (which timed out at 120 s). The
    /// same run stopped earlier (10,000 steps, t = 2e-4, residual far above that spread) keeps
    /// the usual advice, so the note is not a blanket one.
    @Test("a weight-space run at double precision's residual floor says so instead of 'raise max_steps'")
    func representationFloorNote() throws {
        let text = #"{"problem": {"generate": {"M": 10, "N": 13, "sparsity": 3, "seed": 807039, "signed": true}}, "model": {"flow": "gf", "depth": 4}, "init": {"x0": [9.8891, 0.296932, 8.80212, 8.6641, 6.77532, 311.685, 39.6587, 3.09941, 295.256, 5.86081, 0.561453, 16.7053, 0.759054, 32.9999, 3.49225, 333.206, 1.57534, 35.0542, 195.832, 303.843, 0.615027, 127.149, 642.215, 0.877089, 24.7286, 5.32547]}, "integrator": {"method": "auto", "rtol": 1e-10, "max_steps": 20000}}"#
        var cfg = try SimulationConfig.parse(text)
        let floor = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(floor.status == .maxSteps)
        let spread = cfg.problem.residualULPSpread(floor.x)
        let r = (2 * floor.loss).squareRoot()
        #expect(r < spread, "residual \(r), spread \(spread)")
        let m = floor.message ?? ""
        #expect(m.contains("double precision can hardly follow the flow further"), "\(m)")
        #expect(!m.contains("raise integrator.max_steps"), "\(m)")
        #expect(m.contains("signed pairs"), "\(m)")

        cfg.integrator.maxSteps = 10000
        let early = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(early.status == .maxSteps)
        #expect((2 * early.loss).squareRoot() > cfg.problem.residualULPSpread(early.x))
        let e = early.message ?? ""
        #expect(e.contains("raise integrator.max_steps"), "\(e)")
        #expect(!e.contains("double precision can hardly follow"), "\(e)")
    }

    /// A stop below what the weights resolve: GF L = 2 (M = 10, N = 30) asked for loss 1e-60
    /// ends at t_end = 1e12 with its residual (9.7e-16) within 10× of how far one ulp of the
    /// weights moves it (3.4e-16); the message says to raise loss_below instead of t_end. The
    /// same run stopped at t_end = 1, far above that level, gets the other advice.
    @Test("a stop below the weights' resolution is named as such")
    func stopBelowResolution() throws {
        let text = #"{"problem": {"generate": {"M": 10, "N": 30, "sparsity": 3, "seed": 5}}, "model": {"flow": "gf", "depth": 2}, "init": {"scale": 0.1, "direction": "uniform"}, "integrator": {"method": "auto", "stop": {"loss_below": 1e-60}}, "record": {"points": 0}}"#
        var cfg = try SimulationConfig.parse(text)
        let r = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(r.status == .tEnd)
        let spread = cfg.problem.residualULPSpread(r.x)
        #expect((2 * r.loss).squareRoot() <= 10 * spread)
        let m = r.message ?? ""
        #expect(m.contains("raise integrator.stop.loss_below to about"), "\(m)")
        #expect(!m.contains("raise integrator.t_end"), "\(m)")

        cfg.integrator.tEnd = 1
        let early = Simulation(config: cfg).run(recordTrajectory: false)
        #expect(early.status == .tEnd)
        let e = early.message ?? ""
        #expect((2 * early.loss).squareRoot() > 10 * cfg.problem.residualULPSpread(early.x))
        #expect(!e.contains("loss_below to about"), "\(e)")
    }

    /// Inputs a helper's round of 290 malformed configs found accepted or misnamed (stop 28):
    /// each is now a ConfigError naming its field.
    @Test("null values, a config 'monitor' key, rtol ≥ 1, subnormal rates and steps, a huge l1_norm and an x0 of the wrong length are bad input", arguments: [
        (#"{"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": {"flow": null}, "init": {"x0": [0.1, 0.1]}}"#, "config.model.flow"),
        (#"{"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": null, "init": {"x0": [0.1, 0.1]}}"#, "config.model"),
        (#"{"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": {"flow": "gf"}, "init": {"x0": [0.1, 0.1]}, "integrator": {"t_end": null}}"#, "config.integrator.t_end"),
        (#"{"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": {"flow": "gf"}, "init": {"x0": [0.1, 0.1]}, "monitor": {"foo": 1}}"#, "config.monitor"),
        (#"{"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": {"flow": "gf"}, "init": {"x0": [0.1, 0.1]}, "integrator": {"rtol": 10}}"#, "config.integrator.rtol"),
        (#"{"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": {"flow": "gd", "step": 1e-320}, "init": {"x0": [0.1, 0.1]}}"#, "config.model.step"),
        (#"{"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": {"flow": "wn", "eta_g": 1e-320}, "init": {"x0": [0.1, 0.1]}}"#, "config.model.eta_g"),
        (#"{"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": {"flow": "wn", "eta_v": 1e-200}, "init": {"x0": [0.1, 0.1]}}"#, "config.model.eta_v"),
        (#"{"problem": {"generate": {"M": 4, "N": 8, "l1_norm": 1e200}}, "model": {"flow": "gf"}, "init": {"scale": 0.1}}"#, "config.problem.generate.l1_norm"),
        // Before drawing A: N = 2e7 took seconds (2e8: 50 s) to draw before the length was checked.
        (#"{"problem": {"generate": {"M": 1, "N": 20000000}}, "model": {"flow": "gf"}, "init": {"x0": [0.1, 0.1, 0.1]}}"#, "config.init.x0"),
        // Stop 30: generate.signed true against an explicit model.signed false ran signed silently.
        (#"{"problem": {"generate": {"M": 4, "N": 8, "signed": true}}, "model": {"signed": false}, "init": {"scale": 0.1}}"#, "config.problem.generate.signed"),
    ])
    func malformedInputsNameTheirField(text: String, field: String) throws {
        #expect(throws: ConfigError.self) { try SimulationConfig.parse(text) }
        do { _ = try SimulationConfig.parse(text) } catch let e as ConfigError {
            #expect(e.field == field, "\(e)")
        }
    }

    @Test("a UTF-8 byte-order mark before the JSON is ignored (RFC 8259 §8.1)")
    func byteOrderMark() throws {
        let cfg = try SimulationConfig.parse("\u{FEFF}" + Self.base)
        #expect(cfg.x0 == [0.1, 0.1])
        #expect(throws: ConfigError.self) { try SimulationConfig.parse("\u{FEFF}\u{FEFF}" + Self.base) }
    }

    /// The last iterate's loss is watched like the others: gd with step 50 reaches loss 2.3e32
    /// (4e31× its start) at t = 100. With t_end = 150 that iterate's gradient was taken and the
    /// run diverged (failed); with t_end = 100 it ended at t_end, exit 0. Both fail now.
    @Test("a discrete run that diverges at its last iterate is failed, whatever t_end")
    func divergenceAtTheLastIterate() throws {
        for tEnd in [100.0, 150] {
            let text = #"{"problem": {"A": [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], "y": [1.0, 0.5]}, "model": {"flow": "gd", "depth": 2, "step": 50}, "init": {"x0": [0.1, 0.1, 0.1]}, "integrator": {"t_end": \#(tEnd)}}"#
            let r = Simulation(config: try SimulationConfig.parse(text)).run(recordTrajectory: false)
            #expect(r.status == .failed, "t_end \(tEnd): \(r.status) \(r.message ?? "")")
            #expect(r.loss > 1e30 && r.t == 100)
        }
    }

    @Test("SweepSpec.parse rejects a grid whose size overflows or exceeds maxRuns")
    func gridSize() throws {
        let values = "[" + (1...100).map(String.init).joined(separator: ",") + "]"
        let keys = "abcdefghij".map { "\"x.\($0)\": \(values)" }.joined(separator: ", ")
        #expect(throws: ConfigError.self) { try SweepSpec.parse("{\"base\": \(Self.base), \"grid\": {\(keys)}}") }
        let three = "abc".map { "\"x.\($0)\": \(values)" }.joined(separator: ", ")
        #expect(throws: ConfigError.self) { try SweepSpec.parse("{\"base\": \(Self.base), \"grid\": {\(three), \"x.d\": [1, 2]}}") }
        let ok = try SweepSpec.parse("{\"base\": \(Self.base), \"grid\": {\(three)}}")
        #expect(ok.count == 1_000_000)
    }

    @Test("SweepEngine.index(of:) accepts whole numbers in 0..<2^53 only")
    func recordIndex() throws {
        #expect(SweepEngine.index(of: try JSON.parse(#"{"index": 7}"#)) == 7)
        #expect(SweepEngine.index(of: try JSON.parse(#"{"index": 0}"#)) == 0)
        for bad in ["1e300", "-1e300", "-1", "1.5", "\"3\"", "null"] {
            #expect(SweepEngine.index(of: try JSON.parse("{\"index\": \(bad)}")) == nil, "\(bad)")
        }
        #expect(SweepEngine.index(of: try JSON.parse("[1]")) == nil)
    }

    @Test("JSON numbers follow RFC 8259: 02, 1., .5, +1, 1e are malformed")
    func jsonNumberGrammar() throws {
        let good: [(String, Double)] = [("0", 0), ("-0", 0), ("0.5", 0.5), ("-12", -12), ("1e-3", 1e-3),
                                         ("1E+3", 1000), ("-12.5e2", -1250), ("10", 10), ("0e0", 0)]
        for (text, value) in good {
            #expect(try JSON.parse("[\(text)]") == .array([.number(value)]), "\(text)")
        }
        for bad in ["02", "-01", "1.", "1.e5", ".5", "+1", "1e", "1e+", "-", "1.5.2", "1e5e3", "--1", "0x10", "-Infinity"] {
            #expect(throws: JSONSyntaxError.self, "\(bad)") { try JSON.parse("[\(bad)]") }
        }
    }

    @Test("finalize skips lines with huge indices instead of trapping")
    func finalizeHugeIndex() throws {
        let path = NSTemporaryDirectory() + "wnflow-rob-finalize-\(UInt32.random(in: 0...UInt32.max)).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "{\"index\": 1}\n{\"index\": 1e300}\n{\"index\": 0}\n".write(toFile: path, atomically: true, encoding: .utf8)
        let rows = try SweepEngine.finalize(path: path)
        #expect(rows.map(\.index) == [0, 1])
    }

    @Test("NPY.parse rejects shapes whose product overflows")
    func npyOverflow() throws {
        for shape in ["(4611686018427387904, 4)", "(3037000500, 3037000500)", "(1152921504606846976,)"] {
            var h = "{'descr': '<f8', 'fortran_order': False, 'shape': \(shape), }"
            while (10 + h.count + 1) % 64 != 0 { h += " " }
            h += "\n"
            let bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(h.utf8.count & 0xFF), UInt8(h.utf8.count >> 8)]
                + Array(h.utf8) + [UInt8](repeating: 0, count: 16)
            #expect(throws: ConfigError.self) { try NPY.parse(bytes, path: "A.npy", field: "config.problem.A_file") }
        }
    }

    @Test("CSV and trajectory tables accept CRLF line endings")
    func crlf() throws {
        let csv = try DataFile.parseCSV("1,2,3\r\n0.5,-1,2\r\n", path: "A.csv", field: "f")
        #expect(csv.shape == [2, 3])
        #expect(csv.values == [1, 2, 3, 0.5, -1, 2])
        let t = try TrajectoryTable.parse("t,loss,g,v_norm,x_1\r\n0,1,,,0.1\r\n1,0.5,,,0.2\r\n")
        #expect(t.t == [0, 1])
        #expect(t.x == [[0.1], [0.2]])
    }

    @Test("rtol below 1e-16 is a ConfigError naming the field; 1e-16 is accepted")
    func rtolFloor() throws {
        let cfg = #"{"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": {"flow": "gf"}, "init": {"x0": [0.1, 0.1]}, "integrator": {"rtol": RTOL}}"#
        #expect(throws: ConfigError("config.integrator.rtol", "must be at least 1e-16 (double precision), got 1e-300")) {
            try SimulationConfig.parse(cfg.replacingOccurrences(of: "RTOL", with: "1e-300"))
        }
        #expect(try SimulationConfig.parse(cfg.replacingOccurrences(of: "RTOL", with: "1e-16")).integrator.rtol == 1e-16)
    }

    /// A helper found `step` on gf and `eta_g` on gf / wn-timedep ignored without a word,
    /// while `integrator.method` on gd already warned.
    @Test("model settings the flow does not read give a warning; the ones it reads do not")
    func unusedModelSettingsWarn() throws {
        func warnings(_ model: String) throws -> [String] {
            try SimulationConfig.parse(#"{"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": \#(model), "init": {"x0": [0.1, 0.1]}}"#).warnings
        }
        let gf = try warnings(#"{"flow": "gf", "step": 0.1, "eta_g": 0.2, "eta_v": 2}"#)
        #expect(gf.count == 3 && gf.contains { $0.hasPrefix("model.step is not used") }
                && gf.contains { $0.hasPrefix("model.eta_g is not used by gf") } && gf.contains { $0.hasPrefix("model.eta_v is not used by gf") }, "\(gf)")
        #expect(try warnings(#"{"flow": "wn-timedep", "eta": 0.2}"#).first?.contains("Thm 2.4") == true)
        #expect(try warnings(#"{"flow": "wn", "eta_g": 0.2, "eta_v": 2}"#).isEmpty)
        #expect(try warnings(#"{"flow": "wn-gd", "eta_g": 0.2, "eta_v": 2, "step": 0.1}"#).isEmpty)
        #expect(try warnings(#"{"flow": "gd", "step": 0.1}"#).isEmpty)
    }

    /// A problem the machine cannot hold is bad input, named before A is drawn or augmented
    /// (it would otherwise be killed by the kernel: exit 137, no message).
    @Test("MemoryBudget: a problem beyond the available memory is a ConfigError naming the field")
    func memoryBudget() throws {
        // 2e8 entries at 2.5 × 8 bytes is 4 GB: refused with 1 GB available, accepted with 8 GB;
        // signed needs 6.4 GB, so 5 GB refuses it; small problems are never checked.
        #expect(throws: ConfigError.self) { try MemoryBudget.check(entries: 2e8, signed: false, field: "config.problem.generate.M", available: 1e9) }
        try MemoryBudget.check(entries: 2e8, signed: false, field: "f", available: 8e9)
        #expect(throws: ConfigError.self) { try MemoryBudget.check(entries: 2e8, signed: true, field: "f", available: 5e9) }
        try MemoryBudget.check(entries: 1e6, signed: true, field: "f", available: 1)
        do {
            try MemoryBudget.check(entries: 2e8, signed: false, field: "config.problem.generate.M", available: 1e9)
        } catch let e as ConfigError {
            #expect(e.field == "config.problem.generate.M" && e.message.contains("4.0 GB") && e.message.contains("1.0 GB"), "\(e)")
        }
        #if os(Linux)
        #expect((MemoryBudget.available ?? 0) > 0)
        #endif
    }

    /// trajectory.csv wrote non-finite values as JSON's `null`, which numpy.loadtxt and pandas
    /// reject (a differential-testing helper); they are `nan`/`inf`/`-inf` now, and the
    /// plot's reader takes those and the old `null`.
    @Test("trajectory.csv writes non-finite values as nan/inf, and the plot reads them back")
    func csvNonFinite() throws {
        #expect(SimulationResult.csvNumber(.nan) == "nan" && SimulationResult.csvNumber(.infinity) == "inf"
                && SimulationResult.csvNumber(-.infinity) == "-inf" && SimulationResult.csvNumber(0.5) == "0.5")
        let table = try TrajectoryTable.parse("t,loss,g,v_norm,x_1,x_2\n0,1,,,0.1,0.2\n1,nan,,,inf,-inf\n2,null,,,null,1\n")
        #expect(table.t == [0, 1, 2] && table.loss[1].isNaN && table.loss[2].isNaN)
        #expect(table.x[1][0] == .infinity && table.x[1][1] == -.infinity && table.x[2][1] == 1)
    }

    @Test("the examples' arguments: --fast, WNFLOW_FAST, one folder where taken; anything else throws its one line")
    func exampleArguments() throws {
        let none: [String: String] = [:]
        #expect(try ExampleArguments.parse(usage: "u", arguments: [], environment: none) == ExampleArguments(fast: false, folder: nil))
        #expect(try ExampleArguments.parse(usage: "u", arguments: [], environment: ["WNFLOW_FAST": "1"]).fast)
        #expect(try ExampleArguments.parse(usage: "u", acceptsFolder: true, arguments: ["out", "--fast"], environment: none)
                == ExampleArguments(fast: true, folder: "out"))
        for (args, folder, bad) in [(["--bogus"], false, "--bogus"), (["out"], false, "out"), (["a", "b"], true, "b")] {
            #expect(throws: ExampleArguments.UnknownArgument(argument: bad, usage: "u")) {
                try ExampleArguments.parse(usage: "u", acceptsFolder: folder, arguments: args, environment: none)
            }
        }
        let line = ExampleArguments.UnknownArgument(argument: "--x", usage: "example-q [--fast]").description
        #expect(line == "error: unknown argument '--x'; usage: example-q [--fast]")
    }

    @Test("limit-residual with y = 0 is the absolute residual (it was divided by 2.2e-308)")
    func limitResidualAtZeroY() throws {
        let cfg = try SimulationConfig.parse(#"{"problem": {"A": [[1.0, 2.0, 0.5], [0.3, -1, 2]], "y": [0.0, 0.0]}, "model": {"flow": "gf", "depth": 2, "signed": true}, "init": {"x0": [0.3, 0.2, 0.1, 0.3, 0.25, 0.1]}, "integrator": {"t_end": 1e4}}"#)
        let v = Verification.run(config: cfg, extraChecks: { _, _ in [] })
        let r = try #require(v.reports.first { $0.name == "limit-residual" })
        let e = cfg.problem.accurateResidual(v.result.x)
        #expect(abs(r.maxViolation - norm2(e)) <= 1e-12 * max(norm2(e), 1e-300) && r.maxViolation < 1, "\(r)")
        #expect(r.quantity.contains("y = 0"))
    }
}
