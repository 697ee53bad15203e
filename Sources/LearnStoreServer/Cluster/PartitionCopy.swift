import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import Logging

/// Where a copy asks the source group's primary for pieces: a node connection on the replication
/// port (``NodeExportChannel``), or the simulation's.
protocol PartitionExportChannel: Sendable {
    func piece(_ request: PartitionExportRequest) async throws(LearnStoreError) -> PartitionExportPiece
    func close()
}

/// One attempt at a move's part in the group a partition goes to (docs/CLUSTER.md, "Moving a
/// partition"): read where the source group's primary is; while the move is not fenced, copy the
/// partition's tenants from it as they are (they still take writes there, and the source tracks what
/// those touch), wait until that copy is acknowledged in this group, and fence the move in etcd; then
/// copy what changed since (or, for an attempt that finds the move fenced already, every tenant
/// whole), wait until that is acknowledged too, and complete the move with one transaction. Fencing
/// and completing hold only if the map still has this move and neither group's placement changed
/// since the attempt began. Its I/O goes through ports, so the move simulation runs this code with
/// its own etcd, channels and logs.
struct PartitionCopy: Sendable {
    let group: String
    let nodeID: String
    let mapKey: String
    /// This node's role and epoch now.
    let standing: @Sendable () -> (role: NodeRole, epoch: UInt64)
    let etcd: any ControlPlaneStore
    let open: @Sendable (_ address: String) async throws(LearnStoreError) -> any PartitionExportChannel
    let registry: TenantRegistry
    /// Waits until the write at an LSN is acknowledged in this group (false: it will not be).
    let acknowledged: @Sendable (UInt64) async throws(LearnStoreError) -> Bool
    let pause: @Sendable (Duration) async -> Void
    let logger: Logger
    /// Told the map the move completed with (the node serves by it at once).
    let completed: @Sendable (PartitionMap) -> Void
    /// Names each attempt's copy to the source (its tracking of what the tenants' writes touch).
    var tracking: @Sendable () -> UInt64 = { UInt64.random(in: 1...UInt64.max) }
    /// Rounds before the fence: each copies, while the writes go on, the records touched since the
    /// first copy or the round before, so the fenced part has fewer to copy. Another round follows
    /// while the last one copied more than `roundThreshold` records, up to `maximumRounds`.
    var maximumRounds = 3
    var roundThreshold = 1000

    /// How often a source that has not read the move (or its fence) yet is asked again, 20 ms apart.
    static let notSeenYetAttempts = 500

    /// What one attempt did: tenants and pieces copied, and how long each part took. The partition's
    /// writes pause from the fence to the completion (`paused`).
    struct Copied: Sendable {
        var tenants = 0
        var pieces = 0
        /// The copy while the tenants still took writes (zero when the move was fenced already).
        var firstCopy: Duration = .zero
        var changedPieces = 0
        /// This attempt fenced the move after its first copy (else it found the move fenced).
        var fencedAfterFirstCopy = false
        /// Rounds before the fence: the records each copied, and their time.
        var roundRecords: [Int] = []
        var rounds: Int { roundRecords.count }
        var roundTime: Duration = .zero
        var paused: Duration = .zero
        /// Within `paused`: copying the changes (or the whole partition), then waiting until that is
        /// acknowledged in this group.
        var copying: Duration = .zero
        var acknowledging: Duration = .zero
    }

