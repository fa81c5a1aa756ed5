import Foundation
import Testing
@testable import WNFlow

@Suite("experiments: sweep grid, shards, JSONL")
struct ExperimentTests {
    @Test("grid: keys sorted, last key fastest, dotted paths set (and created)")
    func grid() throws {
        let spec = try SweepSpec.parse("""
        {"base": {"model": {"flow": "wn"}}, "grid": {"model.eta_g": [0.1, 0.2], "init.scale": [1, 2, 3]}}
        """)
        #expect(spec.count == 6)
        #expect(spec.grid.map(\.key) == ["init.scale", "model.eta_g"])
        let p = try spec.point(1)
        #expect(p.params.map(\.0) == ["init.scale", "model.eta_g"])
        #expect(p.config["init"]?["scale"] == .number(1))
        #expect(p.config["model"]?["eta_g"] == .number(0.2))
        #expect(p.config["model"]?["flow"] == .string("wn"))
        #expect(try spec.point(5).config["init"]?["scale"] == .number(3))
    }

    /// A `null` grid value leaves the key out of that run's config (its default): configs
    /// refuse `null` since stop 28, and this keeps "default vs value" sweepable.
    @Test("grid: null leaves the key out of the run's config")
    func gridNullMeansDefault() throws {
        let spec = try SweepSpec.parse(#"{"base": {"problem": {"A": [[1.0, 2.0]], "y": [1.0]}, "model": {"flow": "wn", "eta_g": 0.3}, "init": {"x0": [0.1, 0.1]}}, "grid": {"model.eta_g": [null, 0.1]}}"#)
        let p0 = try spec.point(0), p1 = try spec.point(1)
        #expect(p0.config["model"]?["eta_g"] == nil && p0.config["model"]?["flow"] == .string("wn"))
        #expect(p1.config["model"]?["eta_g"] == .number(0.1))
        #expect(try SimulationConfig.from(json: p0.config).model.etaG == ModelSpec().etaG)
        #expect(p0.configDigest != p1.configDigest && p0.configDigest?.count == 16)
    }

    @Test("bad SWEEP.json names the field")
    func bad() {
        func field(_ text: String) -> String? {
            do { _ = try SweepSpec.parse(text); return nil } catch let e as ConfigError { return e.field } catch { return "?" }
        }
        #expect(field(#"{"grid": {}}"#) == "sweep.base")
        #expect(field(#"{"base": {}, "grid": {"a.b": []}}"#) == "sweep.grid.a.b")
        #expect(field(#"{"base": {"model": {"flow": "wn"}}, "grid": {"model.flow.x": [1]}}"#) == "sweep.grid.model.flow.x")
        #expect(field(#"{"base": {}, "grid": {"a..b": [1]}}"#) == "sweep.grid.a..b")
        #expect(field(#"{"base": {}, "grid": {}, "extra": 1}"#) == "sweep.extra")
    }

    @Test("shards are 1-based and partition the indices")
    func shards() throws {
        let s = try [Shard.parse("1/3"), Shard.parse("2/3"), Shard.parse("3/3")]
        for i in 0..<30 { #expect(s.filter { $0.contains(i) }.count == 1) }
        #expect(s[0].contains(0) && s[1].contains(1))
        for bad in ["0/3", "4/3", "1/0", "a/b", "1"] { #expect(throws: ConfigError.self) { try Shard.parse(bad) } }
    }

    @Test("JSONL: torn trailing line cut off on recover")
    func jsonl() throws {
        let path = NSTemporaryDirectory() + "wnflow-jsonl-\(UInt32.random(in: 0...UInt32.max)).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let f = try JSONLinesFile(path: path)
        try f.append(#"{"index":0}"#)
        try f.append(#"{"index":1}"#)
        let h = FileHandle(forWritingAtPath: path)!
        h.seekToEndOfFile()
        h.write(Data(#"{"index":2,"par"#.utf8))
        h.closeFile()
        let rows = try JSONLinesFile.recover(path: path)
        #expect(rows.count == 2)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"index\":0}\n{\"index\":1}\n")
    }

    /// A full disk used to be counted and ignored (exit 0, a figure drawn from the runs that
    /// were written): `/dev/full` fails every append.
    @Test("a failed append stops the sweep with an error naming --out")
    func writeFailureThrows() throws {
        let spec = try SweepSpec.parse(#"{"base": {"problem": {"A": [[1, 2, 0.5]], "y": [1]}, "model": {"flow": "gf"}, "init": {"scale": 0.1}, "integrator": {"t_end": 10}}, "grid": {"init.scale": [0.1, 0.2, 0.3]}}"#)
        let points = try spec.points()
        let configs = try SweepEngine.configs(points, baseDirectory: "/")
        let full = try JSONLinesFile(path: "/dev/full")
        #expect(throws: ConfigError.self) { _ = try SweepEngine.run(points: points, configs: configs, output: full, jobs: 1) }
        do { _ = try SweepEngine.run(points: points, configs: configs, output: full, jobs: 1) } catch let e as ConfigError {
            #expect(e.field == "--out" && e.message.contains("0 of 3 runs were written") && e.message.contains("--resume"), "\(e.message)")
        }
    }

    @Test("reproduce plans carry a digest of the config without its stop: another --discrete step differs")
    func planDigests() {
        var a = FigureSettings.tiny, b = FigureSettings.tiny
        a.discreteStep = 0.1; b.discreteStep = 0.2
        let pa = FigurePlan(figure: .figure2, settings: a), pb = FigurePlan(figure: .figure2, settings: b)
        #expect(pa.points.allSatisfy { $0.configDigest != nil })
        #expect(zip(pa.points, pb.points).allSatisfy { $0.configDigest != $1.configDigest })
        #expect(FigurePlan(figure: .figure2, settings: a).points.map(\.configDigest) == pa.points.map(\.configDigest))
    }

    @Test("one writer per results file: a second OutputLock on it is refused, and freed with the first")
    func outputLock() throws {
        let path = NSTemporaryDirectory() + "wnflow-lock-\(UInt32.random(in: 0...UInt32.max))/results.jsonl"
        var first: OutputLock? = try OutputLock(path: path)
        #expect(throws: ConfigError.self) { _ = try OutputLock(path: path) }
        _ = first
        first = nil
        #expect(throws: Never.self) { _ = try OutputLock(path: path) }
    }

    @Test("JSONL recovery: CRLF read as LF, a damaged middle line refused")
    func jsonlDamage() throws {
        let path = NSTemporaryDirectory() + "wnflow-jsonl-\(UInt32.random(in: 0...UInt32.max)).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("{\"index\":0}\r\n{\"index\":1}\r\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try JSONLinesFile.recover(path: path).count == 2)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"index\":0}\n{\"index\":1}\n")
        try Data("{\"index\":0}\nnot json\n{\"index\":1}\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: ConfigError.self) { _ = try JSONLinesFile.recover(path: path) }
    }

    @Test("figure plans: Figure 4 runs both directions and both depths with root_of_depth")
    func plans() {
        let p = FigurePlan(figure: .figure4, settings: .tiny)
        #expect(p.points.count == 2 * 2 * 2 * 2 * 2)
        let dirs = Set(p.points.compactMap { pt -> String? in
            if case let .string(d)? = pt.config["init"]?["direction"] { return d } else { return nil }
        })
        #expect(dirs == ["abs-gaussian", "uniform"])
        #expect(p.points.allSatisfy { $0.config["init"]?["root_of_depth"] == .bool(true) })
        let f5 = FigurePlan(figure: .figure5, settings: .tiny)
        #expect(f5.points.allSatisfy { $0.config["model"]?["signed"] == .bool(true) })
    }

    @Test("under --discrete the summary, titles and legends say GD / WN-GD, never GF / WN")
    func discreteLabels() throws {
        func row(_ flow: String, _ err: Double) throws -> FigureRow {
            try #require(FigureRow(line: try JSON.parse("""
            {"params": {"figure": "figure2", "flow": "\(flow)", "depth": 2, "alpha": 0.01, "eta": 0.05,
             "direction": "abs-gaussian", "instance": 0, "seed": 1},
             "rec_error": \(err), "loss": 1e-30, "status": "converged", "stats": {"rhs_evals": 10}}
            """)))
        }
        var settings = FigureSettings.tiny
        settings.discreteStep = 0.1
        let discrete = FigureReport(figure: .figure2, settings: settings, rows: [try row("gd", 0.4), try row("wn-gd", 0.1)])
        let text = discrete.summary + discrete.gnuplotScript(base: "/tmp/f2")
        #expect(text.contains("| α | GD error | WN-GD error | gain GD/WN-GD"))
        #expect(text.contains("GD (gradient descent)") && text.contains("Figure 2: GD vs WN-GD"))
        #expect(!text.contains("GF") && !text.contains("WN error"))
        // The series are found under the discrete names (a mean of 0.4 and 0.1, gain 4).
        #expect(discrete.allSeries.map(\.label) == ["GD", "WN-GD"])
        #expect(discrete.summary.contains("| 0.01 | 0.4 ± 0 | 0.1 ± 0 | 4 |"))
        // Figure 3 reads its WN series by label (the "not conv." marks) and names GF in a legend.
        let f3 = FigureReport(figure: .figure3, settings: settings, rows: [try row("gd", 0.4), try row("wn-gd", 0.1)])
        let f3text = f3.summary + f3.gnuplotScript(base: "/tmp/f3")
        #expect(f3text.contains("| η | WN-GD error | GD/WN-GD |") && f3text.contains("GD (mean, no η)") && !f3text.contains("GF"), "\(f3text)")
        let flows = FigureReport(figure: .figure2, settings: .tiny, rows: [try row("gf", 0.4), try row("wn", 0.1)])
        #expect(flows.summary.contains("| α | GF error | WN error | gain GF/WN"))
    }

    @Test("summary.md names the saddle for a WN run whose g ended at 0, and only for it; mean log ρ∞ is over converged runs")
    func summaryNamesTheSaddle() throws {
        func row(_ g: Double, instance: Int, logRho: Double, status: String = "t_end") throws -> FigureRow {
            let line = try JSON.parse("""
            {"params": {"figure": "figure2", "flow": "wn", "depth": 2, "alpha": 0.001, "eta": 0.05,
             "direction": "abs-gaussian", "instance": \(instance), "seed": 1},
             "rec_error": 0.5, "g_inf": \(g), "log_rho": \(logRho), "loss": 0.079, "status": "\(status)", "stats": {"rhs_evals": 263}}
            """)
            return try #require(FigureRow(line: line))
        }
        let rows = [try row(0, instance: 0, logRho: 1.26e9), try row(0.3, instance: 1, logRho: 7),
                    try row(1, instance: 2, logRho: 3, status: "converged")]
        let text = FigureReport(figure: .figure2, settings: .tiny, rows: rows).summary
        let lines = text.split(separator: "\n").filter { $0.hasPrefix("- wn") }
        #expect(lines.count == 2)
        #expect(lines.first { $0.contains("instance 0") }?.contains("saddle x = 0") == true)
        #expect(lines.first { $0.contains("instance 1") }?.contains("saddle") == false)
        // The t_end runs' log ρ (1.26e9 at the saddle grows with t_end) stay out of the mean.
        #expect(PointStat(x: 0.001, rows: rows).meanLogRho == 3)
    }
}

struct FigureMarksTests {
    private func row(_ flow: String, depth: Int, alpha: Double, direction: String, instance: Int, error: Double,
                     status: String) throws -> FigureRow {
        try #require(FigureRow(line: try JSON.parse("""
        {"params": {"figure": "figure4", "flow": "\(flow)", "depth": \(depth), "alpha": \(alpha), "eta": 0.05,
         "direction": "\(direction)", "instance": \(instance), "seed": 1},
         "rec_error": \(error), "loss": 1e-3, "status": "\(status)", "stats": {"rhs_evals": 10}}
        """)))
    }

    /// Figure 4 labels points (and gains) that include runs which did not converge, on the
    /// panel they belong to (it had no marks: a gain of 3.9e7 from t_end runs looked settled);
    /// a lower bar where mean − sd ≤ 0 ends at the smallest instance, not at mean/1000.
    @Test func figure4MarksNotConvergedAndWhiskersEndAtTheSmallestInstance() throws {
        var rows: [FigureRow] = []
        for (k, (d, L)) in [("abs-gaussian", 2), ("abs-gaussian", 3), ("uniform", 2), ("uniform", 3)].enumerated() {
            for i in 0..<3 {
                rows.append(try row("gf", depth: L, alpha: 0.01, direction: d, instance: i, error: 0.3, status: "converged"))
                let stalled = k == 1 && i == 0
                rows.append(try row("wn", depth: L, alpha: 0.01, direction: d, instance: i,
                                    error: i == 2 ? 1e-1 : 2.7e-6, status: stalled ? "t_end" : "converged"))
            }
        }
        let report = FigureReport(figure: .figure4, settings: .tiny, rows: rows)
        let script = report.gnuplotScript(base: "/tmp/f4")
        let marks = script.components(separatedBy: "\n").filter { $0.contains("not conv.") }
        // One WN L = 3 random point and its gain, in each of the two terminals' passes.
        #expect(marks.count == 4 && marks.allSatisfy { $0.contains("\"1/3 not conv.\"") || $0.contains("\"1/6 not conv.\"") }, "\(marks)")
        #expect(script.components(separatedBy: "unset label").count - 1 == 6)
        let wn = try #require(report.allSeries.first { $0.label.contains("WN") })
        let p = try #require(wn.points.first)
        #expect(p.mean - p.sd <= 0 && FigureReport.lowerWhisker(p) == 2.7e-6)
    }
}

/// A run with more weights than `TrajectoryPlot.maxCurves` draws the largest ones at the end
/// (N = 1e5 wrote every column into the script; gnuplot ran past a minute).
@Test func plotDrawsAtMostMaxCurvesWeights() throws {
    let n = 300
    let header = "t,loss,g,v_norm," + (1...n).map { "x_\($0)" }.joined(separator: ",")
    func row(_ t: Double) -> String {
        "\(t),\(1 / (1 + t)),," + "," + (0..<n).map { j in "\(Double(j % 7 == 0 ? 1000 + j : j) / (1 + t))" }.joined(separator: ",")
    }
    let table = try TrajectoryTable.parse(([header] + [0, 1, 10].map(row)).joined(separator: "\n") + "\n")
    let script = TrajectoryPlot.script(table: table, info: TrajectoryPlot.Info(flow: "gf", depth: 2), base: "/tmp/p")
    #expect(script.contains("the 200 largest at the end, of 300"))
    #expect(script.components(separatedBy: "with lines lw 1 lc rgb").count - 1 == 2 * 200)  // PNG and SVG passes
    let shown = TrajectoryPlot.shownCoordinates(table, rows: table.plottableRows)
    // Every multiple of 7 (the large ones) is among them, and the rest are the largest others.
    #expect(shown.count == 200 && (0..<n).filter { $0 % 7 == 0 }.allSatisfy(shown.contains) && shown.contains(n - 1) && !shown.contains(1))
    let small = try TrajectoryTable.parse("t,loss,g,v_norm,x_1,x_2\n0,1,,,0.5,0.2\n1,0.5,,,0.4,0.1\n")
    #expect(TrajectoryPlot.script(table: small, info: TrajectoryPlot.Info(flow: "gf", depth: 2), base: "/tmp/q").contains("(2 coordinates)"))
}
