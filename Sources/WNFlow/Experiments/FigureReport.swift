import Foundation

/// Turns a figure's runs into `figureK.csv`, a gnuplot script and a
/// `summary.md` section.
public struct FigureReport: Sendable {
    public var figure: Figure
    public var settings: FigureSettings
    public var rows: [FigureRow]

    public init(figure: Figure, settings: FigureSettings, rows: [FigureRow]) {
        self.figure = figure
        self.settings = settings
        self.rows = rows
    }

    public var csv: String { ([FigureRow.csvHeader] + rows.map(\.csvLine)).joined(separator: "\n") + "\n" }

    var gfName: String { settings.flows.gf }
    var wnName: String { settings.flows.wn }
    /// What the two kinds of run are called in tables, titles and legends: GF / WN for the
    /// flows, GD / WN-GD under `--discrete`.
    var gf: String { settings.discreteStep == nil ? "GF" : "GD" }
    var wn: String { settings.discreteStep == nil ? "WN" : "WN-GD" }
    var gfLong: String { settings.discreteStep == nil ? "GF (gradient flow)" : "GD (gradient descent)" }
    var wnLong: String { settings.discreteStep == nil ? "WN (weight normalization)" : "WN-GD (weight-normalized GD)" }
    var modeText: String {
        settings.discreteStep.map { "GD / WN-GD, step μ = \(JSON.format($0))" } ?? "gradient flows (ODE, method auto)"
    }

    /// Groups rows by `x` (α, or η for WN in Figure 3).
    func series(_ label: String, x: KeyPath<FigureRow, Double?>, _ filter: (FigureRow) -> Bool) -> Series {
        let sel = rows.filter(filter)
        let xs = Array(Set(sel.compactMap { $0[keyPath: x] })).sorted()
        return Series(label: label, points: xs.map { xv in PointStat(x: xv, rows: sel.filter { $0[keyPath: x] == xv }) })
    }

    /// The series of the figure (GF first, WN second in each pair).
    public var allSeries: [Series] {
        switch figure {
        case .figure2, .figure5:
            return [series(gf, x: \.alphaOpt) { $0.flow == gfName }, series(wn, x: \.alphaOpt) { $0.flow == wnName }]
        case .figure3:
            return [series(gf, x: \.alphaOpt) { $0.flow == gfName }, series(wn, x: \.eta) { $0.flow == wnName }]
        case .figure4:
            var out: [Series] = []
            for dir in ["abs-gaussian", "uniform"] {
                for d in [2, 3] {
                    out.append(series("\(gf), L = \(d), \(dir)", x: \.alphaOpt) { $0.flow == gfName && $0.depth == d && $0.direction == dir })
                    out.append(series("\(wn), L = \(d), \(dir)", x: \.alphaOpt) { $0.flow == wnName && $0.depth == d && $0.direction == dir })
                }
            }
            return out
        }
    }

    public var title: String {
        let eta = JSON.format(settings.eta)
        switch figure {
        case .figure2: return "Figure 2: \(gf) vs \(wn), L = 2, η = \(eta)"
        case .figure3: return "Figure 3: \(wn) error vs learning-rate ratio η, L = 2, α = \(JSON.format(settings.figure3Alpha))"
        case .figure4: return "Figure 4: depth L = 2 vs L = 3, x₀ = (α d)^{1/L}, η = \(eta)"
        case .figure5: return "Figure 5: signed ground truth, \(gf) vs \(wn), L = 2, η = \(eta)"
        }
    }

    var subtitle: String {
        "N = \(settings.n), M = \(settings.m), s = \(settings.sparsity), \(settings.instances) instances, mean ± sd"
    }

    // MARK: gnuplot

    static func esc(_ s: String) -> String { s.replacingOccurrences(of: "\"", with: "\\\"") }

    /// The lower whisker on the log axis: mean − sd, or where that is ≤ 0 the smallest
    /// instance's error (it was mean/1000, a bar down to 1.3e-8 where the smallest instance
    /// was 2.7e-6), and mean/1000 only when that is 0 too.
    static func lowerWhisker(_ p: PointStat) -> Double {
        if p.mean - p.sd > 0 { return p.mean - p.sd }
        return p.minimum > 0 ? p.minimum : p.mean / 1000
    }

