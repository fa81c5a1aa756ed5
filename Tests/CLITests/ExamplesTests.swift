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
}
