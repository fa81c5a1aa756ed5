import Foundation

/// `trajectory.csv` read back: `t, loss, g, v_norm, x_1…x_N`.
public struct TrajectoryTable: Sendable {
    public var t: [Double] = []
    public var loss: [Double] = []
    public var g: [Double?] = []
    public var vNorm: [Double?] = []
    public var x: [[Double]] = []

    public init() {}

    public static func parse(_ text: String) throws -> TrajectoryTable {
        var out = TrajectoryTable()
        let lines = text.split(whereSeparator: \.isNewline)
        guard let header = lines.first, header.hasPrefix("t,loss,g,v_norm") else {
            throw ConfigError("trajectory.csv", "expected the header t,loss,g,v_norm,x_1,… written by wnflow simulate")
        }
        let width = header.split(separator: ",", omittingEmptySubsequences: false).count
        for (k, l) in lines.dropFirst().enumerated() {
            let f = l.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            // A non-finite value (the last row of a failed run) is `nan`/`inf` since stop 26 and
            // was `null` before: read as NaN or ±inf, which gnuplot leaves out, so a failed run
            // still plots. Anything else that is not a number, and a row whose width differs from
            // the header's (a cut or damaged file), is refused: it used to plot as NaN or as a
            // row with fewer weights.
            func number(_ s: String) -> Double? { s == "null" ? .nan : Double(s) }
            func optional(_ s: String) -> Double?? { s.isEmpty ? .some(nil) : number(s).map { .some($0) } }
            let line = k + 2
            guard f.count == width else {
                throw ConfigError("trajectory.csv", "line \(line) has \(f.count) fields where the header has \(width) (a cut or damaged file); rerun wnflow simulate")
            }
            guard let t = Double(f[0]), let loss = number(f[1]), let g = optional(f[2]), let vn = optional(f[3]) else {
                throw ConfigError("trajectory.csv", "line \(line) is not a number row")
            }
            var x: [Double] = []
            x.reserveCapacity(f.count - 4)
            for (i, s) in f.dropFirst(4).enumerated() {
                guard let v = number(s) else {
                    throw ConfigError("trajectory.csv", "line \(line), field x_\(i + 1) is '\(s)', not a number; rerun wnflow simulate")
                }
                x.append(v)
            }
            out.t.append(t); out.loss.append(loss)
            out.g.append(g); out.vNorm.append(vn)
            out.x.append(x)
        }
        guard !out.t.isEmpty else { throw ConfigError("trajectory.csv", "has no rows; run with record.points > 0") }
        return out
    }

    public init(result: SimulationResult) {
        for r in result.trajectory {
            t.append(r.t); loss.append(r.loss); g.append(r.g); vNorm.append(r.vNorm); x.append(r.x)
        }
    }

    /// The rows a log-time plot can show: t > 0 and a finite loss.
    public var plottableRows: [Int] { t.indices.filter { t[$0] > 0 && loss[$0].isFinite } }

    /// `log ρ(t)` (Lemma 3.9) from g(t), η_g, η_v and g₀ = g(0), ‖v₀‖ = v_norm(0).
    public func logRho(etaG: Double, etaV: Double) -> [Double]? {
        guard let g0 = g.first ?? nil, let v0 = vNorm.first ?? nil, g0 != 0, v0 > 0 else { return nil }
        return g.map { gg in gg.map { logMagnification(g0: g0, g: $0, etaG: etaG, etaV: etaV, vNorm0: v0) } ?? .nan }
    }
}

/// The gnuplot script of `wnflow plot` (and the trajectory example).
public enum TrajectoryPlot {
    public struct Info: Sendable {
        public var flow: String
        public var depth: Int
        public var signed = false
        public var etaG: Double?
        public var etaV: Double = 1
        public var status = ""
        public init(flow: String, depth: Int) { self.flow = flow; self.depth = depth }
    }

    /// The most weight curves a plot draws.
    public static let maxCurves = 200

    /// The weights drawn: all up to `maxCurves`, else the `maxCurves` largest in size at the
    /// last of `rows` (NaN last, ties by index), in index order.
    static func shownCoordinates(_ tb: TrajectoryTable, rows: [Int]) -> [Int] {
        let n = tb.x.first?.count ?? 0
        guard n > maxCurves, let last = rows.last else { return Array(0..<n) }
        let end = tb.x[last]
        func size(_ j: Int) -> Double { end[j].isNaN ? -1 : abs(end[j]) }
        let order = (0..<n).sorted { size($0) != size($1) ? size($0) > size($1) : $0 < $1 }
        return Array(order.prefix(maxCurves)).sorted()
    }

