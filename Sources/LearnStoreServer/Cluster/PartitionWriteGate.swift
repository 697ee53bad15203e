import LearnStoreEngine
import LearnStoreModel
import Synchronization

/// In a partitioned cluster, which tenants may take client writes on this node: those of partitions
/// its group holds and is not handing to another group (docs/CLUSTER.md, "Moving a partition").
/// Tenants ask under their own isolation (``TenantWriteGate``), so once the map of a move is set
/// here, one hop onto a tenant finds every write it let through already logged.
public final class PartitionWriteGate: TenantWriteGate {
    private let partitioning = Mutex<(map: PartitionMap, group: String)?>(nil)

    public init() {}

    func set(map: PartitionMap, group: String) {
        partitioning.withLock { $0 = (map, group) }
    }

    public func refusal(tenantID: String) -> LearnStoreError? {
        partitioning.withLock { partitioning -> LearnStoreError? in
            guard let (map, group) = partitioning else { return nil }
            return Self.refusal(tenantID: tenantID, map: map, group: group)
        }
    }

    static func refusal(tenantID: String, map: PartitionMap, group: String) -> LearnStoreError? {
        let partition = map.partition(of: tenantID)
        let holder = map.holder(of: partition)
        if holder != group {
            return LearnStoreError(.loading, "tenant \(tenantID)'s partition \(partition) is held by group \(holder) now; connect again (AUTH answers MOVED)")
        }
        if let move = map.moves[partition] {
            return LearnStoreError(.loading, "tenant \(tenantID)'s partition \(partition) is moving to group \(map.groups[move.to]); retry shortly")
        }
        return nil
    }
}
