import LearnStoreModel
import Synchronization

/// Where this node believes the cluster's primary and nodes are, by their client addresses: the
/// answer to TOPOLOGY, and where a write sent to a replica is MOVED (docs/PROTOCOL.md 4.4b). The
/// control plane (``ClusterAgent``) fills it from etcd; without one it knows only this node.
public final class TopologyBoard: Sendable {
    public struct Node: Sendable, Equatable {
        public var nodeID: String
        /// `host:port` of its client port, once it has published one.
        public var address: String?
        public var role: NodeRole
    }

    struct State {
        var thisNode: String?
        var thisAddress: String?
        /// This node's role and epoch (nil: no replication, a standalone primary).
        var local: @Sendable () -> (role: NodeRole, epoch: UInt64)? = { nil }
        var epoch: UInt64 = 0
        var primary: String?
        var nodes: [Node] = []
        /// In a partitioned cluster: the map and this node's group.
        var partitioning: (map: PartitionMap, group: String)?
        /// The other groups' primaries, as the control plane last read them.
        var groups: [String: GroupPrimary] = [:]
        /// Set while etcd's partition map differs from the one this node started with (or is gone).
        var mapConflict: String?
    }

    /// Another group's primary: its epoch, node id and client address (nil until published).
    public struct GroupPrimary: Sendable, Equatable {
        public var epoch: UInt64
        public var primary: String
        public var address: String?
        /// The machine the primary runs on, if it named one (`serve --machine`).
        public var machine: String? = nil
    }

    /// Where a tenant of another group is sent (its partition, and that group's primary if known).
    struct Elsewhere: Equatable {
        var partition: Int
        var group: String
        var primary: GroupPrimary?
    }

    private let state = Mutex(State())
    /// Refuses the client writes of tenants this node's group does not hold, or is handing over.
    public let writeGate = PartitionWriteGate()

    public init() {}

    /// This node's client address once it listens, and its replication identity.
    func identify(nodeID: String?, address: String, local: @escaping @Sendable () -> (role: NodeRole, epoch: UInt64)?) {
        state.withLock { state in
            state.thisNode = nodeID
            state.thisAddress = address
            state.local = local
        }
    }

    var thisAddress: String? { state.withLock { $0.thisAddress } }

    /// This node serves the tenants of `group`'s partitions in `map` only (a newer version of the map
    /// replaces the one held: see ``PartitionMap/canFollow(_:)``).
    func partition(by map: PartitionMap, group: String) {
        state.withLock { $0.partitioning = (map, group) }
        writeGate.set(map: map, group: group)
    }

    /// The partition map this node serves by, and its group (nil: not partitioned).
    var partitioning: (map: PartitionMap, group: String)? { state.withLock { $0.partitioning } }

    /// The other groups' primaries, read from etcd.
    func update(groups: [String: GroupPrimary]) {
        state.withLock { $0.groups = groups }
    }

    var groupPrimaries: [String: GroupPrimary] { state.withLock { $0.groups } }

    /// Where a tenant is served: here, by another group, or nowhere while the map is in doubt.
    enum TenantRoute: Equatable {
        case here
        case elsewhere(Elsewhere)
        /// etcd's map is not the one this node serves by: serving any tenant could serve it in two groups.
        case refused(String)
    }

    func route(tenant: String) -> TenantRoute {
        state.withLock { state in
            guard let (map, group) = state.partitioning else { return .here }
            if let conflict = state.mapConflict { return .refused(conflict) }
            let partition = map.partition(of: tenant)
            let holder = map.groups[map.assignment[partition]]
            guard holder != group else { return .here }
            return .elsewhere(Elsewhere(partition: partition, group: holder, primary: state.groups[holder]))
        }
    }

    /// What the control plane found when it read the partition map again: nil when it is the map
    /// this node started with.
    var partitionMapConflict: String? {
        get { state.withLock { $0.mapConflict } }
        set { state.withLock { $0.mapConflict = newValue } }
    }

    /// What the control plane last read: the placement's epoch and primary, and the registered nodes.
    func update(epoch: UInt64, primary: String, nodes: [Node]) {
        state.withLock { state in
            state.epoch = epoch
            state.primary = primary
            state.nodes = nodes.sorted { $0.nodeID < $1.nodeID }
        }
    }

    /// Where a write refused here (this node is not the primary) should go: the primary's epoch and
    /// client address, when known.
    func moved() -> (epoch: UInt64, address: String)? {
        state.withLock { state in
            guard let primary = state.primary, primary != state.thisNode,
                let address = state.nodes.first(where: { $0.nodeID == primary })?.address
            else { return nil }
            return (state.epoch, address)
        }
    }

    /// The TOPOLOGY answer: this node as it is now, and the others as the control plane last saw them.
    func json() -> JSONValue {
        state.withLock { state in
            let local = state.local()
            let role = local?.role ?? .primary
            let thisID = state.thisNode ?? "local"
            var nodes = state.nodes.filter { $0.nodeID != thisID }
            nodes.append(Node(nodeID: thisID, address: state.thisAddress, role: role))
            nodes.sort { $0.nodeID < $1.nodeID }
            let primary = role == .primary ? thisID : state.primary.flatMap { $0 == thisID ? nil : $0 }
            var fields: [(String, JSONValue)] = [
                ("partitions", .number(String(state.partitioning?.map.partitions ?? 1))), ("epoch", .number(String(max(state.epoch, local?.epoch ?? 0)))),
                ("primary", primary.map { .string($0) } ?? .null), ("this_node", .string(thisID)),
                ("nodes", .array(nodes.map { node in
                    .object([("node_id", .string(node.nodeID)), ("address", node.address.map { .string($0) } ?? .null), ("role", .string(node.role.name))])
                })),
            ]
            if let (map, group) = state.partitioning {
                fields.append(("group", .string(group)))
                fields.append(("partition_map", map.json))
                fields.append(("groups", .object(map.groups.filter { $0 != group }.map { name in
                    guard let other = state.groups[name] else { return (name, .null) }
                    return (name, .object([
                        ("epoch", .number(String(other.epoch))), ("primary", .string(other.primary)),
                        ("address", other.address.map { .string($0) } ?? .null),
                    ]))
                })))
            }
            return .object(fields)
        }
    }
}
