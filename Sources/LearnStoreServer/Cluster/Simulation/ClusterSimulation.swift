import LearnStoreModel
import Logging

/// A deterministic simulation of the control plane (docs/CLUSTER.md): the real ``ClusterAgent`` of
/// each node (lease, registration, watch, controller election, checks, guarded promotion through
/// ``ClusterPromotion``) runs against a simulated etcd (``SimulatedEtcd``) and simulated nodes
/// (``SimulatedClusterNode``) on simulated time, their calls interleaved by ``SimulatedScheduler``.
/// For `faultSeconds` nodes crash and restart, stop (SIGSTOP) and resume, lose etcd or each other,
/// and etcd loses its leader; then everything heals for `settleSeconds`. Checked after every tick:
/// ``SimulatedReplication``'s safety rules, and at the end that the cluster recovered: one primary,
/// named by etcd's placement, acknowledging writes.
public struct ClusterSimulation {
    public struct Options: Sendable {
        public var nodes = 3
        public var minimumInSync = 1
        public var faultSeconds: Int64 = 30
        public var settleSeconds: Int64 = 15
        /// The chance per tick of each kind of fault starting.
        public var faultRate = 0.002
        public var leaseSeconds = 3
        public var checkMilliseconds: Int64 = 100
        /// Whether the agents' etcd calls wait for a scheduled turn like their calls to nodes (more
        /// interleavings), rather than answering at once.
        public var interleavesEtcdCalls = true
        /// Whether the last node starts only some seconds into the faults, so that it follows the
        /// primary for a while before the controller makes it a member.
        public var lastNodeJoinsLate = true
        /// Whether the operator removes a node (`learnstore cluster remove-node`) during the faults, and
        /// then stops it for good half of the time.
        public var removesANode = false
        /// The members the controller keeps (nil: every node); the others wait as spares, one replacing
        /// a member gone for `replaceAfterMilliseconds`.
        public var replicationFactor: Int?
        public var replaceAfterMilliseconds: Int64 = 2_000
        /// Whether a random node stops for good in the first half of the faults.
        public var losesANode = false
        /// The machines the nodes run on (`serve --machine`), each holding at least one node; nil: the
        /// nodes name none (each is a machine of its own).
        public var machines: Int?
        /// Whether, once the faults have healed and the controller has spread the members over the
        /// machines (checked: within `spreadSeconds`), every node of one machine stops for good at once
        /// (the primary's half of the time; never one holding more than `minimumInSync` members, which
        /// no placement could survive); the run then settles for `settleSeconds` more. Needs `machines`
        /// and a replication factor.
        public var losesAMachine = false
        public var spreadSeconds: Int64 = 20
        /// Whether the operator asks for a handover of the primary to a random member every 1 to 4
        /// simulated seconds of the faults (`learnstore cluster handover`).
        public var handsOver = false
        /// With `machines`: other groups of a partition map, each a primary (in etcd only) on a random
        /// machine that moves to another one every 2 to 5 s of the faults, so that the controller hands
        /// its primary over to spread primaries over the machines.
        public var otherGroups = 0
        public init() {}
    }

    public struct Result: Sendable {
        public var seed: UInt64
        public var acknowledged = 0
        public var crashes = 0
        public var pauses = 0
        public var etcdCuts = 0
        public var linkCuts = 0
        public var etcdOutages = 0
        public var promotions = 0
        public var restartsRequested = 0
        /// Nodes removed, and removals refused (the operator tries again a second later).
        public var removals = 0
        public var removalsRefused = 0
        /// Removals the operator called off after refusals in a row.
        public var removalsCalledOff = 0
        /// Members the placement dropped: removed by the operator or replaced by the controller.
        public var membersDropped = 0
        /// Machines lost with all their nodes, and the nodes lost with them.
        public var machinesLost = 0
        public var nodesLostWithMachines = 0
        /// Handovers the operator asked for, those whose node became the primary, and those the
        /// controller gave up (with the reason in the request).
        public var handoversRequested = 0
        public var handoversCompleted = 0
        public var handoversGivenUp = 0
        /// Handovers the controller asked for itself, to spread primaries over machines.
        public var spreadingHandovers = 0
        public var violation: String?
        /// The last events before the violation.
        public var trace: [String] = []

