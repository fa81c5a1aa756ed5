import Foundation

/// The command line of the example programs (`swift run example-…`): `--fast` (or the
/// environment variable `WNFLOW_FAST`) for the small problem, and at most one output folder
/// where `acceptsFolder`. Anything else is bad input: one line on stderr naming it and the
/// usage, exit 2 (an unknown `--bogus` used to be ignored).
public struct ExampleArguments: Sendable {
    public var fast: Bool
    public var folder: String?

    public static func parse(usage: String, acceptsFolder: Bool = false,
                             arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> ExampleArguments {
        var out = ExampleArguments(fast: ProcessInfo.processInfo.environment["WNFLOW_FAST"] != nil, folder: nil)
        for a in arguments {
            if a == "--fast" { out.fast = true; continue }
            if acceptsFolder && !a.hasPrefix("-") && out.folder == nil { out.folder = a; continue }
            FileHandle.standardError.write(Data("error: unknown argument '\(a)'; usage: \(usage)\n".utf8))
            exit(2)
        }
        return out
    }
}
