import CanvasOutcomes
import LearnStoreModel

/// What one import write did.
public struct ImportResult: Sendable, Hashable {
    /// Records put (inserted or replaced).
    public var records: Int
    /// Outcome rows that became the stored version of their entity.
    public var outcomesApplied: Int
    /// Outcome rows that changed nothing (the same or a newer version is stored).
    public var outcomesUnchanged: Int

    public init(records: Int = 0, outcomesApplied: Int = 0, outcomesUnchanged: Int = 0) {
        self.records = records
        self.outcomesApplied = outcomesApplied
        self.outcomesUnchanged = outcomesUnchanged
    }
}

/// Whole-tenant operations of the operator tools: import and restore.
extension TenantState {
    /// Puts whole records and outcome rows as given (import of an export): one write, one sequence
    /// number. Admin only. Record ids and stamps are kept and their tenant is forced to this tenant;
    /// outcome rows are applied by the store's version rules, so a row older than the stored one
    /// changes nothing.
    public mutating func importBatch(records: [LearningRecord], outcomes rows: [OutcomeRecord], caller: CallerIdentity)
        throws(LearnStoreError) -> TenantWrite<ImportResult>
    {
        try caller.require(.admin)
        let limit = limits.maximumBatch * 100
        guard records.count <= limit, rows.count <= limit else { throw .validation("import batches hold at most \(limit) records and \(limit) outcome rows") }
        try Self.checkSlotCapacity(used: store.slotCount, adding: records.count)
        var adjusted: [LearningRecord] = []
        adjusted.reserveCapacity(records.count)
        for (index, var record) in records.enumerated() {
            record.tenantID = tenantID
            do throws(LearnStoreError) {
                try RecordValidator.checkStoredBounds(record)
                try RecordValidator.checkRecord(record)
                if let score = record.score, !(score.isFinite && (0...100).contains(score)) {
                    throw .validation("score must be a finite number from 0 to 100", field: "score")
                }
            } catch {
                // Named as CREATE_BATCH names a record, so a tool sending batches can point at its line.
                throw LearnStoreError(error.code, "record \(index) (\(record.id)): \(error.message)", field: error.field)
            }
            adjusted.append(record)
        }
        // Judge each row against the stored one and the earlier rows of this batch, as `apply` will.
        var applied: [OutcomeRecord] = []
        var written: [TombstoneKey: OutcomeRecord] = [:]
        for row in rows {
            let key = TombstoneKey(kind: row.kind, key: row.key)
            if row.verdict(over: written[key] ?? outcomes.record(kind: row.kind, key: row.key)) == .applied {
                applied.append(row)
                written[key] = row
            }
        }
        let result = ImportResult(records: adjusted.count, outcomesApplied: applied.count, outcomesUnchanged: rows.count - applied.count)
        var mutations: [TenantMutation] = []
        if !adjusted.isEmpty { mutations.append(contentsOf: [.putRecords(adjusted), .recordChange(.import)]) }
        if !applied.isEmpty { mutations.append(.outcomes(applied)) }
        guard !mutations.isEmpty else { return TenantWrite(result: result, mutations: [], sequence: sequence) }
        let newSequence = sequence + 1
        let undo = apply(mutations, sequence: newSequence)
        return TenantWrite(result: result, mutations: mutations, sequence: newSequence, undo: undo)
    }

    /// Moves the sequence number forward without changing data. A restored tenant continues above the
    /// history it replaced, so that history's log records (lower sequences) are skipped on replay.
    public mutating func advanceSequence(to newSequence: UInt64) {
        precondition(newSequence >= sequence, "a tenant's sequence never goes back")
        stateChanged()
        sequence = newSequence
    }
}