        public init(seed: UInt64) { self.seed = seed }

        /// Adds `other`'s counts to these (for totals over many seeds).
        public mutating func add(_ other: Result) {
            acknowledged += other.acknowledged
            crashes += other.crashes
            pauses += other.pauses
            etcdCuts += other.etcdCuts
            linkCuts += other.linkCuts
            etcdOutages += other.etcdOutages
            promotions += other.promotions
            restartsRequested += other.restartsRequested
            removals += other.removals
            removalsRefused += other.removalsRefused
            removalsCalledOff += other.removalsCalledOff
            membersDropped += other.membersDropped
            machinesLost += other.machinesLost
            nodesLostWithMachines += other.nodesLostWithMachines
            handoversRequested += other.handoversRequested
            handoversCompleted += other.handoversCompleted
            handoversGivenUp += other.handoversGivenUp
            spreadingHandovers += other.spreadingHandovers
        }
    }

    static let tickMilliseconds: Int64 = 10

    let options: Options
    let seed: UInt64

    public init(seed: UInt64, options: Options) {
        self.seed = seed
        self.options = options
    }

    public func run() async -> Result {
        var result = Result(seed: seed)
        var random = SplitMix64(seed: seed)
        let time = SimulatedTime()
        let cluster = SimulatedCluster(time: time, nodeCount: options.nodes, minimumInSync: options.minimumInSync)
        var configuration = ClusterConfiguration(endpoints: [])
        configuration.leaseSeconds = options.leaseSeconds
        configuration.checkMilliseconds = options.checkMilliseconds
        configuration.replicationFactor = options.replicationFactor
        configuration.replaceAfterMilliseconds = options.replaceAfterMilliseconds
        let logger = Logger(label: "cluster-simulation", factory: { _ in SwiftLogNoOpLogHandler() })
        let machineOf = options.machines.map { Self.machines($0, nodes: cluster.nodes.count, &random) } ?? [:]
        var others = OtherGroups()
        if options.otherGroups > 0, let machines = options.machines {
            others = await OtherGroups(count: options.otherGroups, machines: machines, cluster, &configuration, &random)
        }
        if !machineOf.isEmpty { cluster.note("machines: " + machineOf.sorted { $0.key < $1.key }.map { "\($0.key) on \($0.value)" }.joined(separator: ", ")) }
        func agent(_ node: SimulatedClusterNode) -> ClusterAgent {
            var configuration = configuration
            configuration.machine = machineOf[node.nodeID]
            let board = TopologyBoard()
            if let map = others.map { board.partition(by: map, group: configuration.name) }
            return ClusterAgent(
                configuration: configuration, node: node, etcd: cluster.etcd.endpoint(for: node.nodeID, scheduler: options.interleavesEtcdCalls ? cluster.scheduler : nil),
                peers: SimulatedPeers(from: node.nodeID, cluster: cluster), address: node.address, topology: board, logger: logger,
                now: { time.instant })
        }
        // The first node has started the cluster as its primary (the placement it wrote names only it).
        let first = cluster.nodes[0]
        first.state.withLock {
            $0.role = .primary
            $0.epoch = 1
        }
        let start = ClusterPlacement(epoch: 1, primary: first.nodeID, members: [first.nodeID: first.address])
        _ = try? await cluster.etcd.endpoint(for: first.nodeID).put(configuration.placementKey, start.encoded, lease: 0)
        var rounds = cluster.nodes.map { Round(agent: agent($0)) }
        var nextRound = cluster.nodes.map { _ in Int64(0) }
        var downUntil = cluster.nodes.map { _ in Int64(0) }
        if options.lastNodeJoinsLate, let last = cluster.nodes.indices.last {
            cluster.nodes[last].state.withLock { $0.alive = false }
            downUntil[last] = Int64(random.next(below: Int(max(1, options.faultSeconds * 1000 / 2)))) / Self.tickMilliseconds * Self.tickMilliseconds
            cluster.note("\(cluster.nodes[last].nodeID) joins at \(downUntil[last]) ms")
        }
        var loss: (node: Int, at: Int64)?
        if options.losesANode {
            let at = Int64(random.next(below: Int(max(1, options.faultSeconds * 1000 / 2)))) / Self.tickMilliseconds * Self.tickMilliseconds
            loss = (Int.random(in: 0..<cluster.nodes.count, using: &random), at)
        }
        var removal: Removal?
        if options.removesANode {
            let target = cluster.nodes[Int.random(in: 1..<cluster.nodes.count, using: &random)].nodeID
            let at = Int64(random.next(below: Int(max(1, options.faultSeconds * 1000 / 2)))) / Self.tickMilliseconds * Self.tickMilliseconds
            removal = Removal(run: MemberRemovalRun(
                configuration: configuration,
                etcd: cluster.etcd.endpoint(for: SimulatedCluster.operatorName, scheduler: options.interleavesEtcdCalls ? cluster.scheduler : nil),
                peers: SimulatedPeers(from: SimulatedCluster.operatorName, cluster: cluster), node: target), next: at)
            cluster.note("the operator removes \(target) from \(at) ms")
        }
        var replication = SimulatedReplication()
        let faultEnd = options.faultSeconds * 1000
        var end = faultEnd + options.settleSeconds * 1000
        var machineLoss = options.losesAMachine && !machineOf.isEmpty ? MachineLoss.waitingForSpread : MachineLoss.done
        if machineLoss == .waitingForSpread { end = faultEnd + (options.spreadSeconds + options.settleSeconds) * 1000 }
        var lastAcknowledgedAt: Int64 = 0
        var handovers = Handovers()
        let scheduler = cluster.scheduler

        // The rounds are child tasks on the scheduler's executor, run only inside its grants.
        let violation = await withDiscardingTaskGroup { group -> ClusterSimulationViolation? in
          do throws(ClusterSimulationViolation) {
            while time.now < end {
                time.advance(by: Self.tickMilliseconds)
                cluster.etcd.tick()
                let now = time.now
                if now < faultEnd { inject(&result, &random, cluster, &downUntil) }
                if let lost = loss, now >= lost.at {
                    cluster.nodes[lost.node].state.withLock { $0.alive = false }
                    downUntil[lost.node] = .max
                    cluster.note("\(cluster.nodes[lost.node].nodeID) stops for good")
                    loss = nil
                }
                if options.handsOver { await handOver(&handovers, cluster, configuration, &random, &result, faultEnd: faultEnd) }
                if others.map != nil { await others.step(cluster, configuration, handovers.pending, &random, &result, faultEnd: faultEnd) }
                if machineLoss == .waitingForSpread, now >= faultEnd,
                    try loseAMachine(machineOf, cluster, configuration, &random, &downUntil, &result, deadline: faultEnd + options.spreadSeconds * 1000)
                {
                    machineLoss = .done
                    end = now + options.settleSeconds * 1000
                }
                if now % 1000 == 0 { cluster.note(cluster.summary) }
                try cluster.failCallsOfStoppedNodes()
                // Restarts: a crashed node after its downtime, a replaced primary that asked for one.
                for (index, node) in cluster.nodes.enumerated() {
                    let (alive, asked) = node.state.withLock { ($0.alive, $0.restartRequested) }
                    if alive && asked {
                        cluster.note("\(node.nodeID) stops to start again")
                        result.restartsRequested += 1
                        node.state.withLock { $0.alive = false }
                        downUntil[index] = now + 200
                    } else if !alive && now >= downUntil[index] && !rounds[index].inRound {
                        guard await restart(node, cluster, configuration) else { continue }
                        cluster.note("\(node.nodeID) started as \(node.role.name)")
                        rounds[index] = Round(agent: agent(node))
                        nextRound[index] = now
                    }
                }
                // Replication runs before or after the rounds: a node resumed after a pause may move
                // writes before its watchdog runs.
                let replicateFirst = Bool.random(using: &random)
                if replicateFirst { try replicate(&replication, cluster, &lastAcknowledgedAt) }
                var order = Array(cluster.nodes.indices.filter { cluster.isRunning(cluster.nodes[$0]) })
                order.shuffle(using: &random)
                for index in order { rounds[index].agent.fenceIfLeaseLapsed() }
                for index in order where !rounds[index].inRound && now >= nextRound[index] {
                    nextRound[index] = now + options.checkMilliseconds
                    try rounds[index].start(on: cluster) { group.addTask(executorPreference: $0, operation: $1) }
                    result.promotions += try replication.checkPromotions(cluster)
                }
                if let removal { try await step(removal, now: now, cluster, &result, &random, &downUntil, &group) }
                // Turns, one call at a time, in a random order; some calls wait for a later tick.
                while Double.random(in: 0..<1, using: &random) < 0.9 {
                    let ready = scheduler.waitingNodes.enumerated().filter { entry in cluster.isCallerRunning(entry.element) }
                    guard let chosen = ready.randomElement(using: &random) else { break }
                    try cluster.grant(at: chosen.offset, proceed: true)
                    result.promotions += try replication.checkPromotions(cluster)
                }
                if !replicateFirst { try replicate(&replication, cluster, &lastAcknowledgedAt) }
                try replication.checkPlacement(cluster, key: configuration.placementKey)
            }
            try checkRecovered(cluster, configuration, lastAcknowledgedAt: lastAcknowledgedAt, downUntil: downUntil)
            scheduler.finish()
            return nil
          } catch {
            scheduler.finish()
            return error
          }
        }
        if let violation {
            result.violation = violation.description
            result.trace = cluster.trace + ["now: \(cluster.summary)"]
        }
        result.acknowledged = replication.acknowledgedWrites
        result.membersDropped = replication.membersDropped
        return result
    }

