import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A tenant actor's serial executor that any thread may enter synchronously by taking the tenant's
/// lock, so whichever event loop read a request runs it (as each Redis or Tarantool thread runs the
/// requests it reads).
///
/// Binding each tenant to one event loop and hopping to it from the others cost a task per read
/// batch, and under load it also starved I/O: NIO runs queued tasks until none are left before it
/// polls sockets again, so a loop fed a steady stream of other loops' batches stopped reading its
/// own connections, and their requests waited 0.2–3 s (measured: create -c 50 -P 16 with two loops,
/// p99.9 0.8–1.9 s; with one loop, 48 ms). Entering under a lock costs an uncontended
/// `pthread_mutex_lock` per batch instead.
///
/// Jobs enqueued asynchronously (`await tenant.…`: snapshots, admin requests) are handed to
/// `runJobs` (the tenant's home event loop), which runs each under the same lock.
public final class TenantExecutor: SerialExecutor, @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// The thread holding the lock (`pthread_self`), 0 when free: what isolation checks compare.
    private let owner = Atomic<UInt>(0)
    private let runJobs: @Sendable (@escaping @Sendable () -> Void) -> Void

    /// `runJobs` runs a closure later on some thread (for the server: the tenant's home event loop).
    public init(runJobs: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        self.runJobs = runJobs
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` holding the tenant's lock. Re-entrant on the thread that already holds it.
    @inline(__always)
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        let me = UInt(pthread_self())
        if owner.load(ordering: .relaxed) == me { return try body() }
        pthread_mutex_lock(mutex)
        owner.store(me, ordering: .relaxed)
        defer {
            owner.store(0, ordering: .relaxed)
            pthread_mutex_unlock(mutex)
        }
        return try body()
    }

    /// Whether the calling thread holds the lock.
    public var isHeldByCurrentThread: Bool {
        owner.load(ordering: .relaxed) == UInt(pthread_self())
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let unownedJob = UnownedJob(job)
        runJobs { [self] in
            self.withLock { unownedJob.runSynchronously(on: self.asUnownedSerialExecutor()) }
        }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    public func checkIsolated() {
        precondition(isHeldByCurrentThread, "a tenant was entered without holding its lock")
    }

    public func isIsolatingCurrentContext() -> Bool? {
        isHeldByCurrentThread
    }
}
