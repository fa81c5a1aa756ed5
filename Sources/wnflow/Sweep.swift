import ArgumentParser
import Foundation
import WNFlow

/// `wnflow sweep SWEEP.json --out DIR [--jobs N] [--shard I/N] [--resume]`.
struct SweepCommand: ParsableCommand, WritesOutput {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run a grid of configs; one JSON line per run in DIR/results.jsonl.",
        discussion: """
        SWEEP.json = {"base": CONFIG, "grid": {"dotted.path": [values...], ...}}. The grid is enumerated \
        with keys sorted and the last key varying fastest; 'index' is the 0-based position. --shard I/N \
        (1-based I) runs the indices with index % N == I-1 and writes DIR/results-shard-I-of-N.jsonl. \
        --resume skips indices already in the file. When every run of the shard is done the file is \
        rewritten sorted by index, so its bytes do not depend on --jobs (apart from wall_seconds).
        """)

    @Argument(help: "The SWEEP.json file.")
    var sweep: String

    @Option(name: .long, help: "Output folder.")
    var out: String

    @Option(name: .long, parsing: .unconditional, help: "Worker threads (default: all cores).")
    var jobs: Int?

    @Option(name: .long, parsing: .unconditional, help: "Run shard I of N (1-based): the indices with index % N == I-1.")
    var shard: String?

    @Flag(name: .long, help: "Skip indices already present in the results file.")
    var resume = false

    @Flag(name: .long, help: "Print nothing on success.")
    var quiet = false

    func run() throws {
        if let jobs, jobs < 1 { throw ConfigError("--jobs", "must be at least 1, got \(jobs)") }
        let sh = try shard.map(Shard.parse)
        guard FileManager.default.fileExists(atPath: sweep), let data = FileManager.default.contents(atPath: sweep) else {
            throw ConfigError("sweep", "file '\(sweep)' not found or unreadable")
        }
        let spec = try SweepSpec.parse(String(decoding: data, as: UTF8.self))
        let all = try spec.points()
        let base = URL(fileURLWithPath: sweep).deletingLastPathComponent().path
        let mine = SweepPoint.digestingDataFiles(all.filter { sh?.contains($0.index) ?? true }, baseDirectory: base)
        let configs = try SweepEngine.configs(mine, baseDirectory: base, gridKeys: spec.grid.map(\.key))
        let path = out + "/" + (sh?.fileName ?? "results.jsonl")
        let hold = try OutputLock(path: path, hint: " (or another --shard)")
        defer { withExtendedLifetime(hold) {} }
        var done = Set<Int>()
        if FileManager.default.fileExists(atPath: path) {
            guard resume else {
                throw ConfigError("--out", "'\(path)' exists; pass --resume to continue it or choose another --out")
            }
            done = try SweepEngine.completedIndices(path: path, points: mine)
        }
        let file = try JSONLinesFile(path: path)
        let bar = ProgressBar(label: "sweep\(sh.map { " shard \($0)" } ?? "")")
        _ = try SweepEngine.run(points: mine, configs: configs, output: file, skip: done, jobs: jobs,
                                progress: { bar.update(done: $0, total: $1) })
        let rows = try SweepEngine.finalize(path: path)
        if !quiet {
            let failed = rows.filter { $0.json["status"] == .string("failed") }.count
            let notConv = rows.filter { $0.json["status"] != .string("converged") }.count - failed
            print("\(rows.count) of \(mine.count) runs in \(path) (\(done.count) resumed, \(notConv) not converged\(failed > 0 ? ", \(failed) failed" : ""))")
        }
    }
}

