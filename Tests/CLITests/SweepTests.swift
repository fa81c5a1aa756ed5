import Foundation
import Testing

@Suite("sweep, merge, shards, resume")
struct SweepTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// A sweep of `n` small WN/GF runs.
    static func sweepFile(_ dir: String, scales: [Double] = [0.01, 0.1, 1], seeds: [Int] = [1, 2]) -> String {
        let path = dir + "/sweep.json"
        CLI.write("""
        {"base": {"problem": {"generate": {"M": 8, "N": 16, "sparsity": 2, "seed": 3}},
                  "model": {"flow": "wn", "depth": 2, "eta_g": 0.1},
                  "init": {"scale": 0.1, "direction": "abs-gaussian", "seed": 4},
                  "integrator": {"t_end": 1e5}, "record": {"points": 0}},
         "grid": {"model.flow": ["gf", "wn"], "init.scale": \(scales), "init.seed": \(seeds)}}
        """, path)
        return path
    }

    static func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    /// A line without its wall_seconds value.
    static func strip(_ s: String) -> String {
        s.replacingOccurrences(of: #",?"wall_seconds":[^,}]*"#, with: "", options: .regularExpression)
    }

    /// The two-run sweep (GF and WN at scale 0.1) run into `DIR/out` of a fresh folder:
    /// the folder, the sweep file and the result lines.
    static func twoRunSweep(_ name: String, out: String) throws -> (dir: String, sweep: String, lines: [String]) {
        let dir = CLI.tempDir(name)
        let sweep = sweepFile(dir, scales: [0.1], seeds: [1])
        let r = try CLI.run(["sweep", sweep, "--out", dir + "/" + out])
        #expect(r.code == 0, "\(r.stderr)")
        return (dir, sweep, try lines(dir + "/" + out + "/results.jsonl"))
    }

    static func index(_ line: String) -> Int? {
        guard let r = line.range(of: #"^\{"index":(\d+)"#, options: .regularExpression) else { return nil }
        return Int(line[r].dropFirst(#"{"index":"#.count))
    }

    /// A shard written before `config_digest` existed merges with one written after: the same
    /// index agrees on everything else. Two lines whose digests differ still do not.
    @Test("merge: a line without config_digest agrees with one that has it")
    func mergeAcrossTheDigest() throws {
        let (dir, _, lines) = try Self.twoRunSweep("sweep-merge-digest", out: "new")
        #expect(lines.allSatisfy { $0.contains(#""config_digest":""#) })
        let old = lines.map { $0.replacingOccurrences(of: #","config_digest":"[0-9a-f]{16}""#, with: "", options: .regularExpression) }
        #expect(old.allSatisfy { !$0.contains("config_digest") })
        CLI.write(old.joined(separator: "\n") + "\n", dir + "/old.jsonl")
        let ok = try CLI.run(["merge", dir + "/new/results.jsonl", dir + "/old.jsonl", "--out", dir + "/merged.jsonl"])
        #expect(ok.code == 0, "\(ok.stderr)")
        let other = lines.map { $0.replacingOccurrences(of: #""config_digest":"[0-9a-f]{16}""#, with: #""config_digest":"0000000000000000""#, options: .regularExpression) }
        CLI.write(other.joined(separator: "\n") + "\n", dir + "/other.jsonl")
        let bad = try CLI.run(["merge", dir + "/new/results.jsonl", dir + "/other.jsonl", "--out", dir + "/merged2.jsonl"])
        #expect(bad.code == 2, "\(bad.stderr)")
        // The message names what differs (a helper's walkthrough asked for it).
        #expect(bad.stderr.contains("(field config_digest differ)"), "\(bad.stderr)")
    }

    @Test("grid order: keys sorted, last fastest; same bytes for --jobs 1 and 2 (apart from wall_seconds)")
    func orderAndDeterminism() throws {
        let dir = CLI.tempDir("sweep-det")
        let sweep = Self.sweepFile(dir)
        let a = try CLI.run(["sweep", sweep, "--out", dir + "/a", "--jobs", "1"])
        #expect(a.code == 0, "\(a.stderr)")
        let b = try CLI.run(["sweep", sweep, "--out", dir + "/b", "--jobs", "2"])
        #expect(b.code == 0, "\(b.stderr)")
        let la = try Self.lines(dir + "/a/results.jsonl"), lb = try Self.lines(dir + "/b/results.jsonl")
        #expect(la.count == 12)
        #expect(la.map(Self.strip) == lb.map(Self.strip))
        #expect(la.map(Self.index) == (0..<12).map { $0 })
        // Keys sorted: init.scale, init.seed, model.flow (fastest).
        #expect(la[0].contains(#""params":{"init.scale":0.01,"init.seed":1,"model.flow":"gf"}"#))
        #expect(la[1].contains(#""init.seed":1,"model.flow":"wn""#))
        #expect(la[2].contains(#""init.seed":2,"model.flow":"gf""#))
        #expect(la[4].contains(#""init.scale":0.1,"#))
        #expect(la[0].contains(#""status":"#) && la[0].contains(#""rec_error":"#) && la[0].contains(#""wall_seconds":"#))
        #expect(a.stderr.isEmpty, "no progress bar in a pipe")
    }

    @Test("2 shards through Examples/slurm/run-local.sh, merged, equal the unsharded sweep row for row")
    func shardsMerge() throws {
        let dir = CLI.tempDir("sweep-shards")
        let sweep = Self.sweepFile(dir)
        let whole = try CLI.run(["sweep", sweep, "--out", dir + "/whole"])
        #expect(whole.code == 0, "\(whole.stderr)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [Self.repo + "/Examples/slurm/run-local.sh", sweep, dir + "/sharded", "2", "1"]
        p.environment = ProcessInfo.processInfo.environment.merging(["WNFLOW": CLI.binary]) { $1 }
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let s1 = try Self.lines(dir + "/sharded/results-shard-1-of-2.jsonl")
        #expect(s1.compactMap(Self.index).allSatisfy { $0 % 2 == 0 })
        let merged = try Self.lines(dir + "/sharded/merged.jsonl")
        let unsharded = try Self.lines(dir + "/whole/results.jsonl")
        #expect(merged.count == unsharded.count)
        #expect(merged.map(Self.strip) == unsharded.map(Self.strip))
    }

    @Test("kill -9 mid-sweep, then --resume: every index exactly once")
    func killAndResume() throws {
        let dir = CLI.tempDir("sweep-kill")
        // Slower runs so that the kill lands mid-sweep.
        let sweep = dir + "/sweep.json"
        CLI.write("""
        {"base": {"problem": {"generate": {"M": 16, "N": 40, "sparsity": 3, "seed": 3}},
                  "model": {"flow": "wn", "depth": 2, "eta_g": 0.05},
                  "init": {"scale": 0.1, "direction": "abs-gaussian", "seed": 4},
                  "integrator": {"t_end": 1e5}, "record": {"points": 0}},
         "grid": {"init.seed": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], "init.scale": [0.05, 0.1, 0.2]}}
        """, sweep)
        let out = dir + "/o", file = out + "/results.jsonl"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.binary)
        p.arguments = ["sweep", sweep, "--out", out, "--jobs", "2", "--quiet"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if let t = try? String(contentsOfFile: file, encoding: .utf8), t.split(separator: "\n").count >= 3 { break }
            usleep(2000)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let before = (try? Self.lines(file)) ?? []
        #expect(before.count >= 3)
        let again = try CLI.run(["sweep", sweep, "--out", out, "--resume"])
        #expect(again.code == 0, "\(again.stderr)")
        let after = try Self.lines(file)
        #expect(after.compactMap(Self.index) == Array(0..<36))
        // Without --resume an existing file is refused.
        let refused = try CLI.run(["sweep", sweep, "--out", out])
        #expect(refused.code == 2 && refused.stderr.contains("--resume"))
    }

    @Test("a torn trailing line is cut off on --resume")
    func tornLine() throws {
        let (dir, sweep, good) = try Self.twoRunSweep("sweep-torn", out: "o")
        let file = dir + "/o/results.jsonl"
        CLI.write(good[0] + "\n" + String(good[1].prefix(40)), file)
        let again = try CLI.run(["sweep", sweep, "--out", dir + "/o", "--resume"])
        #expect(again.code == 0, "\(again.stderr)")
        #expect(try Self.lines(file).map(Self.strip) == good.map(Self.strip))
    }

    /// A helper's audit (stop 31): resume dropped damaged or CRLF lines without a word, ignored
    /// new contents of a data file, and merge joined shards of different sweeps.
    @Test("resume: CRLF lines are read, a damaged middle line or a line without a result is refused")
    func resumeReadsOnlyWholeRecords() throws {
        let (dir, sweep, good) = try Self.twoRunSweep("sweep-crlf", out: "o")
        let file = dir + "/o/results.jsonl"
        CLI.write(good[0] + "\r\n", file)
        let crlf = try CLI.run(["sweep", sweep, "--out", dir + "/o", "--resume"])
        #expect(crlf.code == 0 && crlf.stdout.contains("1 resumed"), "\(crlf.stdout) \(crlf.stderr)")
        #expect(try Self.lines(file).map(Self.strip) == good.map(Self.strip))
        CLI.write("GARBAGE\n" + good[1] + "\n", file)
        let damaged = try CLI.run(["sweep", sweep, "--out", dir + "/o", "--resume"])
        #expect(damaged.code == 2 && damaged.stderr.contains("line 1 is not a JSON object"), "\(damaged.stderr)")
        CLI.write(#"{"index":0,"params":{"init.scale":0.1,"init.seed":1,"model.flow":"gf"}}"# + "\n", file)
        let bare = try CLI.run(["sweep", sweep, "--out", dir + "/o", "--resume"])
        #expect(bare.code == 2 && bare.stderr.contains("no result"), "\(bare.stderr)")
    }

    @Test("resume notices a data file's new contents under the same name")
    func resumeSeesDataFiles() throws {
        let dir = CLI.tempDir("sweep-datafile")
        CLI.write("1,2,0.5,0.3\n0.5,-1,2,0.1\n", dir + "/A.csv")
        CLI.write(#"{"base": {"problem": {"A_file": "A.csv", "y": [1, 0.5]}, "model": {"flow": "gf", "depth": 2}, "init": {"scale": 0.1}, "integrator": {"t_end": 100}}, "grid": {"init.scale": [0.1, 0.2]}}"#, dir + "/s.json")
        let first = try CLI.run(["sweep", dir + "/s.json", "--out", dir + "/o"])
        #expect(first.code == 0, "\(first.stderr)")
        let same = try CLI.run(["sweep", dir + "/s.json", "--out", dir + "/o", "--resume"])
        #expect(same.code == 0 && same.stdout.contains("2 resumed"), "\(same.stdout) \(same.stderr)")
        // Lines written before data_digest existed (stop 31) resume on the rest.
        let file = dir + "/o/results.jsonl"
        let current = try Self.lines(file)
        #expect(current.allSatisfy { $0.contains(#""data_digest":""#) })
        CLI.write(current.map { $0.replacingOccurrences(of: #","data_digest":"[0-9a-f]{16}""#, with: "", options: .regularExpression) }
            .joined(separator: "\n") + "\n", file)
        let old = try CLI.run(["sweep", dir + "/s.json", "--out", dir + "/o", "--resume"])
        #expect(old.code == 0 && old.stdout.contains("2 resumed"), "\(old.stdout) \(old.stderr)")
        CLI.write(current.joined(separator: "\n") + "\n", file)
        CLI.write("1,2,0.5,0.3\n0.5,-1,2,0.2\n", dir + "/A.csv")
        let changed = try CLI.run(["sweep", dir + "/s.json", "--out", dir + "/o", "--resume"])
        #expect(changed.code == 2 && changed.stderr.contains("data file"), "\(changed.stderr)")
    }

    @Test("merge: shards of two grids are refused; --sweep checks each line and counts the missing; a bare record is refused; a symlinked --out stays a link")
    func mergeChecksTheSweep() throws {
        let (dir, sweep, good) = try Self.twoRunSweep("sweep-merge-check", out: "o")
        // Another grid (other params keys).
        let foreign = good[1].replacingOccurrences(of: #""init.scale":0.1,"#, with: "")
        CLI.write(foreign + "\n", dir + "/foreign.jsonl")
        CLI.write(good[0] + "\n", dir + "/first.jsonl")
        let keys = try CLI.run(["merge", dir + "/first.jsonl", dir + "/foreign.jsonl", "--out", dir + "/m.jsonl"])
        #expect(keys.code == 2 && keys.stderr.contains("different sweeps"), "\(keys.stderr)")
        // The same grid over another base: only --sweep tells.
        let otherBase = good[1].replacingOccurrences(of: #""config_digest":"[0-9a-f]{16}""#, with: #""config_digest":"0123456789abcdef""#, options: .regularExpression)
        CLI.write(otherBase + "\n", dir + "/other.jsonl")
        let plain = try CLI.run(["merge", dir + "/first.jsonl", dir + "/other.jsonl", "--out", dir + "/m.jsonl"])
        #expect(plain.code == 0, "\(plain.stderr)")
        let checked = try CLI.run(["merge", dir + "/first.jsonl", dir + "/other.jsonl", "--out", dir + "/m.jsonl", "--sweep", sweep])
        #expect(checked.code == 2 && checked.stderr.contains("is not a run of"), "\(checked.stderr)")
        let half = try CLI.run(["merge", dir + "/first.jsonl", "--out", dir + "/m.jsonl", "--sweep", sweep])
        #expect(half.code == 0 && half.stdout.contains("1 of the sweep's 2 runs") && half.stdout.contains("1 missing"), "\(half.stdout)")
        CLI.write(#"{"index":0}"# + "\n", dir + "/bare.jsonl")
        #expect(try CLI.run(["merge", dir + "/bare.jsonl", "--out", dir + "/m.jsonl"]).code == 2)
        // --out through a symlink: the target is written, the link stays.
        CLI.write("", dir + "/target.jsonl")
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.jsonl", withDestinationPath: dir + "/target.jsonl")
        #expect(try CLI.run(["merge", dir + "/o", "--out", dir + "/link.jsonl"]).code == 0)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir + "/link.jsonl") == dir + "/target.jsonl")
        #expect(try Self.lines(dir + "/target.jsonl").count == 2)
        // --out /dev/stdout writes through the descriptor: the lines reach the caller's stdout.
        let out = try CLI.run(["merge", dir + "/o", "--out", "/dev/stdout"])
        #expect(out.code == 0 && out.stdout.split(separator: "\n").filter { $0.hasPrefix(#"{"index":"#) }.count == 2, "\(out.stdout)")
    }

    @Test("merge: the BLAS kernel is provenance; a mix is noted, a mix with other numbers is refused naming the kernels")
    func mergeKernels() throws {
        let (dir, _, l) = try Self.twoRunSweep("sweep-kernels", out: "m1")
        #expect(l.count == 2)
        guard let k = l[0].range(of: #""kernel":"[^"]+""#, options: .regularExpression) else {
            Issue.record("no blas.kernel in \(l[0].suffix(300))"); return
        }
        // One kernel: no note.
        let alone = try CLI.run(["merge", dir + "/m1", "--out", dir + "/a.jsonl"])
        #expect(alone.code == 0 && !alone.stdout.contains("note:"), "\(alone.stdout)")
        // The same numbers from another kernel (a node whose kernels round alike): merged, noted.
        let other = l[0].replacingCharacters(in: k, with: #""kernel":"OtherKernel""#)
        CLI.write(other + "\n", dir + "/other.jsonl")
        let mixed = try CLI.run(["merge", dir + "/m1", dir + "/other.jsonl", "--out", dir + "/b.jsonl"])
        #expect(mixed.code == 0, "\(mixed.stderr)")
        #expect(mixed.stdout.contains("note:") && mixed.stdout.contains("OtherKernel"), "\(mixed.stdout)")
        #expect(try Self.lines(dir + "/b.jsonl").count == 2)
        // Other numbers from another kernel: refused, and the message says why they may differ.
        CLI.write(other.replacingOccurrences(of: #""method":""#, with: #""method":"x-"#) + "\n", dir + "/diff.jsonl")
        let refused = try CLI.run(["merge", dir + "/m1", dir + "/diff.jsonl", "--out", dir + "/c.jsonl"])
        #expect(refused.code == 2)
        #expect(refused.stderr.contains("BLAS kernels") && refused.stderr.contains("OPENBLAS_CORETYPE"), "\(refused.stderr)")
    }

    @Test("bad input exits 2 with one line naming the field")
    func badInput() throws {
        let dir = CLI.tempDir("sweep-bad")
        let sweep = Self.sweepFile(dir)
        func check(_ args: [String], _ field: String) throws {
            let r = try CLI.run(args)
            #expect(r.code == 2, "\(args): exit \(r.code)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
            #expect(r.stderr.contains(field), "\(r.stderr)")
        }
        try check(["sweep", sweep, "--out", dir + "/o", "--shard", "3/2"], "--shard")
        try check(["sweep", sweep, "--out", dir + "/o", "--shard", "x"], "--shard")
        try check(["sweep", dir + "/missing.json", "--out", dir + "/o"], "sweep")
        CLI.write(#"{"base": {}, "grid": [1]}"#, dir + "/b1.json")
        try check(["sweep", dir + "/b1.json", "--out", dir + "/o"], "sweep.grid")
        CLI.write(#"{"base": {"model": {"flow": "wn"}}, "grid": {"model.flow.x": [1]}}"#, dir + "/b2.json")
        try check(["sweep", dir + "/b2.json", "--out", dir + "/o"], "sweep.grid.model.flow.x")
        let base = try String(contentsOfFile: sweep, encoding: .utf8)
        CLI.write(base.replacingOccurrences(of: "\"model.flow\"", with: "\"model.flw\""), dir + "/b3.json")
        try check(["sweep", dir + "/b3.json", "--out", dir + "/o"], "sweep.grid.model.flw")
        CLI.write("{\"base\": ", dir + "/b4.json")
        try check(["sweep", dir + "/b4.json", "--out", dir + "/o"], "sweep")
        try check(["merge", dir + "/nothing", "--out", dir + "/m.jsonl"], "inputs")
        // Duplicates that differ.
        let ok = try CLI.run(["sweep", sweep, "--out", dir + "/m1"])
        #expect(ok.code == 0)
        let l = try Self.lines(dir + "/m1/results.jsonl")
        CLI.write(l[0].replacingOccurrences(of: #""method":""#, with: #""method":"x-"#) + "\n", dir + "/dup.jsonl")
        try check(["merge", dir + "/m1", dir + "/dup.jsonl", "--out", dir + "/m.jsonl"], "inputs")
    }
}
