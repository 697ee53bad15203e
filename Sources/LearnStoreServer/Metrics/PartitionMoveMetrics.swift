import CoreMetrics
import Metrics

/// The partition-move series of the metrics endpoint (docs/OPERATIONS.md, 8.1), on nodes of a
/// partitioned cluster.
final class PartitionMoveMetrics: Sendable {
    let mapVersion: Gauge
    let movesCompleted: Counter
    let copiesFailed: Counter
    let piecesCopied: Counter
    let piecesExported: Counter
    let tenantsReleased: Counter
    let balancerMovesStarted: Counter

    init(factory: any MetricsFactory) {
        mapVersion = Gauge(label: "learnstore_partition_map_version", factory: factory)
        movesCompleted = Counter(label: "learnstore_partition_moves_completed_total", factory: factory)
        copiesFailed = Counter(label: "learnstore_partition_move_copies_failed_total", factory: factory)
        piecesCopied = Counter(label: "learnstore_partition_move_pieces_copied_total", factory: factory)
        piecesExported = Counter(label: "learnstore_partition_move_pieces_exported_total", factory: factory)
        tenantsReleased = Counter(label: "learnstore_partition_tenants_released_total", factory: factory)
        balancerMovesStarted = Counter(label: "learnstore_balancer_moves_started_total", factory: factory)
    }
}
