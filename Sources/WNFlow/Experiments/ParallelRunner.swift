import Foundation
import GSLKit

/// Runs independent jobs on up to `jobs` threads, each job owning its own
/// GSL workspaces (one `Simulation` per job), and returns results in index
/// order, so that the output does not depend on the number of workers.
public enum ParallelRunner {
    /// The number of cores available.
    public static var coreCount: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// Calls `body(i)` for `i` in `0..<count` on `jobs` workers (default:
    /// all cores); `onDone` is called after each job (serially, under a lock)
    /// with the index and its result.
    public static func map<T: Sendable>(count: Int, jobs: Int? = nil,
                                        onDone: (@Sendable (Int, T) -> Void)? = nil,
                                        _ body: @escaping @Sendable (Int) -> T) -> [T] {
        // More workers than runs, or than a few per core, only cost threads.
        let workers = max(1, min(jobs ?? coreCount, count, 8 * coreCount))
        let state = SharedState<T>(count: count)
        if workers == 1 {
            for i in 0..<count {
                let r = body(i)
                state.store(i, r)
                onDone?(i, r)
            }
            return state.results()
        }
        // Parallelism across runs: one BLAS thread per run.
        BLAS.setThreads(1)
        let group = DispatchGroup()
        for _ in 0..<workers {
            group.enter()
            Thread.detachNewThread {
                while let i = state.next() {
                    let r = body(i)
                    state.store(i, r, then: onDone)
                }
                group.leave()
            }
        }
        group.wait()
        return state.results()
    }
}

/// Work queue and result slots shared by the workers, guarded by a lock.
private final class SharedState<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var cursor = 0
    private let count: Int
    private var slots: [T?]

    init(count: Int) {
        self.count = count
        slots = [T?](repeating: nil, count: count)
    }

    func next() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard cursor < count else { return nil }
        cursor += 1
        return cursor - 1
    }

    func store(_ i: Int, _ value: T, then callback: (@Sendable (Int, T) -> Void)? = nil) {
        lock.lock()
        defer { lock.unlock() }
        slots[i] = value
        callback?(i, value)
    }

    func results() -> [T] {
        lock.lock()
        defer { lock.unlock() }
        return slots.map { $0! }
    }
}