    /// Writes `base.png` and `base.svg`: loss, x_n(t), and for WN g(t) and log ρ(t).
    public static func script(table tb: TrajectoryTable, info: Info, base: String) -> String {
        let wn = info.flow.hasPrefix("wn")
        let rows = tb.plottableRows
        // No finite value (η extreme enough to overflow c(g² − g₀²)): an empty panel that says so,
        // not gnuplot's "x range is invalid", which named neither flag.
        let rho: [Double]? = (wn && info.flow != "wn-timedep")
            ? info.etaG.flatMap { tb.logRho(etaG: $0, etaV: info.etaV) }.flatMap { r in rows.contains { r[$0].isFinite } ? r : nil } : nil
        let n = tb.x.first?.count ?? 0
        // At most `maxCurves` weights are drawn: those largest in size at the last plotted row
        // (ties by index). A run with N = 1e5 wrote all of them into the script, and gnuplot
        // was still drawing after a minute.
        let shown = TrajectoryPlot.shownCoordinates(tb, rows: rows)
        var s = "# wnflow plot: \(GnuplotText.singleLine(info.flow)), L = \(info.depth)\n$D << EOD\n"
        for k in rows {
            var line = "\(JSON.format(tb.t[k])) \(JSON.format(max(tb.loss[k], 1e-300)))"
            line += " " + (tb.g[k].map(JSON.format) ?? "NaN")
            line += " " + (rho.map { JSON.format($0[k]) } ?? "NaN")
            for j in shown { let v = tb.x[k][j]; line += " " + (v.isFinite ? JSON.format(v) : "NaN") }
            s += line + "\n"
        }
        s += "EOD\n"
        let positive = tb.x.allSatisfy { $0.allSatisfy { $0 > 0 } }
        let layout = wn ? "2,2" : "1,2"
        let title = "\(info.flow.uppercased()) trajectory, depth L = \(info.depth)\(info.signed ? ", signed" : "")\(info.etaG.map { wn ? ", η = \(JSON.format($0))" : "" } ?? "")\(info.status.isEmpty ? "" : " (\(info.status))")"
        var body = """
        set multiplot layout \(layout) title \(GnuplotText.literal(title)) font ",14" noenhanced
        set logscale x\(singleTime(tb, rows))
        set format x "10^{%L}"
        set xlabel "time t"
        set grid lc rgb "#dddddd"
        set logscale y
        set format y "10^{%L}"
        set title "loss ½||A x^{⊙L} − y||²"
        unset key
        plot $D using 1:2 with lines lw 2 lc rgb "#1f77b4"
        set title "weights x_n(t) (\(shown.count == n ? "\(n) coordinates" : "the \(shown.count) largest at the end, of \(n)"))"

        """
        if !positive { body += "unset logscale y\nset format y \"%g\"\n" }
        if !shown.isEmpty {
            let cols = shown.indices.map { "$D using 1:\($0 + 5) with lines lw 1 lc rgb \"#1f77b480\"" }
            body += "plot " + cols.joined(separator: ", \\\n     ") + "\n"
        }
        if wn {
            body += """
            unset logscale y
            set format y "%g"
            set title "norm g(t)"
            plot $D using 1:3 with lines lw 2 lc rgb "#d62728"
            set title "\(rho != nil ? "magnification log ρ(t)" : info.flow == "wn-timedep" ? "log ρ(t): not defined for the Thm 2.4 rate" : info.etaG != nil ? "log ρ(t): not finite for these η_g, η_v" : "log ρ(t): needs η_g (pass --eta-g)")"

            """
            // No log ρ: an empty panel (gnuplot refuses `plot NaN`: "all points y value
            // undefined", which failed every wn-timedep run's plot).
            body += rho == nil
                ? "set yrange [0:1]\nplot $D using 1:(0.5) with lines lc rgb \"#ffffff\" notitle\nset autoscale y\n"
                : "plot $D using 1:4 with lines lw 2 lc rgb \"#2ca02c\"\n"
        }
        body += "unset multiplot\n"
        let size = wn ? (1200, 900) : (1200, 480)
        s += "set terminal pngcairo size \(size.0),\(size.1) enhanced font \"DejaVu Sans,11\"\nset output \(GnuplotText.literal(base + ".png"))\n" + body
        s += "set terminal svg size \(size.0),\(size.1) enhanced font \"DejaVu Sans,11\" background rgb \"white\"\nset output \(GnuplotText.literal(base + ".svg"))\n" + body + "set output\n"
        return s
    }

    /// A decade either side when every plotted row has the same time (a run that diverged at
    /// its first iterate: gnuplot calls a one-point range "invalid").
    static func singleTime(_ tb: TrajectoryTable, _ rows: [Int]) -> String {
        guard let first = rows.first, rows.allSatisfy({ tb.t[$0] == tb.t[first] }) else { return "" }
        let t = tb.t[first]
        return "\nset xrange [\(JSON.format(t / 10)):\(JSON.format(t * 10))]"
    }
}
