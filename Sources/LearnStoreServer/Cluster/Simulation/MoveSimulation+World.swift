import CanvasOutcomes
import LearnStoreEngine
import LearnStoreModel
import LearnStoreProtocol
import Logging
import Synchronization

/// The two groups, etcd and the clients of one ``MoveSimulation`` run.
final class MoveWorld: Sendable {
    let options: MoveSimulation.Options
    /// Items per export piece in this run.
    let pieceItems: Int
    let random: Mutex<SplitMix64>
    let time: SimulatedTime
    let etcd: SimulatedEtcd
    let scheduler: SimulatedScheduler
    /// Under a control plane: each group's nodes and agents, the primaries they made (by node id), and
    /// every record any of them wrote, by LSN and epoch (a node's log names its records that way).
    let controlled: [String: ControlledGroup]
    let controlledPrimaries = Mutex<[String: MoveNode]>([:])
    let history = Mutex<[HistoryKey: LogEntry]>([:])
    let trace = Mutex<[String]>([])
    /// Each group's current primary.
    let current = Mutex<[String: MoveNode]>([:])
    /// Every incarnation, by its replication address.
    let byAddress = Mutex<[String: MoveNode]>([:])
    let pending = Mutex<[Pending]>([])
    let acknowledged = Mutex<[(tenant: String, id: RecordID, group: String)]>([])
    let copies = Mutex<(completed: Int, failed: Int, afterFirstCopy: Int, changedPieces: Int, rounds: Int)>((0, 0, 0, 0, 0))
    /// Records a purge was asked for (their creation's acknowledgement no longer says they are held).
    let purged = Mutex<Set<RecordID>>([])
    /// The first difference found between a completed move's copy and its source, and how many
    /// completions were compared.
    let copyMismatch = Mutex<String?>(nil)
    let copiesCompared = Mutex<Int>(0)
    /// Outcome rows of the tenants compared at completed moves, and the outcome results ingested.
    let outcomeRowsCompared = Mutex<Int>(0)
    let outcomeIngests = Mutex<Int>(0)
    /// Every map a group's nodes have observed: a promoted replica may hold any of them (replicas
    /// read the map on their own, and may lag the primary they replace).
    let observedMaps = Mutex<[String: [PartitionMap]]>([:])
    let logger: Logger
    let tenants: [String]
    private let addresses = Atomic<Int>(20_000)

    init(seed: UInt64, options: MoveSimulation.Options) {
        self.options = options
        pieceItems = options.pieceItems ?? 2 + Int(seed % 7)
        random = Mutex(SplitMix64(seed: seed))
        var logger = Logger(label: "learnstore.move-simulation")
        logger.logLevel = .critical
        self.logger = logger
        tenants = (0..<options.tenants).map { "t\($0)" }
        let time = SimulatedTime()
        let etcd = SimulatedEtcd(time: time)
        let scheduler = SimulatedScheduler()
        self.time = time
        self.etcd = etcd
        self.scheduler = scheduler
        controlled = options.controlPlane
            ? Dictionary(uniqueKeysWithValues: MoveSimulation.groups.map { group in
                (group, ControlledGroup(group, time: time, etcd: etcd, scheduler: scheduler, options: options, seed: seed, logger: logger))
            })
            : [:]
    }

    func note(_ line: String) { trace.withLock { $0.append(line) } }
    func below(_ bound: Int) -> Int { random.withLock { $0.next(below: bound) } }
    func chance(_ numerator: Int, in denominator: Int) -> Bool { random.withLock { $0.chance(numerator, in: denominator) } }

    var world: SimulatedEtcd.Endpoint { etcd.endpoint(for: "world") }

    /// The map as etcd holds it: the simulation's own view, which etcd's faults do not cut off.
    func map() async throws -> (map: PartitionMap, revision: Int64) {
        guard let stored = etcd.keyValues[MoveSimulation.mapKey] else { throw MoveSimulationFailure(message: "the map is gone") }
        return (try PartitionMap.decode(stored.value), stored.modRevision)
    }

