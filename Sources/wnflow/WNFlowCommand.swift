import ArgumentParser
import Foundation
import GSLKit
import WNFlow

/// Exit codes of INTERFACE.md.
enum ExitStatus {
    static let success: Int32 = 0
    static let checkFailed: Int32 = 1
    static let badInput: Int32 = 2
    static let integrationFailed: Int32 = 3
}

/// Thrown by subcommands to end with a given code after printing `message`.
struct CommandExit: Error {
    let code: Int32
    let message: String?
}

@main
struct WNFlowCommand: ParsableCommand {
    static let version = "0.1.0"
    static let configuration = CommandConfiguration(
        commandName: "wnflow",
        abstract: "Integrate the gradient flows of weight-normalized diagonal linear networks and check the paper's invariants and theorems.",
        discussion: "Exit codes: 0 success, 1 a verification check failed, 2 bad input, 3 integration failed.",
        version: version,
        subcommands: [Simulate.self, Predict.self, Verify.self, ReproduceCommand.self, SweepCommand.self,
                      MergeCommand.self, PlotCommand.self, Bench.self])

    static func main() {
        BLAS.configure()
        let code: Int32
        do {
            var command = try parseAsRoot()
            if let writer = command as? WritesOutput { try requireOutputPath(writer.out) }
            try command.run()
            code = ExitStatus.success
        } catch let e as CommandExit {
            if let m = e.message { FileHandle.standardError.write(Data((ConfigError.oneLine(m) + "\n").utf8)) }
            code = e.code
        } catch let e as ConfigError {
            FileHandle.standardError.write(Data(("error: " + ConfigError.oneLine(e.description) + "\n").utf8))
            code = ExitStatus.badInput
        } catch {
            let ec = exitCode(for: error)
            if ec == .success {
                print(fullMessage(for: error))
                code = ExitStatus.success
            } else {
                let msg = message(for: error).split(separator: "\n").first.map(String.init) ?? "bad usage"
                FileHandle.standardError.write(Data(("error: " + msg + " (see 'wnflow help')\n").utf8))
                code = ExitStatus.badInput
            }
        }
        Foundation.exit(code)
    }
}

/// A command whose `--out` names where it writes (checked once, in `main`).
protocol WritesOutput {
    var out: String { get }
}

/// `--out` must name a path: an empty one put the files at the filesystem root
/// (`--out ""` wrote `/result.json`, as `out + "/result.json"`).
func requireOutputPath(_ out: String) throws {
    if out.trimmingCharacters(in: .whitespaces).isEmpty {
        throw CommandExit(code: ExitStatus.badInput, message: "error: --out: empty path; give the output folder or file, e.g. --out run1")
    }
}
