/// The balancer's decision, a pure function of the map, the groups' published figures, the policy and
/// the time (docs/CLUSTER.md, "Balancing"): at most one move at a time, none while a group's figures
/// are missing or old, none within the cool-down, none while every group is within the tolerance of
/// the mean, and only a move that narrows the spread (so two moves never undo each other on steady
/// figures).
public enum PartitionBalancer {
    /// Figures older than this are not acted on: their group's primary may be down.
    public static let staleAfterMilliseconds: Int64 = 30_000

    public enum Decision: Equatable, Sendable {
        /// Start moving `partition` to `to`; each group's total before and after.
        case move(partition: Int, to: String, before: [String: Int], after: [String: Int])
        /// Nothing to do now, and why.
        case wait(String)
    }

    public static func decide(map: PartitionMap, figures: [String: PartitionFigures], policy: BalancerPolicy, now: Int64) -> Decision {
        if let (partition, move) = map.moves.min(by: { $0.key < $1.key }) {
            return .wait("partition \(partition) is moving to \(map.groups[move.to]); one move at a time")
        }
        if let last = policy.lastMove {
            let remaining = Int64(policy.cooldownSeconds) * 1000 - (now - last.at)
            if remaining > 0 { return .wait("cooling down for \((remaining + 999) / 1000) s more after moving partition \(last.partition) to \(last.to)") }
        }
        var holding: [String: [Int]] = [:]
        for partition in 0..<map.partitions { holding[map.holder(of: partition), default: []].append(partition) }
        var weights: [Int: Int] = [:]
        var fresh: Set<String> = []
        for group in map.groups {
            let held = holding[group] ?? []
            guard let published = figures[group], abs(now - published.at) <= staleAfterMilliseconds else {
                if let first = held.first {
                    return .wait(figures[group] == nil
                        ? "group \(group) (holding partition \(first)) has published no figures: is its primary running?"
                        : "group \(group)'s figures are \(abs(now - figures[group]!.at) / 1000) s old: is its primary running?")
                }
                continue
            }
            let measured = published.weights(by: policy.measure)
            if policy.measure == .load, let unmeasured = held.first(where: { measured[$0] == nil }) {
                return .wait("group \(group) is still measuring the load of partition \(unmeasured) (for a minute after it arrived or the primary started)")
            }
            fresh.insert(group)
            for partition in held { weights[partition] = min(max(0, measured[partition] ?? 0), 1 << 40) }
        }
        let considered = map.groups.filter { fresh.contains($0) }
        guard considered.count >= 2 else { return .wait("fewer than two groups publish figures") }
        let before = totals(map, weights, considered, moved: nil)
        let mean = before.values.reduce(0, +) / considered.count
        guard mean >= policy.minimumMean else {
            return .wait("the groups' mean of \(mean) \(unit(policy.measure)) is below the policy's minimum of \(policy.minimumMean)")
        }
        let allowance = mean * policy.tolerancePercent / 100
        guard before.values.contains(where: { abs($0 - mean) > allowance }) else {
            return .wait("every group is within \(policy.tolerancePercent) % of the mean of \(mean) \(unit(policy.measure))")
        }
        guard let (partition, to) = map.rebalancingMoves(bySize: weights, maximumMoves: 1, targets: fresh).first else {
            return .wait("no single move narrows the spread")
        }
        return .move(partition: partition, to: to, before: before, after: totals(map, weights, considered, moved: (partition, to)))
    }

    private static func totals(_ map: PartitionMap, _ weights: [Int: Int], _ groups: [String], moved: (Int, String)?) -> [String: Int] {
        var totals = Dictionary(uniqueKeysWithValues: groups.map { ($0, 0) })
        for (partition, weight) in weights {
            var holder = map.holder(of: partition)
            if let (movedPartition, to) = moved, movedPartition == partition { holder = to }
            totals[holder, default: 0] += weight
        }
        return totals
    }

    static func unit(_ measure: PartitionFigures.Measure) -> String {
        switch measure {
        case .records: "records"
        case .load: "requests/s"
        }
    }
}
