import LearnStoreModel

/// `host:port` with a port in 1 ... 65535.
public enum ClusterAddress {
    public static func isValid(_ address: String) -> Bool {
        guard address.utf8.count <= 261, let colon = address.lastIndex(of: ":"), colon != address.startIndex,
            let port = Int(address[address.index(after: colon)...])
        else { return false }
        return (1...65535).contains(port)
    }
}

/// How a node reaches etcd and names its cluster there (docs/CLUSTER.md).
public struct ClusterConfiguration: Sendable {
    /// etcd's client URLs (`http://host:port`).
    public var endpoints: [String]
    /// Keys live under `/learnstore/<name>/`.
    public var name = "learnstore"
    /// The node's lease; a primary that cannot renew it for this less a margin stops acknowledging
    /// (``ControllerRules/leaseFenceAfter(ttlSeconds:)``).
    public var leaseSeconds = 3
    /// How often the controller checks the primary and the membership.
    public var checkMilliseconds: Int64 = 100
    /// Failed checks in a row after which the controller replaces the primary.
    public var failedChecksBeforeFailover = 3
    /// The members the controller keeps (nil: every registered node is one). Nodes beyond it wait as
    /// spares; one takes the place of a member whose key has been gone for `replaceAfterMilliseconds`.
    public var replicationFactor: Int?
    public var replaceAfterMilliseconds: Int64 = 30_000
    /// The machine this node runs on (`serve --machine`), published in its `nodes/<id>` key.
    public var machine: String?
    /// The name of the partition map this node's group (`name`) is part of; nil: the cluster is one
    /// group holding every tenant.
    public var partitionMapName: String?
    /// The map itself, read from etcd when the node starts.
    public var partitionMap: PartitionMap?

    public init(endpoints: [String]) { self.endpoints = endpoints }

    /// Where the partition map `name` is kept (outside every group's prefix).
    public static func partitionMapKey(_ name: String) -> String { "/learnstore-partition-maps/\(name)" }

    /// The keys of the group `name`.
    static func prefix(ofGroup name: String) -> String { "/learnstore/\(name)/" }

    /// Where the group's primary publishes its partitions' records and load (``PartitionFigures``).
    public static func partitionFiguresKey(ofGroup name: String) -> String { prefix(ofGroup: name) + "partition-figures" }

    /// Where the balancer's policy for the partition map `name` is kept (``BalancerPolicy``); no key:
    /// no balancer.
    public static func balancerKey(_ name: String) -> String { "/learnstore-balancers/\(name)" }

    var prefix: String { Self.prefix(ofGroup: name) }
    var placementKey: String { prefix + "placement" }
    var controllerKey: String { prefix + "controller" }
    var nodesPrefix: String { prefix + "nodes/" }
    func nodeKey(_ id: String) -> String { nodesPrefix + id }
}

/// `placement`: the epoch and primary of the cluster's one replication group, and its members (node
/// id → replication address). Written by the first node to start, then only by the controller and
/// the operator's membership commands, in transactions guarded by the key's revision (the
/// controller's also by the controller key's).
public struct ClusterPlacement: Sendable, Equatable {
    public var epoch: UInt64
    public var primary: String
    public var members: [String: String]
    /// Members on their way out (`learnstore cluster remove-node`): they still answer promotions, but
    /// no primary counts them as in sync.
    public var leaving: Set<String>
    /// Members the controller is replacing by a spare (a replication factor): like `leaving`, but they
    /// are not listed as removed afterwards, and the mark is lifted if the replacement is called off.
    public var replacing: Set<String>
    /// Nodes removed for good: the controller does not make them members again while they stay
    /// registered (`learnstore cluster readmit-node` lifts it).
    public var removed: Set<String>

    public init(
        epoch: UInt64, primary: String, members: [String: String], leaving: Set<String> = [], replacing: Set<String> = [], removed: Set<String> = []
    ) {
        self.epoch = epoch
        self.primary = primary
        self.members = members
        self.leaving = leaving
        self.replacing = replacing
        self.removed = removed
    }

    /// The members a primary may count as in sync.
    public var acknowledgingMembers: Set<String> { Set(members.keys).subtracting(leaving).subtracting(replacing) }

