import LearnStoreEngine
import LearnStoreModel
import Synchronization

/// The move simulation with each group under its control plane (``ControlledGroup``): time runs in
/// 10 ms ticks; each tick every group's control plane takes its step (faults, restarts, replication,
/// the agents' rounds), the data primaries follow the nodes the control planes made primaries, the
/// waiting calls of agents and moves get turns in one random order, and clients, the operator and the
/// moves act. A primary acknowledges a write when its replication step had enough members following
/// it, and a node promoted or restarted holds exactly the records of its replicated log.
extension MoveWorld {
    func runUnderControlPlanes(_ result: inout MoveSimulation.Result, _ tasks: inout TaskGroup<Void>) async throws {
        try syncPrimaries()
        let faultEnd = options.faultSeconds * 1000
        let settledAfter = faultEnd + options.settleSeconds * 1000
        // Moves need every group settled to complete; past this, they did not once faults stopped.
        let giveUpAt = settledAfter + 120_000
        while true {
            let faulting = time.now < faultEnd
            try await tick(faultEnd: faultEnd, &result, &tasks)
            if !faulting {
                for group in MoveSimulation.groups {
                    recover(group)
                    try await release(group, &result)
                }
                if time.now >= settledAfter, try await settled() { break }
                if time.now >= giveUpAt {
                    let moves = try await map().map.moves
                    let primaries = MoveSimulation.groups.map { "\($0): \(controlled[$0]!.settledPrimary?.nodeID ?? "none settled")" }
                    throw MoveSimulationFailure(message: "not settled \(giveUpAt - faultEnd) ms after the faults: moves \(moves), primaries \(primaries)")
                }
            }
        }
        for group in controlled.values {
            result.failovers += group.promotions
            result.restarts += group.restarts
            result.faults += group.faultsInjected
            result.handoversAsked += group.handoversAsked
            result.handoversCompleted += group.handoversCompleted
        }
    }

    private func tick(faultEnd: Int64, _ result: inout MoveSimulation.Result, _ tasks: inout TaskGroup<Void>) async throws {
        time.advance(by: ClusterSimulation.tickMilliseconds)
        etcd.tick()
        let faulting = time.now < faultEnd
        result.steps += 1
        let (map, _) = try await map()
        for group in MoveSimulation.groups {
            try await controlled[group]!.tick(faultEnd: faultEnd, map: map, random: random, tasks: &tasks) {
                try await acknowledgeReplicated(group)
            }
        }
        try syncPrimaries()
        try startCopies(&tasks)
        try await grantControlledTurns()
        try syncPrimaries()
        switch below(100) {
        case 0..<35: await write(result.steps)
        case 35..<37 where faulting: try await startOrCancelMove(&result)
        case 37..<45: try await release(MoveSimulation.groups[below(2)], &result)
        case 45..<50: recover(MoveSimulation.groups[below(2)])
        default: break
        }
        if let mismatch = copyMismatch.withLock({ $0 }) { throw MoveSimulationFailure(message: mismatch) }
    }

    /// Each waiting call of a running node (or of the operator) may get its turn, in a random order, a
    /// call at a time; some wait for a later tick. The control planes' checks run after each.
    private func grantControlledTurns() async throws {
        while below(10) < 9 {
            let ready = scheduler.waitingNodes.enumerated().filter { isCallerRunning($0.element) }
            guard !ready.isEmpty else { break }
            try scheduler.grant(at: ready[below(ready.count)].offset, proceed: true)
            for group in controlled.values { try group.checkPromotions() }
        }
    }

    private func isCallerRunning(_ name: String) -> Bool {
        for group in controlled.values {
            if let node = group.cluster.node(name) { return group.cluster.isRunning(node) }
        }
        return true
    }

    /// The writes of `group`'s primaries that their last replication step let them acknowledge.
    private func acknowledgeReplicated(_ group: String) async throws {
        let control = controlled[group]!
        for node in controlledPrimaries.withLock({ Array($0.values) }) where node.group == group && node.isAlive {
            if let count = control.acknowledgedCount(of: node.controlled!) { node.log.commit(through: UInt64(count)) }
        }
        try await acknowledgeCommitted()
    }

