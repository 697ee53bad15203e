import LearnStoreModel

/// Where tenant actors send their mutations to be made durable (the WAL, in the server).
///
/// `append` is called on the tenant's executor right after the state changed, so it must not block:
/// it queues the entry and returns its log sequence number (LSN). Durability completes later; the
/// caller learns of it through the log's commit mark or a rollback (``TenantActor/rollBack(_:)``).
public protocol MutationLog: Sendable {
    func append(_ entry: LogEntry) throws(LearnStoreError) -> UInt64
    /// Every LSN up to this is resolved: committed, unless `hasFailed` says it failed.
    var committedLSN: UInt64 { get }
    /// Whether the write with this LSN failed (its tenant undoes it).
    func hasFailed(_ lsn: UInt64) -> Bool
    /// The tenant has undone its failed writes and may append again.
    func rollbackDone(tenant: String)
    /// Queues a write a primary logged at `lsn`, as its log holds it (`sealed`): a replica's log keeps
    /// its primary's LSNs.
    func appendReplicated(_ sealed: [UInt8], lsn: UInt64, tenant: String, sequence: UInt64) throws(LearnStoreError)
}

extension MutationLog {
    public func hasFailed(_ lsn: UInt64) -> Bool { false }
    public func rollbackDone(tenant: String) {}
    public func appendReplicated(_ sealed: [UInt8], lsn: UInt64, tenant: String, sequence: UInt64) throws(LearnStoreError) {
        throw LearnStoreError(.internalError, "this log cannot hold replicated writes")
    }
}

/// One write of one tenant, as it goes to the log.
public struct LogEntry: Sendable, Hashable {
    public var tenantID: String
    public var sequence: UInt64
    public var timestamp: Timestamp
    public var mutations: [TenantMutation]

    public init(tenantID: String, sequence: UInt64, timestamp: Timestamp, mutations: [TenantMutation]) {
        self.tenantID = tenantID
        self.sequence = sequence
        self.timestamp = timestamp
        self.mutations = mutations
    }
}

/// A log that keeps nothing: every append is immediately committed. For tests and tools that work on
/// a tenant purely in memory.
public struct DiscardingLog: MutationLog {
    private let counter = LSNCounter()
    public init() {}
    public func append(_ entry: LogEntry) throws(LearnStoreError) -> UInt64 { counter.next() }
    public var committedLSN: UInt64 { counter.current }
}

import Synchronization

final class LSNCounter: Sendable {
    private let value = Atomic<UInt64>(0)
    func next() -> UInt64 { value.wrappingAdd(1, ordering: .relaxed).newValue }
    var current: UInt64 { value.load(ordering: .relaxed) }
}
