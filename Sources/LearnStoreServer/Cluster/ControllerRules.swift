/// The controller's decisions, as pure functions of what it read from etcd and what its checks
/// saw, so each rule is tested without etcd or sockets (``ClusterAgent`` does the I/O).
enum ControllerRules {
    /// How long a primary goes on acknowledging after its last successful lease renewal began: the
    /// lease's TTL less a margin (a sixth of it, at least 500 ms) for the fence to take effect. etcd
    /// cannot let the lease go sooner than its TTL after that renewal (a new etcd leader even re-arms
    /// every lease to its full TTL), so the node stops before anyone could see it expire, and rides
    /// out an etcd election (1 to 2 election timeouts) that begins just before a renewal.
    static func leaseFenceAfter(ttlSeconds: Int) -> Duration {
        let ttl = Int64(max(1, ttlSeconds)) * 1000
        return .milliseconds(ttl - max(500, ttl / 6))
    }

    /// The placement to record: registered nodes become members (at their published address), and a
    /// member that is the primary of a newer epoch than the placement's becomes its primary (a
    /// promotion whose record did not reach etcd). Removed nodes are passed over: one still running
    /// stays out. Equal to `placement` when nothing changes.
    ///
    /// With a replication factor, new nodes join the members only while they number fewer than it, and
    /// one more for each member `away` (its replacement joins before it is removed, so that the members
    /// left stay more than 2*m*), and one more while a spare can spread members that share a machine
    /// (``spreadingSpare(_:registered:replicationFactor:)``); the others wait as spares. Nodes on a
    /// machine that holds no member join first, then the lowest ids. Members the operator is removing
    /// (`leaving`) do not count toward the factor, so a spare joins for them too. A replacement that
    /// is called off (the members are no more than the factor) or whose member became the primary has
    /// its mark lifted; without a factor no member is being replaced.
    static func reconciled(
        _ placement: ClusterPlacement, registered: [String: ClusterNodeEntry], replicationFactor: Int? = nil, away: Set<String> = []
    ) -> ClusterPlacement {
        var next = placement
        let candidates = registered.filter { !placement.removed.contains($0.key) }
        for (id, entry) in candidates where next.members[id] != nil && next.members[id] != entry.replication { next.members[id] = entry.replication }
        let spreading = spreadingSpare(placement, registered: candidates, replicationFactor: replicationFactor) != nil ? 1 : 0
        let limit = replicationFactor.map { $0 + away.intersection(placement.members.keys).subtracting(placement.leaving).count + spreading } ?? Int.max
        var waiting = candidates.filter { next.members[$0.key] == nil }
        while countedMembers(next) < limit, let joining = nextToJoin(waiting, next, registered: registered) {
            next.members[joining] = waiting.removeValue(forKey: joining)?.replication
        }
        let newer = candidates.filter { $0.value.role == .primary && $0.value.epoch > placement.epoch }
        if let newest = newer.max(by: { ($0.value.epoch, $0.key) < ($1.value.epoch, $1.key) }) {
            next.primary = newest.key
            next.epoch = newest.value.epoch
        }
        if replicationFactor.map({ countedMembers(next) <= $0 }) ?? true { next.replacing = [] }
        next.replacing.remove(next.primary)
        return next
    }

    /// The waiting node to make a member next: one whose machine holds no counted member, else any;
    /// the lowest id among equals.
    static func nextToJoin(_ waiting: [String: ClusterNodeEntry], _ placement: ClusterPlacement, registered: [String: ClusterNodeEntry]) -> String? {
        let used = machinesHoldingMembers(placement, registered: registered)
        func shares(_ id: String) -> Int { used.contains(ClusterNodeEntry.failureDomain(of: id, waiting[id])) ? 1 : 0 }
        return waiting.keys.min { (shares($0), $0) < (shares($1), $1) }
    }

    /// Counted members that share their machine with another counted member, by machine: a machine's
    /// loss takes all of them at once (with three members and *m* = 1, two lost together leave no
    /// promotion quorum). Nodes without a machine name are machines of their own.
    static func sharedMachines(_ placement: ClusterPlacement, registered: [String: ClusterNodeEntry]) -> [String: [String]] {
        Dictionary(grouping: countedMemberIDs(placement), by: { ClusterNodeEntry.failureDomain(of: $0, registered[$0]) }).filter { $0.value.count > 1 }
    }

    /// A registered spare on a machine that holds no counted member, while the members are exactly at
    /// the replication factor, all registered, none being replaced, and two of them share a machine:
    /// it joins above the factor, and ``memberToReplace(_:replicationFactor:away:missing:registered:)``
    /// then replaces one of the two (not the primary) by the steps of a replacement. The replaced node
    /// waits as a spare on a machine that now holds a member, so the spreading ends. Nil without a
    /// factor. Never on top of another replacement: each member above the factor raises the answers a
    /// promotion needs, and a spare lost with a member's machine before its key expired would then
    /// count against the promotion as well.
    static func spreadingSpare(_ placement: ClusterPlacement, registered: [String: ClusterNodeEntry], replicationFactor: Int?) -> String? {
        guard let replicationFactor, countedMembers(placement) == replicationFactor, placement.replacing.isEmpty,
            countedMemberIDs(placement).allSatisfy({ registered[$0] != nil }),
            !sharedMachines(placement, registered: registered).isEmpty
        else { return nil }
        let used = machinesHoldingMembers(placement, registered: registered)
        return registered.filter { placement.members[$0.key] == nil && !placement.removed.contains($0.key) }
            .filter { !used.contains(ClusterNodeEntry.failureDomain(of: $0.key, $0.value)) }.keys.min()
    }

