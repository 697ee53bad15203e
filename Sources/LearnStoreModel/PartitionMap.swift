/// Which replication group holds each tenant of a partitioned cluster (docs/CLUSTER.md,
/// "Partitions"): a tenant belongs to one of `partitions` partitions, by the FNV-1a hash of its id
/// unless `overrides` names its partition, and each partition to one group, a replication group of
/// its own (its own primary, epoch and in-sync replicas).
///
/// The map changes only by steps that keep every tenant in exactly one writable group: a group is
/// added (holding nothing yet), a move of a partition starts (the group it goes to copies it while
/// its group still takes its writes), the move is fenced (its group stops taking them), and a fenced
/// move completes (the partition belongs to its new group), or a move is called off. Each step raises
/// `version` (docs/CLUSTER.md, "Moving a partition").
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
    /// Raised by every change of the map; a node never goes back to a lower one.
    public private(set) var version: UInt64 = 1
    /// Partitions on their way to another group, by partition.
    public private(set) var moves: [Int: PartitionMove] = [:]

    /// A map that spreads the partitions over `groups` in turn (partition p to group p mod count).
    public init(partitions: Int, groups: [String], overrides: [String: Int] = [:]) throws(LearnStoreError) {
        try self.init(partitions: partitions, groups: groups, assignment: (0..<max(0, partitions)).map { $0 % max(1, groups.count) },
                      overrides: overrides)
    }

    public init(
        partitions: Int, groups: [String], assignment: [Int], overrides: [String: Int], version: UInt64 = 1, moves: [Int: PartitionMove] = [:]
    ) throws(LearnStoreError) {
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
        guard version >= 1, version <= Self.maximumVersion else {
            throw LearnStoreError(.validation, "a partition map's version is 1 to \(Self.maximumVersion), not \(version)")
        }
        for (partition, move) in moves {
            guard (0..<partitions).contains(partition), groups.indices.contains(move.to), move.to != assignment[partition],
                (1...version).contains(move.id)
            else {
                throw LearnStoreError(.validation, "a partition map moves partitions it has to another of its groups, each move numbered by a version it has had")
            }
        }
        self.partitions = partitions
        self.groups = groups
        self.assignment = assignment
        self.overrides = overrides
        self.version = version
        self.moves = moves
    }

    /// Far beyond any real count of changes, and exact in a JSON number.
    public static let maximumVersion: UInt64 = 1 << 52

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

    /// The group that holds the partition.
    public func holder(of partition: Int) -> String { groups[assignment[partition]] }

    // MARK: changes (each a new version)

    /// The map with `group` added, holding no partition yet.
    public func addingGroup(_ group: String) throws(LearnStoreError) -> PartitionMap {
        guard !groups.contains(group) else { throw LearnStoreError(.conflict, "the map already has group \(group)") }
        return try PartitionMap(partitions: partitions, groups: groups + [group], assignment: assignment, overrides: overrides,
                                version: version + 1, moves: moves)
    }

    /// The map with a move of `partition` to `group` started: `group`'s primary copies its tenants
    /// while the group holding it still takes their writes.
    public func startingMove(of partition: Int, to group: String) throws(LearnStoreError) -> PartitionMap {
        guard (0..<partitions).contains(partition) else { throw LearnStoreError(.validation, "the map has partitions 0 to \(partitions - 1), not \(partition)") }
        guard let target = groups.firstIndex(of: group) else { throw LearnStoreError(.validation, "the map has no group \(group) (add it first)") }
        guard moves[partition] == nil else { throw LearnStoreError(.conflict, "partition \(partition) is already moving to \(groups[moves[partition]!.to])") }
        guard assignment[partition] != target else { throw LearnStoreError(.conflict, "partition \(partition) is already in group \(group)") }
        var started = moves
        started[partition] = PartitionMove(to: target, id: version + 1, fenced: false)
        return try PartitionMap(partitions: partitions, groups: groups, assignment: assignment, overrides: overrides, version: version + 1, moves: started)
    }

    /// The map with the move `id` of `partition` fenced: the group holding the partition stops taking
    /// its writes, so the group it goes to can copy what changed since its first copy. The same map
    /// when it is fenced already.
    public func fencingMove(of partition: Int, id: UInt64) throws(LearnStoreError) -> PartitionMap {
        guard var move = moves[partition], move.id == id else { throw LearnStoreError(.conflict, "partition \(partition) has no move \(id) in progress") }
        guard !move.fenced else { return self }
        move.fenced = true
        var fenced = moves
        fenced[partition] = move
        return try PartitionMap(partitions: partitions, groups: groups, assignment: assignment, overrides: overrides, version: version + 1, moves: fenced)
    }

    /// The map with the move `id` of `partition` no longer fenced: its group takes its writes again,
    /// so that a new attempt at the copy (the one that fenced it failed: what changed since its first
    /// copy is known only to the attempt that made it) copies while they go on, instead of with them
    /// stopped. The same map when it is not fenced.
    public func unfencingMove(of partition: Int, id: UInt64) throws(LearnStoreError) -> PartitionMap {
        guard var move = moves[partition], move.id == id else { throw LearnStoreError(.conflict, "partition \(partition) has no move \(id) in progress") }
        guard move.fenced else { return self }
        move.fenced = false
        var unfenced = moves
        unfenced[partition] = move
        return try PartitionMap(partitions: partitions, groups: groups, assignment: assignment, overrides: overrides, version: version + 1, moves: unfenced)
    }

    /// The map with the move `id` of `partition` done: the partition belongs to the group it went to.
    /// Only a fenced move completes: until then the group it leaves may still take its writes.
    public func completingMove(of partition: Int, id: UInt64) throws(LearnStoreError) -> PartitionMap {
        guard let move = moves[partition], move.id == id else { throw LearnStoreError(.conflict, "partition \(partition) has no move \(id) in progress") }
        guard move.fenced else { throw LearnStoreError(.conflict, "move \(id) of partition \(partition) is not fenced: its group may still take its writes") }
        var assigned = assignment
        assigned[partition] = move.to
        var left = moves
        left[partition] = nil
        return try PartitionMap(partitions: partitions, groups: groups, assignment: assigned, overrides: overrides, version: version + 1, moves: left)
    }

    /// The map with the move of `partition` called off: its group takes its writes again.
    public func cancellingMove(of partition: Int) throws(LearnStoreError) -> PartitionMap {
        guard moves[partition] != nil else { throw LearnStoreError(.conflict, "partition \(partition) is not moving") }
        var left = moves
        left[partition] = nil
        return try PartitionMap(partitions: partitions, groups: groups, assignment: assignment, overrides: overrides, version: version + 1, moves: left)
    }

    /// Moves that leave every group holding ⌊partitions ÷ groups⌋ or one more partitions, as few as
    /// that takes: partitions leave the groups holding the most (their highest-numbered first) for the
    /// groups holding the fewest. Partitions already moving count where they are going, and are not
    /// moved again.
    public func rebalancingMoves() -> [(partition: Int, to: String)] {
        var held = Array(repeating: [Int](), count: groups.count)
        for partition in 0..<partitions { held[moves[partition]?.to ?? assignment[partition]].append(partition) }
        let floor = partitions / groups.count
        let ceiling = floor + (partitions % groups.count == 0 ? 0 : 1)
        var planned: [(partition: Int, to: String)] = []
        while true {
            // The group holding the most (the first such), and the one holding the fewest.
            guard let most = held.indices.max(by: { held[$0].count < held[$1].count }),
                let fewest = held.indices.min(by: { held[$0].count < held[$1].count }),
                held[most].count > ceiling || held[fewest].count < floor
            else { return planned }
            guard let partition = held[most].filter({ moves[$0] == nil }).max() else { return planned }
            held[most].removeAll { $0 == partition }
            held[fewest].append(partition)
            planned.append((partition, groups[fewest]))
        }
    }

    /// Moves that even out the groups' sizes (`sizes`: partition → records; a partition missing counts
    /// 0): each gives the group holding the fewest the partition, from any other group, that lowers
    /// the sum of the squares of the groups' totals the most, while one lowers it (so the plan ends), at
    /// most `maximumMoves`. Partitions already moving count where they are going and are not moved
    /// again, nor is one moved twice. Only the groups in `targets` (nil: all) receive partitions.
    public func rebalancingMoves(bySize sizes: [Int: Int], maximumMoves: Int? = nil, targets: Set<String>? = nil) -> [(partition: Int, to: String)] {
        var holder = (0..<partitions).map { moves[$0]?.to ?? assignment[$0] }
        func size(_ partition: Int) -> Int { min(max(0, sizes[partition] ?? 0), 1 << 40) }
        var totals = Array(repeating: 0, count: groups.count)
        for partition in 0..<partitions { totals[holder[partition]] += size(partition) }
        var planned: [(partition: Int, to: String)] = []
        var moved = Set<Int>()
        while planned.count < (maximumMoves ?? partitions) {
            guard let fewest = totals.indices.filter({ targets?.contains(groups[$0]) ?? true }).min(by: { totals[$0] < totals[$1] }) else { break }
            // Moving s from group g to the fewest changes the sum of squares by 2s(s + T_fewest − T_g).
            func change(_ partition: Int) -> Int { 2 * size(partition) * (size(partition) + totals[fewest] - totals[holder[partition]]) }
            let candidates = (0..<partitions).filter { holder[$0] != fewest && moves[$0] == nil && !moved.contains($0) && size($0) > 0 && change($0) < 0 }
            guard let partition = candidates.min(by: { change($0) < change($1) }) else { break }
            totals[holder[partition]] -= size(partition)
            totals[fewest] += size(partition)
            holder[partition] = fewest
            moved.insert(partition)
            planned.append((partition, groups[fewest]))
        }
        return planned
    }

    /// Whether this map can follow `earlier` (the one a node holds): the same partitions and overrides,
    /// the same groups first, and a higher version, or the very same map. A map written behind the
    /// tools' back fails this, and a node stops serving rather than serve a tenant in two groups.
    public func canFollow(_ earlier: PartitionMap) -> Bool {
        if self == earlier { return true }
        return version > earlier.version && partitions == earlier.partitions && overrides == earlier.overrides
            && groups.count >= earlier.groups.count && Array(groups.prefix(earlier.groups.count)) == earlier.groups
    }

    // MARK: JSON, as etcd holds it and TOPOLOGY answers it

    public var json: JSONValue {
        .object([
            ("partitions", .number(String(partitions))),
            ("hash", .string("fnv1a64")),
            ("groups", .array(groups.map { .string($0) })),
            ("assignment", .array(assignment.map { .number(String($0)) })),
            ("overrides", .object(overrides.sorted { $0.key < $1.key }.map { ($0.key, .number(String($0.value))) })),
            ("version", .number(String(version))),
            ("moves", .object(moves.sorted { $0.key < $1.key }.map { partition, move in
                (String(partition), .object([("to", .string(groups[move.to])), ("id", .number(String(move.id))), ("fenced", .bool(move.fenced))]))
            })),
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
        var version: UInt64 = 1
        if let field = value["version"] {
            guard let number = field.int64Value, (1...Int64(maximumVersion)).contains(number) else {
                throw LearnStoreError(.protocolViolation, "the partition map's version is not a number from 1 to \(maximumVersion)")
            }
            version = UInt64(number)
        }
        var moves: [Int: PartitionMove] = [:]
        if let field = value["moves"] {
            guard case .object(let members) = field, members.count <= maximumPartitions else {
                throw LearnStoreError(.protocolViolation, "the partition map's moves are not an object of at most \(maximumPartitions) partitions")
            }
            for (key, move) in members {
                guard let partition = Int(key), (0..<maximumPartitions).contains(partition), let target = move["to"]?.stringValue,
                    let to = groups.firstIndex(of: target), let id = move["id"]?.int64Value, id >= 1
                else { throw LearnStoreError(.protocolViolation, "the partition map's move of \(key) is not {to: group, id, fenced}") }
                // A move without the field is fenced: the group it leaves takes none of its writes.
                var fenced = true
                if let field = move["fenced"] {
                    guard case .bool(let value) = field else {
                        throw LearnStoreError(.protocolViolation, "the partition map's move of \(key) has a \"fenced\" that is not true or false")
                    }
                    fenced = value
                }
                moves[partition] = PartitionMove(to: to, id: UInt64(id), fenced: fenced)
            }
        }
        do {
            return try PartitionMap(partitions: Int(partitions), groups: groups, assignment: assignment, overrides: overrides,
                                    version: version, moves: moves)
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

/// A partition on its way to another group: the group (an index in the map's `groups`), the map
/// version that started the move, which names it (a move called off and started again is another
/// move), and whether it is fenced (the group it leaves takes none of its writes any more).
public struct PartitionMove: Sendable, Hashable {
    public var to: Int
    public var id: UInt64
    public var fenced: Bool

    public init(to: Int, id: UInt64, fenced: Bool = true) {
        self.to = to
        self.id = id
        self.fenced = fenced
    }
}
