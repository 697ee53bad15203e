import LearnStoreEngine
import LearnStoreModel
import Synchronization

/// The moves' side of ``MoveWorld``: primaries start copies of moves into their groups, sources
/// export through the simulation's channels, calls wait for turns, and each completed move is
/// compared tenant by tenant with its source.
extension MoveWorld {
    /// Each live primary with a move into its group in its map copies it, one at a time.
    func startCopies(_ tasks: inout TaskGroup<Void>) throws {
        for node in primaries().sorted(by: { $0.name < $1.name })
        where node.isAlive && node.isRecovered && !node.copying.load(ordering: .relaxed) {
            guard let (map, group) = node.topology.partitioning, let target = map.groups.firstIndex(of: group),
                let (partition, move) = map.moves.filter({ $0.value.to == target }).min(by: { $0.key < $1.key })
            else { continue }
            node.copying.store(true, ordering: .relaxed)
            let copy = self.copy(on: node)
            let scheduler = self.scheduler
            let world = self
            try scheduler.start { executor in
                tasks.addTask(executorPreference: executor) {
                    do {
                        let report = try await copy.run(partition, move, map)
                        world.copies.withLock {
                            $0.completed += 1
                            $0.changedPieces += report.changedPieces
                            if report.fencedAfterFirstCopy { $0.afterFirstCopy += 1 }
                            $0.rounds += report.rounds
                        }
                        world.note("\(node.name) completed move \(move.id) of partition \(partition)")
                    } catch {
                        world.copies.withLock { $0.failed += 1 }
                        world.note("\(node.name)'s copy of partition \(partition) failed: \((error as? LearnStoreError)?.message ?? "\(error)")")
                    }
                    node.copying.store(false, ordering: .relaxed)
                    scheduler.roundEnded()
                }
            }
        }
    }

    func copy(on node: MoveNode) -> PartitionCopy {
        let scheduler = self.scheduler
        let world = self
        var copy = PartitionCopy(
            group: node.group, nodeID: node.name, mapKey: MoveSimulation.mapKey, standing: { node.standing },
            etcd: etcd.endpoint(for: node.turnName, scheduler: scheduler),
            open: { address throws(LearnStoreError) in
                guard let source = world.byAddress.withLock({ $0[address] }), source.isAlive else {
                    throw LearnStoreError(.connectionFailed, "cannot connect to \(address) (simulated)")
                }
                return MoveExportChannel(source: source, caller: node.turnName, scheduler: scheduler, exporter: world.exporter(of: source), world: world)
            },
            registry: node.registry,
            acknowledged: { lsn throws(LearnStoreError) in try await world.waitCommitted(node, lsn) },
            pause: { _ in _ = await scheduler.turn(node.turnName) }, logger: world.logger,
            completed: { map in
                world.compareCopy(into: node, completed: map)
                node.topology.partition(by: map, group: node.group)
            })
        // Rounds before the fence, as many as asked whatever they copy: none, one or two.
        copy.maximumRounds = below(3)
        copy.roundThreshold = -1
        return copy
    }

    func exporter(of node: MoveNode) -> PartitionExporter {
        let world = self
        var exporter = PartitionExporter(
            registry: node.registry, topology: node.topology, standing: { node.standing },
            acknowledged: { lsn throws(LearnStoreError) in try await world.waitCommitted(node, lsn) }, recovered: { node.isRecovered })
        exporter.pieceItems = pieceItems
        return exporter
    }

    /// Waits, a turn at a time, until the node's log commits `lsn`; false once the node failed over.
    func waitCommitted(_ node: MoveNode, _ lsn: UInt64) async throws(LearnStoreError) -> Bool {
        while true {
            guard await scheduler.turn(node.turnName) else { throw LearnStoreError(.connectionFailed, "\(node.turnName) is down (simulated)") }
            if node.log.committedLSN >= lsn { return true }
            if !node.isAlive { return false }
        }
    }

    /// Lets waiting calls go on, one at a time in a random order; a call of a node that failed over
    /// fails. Outside healing, some calls wait for a later step.
    func grantTurns(proceedingAll: Bool) throws {
        // Bounded: a call waiting for a commit takes a turn after each look, and commits happen
        // between these grants.
        for _ in 0..<64 where !scheduler.waitingNodes.isEmpty {
            if !proceedingAll && chance(1, in: 3) { return }
            let waiting = scheduler.waitingNodes
            let index = below(waiting.count)
            let alive = current.withLock { $0.values.contains { $0.turnName == waiting[index] && $0.isAlive } }
            try scheduler.grant(at: index, proceed: alive)
            if !proceedingAll && chance(1, in: 2) { return }
        }
    }

    /// A move just completed into `target`'s group: each of the partition's tenants there must be
    /// what it is in the source group, which has taken none of their writes since the fence and has
    /// every earlier one acknowledged. Compared only while the source's node holds its data and the
    /// fenced move (it has not released them yet).
    func compareCopy(into target: MoveNode, completed map: PartitionMap) {
        guard let sourceGroup = MoveSimulation.groups.first(where: { $0 != target.group }),
            let source = current.withLock({ $0[sourceGroup] }), source.isRecovered, let (held, _) = source.topology.partitioning
        else { return }
        for (partition, move) in held.moves where map.holder(of: partition) == target.group && held.holder(of: partition) == sourceGroup {
            guard move.fenced, map.version > move.id else { continue }
            copiesCompared.withLock { $0 += 1 }
            for tenant in tenants where map.partition(of: tenant) == partition {
                let expected = source.registry.existingTenant(tenant).map { actor in actor.withExclusiveAccess { Self.content(of: $0.state) } } ?? []
                let copied = target.registry.existingTenant(tenant).map { actor in actor.withExclusiveAccess { Self.content(of: $0.state) } } ?? []
                guard expected == copied else {
                    let missing = Set(expected).subtracting(copied).sorted().prefix(3)
                    let extra = Set(copied).subtracting(expected).sorted().prefix(3)
                    copyMismatch.withLock { mismatch in
                        if mismatch == nil {
                            mismatch = "move \(move.id) of partition \(partition) into \(target.name): \(tenant) differs from \(source.name)'s: "
                                + "missing \(Array(missing)), extra \(Array(extra))"
                        }
                    }
                    return
                }
                outcomeRowsCompared.withLock { $0 += expected.filter { $0.hasPrefix("outcome ") }.count }
            }
        }
    }

    /// What a tenant holds that a client could tell apart: its records (deleted ones too), outcome
    /// rows and idempotency keys (and their order), in a fixed order.
    static func content(of state: TenantState) -> [String] {
        var lines: [String] = []
        for slot in 0..<UInt32(state.store.slotCount) where !state.store[slot].isPurged { lines.append("record \(state.store.record(at: slot))") }
        state.outcomes.tables.forEachRecord { lines.append("outcome \($0)") }
        for entry in state.idempotency.entriesInOrder { lines.append("key \(entry.key) \(entry.ids)") }
        // The order decides which keys a full table forgets next.
        if state.idempotency.count > 0 { lines.append("keys in order: \(state.idempotency.entriesInOrder.map(\.key))") }
        return lines.sorted()
    }
}
