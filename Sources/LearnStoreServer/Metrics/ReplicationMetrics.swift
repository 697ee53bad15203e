import CoreMetrics
import LearnStoreModel
import Metrics
import Synchronization

/// The replication series of the metrics endpoint (docs/OPERATIONS.md, 8.1). Counters and the
/// acknowledgement histogram are updated as frames flow; the gauges are set when the endpoint is read.
final class ReplicationMetrics: Sendable {
    let factory: any MetricsFactory
    let role: Gauge
    let epoch: Gauge
    let inSyncReplicas: Gauge
    let appliedLSN: Gauge
    let durableLSN: Gauge
    let recordsShipped: Counter
    let bytesShipped: Counter
    let recordsApplied: Counter
    /// Bytes of files sent to replicas copying this node (CATCH_UP).
    let catchUpBytesSent: Counter
    /// From a write's commit on the primary to a replica's acknowledgement of it as durable.
    let acknowledgement: Metrics.Timer
    /// Per replica (node ids of authenticated replicas only), created with its first sample.
    private let lag = Mutex<[String: (milliseconds: Gauge, lsns: Gauge)]>([:])

    init(factory: any MetricsFactory) {
        self.factory = factory
        role = Gauge(label: "learnstore_replication_role", factory: factory)
        epoch = Gauge(label: "learnstore_replication_epoch", factory: factory)
        inSyncReplicas = Gauge(label: "learnstore_replication_in_sync_replicas", factory: factory)
        appliedLSN = Gauge(label: "learnstore_replication_applied_lsn", factory: factory)
        durableLSN = Gauge(label: "learnstore_replication_durable_lsn", factory: factory)
        recordsShipped = Counter(label: "learnstore_replication_records_shipped_total", factory: factory)
        bytesShipped = Counter(label: "learnstore_replication_bytes_shipped_total", factory: factory)
        recordsApplied = Counter(label: "learnstore_replication_records_applied_total", factory: factory)
        catchUpBytesSent = Counter(label: "learnstore_replication_catch_up_bytes_sent_total", factory: factory)
        acknowledgement = Metrics.Timer(label: "learnstore_replication_ack_seconds", factory: factory)
    }

    func recordLag(replica: String, milliseconds: Int64, lsns: UInt64) {
        let gauges = lag.withLock { series in
            if let existing = series[replica] { return existing }
            let created = (
                Gauge(label: "learnstore_replication_replica_lag_milliseconds", dimensions: [("replica", replica)], factory: factory),
                Gauge(label: "learnstore_replication_replica_lag_lsns", dimensions: [("replica", replica)], factory: factory))
            series[replica] = created
            return created
        }
        gauges.milliseconds.record(milliseconds)
        gauges.lsns.record(lsns)
    }
}
