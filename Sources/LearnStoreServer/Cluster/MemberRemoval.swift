import LearnStoreModel
import NIOCore

/// Removing a member (`learnstore cluster remove-node`, or the controller replacing one by a spare;
/// docs/CLUSTER.md), decided from the placement and the members' STATUS documents. A plain edit of the
/// members would not be safe: writes acknowledged while the node was an in-sync replica may be on no
/// other member yet, a primary whose list of members predates the edit would go on counting it, and a
/// promotion under way counts it among the nodes that promised. So the node is first marked *leaving*
/// or *replacing* (still a member for promotions, no longer counted as in sync), and dropped only once
/// - the primary of the placement's epoch no longer counts it and has `m` other replicas in sync (each
///   holds every write acknowledged so far);
/// - all but `m` of the members answer without having promised a newer epoch: a promotion needs all
///   but `m` promises, so any promotion still to come is promised by one of them after the mark, and
///   its primary reads the members after its promotion (``ClusterAgent``), mark included;
/// - the members left are more than `2m`, so that the promotion quorums of the old and new member
///   lists (all but `m` of each) share a node.
enum MemberRemoval {
    enum Step: Equatable {
        /// Record the node as `leaving` (or `replacing`): no primary counts it from then on.
        case mark(ClusterPlacement)
        /// Drop it from the members and record it as removed.
        case remove(ClusterPlacement)
        /// Not yet, and why.
        case wait(String)
        /// Not as things stand, and what to do.
        case refuse(String)
        /// It is removed.
        case done
    }

    enum Purpose {
        /// The operator's: the node is marked `leaving`, then listed as `removed`.
        case removal
        /// The controller's, once a spare joined in the node's place: it is marked `replacing`, and may
        /// come back as a spare.
        case replacement
    }

    /// The next step. `statuses`: each member's STATUS document by node id (missing: no answer).
    /// `spares`: registered nodes that are neither members nor removed (with a replication factor, the
    /// controller lets one join in place of a node marked leaving).
    static func next(
        _ placement: ClusterPlacement, removing node: String, statuses: [String: JSONValue], purpose: Purpose = .removal, spares: Int = 0
    ) -> Step {
        if placement.members[node] == nil && (placement.removed.contains(node) || purpose == .replacement) { return .done }
        guard placement.members[node] != nil else { return .refuse("\(node) is not a member of the cluster (nor removed)") }
        guard node != placement.primary else {
            return .refuse("\(node) is the primary: stop it (the controller promotes another member), then remove it")
        }
        let primary = placement.primary
        guard let primaryStatus = statuses[primary] else { return .wait("the primary \(primary) does not answer") }
        guard let reported = primaryStatus["minimum_in_sync"]?.int64Value, (0...64).contains(reported) else {
            return .wait("\(primary) does not report itself as a primary (a failover may be under way)")
        }
        let m = Int(reported)
        let remaining = placement.members.count - 1
        let isMarked = placement.leaving.contains(node) || placement.replacing.contains(node)
        guard remaining > 2 * m || spares > 0 && purpose == .removal else {
            return .refuse(
                "removing \(node) would leave \(remaining) members, too few to fail over with \(m) in-sync replicas (more than \(2 * m) are needed): start a replacement node first, then remove \(node)")
        }
        guard isMarked else {
            var next = placement
            switch purpose {
            case .removal: next.leaving.insert(node)
            case .replacement: next.replacing.insert(node)
            }
            return .mark(next)
        }
        guard remaining > 2 * m else { return .wait("waiting for a spare to join the members in place of \(node)") }
        guard primaryStatus["role"]?.stringValue == NodeRole.primary.name, primaryStatus["epoch"]?.int64Value == Int64(clamping: placement.epoch) else {
            return .wait("\(primary) is not the primary of epoch \(placement.epoch) (a failover may be under way)")
        }
        guard case .array(let members)? = primaryStatus["members"], !members.contains(.string(node)) else {
            return .wait("\(primary) still counts \(node) as a member")
        }
        let inSync = (primaryStatus["in_sync"]?.arrayValue ?? []).compactMap(\.stringValue).filter { $0 != node }
        guard inSync.count >= m else {
            return .wait("\(primary) has \(inSync.count) in-sync replicas besides \(node); \(m) needed")
        }
        let unpromised = placement.members.keys.filter { id in
            guard let status = statuses[id], let epoch = status["epoch"]?.int64Value, let promised = status["promised"]?.int64Value else { return false }
            return max(epoch, promised) <= Int64(clamping: placement.epoch)
        }
        guard unpromised.count >= placement.members.count - m else {
            return .wait(
                "\(unpromised.count) of \(placement.members.count) members answer without a promise of an epoch after \(placement.epoch); \(placement.members.count - m) must")
        }
        var next = placement
        next.members[node] = nil
        next.leaving.remove(node)
        next.replacing.remove(node)
        if purpose == .removal { next.removed.insert(node) }
        return .remove(next)
    }
}

