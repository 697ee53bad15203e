import LearnStoreModel
import LearnStoreProtocol
import Testing

/// Appendix C layouts, byte by byte, and round trips.
@Suite struct AdminMessageTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ") }

    @Test func restoreRequestMatchesTheDocumentedBytes() throws {
        // The worked example of docs/PROTOCOL.md C.3: dry run, sequence 12, no snapshot, no time.
        let bytes = encoded { AdminMessages.encodeRestore(RestoreTenantRequest(dryRun: true, sequence: 12), into: &$0) }
        #expect(Self.hex(bytes) == "05 00 00 00 00 00 00 00 00 0c 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00")
        let time = Timestamp(milliseconds: 1_704_067_200_000)
        let full = RestoreTenantRequest(dryRun: false, snapshotSequence: 10, sequence: nil, time: time)
        let fullBytes = encoded { AdminMessages.encodeRestore(full, into: &$0) }
        #expect(fullBytes.count == 25 && fullBytes[0] == 0x0A)
        #expect(try decoded(fullBytes) { (r) throws(DecodeError) in try AdminMessages.decodeRestore(from: &r) } == full)
        #expect(try decoded(bytes) { (r) throws(DecodeError) in try AdminMessages.decodeRestore(from: &r) } == RestoreTenantRequest(dryRun: true, sequence: 12))
    }

    @Test func malformedRestoreRequestsAreRefused() {
        var unknownBits = encoded { AdminMessages.encodeRestore(RestoreTenantRequest(), into: &$0) }
        unknownBits[0] = 0x10
        #expect(throws: DecodeError.self) { try decoded(unknownBits) { (r) throws(DecodeError) in try AdminMessages.decodeRestore(from: &r) } }
        let short = Array(encoded { AdminMessages.encodeRestore(RestoreTenantRequest(), into: &$0) }.dropLast())
        #expect(throws: DecodeError.self) { try decoded(short) { (r) throws(DecodeError) in try AdminMessages.decodeRestore(from: &r) } }
        var badTime = encoded { AdminMessages.encodeRestore(RestoreTenantRequest(time: Timestamp(milliseconds: 0)), into: &$0) }
        for index in 17..<25 { badTime[index] = 0x7F }
        #expect(throws: DecodeError.self) { try decoded(badTime) { (r) throws(DecodeError) in try AdminMessages.decodeRestore(from: &r) } }
        #expect(throws: DecodeError.self) { try decoded([2]) { (r) throws(DecodeError) in try AdminMessages.decodeSnapshot(from: &r) } }
    }

    @Test func responsesRoundTrip() throws {
        var report = RestoreTenantReport(dryRun: true, snapshotSequence: 10)
        report.snapshotLSN = 20
        report.walRecordsApplied = 2
        report.lastLSN = 31
        report.before = .init(sequence: 16, records: 14, deletedRecords: 1, outcomeRows: 3)
        report.restored = .init(sequence: 12, records: 12, deletedRecords: 0, outcomeRows: 2)
        report.newSequence = 17
        report.records = .init(added: 0, removed: 3, changed: 1)
        report.outcomeRows = .init(added: 0, removed: 1, changed: 0)
        let reportBytes = encoded { AdminMessages.encodeRestoreResponse(report, into: &$0) }
        #expect(reportBytes.count == 2 + 8 * 4 + 8 * 8 + 8 + 8 * 6)
        #expect(try decoded(reportBytes) { (r) throws(DecodeError) in try AdminMessages.decodeRestoreResponse(from: &r) } == report)
        let none = RestoreTenantReport(dryRun: false, snapshotSequence: nil)
        #expect(try decoded(encoded { AdminMessages.encodeRestoreResponse(none, into: &$0) }) { (r) throws(DecodeError) in
            try AdminMessages.decodeRestoreResponse(from: &r)
        } == none)

        let snapshot = SnapshotReport(written: true, sequence: 10, records: 10, bytes: 512, file: "tenants/t/snapshot-00000000000000000010.lss")
        #expect(try decoded(encoded { AdminMessages.encodeSnapshotResponse(snapshot, into: &$0) }) { (r) throws(DecodeError) in
            try AdminMessages.decodeSnapshotResponse(from: &r)
        } == snapshot)

        let importBytes = encoded { AdminMessages.encodeImportResponse(sequence: 5, records: 1000, outcomesApplied: 3, outcomesUnchanged: 1, into: &$0) }
        #expect(Self.hex(importBytes) == "05 00 00 00 00 00 00 00 e8 07 03 01")
        #expect(try decoded(importBytes) { (r) throws(DecodeError) in try AdminMessages.decodeImportResponse(from: &r) }
            == ImportReport(sequence: 5, records: 1000, outcomesApplied: 3, outcomesUnchanged: 1))
    }

    @Test func importRequestsRoundTripAndRespectTheLimit() throws {
        let record = LearningRecord(
            id: RecordID(milliseconds: 1_700_000_000_000, randomHigh: 1, randomLow: 2), tenantID: "t", createdAt: Timestamp(milliseconds: 1_700_000_000_000),
            updatedAt: Timestamp(milliseconds: 1_700_000_000_000), personID: UUID16(high: 1, low: 2), title: "AWS SAA")
        let row = Array(#"{"kind":"learning_outcome","tombstone":{"key":"1","record_time":null,"event_time":null,"digest":"00:00"}}"#.utf8)
        let bytes = encoded { AdminMessages.encodeImport(records: [record, record], outcomeRows: [row], into: &$0) }
        let (records, rows) = try decoded(bytes) { (r) throws(DecodeError) in try AdminMessages.decodeImport(from: &r) }
        #expect(records == [record, record] && rows == [row])
        #expect(throws: DecodeError.self) { try decoded(bytes) { (r) throws(DecodeError) in try AdminMessages.decodeImport(from: &r, maximumCount: 1) } }
        #expect(Self.hex(encoded { AdminMessages.encodeImport(records: [], outcomeRows: [], into: &$0) }) == "00 00")
    }
}
