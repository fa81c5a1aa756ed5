import Foundation
import Testing

@Suite("examples (fast mode)")
struct ExamplesTests {
    static func binary(_ name: String) -> String {
        URL(fileURLWithPath: CLI.binary).deletingLastPathComponent().appendingPathComponent(name).path
    }

    @Test("each example runs in --fast mode and exits 0", arguments: ["example-quickstart", "example-trajectory", "example-magnification", "example-signed"])
    func runs(_ name: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary(name))
        let dir = CLI.tempDir(name)
        p.arguments = name == "example-trajectory" ? ["--fast", dir] : ["--fast"]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(name): \(text)")
        #expect(!text.isEmpty)
        if name == "example-trajectory" {
            #expect(FileManager.default.fileExists(atPath: dir + "/trajectory.png"))
        }
    }

    /// `--help` prints the usage line and exits 0 (it was "unknown argument", exit 2); an
    /// OUT_DIR that is an existing file, or empty, exits 2 in one line before the run (it was a
    /// trap, "Error raised at top level", after the whole run).
    @Test func helpAndBadFolder() throws {
        func run(_ name: String, _ args: [String]) throws -> (code: Int32, out: String, err: String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Self.binary(name))
            p.arguments = args
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            try p.run()
            let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, o, e)
        }
        for name in ["example-quickstart", "example-trajectory", "example-magnification", "example-signed"] {
            let h = try run(name, ["--help"])
            #expect(h.code == 0 && h.out.hasPrefix("usage: \(name)"), "\(name): \(h)")
        }
        let dir = CLI.tempDir("example-bad-folder")
        CLI.write("x", dir + "/file")
        for bad in [dir + "/file", ""] {
            let r = try run("example-trajectory", ["--fast", bad])
            #expect(r.code == 2 && r.err.hasPrefix("error: OUT_DIR") && r.err.split(separator: "\n").count == 1 && r.out.isEmpty,
                    "\(bad): \(r)")
        }
    }
}
