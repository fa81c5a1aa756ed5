import Foundation
import Testing

/// A valid small config; each bad case edits one part of it.
let validConfig = """
{"problem": {"A": [[1.0, 2.0, 0.5], [0.5, -1.0, 2.0]], "y": [1.0, 0.5]},
 "model": {"flow": "wn", "depth": 2, "eta_g": 0.05},
 "init": {"x0": [0.1, 0.1, 0.1]},
 "integrator": {"method": "auto", "rtol": 1e-8, "t_end": 100}}
"""

/// One bad input: the config text (or file setup), and the field the
/// one-line message must name.
struct BadCase: CustomTestStringConvertible, Sendable {
    let label: String
    let config: String
    let field: String
    var testDescription: String { label }
}

let badCases: [BadCase] = [
    BadCase(label: "malformed JSON", config: "{\"problem\": ", field: "config"),
    // Stop 24 (bad-input audit): loss overflow (y = 1e200 "converged" at t = 0 with loss null)
    // and GLPK's scaling abort (|A_mn| = 1e155 or 1e-200, exit 134).
    BadCase(label: "huge y", config: validConfig.replacingOccurrences(of: "\"y\": [1.0, 0.5]", with: "\"y\": [1e200, 0.5]"), field: "config.problem.y"),
    BadCase(label: "huge A entry", config: validConfig.replacingOccurrences(of: "[1.0, 2.0, 0.5]", with: "[1e155, 2.0, 0.5]"), field: "config.problem.A"),
    BadCase(label: "tiny A entry", config: validConfig.replacingOccurrences(of: "[1.0, 2.0, 0.5]", with: "[1e-200, 2.0, 0.5]"), field: "config.problem.A"),
    BadCase(label: "truncated JSON", config: String(validConfig.prefix(60)), field: "config"),
    BadCase(label: "not an object", config: "[1, 2]", field: "config"),
    BadCase(label: "unknown top-level key", config: validConfig.replacingOccurrences(of: "\"model\"", with: "\"modle\""), field: "config.modle"),
    BadCase(label: "unknown model key", config: validConfig.replacingOccurrences(of: "\"eta_g\"", with: "\"etag\""), field: "config.model.etag"),
    BadCase(label: "missing problem", config: "{\"init\": {\"x0\": [1]}}", field: "config.problem"),
    BadCase(label: "missing y", config: validConfig.replacingOccurrences(of: ", \"y\": [1.0, 0.5]", with: ""), field: "config.problem.y"),
    BadCase(label: "y of wrong length", config: validConfig.replacingOccurrences(of: "\"y\": [1.0, 0.5]", with: "\"y\": [1.0]"), field: "config.problem.y"),
    BadCase(label: "ragged rows", config: validConfig.replacingOccurrences(of: "[0.5, -1.0, 2.0]", with: "[0.5, -1.0]"), field: "config.problem.A[1]"),
    BadCase(label: "x0 of wrong length", config: validConfig.replacingOccurrences(of: "[0.1, 0.1, 0.1]", with: "[0.1]"), field: "config.init.x0"),
    BadCase(label: "non-number in A", config: validConfig.replacingOccurrences(of: "[1.0, 2.0, 0.5]", with: "[1.0, \"two\", 0.5]"), field: "config.problem.A[0][1]"),
    BadCase(label: "NaN literal", config: validConfig.replacingOccurrences(of: "[1.0, 0.5]", with: "[NaN, 0.5]"), field: "config"),
    BadCase(label: "overflowing number", config: validConfig.replacingOccurrences(of: "[1.0, 0.5]", with: "[1e999, 0.5]"), field: "config"),
    BadCase(label: "depth 0", config: validConfig.replacingOccurrences(of: "\"depth\": 2", with: "\"depth\": 0"), field: "config.model.depth"),
    BadCase(label: "fractional depth", config: validConfig.replacingOccurrences(of: "\"depth\": 2", with: "\"depth\": 2.5"), field: "config.model.depth"),
    BadCase(label: "negative eta_g", config: validConfig.replacingOccurrences(of: "\"eta_g\": 0.05", with: "\"eta_g\": -1"), field: "config.model.eta_g"),
    BadCase(label: "zero rtol", config: validConfig.replacingOccurrences(of: "\"rtol\": 1e-8", with: "\"rtol\": 0"), field: "config.integrator.rtol"),
    BadCase(label: "unknown flow", config: validConfig.replacingOccurrences(of: "\"flow\": \"wn\"", with: "\"flow\": \"adam\""), field: "config.model.flow"),
    BadCase(label: "unknown method", config: validConfig.replacingOccurrences(of: "\"method\": \"auto\"", with: "\"method\": \"rk45\""), field: "config.integrator.method"),
    BadCase(label: "all-zero x0 for WN", config: validConfig.replacingOccurrences(of: "[0.1, 0.1, 0.1]", with: "[0, 0, 0]"), field: "config.init.x0"),
    BadCase(label: "discrete flow without step", config: validConfig.replacingOccurrences(of: "\"flow\": \"wn\"", with: "\"flow\": \"wn-gd\""), field: "config.model.step"),
    BadCase(label: "missing data file", config: "{\"problem\": {\"A_file\": \"nope.csv\", \"y\": [1]}, \"init\": {\"x0\": [1]}}", field: "config.problem.A_file"),
    BadCase(label: "wrong type for signed", config: validConfig.replacingOccurrences(of: "\"depth\": 2", with: "\"depth\": 2, \"signed\": \"yes\""), field: "config.model.signed"),
    BadCase(label: "negative max_recenterings", config: validConfig.replacingOccurrences(of: "\"t_end\": 100", with: "\"t_end\": 100, \"max_recenterings\": -1"), field: "config.integrator.max_recenterings"),
    BadCase(label: "negative t_end", config: validConfig.replacingOccurrences(of: "\"t_end\": 100", with: "\"t_end\": -5"), field: "config.integrator.t_end"),
    BadCase(label: "unknown init direction", config: validConfig.replacingOccurrences(of: "\"x0\": [0.1, 0.1, 0.1]", with: "\"scale\": 0.1, \"direction\": \"gaussian\""), field: "config.init.direction"),
    // Stop 25 (the rest of the audit): malformed numbers were read as numbers, alternatives given
    // together blamed one of them as "unknown", a newline in a name split the message in two, and
    // starts or times outside the double range failed as "step size underflow … try msbdf".
    BadCase(label: "leading zero", config: validConfig.replacingOccurrences(of: "\"t_end\": 100", with: "\"t_end\": 0100"), field: "config"),
    BadCase(label: "trailing point", config: validConfig.replacingOccurrences(of: "\"t_end\": 100", with: "\"t_end\": 100."), field: "config"),
    BadCase(label: "x0 and scale", config: validConfig.replacingOccurrences(of: "\"x0\": [0.1, 0.1, 0.1]", with: "\"x0\": [0.1, 0.1, 0.1], \"scale\": 0.1"), field: "config.init.scale"),
    BadCase(label: "y and y_file", config: validConfig.replacingOccurrences(of: "\"y\": [1.0, 0.5]", with: "\"y\": [1.0, 0.5], \"y_file\": \"y.csv\""), field: "config.problem.y_file"),
    BadCase(label: "newline in a flow name", config: validConfig.replacingOccurrences(of: "\"flow\": \"wn\"", with: "\"flow\": \"w\\nn\""), field: "config.model.flow"),
    BadCase(label: "overflowing start", config: validConfig.replacingOccurrences(of: "[0.1, 0.1, 0.1]", with: "[1e200, 0.1, 0.1]"), field: "config.init.x0"),
    BadCase(label: "t_end below 1e-150", config: validConfig.replacingOccurrences(of: "\"t_end\": 100", with: "\"t_end\": 1e-200"), field: "config.integrator.t_end"),
    BadCase(label: "eta and eta_g together", config: validConfig.replacingOccurrences(of: "\"eta_g\": 0.05", with: "\"eta_g\": 0.05, \"eta\": 0.2"), field: "config.model.eta_g"),
    BadCase(label: "discrete step longer than t_end", config: validConfig.replacingOccurrences(of: "\"eta_g\": 0.05", with: "\"eta_g\": 0.05, \"step\": 500").replacingOccurrences(of: "\"flow\": \"wn\"", with: "\"flow\": \"wn-gd\""), field: "config.model.step"),
    // Stop 29 (a helper's trajectory round): save times below 1e-150 gave NaN at t = 9.5e-307 under
    // the implicit methods, and dual at depth 3 from a negative start failed at t = 0 (exit 3).
    BadCase(label: "save time below 1e-150", config: validConfig.replacingOccurrences(of: "\"t_end\": 100}", with: "\"t_end\": 100}, \"record\": {\"times\": [1e-300, 1]}"), field: "config.record.times"),
    BadCase(label: "t_min below 1e-150", config: validConfig.replacingOccurrences(of: "\"t_end\": 100}", with: "\"t_end\": 100}, \"record\": {\"t_min\": 1e-200}"), field: "config.record.t_min"),
    BadCase(label: "dual at depth 3 from a negative start", config: validConfig.replacingOccurrences(of: "\"flow\": \"wn\", \"depth\": 2", with: "\"flow\": \"gf\", \"depth\": 3").replacingOccurrences(of: "[0.1, 0.1, 0.1]", with: "[0.1, -0.1, 0.1]").replacingOccurrences(of: "\"auto\"", with: "\"dual\""), field: "config.integrator.method"),
    BadCase(label: "generate with sparsity > N", config: "{\"problem\": {\"generate\": {\"M\": 2, \"N\": 3, \"sparsity\": 5}}, \"init\": {\"scale\": 0.1}}", field: "config.problem.generate.sparsity"),
    // Stop 32 (a helper's fuzz): depth 1e9 ran for minutes (the compensated x^L is L products);
    // "comment": null was accepted.
    BadCase(label: "depth above 10000", config: validConfig.replacingOccurrences(of: "\"depth\": 2", with: "\"depth\": 1000000000"), field: "config.model.depth"),
    BadCase(label: "null comment", config: validConfig.replacingOccurrences(of: "\"model\"", with: "\"comment\": null, \"model\""), field: "config.comment"),
]

