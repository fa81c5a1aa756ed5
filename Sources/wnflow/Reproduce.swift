import ArgumentParser
import Foundation
import WNFlow

/// `wnflow reproduce figure2|figure3|figure4|figure5|all --out DIR [--quick] [--jobs N] [--discrete STEP] [--resume]`.
struct ReproduceCommand: ParsableCommand, WritesOutput {
    static let configuration = CommandConfiguration(
        commandName: "reproduce",
        abstract: "Run the paper's experiments (MATH.md §8): DIR/figureK.csv, .png, .svg and DIR/summary.md.",
        discussion: """
        Defaults: N=100, M=40, s=5 (figure4: M=25, s=6), 10 instances, eta=0.05, flows integrated as ODEs (method auto). \
        --quick: 3 instances and 4 alpha/eta points. --discrete STEP: GD / WN-GD with step STEP. \
        Raw runs (one JSON line each, the sweep format) go to DIR/runs/figureK.jsonl; gnuplot scripts to DIR/plots/.
        """)

    @Argument(help: "figure2, figure3, figure4, figure5 or all.")
    var figure: String

    @Option(name: .long, help: "Output folder.")
    var out: String

    @Flag(name: .long, help: "Fewer points and 3 instances (under 2 minutes per figure for the flows; --discrete takes longer: figure2 at step 0.1 took 130-142 s on an idle 2-core machine, 3.5 minutes beside other work).")
    var quick = false

    @Option(name: .long, parsing: .unconditional, help: "Worker threads (default: all cores).")
    var jobs: Int?

    @Option(name: .long, parsing: .unconditional, help: "Use discrete GD / WN-GD with this step instead of the flows.")
    var discrete: Double?

    @Option(name: .long, help: .hidden)
    var size: String?

    @Flag(name: .long, help: "Continue after a crash: keep the runs already in DIR/runs/figureK.jsonl (same figure settings) and do only the rest.")
    var resume = false

    @Flag(name: .long, help: "Print nothing but errors.")
    var quiet = false

    func run() throws {
        let figures: [Figure]
        if figure == "all" { figures = Figure.allCases } else {
            guard let f = Figure(rawValue: figure) else {
                throw ConfigError("figure", "unknown figure '\(figure)'; expected figure2, figure3, figure4, figure5 or all")
            }
            figures = [f]
        }
        if let jobs, jobs < 1 { throw ConfigError("--jobs", "must be at least 1, got \(jobs)") }
        var settings = quick ? FigureSettings.quick : FigureSettings.full
        switch size {
        case nil: break
        case "tiny"?: settings = .tiny
        case let s?: throw ConfigError("--size", "unknown size '\(s)'; expected tiny")
        }
        if let d = discrete {
            guard d > 0, d.isFinite else { throw ConfigError("--discrete", "the step must be a positive number, got \(d)") }
            settings.discreteStep = d
        }
        let dir = URL(fileURLWithPath: out).standardizedFileURL.path
        // An existing file there: say so (Foundation's "I/O error (NSCocoaErrorDomain 512)" did not).
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw ConfigError("--out", "'\(dir)' is a file, not a folder; choose a folder (it is created if missing)")
        }
        do {
            try FileManager.default.createDirectory(atPath: dir + "/runs", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: dir + "/plots", withIntermediateDirectories: true)
        } catch { throw ConfigError("--out", "cannot create '\(dir)': \(ConfigError.fileReason(error))") }

        // One reproduce per folder for the whole command: its figures share summary.md.
        let hold = try OutputLock(path: dir + "/summary.md")
        defer { withExtendedLifetime(hold) {} }
        for f in figures {
            let t0 = Date()
            let plan = FigurePlan(figure: f, settings: settings)
            let configs: [SimulationConfig]
            do { configs = try SweepEngine.configs(plan.points, baseDirectory: dir) } catch let e as ConfigError where e.field.hasSuffix("model.step") {
                // The step is --discrete's (a tiny one was blamed on sweep.base.model.step).
                throw ConfigError("--discrete", e.message.replacingOccurrences(of: "lower model.step or raise integrator.t_end", with: "lower --discrete"))
            }
            let runs = dir + "/runs/\(f.rawValue).jsonl"
            var done = Set<Int>()
            if resume {
                done = try SweepEngine.completedIndices(path: runs, points: plan.points,
                                                        origin: "it was made with other figure settings (--quick, --discrete); rerun with those, or drop --resume, or use another --out",
                                                        changed: "other figure settings: another --discrete step, or another wnflow's plan")
            } else {
                try? FileManager.default.removeItem(atPath: runs)
            }
            let file = try JSONLinesFile(path: runs)
            let bar = ProgressBar(label: f.rawValue)
            _ = try SweepEngine.run(points: plan.points, configs: configs, output: file, skip: done, jobs: jobs,
                                    metrics: plan.metrics, progress: { bar.update(done: $0, total: $1) })
            let lines = try SweepEngine.finalize(path: runs)
            let rows = lines.compactMap { FigureRow(line: $0.json) }
            let report = FigureReport(figure: f, settings: plan.settings, rows: rows)
            let base = dir + "/" + f.rawValue
            do { try AtomicFile.write(report.csv, to: base + ".csv") } catch {
                throw ConfigError.cannotWrite(base + ".csv", error)
            }
            try Gnuplot.run(script: report.gnuplotScript(base: base), scriptPath: dir + "/plots/\(f.rawValue).gp")
            try SummaryFile.update(path: dir + "/summary.md", figure: f, section: report.summary)
            if !quiet {
                let nc = rows.filter { !$0.converged }.count
                let resumed = done.isEmpty ? "" : ", \(done.count) resumed"
                print("\(f.rawValue): \(rows.count) runs (\(nc) not converged\(resumed)) in \(String(format: "%.1f", Date().timeIntervalSince(t0))) s -> \(base).csv, .png, .svg")
            }
        }
        if !quiet { print("summary: \(dir)/summary.md") }
    }
}
