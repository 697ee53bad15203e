import LearnStoreModel

/// The operator in a simulation run: `learnstore cluster remove-node` against the simulated cluster.
extension ClusterSimulation {
    /// The operator's removal of a node: one attempt every 100 ms until the node is removed; after a
    /// refusal (it is the primary, or too few members would be left), a second later. After
    /// `refusalsBeforeCallingOff` refusals in a row the operator calls the removal off
    /// (`readmit-node`), as docs/CLUSTER.md tells one to.
    final class Removal: @unchecked Sendable {
        static let refusalsBeforeCallingOff = 10
        let run: MemberRemovalRun
        var next: Int64
        var inAttempt = false
        var outcome: Swift.Result<MemberRemovalRun.Progress, LearnStoreError>?
        var finished = false
        var refusals = 0
        var callingOff = false

        init(run: MemberRemovalRun, next: Int64) {
            self.run = run
            self.next = next
        }

        func attempt() async {
            do throws(LearnStoreError) {
                if callingOff {
                    _ = try await MemberRemoval.readmit(run.node, configuration: run.configuration, etcd: run.etcd)
                    outcome = .success(.waiting("called off"))
                } else {
                    outcome = .success(try await run.attempt())
                }
            } catch {
                outcome = .failure(error)
            }
            inAttempt = false
        }
    }

    func step(
        _ removal: Removal, now: Int64, _ cluster: SimulatedCluster, _ result: inout Result, _ random: inout SplitMix64, _ downUntil: inout [Int64],
        _ group: inout DiscardingTaskGroup
    ) async throws(ClusterSimulationViolation) {
        guard !removal.finished, !removal.inAttempt else { return }
        let node = removal.run.node
        switch removal.outcome {
        case .success(.removed)?:
            removal.finished = true
            result.removals += 1
            cluster.note("\(node) removed")
            if Bool.random(using: &random), let index = cluster.nodes.firstIndex(where: { $0.nodeID == node }) {
                cluster.nodes[index].state.withLock { $0.alive = false }
                downUntil[index] = .max
                cluster.note("the operator stops \(node) for good")
            }
            return
        case .success(.waiting(let reason))? where removal.callingOff:
            removal.finished = true
            result.removalsCalledOff += 1
            cluster.note("the operator calls the removal of \(node) off: \(reason)")
            return
        case .success(.waiting(let reason))?:
            cluster.note("removal of \(node): \(reason)")
            removal.refusals = 0
            removal.next = now + 100
        case .failure(let error)?:
            cluster.note("removal of \(node) failed: \(error.message)")
            if error.code == .validation {
                result.removalsRefused += 1
                removal.refusals += 1
                removal.callingOff = removal.refusals >= Removal.refusalsBeforeCallingOff
            }
            removal.next = now + 1000
        case nil:
            break
        }
        removal.outcome = nil
        guard now >= removal.next else { return }
        removal.inAttempt = true
        try cluster.start { executor in
            group.addTask(executorPreference: executor) {
                await removal.attempt()
                cluster.scheduler.roundEnded()
            }
        }
    }

    /// The operator's handovers: the next request's time, and the one waiting for its outcome.
    struct Handovers {
        var next: Int64 = 1_000
        var pending: HandoverRecord?
    }