    /// Starts a group's primary: a new one of `epoch` (etcd's placement names it), or, given
    /// `restarting`, that node again in place: the same id, epoch and address, so no placement changes.
    func start(_ group: String, epoch: UInt64, log: MoveLog, map: PartitionMap, states: [String: TenantState], restarting: MoveNode? = nil) async throws {
        let address = restarting?.address ?? "127.0.0.1:\(addresses.wrappingAdd(1, ordering: .relaxed).newValue)"
        let node = MoveNode(name: "\(group)-\(epoch)", group: group, epoch: epoch, log: log, map: map, states: states, address: address,
                            incarnation: (restarting?.incarnation ?? 0) + (restarting == nil ? 0 : 1))
        current.withLock { $0[group] = node }
        observedMaps.withLock { $0[group, default: []].append(map) }
        byAddress.withLock { $0[node.address] = node }
        guard restarting == nil else { return }
        let placement = ClusterPlacement(epoch: epoch, primary: node.name, members: [node.name: node.address])
        try await world.put(ClusterConfiguration.prefix(ofGroup: group) + "placement", placement.encoded, lease: 0)
    }

    func run(_ result: inout MoveSimulation.Result) async throws {
        let initial = try PartitionMap(partitions: options.partitions, groups: MoveSimulation.groups)
        try await world.put(MoveSimulation.mapKey, initial.encoded, lease: 0)
        if options.controlPlane {
            for group in MoveSimulation.groups { try await controlled[group]!.start(map: initial) }
        } else {
            for group in MoveSimulation.groups { try await start(group, epoch: 1, log: MoveLog(), map: initial, states: [:]) }
        }
        var failure: (any Error)?
        await withTaskGroup(of: Void.self) { tasks in
            do {
                if options.controlPlane {
                    try await runUnderControlPlanes(&result, &tasks)
                } else {
                    for step in 0..<options.steps {
                        result.steps += 1
                        try await self.step(step, &result, &tasks)
                        if let mismatch = copyMismatch.withLock({ $0 }) { throw MoveSimulationFailure(message: mismatch) }
                    }
                    try await heal(&result, &tasks)
                }
                if let mismatch = copyMismatch.withLock({ $0 }) { throw MoveSimulationFailure(message: mismatch) }
                try await checkEveryAcknowledgedWriteIsHeld()
            } catch {
                failure = error
            }
            scheduler.finish()
        }
        result.acknowledged = acknowledged.withLock { $0.count }
        (result.movesCompleted, result.copiesFailed, result.completedAfterFirstCopy, result.changedPieces, result.rounds) = copies.withLock {
            ($0.completed, $0.failed, $0.afterFirstCopy, $0.changedPieces, $0.rounds)
        }
        result.copiesCompared = copiesCompared.withLock { $0 }
        result.outcomeRowsCompared = outcomeRowsCompared.withLock { $0 }
        result.outcomeIngests = outcomeIngests.withLock { $0 }
        if let failure { throw failure }
    }

    func step(_ index: Int, _ result: inout MoveSimulation.Result, _ tasks: inout TaskGroup<Void>) async throws {
        try startCopies(&tasks)
        switch below(100) {
        case 0..<30: await write(index)
        case 30..<45: try await commit(MoveSimulation.groups[below(2)], fully: false)
        case 45..<55: try await observe(MoveSimulation.groups[below(2)])
        case 55..<60: try await startOrCancelMove(&result)
        case 60..<62: try await failOver(MoveSimulation.groups[below(2)], &result)
        case 62..<68: try await release(MoveSimulation.groups[below(2)], &result)
        case 68..<72: recover(MoveSimulation.groups[below(2)])
        default: try grantTurns(proceedingAll: false)
        }
    }

    /// Faults and new moves stop; every node observes the map, logs commit, calls proceed, until
    /// no move is left.
    func heal(_ result: inout MoveSimulation.Result, _ tasks: inout TaskGroup<Void>) async throws {
        for _ in 0..<5000 {
            for group in MoveSimulation.groups {
                recover(group)
                try await observe(group)
                try await commit(group, fully: true)
                try await release(group, &result)
            }
            try startCopies(&tasks)
            try grantTurns(proceedingAll: true)
            let (map, _) = try await map()
            let copying = current.withLock { $0.values.contains { $0.copying.load(ordering: .relaxed) } }
            if map.moves.isEmpty && !copying && scheduler.waitingNodes.isEmpty { return }
        }
        throw MoveSimulationFailure(message: "the moves did not complete once faults stopped: \(try await map().map.moves)")
    }

