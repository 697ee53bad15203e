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
    /// left stay more than 2*m*); the others wait as spares, lowest ids joining first.
    static func reconciled(
        _ placement: ClusterPlacement, registered: [String: ClusterNodeEntry], replicationFactor: Int? = nil, away: Set<String> = []
    ) -> ClusterPlacement {
        var next = placement
        let candidates = registered.filter { !placement.removed.contains($0.key) }
        for (id, entry) in candidates where next.members[id] != nil && next.members[id] != entry.replication { next.members[id] = entry.replication }
        let limit = replicationFactor.map { $0 + away.intersection(placement.members.keys).count } ?? Int.max
        for (id, entry) in candidates.sorted(by: { $0.key < $1.key }) where next.members[id] == nil && next.members.count < limit {
            next.members[id] = entry.replication
        }
        let newer = candidates.filter { $0.value.role == .primary && $0.value.epoch > placement.epoch }
        if let newest = newer.max(by: { ($0.value.epoch, $0.key) < ($1.value.epoch, $1.key) }) {
            next.primary = newest.key
            next.epoch = newest.value.epoch
        }
        return next
    }

    /// The member the controller removes once a spare has joined in its place (the members are more
    /// than the replication factor): one `away` that is not the primary, one already leaving first.
    static func memberToReplace(_ placement: ClusterPlacement, replicationFactor: Int?, away: Set<String>) -> String? {
        guard let replicationFactor, placement.members.count > replicationFactor else { return nil }
        let candidates = away.filter { placement.members[$0] != nil && $0 != placement.primary }
        return candidates.sorted { (placement.leaving.contains($0) ? 0 : 1, $0) < (placement.leaving.contains($1) ? 0 : 1, $1) }.first
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
