import LearnStoreEngine
import LearnStoreModel

/// What the balancer's runner remembers between its turns: the kind of reason it last waited for,
/// so the log says it once.
struct BalancerRunState {
    var lastReason: String?
}

/// The balancer's I/O shell (``PartitionBalancer`` decides): on the primary of the map's first
/// group, every figures interval, it reads the policy, the map and every group's figures from etcd,
/// and starts the move decided on in one transaction that also records it in the policy, guarded by
/// both keys' revisions, so that a move the operator started meanwhile, or another runner's, makes it
/// decide again.
extension PartitionMover {
    func balanceIfRunner(_ state: inout BalancerRunState) async throws(LearnStoreError) {
        guard node.role == .primary, wal() != nil, topology.writeGate.mapIsCurrent, let (current, group) = topology.partitioning,
            current.groups.first == group, let mapName = configuration.partitionMapName
        else { return }
        let policyKey = ClusterConfiguration.balancerKey(mapName)
        let mapKey = ClusterConfiguration.partitionMapKey(mapName)
        guard let storedPolicy = try await etcd.get(policyKey) else {
            state.lastReason = nil
            return
        }
        let policy = try BalancerPolicy.decode(storedPolicy.value)
        guard let storedMap = try await etcd.get(mapKey) else { return }
        let map = try PartitionMap.decode(storedMap.value)
        var figures: [String: PartitionFigures] = [:]
        for name in map.groups {
            if let stored = try await etcd.get(ClusterConfiguration.partitionFiguresKey(ofGroup: name)) { figures[name] = try? PartitionFigures.decode(stored.value) }
        }
        let now = SystemClock().now().milliseconds
        switch PartitionBalancer.decide(map: map, figures: figures, policy: policy, now: now) {
        case .wait(let reason):
            // Said once per kind of reason: its figures change every turn.
            let kind = reason.filter { !$0.isNumber }
            if kind != state.lastReason, !reason.hasPrefix("cooling down") {
                logger.info("balancer: waiting: \(reason)")
            }
            state.lastReason = kind
        case .move(let partition, let to, let before, let after):
            state.lastReason = nil
            let started = try map.startingMove(of: partition, to: to)
            var recorded = policy
            recorded.lastMove = .init(partition: partition, to: to, at: now)
            guard try await etcd.transaction(
                if: [.modRevision(mapKey, storedMap.modRevision), .modRevision(policyKey, storedPolicy.modRevision)],
                put: [(mapKey, started.encoded, 0), (policyKey, recorded.encoded, 0)])
            else { return }
            metrics?.balancerMovesStarted.increment()
            func describe(_ totals: [String: Int]) -> String { totals.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") }
            logger.notice("balancer: started a move", metadata: [
                "partition": "\(partition)", "from": "\(map.holder(of: partition))", "to": "\(to)", "by": "\(policy.measure.rawValue)",
                "before": "\(describe(before))", "after": "\(describe(after))", "move": "\(started.moves[partition]?.id ?? 0)",
            ])
        }
    }
}
