import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import Synchronization

/// The INFO document: version, uptime, connections, tenants, requests and errors.
final class InfoDocument: Sendable {
    let runtime: ServerRuntimeState
    let registry: TenantRegistry
    let metrics: ServerMetrics
    let version: String
    let started: Timestamp
    let log: DeferredLog
    /// The server's change-feed subscriptions, once the server context exists.
    private let feed = Mutex<FeedHub?>(nil)

    func attach(feed hub: FeedHub) { feed.withLock { $0 = hub } }

    /// This node's replication, if it takes part in it.
    private let replication = Mutex<ReplicationNode?>(nil)

    func attach(replication node: ReplicationNode) { replication.withLock { $0 = node } }

    init(runtime: ServerRuntimeState, registry: TenantRegistry, metrics: ServerMetrics, version: String, started: Timestamp, log: DeferredLog) {
        self.log = log
        self.runtime = runtime
        self.registry = registry
        self.metrics = metrics
        self.version = version
        self.started = started
    }

    /// Without `serverWide` (a caller without the admin scope) only the server's identity and state,
    /// its storage included (clients check the fsync policy and that their writes reach the log):
    /// counts of connections, tenants, requests and errors describe every tenant's use.
    func render(_ now: Timestamp, serverWide: Bool) -> String {
        func number(_ value: Int) -> JSONValue { .number(String(value)) }
        var members: [(String, JSONValue)] = [
            ("server", .string("learnstore")),
            ("version", .string(version)),
            ("uptime_seconds", number(Int((now.milliseconds &- started.milliseconds) / 1000))),
            ("loading", .bool(runtime.isLoading)),
            ("recovery", .string(runtime.recoveryProgress)),
            ("shutting_down", .bool(runtime.isShuttingDown)),
            ("server_wide", .bool(serverWide)),
            ("storage", storage()),
            ("replication", replicationMember(serverWide: serverWide)),
        ]
        guard serverWide else { return JSONValue.object(members).serialized }
        let snapshot = metrics.snapshot
        members += [
            ("connections", number(runtime.connections)),
            ("connections_opened", number(snapshot.connectionsOpened)),
            ("feed_subscriptions", number(feed.withLock { $0 }?.subscriptions ?? 0)),
            ("tenants", number(registry.tenantIDs.count)),
            ("requests", .object(snapshot.requests.sorted { $0.key < $1.key }.map { ($0.key, number($0.value)) })),
            ("errors", .object(snapshot.errors.sorted { $0.key < $1.key }.map { ($0.key, number($0.value)) })),
        ]
        return JSONValue.object(members).serialized
    }

    /// Null without replication; the node's role and epoch to everyone (a client learns it reached a
    /// replica), its whole status (docs/PROTOCOL.md, E.6) to an admin.
    private func replicationMember(serverWide: Bool) -> JSONValue {
        guard let node = replication.withLock({ $0 }) else { return .null }
        if serverWide { return node.status() }
        return .object([
            ("node_id", .string(node.configuration.nodeID)), ("role", .string(node.role.name)), ("epoch", .number(String(node.epoch))),
        ])
    }

    /// The write-ahead log's figures (null until recovery has opened it).
    private func storage() -> JSONValue {
        guard let wal = log.current as? WriteAheadLog else { return .null }
        let stats = wal.stats
        func number(_ value: UInt64) -> JSONValue { .number(String(value)) }
        return .object([
            ("fsync_policy", .string(wal.configuration.policy.rawValue)),
            ("committed_lsn", number(wal.committedLSN)),
            ("wal_bytes_written", number(stats.bytesWritten)),
            ("wal_writes", number(stats.writes)),
            ("wal_syncs", number(stats.syncs)),
            ("wal_last_sync_microseconds", number(stats.lastSyncNanoseconds / 1000)),
            ("wal_segments", number(UInt64(wal.segmentFirstLSNs.count))),
            ("wal_segments_created", number(stats.segmentsCreated)),
            ("wal_segments_prepared_in_advance", number(stats.segmentsPrepared)),
            ("wal_failures", number(stats.failures)),
        ])
    }
}
