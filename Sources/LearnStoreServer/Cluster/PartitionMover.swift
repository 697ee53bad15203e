import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import Logging
import NIOCore
import ServiceLifecycle

/// A group's part in partition moves, on its primary (docs/CLUSTER.md, "Moving a partition"). For
/// each move into the group the map lists: read where the
/// source group's primary is, copy the partition's tenants from it (PARTITION_EXPORT) into this
/// group's log as writes its replicas follow, wait until they are acknowledged here, then complete
/// the move in etcd with one transaction that holds only if the map still has this move and neither
/// group's placement changed since the copy began. A failed or interrupted copy starts again from
/// the beginning (the first write of each tenant empties it); whichever node is the primary then
/// resumes it, since the move's state lives in etcd. And once the map gives a partition to another
/// group, it empties the partition's tenants here with one write each (``TenantActor/release()``),
/// which frees their memory and ends their change-feed subscriptions.
public final class PartitionMover: Service, Sendable {
    let configuration: ClusterConfiguration
    let node: ReplicationNode
    let topology: TopologyBoard
    let registry: TenantRegistry
    let etcd: EtcdClient
    let wal: @Sendable () -> WriteAheadLog?
    let logger: Logger
    /// Where its work and its timers run: a thread of its own, not Swift's shared pool, where work
    /// queued by others would hold a move (and the release after it) for seconds.
    let thread: ControlPlaneThread

    init(
        configuration: ClusterConfiguration, node: ReplicationNode, topology: TopologyBoard, registry: TenantRegistry, thread: ControlPlaneThread,
        logger: Logger, wal: @escaping @Sendable () -> WriteAheadLog?
    ) throws(LearnStoreError) {
        self.configuration = configuration
        self.node = node
        self.topology = topology
        self.registry = registry
        self.thread = thread
        self.logger = logger
        self.wal = wal
        etcd = try EtcdClient(endpoints: configuration.endpoints, group: thread.group, executor: thread.executor)
    }

    /// Waits on the mover's own thread.
    func pause(_ duration: Duration) async {
        let (seconds, attoseconds) = duration.components
        let delay = TimeAmount.nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        try? await thread.loop.scheduleTask(in: delay) {}.futureResult.get()
    }

    /// How often the map this node holds is looked at for moves into its group.
    static let pollInterval: Duration = .milliseconds(50)
    /// A copy that failed is tried again after this.
    static let retryInterval: Duration = .seconds(1)

    public func run() async throws {
        await withTaskExecutorPreference(thread.executor) { await runMoves() }
    }

