import LearnStoreEngine
import LearnStoreModel

/// The writes a partition move makes in a group's log, run through the simulated storage with its
/// faults and crashes: a tenant copied in, piece by piece, from another tenant's state (as the group a
/// partition moves to logs it; the first piece empties the tenant and continues a higher sequence),
/// or released (as the group a partition left empties it). Each piece is a write of its own, so a
/// crash or a failed write can leave a tenant part-copied: recovery must give exactly the pieces that
/// were made durable, like any other writes.
extension DurabilitySimulation {
    mutating func moveWrite(_ tenant: String) throws {
        if moveRandom.chance(1, in: 3) {
            let before = history[tenant]?.count ?? 0
            try applyWrite(tenant) { actor in
                guard let lsn = try? actor.release() else { return nil }
                return (actor.state.sequence, lsn)
            }
            if (history[tenant]?.count ?? 0) > before {
                result.releases += 1
                note("\(tenant) released")
            }
            return
        }
        let sources = tenantIDs.filter { $0 != tenant }
        guard !sources.isEmpty else { return }
        let source = actors[sources[moveRandom.next(below: sources.count)]]!.withExclusiveAccess { $0.state }
        let sourceSequence = source.sequence + UInt64(moveRandom.next(below: 50))
        let items = 1 + moveRandom.next(below: 8)
        var cursor: TenantExportCursor? = .start
        var first = true
        while let current = cursor {
            let (piece, next) = Self.movePiece(of: source, from: current, maximumItems: items, as: tenant)
            let isFirst = first
            let before = history[tenant]?.count ?? 0
            try applyWrite(tenant) { actor in
                guard let (sequence, lsn) = try? actor.adopt(piece, as: isFirst ? .firstOfCopy : .later, sourceSequence: sourceSequence) else { return nil }
                return (sequence, lsn)
            }
            // A refused piece ends this copy; the next one would start again with a reset.
            guard (history[tenant]?.count ?? 0) > before else { return }
            result.movePieces += 1
            first = false
            cursor = next
        }
        note("\(tenant) copied in from another tenant's state")
        if moveRandom.chance(1, in: 2) { try moveChanges(tenant, from: source, sourceSequence: sourceSequence) }
    }

    /// The changes a fenced move copies after the first copy: records on top, continuing a sequence
    /// that may have moved on in the source (or not: then the write takes the next one).
    mutating func moveChanges(_ tenant: String, from source: TenantState, sourceSequence: UInt64) throws {
        let piece = Self.changesPiece(of: source, as: tenant, random: &moveRandom)
        let continued = sourceSequence + UInt64(moveRandom.next(below: 30))
        let before = history[tenant]?.count ?? 0
        try applyWrite(tenant) { actor in
            guard let (sequence, lsn) = try? actor.adopt(piece, as: .firstOfChanges, sourceSequence: continued) else { return nil }
            return (sequence, lsn)
        }
        if (history[tenant]?.count ?? 0) > before {
            result.movePieces += 1
            note("\(tenant): changes copied in on top")
        }
    }

    /// What a fenced move copies on top of a first copy, as the simulations write it: some of
    /// `source`'s records and, a third of the time, its key table replacing the tenant's.
    static func changesPiece(of source: TenantState, as tenant: String, random: inout SplitMix64) -> [TenantMutation] {
        var (piece, _) = movePiece(of: source, from: .start, maximumItems: 1 + random.next(below: 4), as: tenant)
        if random.chance(1, in: 3) { piece += [.forgetIdempotencyKeys] + source.idempotency.entriesInOrder.map { .rememberIdempotencyKey($0) } }
        return piece
    }

    /// A piece of `source` exported for a move, its records relabelled as `tenant`'s (the simulation
    /// copies one tenant's state into another, where a real move keeps the tenant's id).
    static func movePiece(of source: TenantState, from cursor: TenantExportCursor, maximumItems: Int, as tenant: String)
        -> (mutations: [TenantMutation], next: TenantExportCursor?)
    {
        let (mutations, next) = source.exportPiece(from: cursor, maximumItems: maximumItems)
        let relabelled = mutations.map { mutation -> TenantMutation in
            guard case .putRecords(let records) = mutation else { return mutation }
            return .putRecords(records.map { record in
                var moved = record
                moved.tenantID = tenant
                return moved
            })
        }
        return (relabelled, next)
    }
}
