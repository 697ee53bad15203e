import CanvasOutcomes
import Foundation
import LearnStoreEngine
import LearnStoreModel
import LearnStoreTestSupport
import LearnStoreWorkload
import Testing
@testable import LearnStorePersistence

/// Canvas outcome data goes through the WAL and snapshots like records, and a restart restores it exactly.
@Suite struct OutcomePersistenceTests {
    static let caller = CallerIdentity(tenantID: "t1", personID: UUID16(high: 9, low: 9), scopes: [.outcomesWrite, .outcomesRead, .recordsWrite])

    @Test func outcomesSurviveTheWALAndSnapshots() throws {
        let dir = TemporaryDirectory()
        let data = DataDirectory(dir.path)
        let course = CanvasCourseDataset(students: 6, outcomes: 4, resultsPerOutcome: 3)
        let lines = course.eventLines(shuffleSeed: 7, duplicates: 10).map { Array($0.utf8) }
        var state = TenantState(tenantID: "t1")
        let wal = try WriteAheadLog(configuration: WALConfiguration(directory: data.walDirectory), resume: nil)
        wal.start()
        var lsn: UInt64 = 0
        let half = lines.count / 2
        for (index, chunk) in [Array(lines[..<half]), Array(lines[half...])].enumerated() {
            let write = try state.ingest(chunk, caller: Self.caller)
            if !write.mutations.isEmpty {
                lsn = try wal.append(LogEntry(tenantID: "t1", sequence: write.sequence, timestamp: Timestamp(milliseconds: 1), mutations: write.mutations))
            }
            if index == 0 {
                #expect(waitFor { wal.committedLSN == lsn })
                _ = try SnapshotFile.write(state.capture(), lsn: lsn, createdAt: Timestamp(milliseconds: 1), directory: data.tenantDirectory("t1"),
                                           fileSystem: PosixFileSystem())
            }
        }
        _ = try state.create(RecordBody(personID: UUID16(high: 1, low: 1), title: "Also a record"), caller: Self.caller, now: Timestamp(milliseconds: 2))
        #expect(waitFor { wal.committedLSN == lsn })
        wal.close()
        let outcome = try Recovery(options: Recovery.Options(directory: data)).run()
        let recovered = try #require(outcome.states["t1"])
        #expect(recovered.outcomes.tables == state.outcomes.tables)
        #expect(recovered.outcomes.tables.recordCount > 0)
        #expect(outcome.report.tenants["t1"]?.snapshotSequence != nil)
    }

    @Test func outcomeMutationsRoundTripInWALRecords() throws {
        let course = CanvasCourseDataset(students: 2, outcomes: 2, resultsPerOutcome: 2)
        var store = OutcomeStore()
        var records: [OutcomeRecord] = []
        for event in course.events where store.apply(event) == .applied { records.append(OutcomeRecord.entity(event.entity)) }
        let record = WALRecord(lsn: 3, entry: LogEntry(tenantID: "t1", sequence: 1, timestamp: Timestamp(milliseconds: 1), mutations: [.outcomes(records)]))
        let bytes = record.encoded
        #expect(try bytes[WALRecord.headerSize...].withUnsafeBytes { try WALRecord.decodeBody($0) } == record)
    }
}