/// The I/O of a removal: one attempt reads the placement and the members' statuses and takes
/// ``MemberRemoval``'s next step in a transaction guarded by the placement's revision. The command
/// repeats attempts until one reports the node removed.
struct MemberRemovalRun {
    let configuration: ClusterConfiguration
    let etcd: any ControlPlaneStore
    let peers: any PromotionTransport
    let node: String

    enum Progress: Equatable {
        case removed
        case waiting(String)
    }

    func attempt() async throws(LearnStoreError) -> Progress {
        let (_, keys) = try await etcd.range(prefix: configuration.prefix)
        guard let kv = keys.first(where: { $0.key == configuration.placementKey }) else {
            throw LearnStoreError(.notFound, "etcd holds no placement for this cluster")
        }
        let placement = try ClusterPlacement.decode(kv.value)
        let registered = keys.filter { $0.key.hasPrefix(configuration.nodesPrefix) }.map { String($0.key.dropFirst(configuration.nodesPrefix.count)) }
        let spares = registered.filter { placement.members[$0] == nil && !placement.removed.contains($0) }.count
        let statuses = await MemberRemoval.statuses(of: placement, over: peers, timeout: .milliseconds(500))
        switch MemberRemoval.next(placement, removing: node, statuses: statuses, spares: spares) {
        case .done:
            return .removed
        case .refuse(let reason):
            throw LearnStoreError(.validation, reason)
        case .wait(let reason):
            return .waiting(reason)
        case .mark(let next):
            let marked = try await etcd.transaction(if: [.modRevision(configuration.placementKey, kv.modRevision)], put: [(configuration.placementKey, next.encoded, 0)])
            return .waiting(marked ? "\(node) is marked leaving" : "the placement changed meanwhile")
        case .remove(let next):
            let removed = try await etcd.transaction(if: [.modRevision(configuration.placementKey, kv.modRevision)], put: [(configuration.placementKey, next.encoded, 0)])
            return removed ? .removed : .waiting("the placement changed meanwhile")
        }
    }
}

extension MemberRemoval {
    /// Each member's STATUS document by node id, for ``next(_:removing:statuses:purpose:spares:)``; a
    /// member that does not answer is left out.
    static func statuses(of placement: ClusterPlacement, over peers: any PromotionTransport, timeout: TimeAmount) async -> [String: JSONValue] {
        var statuses: [String: JSONValue] = [:]
        for (id, address) in placement.members.sorted(by: { $0.key < $1.key }) {
            if let status = await peers.status(address, timeout: timeout).status { statuses[id] = status }
        }
        return statuses
    }

    /// Lets the controller make a removed node a member again once it registers, or calls off a removal
    /// under way (the node counts as in sync again); false when the node was neither removed nor leaving.
    static func readmit(_ node: String, configuration: ClusterConfiguration, etcd: any ControlPlaneStore) async throws(LearnStoreError) -> Bool {
        while true {
            guard let kv = try await etcd.get(configuration.placementKey) else { throw LearnStoreError(.notFound, "etcd holds no placement for this cluster") }
            var placement = try ClusterPlacement.decode(kv.value)
            guard placement.removed.remove(node) != nil || placement.leaving.remove(node) != nil else { return false }
            if try await etcd.transaction(if: [.modRevision(configuration.placementKey, kv.modRevision)], put: [(configuration.placementKey, placement.encoded, 0)]) {
                return true
            }
        }
    }
}

/// The operator's membership commands on a cluster with a control plane.
public enum ClusterMembership {
    /// Removes `node` from the cluster's members (``MemberRemoval``), waiting up to `timeout` for the
    /// conditions; `progress` hears each new reason to wait.
    public static func remove(
        _ node: String, configuration: ClusterConfiguration, credential: NodeCredential, group: any EventLoopGroup, timeout: Duration,
        progress: @Sendable (String) -> Void
    ) async throws(LearnStoreError) {
        let etcd = try EtcdClient(endpoints: configuration.endpoints, group: group, timeout: .seconds(2))
        let run = MemberRemovalRun(configuration: configuration, etcd: etcd, peers: NodeTransport(credential: credential, group: group), node: node)
        let deadline = ContinuousClock.now + timeout
        var last: String?
        while true {
            switch try await run.attempt() {
            case .removed:
                return
            case .waiting(let reason):
                if reason != last { progress(reason) }
                last = reason
                guard ContinuousClock.now < deadline else {
                    throw LearnStoreError(.notYet, "\(node) is not removed yet: \(reason); it stays marked leaving (run the command again)")
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Lets a removed node become a member again when it registers, or calls off its removal under way;
    /// false when it was neither removed nor leaving.
    public static func readmit(_ node: String, configuration: ClusterConfiguration, group: any EventLoopGroup) async throws(LearnStoreError) -> Bool {
        try await MemberRemoval.readmit(node, configuration: configuration, etcd: try EtcdClient(endpoints: configuration.endpoints, group: group, timeout: .seconds(2)))
    }
}
