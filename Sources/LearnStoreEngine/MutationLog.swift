import LearnStoreModel

/// Where tenant actors send their mutations to be made durable (the WAL, in the server).
///
/// `append` is called on the tenant's executor right after the state changed, so it must not block:
/// it queues the entry and returns its log sequence number (LSN). Durability completes later; the
/// caller learns of it through ``TenantActor/markCommitted(upTo:)`` or a rollback.
public protocol MutationLog: Sendable {
    func append(_ entry: LogEntry) throws(LearnStoreError) -> UInt64
    /// Everything up to this LSN is committed.
    var committedLSN: UInt64 { get }
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
