import LearnStoreModel

/// The faults a simulation run injects, and its check that the cluster recovered once they stopped.
extension ClusterSimulation {
    func inject(
        _ result: inout Result, _ random: inout SplitMix64, _ cluster: SimulatedCluster, _ downUntil: inout [Int64],
        controllerKey: String = ClusterConfiguration(endpoints: []).controllerKey
    ) {
        let now = cluster.time.now
        func chance() -> Bool { Double.random(in: 0..<1, using: &random) < options.faultRate }
        func pick() -> Int {
            // A third of the faults go to the primary and a third to the controller, where they matter most.
            switch Int.random(in: 0..<3, using: &random) {
            case 0:
                if let primary = cluster.nodes.firstIndex(where: { $0.role == .primary }) { return primary }
            case 1:
                if let controller = cluster.etcd.keyValues[controllerKey].map({ String(decoding: $0.value, as: UTF8.self) }),
                    let index = cluster.nodes.firstIndex(where: { $0.nodeID == controller })
                {
                    return index
                }
            default:
                break
            }
            return Int.random(in: 0..<cluster.nodes.count, using: &random)
        }
        if chance() {
            let index = pick()
            let node = cluster.nodes[index]
            if node.state.withLock({ $0.alive }) {
                node.state.withLock { $0.alive = false }
                downUntil[index] = now + Int64.random(in: 300...4000, using: &random)
                cluster.note("\(node.nodeID) crashes until \(downUntil[index]) ms")
                result.crashes += 1
            }
        }
        if chance() {
            let node = cluster.nodes[pick()]
            let until = now + Int64.random(in: 500...6000, using: &random)
            node.state.withLock { $0.pausedUntil = max($0.pausedUntil, until) }
            cluster.note("\(node.nodeID) paused until \(until) ms")
            result.pauses += 1
        }
        if chance() {
            let node = cluster.nodes[pick()].nodeID
            let milliseconds = Int64.random(in: 200...5000, using: &random)
            cluster.etcd.cutOff(node, milliseconds: milliseconds)
            cluster.note("\(node) cut off from etcd for \(milliseconds) ms")
            result.etcdCuts += 1
        }
        if chance() {
            let a = pick()
            let b = (a + Int.random(in: 1..<cluster.nodes.count, using: &random)) % cluster.nodes.count
            let milliseconds = Int64.random(in: 200...3000, using: &random)
            cluster.cutLink(cluster.nodes[a].nodeID, cluster.nodes[b].nodeID, milliseconds: milliseconds)
            cluster.note("link \(cluster.nodes[a].nodeID)-\(cluster.nodes[b].nodeID) cut for \(milliseconds) ms")
            result.linkCuts += 1
        }
        if Double.random(in: 0..<1, using: &random) < options.faultRate / 4 {
            let milliseconds = Int64.random(in: 500...2000, using: &random)
            cluster.etcd.outage(milliseconds: milliseconds)
            cluster.note("etcd without a leader for \(milliseconds) ms")
            result.etcdOutages += 1
        }
    }

    enum MachineLoss { case waitingForSpread, done }

    /// Node id → machine name: `count` machines in a random order each get one node, the other nodes
    /// go to random machines.
    static func machines(_ count: Int, nodes: Int, _ random: inout SplitMix64) -> [String: String] {
        var order = Array(0..<nodes)
        order.shuffle(using: &random)
        var machineOf: [String: String] = [:]
        for (position, index) in order.enumerated() {
            machineOf["n\(index)"] = "m\(position < count ? position : Int.random(in: 0..<max(1, count), using: &random))"
        }
        return machineOf
    }

