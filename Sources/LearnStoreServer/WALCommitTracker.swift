import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import NIOCore
import Synchronization

/// Connects the WAL to the connections and tenants: after every group commit it wakes the event
/// loops whose connections hold responses; after a failure it has the affected tenants undo their
/// uncommitted writes.
public final class WALCommitTracker: CommitTracker {
    private let wal: WriteAheadLog
    private let waiters = Mutex<[(lsn: UInt64, loop: any EventLoop, wake: @Sendable () -> Void)]>([])
    private let loopWakes: LoopWakes?

    /// With `loopWakes`, wakes are posted to each loop's inbox, which its connections run between
    /// reads; without, each is a task for the loop's next turn.
    public init(wal: WriteAheadLog, registry: TenantRegistry, placement: TenantPlacement, loopWakes: LoopWakes? = nil,
                committed: (@Sendable () -> Void)? = nil) {
        self.wal = wal
        self.loopWakes = loopWakes
        wal.onCommit = { [weak self] mark in
            self?.wake(upTo: mark, all: false)
            committed?()
        }
        wal.onAcknowledgementsStopped = { [weak self] in self?.wake(upTo: .max, all: true) }
        wal.onFailure = { [weak self, weak wal] rollbacks in
            for rollback in rollbacks {
                guard let actor = registry.existingTenant(rollback.tenant) else {
                    // No actor holds the writes (cannot happen: only actors append); let it write again.
                    wal?.rollbackDone(tenant: rollback.tenant)
                    continue
                }
                placement.loop(for: rollback.tenant).execute {
                    actor.withExclusiveAccess { _ = $0.rollBack(rollback.lsns) }
                }
            }
            self?.wake(upTo: .max, all: true)
        }
    }

    public var committedLSN: UInt64 { wal.committedLSN }
    public func hasFailed(_ lsn: UInt64) -> Bool { wal.hasFailed(lsn) }
    public var hasFailures: Bool { wal.hasFailures }
    public var acknowledgementsStopped: StoppedAcknowledgements? { wal.acknowledgementsStopped }
    public func writeQueued() { wal.writeNow() }

    public func subscribe(loop: any EventLoop, waitingFor lsn: UInt64, _ wake: @escaping @Sendable () -> Void) {
        waiters.withLock { $0.append((lsn, loop, wake)) }
        // A commit may have happened between the caller's check and this registration.
        let committed = wal.committedLSN
        if committed >= lsn { self.wake(upTo: committed, all: false) }
    }

    /// Wakes waiters whose LSN is committed (or all, after a failure), one post or task per event loop.
    private func wake(upTo committed: UInt64, all: Bool) {
        let ready: [(lsn: UInt64, loop: any EventLoop, wake: @Sendable () -> Void)] = waiters.withLock { list in
            var ready: [(lsn: UInt64, loop: any EventLoop, wake: @Sendable () -> Void)] = []
            list.removeAll { waiter in
                guard all || waiter.lsn <= committed else { return false }
                ready.append(waiter)
                return true
            }
            return ready
        }
        guard !ready.isEmpty else { return }
        var byLoop: [(any EventLoop, [@Sendable () -> Void])] = []
        for waiter in ready {
            if let index = byLoop.firstIndex(where: { $0.0 === waiter.loop }) {
                byLoop[index].1.append(waiter.wake)
            } else {
                byLoop.append((waiter.loop, [waiter.wake]))
            }
        }
        for (loop, wakes) in byLoop {
            if let loopWakes {
                loopWakes.inbox(for: loop).post(wakes)
            } else {
                loop.execute { for wake in wakes { wake() } }
            }
        }
    }
}

/// A reference recovery sets once and every event loop reads on every request: after the set,
/// reads take no lock.
final class SetOnce<Value: Sendable>: @unchecked Sendable {
    /// Written once, before `isSet` is published; read only after an acquiring load has seen it.
    private var value: Value?
    private let isSet = Atomic<Bool>(false)

    func set(_ value: Value) {
        precondition(!isSet.load(ordering: .acquiring), "set once")
        self.value = value
        isSet.store(true, ordering: .releasing)
    }

    var current: Value? { isSet.load(ordering: .acquiring) ? value : nil }
}

/// A log that tenant actors can hold before recovery has opened the WAL; writes are refused with
/// LOADING until it is set.
public final class DeferredLog: MutationLog {
    private let log = SetOnce<any MutationLog>()
    public init() {}
    public func set(_ log: any MutationLog) { self.log.set(log) }
    /// The log once recovery has opened it.
    public var current: (any MutationLog)? { log.current }
    public func append(_ entry: LogEntry) throws(LearnStoreError) -> UInt64 {
        guard let log = current else { throw LearnStoreError(.loading, "the server is recovering its data") }
        return try log.append(entry)
    }
    public var committedLSN: UInt64 { current?.committedLSN ?? 0 }
    public func hasFailed(_ lsn: UInt64) -> Bool { current?.hasFailed(lsn) ?? false }
    public func rollbackDone(tenant: String) { current?.rollbackDone(tenant: tenant) }
    public func appendReplicated(_ sealed: [UInt8], lsn: UInt64, tenant: String, sequence: UInt64) throws(LearnStoreError) {
        guard let log = current else { throw LearnStoreError(.loading, "the server is recovering its data") }
        try log.appendReplicated(sealed, lsn: lsn, tenant: tenant, sequence: sequence)
    }
}

/// A commit tracker that forwards to the WAL's once recovery has opened it.
public final class DeferredCommitTracker: CommitTracker {
    private let tracker = SetOnce<any CommitTracker>()
    public init() {}
    public func set(_ tracker: any CommitTracker) { self.tracker.set(tracker) }
    private var target: (any CommitTracker)? { tracker.current }
    public var committedLSN: UInt64 { target?.committedLSN ?? .max }
    public func hasFailed(_ lsn: UInt64) -> Bool { target?.hasFailed(lsn) ?? false }
    public var hasFailures: Bool { target?.hasFailures ?? false }
    public var acknowledgementsStopped: StoppedAcknowledgements? { target?.acknowledgementsStopped }
    public func subscribe(loop: any EventLoop, waitingFor lsn: UInt64, _ wake: @escaping @Sendable () -> Void) {
        if let tracker = target { tracker.subscribe(loop: loop, waitingFor: lsn, wake) } else { loop.execute(wake) }
    }
    public func writeQueued() { target?.writeQueued() }
}