    /// During the faults, every 1 to 4 s: asks for a handover of the primary to a random member
    /// counted as in sync (as `learnstore cluster handover` writes it), and notes how the last ended:
    /// its node became the primary, or the controller gave it up.
    func handOver(_ handovers: inout Handovers, _ cluster: SimulatedCluster, _ configuration: ClusterConfiguration, _ random: inout SplitMix64,
                  _ result: inout Result, faultEnd: Int64) async {
        let placement = cluster.etcd.keyValues[configuration.placementKey].flatMap { try? ClusterPlacement.decode($0.value) }
        if let pending = handovers.pending {
            let stored = cluster.etcd.keyValues[configuration.handoverKey].flatMap { HandoverRecord.decode($0.value) }
            if let placement, placement.epoch > pending.epoch, placement.primary == pending.to, stored == nil {
                result.handoversCompleted += 1
                handovers.pending = nil
            } else if let stored, stored.error != nil, stored.to == pending.to, stored.epoch == pending.epoch {
                result.handoversGivenUp += 1
                cluster.note("handover to \(pending.to) given up: \(stored.error ?? "")")
                handovers.pending = nil
            } else if placement.map({ $0.epoch > pending.epoch }) == true {
                handovers.pending = nil
            }
        }
        let now = cluster.time.now
        guard now < faultEnd, now >= handovers.next, let placement else { return }
        handovers.next = now + Int64.random(in: 1_000...4_000, using: &random) / Self.tickMilliseconds * Self.tickMilliseconds
        guard let to = placement.acknowledgingMembers.subtracting([placement.primary]).sorted().randomElement(using: &random) else { return }
        let record = HandoverRecord(to: to, epoch: placement.epoch)
        guard (try? await cluster.etcd.endpoint(for: SimulatedCluster.operatorName).put(configuration.handoverKey, record.encoded, lease: 0)) != nil else { return }
        handovers.pending = record
        result.handoversRequested += 1
        cluster.note("the operator asks for a handover to \(to) at epoch \(placement.epoch)")
    }

    /// The other groups of a partition map, each only a placement and a primary's key in etcd, whose
    /// primaries move between machines as failovers there would move them.
    struct OtherGroups {
        var map: PartitionMap?
        var machines = 0
        var next: Int64 = 2_000
        var lastSpreading: HandoverRecord?

        init() {}

        /// Writes the map naming this group and `count` others, and each other group's placement and
        /// primary on a random machine; `configuration` then names the map.
        init(count: Int, machines: Int, _ cluster: SimulatedCluster, _ configuration: inout ClusterConfiguration, _ random: inout SplitMix64) async {
            // Named below this group's name: of groups whose primaries share a machine, the greatest moves.
            let groups = [configuration.name] + (1...count).map { "aux\($0)" }
            guard let map = try? PartitionMap(partitions: 8, groups: groups) else { return }
            self.map = map
            self.machines = machines
            configuration.partitionMapName = "simulated"
            let etcd = cluster.etcd.endpoint(for: SimulatedCluster.operatorName)
            _ = try? await etcd.put(ClusterConfiguration.partitionMapKey("simulated"), map.encoded, lease: 0)
            for group in groups.dropFirst() { await place(group, cluster, &random) }
        }

        private func place(_ group: String, _ cluster: SimulatedCluster, _ random: inout SplitMix64) async {
            let prefix = ClusterConfiguration.prefix(ofGroup: group)
            let primary = group + "-p"
            let address = "\(primary).sim:7000"
            let placement = ClusterPlacement(epoch: 1, primary: primary, members: [primary: address])
            let entry = ClusterNodeEntry(replication: address, role: .primary, epoch: 1, client: address, machine: "m\(Int.random(in: 0..<machines, using: &random))")
            let etcd = cluster.etcd.endpoint(for: SimulatedCluster.operatorName)
            _ = try? await etcd.put(prefix + "placement", placement.encoded, lease: 0)
            _ = try? await etcd.put(prefix + "nodes/" + primary, entry.encoded, lease: 0)
            cluster.note("\(group)'s primary is on \(entry.machine ?? "")")
        }

        /// During the faults, every 2 to 5 s, one other group's primary moves to a random machine; and
        /// counts the handovers this group's controller asked for itself (not the operator's `pending`).
        mutating func step(
            _ cluster: SimulatedCluster, _ configuration: ClusterConfiguration, _ pending: HandoverRecord?, _ random: inout SplitMix64,
            _ result: inout Result, faultEnd: Int64
        ) async {
            if let stored = cluster.etcd.keyValues[configuration.handoverKey].flatMap({ HandoverRecord.decode($0.value) }), stored.error == nil,
                stored != pending, stored != lastSpreading
            {
                lastSpreading = stored
                result.spreadingHandovers += 1
                cluster.note("the controller asks for a handover to \(stored.to) to spread primaries")
            }
            let now = cluster.time.now
            guard now < faultEnd, now >= next, let map else { return }
            next = now + Int64.random(in: 2_000...5_000, using: &random) / ClusterSimulation.tickMilliseconds * ClusterSimulation.tickMilliseconds
            if let group = map.groups.dropFirst().randomElement(using: &random) { await place(group, cluster, &random) }
        }
    }
}
