import CanvasOutcomes
import LearnStoreEngine
import LearnStoreModel
import LearnStoreProtocol

/// A request payload decoded and parsed before the tenant's lock is taken. Parsing JSON events and
/// import rows scales with the request's size and needs no tenant state, so it runs on the reading
/// event loop, while other loops' requests for the same tenant go on.
public enum PreparedPayload: Sendable {
    /// OUTCOME_INGEST: each event parsed, or its rejection.
    case outcomeEvents([Result<OutcomeEvent, OutcomeEventError>])
    /// IMPORT: the records, and the outcome rows parsed.
    case importBatch(records: [LearningRecord], outcomeRows: [OutcomeRecord])
    /// IMPORT of records older than the tenant's newest, already run on a copy of the tenant off its
    /// lock (see `TenantState+PreparedImport`).
    case importPrepared(TenantState.PreparedImport)
    /// The payload cannot be used: answered with this error, in its place among the responses.
    case refused(LearnStoreError)
}

public enum RequestPreparation {
    /// The prepared payload of each frame that has one (by position in `frames`); nil when none has.
    public static func prepare(_ frames: [Frame], limits: EngineLimits, features: ProtocolFeatures) -> [Int: PreparedPayload]? {
        var prepared: [Int: PreparedPayload]?
        // By index, reading headers in place: a copy of each frame (its payload's buffer retained
        // and released) cost more than the check on the batches of reads this mostly sees.
        for index in frames.indices where frames[index].header.flags == 0 {
            let payload: PreparedPayload
            switch frames[index].header.opcode {
            case Opcode.outcomeIngest where features.contains(.outcomes):
                payload = outcomeEvents(frames[index], limits: limits)
            case Opcode.adminImport where features.contains(.admin):
                payload = importBatch(frames[index], limits: limits)
            default:
                continue
            }
            prepared = prepared ?? [:]
            prepared?[index] = payload
        }
        return prepared
    }

    static func outcomeEvents(_ frame: Frame, limits: EngineLimits) -> PreparedPayload {
        do throws(LearnStoreError) {
            let events = try RequestExecutor.decode(frame) { (r) throws(DecodeError) in
                try OutcomeMessages.decodeIngest(from: &r, maximumCount: limits.maximumBatch)
            }
            return .outcomeEvents(events.map(TenantState.parseEvent))
        } catch {
            return .refused(error)
        }
    }

    static func importBatch(_ frame: Frame, limits: EngineLimits) -> PreparedPayload {
        do throws(LearnStoreError) {
            let (records, rowBytes) = try RequestExecutor.decode(frame) { (r) throws(DecodeError) in
                try AdminMessages.decodeImport(from: &r, maximumCount: limits.maximumBatch * 100)
            }
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
            return .importBatch(records: records, outcomeRows: rows)
        } catch {
            return .refused(error)
        }
    }
}