    /// A datablock: `x mean lo hi` (lo: `lowerWhisker`).
    static func block(_ name: String, _ s: Series) -> String {
        var t = "$\(name) << EOD\n"
        for p in s.points where p.mean.isFinite {
            t += "\(JSON.format(p.x)) \(JSON.format(p.mean)) \(JSON.format(lowerWhisker(p))) \(JSON.format(p.mean + p.sd))\n"
        }
        return t + "EOD\n"
    }

    /// The gnuplot label "k/n not conv." at (x, y).
    static func notConvergedLabel(_ k: Int, of n: Int, x: Double, y: Double) -> String {
        "set label \"\(k)/\(n) not conv.\" at \(JSON.format(x)),\(JSON.format(y)) offset 0.8,0.8 font \",9\" tc rgb \"#555555\"\n"
    }

    /// Labels "k/n not conv." at the points of `series` that include runs which did not converge.
    static func notConvergedLabels(_ series: [Series]) -> String {
        var t = ""
        for se in series {
            for p in se.points where p.notConverged > 0 && p.mean > 0 {
                t += notConvergedLabel(p.notConverged, of: p.count, x: p.x, y: p.mean)
            }
        }
        return t
    }

    /// The gnuplot script writing `base.png` and `base.svg`.
    public func gnuplotScript(base: String) -> String {
        let ss = allSeries
        var s = "# \(title)\n# written by wnflow reproduce; run: gnuplot \(GnuplotText.singleLine(URL(fileURLWithPath: base).lastPathComponent)).gp\n"
        for (i, se) in ss.enumerated() { s += FigureReport.block("S\(i)", se) }
        let ylabel = "reconstruction error ||z_∞ − z*||_2"
        let common = """
        set logscale xy
        set format x "10^{%L}"
        set format y "10^{%L}"
        set grid xtics ytics mxtics mytics lc rgb "#dddddd" lw 1
        set key bottom right box opaque
        set offsets 0, 0, graph 0.05, graph 0.05
        set ylabel "\(ylabel)"
        set border lw 1.2
        set style line 1 lc rgb "#1f77b4" lw 2 pt 7 ps 1.1
        set style line 2 lc rgb "#d62728" lw 2 pt 5 ps 1.1
        set style line 3 lc rgb "#2ca02c" lw 2 pt 9 ps 1.2
        set style line 4 lc rgb "#9467bd" lw 2 pt 11 ps 1.2
        set style line 5 lc rgb "#ff7f0e" lw 2 pt 13 ps 1.2
        set style line 6 lc rgb "#8c564b" lw 2 pt 4 ps 1.1

        """
        var body = ""
        switch figure {
        case .figure2, .figure5:
            body = """
            set title "\(FigureReport.esc(title))\\n{/*0.8 \(subtitle), abs-gaussian direction}"
            set xlabel "initialization scale α"
            plot $S0 using 1:2:3:4 with yerrorlines ls 1 title "\(gfLong)", \\
                 $S1 using 1:2:3:4 with yerrorlines ls 2 title "\(wnLong)"

            """
        case .figure3:
            let gfPoint = ss[0].points.first
            let gm = gfPoint.map { JSON.format($0.mean) } ?? "NaN"
            let glo = gfPoint.map { JSON.format(FigureReport.lowerWhisker($0)) } ?? "NaN"
            let ghi = gfPoint.map { JSON.format($0.mean + $0.sd) } ?? "NaN"
            body = """
            set title "\(FigureReport.esc(title))\\n{/*0.8 \(subtitle), abs-gaussian direction}"
            set xlabel "learning-rate ratio η = η_g/η_v"
            set key bottom right box opaque
            plot $S1 using 1:2:3:4 with yerrorlines ls 2 title "\(wnLong)", \\
                 \(gm) with lines ls 1 title "\(gf) (mean, no η)", \\
                 \(glo) with lines ls 1 dt 2 lw 1 title "\(gf) ± sd", \\
                 \(ghi) with lines ls 1 dt 2 lw 1 notitle

            """
        case .figure4:
            // Panels: errors for each direction, then the gains GF/WN.
            var gains = ""
            // Gains built on runs that did not converge are labelled like the error panels'
            // points (Figure 4 had no such marks: a gain of 3.9e7 from t_end runs looked settled).
            var gainLabels = ""
            for k in 0..<4 {
                let gfS = ss[2 * k], wnS = ss[2 * k + 1]
                gains += "$G\(k) << EOD\n"
                for p in gfS.points {
                    if let w = wnS.points.first(where: { $0.x == p.x }), w.mean > 0 {
                        gains += "\(JSON.format(p.x)) \(JSON.format(p.mean / w.mean))\n"
                        let nc = p.notConverged + w.notConverged
                        if nc > 0 && p.mean > 0 {
                            gainLabels += FigureReport.notConvergedLabel(nc, of: p.count + w.count, x: p.x, y: p.mean / w.mean)
                        }
                    }
                }
                gains += "EOD\n"
            }
            let randomLabels = FigureReport.notConvergedLabels(Array(ss[0..<4]))
            let uniformLabels = FigureReport.notConvergedLabels(Array(ss[4..<8]))
            s += gains
            body = """
            set multiplot layout 1,3 title "\(FigureReport.esc(title))\\n{/*0.8 \(subtitle)}" font ",15"
            set xlabel "initialization scale α"
            set title "random direction d = |ξ|/||ξ|| (abs-gaussian)"
            unset label
            \(randomLabels)plot $S0 using 1:2:3:4 with yerrorlines ls 1 title "\(gf), L = 2", \\
                 $S1 using 1:2:3:4 with yerrorlines ls 2 title "\(wn), L = 2", \\
                 $S2 using 1:2:3:4 with yerrorlines ls 3 title "\(gf), L = 3", \\
                 $S3 using 1:2:3:4 with yerrorlines ls 4 title "\(wn), L = 3"
            unset label
            set title "uniform direction d = 1/√N"
            \(uniformLabels)plot $S4 using 1:2:3:4 with yerrorlines ls 1 title "\(gf), L = 2", \\
                 $S5 using 1:2:3:4 with yerrorlines ls 2 title "\(wn), L = 2", \\
                 $S6 using 1:2:3:4 with yerrorlines ls 3 title "\(gf), L = 3", \\
                 $S7 using 1:2:3:4 with yerrorlines ls 4 title "\(wn), L = 3"
            set title "improvement ratio (mean \(gf) error / mean \(wn) error)"
            set ylabel "\(gf) error / \(wn) error"
            set key top right box opaque
            unset label
            \(gainLabels)plot $G0 using 1:2 with linespoints ls 1 title "L = 2, random", \\
                 $G1 using 1:2 with linespoints ls 3 title "L = 3, random", \\
                 $G2 using 1:2 with linespoints ls 5 dt 2 title "L = 2, uniform", \\
                 $G3 using 1:2 with linespoints ls 4 dt 2 title "L = 3, uniform", \\
                 1 with lines lc rgb "#555555" dt 3 title "no gain"
            unset multiplot

            """
        }
        let size = figure == .figure4 ? (1800, 620) : (900, 640)
        let xs = ss.flatMap { $0.points.map(\.x) }.filter { $0 > 0 }
        var extra = ""
        if let lo = xs.min(), let hi = xs.max() {
            extra += "set xrange [\(JSON.format(lo / 1.5)):\(JSON.format(hi * 1.5))]\n"
        }
        // Mark points that include non-converged runs (counted in the mean).
        // (Figure 4 sets them per panel.)
        if figure != .figure4 {
            extra += FigureReport.notConvergedLabels(ss.filter { $0.label == wn || figure != .figure3 })
        }
        s += common + extra
        s += "set terminal pngcairo size \(size.0),\(size.1) enhanced font \"DejaVu Sans,12\"\n"
        s += "set output \(GnuplotText.literal(base + ".png"))\n" + body
        s += "set terminal svg size \(size.0),\(size.1) enhanced font \"DejaVu Sans,12\" background rgb \"white\"\n"
        s += "set output \(GnuplotText.literal(base + ".svg"))\n" + body + "set output\n"
        return s
    }