    /// Follows the control planes: a node that became a primary (promoted, or started as the one
    /// etcd's placement names) gets a data primary holding its log's records; one whose node crashed,
    /// restarted, was fenced or moved to another epoch is gone. Each group's `current` is its live
    /// primary of the newest epoch.
    func syncPrimaries() throws {
        for group in MoveSimulation.groups {
            let control = controlled[group]!
            for (index, node) in control.cluster.nodes.enumerated() {
                let (alive, role, epoch, log) = node.state.withLock { ($0.alive, $0.role, $0.epoch, $0.log) }
                let start = control.start(of: index)
                if let existing = controlledPrimaries.withLock({ $0[node.nodeID] }),
                    !(alive && role == .primary && existing.epoch == epoch && existing.processStart == start)
                {
                    existing.alive.store(false, ordering: .relaxed)
                    controlledPrimaries.withLock { $0[node.nodeID] = nil }
                    note("\(node.nodeID) is no longer the primary of epoch \(existing.epoch) (process start \(existing.processStart))")
                }
                guard alive, role == .primary, controlledPrimaries.withLock({ $0[node.nodeID] }) == nil else { continue }
                let primary = try dataPrimary(of: node, in: control, index: index, epoch: epoch, log: log, start: start)
                controlledPrimaries.withLock { $0[node.nodeID] = primary }
                byAddress.withLock { $0[primary.address] = primary }
                note("\(node.nodeID) serves as the primary of \(group) in epoch \(epoch) with \(log.count) records, tenants \(primary.registry.tenantIDs.sorted())\(primary.isRecovered ? "" : " (recovering)")")
            }
            let live = controlledPrimaries.withLock { $0.values.filter { $0.group == group && $0.isAlive } }
            if let newest = live.max(by: { $0.epoch < $1.epoch }) { current.withLock { $0[group] = newest } }
        }
    }

    private func dataPrimary(of node: SimulatedClusterNode, in control: ControlledGroup, index: Int, epoch: UInt64, log: [UInt64], start: Int) throws -> MoveNode {
        let entries = try history.withLock { history in
            try log.enumerated().map { offset, recordEpoch in
                let lsn = UInt64(offset + 1)
                guard let entry = history[HistoryKey(group: control.name, lsn: lsn, epoch: recordEpoch)] else {
                    throw MoveSimulationFailure(message: "\(node.nodeID)'s log holds LSN \(lsn) of epoch \(recordEpoch), which no primary wrote")
                }
                return (lsn: lsn, entry: entry)
            }
        }
        var states: [String: TenantState] = [:]
        for (_, entry) in entries {
            states[entry.tenantID, default: TenantState(tenantID: entry.tenantID, limits: MoveSimulation.limits)].apply(entry.mutations, sequence: entry.sequence)
        }
        var logState = MoveLog.State()
        logState.entries = entries
        logState.nextLSN = UInt64(log.count) + 1
        let cluster = control.cluster
        let moveLog = MoveLog(logState) { [world = self] entry, lsn in
            let taken = node.state.withLock { state -> Bool in
                guard state.alive, state.role == .primary, state.epoch == epoch, control.start(of: index) == start,
                    cluster.time.now >= state.pausedUntil, cluster.time.now >= state.writesStoppedUntil, UInt64(state.log.count) + 1 == lsn
                else { return false }
                state.log.append(epoch)
                return true
            }
            if taken { world.history.withLock { $0[HistoryKey(group: control.name, lsn: lsn, epoch: epoch)] = entry } }
            return taken
        }
        let board = control.board(index)
        let map = try board.partitioning?.map ?? PartitionMap(partitions: options.partitions, groups: MoveSimulation.groups)
        // As a promotion does: writes wait until the node has read the map in its new epoch.
        board.writeGate.becamePrimary(epoch: epoch)
        let primary = MoveNode(
            name: node.nodeID, group: control.name, epoch: epoch, log: moveLog, map: map,
            states: states, address: node.address, topology: board, controlled: node, processStart: start, running: { cluster.isRunning(node) })
        // A replica promoted already holds its data; a process that started as the primary recovers it
        // from its log first.
        if !control.takeColdStart(index) { primary.finishRecovery() }
        return primary
    }

    /// Every group settled with its primary holding its data, and no move left or copying.
    private func settled() async throws -> Bool {
        for group in MoveSimulation.groups {
            guard let primary = controlled[group]!.settledPrimary, let node = current.withLock({ $0[group] }), node.name == primary.nodeID,
                node.isRunning, node.isRecovered
            else { return false }
        }
        let copying = controlledPrimaries.withLock { $0.values.contains { $0.copying.load(ordering: .relaxed) } }
        return try await map().map.moves.isEmpty && !copying
    }

    /// The node a client writes to: under a control plane any live primary of the group (an old one
    /// may not know yet that it was replaced), else the group's one.
    func clientNode(of group: String) -> MoveNode? {
        guard options.controlPlane else { return current.withLock { $0[group] } }
        let live = controlledPrimaries.withLock { $0.values.filter { $0.group == group && $0.isAlive } }.sorted { $0.name < $1.name }
        return live.isEmpty ? nil : live[below(live.count)]
    }

    /// The primaries that run moves' copies.
    func primaries() -> [MoveNode] {
        options.controlPlane ? controlledPrimaries.withLock { Array($0.values) } : current.withLock { Array($0.values) }
    }
}
