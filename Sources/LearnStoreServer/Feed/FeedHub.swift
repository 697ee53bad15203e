import LearnStoreModel
import LearnStorePersistence
import Synchronization

/// The server's subscriptions: how many are open (per tenant and in all, against the configured
/// limits), and the way to tell a tenant's subscriptions about a restore, which the WAL does not show.
public final class FeedHub: Sendable {
    private struct State {
        var log: (wal: WriteAheadLog, walDirectory: String, fileSystem: any FileSystem)?
        var byTenant: [String: [ObjectIdentifier: FeedSource]] = [:]
        var total = 0
    }

    private let state = Mutex(State())
    let maximum: Int
    let maximumPerTenant: Int

    public init(maximum: Int, maximumPerTenant: Int) {
        self.maximum = maximum
        self.maximumPerTenant = maximumPerTenant
    }

    /// The WAL the feed reads, once recovery has opened it.
    public func attach(wal: WriteAheadLog, walDirectory: String, fileSystem: any FileSystem) {
        state.withLock { $0.log = (wal, walDirectory, fileSystem) }
    }

    var log: (wal: WriteAheadLog, walDirectory: String, fileSystem: any FileSystem)? { state.withLock { $0.log } }

    public var subscriptions: Int { state.withLock { $0.total } }

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
            if state.byTenant[source.tenantID]?.isEmpty == true { state.byTenant[source.tenantID] = nil }
        }
    }

    /// `tenant` was restored: its state is now `sequence`, after its last write at `afterLSN`.
    public func tenantRestored(_ tenant: String, sequence: UInt64, afterLSN: UInt64, at time: Timestamp) {
        let subscribers = state.withLock { Array(($0.byTenant[tenant] ?? [:]).values) }
        for source in subscribers { source.restored(sequence: sequence, afterLSN: afterLSN, at: time) }
    }
}
