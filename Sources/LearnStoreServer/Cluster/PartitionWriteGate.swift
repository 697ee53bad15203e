import LearnStoreEngine
import LearnStoreModel
import Synchronization

/// In a partitioned cluster, which tenants may take client writes on this node: those of partitions
/// its group holds and is not handing to another group (docs/CLUSTER.md, "Moving a partition").
/// Tenants ask under their own isolation (``TenantWriteGate``), so once the map of a move is set
/// here, one hop onto a tenant finds every write it let through already logged.
public final class PartitionWriteGate: TenantWriteGate {
    struct State {
        var map: PartitionMap
        var group: String
        /// The newest epoch during which this node read the map from etcd.
        var readInEpoch: UInt64 = 0
    }

    private let state = Mutex<State?>(nil)
    /// This node's epoch now; nil: writes do not wait for a read of the map.
    private let epoch = Mutex<(@Sendable () -> UInt64)?>(nil)

    public init() {}

    func set(map: PartitionMap, group: String) {
        state.withLock { state in
            if state != nil {
                state!.map = map
                state!.group = group
            } else {
                state = State(map: map, group: group)
            }
        }
    }

    /// Writes wait, in each epoch of this node, until it has read the map during that epoch: a node
    /// promoted with a map older than a move's completion would otherwise take writes of a partition
    /// another group holds.
    func follow(epoch current: @escaping @Sendable () -> UInt64) {
        epoch.withLock { $0 = current }
    }

    /// The map was read from etcd by a read that began during `epoch`.
    func mapRead(duringEpoch epoch: UInt64) {
        state.withLock { state in
            if state != nil { state!.readInEpoch = max(state!.readInEpoch, epoch) }
        }
    }

    /// Whether the map held was read in this node's current epoch (always, when writes do not wait).
    var mapIsCurrent: Bool {
        let current = epoch.withLock { $0 }?()
        return state.withLock { state in state != nil && (current.map { state!.readInEpoch >= $0 } ?? true) }
    }

    public func refusal(tenantID: String) -> LearnStoreError? {
        let current = epoch.withLock { $0 }?()
        return state.withLock { state -> LearnStoreError? in
            guard let state else { return nil }
            if let current, state.readInEpoch < current {
                return LearnStoreError(.loading, "this node has not read the partition map since it became the primary of epoch \(current); retry shortly")
            }
            return Self.refusal(tenantID: tenantID, map: state.map, group: state.group)
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