    /// One node's agent and the round it may be in the middle of.
    final class Round: @unchecked Sendable {
        let agent: ClusterAgent
        var state: ClusterAgent.LoopState
        var inRound = false

        init(agent: ClusterAgent) {
            self.agent = agent
            state = agent.initialState()
        }

        func run() async {
            do throws(LearnStoreError) { try await agent.step(&state) } catch {}
            agent.fenceIfLeaseLapsed()
            inRound = false
        }

        /// Starts the round as a task `spawn` adds (to a task group, preferring the executor it is
        /// given), and returns once the round waits for its first turn or has ended.
        func start(on cluster: SimulatedCluster, _ spawn: (RoundExecutor, @escaping @Sendable () async -> Void) -> Void) throws(ClusterSimulationViolation) {
            inRound = true
            let scheduler = cluster.scheduler
            try cluster.start { executor in
                spawn(executor) {
                    await self.run()
                    scheduler.roundEnded()
                }
            }
        }
    }

    private func replicate(_ replication: inout SimulatedReplication, _ cluster: SimulatedCluster, _ lastAcknowledgedAt: inout Int64) throws(ClusterSimulationViolation) {
        let before = replication.acknowledgedWrites
        try replication.step(cluster, writes: true)
        if replication.acknowledgedWrites > before { lastAcknowledgedAt = cluster.time.now }
    }

    /// Starts a stopped node again on its durable state, as `learnstore serve` does: the primary if
    /// etcd's placement names it, else a replica. It waits while etcd is out of its reach.
    func restart(_ node: SimulatedClusterNode, _ cluster: SimulatedCluster, _ configuration: ClusterConfiguration) async -> Bool {
        guard let kv = try? await cluster.etcd.endpoint(for: node.nodeID).get(configuration.placementKey),
            let placement = try? ClusterPlacement.decode(kv.value)
        else { return false }
        node.state.withLock { state in
            state.alive = true
            state.pausedUntil = 0
            state.restartRequested = false
            state.writesStoppedUntil = 0
            state.members = AcknowledgingMembers(controlPlane: true)
            state.inSync = []
            state.role = placement.primary == node.nodeID ? .primary : .replica
        }
        return true
    }
}
