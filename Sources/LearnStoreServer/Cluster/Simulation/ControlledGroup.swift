import LearnStoreModel
import Logging
import Synchronization

/// One group of the move simulation under its own control plane (``MoveSimulation/Options/controlPlane``):
/// simulated nodes, each with the real ``ClusterAgent`` of a partitioned node (lease, registration, the
/// watch of the group's keys and of the partition map, controller election, checks, guarded
/// promotions), over the etcd and scheduler every group shares, with the replication rules and checks
/// of ``SimulatedReplication`` and the faults of ``ClusterSimulation``. Each start of a node's
/// process gets a topology board of its own holding the map etcd had then; its agent keeps it current,
/// and the data primary the move simulation runs for the node (a ``MoveNode``) routes and gates its
/// writes by it.
final class ControlledGroup: @unchecked Sendable {
    let name: String
    let cluster: SimulatedCluster
    let configuration: ClusterConfiguration
    let faults: ClusterSimulation
    private(set) var faultCounts: ClusterSimulation.Result
    private(set) var replication = SimulatedReplication()
    private(set) var promotions = 0
    private(set) var restarts = 0
    private var handovers = ClusterSimulation.Handovers()
    private let handsOver: Bool
    private var rounds: [ClusterSimulation.Round] = []
    private var nextRound: [Int64]
    private var downUntil: [Int64]
    /// Each node's board, and how many times its process started: a ``MoveNode`` belongs to one start.
    private let boards: Mutex<[TopologyBoard]>
    private let starts: Mutex<[Int]>
    /// Whether the node's process started again as the primary and has not served as one since: its
    /// data primary then recovers its data from its log first, where a promoted replica holds it already.
    private let coldStarts: Mutex<[Bool]>
    private let logger: Logger

    init(_ name: String, time: SimulatedTime, etcd: SimulatedEtcd, scheduler: SimulatedScheduler, options: MoveSimulation.Options, seed: UInt64, logger: Logger) {
        self.name = name
        cluster = SimulatedCluster(time: time, etcd: etcd, scheduler: scheduler, nodeIDs: (0..<options.nodesPerGroup).map { "\(name)-n\($0)" },
                                   minimumInSync: options.minimumInSync)
        var configuration = ClusterConfiguration(endpoints: [])
        configuration.name = name
        configuration.partitionMapName = "simulated"
        self.configuration = configuration
        var faultOptions = ClusterSimulation.Options()
        faultOptions.nodes = options.nodesPerGroup
        faultOptions.minimumInSync = options.minimumInSync
        faultOptions.faultRate = options.faultRate
        faults = ClusterSimulation(seed: seed, options: faultOptions)
        handsOver = options.handsOver
        faultCounts = ClusterSimulation.Result(seed: seed)
        nextRound = cluster.nodes.map { _ in 0 }
        downUntil = cluster.nodes.map { _ in 0 }
        boards = Mutex(cluster.nodes.map { _ in TopologyBoard() })
        starts = Mutex(cluster.nodes.map { _ in 0 })
        coldStarts = Mutex(cluster.nodes.map { _ in false })
        self.logger = logger
    }

    /// Handovers the operator asked for, and those whose node became the primary.
    var handoversAsked: Int { faultCounts.handoversRequested }
    var handoversCompleted: Int { faultCounts.handoversCompleted }

    var faultsInjected: Int {
        faultCounts.crashes + faultCounts.pauses + faultCounts.etcdCuts + faultCounts.linkCuts + faultCounts.etcdOutages
    }

    func board(_ index: Int) -> TopologyBoard { boards.withLock { $0[index] } }
    func start(of index: Int) -> Int { starts.withLock { $0[index] } }
    func takeColdStart(_ index: Int) -> Bool { coldStarts.withLock { starts in defer { starts[index] = false }; return starts[index] } }

    /// The first node starts the group as its primary of epoch 1 (the placement it writes names only
    /// it); every node's process starts with the map etcd holds.
    func start(map: PartitionMap) async throws {
        let first = cluster.nodes[0]
        first.state.withLock {
            $0.role = .primary
            $0.epoch = 1
        }
        let placement = ClusterPlacement(epoch: 1, primary: first.nodeID, members: [first.nodeID: first.address])
        try await cluster.etcd.endpoint(for: first.nodeID).put(configuration.placementKey, placement.encoded, lease: 0)
        for index in cluster.nodes.indices { startProcess(index, map: map) }
    }

