import Foundation
import Testing

/// Inputs that used to crash (Swift trap), hang, or fail on valid data;
/// each must now exit 2 with one line naming the field, or succeed.
@Suite("CLI robustness")
struct CLIRobustnessTests {
    static let base = #"{"problem": {"A": [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], "y": [1.0, 0.5]}, "model": {"flow": "wn", "depth": 2}, "init": {"x0": [0.1, 0.1, 0.1]}, "integrator": {"t_end": 50, "rtol": 1e-8}, "record": {"points": 20}}"#

    /// Exit 2, one stderr line, naming `field`.
    func expectBadInput(_ r: CLI.Outcome, field: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.code == 2, "exit \(r.code): \(r.stderr)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(field), "stderr: \(r.stderr)", sourceLocation: sourceLocation)
    }

    @Test("sweep: a grid whose run count overflows Int is rejected, not trapped")
    func hugeGrid() throws {
        let d = CLI.tempDir("rob-grid")
        let values = "[" + (1...100).map(String.init).joined(separator: ",") + "]"
        let keys = "abcdefghij".map { "\"x.\($0)\": \(values)" }.joined(separator: ", ")
        CLI.write("{\"base\": \(Self.base), \"grid\": {\(keys)}}", d + "/sweep.json")
        expectBadInput(try CLI.run(["sweep", d + "/sweep.json", "--out", d + "/out"]), field: "sweep.grid")
    }

    @Test("merge: indices that are huge, negative or fractional are foreign lines, not a trap", arguments: ["1e300", "-5", "1.5", "-1e300"])
    func mergeBadIndex(index: String) throws {
        let d = CLI.tempDir("rob-merge")
        CLI.write("{\"index\": \(index)}\n", d + "/results.jsonl")
        expectBadInput(try CLI.run(["merge", d, "--out", d + "/merged.jsonl"]), field: "inputs")
    }

