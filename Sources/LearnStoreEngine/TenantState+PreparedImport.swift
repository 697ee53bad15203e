import CanvasOutcomes
import LearnStoreModel

/// An import of records older than a tenant's newest re-sorts and rebuilds the whole tenant (see
/// ``TenantState/rebuild()``): seconds for a large one, which under the tenant's lock every other
/// event loop with a request for the tenant would wait for. So the server runs such an import on a
/// copy of the tenant, off the lock, and swaps the result in if the tenant took no write meanwhile
/// (else it imports under the lock after all).
extension TenantState {
    /// An import run on a copy: the state after it, and the write to log.
    public struct PreparedImport: Sendable {
        /// The ``writeRevision`` of the state the copy was taken from.
        let basis: UInt64
        let state: TenantState
        let write: TenantWrite<ImportResult>
        public let records: [LearningRecord]
        public let outcomeRows: [OutcomeRecord]
    }

    /// Whether importing `records` rebuilds the tenant: some record is neither a replacement in place
    /// nor a revival of its purged slot, and sorts at or before the tenant's newest record.
    public func importReorders(_ records: [LearningRecord]) -> Bool {
        guard let last = store.lastKey else { return false }
        return records.contains { record in
            let createdAt = record.createdAt.milliseconds
            if let slot = indexes.slot(of: record.id, in: store), store[slot].createdAt == createdAt { return false }
            if let slot = store.slotByOrder(of: record.id, createdAt: createdAt), store[slot].isPurged { return false }
            return !((last.createdAt, last.id) < (createdAt, record.id))
        }
    }

    /// Runs the import on a copy of this state (call it on a copy taken under the lock, off it).
    public static func prepareImport(
        on copy: TenantState, records: [LearningRecord], outcomes rows: [OutcomeRecord], caller: CallerIdentity
    ) throws(LearnStoreError) -> PreparedImport {
        var state = copy
        let write = try state.importBatch(records: records, outcomes: rows, caller: caller)
        return PreparedImport(basis: copy.writeRevision, state: state, write: write, records: records, outcomeRows: rows)
    }

    /// Takes a prepared import's result if this is still the state it was prepared from; nil if a
    /// write came between (the caller imports in place instead).
    public mutating func takePrepared(_ prepared: PreparedImport) -> TenantWrite<ImportResult>? {
        guard prepared.basis == writeRevision else { return nil }
        self = prepared.state
        return prepared.write
    }
}
