import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import CoreMetrics
import LearnStoreProtocol
import Logging
import Synchronization

/// Answers PARTITION_EXPORT on the primary of the group a partition leaves (docs/CLUSTER.md, "Moving a
/// partition"; docs/PROTOCOL.md, E.8): one piece of one of the partition's tenants per request, as
/// WAL mutations that rebuild it. It serves a move only once this node's map has it. Before the move
/// is fenced the tenants still take writes: a tenant's first piece starts tracking what they touch
/// (``TenantChangeSet``). Once this node's map has the fence, the partition's client writes are
/// refused here (``PartitionWriteGate``), and before a tenant's first piece it waits until the
/// tenant's last write is acknowledged: what it exports then (the changes since the first copy, or
/// the whole tenant) is final and durable in this group.
struct PartitionExporter: Sendable {
    let registry: TenantRegistry
    let topology: TopologyBoard
    /// This node's role and epoch now.
    let standing: @Sendable () -> (role: NodeRole, epoch: UInt64)
    /// Waits until the write at an LSN is acknowledged in this group (false: it will not be).
    let acknowledged: @Sendable (UInt64) async throws(LearnStoreError) -> Bool
    /// Whether this node has recovered its data: until then its tenants are not all there, and an
    /// answer naming none of them would empty them in the group they go to.
    let recovered: @Sendable () -> Bool
    /// Counts the pieces answered (the metrics endpoint), when there is one.
    var piecesExported: Counter?
    /// Told why a tenant's changes are sent whole, when there is one.
    var logger: Logger?

    /// A piece stays well under a replicated WAL record's limit (8 MiB) once the asking node logs it.
    static let maximumPieceBytes = 4 << 20
    static let maximumPieceItems = 2000
    /// The items a piece holds at most (smaller in the simulation, so that copies take many pieces).
    var pieceItems = Self.maximumPieceItems
    /// The partition's tenants in id order, for the move being served: listed once per move rather
    /// than sorting every tenant of the node for each of the partition's tenants.
    let tenantsOfMove = TenantsOfMove()

    final class TenantsOfMove: Sendable {
        private let listed = Mutex<(move: UInt64, partition: Int, tenants: [String])?>(nil)

        /// The first tenant of `partition` after `tenant` (listing them again at a move's first request).
        func next(after tenant: String, move: UInt64, partition: Int, map: PartitionMap, registry: TenantRegistry) -> String? {
            let tenants = listed.withLock { listed -> [String] in
                if tenant.isEmpty || listed?.move != move || listed?.partition != partition {
                    listed = (move, partition, registry.tenantIDs.filter { map.partition(of: $0) == partition })
                }
                return listed!.tenants
            }
            // The first index whose id sorts after `tenant`.
            var low = 0
            var high = tenants.count
            while low < high {
                let middle = (low + high) / 2
                if tenants[middle] <= tenant { low = middle + 1 } else { high = middle }
            }
            return low < tenants.count ? tenants[low] : nil
        }
    }