/// `wnflow merge DIR… --out FILE`: joins shard files into one JSONL sorted by index.
struct MergeCommand: ParsableCommand, WritesOutput {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Join sweep shards (folders or .jsonl files) into one JSONL sorted by index.",
        discussion: "A folder contributes its results*.jsonl files. Duplicate indices must agree (apart from wall_seconds and the blas provenance), and every line must have the same params keys (one sweep's grid); otherwise exit 2. --sweep SWEEP.json also checks every line against that sweep (index, params, config_digest, data_digest) and counts its missing runs. Runs from different BLAS kernels are noted.")

    @Argument(help: "Sweep output folders or .jsonl files.")
    var inputs: [String]

    @Option(name: .long, help: "The merged JSONL file.")
    var out: String

    @Option(name: .long, help: "The SWEEP.json the shards ran: check each line against it.")
    var sweep: String?

    func run() throws {
        guard !inputs.isEmpty else { throw ConfigError("inputs", "give at least one sweep folder or .jsonl file") }
        var files: [String] = []
        for i in inputs {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: i, isDirectory: &isDir) else {
                throw ConfigError("inputs", "'\(i)' not found")
            }
            if isDir.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: i)) ?? []
                let found = names.filter { $0.hasPrefix("results") && $0.hasSuffix(".jsonl") }.sorted()
                guard !found.isEmpty else { throw ConfigError("inputs", "'\(i)' has no results*.jsonl file") }
                files += found.map { i + "/" + $0 }
            } else {
                files.append(i)
            }
        }
        // --sweep: the points every line must be (their digests over the data files too).
        var expected: [SweepPoint]? = nil
        if let sweep {
            guard let data = FileManager.default.contents(atPath: sweep) else { throw ConfigError("--sweep", "file '\(sweep)' not found or unreadable") }
            let spec = try SweepSpec.parse(String(decoding: data, as: UTF8.self))
            expected = SweepPoint.digestingDataFiles(try spec.points(), baseDirectory: URL(fileURLWithPath: sweep).deletingLastPathComponent().path)
        }
        var byIndex: [Int: (line: String, json: JSON, file: String)] = [:]
        var kernels = Set<String>()  // every line's, duplicates included
        var paramKeys: (keys: [String], at: String)? = nil
        for f in files {
            guard let data = FileManager.default.contents(atPath: f) else { throw ConfigError("inputs", "cannot read '\(f)'") }
            for (n, text) in JSONLinesFile.lines(of: String(decoding: data, as: UTF8.self), keepingEmpty: false).enumerated() {
                // A record is a finished run: index, params and a status (a bare {"index": 0} was taken).
                guard let j = try? JSON.parse(text), let i = SweepEngine.index(of: j),
                      case let .object(params)? = j["params"], j["status"] != nil else {
                    throw ConfigError("inputs", "'\(f)' line \(n + 1) is not a sweep record (torn or foreign); rerun that shard with --resume")
                }
                // One sweep's lines share their grid's keys (shards of two sweeps whose indices did
                // not overlap were merged without a word).
                let keys = params.map(\.0)
                if let first = paramKeys, first.keys != keys {
                    throw ConfigError("inputs", "'\(f)' line \(n + 1) has params \(keys) where \(first.at) has \(first.keys): "
                        + "the files come from different sweeps")
                }
                if paramKeys == nil { paramKeys = (keys, "'\(f)' line \(n + 1)") }
                if let expected {
                    guard i < expected.count, j["params"] == .object(expected[i].params),
                          j["config_digest"] == nil || j["config_digest"] == expected[i].configDigest.map(JSON.string),
                          j["data_digest"] == nil || j["data_digest"] == expected[i].dataDigest.map(JSON.string) else {
                        throw ConfigError("inputs", "'\(f)' line \(n + 1) (index \(i)) is not a run of \(sweep ?? "--sweep")"
                            + (i < expected.count ? " (other params, config_digest or data_digest: another base, grid or data file)" : " (index past its \(expected.count) runs)"))
                    }
                }
                if let k = blasKernel(of: j) { kernels.insert(k) }
                if let old = byIndex[i] {
                    // A line written before `config_digest` (stop 28) or `data_digest` (stop 31)
                    // existed agrees with a newer one on the rest.
                    let absent = ["config_digest", "data_digest"].filter { (old.json[$0] == nil) != (j[$0] == nil) }
                    func comparable(_ x: JSON) -> JSON {
                        guard !absent.isEmpty, case let .object(pairs) = x else { return strippingProvenance(x) }
                        return strippingProvenance(.object(pairs.filter { !absent.contains($0.0) }))
                    }
                    guard comparable(old.json) == comparable(j) else {
                        var why = ""
                        if let a = blasKernel(of: old.json), let b = blasKernel(of: j), a != b {
                            why = " (BLAS kernels \(a) and \(b) round differently; rerun both with the same OPENBLAS_CORETYPE)"
                        }
                        throw ConfigError("inputs", "index \(i) appears in '\(old.file)' and '\(f)' with different results"
                            + differingFields(comparable(old.json), comparable(j)) + why)
                    }
                } else {
                    byIndex[i] = (text, j, f)
                }
            }
        }
        let keys = byIndex.keys.sorted()
        do {
            try AtomicFile.write(keys.map { byIndex[$0]!.line + "\n" }.joined(), to: out)
        } catch {
            throw ConfigError.cannotWrite(out, error)
        }
        var gaps = 0
        if let last = keys.last { gaps = last + 1 - keys.count }
        if let expected {
            let missing = expected.count - keys.count
            print("merged \(keys.count) of the sweep's \(expected.count) runs from \(files.count) file(s) into \(out)\(missing > 0 ? " (\(missing) missing)" : "")")
        } else {
            print("merged \(keys.count) runs from \(files.count) file(s) into \(out)\(gaps > 0 ? " (\(gaps) indices below \(keys.last!) missing)" : "")")
        }
        if kernels.count > 1 {
            print("note: the runs used different BLAS kernels (\(kernels.sorted().joined(separator: ", "))); they agree to rounding, "
                + "not byte for byte, with runs of one kernel (set OPENBLAS_CORETYPE on every machine; README \"Reproducibility\")")
        }
    }
}

/// `" (fields a, b differ)"`: the top-level fields of two sweep records that differ (a merge of
/// disagreeing duplicates names them), at most 5; empty when they are not objects.
func differingFields(_ a: JSON, _ b: JSON) -> String {
    guard case let .object(pa) = a, case let .object(pb) = b else { return "" }
    let da = Dictionary(pa, uniquingKeysWith: { x, _ in x }), db = Dictionary(pb, uniquingKeysWith: { x, _ in x })
    let names = (pa.map(\.0) + pb.map(\.0).filter { da[$0] == nil }).filter { da[$0] != db[$0] }
    guard !names.isEmpty else { return "" }
    return " (field\(names.count == 1 ? "" : "s") \(names.prefix(5).joined(separator: ", "))\(names.count > 5 ? ", …" : "") differ)"
}
