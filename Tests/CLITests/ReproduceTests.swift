import Foundation
import Testing

@Suite("reproduce")
struct ReproduceTests {
    @Test("a tiny figure2 writes the CSV, both plots and a summary section")
    func tinyFigure2() throws {
        let dir = CLI.tempDir("repro")
        let r = try CLI.run(["reproduce", "figure2", "--out", dir, "--size", "tiny", "--jobs", "2"])
        #expect(r.code == 0, "\(r.stderr)")
        let csv = try String(contentsOfFile: dir + "/figure2.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.first == "figure,flow,depth,alpha,eta,direction,instance,seed,rec_error,rel_rec_error,l1_gap,weighted_l1_gap,log_rho,g_inf,loss,status,rhs_evals,wall_seconds")
        #expect(csv.count == 1 + 2 * 2 * 2)
        #expect(csv.contains { $0.hasPrefix("figure2,gf,2,") } && csv.contains { $0.hasPrefix("figure2,wn,2,") })
        for ext in ["png", "svg"] {
            let d = FileManager.default.contents(atPath: dir + "/figure2." + ext) ?? Data()
            #expect(d.count > 1000, "\(ext) missing or empty")
        }
        let png = FileManager.default.contents(atPath: dir + "/figure2.png") ?? Data()
        #expect(Array(png.prefix(4)) == [0x89, 0x50, 0x4E, 0x47])
        let summary = try String(contentsOfFile: dir + "/summary.md", encoding: .utf8)
        #expect(summary.contains("Figure 2") && summary.contains("Not converged") && summary.contains("gain GF/WN"))
    }

    @Test("--resume after a crash keeps the finished runs and gives the same CSV")
    func resumeAfterCrash() throws {
        let dir = CLI.tempDir("repro-resume")
        let first = try CLI.run(["reproduce", "figure2", "--out", dir, "--size", "tiny", "--jobs", "1", "--quiet"])
        #expect(first.code == 0, "\(first.stderr)")
        let csv = try String(contentsOfFile: dir + "/figure2.csv", encoding: .utf8)
        // A crash: two finished lines and a torn third one.
        let runs = dir + "/runs/figure2.jsonl"
        let lines = try String(contentsOfFile: runs, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 8)
        let torn = lines[0...1].joined(separator: "\n") + "\n" + lines[2].prefix(40)
        try torn.write(toFile: runs, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: dir + "/figure2.csv")
        let again = try CLI.run(["reproduce", "figure2", "--out", dir, "--size", "tiny", "--jobs", "1", "--resume"])
        #expect(again.code == 0, "\(again.stderr)")
        #expect(again.stdout.contains("2 resumed"), "\(again.stdout)")
        let csv2 = try String(contentsOfFile: dir + "/figure2.csv", encoding: .utf8)
        // Identical apart from the wall-time column.
        func dropWall(_ t: String) -> [String] { t.split(separator: "\n").map { $0.split(separator: ",").dropLast().joined(separator: ",") } }
        #expect(dropWall(csv) == dropWall(csv2))
        // Runs of other settings are refused, naming --resume.
        let other = try CLI.run(["reproduce", "figure2", "--out", dir, "--quick", "--resume"])
        #expect(other.code == 2 && other.stderr.contains("--resume"), "\(other.stderr)")
    }

    @Test("bad input exits 2 with one line naming the field")
    func badInput() throws {
        let dir = CLI.tempDir("repro-bad")
        for (args, field) in [(["reproduce", "figure9", "--out", dir], "figure"),
                              (["reproduce", "figure2", "--out", dir, "--jobs", "0"], "--jobs"),
                              (["reproduce", "figure2", "--out", dir, "--discrete", "-1"], "--discrete")] {
            let r = try CLI.run(args)
            #expect(r.code == 2, "\(args)")
            #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains(field), "\(r.stderr)")
        }
    }
}
