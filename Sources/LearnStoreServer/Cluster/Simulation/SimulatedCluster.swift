import LearnStoreModel
import Synchronization

/// The nodes, links and etcd of one simulation run, and the safety checks that watch them. Nodes
/// reach each other only while both run (not crashed, not paused) and their link is not cut.
final class SimulatedCluster: @unchecked Sendable {
    let time: SimulatedTime
    let etcd: SimulatedEtcd
    let nodes: [SimulatedClusterNode]
    let scheduler: SimulatedScheduler
    private let linkCutUntil = Mutex<[String: Int64]>([:])
    /// Every promotion that took place: the only (epoch, primary) pairs a placement may record.
    private let promotions = Mutex<[UInt64: String]>([:])
    /// Promotions not yet checked, with the promoted node's log at that moment.
    private let unchecked = Mutex<[(node: String, epoch: UInt64, log: [UInt64])]>([])

    convenience init(time: SimulatedTime, nodeCount: Int, minimumInSync: Int) {
        self.init(time: time, etcd: SimulatedEtcd(time: time), scheduler: SimulatedScheduler(), nodeIDs: (0..<nodeCount).map { "n\($0)" },
                  minimumInSync: minimumInSync)
    }

    /// Nodes sharing an etcd and a scheduler with other groups' (the move simulation's groups under their
    /// control planes).
    init(time: SimulatedTime, etcd: SimulatedEtcd, scheduler: SimulatedScheduler, nodeIDs: [String], minimumInSync: Int) {
        self.time = time
        self.etcd = etcd
        self.scheduler = scheduler
        nodes = nodeIDs.map { SimulatedClusterNode(nodeID: $0, minimumInSync: minimumInSync) }
        for node in nodes { node.onEvent = { [weak self] event in self?.note(event) } }
    }

    func node(_ id: String) -> SimulatedClusterNode? { nodes.first { $0.nodeID == id } }

    /// The last events, for a failing seed's report.
    private let events = Mutex<[String]>([])
    static let keptEvents = 400

    func note(_ event: String) {
        let line = "\(time.now) ms: \(event)"
        events.withLock { events in
            events.append(line)
            if events.count > Self.keptEvents { events.removeFirst(events.count - Self.keptEvents) }
        }
    }

    var trace: [String] { events.withLock { $0 } }

    /// Each node's state in one line.
    var summary: String {
        nodes.map { node in
            let running = isRunning(node)
            return node.state.withLock { state in
                "\(node.nodeID)[\(state.alive ? (running ? "up" : "paused") : "down") \(state.role.name) e\(state.epoch) p\(state.promised) lsn\(state.log.count)]"
            }
        }.joined(separator: " ")
    }

    func isRunning(_ node: SimulatedClusterNode) -> Bool {
        let now = time.now
        return node.state.withLock { $0.alive && now >= $0.pausedUntil }
    }

    private static func linkKey(_ a: String, _ b: String) -> String { a < b ? "\(a)|\(b)" : "\(b)|\(a)" }

    func cutLink(_ a: String, _ b: String, milliseconds: Int64) {
        let until = time.now + milliseconds
        linkCutUntil.withLock { $0[Self.linkKey(a, b), default: 0] = max($0[Self.linkKey(a, b)] ?? 0, until) }
    }

    func linked(_ a: String, _ b: String) -> Bool {
        let now = time.now
        return linkCutUntil.withLock { now >= ($0[Self.linkKey(a, b)] ?? 0) }
    }

    /// The operator's commands run outside the nodes: never stopped, never cut off.
    static let operatorName = "operator"

    /// Whether the node (or the operator) making a call runs now.
    func isCallerRunning(_ name: String) -> Bool { node(name).map(isRunning) ?? (name == Self.operatorName) }

    /// The node at `address` if `from` can reach it now.
    func reachable(_ address: String, from: String) -> SimulatedClusterNode? {
        guard let target = nodes.first(where: { $0.address == address }), isRunning(target), isCallerRunning(from),
            from == Self.operatorName || linked(from, target.nodeID)
        else { return nil }
        return target
    }

