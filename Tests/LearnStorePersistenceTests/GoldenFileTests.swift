import Foundation
import LearnStoreEngine
import LearnStoreModel
import Testing
@testable import LearnStorePersistence

/// Files written by format version 1, checked in. A format change that cannot read them fails here.
/// To regenerate after a deliberate format change (with a version bump and a reader for the old
/// version): `LEARNSTORE_WRITE_GOLDEN=1 swift test --filter GoldenFileTests`.
@Suite struct GoldenFileTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden").path
    static let writing = ProcessInfo.processInfo.environment["LEARNSTORE_WRITE_GOLDEN"] == "1"

    static func goldenState() throws -> TenantState {
        var state = TenantState(tenantID: "golden")
        state.apply([.putRecords((0..<12).map { sampleRecord($0, tenant: "golden") })], sequence: 1)
        let caller = CallerIdentity(tenantID: "golden", personID: UUID16(high: 9, low: 9), scopes: [.recordsWrite, .admin])
        _ = try state.delete(sampleRecord(3, tenant: "golden").id, caller: caller, now: Timestamp(milliseconds: 1_800_000_000_000))
        _ = try state.purgePerson(sampleRecord(6, tenant: "golden").personID, dryRun: false, caller: caller)
        state.apply([.rememberIdempotencyKey(IdempotencyEntry(key: "\u{0}k", fingerprint: 5, ids: [sampleRecord(1, tenant: "golden").id], sequence: 3))], sequence: 4)
        return state
    }

    static func goldenWALRecords() -> [WALRecord] {
        [
            WALRecord(lsn: 1, entry: entry(1, tenant: "golden", records: [sampleRecord(1, tenant: "golden"), sampleRecord(2, tenant: "golden")])),
            WALRecord(lsn: 2, entry: LogEntry(tenantID: "golden", sequence: 2, timestamp: Timestamp(milliseconds: 1_700_000_000_500),
                                              mutations: [.purgeRecords([sampleRecord(1, tenant: "golden").id])])),
            WALRecord(lsn: 3, entry: LogEntry(tenantID: "golden", sequence: 3, timestamp: Timestamp(milliseconds: 1_700_000_000_600),
                                              mutations: [.rememberIdempotencyKey(IdempotencyEntry(key: "app\u{0}key", fingerprint: 99, ids: [sampleRecord(2, tenant: "golden").id], sequence: 1))])),
        ]
    }

    @Test func walSegmentVersion1() throws {
        let path = Self.directory + "/wal-v1.log"
        let records = Self.goldenWALRecords()
        if Self.writing {
            let built = buildSegment(batches: [[records[0]], [records[1], records[2]]])
            try Data(built.bytes).write(to: URL(fileURLWithPath: path))
        }
        let bytes = try PosixFileSystem().readWholeFile(path)
        var seen: [WALRecord] = []
        let result = try bytes.withUnsafeBytes { raw in
            try WALSegmentScanner.scan(raw, previousLSN: 0) { record, _ in seen.append(record) }
        }
        #expect(seen == records)
        #expect(result.stop == .end(offset: bytes.count))
        #expect(bytes == buildSegment(batches: [[records[0]], [records[1], records[2]]]).bytes, "the writer still produces version 1 bytes")
    }

    @Test func snapshotVersion1() throws {
        let path = Self.directory + "/" + SnapshotHeader.fileName(sequence: 4)
        let state = try Self.goldenState()
        if Self.writing {
            _ = try SnapshotFile.write(state.capture(), lsn: 4, createdAt: Timestamp(milliseconds: 1_800_000_000_000),
                                       directory: Self.directory, fileSystem: PosixFileSystem())
        }
        let loaded = try SnapshotFile.read(path, fileSystem: PosixFileSystem())
        #expect(loaded.header == SnapshotHeader(tenantID: "golden", sequence: 4, lsn: 4, createdAt: Timestamp(milliseconds: 1_800_000_000_000),
                                                records: 9, outcomeRecords: 0, idempotencyKeys: 1))
        var restored = TenantState(tenantID: "golden")
        restored.load(store: loaded.contents.store, idempotency: loaded.contents.idempotency, sequence: loaded.header.sequence)
        #expect(allRecords(restored) == allRecords(state))
        #expect(restored.idempotency.entriesInOrder == state.idempotency.entriesInOrder)
    }
}