    func run(_ partition: Int, _ move: PartitionMove, _ map: PartitionMap) async throws(LearnStoreError) -> Copied {
        let source = map.holder(of: partition)
        let sourcePlacementKey = ClusterConfiguration.prefix(ofGroup: source) + "placement"
        let ownPlacementKey = ClusterConfiguration.prefix(ofGroup: group) + "placement"
        guard let sourceKV = try await etcd.get(sourcePlacementKey) else { throw LearnStoreError(.notPrimary, "group \(source) has no placement in etcd") }
        let sourcePlacement = try ClusterPlacement.decode(sourceKV.value)
        guard let sourceAddress = sourcePlacement.members[sourcePlacement.primary] else {
            throw LearnStoreError(.notPrimary, "group \(source)'s placement has no address for its primary")
        }
        let (role, epoch) = standing()
        guard let ownKV = try await etcd.get(ownPlacementKey), let own = try? ClusterPlacement.decode(ownKV.value),
            own.primary == nodeID, own.epoch == epoch, role == .primary
        else { throw LearnStoreError(.notPrimary, "this node is no longer its group's primary") }
        // The map this node holds may be older than etcd's: a move it shows in progress may have
        // completed, and a copy of it would empty tenants this group now serves. Only etcd's map says,
        // and only this group's primary completes the move, so it stays in progress until this copy ends.
        guard let mapKV = try await etcd.get(mapKey), let current = try? PartitionMap.decode(mapKV.value),
            let currentMove = current.moves[partition], currentMove.id == move.id
        else {
            throw LearnStoreError(.conflict, "etcd's map no longer has move \(move.id) of partition \(partition) in progress")
        }
        logger.notice("partition move: copying", metadata: [
            "partition": "\(partition)", "move": "\(move.id)", "from": "\(source)", "source_primary": "\(sourcePlacement.primary)",
            "fenced": "\(currentMove.fenced)",
        ])
        let guards: [EtcdClient.Compare] = [.modRevision(sourcePlacementKey, sourceKV.modRevision), .modRevision(ownPlacementKey, ownKV.modRevision)]
        let channel = try await open(sourceAddress)
        defer { channel.close() }
        var report = Copied()
        var copy = Copying(partition: partition, move: move, map: map, epoch: sourcePlacement.epoch, channel: channel, address: sourceAddress)
        if currentMove.fenced {
            // What changed since the first copy is known only to the attempt that made it, which
            // failed: the partition takes writes again while this attempt copies it anew.
            _ = try await change(partition, move, guards: guards, "unfence") { map throws(LearnStoreError) in try map.unfencingMove(of: partition, id: move.id) }
            logger.notice("partition move: unfenced for a new copy while writes go on", metadata: ["partition": "\(partition)", "move": "\(move.id)"])
        }
        try await copyBeforeFence(&copy, &report)
        _ = try await change(partition, move, guards: guards, "fence") { map throws(LearnStoreError) in try map.fencingMove(of: partition, id: move.id) }
        let fenced = ContinuousClock.now
        try await copy.run(.changes, into: registry, pause: pause)
        let copied = ContinuousClock.now
        try await awaitAcknowledged(copy.lastLSN, of: "the copy")
        report.tenants = copy.tenants
        report.pieces = copy.pieces
        report.changedPieces = copy.changedPieces
        report.copying = copied - fenced
        report.acknowledging = ContinuousClock.now - copied
        let completedMap = try await change(partition, move, guards: guards, "complete") { map throws(LearnStoreError) in
            try map.completingMove(of: partition, id: move.id)
        }
        report.paused = ContinuousClock.now - fenced
        completed(completedMap)
        return report
    }

    /// The part of a move while the source still takes the partition's writes: the first copy, then
    /// rounds while they copy more than `roundThreshold` records, each acknowledged in this group.
    private func copyBeforeFence(_ copy: inout Copying, _ report: inout Copied) async throws(LearnStoreError) {
        let started = ContinuousClock.now
        copy.tracking = tracking()
        try await copy.run(.firstCopy, into: registry, pause: pause)
        try await awaitAcknowledged(copy.lastLSN, of: "the first copy")
        report.firstCopy = ContinuousClock.now - started
        while report.rounds < maximumRounds {
            let roundStarted = ContinuousClock.now
            let records = try await copy.run(.round, into: registry, pause: pause)
            try await awaitAcknowledged(copy.lastLSN, of: "round \(report.rounds + 1)")
            report.roundRecords.append(records)
            report.roundTime += ContinuousClock.now - roundStarted
            if records <= roundThreshold { break }
        }
        report.fencedAfterFirstCopy = true
    }

    private func awaitAcknowledged(_ lsn: UInt64, of what: String) async throws(LearnStoreError) {
        guard lsn > 0 else { return }
        guard try await acknowledged(lsn) else {
            throw LearnStoreError(.storageUnavailable, "\(what) (through LSN \(lsn)) was not acknowledged in this group")
        }
    }

