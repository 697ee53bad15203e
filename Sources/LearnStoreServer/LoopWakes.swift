import NIOCore
import Synchronization

/// Work other threads hand to an event loop (a commit waking the connections and change-feed
/// subscriptions that wait on it) that the loop's connections run between two of their reads.
///
/// A task given to `EventLoop.execute` runs only once the loop has handled every socket its last
/// poll returned: under load, a turn of many connections' request batches, milliseconds long. A
/// subscriber's changes then left the server that long after the replies of the same commit, which
/// the writer's connection had sent at once. So each connection, when it finishes a read, runs what
/// was posted at least `batchingAge` ago (``LoopWakeInbox/runPosted()``), and a task scheduled at
/// the first post runs the rest at the end of the turn, as before. The age keeps the wakes of many
/// commits together: run after every read, subscribers get a frame per commit, and the frames'
/// system calls cost the writers more than the wait saves (docs/PERFORMANCE.md, "Change feed").
public final class LoopWakes: Sendable {
    private let inboxes = Mutex<[ObjectIdentifier: LoopWakeInbox]>([:])
    private let batchingAge: UInt64
    private let now: @Sendable () -> UInt64

    /// One millisecond: within the delivery the change feed aims at, and long enough that a
    /// subscriber's frame carries the changes of several commits.
    public static let defaultBatchingAge: UInt64 = 1_000_000

    /// `now` is a monotonic clock in nanoseconds.
    public init(batchingAge: UInt64 = LoopWakes.defaultBatchingAge, now: @escaping @Sendable () -> UInt64 = { NIODeadline.now().uptimeNanoseconds }) {
        self.batchingAge = batchingAge
        self.now = now
    }

    /// The inbox of `loop` (made on its first use).
    public func inbox(for loop: any EventLoop) -> LoopWakeInbox {
        inboxes.withLock { inboxes in
            if let inbox = inboxes[ObjectIdentifier(loop)] { return inbox }
            let inbox = LoopWakeInbox(loop: loop, batchingAge: batchingAge, now: now)
            inboxes[ObjectIdentifier(loop)] = inbox
            return inbox
        }
    }
}

/// One event loop's posted work: each piece runs once, on the loop, either when a connection of
/// the loop calls ``runPosted()`` after the oldest piece's batching age, or in the task
/// ``post(_:)`` scheduled, whichever comes first.
public final class LoopWakeInbox: Sendable {
    private let loop: any EventLoop
    private let batchingAge: UInt64
    private let now: @Sendable () -> UInt64
    private let posted = Mutex<[@Sendable () -> Void]>([])
    /// Set while `posted` holds work: a connection's check is one load of a line that changes only
    /// when work arrives, not a lock.
    private let hasPosted = Atomic<Bool>(false)
    /// When the oldest piece waiting was posted.
    private let firstPostedAt = Atomic<UInt64>(0)

    init(loop: any EventLoop, batchingAge: UInt64, now: @escaping @Sendable () -> UInt64) {
        self.loop = loop
        self.batchingAge = batchingAge
        self.now = now
    }

    /// Any thread: `work` runs on the loop soon.
    public func post(_ work: [@Sendable () -> Void]) {
        guard !work.isEmpty else { return }
        let first: Bool = posted.withLock { posted in
            let first = posted.isEmpty
            if first { firstPostedAt.store(now(), ordering: .relaxed) }
            posted += work
            hasPosted.store(true, ordering: .relaxed)
            return first
        }
        // One task per batch of posts: whatever no connection has run by then, it runs.
        if first { loop.execute { [self] in runAll() } }
    }

    /// On the loop, between reads: runs what was posted if the oldest piece has waited the batching age.
    public func runPosted() {
        guard hasPosted.load(ordering: .relaxed) else { return }
        guard now() &- firstPostedAt.load(ordering: .relaxed) >= batchingAge else { return }
        runAll()
    }

    private func runAll() {
        let work: [@Sendable () -> Void] = posted.withLock { posted in
            hasPosted.store(false, ordering: .relaxed)
            var taken: [@Sendable () -> Void] = []
            swap(&taken, &posted)
            return taken
        }
        for piece in work { piece() }
    }
}
