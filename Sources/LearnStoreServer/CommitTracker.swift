import LearnStoreModel
import LearnStorePersistence
import NIOCore
import Synchronization

/// Which writes are resolved: what a held response needs to know before it may be sent.
public protocol CommitStatus {
    /// Every LSN up to this is resolved: committed, unless `hasFailed` says it failed.
    var committedLSN: UInt64 { get }
    /// Whether `lsn` belongs to a write that failed and was undone.
    func hasFailed(_ lsn: UInt64) -> Bool
    /// Whether any write ever failed (until then no response needs checking one by one).
    var hasFailures: Bool { get }
    /// Set when this node will acknowledge nothing above a mark (a primary fenced by a newer epoch):
    /// a held response that depends on a write above it is answered with its error instead of
    /// waiting for an acknowledgement that will not come.
    var acknowledgementsStopped: StoppedAcknowledgements? { get }
}

/// Tells connections when the writes their responses depend on are committed (durable under the
/// server's fsync policy), so no reader ever sees a write a crash could take back.
public protocol CommitTracker: CommitStatus, AnyObject, Sendable {
    /// Calls `wake` on `loop` once `lsn` is resolved (committed or failed; at once if it already is).
    func subscribe(loop: any EventLoop, waitingFor lsn: UInt64, _ wake: @escaping @Sendable () -> Void)
    /// Called after each request batch: under relaxed fsync policies the log writes what the batch
    /// queued right here, so its replies need no hand-off to another thread.
    func writeQueued()
}

extension CommitTracker {
    public func writeQueued() {}
}

/// For a server without a WAL (and for tests): every write is committed when it is made.
public final class ImmediateCommitTracker: CommitTracker {
    public init() {}
    public var committedLSN: UInt64 { .max }
    public func hasFailed(_ lsn: UInt64) -> Bool { false }
    public var hasFailures: Bool { false }
    public var acknowledgementsStopped: StoppedAcknowledgements? { nil }
    public func subscribe(loop: any EventLoop, waitingFor lsn: UInt64, _ wake: @escaping @Sendable () -> Void) {
        loop.execute(wake)
    }
}

/// Server-wide flags read on every batch: recovering, shutting down, open connections.
public final class ServerRuntimeState: Sendable {
    private let loadingFlag = Atomic<Bool>(true)
    private let shuttingDownFlag = Atomic<Bool>(false)
    private let connectionCount = Atomic<Int>(0)
    private let recoveryMessage = Mutex<String>("starting")

    public init(loading: Bool = true) { loadingFlag.store(loading, ordering: .relaxed) }

    public var isLoading: Bool { loadingFlag.load(ordering: .acquiring) }
    public func finishLoading() { loadingFlag.store(false, ordering: .releasing) }
    public var isShuttingDown: Bool { shuttingDownFlag.load(ordering: .acquiring) }
    public func beginShutdown() { shuttingDownFlag.store(true, ordering: .releasing) }
    private let replacedFlag = Atomic<Bool>(false)
    /// The node stops to start again as a replica: the writes its connections wait on will never be
    /// acknowledged, so a graceful shutdown does not wait long for them.
    public var isReplaced: Bool { replacedFlag.load(ordering: .acquiring) }
    public func markReplaced() { replacedFlag.store(true, ordering: .releasing) }
    public var connections: Int { connectionCount.load(ordering: .relaxed) }
    /// Adds one connection if below `limit`; false when full.
    public func admitConnection(limit: Int) -> Bool {
        if connectionCount.wrappingAdd(1, ordering: .relaxed).newValue > limit {
            connectionCount.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }
    public func connectionClosed() { connectionCount.wrappingSubtract(1, ordering: .relaxed) }
    public var recoveryProgress: String {
        get { recoveryMessage.withLock { $0 } }
        set { recoveryMessage.withLock { $0 = newValue } }
    }
}