    // MARK: clients

    /// A client writes to a tenant in a group: its node takes it only if its map routes the tenant
    /// there and its gate lets the write through. Most writes create a record (some with an
    /// idempotency key); the rest patch, delete or purge records the tenant holds, so a move's first
    /// copy races writes that change what it has read.
    func write(_ index: Int) async {
        let tenant = tenants[below(tenants.count)]
        guard let node = clientNode(of: MoveSimulation.groups[below(2)]), node.isRunning, node.isRecovered,
            node.topology.route(tenant: tenant) == .here
        else { return }
        let caller = CallerIdentity(tenantID: tenant, personID: UUID16(high: 1, low: 1), scopes: [.recordsRead, .recordsWrite, .outcomesWrite, .admin])
        let actor = node.registry.tenant(tenant)
        if options.outcomes, chance(1, in: 4) {
            await ingestOutcome(index, node: node, actor: actor, caller: caller)
            return
        }
        let held = actor.withExclusiveAccess { actor -> [LearningRecord] in
            let store = actor.state.store
            return (0..<UInt32(store.slotCount)).filter { !store[$0].isPurged }.map { store.record(at: $0) }
        }
        let kind = below(20)
        if kind >= 12, !held.isEmpty {
            let target = held[below(held.count)]
            let written: (sequence: UInt64, lsn: UInt64)?
            switch kind {
            case 12..<17: written = (try? await actor.patch(target.id, RecordBody(score: Double(below(101))), caller: caller)).map { ($0.sequence, $0.lsn) }
            case 17..<19: written = (try? await actor.delete(target.id, caller: caller)).map { ($0.sequence, $0.lsn) }
            default:
                _ = purged.withLock { $0.insert(target.id) }
                written = (try? await actor.purgePerson(target.personID, dryRun: false, caller: caller)).map { ($0.sequence, $0.lsn) }
            }
            guard let written, written.lsn > 0 else { return }
            note("\(node.name) took a change of \(tenant)'s \(target.id) (sequence \(written.sequence), LSN \(written.lsn))")
            return
        }
        let body = RecordBody(personID: UUID16(high: 2, low: UInt64(index)), title: "w\(index)", score: 50)
        let key = chance(1, in: 4) ? "k\(index)" : nil
        guard let write = try? await actor.create(body, caller: caller, idempotencyKey: key), write.lsn > 0 else { return }
        pending.withLock { $0.append(Pending(node: node, lsn: write.lsn, tenant: tenant, id: write.result.id)) }
        note("\(node.name) took a write of \(tenant) (sequence \(write.sequence), LSN \(write.lsn))")
    }

    /// An outcome result created, re-assessed or deleted (40 ids per tenant, a quarter deleted, each version newer
    /// than the last), so that moves copy outcome rows that change while they copy.
    func ingestOutcome(_ index: Int, node: MoveNode, actor: TenantActor, caller: CallerIdentity) async {
        let at = Timestamp(milliseconds: 1_700_000_000_000 + Int64(index) * 1000)
        let result = OutcomeResult(
            id: String(100 + below(40)), learningOutcomeID: String(10 + below(3)), userUUID: "s\(below(4))", resultContextType: "Course", resultContextID: "1",
            score: Double(below(6)), possible: 5, workflowState: chance(1, in: 4) ? "deleted" : "active", createdAt: at, updatedAt: at, assessedAt: at,
            metadata: EventMetadata(eventTime: at))
        let event = OutcomeEvent(name: .learningOutcomeResultUpdated, entity: .result(result))
        guard let write = try? await actor.ingestOutcomes([Array(event.json.serialized.utf8)], caller: caller), write.lsn > 0 else { return }
        outcomeIngests.withLock { $0 += 1 }
        note("\(node.name) took an outcome result of \(actor.tenantID) (sequence \(write.sequence), LSN \(write.lsn))")
    }

