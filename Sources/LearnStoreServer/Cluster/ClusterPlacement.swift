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

    public init(endpoints: [String]) { self.endpoints = endpoints }

    var prefix: String { "/learnstore/\(name)/" }
    var placementKey: String { prefix + "placement" }
    var controllerKey: String { prefix + "controller" }
    var nodesPrefix: String { prefix + "nodes/" }
    func nodeKey(_ id: String) -> String { nodesPrefix + id }
}

/// `placement`: the epoch and primary of the cluster's one replication group, and its members (node
/// id → replication address). Written by the first node to start, then only by the controller, in
/// transactions guarded by the key's revision and the controller key's.
public struct ClusterPlacement: Sendable, Equatable {
    public var epoch: UInt64
    public var primary: String
    public var members: [String: String]

    public init(epoch: UInt64, primary: String, members: [String: String]) {
        self.epoch = epoch
        self.primary = primary
        self.members = members
    }

    public var encoded: [UInt8] {
        let members = self.members.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.string($0.value)) }
        return Array(JSONValue.object([("epoch", .number(String(epoch))), ("primary", .string(primary)), ("members", .object(members))]).serialized.utf8)
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
        return ClusterPlacement(epoch: UInt64(epoch), primary: primary, members: members)
    }
}

/// `nodes/<id>`, under the node's lease: where it replicates, and its role and epoch as it last saw them.
public struct ClusterNodeEntry: Sendable, Equatable {
    public var replication: String
    public var role: NodeRole
    public var epoch: UInt64
    /// Its client port (`host:port`), once it listens: TOPOLOGY and MOVED point clients there.
    public var client: String?

    public var encoded: [UInt8] {
        var members: [(String, JSONValue)] = [("replication", .string(replication)), ("role", .string(role.name)), ("epoch", .number(String(epoch)))]
        if let client { members.append(("client", .string(client))) }
        return Array(JSONValue.object(members).serialized.utf8)
    }

    public static func decode(_ bytes: [UInt8]) -> ClusterNodeEntry? {
        guard bytes.count <= 64 << 10, let value = try? JSONValue.parse(bytes), let replication = value["replication"]?.stringValue,
            ClusterAddress.isValid(replication), let role = value["role"]?.stringValue.flatMap(NodeRole.init(name:)),
            let epoch = value["epoch"]?.int64Value, epoch >= 0
        else { return nil }
        let client = value["client"]?.stringValue.flatMap { ClusterAddress.isValid($0) ? $0 : nil }
        return ClusterNodeEntry(replication: replication, role: role, epoch: UInt64(epoch), client: client)
    }
}
