import LearnStoreEngine
import LearnStoreModel
import Synchronization

/// In a partitioned cluster, which tenants may take client writes on this node: those of partitions
/// its group holds and has not fenced for a move to another group (docs/CLUSTER.md, "Moving a
/// partition").
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
    /// Whether writes wait for a read of the map in the node's primary epoch, and that epoch: set at
    /// start and by each promotion before the node takes a write in it (an atomic: every write reads it).
    private let waitsForRead = Atomic<Bool>(false)
    private let primaryEpoch = Atomic<UInt64>(0)

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

    /// Writes wait, in each epoch this node is the primary of (from `epoch` at start, then each
    /// promotion's), until it has read the map during that epoch: a node promoted with a map older
    /// than a move's completion would otherwise take writes of a partition another group holds.
    func follow(startingEpoch epoch: UInt64) {
        primaryEpoch.store(epoch, ordering: .releasing)
        waitsForRead.store(true, ordering: .releasing)
    }

    /// A promotion made this node the primary of `epoch`.
    func becamePrimary(epoch: UInt64) {
        primaryEpoch.store(epoch, ordering: .releasing)
    }

    /// The epoch writes must have read the map in; nil when they do not wait.
    private var requiredEpoch: UInt64? {
        waitsForRead.load(ordering: .acquiring) ? primaryEpoch.load(ordering: .acquiring) : nil
    }

    /// The map was read from etcd by a read that began during `epoch`.
    func mapRead(duringEpoch epoch: UInt64) {
        state.withLock { state in
            if state != nil { state!.readInEpoch = max(state!.readInEpoch, epoch) }
        }
    }

    /// Whether the map held was read in this node's current epoch (always, when writes do not wait).
    var mapIsCurrent: Bool {
        let current = requiredEpoch
        return state.withLock { state in state != nil && (current.map { state!.readInEpoch >= $0 } ?? true) }
    }

    public func refusal(tenantID: String) -> LearnStoreError? {
        let current = requiredEpoch
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
        if let move = map.moves[partition], move.fenced {
            return LearnStoreError(.loading, "tenant \(tenantID)'s partition \(partition) is moving to group \(map.groups[move.to]); retry shortly")
        }
        return nil
    }
}
