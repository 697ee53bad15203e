import LearnStoreModel
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A node's part in the control plane (docs/CLUSTER.md). It keeps the cluster's keys from a range read
/// and a watch of their prefix (``ClusterKeys``), and runs a round whenever the watch reports a change,
/// and at least every `checkMilliseconds`: it renews its lease and publishes `nodes/<id>`, learns the
/// members to follow, and campaigns for the controller key. The controller adds new nodes to the
/// placement and checks the primary; when the primary's key has expired or it fails `failedChecksBeforeFailover` checks in a row, it promotes
/// the most up-to-date replica by the promise quorum (``ClusterPromotion``) and records the new primary
/// in a transaction that fails if another node has become controller or the placement changed.
/// Safety never rests on the lease: epochs and promises fence an old primary; the lease only bounds
/// how long a primary cut off from etcd goes on acknowledging (it fences itself before the lease could
/// expire, ``ControllerRules/leaseFenceAfter(ttlSeconds:)``, enforced by a watchdog even while a round
/// waits for etcd).
public final class ClusterAgent: Service, Sendable {
    let configuration: ClusterConfiguration
    let node: any ClusterNodeControl
    let etcd: any ControlPlaneStore
    /// The other nodes, for the controller's checks and promotions.
    let peers: any PromotionTransport
    /// The time the lease and the checks are measured by (the simulation's own, in the simulation).
    let now: @Sendable () -> ContinuousClock.Instant
    /// This node's replication port, as other nodes reach it.
    let address: String
    let logger: Logger
    /// Filled from etcd each round: where TOPOLOGY and MOVED send clients.
    let topology: TopologyBoard
    /// Rung by the watch when a key changes.
    let wakeup: Wakeup
    /// Where the rounds and the watchdog run; nil in the simulation, which runs rounds itself.
    let thread: ControlPlaneThread?
    /// When the last successful renewal (or grant) of the node's lease began; nil before the first.
    private let renewedAt = Mutex<ContinuousClock.Instant?>(nil)

    /// When the node's lease was last granted or renewed; nil before the first.
    var lastRenewal: ContinuousClock.Instant? { renewedAt.withLock { $0 } }

    public convenience init(
        configuration: ClusterConfiguration, node: ReplicationNode, address: String, topology: TopologyBoard, thread: ControlPlaneThread, logger: Logger
    ) throws(LearnStoreError) {
        let etcd = try EtcdClient(endpoints: configuration.endpoints, group: thread.group, executor: thread.executor)
        self.init(configuration: configuration, node: node, etcd: etcd, peers: NodeTransport(credential: node.credential, group: thread.group),
                  address: address, topology: topology, logger: logger, thread: thread, now: { .now })
        let wakeup = self.wakeup
        node.promotionObserver.withLock { $0 = { wakeup.ring() } }
    }

    init(
        configuration: ClusterConfiguration, node: any ClusterNodeControl, etcd: any ControlPlaneStore, peers: any PromotionTransport,
        address: String, topology: TopologyBoard, logger: Logger, thread: ControlPlaneThread? = nil,
        now: @escaping @Sendable () -> ContinuousClock.Instant
    ) {
        self.configuration = configuration
        self.node = node
        self.etcd = etcd
        self.peers = peers
        self.address = address
        self.topology = topology
        self.logger = logger
        self.thread = thread
        wakeup = Wakeup(timers: thread?.loop)
        self.now = now
    }

