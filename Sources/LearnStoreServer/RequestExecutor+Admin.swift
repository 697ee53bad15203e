import CanvasOutcomes
import LearnStoreEngine
import LearnStoreModel
import LearnStoreProtocol

extension RequestExecutor {
    /// IMPORT `0x82`: records and outcome rows put as given, one write (docs/PROTOCOL.md, appendix C),
    /// from its payload parsed before the lock. The engine checks the `admin` scope after decoding,
    /// in the order of PROTOCOL.md 6.3.
    static func runImport(
        _ prepared: PreparedPayload, caller: CallerIdentity, tenant: isolated TenantActor, writer: inout ByteWriter
    ) throws(LearnStoreError) {
        let records: [LearningRecord]
        let rows: [OutcomeRecord]
        switch prepared {
        case .importBatch(let preparedRecords, let outcomeRows): (records, rows) = (preparedRecords, outcomeRows)
        case .importPrepared(let ready):
            if let write = try tenant.commitPrepared(ready) {
                encode(write, into: &writer)
                return
            }
            (records, rows) = (ready.records, ready.outcomeRows)
        case .refused(let error):
            // A payload that decoded but holds an invalid outcome row: the scope answers first.
            if error.code == .validation { try caller.require(.admin) }
            throw error
        case .outcomeEvents: throw LearnStoreError(.internalError, "an import was prepared as an ingest")
        }
        encode(try tenant.importBatch(records: records, outcomes: rows, caller: caller), into: &writer)
    }

    static func encode(_ write: TenantWrite<ImportResult>, into writer: inout ByteWriter) {
        AdminMessages.encodeImportResponse(
            sequence: write.sequence, records: write.result.records, outcomesApplied: write.result.outcomesApplied,
            outcomesUnchanged: write.result.outcomesUnchanged, into: &writer)
    }
}