    /// The calls of a node that went down fail, which ends its round.
    func failCallsOfStoppedNodes() throws(ClusterSimulationViolation) {
        while let index = scheduler.waitingNodes.firstIndex(where: { node($0)?.state.withLock { $0.alive } == false }) {
            try grant(at: index, proceed: false)
        }
    }

    /// ``SimulatedScheduler/start(_:)``, a stray round a violation of the simulation.
    func start(_ spawn: (RoundExecutor) -> Void) throws(ClusterSimulationViolation) {
        do { try scheduler.start(spawn) } catch { throw ClusterSimulationViolation(atMilliseconds: time.now, rule: "\(error)") }
    }

    /// ``SimulatedScheduler/grant(at:proceed:)``, a stray round a violation of the simulation.
    func grant(at index: Int, proceed: Bool) throws(ClusterSimulationViolation) {
        do { try scheduler.grant(at: index, proceed: proceed) } catch { throw ClusterSimulationViolation(atMilliseconds: time.now, rule: "\(error)") }
    }

    func promoted(_ node: SimulatedClusterNode, epoch: UInt64) {
        note("\(node.nodeID) promoted to epoch \(epoch)")
        promotions.withLock { $0[epoch] = node.nodeID }
        let log = node.state.withLock { $0.log }
        unchecked.withLock { $0.append((node.nodeID, epoch, log)) }
    }

    func takePromotions() -> [(node: String, epoch: UInt64, log: [UInt64])] {
        unchecked.withLock { list in
            defer { list.removeAll() }
            return list
        }
    }

    func promotedAt(_ epoch: UInt64) -> String? { promotions.withLock { $0[epoch] } }
}

/// What the simulation found wrong: a safety rule broken, or a cluster that did not recover.
struct ClusterSimulationViolation: Error, CustomStringConvertible {
    let atMilliseconds: Int64
    let rule: String
    var description: String { "at \(atMilliseconds) ms: \(rule)" }
}

/// The replication the control plane steers, reduced to what its safety rests on, and the checks:
/// - a primary acknowledges a write only with `minimumInSync` replicas following it (they take its
///   log) that are members as far as it knows, so a node that promised a newer epoch, follows a newer
///   primary, or is not in the placement, never counts for it;
/// - **one history**: every write acknowledged extends the log acknowledged so far, so a primary that
///   acknowledges holds every earlier acknowledged write and no older primary acknowledges after a
///   newer one;
/// - etcd's placement never goes back to an older epoch, and names only the node promoted to its epoch.
struct SimulatedReplication {
    private(set) var acknowledged: [UInt64] = []
    private(set) var acknowledgedWrites = 0
    private var lastPlacementEpoch: UInt64 = 0
    private var lastMembers: Set<String> = []
    /// Members the placement dropped (removed by the operator, or replaced by the controller).
    private(set) var membersDropped = 0
    private var newestPromotedEpoch: UInt64 = 1

