import ArgumentParser
import Foundation
import WNFlow

/// `wnflow verify CONFIG.json --out DIR`: simulate with every applicable
/// check of the paper's lemmas (docs/monitor.md), compare the limit with the
/// identities it must satisfy, print a table, write DIR/result.json and
/// DIR/report.md. Exit 1 when a check fails, 3 when the integration failed,
/// 2 on bad input.
struct Verify: ParsableCommand, WritesOutput {
    static let configuration = CommandConfiguration(
        abstract: "Simulate with every applicable lemma check; exit 1 if any check fails.",
        discussion: "Writes DIR/result.json (as simulate, with the monitor array), DIR/trajectory.csv and DIR/report.md. Exit codes: 0 all checks passed, 1 a check failed, 2 bad input, 3 integration failed.")

    @Argument(help: "The run's CONFIG.json.")
    var config: String

    @Option(name: .long, help: "Output folder.")
    var out: String

    @Flag(name: .long, help: "Print only failures.")
    var quiet = false

    func run() throws {
        let cfg = try SimulationConfig.load(path: config)
        let v = Verification.run(config: cfg)
        try writeRun(v.result, config: cfg, out: out)
        do {
            try AtomicFile.write(v.markdown, to: out + "/report.md")
        } catch {
            throw ConfigError.cannotWrite(out, error)
        }
        if !quiet {
            print(summary(v.result, config: cfg))
            print("")
            print(v.table)
        }
        if v.result.status == .failed {
            throw CommandExit(code: ExitStatus.integrationFailed,
                              message: "error: integration failed: \(v.result.message ?? "unknown reason"); partial results in \(out)")
        }
        if !v.allPassed {
            throw CommandExit(code: ExitStatus.checkFailed,
                              message: "verify: \(v.failed.count) check(s) failed: \(v.failed.joined(separator: ", ")) (see \(out)/report.md)")
        }
    }
}