    /// The group's log commits some or all of what it holds; writes it passes are acknowledged.
    func commit(_ group: String, fully: Bool) async throws {
        guard let node = current.withLock({ $0[group] }) else { return }
        let last = node.log.state.withLock { $0.nextLSN - 1 }
        let committed = node.log.committedLSN
        node.log.commit(through: fully || last <= committed ? last : committed + UInt64(below(Int(last - committed)) + 1))
        try await acknowledgeCommitted()
    }

    /// The writes whose logs committed them are acknowledged; those of nodes no longer alive never will be.
    func acknowledgeCommitted() async throws {
        let (map, _) = try await map()
        let done = pending.withLock { list -> [Pending] in
            let done = list.filter { $0.node.log.committedLSN >= $0.lsn }
            list.removeAll { $0.node.log.committedLSN >= $0.lsn || !$0.node.isAlive }
            return done
        }
        for write in done {
            let partition = map.partition(of: write.tenant)
            if map.holder(of: partition) != write.node.group && map.moves[partition] == nil {
                throw MoveSimulationFailure(message: "\(write.node.name) acknowledged a write of \(write.tenant), whose partition \(partition) etcd gives to \(map.holder(of: partition))")
            }
            acknowledged.withLock { $0.append((write.tenant, write.id, write.node.group)) }
            note("\(write.node.name) acknowledged the write of \(write.tenant) at LSN \(write.lsn)")
        }
    }

    /// The group's node reads etcd's map (nodes see changes late).
    func observe(_ group: String) async throws {
        guard let node = current.withLock({ $0[group] }), node.isAlive else { return }
        let (map, _) = try await map()
        defer { node.topology.writeGate.mapRead(duringEpoch: node.epoch) }
        if let held = node.topology.partitioning?.map, map.version > held.version {
            guard map.canFollow(held) else { throw MoveSimulationFailure(message: "map version \(map.version) cannot follow \(held.version)") }
            node.topology.partition(by: map, group: group)
            observedMaps.withLock { $0[group, default: []].append(map) }
        }
    }

    // MARK: the operator and the faults

    func startOrCancelMove(_ result: inout MoveSimulation.Result) async throws {
        let (map, revision) = try await map()
        let changed: PartitionMap
        if let partition = map.moves.keys.first {
            guard chance(1, in: 6) else { return }
            changed = try map.cancellingMove(of: partition)
            note("operator: cancel the move of partition \(partition)")
        } else if options.balancer, chance(1, in: 2), let (partition, target) = await balancerMove(map) {
            changed = try map.startingMove(of: partition, to: target)
            result.movesStarted += 1
            result.balancerMoves += 1
            note("balancer: move partition \(partition) to \(target) (move \(changed.version))")
        } else {
            let partition = below(map.partitions)
            let target = MoveSimulation.groups.first { $0 != map.holder(of: partition) }!
            changed = try map.startingMove(of: partition, to: target)
            result.movesStarted += 1
            note("operator: move partition \(partition) to \(target) (move \(changed.version))")
        }
        do throws(LearnStoreError) {
            _ = try await world.transaction(if: [.modRevision(MoveSimulation.mapKey, revision)], put: [(MoveSimulation.mapKey, changed.encoded, 0)])
        } catch {
            // An etcd outage: the operator's command fails, as it would.
            note("operator: the command failed: \(error.message)")
        }
    }

    /// The move the balancer would start on the figures the groups' primaries would publish now
    /// (records per partition, as their registries hold them, recovered or not), with a tight policy
    /// so that it often has one; nil when it waits.
    func balancerMove(_ map: PartitionMap) async -> (partition: Int, to: String)? {
        var figures: [String: PartitionFigures] = [:]
        for (group, node) in current.withLock({ $0 }) {
            var records: [Int: Int] = [:]
            for partition in 0..<map.partitions where map.holder(of: partition) == group { records[partition] = 0 }
            for tenantID in node.registry.tenantIDs where records[map.partition(of: tenantID)] != nil {
                records[map.partition(of: tenantID), default: 0] += await node.registry.existingTenant(tenantID)?.recordCount ?? 0
            }
            figures[group] = PartitionFigures(records: records, at: 0)
        }
        guard let policy = try? BalancerPolicy(measure: .records, tolerancePercent: 5, cooldownSeconds: 1, minimumMean: 0),
            case .move(let partition, let to, _, _) = PartitionBalancer.decide(map: map, figures: figures, policy: policy, now: 0)
        else { return nil }
        return (partition, to)
    }

