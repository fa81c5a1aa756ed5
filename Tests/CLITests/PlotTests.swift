import Foundation
import Testing

@Suite("plot")
struct PlotTests {
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
}
