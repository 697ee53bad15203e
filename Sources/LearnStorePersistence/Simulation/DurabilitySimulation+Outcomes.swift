import CanvasOutcomes
import LearnStoreEngine
import LearnStoreModel

/// Canvas outcome ingests as simulated writes: each batch is one write when an event in it applies
/// (none applies when every event is older than what the tenant holds, and then nothing is logged).
/// The tenant digest includes the outcome tables, so a lost or revived ingest is caught.
extension DurabilitySimulation {
    mutating func ingestOutcomes(_ tenant: String) throws {
        let events = (0..<(1 + random.next(below: 3))).map { _ in Self.outcomeEvent(random.next()) }
        let caller = CallerIdentity(tenantID: tenant, personID: UUID16(high: 1, low: 1), scopes: [.outcomesRead, .outcomesWrite])
        var applied = false
        try applyWrite(tenant) { actor in
            guard let write = try? actor.ingestOutcomes(events, caller: caller) else { return nil }
            applied = write.lsn > 0
            return (write.sequence, write.lsn)
        }
        if applied { result.outcomeIngests += 1 }
    }

    /// A `learning_outcome_updated` event for one of a few outcomes, with an `updated_at` drawn from
    /// a small range (so later events are sometimes stale) and sometimes deleting the outcome.
    static func outcomeEvent(_ value: UInt64) -> [UInt8] {
        let outcome = 1000 + value % 7
        let second = (value >> 8) % 60
        let millisecond = (value >> 16) % 1000
        let state = (value >> 32) % 5 == 0 ? "deleted" : "active"
        let time = "2026-01-01T00:00:\(second < 10 ? "0" : "")\(second).\(String(repeating: "0", count: 3 - String(millisecond).count))\(millisecond)Z"
        let json = #"{"metadata":{"event_name":"learning_outcome_updated","event_time":"\#(time)"},"#
            + #""body":{"learning_outcome_id":"\#(outcome)","context_type":"Course","context_id":"1234","#
            + #""title":"outcome \#(value % 1000)","workflow_state":"\#(state)","updated_at":"\#(time)"}}"#
        return Array(json.utf8)
    }
}