    func piece(_ request: PartitionExportRequest) async throws(LearnStoreError) -> PartitionExportPiece {
        guard recovered() else { throw LearnStoreError(.loading, "this node is recovering its data; retry shortly") }
        let (role, epoch) = standing()
        guard role == .primary, epoch == request.sourceEpoch else {
            throw LearnStoreError(.notPrimary, "this node is the \(role.name) of epoch \(epoch), not the primary of epoch \(request.sourceEpoch)")
        }
        guard let (map, group) = topology.partitioning else { throw LearnStoreError(.validation, "this node is not part of a partition map") }
        let partition = Int(request.partition)
        guard partition < map.partitions else { throw LearnStoreError(.validation, "the map has \(map.partitions) partitions, not partition \(partition)") }
        guard map.holder(of: partition) == group, let move = map.moves[partition], move.id == request.moveID else {
            if map.version < request.moveID {
                throw LearnStoreError(.loading, "this node has read the partition map up to version \(map.version), not move \(request.moveID) yet; retry shortly")
            }
            throw LearnStoreError(.conflict, "partition \(partition) has no move \(request.moveID) from group \(group) in progress (map version \(map.version))")
        }
        // A copy is exact only with what the tenants' writes touch tracked from its first piece on,
        // and their changes only once they take none.
        guard request.mode.isChanges || request.tracking != 0 else {
            throw LearnStoreError(.validation, "a copy of move \(move.id) needs a tracking token")
        }
        if move.fenced {
            guard !request.mode.isRound else {
                throw LearnStoreError(.conflict, "move \(move.id) is fenced: its rounds are over; ask for the changes")
            }
            // A new attempt unfences the move before it copies again.
            guard request.mode.isChanges else {
                throw LearnStoreError(.loading, "this node has not read that move \(move.id) was unfenced yet (map version \(map.version)); retry shortly")
            }
        } else {
            guard !request.mode.isChanges else {
                throw LearnStoreError(.loading, "this node has not read the fence of move \(move.id) yet (map version \(map.version)); retry shortly")
            }
        }
        var mode = request.mode
        var tenantID = request.tenant
        var cursor = TenantExportCursor.start
        if !mode.startsTenant {
            guard let section = TenantExportCursor.Section(rawValue: request.section) else {
                throw LearnStoreError(.validation, "export section \(request.section) is not one of 0-4")
            }
            cursor = TenantExportCursor(section: section, offset: request.offset)
        }
        while true {
            // Whether this tenant's first piece is asked for (a round starts only then, never by a
            // request for a piece inside one).
            let startingTenant = mode.startsTenant
            if mode.startsTenant {
                guard let next = tenantsOfMove.next(after: tenantID, move: request.moveID, partition: partition, map: map, registry: registry) else {
                    return PartitionExportPiece(end: true)
                }
                tenantID = next
                switch mode {
                case .nextTenantChanges: (cursor, mode) = (.changesStart, .changesPiece)
                case .nextTenantRound: (cursor, mode) = (.changesStart, .roundPiece)
                default: (cursor, mode) = (.start, .piece)
                }
            }
            guard map.partition(of: tenantID) == partition, let tenant = registry.existingTenant(tenantID) else {
                throw LearnStoreError(.validation, "tenant \(tenantID) is not a tenant of partition \(partition) on this node")
            }
            let (sequence, lastWrite) = await tenant.sequenceAndLastWrite
            if sequence == 0 {
                // Never written (a connection that only read): nothing to move.
                mode = Self.nextTenantMode(after: mode)
                continue
            }
            if move.fenced && (cursor == .start || cursor == .changesStart) {
                guard try await acknowledged(lastWrite) else {
                    throw LearnStoreError(.storageUnavailable, "tenant \(tenantID)'s last write (LSN \(lastWrite)) is not acknowledged; retry shortly")
                }
            }
            var items = pieceItems
            // A request that starts a tenant's round starts it once, whatever the retries below.
            var startsRound = mode == .roundPiece && startingTenant
            exporting: while true {
                let exported: (mutations: [TenantMutation], next: TenantExportCursor?)
                var changes = false
                if mode == .roundPiece {
                    let starting = startsRound
                    startsRound = false
                    if let piece = await tenant.exportRound(from: cursor, maximumItems: items, token: request.tracking, starting: starting) {
                        exported = piece
                        changes = true
                    } else if starting {
                        // No changes tracked for this copy here: nothing for a round (the fenced part
                        // copies the tenant whole).
                        mode = .nextTenantRound
                        break exporting
                    } else {
                        throw LearnStoreError(.conflict, "tenant \(tenantID)'s round of copy \(request.tracking) is no longer known here; copy it again")
                    }
                } else if mode == .changesPiece {
                    if let piece = await tenant.exportChanges(from: cursor, maximumItems: items, token: request.tracking) {
                        exported = piece
                        changes = true
                    } else if cursor == .changesStart {
                        // Not known here (tracked for another copy, or lost): the whole tenant instead.
                        let reason = await tenant.changesUnknownReason(token: request.tracking)
                        logger?.notice("partition move: sending a tenant whole instead of its changes", metadata: [
                            "tenant": "\(tenantID)", "partition": "\(partition)", "move": "\(move.id)", "reason": "\(reason)",
                        ])
                        cursor = .start
                        mode = .piece
                        continue
                    } else {
                        throw LearnStoreError(.conflict, "tenant \(tenantID)'s changes since copy \(request.tracking) are no longer known here; copy it again")
                    }
                } else {
                    exported = await tenant.exportPiece(from: cursor, maximumItems: items, tracking: move.fenced ? nil : request.tracking)
                }
                var writer = ByteWriter(capacity: 64 << 10)
                for mutation in exported.mutations { MutationCodec.encode(mutation, into: &writer) }
                if writer.count > Self.maximumPieceBytes && items > 1 {
                    items /= 2
                    continue exporting
                }
                return PartitionExportPiece(
                    end: false, tenant: tenantID, sequence: sequence, next: exported.next.map { ($0.section.rawValue, $0.offset) }, changes: changes,
                    mutationCount: exported.mutations.count, mutations: writer.bytes)
            }
        }
    }

    /// The mode that asks for the tenant after the current one, in the same part of the copy.
    static func nextTenantMode(after mode: PartitionExportRequest.Mode) -> PartitionExportRequest.Mode {
        switch mode {
        case .changesPiece, .nextTenantChanges: .nextTenantChanges
        case .roundPiece, .nextTenantRound: .nextTenantRound
        default: .nextTenant
        }
    }
}