    /// One copy's state across its parts: the source asked, the tenants and pieces copied, the last
    /// LSN written.
    struct Copying {
        enum Part {
            /// Every tenant as it is, while it still takes writes in the source (tracked there).
            case firstCopy
            /// The records each tenant's writes touched since the first copy or the round before,
            /// while it still takes writes.
            case round
            /// What changed in each tenant since the first copy, once the move is fenced.
            case changes
        }

        let partition: Int
        let move: PartitionMove
        let map: PartitionMap
        let epoch: UInt64
        let channel: any PartitionExportChannel
        let address: String
        var tracking: UInt64 = 0
        var tenantsSeen: Set<String> = []
        var tenants: Int { tenantsSeen.count }
        var pieces = 0
        var changedPieces = 0
        var lastLSN: UInt64 = 0
        /// The tenants the first copy took: only these may get changes on top.
        var copiedFirst: Set<String> = []

        /// Copies one part; returns the records its pieces put or purged.
        @discardableResult
        mutating func run(_ part: Part, into registry: TenantRegistry, pause: @Sendable (Duration) async -> Void) async throws(LearnStoreError) -> Int {
            let startMode: PartitionExportRequest.Mode = switch part {
            case .changes: .nextTenantChanges
            case .round: .nextTenantRound
            case .firstCopy: .nextTenant
            }
            var records = 0
            var request = self.request(startMode, tenant: "")
            var notSeenYet = 0
            var changesOfTenant = false
            var exported: Set<String> = []
            while true {
                let piece: PartitionExportPiece
                do {
                    piece = try await channel.piece(request)
                } catch where error.code == .loading && notSeenYet < PartitionCopy.notSeenYetAttempts {
                    // The source has not read the move, or its fence, yet.
                    notSeenYet += 1
                    await pause(.milliseconds(20))
                    continue
                }
                if piece.end {
                    if part == .changes { try await emptyTenantsNotExported(exported, in: registry) }
                    return records
                }
                let first = request.mode.startsTenant
                guard CallerIdentity.isValidTenantID(piece.tenant), map.partition(of: piece.tenant) == partition,
                    first ? piece.tenant > request.tenant : piece.tenant == request.tenant
                else { throw LearnStoreError(.protocolViolation, "\(address) exported tenant '\(piece.tenant)', not the next one of partition \(partition)") }
                if first { changesOfTenant = piece.changes }
                guard piece.changes == changesOfTenant, !piece.changes || ((part == .changes || part == .round) && copiedFirst.contains(piece.tenant)),
                    part != .round || piece.changes
                else {
                    throw LearnStoreError(.protocolViolation, "\(address) exported changes of tenant '\(piece.tenant)' this copy did not ask for")
                }
                let mutations = try PartitionCopy.decodeMutations(piece, from: address)
                for case .putRecords(let put) in mutations { records += put.count }
                for case .purgeRecords(let ids) in mutations { records += ids.count }
                // A round's pieces go on top with the next sequences; the sequence jumps once, at the
                // fenced part's continue.
                let position: TenantActor.AdoptedPiece = !first || part == .round ? .later : piece.changes ? .firstOfChanges : .firstOfCopy
                if let (_, lsn) = try await registry.tenant(piece.tenant).adopt(mutations, as: position, sourceSequence: piece.sequence) {
                    lastLSN = max(lastLSN, lsn)
                }
                pieces += 1
                if piece.changes && part == .changes { changedPieces += 1 }
                if first {
                    if part == .firstCopy { copiedFirst.insert(piece.tenant) }
                    tenantsSeen.insert(piece.tenant)
                    exported.insert(piece.tenant)
                }
                if let next = piece.next {
                    let mode: PartitionExportRequest.Mode = part == .round ? .roundPiece : piece.changes ? .changesPiece : .piece
                    request = self.request(mode, tenant: piece.tenant, section: next.section, offset: next.offset)
                } else {
                    request = self.request(startMode, tenant: piece.tenant)
                }
            }
        }

        /// Empties the partition's tenants here that the source's fenced answer did not name: a
        /// copy that failed left them, of writes the source has lost since (never acknowledged,
        /// taken back by a failover or a failed disk) or of an older move.
        mutating func emptyTenantsNotExported(_ exported: Set<String>, in registry: TenantRegistry) async throws(LearnStoreError) {
            for tenantID in registry.tenantIDs where map.partition(of: tenantID) == partition && !exported.contains(tenantID) {
                guard let tenant = registry.existingTenant(tenantID), await !tenant.state.isEmpty else { continue }
                if let (_, lsn) = try await tenant.adopt([], as: .firstOfCopy, sourceSequence: 0) { lastLSN = max(lastLSN, lsn) }
            }
        }