    public var encoded: [UInt8] {
        let members = self.members.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) }
        var fields: [(String, JSONValue)] = [("epoch", .number(String(epoch))), ("primary", .string(primary)), ("members", .object(members))]
        if !leaving.isEmpty { fields.append(("leaving", .array(leaving.sorted().map { .string($0) }))) }
        if !replacing.isEmpty { fields.append(("replacing", .array(replacing.sorted().map { .string($0) }))) }
        if !removed.isEmpty { fields.append(("removed", .array(removed.sorted().map { .string($0) }))) }
        return Array(JSONValue.object(fields).serialized.utf8)
    }

    public static func decode(_ bytes: [UInt8]) throws(LearnStoreError) -> ClusterPlacement {
        guard bytes.count <= 1 << 20, let value = try? JSONValue.parse(bytes), let epoch = value["epoch"]?.int64Value, epoch >= 0,
            let primary = value["primary"]?.stringValue, case .object(let list)? = value["members"]
        else { throw LearnStoreError(.protocolViolation, "the cluster's placement in etcd is not {epoch, primary, members}") }
        var members: [String: String] = [:]
        for (id, address) in list {
            guard NodeCredential.isValidNodeID(id), let address = address.stringValue, ClusterAddress.isValid(address) else {
                throw LearnStoreError(.protocolViolation, "the cluster's placement names an invalid member")
            }
            members[id] = address
        }
        guard members[primary] != nil else { throw LearnStoreError(.protocolViolation, "the placement's primary \(primary) is not a member") }
        func ids(_ name: String) throws(LearnStoreError) -> Set<String> {
            guard let field = value[name] else { return [] }
            guard case .array(let items) = field, items.count <= 4096 else {
                throw LearnStoreError(.protocolViolation, "the placement's \(name) is not a list of node ids")
            }
            var ids: Set<String> = []
            for item in items {
                guard let id = item.stringValue, NodeCredential.isValidNodeID(id) else {
                    throw LearnStoreError(.protocolViolation, "the placement's \(name) names an invalid node id")
                }
                ids.insert(id)
            }
            return ids
        }
        let leaving = try ids("leaving")
        let replacing = try ids("replacing")
        let removed = try ids("removed")
        guard leaving.isSubset(of: members.keys), replacing.isSubset(of: members.keys), removed.isDisjoint(with: members.keys) else {
            throw LearnStoreError(.protocolViolation, "the placement's leaving and replacing nodes must be members, and its removed nodes not members")
        }
        return ClusterPlacement(epoch: UInt64(epoch), primary: primary, members: members, leaving: leaving, replacing: replacing, removed: removed)
    }
}

/// `nodes/<id>`, under the node's lease: where it replicates, and its role and epoch as it last saw them.
public struct ClusterNodeEntry: Sendable, Equatable {
    public var replication: String
    public var role: NodeRole
    public var epoch: UInt64
    /// Its client port (`host:port`), once it listens: TOPOLOGY and MOVED point clients there.
    public var client: String?
    /// The machine it runs on (`serve --machine`): nodes on one machine are lost together, so the
    /// controller keeps a group's members on different machines where it can. Nil: the node counts
    /// as a machine of its own.
    public var machine: String?

    public init(replication: String, role: NodeRole, epoch: UInt64, client: String? = nil, machine: String? = nil) {
        self.replication = replication
        self.role = role
        self.epoch = epoch
        self.client = client
        self.machine = machine
    }

    public var encoded: [UInt8] {
        var members: [(String, JSONValue)] = [("replication", .string(replication)), ("role", .string(role.name)), ("epoch", .number(String(epoch)))]
        if let client { members.append(("client", .string(client))) }
        if let machine { members.append(("machine", .string(machine))) }
        return Array(JSONValue.object(members).serialized.utf8)
    }

    /// The failure domain of node `id`: its machine, or the node alone when it named none.
    static func failureDomain(of id: String, _ entry: ClusterNodeEntry?) -> String {
        entry?.machine.map { "machine " + $0 } ?? "node " + id
    }

    public static func decode(_ bytes: [UInt8]) -> ClusterNodeEntry? {
        guard bytes.count <= 64 << 10, let value = try? JSONValue.parse(bytes), let replication = value["replication"]?.stringValue,
            ClusterAddress.isValid(replication), let role = value["role"]?.stringValue.flatMap(NodeRole.init(name:)),
            let epoch = value["epoch"]?.int64Value, epoch >= 0
        else { return nil }
        let client = value["client"]?.stringValue.flatMap { ClusterAddress.isValid($0) ? $0 : nil }
        // A machine name that is not one counts as none: the node is then a failure domain of its own.
        let machine = value["machine"]?.stringValue.flatMap { NodeCredential.isValidNodeID($0) ? $0 : nil }
        return ClusterNodeEntry(replication: replication, role: role, epoch: UInt64(epoch), client: client, machine: machine)
    }
}
