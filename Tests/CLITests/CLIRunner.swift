import Foundation

/// Runs the built `wnflow` binary and captures its exit code and output.
enum CLI {
    struct Outcome {
        let code: Int32
        let stdout: String
        let stderr: String
    }

    /// The `wnflow` executable next to the test bundle (SwiftPM puts both in
    /// the same products folder).
    static let binary: String = {
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("wnflow").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/wnflow").path
    }()

    /// Runs `wnflow args…`; `environment` adds to (or overrides) the inherited variables.
    static func run(_ args: [String], stdin: String? = nil, environment: [String: String] = [:]) throws -> Outcome {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Outcome(code: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                       stderr: String(decoding: e, as: UTF8.self))
    }

    /// This test process's scratch root, removed when the process exits.
    private static let scratchRoot: String = {
        let root = NSTemporaryDirectory() + "wnflow-cli-\(ProcessInfo.processInfo.processIdentifier)"
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        atexit {
            let root = NSTemporaryDirectory() + "wnflow-cli-\(ProcessInfo.processInfo.processIdentifier)"
            try? FileManager.default.removeItem(atPath: root)
        }
        return root
    }()

    /// A fresh temporary folder (under the process's scratch root, so a test run leaves nothing behind).
    static func tempDir(_ name: String) -> String {
        let d = scratchRoot + "/\(name)-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// The small WN run several tests share (M = 8, N = 20, η_g = 0.1, an
    /// abs-Gaussian start of scale 0.05), recorded at `points` times.
    static func smallWNConfig(points: Int) -> String {
        """
        {"problem": {"generate": {"M": 8, "N": 20, "sparsity": 3, "seed": 5}},
         "model": {"flow": "wn", "depth": 2, "eta_g": 0.1},
         "init": {"scale": 0.05, "direction": "abs-gaussian", "seed": 9},
         "record": {"points": \(points)}}
        """
    }

    static func write(_ text: String, _ path: String) {
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    }
}