    private func startProcess(_ index: Int, map: PartitionMap) {
        let node = cluster.nodes[index]
        let board = TopologyBoard()
        board.partition(by: map, group: name)
        // As `serve` does: the map read at start counts for the epoch the node starts in; each
        // promotion's writes wait for a read in its epoch.
        board.writeGate.follow(startingEpoch: node.epoch)
        board.writeGate.mapRead(duringEpoch: node.epoch)
        boards.withLock { $0[index] = board }
        let start = starts.withLock { starts in
            starts[index] += 1
            return starts[index]
        }
        coldStarts.withLock { $0[index] = start > 1 && node.role == .primary }
        let agent = ClusterAgent(
            configuration: configuration, node: node, etcd: cluster.etcd.endpoint(for: node.nodeID, scheduler: cluster.scheduler),
            peers: SimulatedPeers(from: node.nodeID, cluster: cluster), address: node.address, topology: board, logger: logger,
            now: { [time = cluster.time] in time.instant })
        if index < rounds.count { rounds[index] = ClusterSimulation.Round(agent: agent) } else { rounds.append(ClusterSimulation.Round(agent: agent)) }
        nextRound[index] = cluster.time.now
    }

    /// One 10 ms tick of the group's control plane: faults and the operator's handovers (until
    /// `faultEnd`), the calls of crashed nodes failed, restarts, a step of the replication (then
    /// `replicated`, while each primary's in-sync set is the one it acknowledged with), lapsed leases,
    /// the agents' rounds, and the checks of ``SimulatedReplication``.
    func tick(faultEnd: Int64, map: PartitionMap, random: borrowing Mutex<SplitMix64>, tasks: inout TaskGroup<Void>, replicated: () async throws -> Void) async throws {
        let now = cluster.time.now
        if now < faultEnd {
            random.withLock { faults.inject(&faultCounts, &$0, cluster, &downUntil, controllerKey: configuration.controllerKey) }
        }
        if handsOver {
            var generator = random.withLock { $0 }
            await faults.handOver(&handovers, cluster, configuration, &generator, &faultCounts, faultEnd: faultEnd)
            random.withLock { $0 = generator }
        }
        try failCallsOfStoppedNodes()
        for (index, node) in cluster.nodes.enumerated() {
            let (alive, asked) = node.state.withLock { ($0.alive, $0.restartRequested) }
            if alive && asked {
                cluster.note("\(node.nodeID) stops to start again")
                node.state.withLock { $0.alive = false }
                downUntil[index] = now + 200
            } else if !alive && now >= downUntil[index] && !rounds[index].inRound {
                guard await faults.restart(node, cluster, configuration) else { continue }
                cluster.note("\(node.nodeID) started as \(node.role.name)")
                restarts += 1
                startProcess(index, map: currentMap() ?? map)
            }
        }
        do throws(ClusterSimulationViolation) {
            try replication.step(cluster, writes: false)
        } catch {
            throw MoveSimulationFailure(message: "group \(name): \(error)")
        }
        try await replicated()
        var order = Array(cluster.nodes.indices.filter { cluster.isRunning(cluster.nodes[$0]) })
        random.withLock { order.shuffle(using: &$0) }
        for index in order { rounds[index].agent.fenceIfLeaseLapsed() }
        for index in order where !rounds[index].inRound && now >= nextRound[index] {
            nextRound[index] = now + configuration.checkMilliseconds
            do throws(ClusterSimulationViolation) {
                try rounds[index].start(on: cluster) { tasks.addTask(executorPreference: $0, operation: $1) }
            } catch {
                throw MoveSimulationFailure(message: "group \(name): \(error)")
            }
            try checkPromotions()
        }
    }

    private func failCallsOfStoppedNodes() throws {
        do throws(ClusterSimulationViolation) { try cluster.failCallsOfStoppedNodes() } catch {
            throw MoveSimulationFailure(message: "group \(name): \(error)")
        }
    }

    /// The map etcd holds, read by a node as it starts.
    private func currentMap() -> PartitionMap? {
        cluster.etcd.keyValues[ClusterConfiguration.partitionMapKey("simulated")].flatMap { try? PartitionMap.decode($0.value) }
    }

    func checkPromotions() throws {
        do throws(ClusterSimulationViolation) {
            promotions += try replication.checkPromotions(cluster)
            try replication.checkPlacement(cluster, key: configuration.placementKey)
        } catch {
            throw MoveSimulationFailure(message: "group \(name): \(error)")
        }
    }

    /// How far `node`'s own last step of the replication let it acknowledge: its log, once enough
    /// members followed it; nil otherwise.
    func acknowledgedCount(of node: SimulatedClusterNode) -> Int? {
        node.state.withLock { state in
            state.role == .primary && state.inSync.count >= node.minimumInSync ? state.syncedLogCount : nil
        }
    }

    /// Settled: one primary, running, the one etcd's placement names.
    var settledPrimary: SimulatedClusterNode? {
        let primaries = cluster.nodes.filter { cluster.isRunning($0) && $0.role == .primary }
        let placement = cluster.etcd.keyValues[configuration.placementKey].flatMap { try? ClusterPlacement.decode($0.value) }
        guard primaries.count == 1, placement?.primary == primaries[0].nodeID else { return nil }
        return primaries[0]
    }
}

/// A record of a node's log: its group, the LSN it holds and the epoch of the primary that wrote it
/// (one primary per epoch in a group, which ``SimulatedReplication`` checks).
struct HistoryKey: Hashable {
    let group: String
    let lsn: UInt64
    let epoch: UInt64
}