    /// The group's primary dies: its uncommitted writes are lost, and a new primary of a newer epoch
    /// starts from the committed ones, with a map its group observed at some point (maybe an old one);
    /// or, a third of the time, the same node starts again in place before any failover (same id,
    /// epoch and address: etcd's placement does not change). Either starts without its data until a
    /// later step recovers it.
    func failOver(_ group: String, _ result: inout MoveSimulation.Result) async throws {
        guard let old = current.withLock({ $0[group] }) else { return }
        old.alive.store(false, ordering: .relaxed)
        let kept = old.log.state.withLock { state -> MoveLog.State in
            state.stopped = true
            var kept = MoveLog.State()
            kept.entries = state.entries.filter { $0.lsn <= state.committed }
            kept.nextLSN = state.nextLSN
            kept.committed = state.committed
            return kept
        }
        var states: [String: TenantState] = [:]
        for (_, entry) in kept.entries {
            states[entry.tenantID, default: TenantState(tenantID: entry.tenantID, limits: MoveSimulation.limits)].apply(entry.mutations, sequence: entry.sequence)
        }
        let seen = observedMaps.withLock { $0[group] ?? [] }
        let observed = seen.isEmpty ? try await map().map : seen[below(seen.count)]
        if chance(1, in: 3) {
            try await start(group, epoch: old.epoch, log: MoveLog(kept), map: observed, states: states, restarting: old)
            result.restarts += 1
            note("\(old.turnName) restarted in place (committed through LSN \(kept.committed))")
            return
        }
        try await start(group, epoch: old.epoch + 1, log: MoveLog(kept), map: observed, states: states)
        result.failovers += 1
        note("\(old.turnName) failed over to \(group)-\(old.epoch + 1) (committed through LSN \(kept.committed))")
    }

    /// The group's primary has recovered its data (a new incarnation starts without it).
    func recover(_ group: String) {
        guard let node = current.withLock({ $0[group] }), !node.isRecovered else { return }
        node.finishRecovery()
        note("\(node.name) recovered its data")
    }

    func release(_ group: String, _ result: inout MoveSimulation.Result) async throws {
        guard let node = current.withLock({ $0[group] }), node.isRunning, node.isRecovered, node.topology.writeGate.mapIsCurrent,
            let (map, _) = node.topology.partitioning
        else { return }
        guard node.releasedThrough.withLock({ $0 }) < map.version else { return }
        let released: Int
        do throws(LearnStoreError) {
            released = try await PartitionMover.releaseMovedAway(map: map, group: group, registry: node.registry).released
        } catch {
            // Under a control plane a node stops being the primary on its own; it tries again as a
            // node does, at its next look.
            guard options.controlPlane, error.code == .notPrimary else { throw error }
            note("\(node.name)'s release failed: \(error.message)")
            return
        }
        node.releasedThrough.withLock { $0 = map.version }
        result.releases += released
        if released > 0 { note("\(node.name) released \(released) tenants") }
    }

    // MARK: the end

    func checkEveryAcknowledgedWriteIsHeld() async throws {
        let (map, _) = try await map()
        let purged = purged.withLock { $0 }
        for (tenant, id, group) in acknowledged.withLock({ $0 }) where !purged.contains(id) {
            let holder = map.group(of: tenant)
            guard let node = current.withLock({ $0[holder] }), let actor = node.registry.existingTenant(tenant) else {
                throw MoveSimulationFailure(message: "acknowledged write \(id) of \(tenant) (in \(group)): \(holder) does not hold the tenant")
            }
            let present = actor.withExclusiveAccess { actor in
                actor.state.indexes.slot(of: id, in: actor.state.store).map { !actor.state.store[$0].isPurged } ?? false
            }
            guard present else {
                throw MoveSimulationFailure(message: "acknowledged write \(id) of \(tenant) (in \(group)) is lost: \(holder), which holds the tenant, lacks it")
            }
        }
    }
}
