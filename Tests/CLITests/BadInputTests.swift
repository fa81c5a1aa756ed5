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
    BadCase(label: "generate with sparsity > N", config: "{\"problem\": {\"generate\": {\"M\": 2, \"N\": 3, \"sparsity\": 5}}, \"init\": {\"scale\": 0.1}}", field: "config.problem.generate.sparsity"),
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

    @Test("CSV with a non-number, bad .npy header")
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
}