@Suite("Bad input exits 2 with one line naming the field")
struct BadInputTests {
    @Test("bad config", arguments: badCases)
    func badConfig(_ c: BadCase) throws {
        let dir = CLI.tempDir("bad")
        let path = dir + "/config.json"
        CLI.write(c.config, path)
        let r = try CLI.run(["simulate", path, "--out", dir + "/out"])
        #expect(r.code == 2, "\(c.label): exit \(r.code), stderr: \(r.stderr)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(c.label): expected one line, got: \(r.stderr)")
        #expect(r.stderr.contains(c.field + ":") || r.stderr.contains(c.field + " "), "\(c.label): message does not name \(c.field): \(r.stderr)")
    }

    @Test("missing config file")
    func missingConfig() throws {
        let r = try CLI.run(["simulate", "/nonexistent/config.json", "--out", "/tmp/x"])
        #expect(r.code == 2)
        #expect(r.stderr.contains("not found"))
    }

    @Test("CSV with a non-number or an empty cell, bad .npy header")
    func badDataFiles() throws {
        let dir = CLI.tempDir("data")
        CLI.write("1,2,3\n4,five,6\n", dir + "/A.csv")
        CLI.write("{\"problem\": {\"A_file\": \"A.csv\", \"y\": [1, 2]}, \"init\": {\"x0\": [1, 1, 1]}}", dir + "/c1.json")
        let r1 = try CLI.run(["simulate", dir + "/c1.json", "--out", dir + "/o1"])
        #expect(r1.code == 2)
        #expect(r1.stderr.contains("config.problem.A_file") && r1.stderr.contains("line 2"))
        _ = FileManager.default.createFile(atPath: dir + "/A.npy", contents: Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 4, 0]) + Data("{bad".utf8))
        CLI.write("{\"problem\": {\"A_file\": \"A.npy\", \"y\": [1, 2]}, \"init\": {\"x0\": [1, 1, 1]}}", dir + "/c2.json")
        let r2 = try CLI.run(["simulate", dir + "/c2.json", "--out", dir + "/o2"])
        #expect(r2.code == 2)
        #expect(r2.stderr.contains("config.problem.A_file") && r2.stderr.contains(".npy"))
        // An empty cell is blamed on its own line (stop 24's audit: "line 2 has 3 values, earlier lines have 2").
        CLI.write("1,,3\n4,5,6\n", dir + "/A.csv")
        let r3 = try CLI.run(["simulate", dir + "/c1.json", "--out", dir + "/o3"])
        #expect(r3.code == 2)
        #expect(r3.stderr.contains("line 1, cell 2 is empty"), "\(r3.stderr)")
    }

    @Test("negative and infinite option values name the option (were 'Missing value')")
    func badOptionValues() throws {
        let dir = CLI.tempDir("opt")
        for (args, option) in [(["plot", dir, "--eta-g", "-1"], "--eta-g"), (["plot", dir, "--eta-v", "inf"], "--eta-v"),
                               (["sweep", dir + "/s.json", "--out", dir + "/o", "--jobs", "-2"], "--jobs"),
                               (["reproduce", "figure2", "--out", dir + "/r", "--discrete", "-0.1"], "--discrete")] {
            let r = try CLI.run(args)
            #expect(r.code == 2, "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(option + ":") && !r.stderr.contains("Missing value"),
                    "\(args): \(r.stderr)")
        }
    }

    @Test("an output path under a file says why in one line, without Foundation's error dump")
    func outputUnderFile() throws {
        let dir = CLI.tempDir("under")
        CLI.write(validConfig, dir + "/c.json")
        CLI.write("x", dir + "/file")
        for command in ["simulate", "predict"] {
            let r = try CLI.run([command, dir + "/c.json", "--out", dir + "/file/sub", "--quiet"])
            #expect(r.code == 2, "\(command): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.hasPrefix("error: --out: cannot write"), "\(command): \(r.stderr)")
            #expect(!r.stderr.contains("NSCocoaErrorDomain") && !r.stderr.contains("could not be completed"), "\(command): \(r.stderr)")
        }
    }

    @Test("unknown subcommand and missing option are usage errors (exit 2)")
    func usageErrors() throws {
        #expect(try CLI.run(["frobnicate"]).code == 2)
        #expect(try CLI.run(["simulate"]).code == 2)
    }

    @Test("--help and --version work")
    func helpAndVersion() throws {
        let h = try CLI.run(["--help"])
        #expect(h.code == 0 && h.stdout.contains("simulate"))
        let v = try CLI.run(["--version"])
        #expect(v.code == 0 && !v.stdout.isEmpty)
    }

    /// Stop 32 (a helper's fuzz): predict with M ≫ N asked for an M × M allocation (3.2e11 bytes)
    /// and trapped (exit 134); a NUL in a CSV cell cut the number short ("-1\09999" read as -1,
    /// exit 0); `bench --only` matching no part ran nothing with exit 0; reproduce's --out on a
    /// file said "I/O error (NSCocoaErrorDomain 512)".
    @Test func fuzzFindingsOfStop32() throws {
        let dir = CLI.tempDir("fuzz32")
        CLI.write(#"{"problem": {"generate": {"M": 200000, "N": 20, "sparsity": 3, "seed": 5}}, "model": {"flow": "gf", "depth": 3}, "init": {"scale": 0.1, "direction": "uniform"}}"#, dir + "/big.json")
        let p = try CLI.run(["predict", dir + "/big.json", "--out", dir + "/p.json", "--limit-only"])
        #expect(p.code == 2 && p.stderr.contains("config.problem") && p.stderr.contains("M × M")
                && p.stderr.split(separator: "\n").count == 1, "\(p.code) \(p.stderr)")
        _ = FileManager.default.createFile(atPath: dir + "/A.csv", contents: Data("1.0,2.0,3.0\n0.5,-1.0".utf8) + Data([0]) + Data("9999,2.0\n".utf8))
        CLI.write(#"{"problem": {"A_file": "A.csv", "y": [1, 0.5]}, "init": {"x0": [1, 1, 1]}}"#, dir + "/nul.json")
        let n = try CLI.run(["simulate", dir + "/nul.json", "--out", dir + "/o"])
        #expect(n.code == 2 && n.stderr.contains("config.problem.A_file") && n.stderr.contains("line 2, column 2")
                && n.stderr.split(separator: "\n").count == 1, "\(n.code) \(n.stderr)")
        // A UTF-8 byte-order mark (Excel's "CSV UTF-8") is not part of the first number.
        _ = FileManager.default.createFile(atPath: dir + "/A.csv", contents: Data([0xEF, 0xBB, 0xBF]) + Data("1.0,2.0,3.0\n0.5,-1.0,2.0\n".utf8))
        let bom = try CLI.run(["simulate", dir + "/nul.json", "--out", dir + "/bom", "--quiet"])
        #expect(bom.code == 0, "\(bom.stderr)")
        let b = try CLI.run(["bench", "--only", "nosuch"])
        #expect(b.code == 2 && b.stderr.contains("--only") && b.stderr.contains("gf2-alpha0.1"), "\(b.stderr)")
        // Parts this run would not take either (a reviewer's round): large cases under --quick, 10000 without --huge.
        for args in [["--quick", "--only", "large"], ["--only", "10000"], ["--quick", "--only", ""]] {
            let q = try CLI.run(["bench"] + args)
            #expect(q.code == 2 && q.stderr.contains("matches no part of this run"), "\(args): \(q.stderr)")
        }
        CLI.write("x", dir + "/file")
        let r = try CLI.run(["reproduce", "figure2", "--quick", "--out", dir + "/file"])
        #expect(r.code == 2 && r.stderr.contains("is a file, not a folder"), "\(r.stderr)")
    }
}
