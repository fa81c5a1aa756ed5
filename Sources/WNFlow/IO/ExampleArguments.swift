import Foundation

/// The command line of the example programs (`swift run example-…`): `--fast` (or the
/// environment variable `WNFLOW_FAST`) for the small problem, and at most one output folder
/// where `acceptsFolder`; `--help`/`-h` asks for the usage line. Anything else is bad input
/// (an unknown `--bogus` used to be ignored).
public struct ExampleArguments: Sendable, Equatable {
    public var fast: Bool
    public var folder: String?
    /// `--help` or `-h` was given: `parseOrExit` prints the usage and exits 0.
    public var help: Bool = false

    public init(fast: Bool, folder: String?, help: Bool = false) {
        self.fast = fast
        self.folder = folder
        self.help = help
    }

    /// An argument the example does not take; `description` is the one line to print.
    public struct UnknownArgument: Error, CustomStringConvertible, Equatable {
        public let argument: String
        public let usage: String
        public var description: String { "error: unknown argument '\(argument)'; usage: \(usage)" }
    }

    /// Parses `arguments`; throws on the first one the example does not take.
    public static func parse(usage: String, acceptsFolder: Bool = false,
                             arguments: [String] = Array(CommandLine.arguments.dropFirst()),
                             environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(UnknownArgument) -> ExampleArguments {
        var out = ExampleArguments(fast: environment["WNFLOW_FAST"] != nil, folder: nil)
        for a in arguments {
            if a == "--fast" { out.fast = true; continue }
            if a == "--help" || a == "-h" { out.help = true; continue }
            if acceptsFolder && !a.hasPrefix("-") && out.folder == nil { out.folder = a; continue }
            throw UnknownArgument(argument: a, usage: usage)
        }
        return out
    }

    /// `parse` for an example's `main.swift`: bad input prints its one line on stderr and
    /// ends the program with exit code 2, the CLI's code for bad input.
    /// `--help` prints `usage: …` on stdout and exits 0.
    public static func parseOrExit(usage: String, acceptsFolder: Bool = false) -> ExampleArguments {
        let args: ExampleArguments
        do {
            args = try parse(usage: usage, acceptsFolder: acceptsFolder)
        } catch {
            fail(error.description)
        }
        if args.help {
            print("usage: \(usage)")
            exit(0)
        }
        return args
    }

    /// The output folder `path`, created if missing; nil with the one line to print when it
    /// cannot be (empty, an existing file, not creatable).
    public static func preparedFolder(_ path: String) -> (path: String?, error: String?) {
        if path.isEmpty { return (nil, "error: OUT_DIR is empty; give a folder name") }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            return isDir.boolValue ? (path, nil)
                : (nil, "error: OUT_DIR '\(path)' is an existing file, not a folder; give a folder")
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            return (path, nil)
        } catch {
            return (nil, "error: OUT_DIR '\(path)' cannot be created (\(ConfigError.fileReason(error))); give a writable folder")
        }
    }

    /// `preparedFolder` for a `main.swift`: exit code 2 with its line when the folder is unusable
    /// (it used to be a trap after the whole run).
    public static func folderOrExit(_ path: String) -> String {
        let (ok, error) = preparedFolder(path)
        guard let ok else { fail(error ?? "error: OUT_DIR unusable") }
        return ok
    }

    /// Runs `body` (an example's work after its arguments); an error it throws (gnuplot missing,
    /// a file that cannot be written) prints `error: <what>: …` and exits 2, as the CLI does
    /// for such errors, not a trap.
    public static func orExit<T>(_ what: String, _ body: () throws -> T) -> T {
        do { return try body() } catch {
            fail("error: \(what): " + ConfigError.oneLine("\(error)"))
        }
    }

    /// `line` on stderr, then exit code 2 (the CLI's code for bad input).
    private static func fail(_ line: String) -> Never {
        FileHandle.standardError.write(Data("\(line)\n".utf8))
        exit(2)
    }
}
