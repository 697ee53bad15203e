import CanvasOutcomes
import LearnStoreEngine
import LearnStoreModel
import LearnStoreProtocol

extension RequestExecutor {
    /// IMPORT `0x82`: records and outcome rows put as given, one write (docs/PROTOCOL.md, appendix C).
    static func runImport(
        _ frame: Frame, caller: CallerIdentity, tenant: isolated TenantActor, environment: ExecutionEnvironment, writer: inout ByteWriter
    ) throws(LearnStoreError) {
        try caller.require(.admin)
        let limit = environment.limits.maximumBatch * 100
        let (records, rowBytes) = try decode(frame) { (r) throws(DecodeError) in try AdminMessages.decodeImport(from: &r, maximumCount: limit) }
        var rows: [OutcomeRecord] = []
        rows.reserveCapacity(rowBytes.count)
        for (index, bytes) in rowBytes.enumerated() {
            let json: JSONValue
            do { json = try JSONValue.parse(bytes) } catch {
                throw LearnStoreError.validation("outcome row \(index): \(error)", field: "outcome_rows[\(index)]")
            }
            do {
                rows.append(try OutcomeRecord(exportJSON: json))
            } catch {
                let field = error.field.map { "outcome_rows[\(index)].\($0)" } ?? "outcome_rows[\(index)]"
                throw LearnStoreError.validation("outcome row \(index): \(error.message)", field: field)
            }
        }
        let write = try tenant.importBatch(records: records, outcomes: rows, caller: caller)
        AdminMessages.encodeImportResponse(
            sequence: write.sequence, records: write.result.records, outcomesApplied: write.result.outcomesApplied,
            outcomesUnchanged: write.result.outcomesUnchanged, into: &writer)
    }
}
