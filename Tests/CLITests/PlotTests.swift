import Foundation
import Testing

@Suite("plot")
struct PlotTests {
    /// A folder `dir` with a small WN run in `dir/run` (`simulate --quiet`, exit 0 expected).
    static func simulatedWNRun(_ name: String, points: Int) throws -> String {
        let dir = CLI.tempDir(name)
        CLI.write(CLI.smallWNConfig(points: points), dir + "/c.json")
        let r = try CLI.run(["simulate", dir + "/c.json", "--out", dir + "/run", "--quiet"])
        #expect(r.code == 0, "\(r.stderr)")
        return dir
    }

    @Test("plot renders a WN run's trajectory to PNG and SVG; a missing folder exits 2")
    func plotRun() throws {
        let dir = CLI.tempDir("plot")
        CLI.write(CLI.smallWNConfig(points: 40), dir + "/c.json")
        let s = try CLI.run(["simulate", dir + "/c.json", "--out", dir + "/run", "--quiet"])
        #expect(s.code == 0, "\(s.stderr)")
        let result = try String(contentsOfFile: dir + "/run/result.json", encoding: .utf8)
        #expect(result.contains("\"eta_g\": 0.1"))
        let p = try CLI.run(["plot", dir + "/run"])
        #expect(p.code == 0, "\(p.stderr)")
        let png = FileManager.default.contents(atPath: dir + "/run/trajectory.png") ?? Data()
        #expect(Array(png.prefix(4)) == [0x89, 0x50, 0x4E, 0x47])
        let svg = (try? String(contentsOfFile: dir + "/run/trajectory.svg", encoding: .utf8)) ?? ""
        #expect(svg.contains("<svg"))
        let bad = try CLI.run(["plot", dir + "/nowhere"])
        #expect(bad.code == 2 && bad.stderr.split(separator: "\n").count == 1 && bad.stderr.contains("dir"))
    }

