import Foundation

/// The command line of the example programs (`swift run example-…`): `--fast` (or the
/// environment variable `WNFLOW_FAST`) for the small problem, and at most one output folder
/// where `acceptsFolder`. Anything else is bad input (an unknown `--bogus` used to be ignored).
public struct ExampleArguments: Sendable, Equatable {
    public var fast: Bool
    public var folder: String?

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
            if acceptsFolder && !a.hasPrefix("-") && out.folder == nil { out.folder = a; continue }
            throw UnknownArgument(argument: a, usage: usage)
        }
        return out
    }

    /// `parse` for an example's `main.swift`: bad input prints its one line on stderr and
    /// ends the program with exit code 2, the CLI's code for bad input.
    public static func parseOrExit(usage: String, acceptsFolder: Bool = false) -> ExampleArguments {
        do {
            return try parse(usage: usage, acceptsFolder: acceptsFolder)
        } catch {
            FileHandle.standardError.write(Data("\(error.description)\n".utf8))
            exit(2)
        }
    }
}