    /// Each replica follows the newest primary it can reach and may follow; each primary then writes
    /// one record and acknowledges its log when enough replicas follow it.
    mutating func step(_ cluster: SimulatedCluster, writes: Bool) throws(ClusterSimulationViolation) {
        let running = cluster.nodes.filter { cluster.isRunning($0) }
        var followers: [String: [SimulatedClusterNode]] = [:]
        for replica in running where replica.role == .replica {
            let (epoch, promised) = replica.state.withLock { ($0.epoch, $0.promised) }
            let reachable = running.filter { $0.role == .primary && cluster.linked($0.nodeID, replica.nodeID) }
            let leader = reachable.filter { $0.epoch >= max(epoch, promised) }.max { ($0.epoch, $0.nodeID) < ($1.epoch, $1.nodeID) }
            guard let leader else {
                // It asks the primaries it reaches in turn; one of an older epoch than it knows refuses,
                // and fences itself.
                for primary in reachable { primary.fence(reason: "\(replica.nodeID) knows epoch \(max(epoch, promised)), newer than \(primary.epoch)") }
                continue
            }
            followers[leader.nodeID, default: []].append(replica)
        }
        for primary in running where primary.role == .primary {
            let following = followers[primary.nodeID] ?? []
            let now = cluster.time.now
            let (epoch, log, members) = primary.state.withLock { state -> (UInt64, [UInt64], Set<String>) in
                if writes && now >= state.writesStoppedUntil { state.log.append(state.epoch) }
                return (state.epoch, state.log, state.members.nodeIDs ?? [])
            }
            for replica in following {
                replica.state.withLock { state in
                    state.epoch = epoch
                    state.log = log
                }
            }
            let counted = following.filter { members.contains($0.nodeID) }.map(\.nodeID).sorted()
            primary.state.withLock {
                $0.inSync = counted
                $0.syncedLogCount = log.count
            }
            guard counted.count >= primary.minimumInSync, log.count > acknowledged.count else { continue }
            guard log.starts(with: acknowledged) else {
                let missing = zip(acknowledged, log).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? log.count
                throw ClusterSimulationViolation(
                    atMilliseconds: cluster.time.now,
                    rule: "\(primary.nodeID) (epoch \(epoch)) acknowledged a write without the acknowledged write at LSN \(missing + 1)")
            }
            acknowledgedWrites += log.count - acknowledged.count
            acknowledged = log
        }
    }

    /// A node promoted to a newer epoch than any before held every acknowledged write when it was
    /// promoted. A PROMOTE that reached its node late (it was stopped while the request waited), after
    /// a newer epoch began, makes a primary of an older epoch than the newest: it lacks that epoch's
    /// writes, but all but `minimumInSync` nodes promised the newer epoch, so it can never acknowledge
    /// (which the checks of every acknowledgement would catch).
    mutating func checkPromotions(_ cluster: SimulatedCluster) throws(ClusterSimulationViolation) -> Int {
        let promotions = cluster.takePromotions()
        for promotion in promotions {
            guard promotion.epoch > newestPromotedEpoch else {
                cluster.note("\(promotion.node)'s promotion to epoch \(promotion.epoch) came after epoch \(newestPromotedEpoch) began")
                continue
            }
            newestPromotedEpoch = promotion.epoch
            guard promotion.log.starts(with: acknowledged) else {
                throw ClusterSimulationViolation(
                    atMilliseconds: cluster.time.now, rule: "\(promotion.node) was promoted to epoch \(promotion.epoch) without every acknowledged write")
            }
        }
        return promotions.count
    }

    mutating func checkPlacement(_ cluster: SimulatedCluster, key: String) throws(ClusterSimulationViolation) {
        guard let kv = cluster.etcd.keyValues[key] else { return }
        guard let placement = try? ClusterPlacement.decode(kv.value) else {
            throw ClusterSimulationViolation(atMilliseconds: cluster.time.now, rule: "etcd holds a placement that does not decode")
        }
        guard placement.epoch >= lastPlacementEpoch else {
            throw ClusterSimulationViolation(
                atMilliseconds: cluster.time.now, rule: "the placement went back from epoch \(lastPlacementEpoch) to \(placement.epoch)")
        }
        if placement.epoch > 1, cluster.promotedAt(placement.epoch) != placement.primary {
            throw ClusterSimulationViolation(
                atMilliseconds: cluster.time.now,
                rule: "the placement names \(placement.primary) the primary of epoch \(placement.epoch), which \(cluster.promotedAt(placement.epoch) ?? "no node") was promoted to")
        }
        if placement.epoch != lastPlacementEpoch { cluster.note("placement: epoch \(placement.epoch), primary \(placement.primary)") }
        let members = Set(placement.members.keys)
        if members != lastMembers {
            membersDropped += lastMembers.subtracting(members).count
            cluster.note("placement: members \(members.sorted()), leaving \(placement.leaving.sorted()), replacing \(placement.replacing.sorted()), removed \(placement.removed.sorted())")
            lastMembers = members
        }
        lastPlacementEpoch = placement.epoch
    }
}