    /// The member the controller removes while the members are more than the replication factor (a
    /// spare joined in place of a member away, or to spread members that share a machine): one it is
    /// already replacing, else one `away`, else one `missing` (its key gone, not for long yet), else
    /// one sharing its machine with another member, else the highest id. Never the primary, nor a node
    /// the operator is removing.
    static func memberToReplace(
        _ placement: ClusterPlacement, replicationFactor: Int?, away: Set<String>, missing: Set<String>, registered: [String: ClusterNodeEntry] = [:]
    ) -> String? {
        guard let replicationFactor, countedMembers(placement) > replicationFactor else { return nil }
        let candidates = placement.members.keys.filter { $0 != placement.primary && !placement.leaving.contains($0) }
        let sharing = Set(sharedMachines(placement, registered: registered).values.joined())
        func rank(_ id: String) -> Int {
            placement.replacing.contains(id) ? 0 : away.contains(id) ? 1 : missing.contains(id) ? 2 : sharing.contains(id) ? 3 : 4
        }
        return candidates.min { (rank($0), $1) < (rank($1), $0) }
    }

    /// For each member's replication address, how many other groups' primaries run on its machine
    /// (a partitioned cluster): a promotion chooses, among the members as up to date as the best, one
    /// on the machine running the fewest, so that one machine's loss stops as few groups as it can.
    static func otherPrimaries(
        onMachinesOf placement: ClusterPlacement, registered: [String: ClusterNodeEntry], groups: [String: TopologyBoard.GroupPrimary]
    ) -> [String: Int] {
        var primaries: [String: Int] = [:]
        for machine in groups.values.compactMap(\.machine) { primaries[machine, default: 0] += 1 }
        var byAddress: [String: Int] = [:]
        for (id, address) in placement.members { byAddress[address] = registered[id]?.machine.map { primaries[$0] ?? 0 } ?? 0 }
        return byAddress
    }

    /// The member to hand the primary to so that primaries spread over machines (a partitioned cluster
    /// whose nodes name their machines), or nil: when the primary's machine also runs `k` > 0 other
    /// groups' primaries and a member counted as in sync, registered, runs on a machine with fewer (`j` <
    /// `k`: the move lowers the sum of squares of the machines' primaries), the one with the fewest,
    /// then the lowest id. Of the groups whose primaries share a machine only the one with the greatest
    /// name moves, so two do not leave together for the same machine.
    static func spreadingHandover(
        _ placement: ClusterPlacement, group: String, registered: [String: ClusterNodeEntry], groups: [String: TopologyBoard.GroupPrimary]
    ) -> String? {
        guard let machine = registered[placement.primary]?.machine else { return nil }
        let others = groups.filter { $0.key != group }
        let sharing = others.filter { $0.value.machine == machine }
        guard !sharing.isEmpty, sharing.keys.allSatisfy({ $0 < group }) else { return nil }
        var primaries: [String: Int] = [:]
        for other in others.values { if let machine = other.machine { primaries[machine, default: 0] += 1 } }
        let candidates = placement.acknowledgingMembers.subtracting([placement.primary]).compactMap { id -> (Int, String)? in
            guard let machine = registered[id]?.machine else { return nil }
            return (primaries[machine] ?? 0, id)
        }
        guard let best = candidates.min(by: { $0 < $1 }), best.0 < sharing.count else { return nil }
        return best.1
    }

    /// The ids of the members that count toward the replication factor.
    static func countedMemberIDs(_ placement: ClusterPlacement) -> [String] { placement.members.keys.filter { !placement.leaving.contains($0) } }

    /// The members that count toward the replication factor: all but those the operator is removing.
    static func countedMembers(_ placement: ClusterPlacement) -> Int { countedMemberIDs(placement).count }

    /// The failure domains (machines, or nodes without one) of the counted members.
    static func machinesHoldingMembers(_ placement: ClusterPlacement, registered: [String: ClusterNodeEntry]) -> Set<String> {
        Set(countedMemberIDs(placement).map { ClusterNodeEntry.failureDomain(of: $0, registered[$0]) })
    }

    /// Failed checks of the primary in a row; the primary is replaced once its key has expired or
    /// `threshold` checks in a row failed.
    struct PrimaryWatch: Equatable {
        let threshold: Int
        private(set) var failedChecks = 0

        init(threshold: Int) { self.threshold = max(1, threshold) }

        /// Whether the primary must be replaced now. `keyPresent`: its `nodes/<id>` key is in etcd
        /// (its lease lives); `answeredPrimary`: its STATUS said `primary` (nil: not asked).
        mutating func failed(keyPresent: Bool, answeredPrimary: Bool?) -> Bool {
            guard keyPresent else {
                failedChecks = threshold
                return true
            }
            if answeredPrimary == true {
                failedChecks = 0
                return false
            }
            failedChecks += 1
            return failedChecks >= threshold
        }

        mutating func reset() { failedChecks = 0 }
    }
}