    // MARK: summary.md

    static func f3(_ x: Double) -> String { x.isFinite ? String(format: "%.3g", x) : "–" }
    static func pm(_ p: PointStat?) -> String { p.map { "\(f3($0.mean)) ± \(f3($0.sd))" } ?? "–" }

    /// Gains (mean GF / mean WN) of series pair `k` at each x.
    func gains(_ gf: Series, _ wn: Series) -> [(x: Double, gain: Double)] {
        gf.points.compactMap { p in wn.points.first { $0.x == p.x }.map { (p.x, p.mean / $0.mean) } }
    }

    /// The markdown section of this figure.
    public var summary: String {
        let ss = allSeries
        var t = "## \(title)\n\n\(subtitle); \(modeText); stop at loss ≤ \(JSON.format(settings.lossRelative))·½‖y‖², t_end \(JSON.format(settings.tEnd)).\n"
        t += "Error = ‖z_∞ − z*‖₂ (‖z*‖₁ = 1). Files: `\(figure.rawValue).csv`, `\(figure.rawValue).png`, `\(figure.rawValue).svg`.\n\n"
        let nc = rows.filter { !$0.converged }
        switch figure {
        case .figure2, .figure5:
            t += table(x: "α", gf: ss[0], wn: ss[1])
            if let last = ss[0].points.last, let w = ss[1].points.last {
                t += "\nAt the largest α = \(JSON.format(last.x)): \(gf) mean error \(FigureReport.f3(last.mean)), \(wn) \(FigureReport.f3(w.mean)) — "
                t += "\(wn) is \(FigureReport.f3(last.mean / w.mean))× lower (MATH.md §4 predicts a gain: at L = 2 magnification makes the weights uniform, so WN approaches the plain ℓ1 minimum).\n"
            }
        case .figure3:
            let g = ss[0].points.first
            t += "\(gf) (no η): \(FigureReport.pm(g))\n\n| η | \(wn) error | \(gf)/\(wn) | \(wn) mean log ρ∞ (converged) | not converged |\n|---|---|---|---|---|\n"
            for p in ss[1].points {
                let gain = g.map { FigureReport.f3($0.mean / p.mean) } ?? "–"
                t += "| \(JSON.format(p.x)) | \(FigureReport.pm(p)) | \(gain) | \(p.meanLogRho.map(FigureReport.f3) ?? "–") | \(p.notConverged)/\(p.count) |\n"
            }
        case .figure4:
            for (k, dir) in ["abs-gaussian", "uniform"].enumerated() {
                for (j, d) in [2, 3].enumerated() {
                    t += "\n**L = \(d), \(dir) direction**\n\n"
                    t += table(x: "α", gf: ss[4 * k + 2 * j], wn: ss[4 * k + 2 * j + 1])
                }
            }
            t += "\n" + figure4Verdict(ss)
        }
        t += "\n**Not converged: \(nc.count) of \(rows.count) runs**"
        if nc.isEmpty {
            t += ".\n"
        } else {
            t += " (included in the means above; listed in the CSV with their status):\n\n"
            for r in nc.prefix(30) {
                // WN whose g decayed to ~0: the saddle x = 0 (the run's `message` says the same).
                let saddle = r.gInf.map { abs($0) < 1e-30 } == true ? "; g = 0: stuck at the saddle x = 0 (MATH.md §4: η too large for this α)" : ""
                t += "- \(r.flow) L=\(r.depth) α=\(JSON.format(r.alpha))\(r.eta.map { " η=\(JSON.format($0))" } ?? "") \(r.direction) instance \(r.instance): status \(r.status), loss \(r.loss.map(FigureReport.f3) ?? "–"), error \(r.recError.map(FigureReport.f3) ?? "–")\(saddle)\n"
            }
            if nc.count > 30 { t += "- … and \(nc.count - 30) more (see the CSV)\n" }
        }
        return t
    }