    /// Once every node not lost for good is registered and the placement is settled with its members
    /// spread over the machines as far as the registered nodes allow, stops every node of one machine
    /// for good and says so. Until then false; past `deadline` a violation: the controller did not
    /// spread the members.
    func loseAMachine(
        _ machineOf: [String: String], _ cluster: SimulatedCluster, _ configuration: ClusterConfiguration, _ random: inout SplitMix64,
        _ downUntil: inout [Int64], _ result: inout Result, deadline: Int64
    ) throws(ClusterSimulationViolation) -> Bool {
        let now = cluster.time.now
        let placement = cluster.etcd.keyValues[configuration.placementKey].flatMap { try? ClusterPlacement.decode($0.value) }
        var registered: [String: ClusterNodeEntry] = [:]
        for (key, value) in cluster.etcd.keyValues where key.hasPrefix(configuration.nodesPrefix) {
            registered[String(key.dropFirst(configuration.nodesPrefix.count))] = ClusterNodeEntry.decode(value.value)
        }
        let expected = Set(cluster.nodes.indices.filter { downUntil[$0] != .max }.map { cluster.nodes[$0].nodeID })
        // Judged by the simulation's own machines, not the controller's rules: the counted members
        // cover as many machines as the factor asks, or as the registered nodes run on.
        func spread(_ placement: ClusterPlacement, factor: Int) -> Bool {
            let available = Set(registered.keys.filter { !placement.removed.contains($0) }.map { machineOf[$0] ?? $0 })
            let covered = Set(ControllerRules.countedMemberIDs(placement).map { machineOf[$0] ?? $0 })
            return covered.count == min(factor, available.count)
        }
        guard let placement, let factor = configuration.replicationFactor,
            expected.subtracting(placement.removed).isSubset(of: registered.keys),
            placement.replacing.isEmpty, placement.leaving.isEmpty, ControllerRules.countedMembers(placement) == factor, spread(placement, factor: factor)
        else {
            guard now < deadline else {
                throw ClusterSimulationViolation(
                    atMilliseconds: now,
                    rule: "members not spread over the machines \(options.spreadSeconds) s after the faults: placement \(placement.map { "\($0.members.keys.sorted()) replacing \($0.replacing.sorted())" } ?? "none"), registered \(registered.keys.sorted()), machines \(machineOf.sorted { $0.key < $1.key })")
            }
            return false
        }
        var membersOn: [String: Int] = [:]
        for id in ControllerRules.countedMemberIDs(placement) { membersOn[machineOf[id] ?? id, default: 0] += 1 }
        let survivable = Set(machineOf.values).filter { membersOn[$0, default: 0] <= options.minimumInSync }.sorted()
        guard !survivable.isEmpty else {
            cluster.note("no machine can be lost: every one holds more than \(options.minimumInSync) members")
            return true
        }
        let primaryMachine = machineOf[placement.primary]
        let lost = primaryMachine.flatMap { survivable.contains($0) && Bool.random(using: &random) ? $0 : nil } ?? survivable.randomElement(using: &random)!
        for (index, node) in cluster.nodes.enumerated() where machineOf[node.nodeID] == lost && downUntil[index] != .max {
            node.state.withLock { $0.alive = false }
            downUntil[index] = .max
            result.nodesLostWithMachines += 1
        }
        result.machinesLost += 1
        cluster.note("machine \(lost) is lost with its nodes \(machineOf.filter { $0.value == lost }.keys.sorted())")
        return true
    }

    /// After the faults healed: one primary, the one etcd's placement names, acknowledging writes; with
    /// a replication factor, as many running members as it asks for (or as there are running nodes).
    func checkRecovered(
        _ cluster: SimulatedCluster, _ configuration: ClusterConfiguration, lastAcknowledgedAt: Int64, downUntil: [Int64]
    ) throws(ClusterSimulationViolation) {
        let now = cluster.time.now
        let primaries = cluster.nodes.filter { cluster.isRunning($0) && $0.role == .primary }.map(\.nodeID)
        let placement = cluster.etcd.keyValues[configuration.placementKey].flatMap { try? ClusterPlacement.decode($0.value) }
        guard primaries.count == 1, placement?.primary == primaries[0] else {
            throw ClusterSimulationViolation(
                atMilliseconds: now,
                rule: "\(options.settleSeconds) s after the last fault: primaries \(primaries), placement names \(placement?.primary ?? "none")")
        }
        guard now - lastAcknowledgedAt <= 1000 else {
            throw ClusterSimulationViolation(atMilliseconds: now, rule: "no write acknowledged in the last \(now - lastAcknowledgedAt) ms")
        }
        if let factor = configuration.replicationFactor, let placement {
            let running = Set(cluster.nodes.indices.filter { downUntil[$0] != .max }.map { cluster.nodes[$0].nodeID }).subtracting(placement.removed)
            // A primary on its way out still holds the data (the operator would stop it to go on).
            let members = placement.acknowledgingMembers.union([placement.primary]).filter { running.contains($0) }
            guard members.count >= min(factor, running.count) else {
                throw ClusterSimulationViolation(
                    atMilliseconds: now,
                    rule: "\(options.settleSeconds) s after the last fault: running members \(members.sorted()) of \(placement.members.keys.sorted()), replication factor \(factor), running nodes \(running.sorted())")
            }
        }
    }
}
