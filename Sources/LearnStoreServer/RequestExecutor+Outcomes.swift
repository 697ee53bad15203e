import CanvasOutcomes
import LearnStoreEngine
import LearnStoreModel
import LearnStoreProtocol

/// The Canvas outcome opcodes (docs/PROTOCOL.md, appendix B), run on the tenant's executor like the
/// record opcodes. The engine checks the scopes: `outcomes:write` to ingest, `outcomes:read` for the rest.
extension RequestExecutor {
    /// Runs an outcome opcode and writes its response payload; false for an opcode this version does not define.
    static func runOutcome(
        _ frame: Frame, prepared: PreparedPayload?, caller: CallerIdentity, tenant: isolated TenantActor,
        environment: ExecutionEnvironment, writer: inout ByteWriter
    ) throws(LearnStoreError) -> Bool {
        switch frame.header.opcode {
        case Opcode.outcomeIngest:
            let events: [Result<OutcomeEvent, OutcomeEventError>]
            switch prepared ?? RequestPreparation.outcomeEvents(frame, limits: environment.limits) {
            case .outcomeEvents(let parsed): events = parsed
            case .refused(let error): throw error
            case .importBatch, .importPrepared: throw LearnStoreError(.internalError, "an ingest was prepared as an import")
            }
            let write = try tenant.ingestOutcomes(parsed: events, caller: caller)
            OutcomeMessages.encodeIngestResponse(sequence: write.sequence, write.result, into: &writer)
        case Opcode.outcomeGet:
            let (kind, key) = try decode(frame) { (r) throws(DecodeError) in try OutcomeMessages.decodeGet(from: &r) }
            OutcomeMessages.writeEntity(try tenant.outcomeEntity(kind, key: key, caller: caller), into: &writer)
        case Opcode.outcomeTree:
            let query = try decode(frame) { (r) throws(DecodeError) in try OutcomeMessages.decodeTree(from: &r) }
            OutcomeMessages.encodeEntities(try tenant.outcomeTree(query, caller: caller), into: &writer)
        case Opcode.outcomeResults:
            let (scope, limit, cursorBytes) = try decode(frame) { (r) throws(DecodeError) in try OutcomeMessages.decodeResults(from: &r) }
            try caller.require(.outcomesRead)  // the scope answers before the cursor's validation (PROTOCOL.md 6.3)
            let cursor = try OutcomeMessages.cursor(cursorBytes)
            let page = try tenant.outcomeResults(scope, after: cursor, limit: limit == 0 ? TenantState.defaultOutcomePage : limit,
                                                 caller: caller)
            OutcomeMessages.encodeResultPage(page, into: &writer)
        case Opcode.outcomeProficiency:
            let context = try decode(frame) { (r) throws(DecodeError) in try OutcomeMessages.decodeContextRequest(from: &r) }
            OutcomeMessages.encodeProficiencyResponse(try tenant.proficiency(inForce: context, caller: caller), into: &writer)
        case Opcode.outcomeRollup:
            let request = try decode(frame) { (r) throws(DecodeError) in try RollupMessages.decodeRollup(from: &r) }
            let rollup = try tenant.studentRollup(userUUID: request.userUUID, outcomeID: request.outcomeID, context: request.context,
                                                  options: request.options, caller: caller)
            RollupMessages.encodeRollupResponse(rollup, into: &writer)
        case Opcode.outcomeStudentRollups:
            let request = try decode(frame) { (r) throws(DecodeError) in try RollupMessages.decodeStudentRollups(from: &r) }
            let rollups = try tenant.studentRollups(userUUID: request.userUUID, context: request.context, options: request.options,
                                                    caller: caller)
            RollupMessages.encodeRollupsResponse(rollups, into: &writer)
        case Opcode.outcomeAggregates:
            let request = try decode(frame) { (r) throws(DecodeError) in try RollupMessages.decodeAggregates(from: &r) }
            let aggregates = try tenant.contextAggregates(context: request.context, options: request.options, caller: caller)
            RollupMessages.encodeAggregatesResponse(aggregates, into: &writer)
        default:
            return false
        }
        return true
    }
}
