import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on the low-priority compute threads of the test process instead of Swift's
/// cooperative pool, in the same task (so `#expect` inside it still belongs to the test).
///
/// The cooperative pool has one thread per core. A test that computes on it for many seconds (a
/// simulation over many seeds, a fuzz loop) takes a thread away from every other test in the
/// process, and from the clients and servers those tests run; on two cores two such tests leave
/// nothing, and time-bounded steps elsewhere (a handshake timeout) fail. The compute threads run at a
/// low scheduling priority, so the other tests come first and such tests use what is left.
public func offTheCooperativePool<T>(_ body: () async throws -> T) async rethrows -> T {
    try await withTaskExecutorPreference(ComputeThreadExecutor.shared) { try await body() }
}

/// A task executor with one thread per core of its own, at nice 10.
final class ComputeThreadExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = ComputeThreadExecutor()

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    private init() {
        for _ in 0..<max(1, ProcessInfo.processInfo.activeProcessorCount) {
            let thread = Thread { [unowned self] in self.run() }
            thread.name = "test-compute"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func run() {
        #if canImport(Glibc)
        // On Linux the nice value belongs to the thread: 0 names the calling thread alone.
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        #endif
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
