/// Which replication group holds each tenant of a partitioned cluster (docs/CLUSTER.md,
/// "Partitions"): a tenant belongs to one of `partitions` partitions, by the FNV-1a hash of its id
/// unless `overrides` names its partition, and each partition to one group, a replication group of
/// its own (its own primary, epoch and in-sync replicas).
///
/// The map is fixed once written: moving a partition to another group is not built, so a tenant's
/// group never changes while the cluster runs.
public struct PartitionMap: Sendable, Equatable {
    public static let maximumPartitions = 4096
    public static let maximumGroups = 256
    public static let maximumOverrides = 10_000

    public let partitions: Int
    /// The groups' names (each a cluster name: its keys live under `/learnstore/<group>/`).
    public let groups: [String]
    /// For each partition, the index in `groups` of the group that holds it.
    public let assignment: [Int]
    /// Tenants placed in a partition of the operator's choosing instead of their hash's.
    public let overrides: [String: Int]

    /// A map that spreads the partitions over `groups` in turn (partition p to group p mod count).
    public init(partitions: Int, groups: [String], overrides: [String: Int] = [:]) throws(LearnStoreError) {
        try self.init(partitions: partitions, groups: groups, assignment: (0..<max(0, partitions)).map { $0 % max(1, groups.count) },
                      overrides: overrides)
    }

    public init(partitions: Int, groups: [String], assignment: [Int], overrides: [String: Int]) throws(LearnStoreError) {
        guard (1...Self.maximumPartitions).contains(partitions) else {
            throw LearnStoreError(.validation, "a partition map has 1 to \(Self.maximumPartitions) partitions, not \(partitions)")
        }
        guard (1...Self.maximumGroups).contains(groups.count), Set(groups).count == groups.count,
            groups.allSatisfy(Self.isValidGroupName)
        else {
            throw LearnStoreError(.validation, "a partition map names 1 to \(Self.maximumGroups) distinct groups, each 1-64 of A-Z a-z 0-9 _ - .")
        }
        guard assignment.count == partitions, assignment.allSatisfy({ groups.indices.contains($0) }) else {
            throw LearnStoreError(.validation, "a partition map assigns each of its \(partitions) partitions to one of its groups")
        }
        guard overrides.count <= Self.maximumOverrides,
            overrides.allSatisfy({ CallerIdentity.isValidTenantID($0.key) && (0..<partitions).contains($0.value) })
        else {
            throw LearnStoreError(.validation, "a partition map overrides at most \(Self.maximumOverrides) valid tenant ids, each to one of its partitions")
        }
        self.partitions = partitions
        self.groups = groups
        self.assignment = assignment
        self.overrides = overrides
    }

    public static func isValidGroupName(_ name: String) -> Bool { CallerIdentity.isValidTenantID(name) }

    /// The tenant's partition: its override, else FNV-1a (64-bit) of its id's UTF-8 bytes modulo
    /// `partitions`.
    public func partition(of tenantID: String) -> Int {
        if let partition = overrides[tenantID] { return partition }
        return Int(Self.hash(tenantID) % UInt64(partitions))
    }

    /// The name of the group that holds the tenant.
    public func group(of tenantID: String) -> String { groups[assignment[partition(of: tenantID)]] }

    public static func hash(_ tenantID: String) -> UInt64 { FNV1a.hash(tenantID.utf8) }

    // MARK: JSON, as etcd holds it and TOPOLOGY answers it

    public var json: JSONValue {
        .object([
            ("partitions", .number(String(partitions))),
            ("hash", .string("fnv1a64")),
            ("groups", .array(groups.map { .string($0) })),
            ("assignment", .array(assignment.map { .number(String($0)) })),
            ("overrides", .object(overrides.sorted { $0.key < $1.key }.map { ($0.key, .number(String($0.value))) })),
        ])
    }

    public var encoded: [UInt8] { Array(json.serialized.utf8) }

    /// Reads a map written by ``encoded`` (from etcd or a TOPOLOGY answer: outside input, checked
    /// whole).
    public static func decode(_ value: JSONValue) throws(LearnStoreError) -> PartitionMap {
        guard let partitions = value["partitions"]?.int64Value, value["hash"]?.stringValue == "fnv1a64",
            let groupList = value["groups"]?.arrayValue, let assignmentList = value["assignment"]?.arrayValue,
            groupList.count <= maximumGroups, assignmentList.count <= maximumPartitions
        else { throw LearnStoreError(.protocolViolation, "the partition map is not {partitions, hash: fnv1a64, groups, assignment, overrides}") }
        var groups: [String] = []
        for item in groupList {
            guard let name = item.stringValue else { throw LearnStoreError(.protocolViolation, "the partition map's groups are not names") }
            groups.append(name)
        }
        var assignment: [Int] = []
        for item in assignmentList {
            guard let index = item.int64Value, (0..<Int64(maximumGroups)).contains(index) else {
                throw LearnStoreError(.protocolViolation, "the partition map's assignment is not a list of group indexes")
            }
            assignment.append(Int(index))
        }
        var overrides: [String: Int] = [:]
        if let field = value["overrides"] {
            guard case .object(let members) = field, members.count <= maximumOverrides else {
                throw LearnStoreError(.protocolViolation, "the partition map's overrides are not an object of at most \(maximumOverrides) tenants")
            }
            for (tenant, partition) in members {
                guard let partition = partition.int64Value, (0..<Int64(maximumPartitions)).contains(partition) else {
                    throw LearnStoreError(.protocolViolation, "the partition map's override of \(tenant) is not a partition number")
                }
                overrides[tenant] = Int(partition)
            }
        }
        do {
            return try PartitionMap(partitions: Int(partitions), groups: groups, assignment: assignment, overrides: overrides)
        } catch {
            throw LearnStoreError(.protocolViolation, "the partition map is inconsistent: \(error.message)")
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(LearnStoreError) -> PartitionMap {
        guard bytes.count <= 1 << 20, let value = try? JSONValue.parse(bytes) else {
            throw LearnStoreError(.protocolViolation, "the partition map is not JSON of at most 1 MiB")
        }
        return try decode(value)
    }
}
