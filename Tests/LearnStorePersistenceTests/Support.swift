import Foundation
import LearnStoreEngine
import LearnStoreModel
@testable import LearnStorePersistence

let tenantCaller = CallerIdentity(tenantID: "t1", personID: UUID16(high: 9, low: 9), scopes: [.recordsRead, .recordsWrite, .admin])

func sampleRecord(_ n: Int, tenant: String = "t1") -> LearningRecord {
    LearningRecord(
        id: RecordID(milliseconds: 1_700_000_000_000 + UInt64(n), randomHigh: 1, randomLow: UInt64(n)), tenantID: tenant,
        appID: n % 3 == 0 ? "app_\(n % 2)" : nil, createdAt: Timestamp(milliseconds: 1_700_000_000_000 + Int64(n)),
        updatedAt: Timestamp(milliseconds: 1_700_000_000_000 + Int64(n)), createdBy: UUID16(high: 1, low: UInt64(n % 4)),
        updatedBy: UUID16(high: 1, low: UInt64(n % 4)), personID: UUID16(high: 2, low: UInt64(n / 3)), title: "Course \(n % 5)",
        provider: ["AWS", "edX", nil][n % 3], completedAt: Timestamp(milliseconds: 1_690_000_000_000 + Int64(n)),
        expiresAt: n % 2 == 0 ? Timestamp(milliseconds: 1_790_000_000_000) : nil, score: n % 4 == 0 ? nil : Double(n % 100),
        passed: [true, false, nil][n % 3], certificationRef: n % 2 == 0 ? "CRED-\(n)" : nil,
        linkedCohortID: UUID16(high: 3, low: UInt64(n % 7)), linkedAssessmentID: n % 5 == 0 ? nil : UUID16(high: 4, low: UInt64(n)))
}

func entry(_ sequence: UInt64, tenant: String = "t1", records: [LearningRecord]) -> LogEntry {
    LogEntry(tenantID: tenant, sequence: sequence, timestamp: Timestamp(milliseconds: 1_700_000_000_000 + Int64(sequence)),
             mutations: [.putRecords(records)])
}

/// An in-memory segment: header, then batches of records each closed by a commit marker.
func buildSegment(batches: [[WALRecord]]) -> (bytes: [UInt8], recordEnds: [Int], markerEnds: [Int]) {
    var bytes = WALSegmentHeader(firstLSN: batches.first?.first?.lsn ?? 1, createdAt: Timestamp(milliseconds: 0)).encoded
    var recordEnds: [Int] = []
    var markerEnds: [Int] = []
    for batch in batches {
        for record in batch {
            bytes += record.encoded
            recordEnds.append(bytes.count)
        }
        bytes += WALCommitMarker(lastLSN: batch.last!.lsn, records: UInt32(batch.count)).encoded
        markerEnds.append(bytes.count)
    }
    return (bytes, recordEnds, markerEnds)
}

func allRecords(_ state: TenantState) -> [LearningRecord] {
    (0..<UInt32(state.store.slotCount)).filter { !state.store[$0].isPurged }.map { state.store.record(at: $0) }
}
