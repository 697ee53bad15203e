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
/// partition"): read where the source group's primary is, copy the partition's tenants from it into
/// this node's log, wait until the copy is acknowledged in this group, then complete the move in
/// etcd with one transaction that holds only if the map still has this move and neither group's
/// placement changed since the copy began. Its I/O goes through ports, so the control-plane
/// simulation runs this code with its own etcd, channels and logs.
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

    /// How often a source that has not read the move yet is asked again, 20 ms apart.
    static let notSeenYetAttempts = 500

    /// What one attempt did: tenants and pieces copied, and how long the copy and then its
    /// acknowledgement in this group took.
    struct Copied: Sendable {
        var tenants = 0
        var pieces = 0
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
        guard let mapKV = try await etcd.get(mapKey), let current = try? PartitionMap.decode(mapKV.value), current.moves[partition]?.id == move.id else {
            throw LearnStoreError(.conflict, "etcd's map no longer has move \(move.id) of partition \(partition) in progress")
        }
        logger.notice("partition move: copying", metadata: [
            "partition": "\(partition)", "move": "\(move.id)", "from": "\(source)", "source_primary": "\(sourcePlacement.primary)",
        ])
        let copyStarted = ContinuousClock.now
        let copied = try await copy(partition, move, from: sourceAddress, epoch: sourcePlacement.epoch, map: map)
        let copyEnded = ContinuousClock.now
        if copied.lastLSN > 0 {
            guard try await acknowledged(copied.lastLSN) else {
                throw LearnStoreError(.storageUnavailable, "the copy (through LSN \(copied.lastLSN)) was not acknowledged in this group")
            }
        }
        let report = Copied(tenants: copied.tenants, pieces: copied.pieces, copying: copyEnded - copyStarted, acknowledging: ContinuousClock.now - copyEnded)
        try await complete(partition, move, guards: [.modRevision(sourcePlacementKey, sourceKV.modRevision), .modRevision(ownPlacementKey, ownKV.modRevision)])
        return report
    }

    /// Copies every tenant of the partition from the source's primary into this node's log.
    func copy(_ partition: Int, _ move: PartitionMove, from address: String, epoch: UInt64, map: PartitionMap) async throws(LearnStoreError)
        -> (tenants: Int, pieces: Int, lastLSN: UInt64)
    {
        let channel = try await open(address)
        defer { channel.close() }
        var request = PartitionExportRequest(sourceEpoch: epoch, moveID: move.id, partition: UInt32(partition), mode: .nextTenant, tenant: "")
        var tenants = 0
        var pieces = 0
        var lastLSN: UInt64 = 0
        var notSeenYet = 0
        while true {
            let piece: PartitionExportPiece
            do {
                piece = try await channel.piece(request)
            } catch where error.code == .loading && notSeenYet < Self.notSeenYetAttempts {
                // The source has not read the move yet.
                notSeenYet += 1
                await pause(.milliseconds(20))
                continue
            }
            if piece.end { return (tenants, pieces, lastLSN) }
            guard CallerIdentity.isValidTenantID(piece.tenant), map.partition(of: piece.tenant) == partition,
                request.mode == .nextTenant ? piece.tenant > request.tenant : piece.tenant == request.tenant
            else { throw LearnStoreError(.protocolViolation, "\(address) exported tenant '\(piece.tenant)', not the next one of partition \(partition)") }
            let mutations = try Self.decodeMutations(piece, from: address)
            let first = request.mode == .nextTenant
            if let (_, lsn) = try await registry.tenant(piece.tenant).adopt(mutations, first: first, sourceSequence: piece.sequence) {
                lastLSN = max(lastLSN, lsn)
            }
            pieces += 1
            if first { tenants += 1 }
            if let next = piece.next {
                request = PartitionExportRequest(sourceEpoch: epoch, moveID: move.id, partition: UInt32(partition), mode: .piece, tenant: piece.tenant,
                                                 section: next.section, offset: next.offset)
            } else {
                request = PartitionExportRequest(sourceEpoch: epoch, moveID: move.id, partition: UInt32(partition), mode: .nextTenant, tenant: piece.tenant)
            }
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

    /// Writes the map with the move done, if it still has this move and the guarded placements have
    /// not changed; another change of the map meanwhile (a move of another partition) is retried.
    func complete(_ partition: Int, _ move: PartitionMove, guards: [EtcdClient.Compare]) async throws(LearnStoreError) {
        for _ in 0..<20 {
            guard let mapKV = try await etcd.get(mapKey) else { throw LearnStoreError(.conflict, "the partition map is gone from etcd") }
            let current = try PartitionMap.decode(mapKV.value)
            guard current.moves[partition]?.id == move.id else {
                throw LearnStoreError(.conflict, "the map no longer has move \(move.id) of partition \(partition) (called off?)")
            }
            let completedMap = try current.completingMove(of: partition, id: move.id)
            if try await etcd.transaction(if: [.modRevision(mapKey, mapKV.modRevision)] + guards, put: [(mapKey, completedMap.encoded, 0)]) {
                completed(completedMap)
                return
            }
            for case .modRevision(let key, let revision) in guards where try await etcd.get(key)?.modRevision != revision {
                throw LearnStoreError(.conflict, "\(key) changed during the copy (a failover or a membership change); copying again")
            }
        }
        throw LearnStoreError(.conflict, "the partition map kept changing; completing the move again later")
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