    @Test("sweep --resume: a line with a huge index is rejected, not trapped")
    func resumeHugeIndex() throws {
        let d = try sweptOnce("rob-resume", base: Self.base, etaG: "[0.05]")
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: d + "/out/results.jsonl"))
        h.seekToEndOfFile()
        h.write(Data("{\"index\": 1e300}\n".utf8))
        try h.close()
        expectBadInput(try CLI.run(["sweep", d + "/sweep.json", "--out", d + "/out", "--resume"]), field: "--resume")
    }

    /// A changed `base` under the same grid: the params alone matched, and `--resume` mixed
    /// runs of two configs (a helper's sweep round). Each line carries its config's digest
    /// now; the unchanged sweep still resumes.
    @Test("sweep --resume refuses lines run from another base config")
    func resumeChangedBase() throws {
        let d = try sweptOnce("rob-resume-base", base: Self.base, etaG: "[0.05, 0.1]")
        let same = try CLI.run(["sweep", d + "/sweep.json", "--out", d + "/out", "--resume", "--quiet"])
        #expect(same.code == 0, "\(same.stderr)")
        let changed = Self.base.replacingOccurrences(of: "\"flow\": \"wn\"", with: "\"flow\": \"wn\", \"eta_v\": 2")
        #expect(changed != Self.base)
        CLI.write("{\"base\": \(changed), \"grid\": {\"model.eta_g\": [0.05, 0.1]}}", d + "/sweep.json")
        let other = try CLI.run(["sweep", d + "/sweep.json", "--out", d + "/out", "--resume"])
        expectBadInput(other, field: "--resume")
        #expect(other.stderr.contains("another config"), "\(other.stderr)")
    }

    /// A sweep over `model.eta_g` (the JSON array `etaG`) from `base`, run once in a fresh
    /// folder (`sweep.json`, results in `out`); returns the folder.
    func sweptOnce(_ name: String, base: String, etaG: String) throws -> String {
        let d = CLI.tempDir(name)
        CLI.write("{\"base\": \(base), \"grid\": {\"model.eta_g\": \(etaG)}}", d + "/sweep.json")
        let first = try CLI.run(["sweep", d + "/sweep.json", "--out", d + "/out", "--quiet"])
        #expect(first.code == 0, "\(first.stderr)")
        return d
    }

    /// A simulate run in a fresh folder.
    func simulated(_ name: String) throws -> String {
        let d = CLI.tempDir(name)
        CLI.write(Self.base, d + "/config.json")
        let r = try CLI.run(["simulate", d + "/config.json", "--out", d + "/run", "--quiet"])
        #expect(r.code == 0, "\(r.stderr)")
        return d + "/run"
    }

    @Test("plot: a result.json depth of 1e300 or -1e300 is rejected, not trapped", arguments: ["1e300", "-1e300", "2.5"])
    func plotBadDepth(depth: String) throws {
        let run = try simulated("rob-plot-depth")
        let text = try String(contentsOfFile: run + "/result.json", encoding: .utf8)
        CLI.write(text.replacingOccurrences(of: "\"depth\": 2", with: "\"depth\": \(depth)"), run + "/result.json")
        expectBadInput(try CLI.run(["plot", run]), field: "result.json.depth")
    }

    @Test("plot: works on a relative folder (gnuplot runs in that folder)")
    func plotRelativeDir() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/gnuplot") || FileManager.default.isExecutableFile(atPath: "/usr/local/bin/gnuplot") else { return }
        let run = try simulated("rob-plot-rel")
        let parent = URL(fileURLWithPath: run).deletingLastPathComponent().path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["plot", "run"]
        p.currentDirectoryURL = URL(fileURLWithPath: parent)
        p.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        p.standardError = err
        try p.run()
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(e)")
        #expect(FileManager.default.fileExists(atPath: run + "/trajectory.png"))
    }

    @Test("plot: a trajectory.csv with Windows line endings is read")
    func plotCRLF() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/gnuplot") || FileManager.default.isExecutableFile(atPath: "/usr/local/bin/gnuplot") else { return }
        let run = try simulated("rob-plot-crlf")
        let text = try String(contentsOfFile: run + "/trajectory.csv", encoding: .utf8)
        CLI.write(text.replacingOccurrences(of: "\n", with: "\r\n"), run + "/trajectory.csv")
        let r = try CLI.run(["plot", run])
        #expect(r.code == 0, "\(r.stderr)")
    }

    /// A .npy v1 file of float64 with the given shape text and values.
    func npy(shape: String, values: [Double]) -> Data {
        var h = "{'descr': '<f8', 'fortran_order': False, 'shape': \(shape), }"
        while (10 + h.count + 1) % 64 != 0 { h += " " }
        h += "\n"
        var d = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(h.utf8.count & 0xFF), UInt8(h.utf8.count >> 8)])
        d.append(Data(h.utf8))
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        return d
    }

    @Test("predict: a .npy whose shape product overflows is rejected, not trapped",
          arguments: ["(4611686018427387904, 4)", "(3037000500, 3037000500)", "(1152921504606846976,)"])
    func npyHugeShape(shape: String) throws {
        let d = CLI.tempDir("rob-npy")
        _ = FileManager.default.createFile(atPath: d + "/A.npy", contents: npy(shape: shape, values: [1, 2]))
        CLI.write(#"{"problem": {"A_file": "A.npy", "y": [1.0, 0.5]}, "model": {"flow": "wn", "depth": 2}, "init": {"scale": 0.1}}"#, d + "/config.json")
        expectBadInput(try CLI.run(["predict", d + "/config.json", "--out", d + "/p.json", "--quiet"]), field: "config.problem.A_file")
    }

    @Test("predict: CSV files with Windows line endings are read like Unix ones")
    func csvCRLF() throws {
        let d = CLI.tempDir("rob-crlf")
        CLI.write("1,2,3\r\n0.5,-1,2\r\n", d + "/A.csv")
        CLI.write("1\r\n0.5\r\n", d + "/y.csv")
        CLI.write("1,2,3\n0.5,-1,2\n", d + "/A-unix.csv")
        CLI.write("1\n0.5\n", d + "/y-unix.csv")
        let cfg = #"{"problem": {"A_file": "A.csv", "y_file": "y.csv"}, "model": {"flow": "wn", "depth": 2}, "init": {"scale": 0.1}}"#
        CLI.write(cfg, d + "/config.json")
        CLI.write(cfg.replacingOccurrences(of: ".csv", with: "-unix.csv"), d + "/unix.json")
        let r = try CLI.run(["predict", d + "/config.json", "--out", d + "/p.json", "--quiet"])
        #expect(r.code == 0, "\(r.stderr)")
        let u = try CLI.run(["predict", d + "/unix.json", "--out", d + "/u.json", "--quiet"])
        #expect(u.code == 0, "\(u.stderr)")
        let a = try String(contentsOfFile: d + "/p.json", encoding: .utf8), b = try String(contentsOfFile: d + "/u.json", encoding: .utf8)
        #expect(a.split(separator: "\n").filter { $0.contains("\"z\"") } == b.split(separator: "\n").filter { $0.contains("\"z\"") })
    }

    @Test("simulate: rtol below double precision is rejected (it hung until max_steps)")
    func tinyRtol() throws {
        let d = CLI.tempDir("rob-rtol")
        CLI.write(Self.base.replacingOccurrences(of: "\"rtol\": 1e-8", with: "\"rtol\": 1e-300"), d + "/config.json")
        expectBadInput(try CLI.run(["simulate", d + "/config.json", "--out", d + "/run"]), field: "config.integrator.rtol")
    }
}
