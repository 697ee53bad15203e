import Foundation
import LearnStoreEngine
import LearnStoreModel
import LearnStoreTestSupport
import LearnStoreWorkload
import Testing
@testable import LearnStorePersistence

@Suite struct SnapshotTests {
    func populated(_ count: Int) throws -> TenantState {
        var state = TenantState(tenantID: "t1")
        state.apply([.putRecords((0..<count).map { sampleRecord($0) })], sequence: 1)
        var patch = RecordBody()
        patch.score = .value(1)
        _ = try state.patch(sampleRecord(4).id, patch, caller: tenantCaller, now: Timestamp(milliseconds: 1_800_000_000_000))
        _ = try state.delete(sampleRecord(5).id, caller: tenantCaller, now: Timestamp(milliseconds: 1_800_000_000_001))
        _ = try state.purgePerson(sampleRecord(9).personID, dryRun: false, caller: tenantCaller)
        _ = try state.create(RecordBody(personID: UUID16(high: 5, low: 5), title: "Keyed"), caller: tenantCaller, idempotencyKey: "k1",
                             now: Timestamp(milliseconds: 1_800_000_000_002))
        return state
    }

    @Test func aSnapshotRoundTripsEveryRecordKeyAndIndex() throws {
        let dir = TemporaryDirectory()
        let state = try populated(3000)
        let written = try SnapshotFile.write(state.capture(), lsn: 77, createdAt: Timestamp(milliseconds: 5), directory: dir.path,
                                             fileSystem: PosixFileSystem())
        #expect(written.blocks >= 1)
        let loaded = try SnapshotFile.read(written.path, fileSystem: PosixFileSystem())
        #expect(loaded.header.sequence == state.sequence)
        #expect(loaded.header.lsn == 77)
        var restored = TenantState(tenantID: "t1")
        restored.load(store: loaded.contents.store, idempotency: loaded.contents.idempotency, sequence: loaded.header.sequence)
        #expect(allRecords(restored) == allRecords(state))
        #expect(restored.idempotency.entriesInOrder == state.idempotency.entriesInOrder)
        var original = state
        for query in [ListQuery(includeDeleted: true, limit: 1000), ListQuery(personID: sampleRecord(12).personID), ListQuery(certificationRef: "CRED-20")] {
            #expect(try restored.listRecords(query, caller: tenantCaller).records == original.listRecords(query, caller: tenantCaller).records)
        }
        #expect(throws: LearnStoreError.self) {
            _ = try restored.create(RecordBody(personID: UUID16(high: 5, low: 5), title: "Other"), caller: tenantCaller, idempotencyKey: "k1", now: Timestamp(milliseconds: 1))
        }
    }

    /// Blocks compressed on several threads land in the file in order: byte for byte the file one
    /// thread writes, and it reads back.
    @Test func blocksCompressedInParallelMakeTheSameFile() throws {
        let capture = try populated(20_000).capture()
        var files: [[UInt8]] = []
        for compressors in [1, 2, 3] {
            let dir = TemporaryDirectory()
            let written = try SnapshotFile.write(capture, lsn: 1, createdAt: Timestamp(milliseconds: 5), directory: dir.path,
                                                 compressors: compressors, fileSystem: PosixFileSystem())
            #expect(written.blocks >= 3, "the capture must span several blocks")
            files.append(try PosixFileSystem().readWholeFile(written.path))
            let read = try SnapshotFile.read(written.path, fileSystem: PosixFileSystem())
            #expect(read.header.records == UInt64(capture.liveRecords + capture.deletedRecords))
        }
        #expect(files[0] == files[1] && files[0] == files[2])
    }

    @Test func damagedSnapshotsAreRejectedWithWhere() throws {
        let dir = TemporaryDirectory()
        let written = try SnapshotFile.write(try populated(2000).capture(), lsn: 1, createdAt: Timestamp(milliseconds: 5), directory: dir.path,
                                             fileSystem: PosixFileSystem())
        let bytes = try PosixFileSystem().readWholeFile(written.path)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            var damaged = bytes
            let position = Int.random(in: 0..<bytes.count, using: &rng)
            damaged[position] ^= 0x10
            let path = dir.path + "/damaged.lss"
            try PosixFileSystem().openForWriting(path, create: true).write(damaged, at: 0)
            #expect(throws: (any Error).self, "flip at \(position) went unnoticed") { _ = try SnapshotFile.read(path, fileSystem: PosixFileSystem()) }
        }
        let truncatedPath = dir.path + "/truncated.lss"
        try PosixFileSystem().openForWriting(truncatedPath, create: true).write(Array(bytes.prefix(bytes.count - 10)), at: 0)
        #expect(throws: SnapshotFile.Damage.self) { _ = try SnapshotFile.read(truncatedPath, fileSystem: PosixFileSystem()) }
    }

    @Test func recoveryFallsBackToTheOlderSnapshotAndReplaysTheWAL() throws {
        let dir = TemporaryDirectory()
        let data = DataDirectory(dir.path)
        var state = TenantState(tenantID: "t1")
        let wal = try WriteAheadLog(configuration: WALConfiguration(directory: data.walDirectory), resume: nil)
        wal.start()
        var lsn: UInt64 = 0
        for n in 0..<30 {
            let mutations: [TenantMutation] = [.putRecords([sampleRecord(n)])]
            state.apply(mutations, sequence: UInt64(n + 1))
            lsn = try wal.append(LogEntry(tenantID: "t1", sequence: UInt64(n + 1), timestamp: Timestamp(milliseconds: 1), mutations: mutations))
            if n == 9 || n == 19 {
                #expect(waitFor { wal.committedLSN == lsn })
                _ = try SnapshotFile.write(state.capture(), lsn: lsn, createdAt: Timestamp(milliseconds: 1), directory: data.tenantDirectory("t1"), fileSystem: PosixFileSystem())
            }
        }
        #expect(waitFor { wal.committedLSN == lsn })
        wal.close()
        // Damage the newest snapshot: recovery uses the older one plus a longer WAL tail.
        let newest = data.snapshotPath("t1", sequence: 20)
        var bytes = try PosixFileSystem().readWholeFile(newest)
        bytes[bytes.count / 2] ^= 0xFF
        try PosixFileSystem().openForWriting(newest, create: false).write(bytes, at: 0)
        let outcome = try Recovery(options: Recovery.Options(directory: data)).run()
        #expect(outcome.report.tenants["t1"]?.snapshotSequence == 10)
        #expect(outcome.report.tenants["t1"]?.rejectedSnapshots.count == 1)
        #expect(allRecords(try #require(outcome.states["t1"])) == allRecords(state))
    }

    /// The newest snapshot held writes the WAL no longer has (a machine crash under a relaxed policy
    /// took their records after the snapshot was written). Damaged, it cannot be replaced by an older
    /// one without losing acknowledged writes: recovery names it and refuses, unless forced.
    @Test func aDamagedSnapshotWhoseWritesTheWALLacksStopsRecovery() throws {
        let dir = TemporaryDirectory()
        let data = DataDirectory(dir.path)
        let fs = PosixFileSystem()
        var state = TenantState(tenantID: "t1")
        var records: [WALRecord] = []
        for n in 1...8 {
            let mutations: [TenantMutation] = [.putRecords([sampleRecord(n)])]
            state.apply(mutations, sequence: UInt64(n))
            records.append(WALRecord(lsn: UInt64(n), entry: LogEntry(tenantID: "t1", sequence: UInt64(n), timestamp: Timestamp(milliseconds: 1), mutations: mutations)))
            if n == 3 || n == 8 {
                _ = try SnapshotFile.write(state.capture(), lsn: UInt64(n), createdAt: Timestamp(milliseconds: 1), directory: data.tenantDirectory("t1"), fileSystem: fs)
            }
        }
        // The log kept its records up to sequence 5 only.
        try fs.createDirectory(data.walDirectory)
        try fs.openForWriting(data.segmentPath(1), create: true).write(buildSegment(batches: [Array(records.prefix(5))]).bytes + [UInt8](repeating: 0, count: 512), at: 0)
        let newest = data.snapshotPath("t1", sequence: 8)
        var bytes = try fs.readWholeFile(newest)
        bytes[bytes.count / 2] ^= 0xFF
        try fs.openForWriting(newest, create: false).write(bytes, at: 0)

        let refusal = #expect(throws: Recovery.Failure.self) { try Recovery(options: Recovery.Options(directory: data)).run() }
        #expect(refusal?.description.contains("sequence 8 is damaged") == true && refusal?.description.contains(newest) == true, "\(String(describing: refusal))")
        var forced = Recovery.Options(directory: data)
        forced.forceRecovery = true
        let outcome = try Recovery(options: forced).run()
        #expect(outcome.states["t1"]?.sequence == 5)
        #expect(outcome.report.skippedCorruption.count == 1)
    }

    /// A failed write rolled back by its tenant can stay in the file until its wipe is synced; a
    /// snapshot taken after the rollback (here an online restore's, one sequence above the tenant's)
    /// carries the failed write's LSN. A crash before the wipe must not replay that write over it,
    /// though its sequence lies above the snapshot's.
    @Test func aSnapshotCoversItsTenantsRecordsUpToItsLSNWhateverTheirSequence() throws {
        let dir = TemporaryDirectory()
        let data = DataDirectory(dir.path)
        let fs = PosixFileSystem()
        let acknowledged = (1...3).map { WALRecord(lsn: UInt64($0), entry: entry(UInt64($0), records: [sampleRecord($0)])) }
        let failed = (4...5).map { WALRecord(lsn: UInt64($0), entry: entry(UInt64($0), records: [sampleRecord(100 + $0)])) }
        let other = WALRecord(lsn: 6, entry: entry(1, tenant: "t2", records: [sampleRecord(6, tenant: "t2")]))
        let segment = buildSegment(batches: [acknowledged, failed, [other]])
        try fs.createDirectory(data.walDirectory)
        try fs.openForWriting(data.segmentPath(1), create: true).write(segment.bytes + [UInt8](repeating: 0, count: 512), at: 0)
        // The restored state: sequence 4 (above the tenant's 3), holding record 0 only, at LSN 5.
        var restored = TenantState(tenantID: "t1")
        restored.apply([.putRecords([sampleRecord(0)])], sequence: 4)
        _ = try SnapshotFile.write(restored.capture(), lsn: 5, createdAt: Timestamp(milliseconds: 1), directory: data.tenantDirectory("t1"), fileSystem: fs)

        let outcome = try Recovery(options: Recovery.Options(directory: data)).run()
        let t1 = try #require(outcome.states["t1"])
        #expect(t1.sequence == 4)
        #expect(allRecords(t1) == [sampleRecord(0)], "the failed write at LSN 5 (sequence 5) was replayed over the snapshot")
        #expect(outcome.report.tenants["t1"]?.walRecordsApplied == 0)
        #expect(allRecords(try #require(outcome.states["t2"])) == [sampleRecord(6, tenant: "t2")])
        #expect(outcome.resume?.nextLSN == 7)
    }

    /// A write whose fdatasync failed may still be whole on disk until the log wipes it. A snapshot at
    /// its LSN would be the only record that it failed (a later start that found that snapshot
    /// damaged would replay the write from an older one: seed 7003721), so none is written until the
    /// wipe is durable.
    @Test func noSnapshotCoversAFailedWriteTheLogHasNotWipedYet() throws {
        let dir = TemporaryDirectory()
        let fs = FaultInjectingFileSystem()
        var configuration = PersistenceConfiguration(dataDirectory: dir.path)
        configuration.fileSystem = fs
        let (controller, _) = try PersistenceController.open(configuration: configuration, limits: EngineLimits())
        controller.start()
        defer { controller.close() }
        let wal = controller.wal
        wal.onFailure = { rollbacks in for rollback in rollbacks { wal.rollbackDone(tenant: rollback.tenant) } }
        var state = TenantState(tenantID: "t1")
        state.apply([.putRecords([sampleRecord(1)])], sequence: 1)
        let first = try wal.append(entry(1, records: [sampleRecord(1)]))
        #expect(waitFor { wal.committedLSN >= first })

        // Every WAL sync fails from here: the failed write's bytes stay in the file, unwiped.
        fs.inject(.syncError(5), times: .max, pathContains: "wal-")
        let doomed = try wal.append(entry(2, records: [sampleRecord(2)]))
        #expect(waitFor { wal.hasFailed(doomed) && wal.failedWriteMayReturn(doomed) })
        #expect(throws: PersistenceController.FailedWriteNotYetWiped.self) { _ = try controller.writeRestoredSnapshot(state, lsn: doomed) }
        let round = controller.writeSnapshots([.init(capture: state.capture(), lsn: doomed, unresolved: [])], parallel: false)
        #expect(round.count == 1 && round[0].error?.contains("not yet wiped") == true, "\(round)")
        let files = (try? fs.list(DataDirectory(dir.path).tenantDirectory("t1"))) ?? []
        #expect(files.isEmpty, "no snapshot file was left: \(files)")

        // Once the disk syncs again the log wipes the write, and the snapshot may cover its LSN.
        fs.clearFaults()
        #expect(waitFor(seconds: 30) { !wal.failedWriteMayReturn(doomed) })
        let written = try controller.writeRestoredSnapshot(state, lsn: doomed)
        #expect(written.bytes > 0)
    }

    @Test func captureIsCheapAndIsolatedFromLaterWrites() throws {
        var state = TenantState(tenantID: "t1")
        let data = PeerDataset(records: 50_000, tenants: 1)
        var records = (0..<50_000).map { data.record($0) }
        records.sort { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        state.apply([.putRecords(records)], sequence: 1)
        let capture = state.capture()
        var patch = RecordBody()
        patch.title = .value("changed after capture")
        _ = try state.patch(records[100].id, patch, caller: CallerIdentity(tenantID: "t1", personID: .zero, scopes: [.recordsWrite]),
                            now: Timestamp(milliseconds: 1_900_000_000_000))
        let dir = TemporaryDirectory()
        let written = try SnapshotFile.write(capture, lsn: 1, createdAt: Timestamp(milliseconds: 1), directory: dir.path, fileSystem: PosixFileSystem())
        let loaded = try SnapshotFile.read(written.path, fileSystem: PosixFileSystem())
        var restored = TenantState(tenantID: "t1")
        restored.load(store: loaded.contents.store, idempotency: [], sequence: 1)
        #expect(try restored.get(records[100].id, caller: CallerIdentity(tenantID: "t1", personID: .zero, scopes: [.recordsRead])).title == records[100].title)
    }
}
