import Foundation

/// A progress bar on stderr (runs done/total, rate, ETA), drawn only when
/// stderr is a terminal: silent in pipes, files and CI.
final class ProgressBar: @unchecked Sendable {
    let label: String
    let enabled: Bool
    private let start = DispatchTime.now().uptimeNanoseconds
    private let lock = NSLock()
    private var lastDraw: UInt64 = 0

    init(label: String, enabled: Bool = isatty(2) != 0) {
        self.label = label
        self.enabled = enabled
    }

    /// Called after each finished run.
    func update(done: Int, total: Int) {
        guard enabled, total > 0 else { return }
        lock.lock()
        defer { lock.unlock() }
        let now = DispatchTime.now().uptimeNanoseconds
        if done < total && now - lastDraw < 100_000_000 { return }
        lastDraw = now
        let elapsed = Double(now - start) / 1e9
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : .nan
        let width = 30
        let filled = Int((Double(done) / Double(total) * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        var line = "\r\(label) [\(bar)] \(done)/\(total)  \(String(format: "%.1f", rate)) runs/s  ETA \(ProgressBar.clock(eta))"
        if done == total { line += "\n" }
        FileHandle.standardError.write(Data(line.utf8))
    }

    static func clock(_ s: Double) -> String {
        guard s.isFinite else { return "--:--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%02d:%02d", t / 60, t % 60)
    }
}