        func request(_ mode: PartitionExportRequest.Mode, tenant: String, section: UInt8 = 0, offset: UInt64 = 0) -> PartitionExportRequest {
            PartitionExportRequest(sourceEpoch: epoch, moveID: move.id, partition: UInt32(partition), mode: mode, tenant: tenant, section: section,
                                   offset: offset, tracking: tracking)
        }
    }

    static func decodeMutations(_ piece: PartitionExportPiece, from address: String) throws(LearnStoreError) -> [TenantMutation] {
        let decoded: Result<[TenantMutation], DecodeError> = piece.mutations.withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            var mutations: [TenantMutation] = []
            do throws(DecodeError) {
                for _ in 0..<piece.mutationCount {
                    let mutation = try MutationCodec.decode(from: &reader)
                    switch mutation {
                    case .resetTenant, .releaseTenant:
                        throw DecodeError(offset: reader.offset, reason: "an export piece may not reset or release the tenant")
                    case .putRecords(let records) where records.contains(where: { $0.tenantID != piece.tenant }):
                        throw DecodeError(offset: reader.offset, reason: "an export piece of \(piece.tenant) holds another tenant's record")
                    default:
                        break
                    }
                    mutations.append(mutation)
                }
                try reader.expectEnd()
                return .success(mutations)
            } catch {
                return .failure(error)
            }
        }
        switch decoded {
        case .success(let mutations): return mutations
        case .failure(let error): throw LearnStoreError(.protocolViolation, "\(address) exported a piece of tenant \(piece.tenant) that does not decode: \(error)")
        }
    }

    /// Writes the map as `step` changes it (fencing or completing the move), if it still has this
    /// move and the guarded placements have not changed; another change of the map meanwhile (a move
    /// of another partition) is retried. Returns the map written.
    func change(_ partition: Int, _ move: PartitionMove, guards: [EtcdClient.Compare], _ what: String,
                _ step: (PartitionMap) throws(LearnStoreError) -> PartitionMap) async throws(LearnStoreError) -> PartitionMap {
        for _ in 0..<20 {
            guard let mapKV = try await etcd.get(mapKey) else { throw LearnStoreError(.conflict, "the partition map is gone from etcd") }
            let current = try PartitionMap.decode(mapKV.value)
            guard current.moves[partition]?.id == move.id else {
                throw LearnStoreError(.conflict, "the map no longer has move \(move.id) of partition \(partition) (called off?)")
            }
            let changed = try step(current)
            if try await etcd.transaction(if: [.modRevision(mapKey, mapKV.modRevision)] + guards, put: [(mapKey, changed.encoded, 0)]) {
                return changed
            }
            for case .modRevision(let key, let revision) in guards where try await etcd.get(key)?.modRevision != revision {
                throw LearnStoreError(.conflict, "\(key) changed during the copy (a failover or a membership change); copying again")
            }
        }
        throw LearnStoreError(.conflict, "the partition map kept changing; trying to \(what) the move again later")
    }
}

/// ``PartitionExportChannel`` over a node connection to the source's replication port.
struct NodeExportChannel: PartitionExportChannel {
    let connection: NodeConnection
    let requestIDs = LockedBox<UInt32>(10)

    func piece(_ request: PartitionExportRequest) async throws(LearnStoreError) -> PartitionExportPiece {
        let requestID = requestIDs.update { id -> UInt32 in
            id &+= 1
            return id
        }
        var writer = ByteWriter(capacity: 128)
        ReplicationMessages.encode(request, into: &writer)
        connection.send(opcode: ReplicationOpcode.partitionExport, requestID: requestID, payload: writer.bytes)
        let frame = try await connection.next(timeout: .seconds(60))
        do { return try frame.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodePartitionExportPiece(from: &r) } } catch {
            throw LearnStoreError(.protocolViolation, "\(connection.address): PARTITION_EXPORT reply: \(error)")
        }
    }

    func close() { connection.close() }
}