    /// Before the node starts: the replication ports to follow, or none when it is the primary. The
    /// first node of a new cluster writes the placement naming itself (a transaction that succeeds once).
    public static func startingFollowAddresses(
        _ configuration: ClusterConfiguration, nodeID: String, address: String, epoch: UInt64, group: any EventLoopGroup, logger: Logger
    ) async throws -> [String] {
        let etcd = try EtcdClient(endpoints: configuration.endpoints, group: group)
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            let attempt: Result<[String]?, LearnStoreError>
            do { attempt = .success(try await startingFollowAddresses(etcd, configuration, nodeID: nodeID, address: address, epoch: epoch, logger: logger)) } catch {
                attempt = .failure(error)
            }
            switch attempt {
            case .success(let addresses?): return addresses
            case .success(nil): continue
            case .failure(let error):
                guard error.code == .connectionFailed, ContinuousClock.now < deadline else { throw error }
                logger.warning("cluster: etcd not reachable; retrying", metadata: ["error": "\(error.message)"])
                try await Task.sleep(for: .milliseconds(500))
            }
        }
    }

    /// The partition map `name`, which must list `group`: a node of a partitioned cluster does not
    /// start without it (it would serve tenants of other groups).
    static func partitionMap(named name: String, group: String, endpoints: [String]) async throws -> PartitionMap {
        let etcd = try EtcdClient(endpoints: endpoints, group: MultiThreadedEventLoopGroup.singleton)
        guard let stored = try await etcd.get(ClusterConfiguration.partitionMapKey(name)) else {
            throw LearnStoreError(.validation, "etcd holds no partition map '\(name)'; write it first with `learnstore cluster create-partition-map`")
        }
        let map = try PartitionMap.decode(stored.value)
        guard map.groups.contains(group) else {
            throw LearnStoreError(.validation, "the partition map '\(name)' has no group '\(group)' (its groups: \(map.groups.joined(separator: ", "))); start the node with --cluster-name set to one of them")
        }
        return map
    }

    /// One try: nil when another node wrote the first placement meanwhile.
    private static func startingFollowAddresses(
        _ etcd: EtcdClient, _ configuration: ClusterConfiguration, nodeID: String, address: String, epoch: UInt64, logger: Logger
    ) async throws(LearnStoreError) -> [String]? {
        if let current = try await etcd.get(configuration.placementKey) {
            let placement = try ClusterPlacement.decode(current.value)
            if placement.primary == nodeID { return [] }
            return placement.members.filter { $0.key != nodeID }.map(\.value).sorted()
        }
        let first = ClusterPlacement(epoch: epoch, primary: nodeID, members: [nodeID: address])
        guard try await etcd.transaction(if: [.createRevision(configuration.placementKey, 0)], put: [(configuration.placementKey, first.encoded, 0)]) else {
            return nil
        }
        logger.notice("cluster: this node starts a new cluster as its primary", metadata: ["cluster": "\(configuration.name)"])
        return []
    }

    struct LoopState {
        var lease: Int64 = 0
        var leaseSeconds = 0
        var lastRenewal: ContinuousClock.Instant
        var published: ClusterNodeEntry?
        var isController = false
        var primaryWatch: ControllerRules.PrimaryWatch
        /// When the controller last checked the primary: once per `checkMilliseconds`, however often
        /// changes wake the loop, so the failed checks that trigger a failover stay that far apart.
        var lastPrimaryCheck: ContinuousClock.Instant?
        var lastProblem: String?
        var keys = ClusterKeys()
        var watch: (any ControlPlaneWatch)?
        var lastRead: ContinuousClock.Instant?
        var isRemoved = false
        /// As the controller: since when each member's key has been missing.
        var missingSince: [String: ContinuousClock.Instant] = [:]
        /// When the controller last took a step of a member's replacement.
        var lastReplacementStep: ContinuousClock.Instant?
        /// In a partitioned cluster: when the other groups' primaries were last read.
        var lastGroupsRead: ContinuousClock.Instant?
        /// In a partitioned cluster: when the partition map was last read, and the watch of its key.
        var lastMapRead: ContinuousClock.Instant?
        var mapWatch: (any ControlPlaneWatch)?
        /// The node's epoch when it last read the map (and could serve by it).
        var mapReadEpoch: UInt64 = 0
        /// As the controller: the handover request under way (its key's revision), when it began, and
        /// the primary's last refusal (its target not in sync yet).
        var handover: (revision: Int64, started: ContinuousClock.Instant, refusal: String?)?
        /// As the controller: when it last asked for a handover to spread primaries over machines.
        var lastSpreadingHandover: ContinuousClock.Instant?
    }

    /// The keys are read again this often, watch or not: a watch served by an etcd member cut off
    /// from its quorum can go quiet without ending, where a read (linearizable) fails.
    static let rereadInterval: Duration = .seconds(5)
    /// How often a node of a partitioned cluster reads the partition map.
    static let mapRereadInterval: Duration = .seconds(1)
    /// How often a node of a partitioned cluster reads the other groups' primaries (for MOVED and
    /// TOPOLOGY).
    static let otherGroupsRereadInterval: Duration = .seconds(1)

    func initialState() -> LoopState {
        // A primary that cannot get its first lease is held to the same limit from now.
        renewedAt.withLock { $0 = $0 ?? now() }
        return LoopState(lastRenewal: now(), primaryWatch: ControllerRules.PrimaryWatch(threshold: configuration.failedChecksBeforeFailover))
    }

    public func run() async throws {
        await withTaskExecutorPreference(thread?.executor) {
            await withGracefulShutdownHandler { await runRounds() } onGracefulShutdown: { [wakeup] in wakeup.ring() }
        }
    }

    private func runRounds() async {
        var state = initialState()
        // A round can wait for etcd for a few seconds (each member in turn): the lease's limit is
        // kept meanwhile too.
        let watchdog = (thread?.loop ?? MultiThreadedEventLoopGroup.singleton.next()).scheduleRepeatedTask(
            initialDelay: .milliseconds(20), delay: .milliseconds(20)
        ) { [self] _ in fenceIfLeaseLapsed() }
        defer { watchdog.cancel() }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // First, before any renewal: a node that was stopped or cut off past its lease may already
            // have been replaced.
            fenceIfLeaseLapsed()
            do throws(LearnStoreError) {
                try await step(&state)
                state.lastProblem = nil
            } catch {
                if state.lastProblem != error.message { logger.warning("cluster: \(error.message)") }
                state.lastProblem = error.message
            }
            fenceIfLeaseLapsed()
            await wakeup.wait(upTo: .milliseconds(configuration.checkMilliseconds))
        }
        state.watch?.close()
        state.mapWatch?.close()
        // Leaving: the controller sees this node gone at once rather than after its lease.
        if state.lease != 0 { try? await etcd.revoke(lease: state.lease) }
    }

    func step(_ state: inout LoopState) async throws(LearnStoreError) {
        try await renewLease(&state)
        let entry = ClusterNodeEntry(replication: address, role: node.role, epoch: node.epoch, client: topology.thisAddress, machine: configuration.machine)
        if entry != state.published {
            try await etcd.put(configuration.nodeKey(node.nodeID), entry.encoded, lease: state.lease)
            state.published = entry
        }
        // Observed before the keys are read: a primary takes its members only from keys read during its epoch.
        let observedEpoch = node.epoch
        let keys = try await currentKeys(&state, fresh: node.needsMembers)
        if configuration.partitionMapName != nil,
            watchPartitionMap(&state) || state.mapReadEpoch != node.epoch || state.lastMapRead.map({ now() - $0 >= Self.mapRereadInterval }) != false
        {
            // At once when the watch reports a change, and once a second anyway: a move's start must
            // reach the group it leaves quickly (its writes stop there, and the group it goes to waits
            // for that), and its end every node.
            state.lastMapRead = now()
            // A new epoch (a promotion) reads the map at once: the node's writes wait for that.
            let epoch = node.epoch
            if await checkPartitionMap() {
                topology.writeGate.mapRead(duringEpoch: epoch)
                state.mapReadEpoch = epoch
            }
            if state.mapWatch == nil, let name = configuration.partitionMapName {
                state.mapWatch = try? await etcd.watchPrefix(ClusterConfiguration.partitionMapKey(name), from: 0, wakeup: wakeup)
            }
        }
        if let map = topology.partitioning?.map, state.lastGroupsRead.map({ now() - $0 >= Self.otherGroupsRereadInterval }) != false {
            // A client that asks this node for another group's tenant is sent to that group's primary
            // as last read here: after a failover there, to the old one until the next read.
            await readOtherGroups(map, &state)
        }
        let placementKV = keys.first { $0.key == configuration.placementKey }
        let placement = try placementKV.map { kv throws(LearnStoreError) in try ClusterPlacement.decode(kv.value) }
        var registered: [String: ClusterNodeEntry] = [:]
        for kv in keys where kv.key.hasPrefix(configuration.nodesPrefix) {
            let id = String(kv.key.dropFirst(configuration.nodesPrefix.count))
            if NodeCredential.isValidNodeID(id), let entry = ClusterNodeEntry.decode(kv.value) { registered[id] = entry }
        }
        var others = Set(placement?.members.values.map { $0 } ?? [])
        for entry in registered.values { others.insert(entry.replication) }
        others.remove(address)
        node.setFollowAddresses(others.sorted())
        if let placement, placement.primary != node.nodeID, node.role != .replica,
            node.role == .fenced || placement.epoch > node.epoch
        {
            // A primary of an older epoch than the placement's has been replaced: it stops acknowledging
            // and starts again as a replica of the new primary.
            node.fence(reason: "etcd names \(placement.primary) the primary of epoch \(placement.epoch)")
            node.requestRestart("this old primary was replaced by \(placement.primary); it starts again as a replica")
        }
        if let placement {
            node.setMembers(placement.acknowledgingMembers, observedEpoch: observedEpoch)
            topology.update(epoch: placement.epoch, primary: placement.primary, nodes: registered.map { id, entry in
                TopologyBoard.Node(nodeID: id, address: entry.client, role: entry.role)
            })
        }

        let isRemoved = placement?.removed.contains(node.nodeID) == true
        if isRemoved != state.isRemoved {
            state.isRemoved = isRemoved
            if isRemoved { logger.warning("cluster: this node was removed from the cluster; it counts for no write or promotion, and can be stopped") }
        }
        guard let controller = keys.first(where: { $0.key == configuration.controllerKey }) else {
            // The primary leaves the controller's work to a replica: if its machine dies, the controller
            // must not be lost with it (its key would outlive it by the lease). A removed node takes no part.
            guard node.role != .primary || registered.count <= 1, !isRemoved else { return }
            if try await etcd.transaction(if: [.createRevision(configuration.controllerKey, 0)],
                                          put: [(configuration.controllerKey, Array(node.nodeID.utf8), state.lease)]) {
                logger.notice("cluster: this node is the controller")
            }
            return
        }
        let isController = controller.value == Array(node.nodeID.utf8) && controller.lease == state.lease
        if isController != state.isController {
            state.primaryWatch.reset()
            state.missingSince = [:]
        }
        state.isController = isController
        guard isController, let placement, let placementKV else { return }
        if node.role == .primary && registered.count > 1 || isRemoved {
            if try await etcd.transaction(if: [.modRevision(configuration.controllerKey, controller.modRevision)], put: [], delete: [configuration.controllerKey]) {
                logger.notice(isRemoved ? "cluster: a removed node gives up the controller's work" : "cluster: the primary hands the controller's work to a replica")
                state.isController = false
            }
            return
        }
        try await control(
            placement, revision: placementKV.modRevision, controllerRevision: controller.modRevision, registered: registered,
            handover: keys.first { $0.key == configuration.handoverKey }, state: &state)
    }

    // MARK: the keys

    /// The cluster's keys: the watch's changes applied to the last range read. A watch that broke
    /// resumes from the revision after its last change; without one (none opens, or etcd compacted past
    /// it), every `rereadInterval`, and when `fresh`, the keys are read again and a watch opened after the read.
    func currentKeys(_ state: inout LoopState, fresh: Bool = false) async throws(LearnStoreError) -> [EtcdClient.KeyValue] {
        if let watch = state.watch {
            let (responses, ended) = watch.take()
            for response in responses { state.keys.apply(response) }
            if let ended {
                logger.info("cluster: watch ended; resuming", metadata: ["reason": "\(ended)", "after_revision": "\(state.keys.revision)"])
                state.watch = nil
            }
        }
        let now = self.now()
        if fresh || !state.keys.isLoaded || state.lastRead.map({ now - $0 >= Self.rereadInterval }) != false {
            state.watch?.close()
            state.watch = nil
            _ = try await readKeys(&state)
        }
        if state.watch == nil {
            do throws(LearnStoreError) {
                state.watch = try await etcd.watchPrefix(configuration.prefix, from: state.keys.revision + 1, wakeup: wakeup)
            } catch {
                // Without a watch the keys go stale: read them again next round until one opens.
                state.keys.unload()
                logger.debug("cluster: no watch: \(error.message)")
            }
        }
        return state.keys.keyValues
    }

    /// Reads the keys (linearizable) into `state.keys`; a running watch goes on from there (its older
    /// changes are passed over).
    func readKeys(_ state: inout LoopState) async throws(LearnStoreError) -> [EtcdClient.KeyValue] {
        let (revision, keyValues) = try await etcd.range(prefix: configuration.prefix)
        state.keys.load(revision: revision, keyValues: keyValues)
        state.lastRead = now()
        if let map = topology.partitioning?.map { await readOtherGroups(map, &state) }
        return keyValues
    }

    /// The other groups' primaries, for MOVED and TOPOLOGY: read with this group's keys and every
    /// `otherGroupsRereadInterval`, so a failover in another group reaches this node's answers within that.
    /// A group that cannot be read keeps what was read before; this group's own round goes on.
    private func readOtherGroups(_ map: PartitionMap, _ state: inout LoopState) async {
        state.lastGroupsRead = now()
        var primaries = topology.groupPrimaries
        for group in map.groups where group != configuration.name {
            let prefix = ClusterConfiguration.prefix(ofGroup: group)
            let keyValues: [EtcdClient.KeyValue]
            do { keyValues = try await etcd.range(prefix: prefix).1 } catch {
                logger.debug("cluster: group \(group) not read: \(error.message)")
                continue
            }
            guard let stored = keyValues.first(where: { $0.key == prefix + "placement" }),
                let placement = try? ClusterPlacement.decode(stored.value)
            else { continue }
            let entry = keyValues.first { $0.key == prefix + "nodes/" + placement.primary }.flatMap { ClusterNodeEntry.decode($0.value) }
            primaries[group] = TopologyBoard.GroupPrimary(epoch: placement.epoch, primary: placement.primary, address: entry?.client, machine: entry?.machine)
        }
        topology.update(groups: primaries)
    }

    /// Whether the watch of the partition map's key reported a change since the last round. A watch
    /// that ended is dropped (the next read opens another); the once-a-second read covers what a
    /// watch opened late or ended early missed.
    private func watchPartitionMap(_ state: inout LoopState) -> Bool {
        guard let watch = state.mapWatch else { return false }
        let (responses, ended) = watch.take()
        if ended != nil {
            watch.close()
            state.mapWatch = nil
            return true
        }
        return !responses.isEmpty
    }

    /// The map in etcd changes only by the steps of ``PartitionMap`` (a group added, a move started,
    /// completed or called off), each with a higher version: such a map replaces the one this node
    /// holds. A map written otherwise (deleted and written again with other assignments) would have
    /// two groups serve one tenant, the nodes started before it by the old map and those started
    /// after by the new: while etcd's map cannot follow the one held, or is gone, this node serves no
    /// tenant (AUTH answers NOT_PRIMARY); when it can again, it serves again.
    /// Returns whether the node now serves by etcd's map (read, and able to follow the one held).
    @discardableResult
    private func checkPartitionMap() async -> Bool {
        guard let name = configuration.partitionMapName, let held = topology.partitioning else { return false }
        let conflict: String?
        do {
            if let stored = try await etcd.get(ClusterConfiguration.partitionMapKey(name)) {
                if let current = try? PartitionMap.decode(stored.value), current.canFollow(held.map) {
                    conflict = nil
                    if current != held.map {
                        topology.partition(by: current, group: held.group)
                        logger.notice("cluster: the partition map changed", metadata: [
                            "version": "\(current.version)", "moving": "\(current.moves.keys.sorted())",
                        ])
                    }
                } else {
                    conflict = "the partition map '\(name)' in etcd cannot follow version \(held.map.version), the one this node serves by (it was written other than by learnstore cluster); it serves no tenant until the map is restored"
                }
            } else {
                conflict = "the partition map '\(name)' is gone from etcd; this node serves no tenant until it is restored"
            }
        } catch {
            return false
        }
        if conflict != topology.partitionMapConflict {
            if let conflict { logger.error("cluster: \(conflict)") } else { logger.notice("cluster: the partition map in etcd is one this node can serve by again") }
            topology.partitionMapConflict = conflict
        }
        return conflict == nil
    }

    // MARK: the lease

    private func renewLease(_ state: inout LoopState) async throws(LearnStoreError) {
        let now = self.now()
        if state.lease == 0 {
            let granted = try await etcd.grantLease(ttlSeconds: configuration.leaseSeconds)
            state.lease = granted.id
            state.leaseSeconds = granted.ttlSeconds
            state.lastRenewal = now
            renewedAt.withLock { $0 = now }
            state.published = nil
            state.isController = false
            return
        }
        // Every third of the TTL; after a failed attempt, every round until one succeeds.
        guard now - state.lastRenewal >= .milliseconds(state.leaseSeconds * 1000 / 3) else { return }
        if try await etcd.keepAlive(lease: state.lease) > 0 {
            state.lastRenewal = now
            renewedAt.withLock { $0 = now }
        } else {
            if node.role == .primary { node.fence(reason: "its etcd lease expired; it may have been replaced") }
            logger.warning("cluster: the node's lease expired; registering again")
            state.lease = 0
            try await renewLease(&state)
        }
    }

    /// A primary whose lease has not been renewed for nearly its TTL may already have been replaced:
    /// it stops acknowledging writes (fenced), before etcd lets the lease go.
    func fenceIfLeaseLapsed() {
        guard let renewed = renewedAt.withLock({ $0 }) else { return }
        let limit = ControllerRules.leaseFenceAfter(ttlSeconds: configuration.leaseSeconds)
        guard now() - renewed > limit, node.role == .primary else { return }
        node.fence(reason: "its etcd lease was not renewed for \(limit); it may have been replaced")
    }
}