    func table(x: String, gf gfS: Series, wn wnS: Series) -> String {
        var t = "| \(x) | \(gf) error | \(wn) error | gain \(gf)/\(wn) | \(wn) mean log ρ∞ (converged) | not converged (\(gf), \(wn)) |\n|---|---|---|---|---|---|\n"
        for p in gfS.points {
            let w = wnS.points.first { $0.x == p.x }
            let gain = w.map { FigureReport.f3(p.mean / $0.mean) } ?? "–"
            t += "| \(JSON.format(p.x)) | \(FigureReport.pm(p)) | \(FigureReport.pm(w)) | \(gain) | \(w?.meanLogRho.map(FigureReport.f3) ?? "–") | \(p.notConverged)/\(p.count), \(w.map { "\($0.notConverged)/\($0.count)" } ?? "–") |\n"
        }
        return t
    }

    /// Geometric-mean gain over α per (direction, L), and what it says.
    func figure4Verdict(_ ss: [Series]) -> String {
        func geo(_ g: [(x: Double, gain: Double)]) -> Double {
            let l = g.map { Foundation.log($0.gain) }.filter(\.isFinite)
            return l.isEmpty ? .nan : Foundation.exp(l.reduce(0, +) / Double(l.count))
        }
        let r2 = geo(gains(ss[0], ss[1])), r3 = geo(gains(ss[2], ss[3]))
        let u2 = geo(gains(ss[4], ss[5])), u3 = geo(gains(ss[6], ss[7]))
        var t = "**Improvement ratio \(gf)/\(wn), geometric mean over α:** random direction: L = 2 → \(FigureReport.f3(r2))×, L = 3 → \(FigureReport.f3(r3))×; "
        t += "uniform direction: L = 2 → \(FigureReport.f3(u2))×, L = 3 → \(FigureReport.f3(u3))×.\n\n"
        let predicted = r2 > 3 * max(r3, 1) && u3 > 3 * max(r3, 1)
        if predicted {
            t += "This is what MATH.md §4 predicts: from a random direction WN gains a lot at L = 2 (magnification makes the log weights uniform) and little at L = 3 (magnification scales the weights x̃₀^{2−L} by ρ^{L−2} and leaves them non-uniform, so WN and GF both head for the same weighted-ℓ1 minimizer); with a uniform direction the L = 3 weights are uniform and the L = 3 gain appears.\n"
        } else {
            t += "Compare with MATH.md §4's prediction (large gain at L = 2 from a random direction, little at L = 3, and an L = 3 gain with a uniform direction): the ratios above do NOT show that pattern cleanly here (need L=2 random > 3× L=3 random and L=3 uniform > 3× L=3 random); see the per-α tables and docs/experiments.md.\n"
        }
        return t
    }
}