    private func runMoves() async {
        var lastFailure: String?
        var releasedThrough: UInt64 = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if let version = releaseDue(after: releasedThrough) {
                do throws(LearnStoreError) {
                    try await releaseMovedAway()
                    releasedThrough = version
                } catch {
                    logger.warning("partition move: releasing the tenants of partitions moved away failed; trying again", metadata: ["error": "\(error.message)"])
                    await pause(Self.retryInterval)
                }
            } else if let (partition, move, map) = nextMove() {
                do throws(LearnStoreError) {
                    try await adopt(partition, move, map)
                    lastFailure = nil
                } catch {
                    if error.message != lastFailure {
                        logger.warning("partition move: copy failed; trying again", metadata: ["partition": "\(partition)", "move": "\(move.id)", "error": "\(error.message)"])
                    }
                    lastFailure = error.message
                    await pause(Self.retryInterval)
                }
            }
            await pause(Self.pollInterval)
        }
    }

    /// The lowest partition moving into this group, while this node is its primary.
    func nextMove() -> (Int, PartitionMove, PartitionMap)? {
        guard node.role == .primary, let (map, group) = topology.partitioning, let target = map.groups.firstIndex(of: group) else { return nil }
        guard let (partition, move) = map.moves.filter({ $0.value.to == target }).min(by: { $0.key < $1.key }) else { return nil }
        return (partition, move, map)
    }

    /// The map's version when this primary has not yet released the tenants of the partitions it
    /// moved away under it.
    func releaseDue(after released: UInt64) -> UInt64? {
        guard node.role == .primary, let (map, _) = topology.partitioning, map.version > released else { return nil }
        return map.version
    }

    /// Empties the tenants here whose partition another group holds, unless it is moving back here
    /// (the copy in will empty them first).
    func releaseMovedAway() async throws(LearnStoreError) {
        guard let (map, group) = topology.partitioning, let here = map.groups.firstIndex(of: group) else { return }
        var released = 0
        var lastLSN: UInt64 = 0
        for tenantID in registry.tenantIDs {
            let partition = map.partition(of: tenantID)
            guard map.holder(of: partition) != group, map.moves[partition]?.to != here, let tenant = registry.existingTenant(tenantID) else { continue }
            if let lsn = try await tenant.release() {
                released += 1
                lastLSN = max(lastLSN, lsn)
            }
        }
        guard released > 0 else { return }
        if let wal = wal() {
            let last = lastLSN
            _ = try await offload { () throws(LearnStoreError) in wal.waitUntilCommitted(last) }
        }
        logger.notice("partition move: released the tenants of partitions moved away", metadata: ["tenants": "\(released)", "map_version": "\(map.version)"])
    }

    /// One whole attempt: copy, wait for acknowledgement, complete the move.
    func adopt(_ partition: Int, _ move: PartitionMove, _ map: PartitionMap) async throws(LearnStoreError) {
        let started = ContinuousClock.now
        let source = map.holder(of: partition)
        let sourcePlacementKey = ClusterConfiguration.prefix(ofGroup: source) + "placement"
        guard let sourceKV = try await etcd.get(sourcePlacementKey) else { throw LearnStoreError(.notPrimary, "group \(source) has no placement in etcd") }
        let sourcePlacement = try ClusterPlacement.decode(sourceKV.value)
        guard let sourceAddress = sourcePlacement.members[sourcePlacement.primary] else {
            throw LearnStoreError(.notPrimary, "group \(source)'s placement has no address for its primary")
        }
        guard let ownKV = try await etcd.get(configuration.placementKey), let own = try? ClusterPlacement.decode(ownKV.value),
            own.primary == node.nodeID, own.epoch == node.epoch, node.role == .primary
        else { throw LearnStoreError(.notPrimary, "this node is no longer its group's primary") }
        logger.notice("partition move: copying", metadata: [
            "partition": "\(partition)", "move": "\(move.id)", "from": "\(source)", "source_primary": "\(sourcePlacement.primary)",
        ])
        let copied = try await copy(partition, move, from: sourceAddress, epoch: sourcePlacement.epoch, map: map)
        if copied.lastLSN > 0 {
            guard let wal = wal() else { throw LearnStoreError(.loading, "the node is recovering its data") }
            let lastLSN = copied.lastLSN
            let acknowledged = try await offload { () throws(LearnStoreError) in wal.waitUntilCommitted(lastLSN) }
            guard acknowledged else { throw LearnStoreError(.storageUnavailable, "the copy (through LSN \(lastLSN)) was not acknowledged in this group") }
        }
        try await complete(partition, move, guards: [.modRevision(sourcePlacementKey, sourceKV.modRevision), .modRevision(configuration.placementKey, ownKV.modRevision)])
        logger.notice("partition move: done", metadata: [
            "partition": "\(partition)", "move": "\(move.id)", "from": "\(source)", "tenants": "\(copied.tenants)", "pieces": "\(copied.pieces)",
            "milliseconds": "\((ContinuousClock.now - started).components.seconds * 1000 + (ContinuousClock.now - started).components.attoseconds / 1_000_000_000_000_000)",
        ])
    }

    /// Copies every tenant of the partition from the source's primary into this node's log.
    func copy(_ partition: Int, _ move: PartitionMove, from address: String, epoch: UInt64, map: PartitionMap) async throws(LearnStoreError)
        -> (tenants: Int, pieces: Int, lastLSN: UInt64)
    {
        let connection = try await NodeConnection.open(address, credential: node.credential, nodeID: node.nodeID, group: thread.group)
        defer { connection.close() }
        var request = PartitionExportRequest(sourceEpoch: epoch, moveID: move.id, partition: UInt32(partition), mode: .nextTenant, tenant: "")
        var requestID: UInt32 = 10
        var tenants = 0
        var pieces = 0
        var lastLSN: UInt64 = 0
        let notSeenYetUntil = ContinuousClock.now + .seconds(10)
        while true {
            requestID &+= 1
            var writer = ByteWriter(capacity: 128)
            ReplicationMessages.encode(request, into: &writer)
            connection.send(opcode: ReplicationOpcode.partitionExport, requestID: requestID, payload: writer.bytes)
            let frame: Frame
            do {
                frame = try await connection.next(timeout: .seconds(60))
            } catch where error.code == .loading && ContinuousClock.now < notSeenYetUntil {
                // The source has not read the move yet.
                await pause(.milliseconds(20))
                continue
            }
            let piece: PartitionExportPiece
            do { piece = try frame.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodePartitionExportPiece(from: &r) } } catch {
                throw LearnStoreError(.protocolViolation, "\(address): PARTITION_EXPORT reply: \(error)")
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
        let mapKey = ClusterConfiguration.partitionMapKey(configuration.partitionMapName ?? "")
        for _ in 0..<20 {
            guard let mapKV = try await etcd.get(mapKey) else { throw LearnStoreError(.conflict, "the partition map is gone from etcd") }
            let current = try PartitionMap.decode(mapKV.value)
            guard current.moves[partition]?.id == move.id else {
                throw LearnStoreError(.conflict, "the map no longer has move \(move.id) of partition \(partition) (called off?)")
            }
            let completed = try current.completingMove(of: partition, id: move.id)
            if try await etcd.transaction(if: [.modRevision(mapKey, mapKV.modRevision)] + guards, put: [(mapKey, completed.encoded, 0)]) {
                topology.partition(by: completed, group: configuration.name)
                return
            }
            for case .modRevision(let key, let revision) in guards where try await etcd.get(key)?.modRevision != revision {
                throw LearnStoreError(.conflict, "\(key) changed during the copy (a failover or a membership change); copying again")
            }
        }
        throw LearnStoreError(.conflict, "the partition map kept changing; completing the move again later")
    }
}
