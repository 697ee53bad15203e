import LearnStoreModel
import LearnStorePersistence
import Synchronization

/// The server's subscriptions: how many are open (per tenant and in all, against the configured
/// limits), and the way to tell a tenant's subscriptions about a restore, which the WAL does not show.
public final class FeedHub: Sendable {
    private struct State {
        var log: (wal: WriteAheadLog, walDirectory: String, fileSystem: any FileSystem)?
        var byTenant: [String: [ObjectIdentifier: FeedSource]] = [:]
        var recent: [String: RecentChanges] = [:]
        /// SUBSCRIBEs of each tenant between taking its recent changes and registering (or failing).
        var opening: [String: Int] = [:]
        var total = 0
    }

    private let state = Mutex(State())
    let maximum: Int
    let maximumPerTenant: Int
    let memoryRecordsPerTenant: Int
    public let statistics = FeedStatistics()

    public init(maximum: Int, maximumPerTenant: Int, memoryRecordsPerTenant: Int = RecentChanges.defaultMaximumRecords) {
        self.maximum = maximum
        self.maximumPerTenant = maximumPerTenant
        self.memoryRecordsPerTenant = memoryRecordsPerTenant
    }

    /// The WAL the feed reads, once recovery has opened it.
    public func attach(wal: WriteAheadLog, walDirectory: String, fileSystem: any FileSystem) {
        state.withLock { $0.log = (wal, walDirectory, fileSystem) }
    }

    var log: (wal: WriteAheadLog, walDirectory: String, fileSystem: any FileSystem)? { state.withLock { $0.log } }

    public var subscriptions: Int { state.withLock { $0.total } }

    /// The recent changes of `tenant` its subscriptions share (kept while it has any).
    /// With no memory for them configured, a closed one: the tenant drops it, subscriptions read the files.
    /// The caller calls ``openingEnded(_:)`` once it has registered its subscription or given up, so
    /// that the last subscription leaving meanwhile does not close what the new one holds.
    func recentChanges(for tenant: String, wal: WriteAheadLog) -> RecentChanges {
        let committed: @Sendable () -> UInt64 = { [weak wal] in wal?.committedLSN ?? 0 }
        guard memoryRecordsPerTenant > 0 else {
            let unused = RecentChanges(tenantID: tenant, maximumRecords: 0, committedLSN: committed)
            unused.close()
            return unused
        }
        return state.withLock { state in
            state.opening[tenant, default: 0] += 1
            if let existing = state.recent[tenant] { return existing }
            let created = RecentChanges(tenantID: tenant, maximumRecords: memoryRecordsPerTenant, committedLSN: committed)
            state.recent[tenant] = created
            return created
        }
    }

    /// A SUBSCRIBE that took `recent` registered its subscription or failed; after a failure, `recent`
    /// is dropped if nobody else follows the tenant.
    func openingEnded(_ recent: RecentChanges, failed: Bool) {
        state.withLock { state in
            guard let count = state.opening[recent.tenantID] else { return }
            state.opening[recent.tenantID] = count > 1 ? count - 1 : nil
        }
        if failed { releaseIfUnused(recent) }
    }

    /// Records held in memory for subscriptions, over all tenants.
    public var recentRecordsHeld: Int {
        state.withLock { Array($0.recent.values) }.reduce(0) { $0 + $1.heldRecords }
    }

    /// Counts a new subscription of `tenant`, or says which limit it would pass.
    func register(_ source: FeedSource) throws(FeedFailure) {
        let refusal: String? = state.withLock { state in
            if state.total >= maximum { return "the server has its limit of \(maximum) change-feed subscriptions" }
            if state.byTenant[source.tenantID, default: [:]].count >= maximumPerTenant {
                return "tenant \(source.tenantID) has its limit of \(maximumPerTenant) change-feed subscriptions"
            }
            state.byTenant[source.tenantID, default: [:]][ObjectIdentifier(source)] = source
            state.total += 1
            return nil
        }
        if let refusal { throw FeedFailure(LearnStoreError(.overloaded, refusal + "; retry later")) }
    }

    func unregister(_ source: FeedSource) {
        state.withLock { state in
            if state.byTenant[source.tenantID]?.removeValue(forKey: ObjectIdentifier(source)) != nil { state.total -= 1 }
        }
        releaseIfUnused(source.recent)
    }

    /// Drops `recent` when no subscription of its tenant is left (the tenant lets go of it at its next
    /// write), so a tenant nobody follows costs nothing per write.
    func releaseIfUnused(_ recent: RecentChanges) {
        let unused: Bool = state.withLock { state in
            guard state.byTenant[recent.tenantID]?.isEmpty ?? true, state.opening[recent.tenantID] == nil else { return false }
            state.byTenant[recent.tenantID] = nil
            if state.recent[recent.tenantID] === recent { state.recent[recent.tenantID] = nil }
            return true
        }
        if unused { recent.close() }
    }

    /// `tenant` was restored: its state is now `sequence`, after its last write at `afterLSN`.
    public func tenantRestored(_ tenant: String, sequence: UInt64, afterLSN: UInt64, at time: Timestamp) {
        let subscribers = state.withLock { Array(($0.byTenant[tenant] ?? [:]).values) }
        for source in subscribers { source.restored(sequence: sequence, afterLSN: afterLSN, at: time) }
    }
}