extension FigureRow {
    var alphaOpt: Double? { alpha }
}

/// Runs gnuplot on a script (exit status and stderr on failure).
public enum Gnuplot {
    public static var executable: String? {
        for d in ["/usr/bin", "/usr/local/bin", "/opt/homebrew/bin"] where FileManager.default.isExecutableFile(atPath: d + "/gnuplot") {
            return d + "/gnuplot"
        }
        return nil
    }

    /// Writes `script` to `scriptPath` and runs it; throws with gnuplot's stderr.
    public static func run(script: String, scriptPath: String) throws {
        try AtomicFile.write(script, to: scriptPath)
        guard let exe = executable else { throw ConfigError("gnuplot", "not found; install gnuplot-nox (apt-get install gnuplot-nox)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        // Absolute: gnuplot runs in the script's folder, where a relative path would not resolve.
        p.arguments = [URL(fileURLWithPath: scriptPath).standardizedFileURL.path]
        p.currentDirectoryURL = URL(fileURLWithPath: scriptPath).deletingLastPathComponent()
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            let msg = String(decoding: e, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? "unknown error"
            throw ConfigError("gnuplot", "failed on \(scriptPath): \(msg)")
        }
    }
}

/// Keeps one section per figure in `summary.md`, between markers, in figure order.
public enum SummaryFile {
    public static func update(path: String, figure: Figure, section: String) throws {
        var sections: [Figure: String] = [:]
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            for f in Figure.allCases {
                let open = "<!-- \(f.rawValue) -->\n", close = "<!-- /\(f.rawValue) -->"
                if let a = text.range(of: open), let b = text.range(of: close, range: a.upperBound..<text.endIndex) {
                    sections[f] = String(text[a.upperBound..<b.lowerBound])
                }
            }
        }
        sections[figure] = section
        var out = "# wnflow reproduce — summary\n\nEach section: mean ± standard deviation of the reconstruction error over instances, the improvement ratio (the plain run's error over the weight-normalized one's: GF / WN for the flows, GD / WN-GD under --discrete), and the runs that did not converge (counted, never dropped).\n\n"
        for f in Figure.allCases { if let s = sections[f] { out += "<!-- \(f.rawValue) -->\n\(s)<!-- /\(f.rawValue) -->\n\n" } }
        try AtomicFile.write(out, to: path)
    }
}