    /// A diverged discrete run (exit 3) plots, and its message points at model.step, not at an
    /// ODE method (it said "try an implicit method (msbdf)"). Since stop 26 it keeps its last
    /// finite iterate, so every row is numbers; a failed run's null row (stop 25: "trajectory.csv:
    /// line 6 is not a number row", exit 2) still plots.
    @Test("a diverged gd run plots, and its message names model.step")
    func plotDivergedRun() throws {
        let dir = CLI.tempDir("plot-diverged")
        CLI.write(#"{"problem": {"generate": {"M": 40, "N": 100, "sparsity": 5, "l1_norm": 5, "seed": 3}}, "model": {"flow": "gd", "depth": 4, "step": 0.1}, "init": {"scale": 1, "direction": "abs-gaussian", "seed": 2}, "record": {"points": 20}}"#, dir + "/c.json")
        let s = try CLI.run(["simulate", dir + "/c.json", "--out", dir + "/run", "--quiet"])
        #expect(s.code == 3 && s.stderr.contains("lower model.step") && !s.stderr.contains("msbdf"), "\(s.stderr)")
        let path = dir + "/run/trajectory.csv"
        let csv = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!csv.contains("null") && !csv.contains("nan") && !csv.contains("inf"))
        #expect(try CLI.run(["plot", dir + "/run"]).code == 0)
        let width = csv.split(separator: "\n")[0].split(separator: ",").count
        try ((csv.hasSuffix("\n") ? csv : csv + "\n") + (["1e9"] + Array(repeating: "null", count: width - 1)).joined(separator: ",") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let p = try CLI.run(["plot", dir + "/run"])
        #expect(p.code == 0, "\(p.stderr)")
    }

    /// A gd run that diverged at its first iterate has no row with t > 0 and a finite loss:
    /// plot says so in one line (gnuplot's "x range is invalid" came through, and left a
    /// half-written PNG); a run whose only later row is one time plots a decade either side.
    @Test func plotWithNothingOnLogTime() throws {
        let dir = CLI.tempDir("plot-empty")
        CLI.write(#"{"problem": {"generate": {"M": 5, "N": 12, "sparsity": 1, "seed": 3}}, "model": {"flow": "gd", "depth": 2, "step": 1e80}, "init": {"scale": 0.5, "direction": "uniform"}, "integrator": {"t_end": 1e81}}"#, dir + "/c.json")
        #expect(try CLI.run(["simulate", dir + "/c.json", "--out", dir + "/run", "--quiet"]).code == 3)
        let p = try CLI.run(["plot", dir + "/run"])
        #expect(p.code == 2 && p.stderr.contains("no row with t > 0 and a finite loss"), "\(p.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/run/trajectory.png"))
        CLI.write(#"{"problem": {"generate": {"M": 5, "N": 12, "sparsity": 1, "seed": 3}}, "model": {"flow": "gf", "depth": 2}, "init": {"scale": 0.5, "direction": "uniform"}, "integrator": {"t_end": 5}, "record": {"times": [5]}}"#, dir + "/d.json")
        #expect(try CLI.run(["simulate", dir + "/d.json", "--out", dir + "/one", "--quiet"]).code == 0)
        let q = try CLI.run(["plot", dir + "/one"])
        #expect(q.code == 0, "\(q.stderr)")
    }

    /// Strings from `result.json` reach the gnuplot script only as single-quoted literals on
    /// one line: a status or flow that closes a double quote and starts a `system` command on
    /// a new line, or holds a backquoted command, runs nothing (before stop 24 all three ran).
    /// The companion: the same backquoted text in a double-quoted gnuplot string does run, so
    /// the file check would see it.
    @Test func resultStringsCannotRunCommands() throws {
        let dir = CLI.tempDir("plot-inject")
        let csv = "t,loss,g,v_norm,x_1\n0,1,,,0.1\n1,0.5,,,0.2\n"
        let statuses = ["x\"\nsystem \"touch \(dir)/a/RAN\"\nset title \"", "a`touch \(dir)/b/RAN`b"]
        let flows = ["gf", "gf\n!touch \(dir)/c/RAN"]
        for (k, (status, flow)) in [(statuses[0], flows[0]), (statuses[1], flows[0]), ("ok", flows[1])].enumerated() {
            let run = dir + "/" + ["a", "b", "c"][k]
            let result = try JSONSerialization.data(withJSONObject: ["status": status, "flow": flow, "depth": 2])
            try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: run + "/result.json", contents: result)
            CLI.write(csv, run + "/trajectory.csv")
            let p = try CLI.run(["plot", run])
            #expect(p.code == 0, "\(p.stderr)")
            #expect(!FileManager.default.fileExists(atPath: run + "/RAN"), "case \(k) ran a command")
        }
        let script = dir + "/probe.gp"
        CLI.write("print \"a`touch \(dir)/PROBE`b\"\n", script)
        let gnuplot = Process()
        gnuplot.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        gnuplot.arguments = ["gnuplot", script]
        gnuplot.standardOutput = FileHandle.nullDevice
        gnuplot.standardError = FileHandle.nullDevice
        try gnuplot.run()
        gnuplot.waitUntilExit()
        #expect(FileManager.default.fileExists(atPath: dir + "/PROBE"))
    }

    /// A wn-timedep run (no log ρ) plots with an empty fourth panel; `--out ""` is refused
    /// (it wrote /result.json) by every command that takes it.
    @Test func timeDependentRunPlotsAndEmptyOutIsRefused() throws {
        let dir = CLI.tempDir("plot-timedep")
        let text = CLI.smallWNConfig(points: 20).replacingOccurrences(of: "\"flow\": \"wn\"", with: "\"flow\": \"wn-timedep\"")
        #expect(text.contains("wn-timedep"))
        CLI.write(text, dir + "/c.json")
        let s = try CLI.run(["simulate", dir + "/c.json", "--out", dir + "/run", "--quiet"])
        #expect(s.code == 0, "\(s.stderr)")
        let p = try CLI.run(["plot", dir + "/run"])
        #expect(p.code == 0, "\(p.stderr)")
        for cmd in ["simulate", "verify", "predict"] {
            let e = try CLI.run([cmd, dir + "/c.json", "--out", ""])
            #expect(e.code == 2 && e.stderr.split(separator: "\n").count == 1 && e.stderr.contains("--out"), "\(cmd): \(e.stderr)")
        }
    }

    /// A damaged trajectory.csv (a cut last row, a field that is not a number) exits 2 in one
    /// line; it used to plot the cut row with fewer weights, and non-numbers as NaN, with exit 0.
    /// `--eta-g` other than the η_g result.json records is refused (it silently drew another
    /// flow's log ρ(t)); the recorded value itself is accepted. The title is plain text
    /// (`noenhanced`: "t_end" was drawn as t with a subscript e).
    @Test func damagedTrajectoryAndConflictingEtaAreRefused() throws {
        let dir = try Self.simulatedWNRun("plot-damaged", points: 40)
        let path = dir + "/run/trajectory.csv"
        let csv = try String(contentsOfFile: path, encoding: .utf8)
        let ok = try CLI.run(["plot", dir + "/run", "--eta-g", "0.1"])
        #expect(ok.code == 0, "\(ok.stderr)")
        let script = try String(contentsOfFile: dir + "/run/trajectory.gp", encoding: .utf8)
        #expect(script.contains("noenhanced"))
        let other = try CLI.run(["plot", dir + "/run", "--eta-g", "0.3"])
        #expect(other.code == 2 && other.stderr.contains("--eta-g") && other.stderr.split(separator: "\n").count == 1, "\(other.stderr)")
        var lines = csv.split(separator: "\n").map(String.init)
        try (lines.dropLast().joined(separator: "\n") + "\n" + String(lines.last!.prefix(40)) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let cut = try CLI.run(["plot", dir + "/run"])
        #expect(cut.code == 2 && cut.stderr.contains("fields where the header has") && cut.stderr.split(separator: "\n").count == 1, "\(cut.stderr)")
        var fields = lines[3].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        fields[6] = "abc"
        lines[3] = fields.joined(separator: ",")
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let word = try CLI.run(["plot", dir + "/run"])
        #expect(word.code == 2 && word.stderr.contains("x_3") && word.stderr.split(separator: "\n").count == 1, "\(word.stderr)")
    }

    /// result.json's η must be positive numbers (-1, "abc", [1] were accepted and drew garbage),
    /// result.json must be an object, --eta-g on a GF run is refused (it has no log ρ), and an η
    /// that makes every log ρ(t) non-finite leaves that panel empty with a title saying so (it
    /// failed in gnuplot, "x range is invalid", naming neither flag).
    @Test func resultFieldsAndExtremeRatesAreChecked() throws {
        let dir = try Self.simulatedWNRun("plot-fields", points: 20)
        let path = dir + "/run/result.json"
        let original = try String(contentsOfFile: path, encoding: .utf8)
        for bad in ["-1", "\"abc\"", "[1]"] {
            try original.replacingOccurrences(of: "\"eta_g\": 0.1", with: "\"eta_g\": \(bad)").write(toFile: path, atomically: true, encoding: .utf8)
            let r = try CLI.run(["plot", dir + "/run"])
            #expect(r.code == 2 && r.stderr.contains("result.json.eta_g"), "\(bad): \(r.stderr)")
        }
        try "[]".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try CLI.run(["plot", dir + "/run"]).code == 2)
        try original.replacingOccurrences(of: "\"eta_g\": 0.1", with: "\"eta_g\": 1e-320").write(toFile: path, atomically: true, encoding: .utf8)
        let tiny = try CLI.run(["plot", dir + "/run"])
        #expect(tiny.code == 0, "\(tiny.stderr)")
        let script = try String(contentsOfFile: dir + "/run/trajectory.gp", encoding: .utf8)
        #expect(script.contains("not finite for these η_g, η_v"))
        CLI.write(#"{"problem": {"generate": {"M": 5, "N": 12, "sparsity": 1, "seed": 3}}, "model": {"flow": "gf", "depth": 2}, "init": {"scale": 0.5, "direction": "uniform"}, "integrator": {"t_end": 50}, "record": {"points": 10}}"#, dir + "/g.json")
        #expect(try CLI.run(["simulate", dir + "/g.json", "--out", dir + "/gf", "--quiet"]).code == 0)
        let g = try CLI.run(["plot", dir + "/gf", "--eta-g", "0.1"])
        #expect(g.code == 2 && g.stderr.contains("--eta-g") && g.stderr.contains("gf"), "\(g.stderr)")
    }

    /// Stop 32's mutation audit: η_g = 0 in result.json is refused, and --eta-v fills in a
    /// result.json without eta_v (not compared with the default 1); a row cut between fields
    /// (6 of the header's fields) is refused.
    @Test func zeroEtaMissingEtaVAndARowCutBetweenFields() throws {
        let dir = try Self.simulatedWNRun("plot-audit32", points: 20)
        let url = URL(fileURLWithPath: dir + "/run/result.json")
        var obj = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        obj["eta_g"] = 0
        try JSONSerialization.data(withJSONObject: obj).write(to: url)
        let zero = try CLI.run(["plot", dir + "/run"])
        #expect(zero.code == 2 && zero.stderr.contains("result.json.eta_g"), "\(zero.stderr)")
        obj["eta_g"] = 0.1
        #expect(obj.removeValue(forKey: "eta_v") != nil)
        try JSONSerialization.data(withJSONObject: obj).write(to: url)
        let filled = try CLI.run(["plot", dir + "/run", "--eta-v", "2"])
        #expect(filled.code == 0, "\(filled.stderr)")
        let path = dir + "/run/trajectory.csv"
        var lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        lines[lines.count - 1] = lines[lines.count - 1].split(separator: ",", omittingEmptySubsequences: false).prefix(6).joined(separator: ",")
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let cut = try CLI.run(["plot", dir + "/run"])
        #expect(cut.code == 2 && cut.stderr.contains("fields where the header has"), "\(cut.stderr)")
    }
}
