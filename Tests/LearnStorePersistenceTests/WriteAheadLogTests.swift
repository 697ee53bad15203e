import Foundation
import LearnStoreEngine
import LearnStoreModel
import LearnStoreTestSupport
import Synchronization
import Testing
@testable import LearnStorePersistence

@Suite struct WriteAheadLogTests {
    func openWAL(_ dir: TemporaryDirectory, fs: any FileSystem = PosixFileSystem(), policy: FsyncPolicy = .always,
                 segmentBytes: Int = 256 << 10) throws -> WriteAheadLog {
        let wal = try WriteAheadLog(configuration: WALConfiguration(directory: dir.path + "/wal", policy: policy, segmentBytes: segmentBytes, fileSystem: fs), resume: nil)
        wal.start()
        return wal
    }

    func recover(_ dir: TemporaryDirectory, force: Bool = false) throws -> Recovery.Outcome {
        var options = Recovery.Options(directory: DataDirectory(dir.path))
        options.forceRecovery = force
        return try Recovery(options: options).run()
    }

    /// A tenant adopted from another group (a partition move) starts with a write that empties it and
    /// continues that group's sequence: replay takes the jump there, and only there.
    @Test func aResetWriteMayJumpTheSequenceOnReplay() throws {
        let dir = TemporaryDirectory()
        let wal = try openWAL(dir)
        let stale = (0..<3).map { sampleRecord($0) }
        for (n, record) in stale.enumerated() { _ = try wal.append(entry(UInt64(n + 1), records: [record])) }
        let adopted = (10..<14).map { sampleRecord($0) }
        _ = try wal.append(LogEntry(tenantID: "t1", sequence: 900, timestamp: Timestamp(milliseconds: 5), mutations: [.resetTenant, .putRecords(Array(adopted[0..<2]))]))
        let last = try wal.append(entry(901, records: Array(adopted[2...])))
        #expect(waitFor { wal.committedLSN == last })
        wal.close()
        let recovered = try #require(try recover(dir).states["t1"])
        #expect(allRecords(recovered) == adopted && recovered.sequence == 901)

        // The same jump without the reset is a gap in the tenant's history.
        let gap = TemporaryDirectory()
        let gapped = try openWAL(gap)
        _ = try gapped.append(entry(1, records: [stale[0]]))
        let jump = try gapped.append(entry(900, records: [stale[1]]))
        #expect(waitFor { gapped.committedLSN == jump })
        gapped.close()
        #expect(throws: Recovery.Failure.self) { _ = try recover(gap) }
    }

    /// A write larger than one log record may hold is refused before it takes an LSN: logged and
    /// acknowledged, it would be taken for damage at the next start.
    @Test func aRecordAboveTheLimitIsRefusedAndTakesNoLSN() throws {
        let dir = TemporaryDirectory()
        var configuration = WALConfiguration(directory: dir.path + "/wal", segmentBytes: 256 << 10)
        configuration.maximumRecordBodyBytes = 4096
        let wal = try WriteAheadLog(configuration: configuration, resume: nil)
        wal.start()
        let first = try wal.append(entry(1, records: [sampleRecord(0)]))
        let refused = #expect(throws: LearnStoreError.self) { _ = try wal.append(entry(2, records: (1..<100).map { sampleRecord($0) })) }
        #expect(refused?.code == .validation, "\(String(describing: refused))")
        let next = try wal.append(entry(2, records: [sampleRecord(1)]))
        #expect(next == first + 1)
        #expect(waitFor { wal.committedLSN == next })
        wal.close()
        #expect(try recover(dir).states["t1"]?.sequence == 2)
    }

    @Test func concurrentAppendsAreAllRecoveredInOrderAcrossSegments() throws {
        let dir = TemporaryDirectory()
        let wal = try openWAL(dir, segmentBytes: 64 << 10)
        let tenants = 4
        let perTenant = 300
        DispatchQueue.concurrentPerform(iterations: tenants) { t in
            var state = TenantState(tenantID: "t\(t)")
            for n in 0..<perTenant {
                let record = sampleRecord(n, tenant: "t\(t)")
                let sequence = state.sequence + 1
                state.apply([.putRecords([record])], sequence: sequence)
                _ = try! wal.append(LogEntry(tenantID: "t\(t)", sequence: sequence, timestamp: record.createdAt, mutations: [.putRecords([record])]))
            }
        }
        #expect(waitFor { wal.committedLSN == UInt64(tenants * perTenant) })
        wal.close()
        #expect(wal.stats.syncs < UInt64(tenants * perTenant), "group commit shares syncs")
        #expect(wal.segmentFirstLSNs.count > 1, "rotation happened")
        let outcome = try recover(dir)
        #expect(outcome.report.walRecordsApplied == tenants * perTenant)
        for t in 0..<tenants {
            let records = allRecords(try #require(outcome.states["t\(t)"]))
            #expect(records == (0..<perTenant).map { sampleRecord($0, tenant: "t\(t)") })
        }
        // Appending resumes after the last record.
        let resumed = try WriteAheadLog(configuration: WALConfiguration(directory: dir.path + "/wal", segmentBytes: 64 << 10),
                                        resume: outcome.resume, segments: outcome.segments)
        resumed.start()
        let lsn = try resumed.append(entry(UInt64(perTenant + 1), tenant: "t0", records: [sampleRecord(9999, tenant: "t0")]))
        #expect(lsn == UInt64(tenants * perTenant + 1))
        #expect(waitFor { resumed.committedLSN == lsn })
        resumed.close()
        #expect(try recover(dir).states["t0"]?.store.liveCount == perTenant + 1)
    }

    /// The server's mode under `everysec`: appends do not wake the writer thread, each appender calls
    /// `writeNow()`, which writes on the calling thread; a batch that needs a new segment is handed
    /// to the writer thread. Every record must be committed and recovered in order.
    @Test func appendersThatWriteNowCommitInlineAndAcrossRotations() throws {
        let dir = TemporaryDirectory()
        let configuration = WALConfiguration(directory: dir.path + "/wal", policy: .everysec, segmentBytes: 64 << 10, appendersWriteNow: true)
        let wal = try WriteAheadLog(configuration: configuration, resume: nil)
        wal.start()
        var state = TenantState(tenantID: "t0")
        var committedInline = 0
        let count = 600
        for n in 0..<count {
            let record = sampleRecord(n, tenant: "t0")
            let sequence = state.sequence + 1
            state.apply([.putRecords([record])], sequence: sequence)
            let lsn = try wal.append(LogEntry(tenantID: "t0", sequence: sequence, timestamp: record.createdAt, mutations: [.putRecords([record])]))
            wal.writeNow()
            if wal.committedLSN >= lsn { committedInline += 1 }
            #expect(waitFor { wal.committedLSN >= lsn })
        }
        wal.close()
        #expect(wal.segmentFirstLSNs.count > 1, "rotation happened")
        #expect(committedInline >= count - wal.segmentFirstLSNs.count, "only batches that needed a new segment waited for the writer thread")
        let outcome = try recover(dir)
        #expect(allRecords(try #require(outcome.states["t0"])) == (0..<count).map { sampleRecord($0, tenant: "t0") })
    }

    @Test(arguments: [FaultInjectingFileSystem.Fault.writeError(28), .writeError(5), .shortWrite(bytes: 10), .syncError(5)])
    func aFailedWriteFailsItsRecordsAndTheLogRecovers(fault: FaultInjectingFileSystem.Fault) throws {
        let dir = TemporaryDirectory()
        let fs = FaultInjectingFileSystem()
        let wal = try openWAL(dir, fs: fs)
        let failures = Mutex<[ClosedRange<UInt64>]>([])
        // The tenant confirms its rollback at once (it has nothing in memory to undo here).
        wal.onFailure = { rollbacks in
            failures.withLock { $0.append(contentsOf: rollbacks.map(\.lsns)) }
            for rollback in rollbacks { wal.rollbackDone(tenant: rollback.tenant) }
        }
        let first = try wal.append(entry(1, records: [sampleRecord(1)]))
        #expect(waitFor { wal.committedLSN == first })
        fs.inject(fault, pathContains: "wal-")
        let doomed = try wal.append(entry(2, records: [sampleRecord(2)]))
        #expect(waitFor { wal.hasFailed(doomed) })
        #expect(!wal.hasFailed(first), "failure is exact: the earlier write stays durable")
        // The failure is recorded before the callback runs: poll for the callback too.
        #expect(waitFor { failures.withLock { $0.first?.contains(doomed) } == true })
        // The log recovers on its own once the disk accepts writes again, then takes new ones.
        var accepted: UInt64?
        #expect(waitFor { accepted = try? wal.append(entry(2, records: [sampleRecord(3)])); return accepted != nil })
        #expect(waitFor { wal.committedLSN == accepted! })
        wal.close()
        let recovered = allRecords(try #require(try recover(dir).states["t1"]))
        #expect(recovered == [sampleRecord(1), sampleRecord(3)], "the failed write is gone, the later one is there")
    }

    /// A disk too full for a new segment still takes a write and a sync in the current one, so the
    /// recovery probe passes and the next batch fails at rotation again. The probe runs at most once a
    /// second (on the log's clock): with the clock held, only the first two batches fail and every
    /// later append is refused at once; a segment the disk could not hold leaves no file behind.
    @Test func aDiskTooFullToRotateOntoFailsAtMostOneBatchASecond() throws {
        let dir = TemporaryDirectory()
        let fs = FaultInjectingFileSystem()
        let clock = ManualClock()
        let configuration = WALConfiguration(
            directory: dir.path + "/wal", policy: .always, segmentBytes: 64 << 10, fileSystem: fs, prepareSegmentsInBackground: false)
        let wal = try WriteAheadLog(configuration: configuration, resume: nil, clock: clock)
        wal.onFailure = { rollbacks in for rollback in rollbacks { wal.rollbackDone(tenant: rollback.tenant) } }
        wal.start()
        fs.inject(.writeError(ENOSPC), times: 1_000_000, pathContains: "new-segment")
        var committed: [LearningRecord] = []
        var refused = 0
        for n in 1...2_000 {
            let record = sampleRecord(n)
            guard let lsn = try? wal.append(entry(UInt64(committed.count + 1), records: [record])) else {
                refused += 1
                continue
            }
            #expect(waitFor { wal.committedLSN >= lsn || wal.hasFailed(lsn) })
            if !wal.hasFailed(lsn) { committed.append(record) }
        }
        #expect(wal.stats.failures == 2, "a failed rotation, a probe that passes, a second failed rotation, then no probe")
        #expect(refused > 1_000)
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/wal/new-segment.tmp"))
        fs.clearFaults()
        clock.advance(milliseconds: 1_000)
        var accepted: UInt64?
        let record = sampleRecord(9_999)
        #expect(waitFor { accepted = try? wal.append(entry(UInt64(committed.count + 1), records: [record])); return accepted != nil })
        #expect(waitFor { wal.committedLSN >= accepted! })
        wal.close()
        #expect(allRecords(try #require(try recover(dir).states["t1"])) == committed + [record])
    }

    /// Until the tenant confirms that it undid a failed write, the commit mark stays below it: a
    /// connection learns of the failure (and releases reads held behind it) only once no read can
    /// observe the write any more.
    @Test func theCommitMarkPassesAFailedWriteOnlyAfterItsRollback() throws {
        let dir = TemporaryDirectory()
        let fs = FaultInjectingFileSystem()
        let wal = try openWAL(dir, fs: fs)
        let rollbacks = Mutex<[DurabilityLedger.Rollback]>([])
        wal.onFailure = { failed in rollbacks.withLock { $0 += failed } }
        let first = try wal.append(entry(1, records: [sampleRecord(1)]))
        #expect(waitFor { wal.committedLSN == first })
        fs.inject(.writeError(5), pathContains: "wal-")
        let doomed = try wal.append(entry(2, records: [sampleRecord(2)]))
        #expect(waitFor { wal.hasFailed(doomed) && !rollbacks.withLock { $0.isEmpty } })
        #expect(wal.committedLSN == first, "the failure is not visible while t1 still holds the write")
        wal.rollbackDone(tenant: "t1")
        #expect(wal.committedLSN >= doomed)
        wal.close()
    }

    /// Writes records 1...count of t1 one commit at a time into a fresh WAL and closes it; returns the
    /// first segment's path, its bytes and where its written data ends.
    func writtenSegment(_ dir: TemporaryDirectory, records count: Int) throws -> (path: String, bytes: [UInt8], end: Int) {
        let wal = try openWAL(dir)
        for n in 1...count {
            let lsn = try wal.append(entry(UInt64(n), records: [sampleRecord(n)]))
            #expect(waitFor { wal.committedLSN == lsn })
        }
        wal.close()
        let path = DataDirectory(dir.path).segmentPath(1)
        let bytes = try PosixFileSystem().readWholeFile(path)
        return (path, bytes, bytes.withUnsafeBytes { WALSegmentScanner.lastNonZero($0, from: WALSegmentHeader.size) })
    }

    @Test func recoveryTruncatesATornTailAndRefusesCorruption() throws {
        let dir = TemporaryDirectory()
        let written = try writtenSegment(dir, records: 6)
        let path = written.path
        var bytes = written.bytes
        let end = written.end

        // A torn tail: the last record half written.
        var torn = bytes
        for i in (end - 30)..<end { torn[i] = 0xAB }
        try PosixFileSystem().openForWriting(path, create: false).write(torn, at: 0)
        let outcome = try recover(dir)
        #expect(outcome.report.tornTail != nil)
        #expect(outcome.states["t1"]?.store.liveCount == 5)
        #expect(try recover(dir).report.tornTail == nil, "the torn tail was wiped")

        // Corruption in the middle: recovery stops unless forced.
        bytes = try PosixFileSystem().readWholeFile(path)
        bytes[WALSegmentHeader.size + 40] ^= 0xFF
        try PosixFileSystem().openForWriting(path, create: false).write(bytes, at: 0)
        #expect(throws: Recovery.Failure.self) { _ = try recover(dir) }
        let forced = try recover(dir, force: true)
        #expect(!forced.report.skippedCorruption.isEmpty)
    }

    /// A segment file that ends inside a record lost its end: corruption, never a torn tail (which is
    /// at most one unfinished write).
    @Test func aSegmentCutShortIsCorruptionNotATornTail() throws {
        let dir = TemporaryDirectory()
        let (path, _, end) = try writtenSegment(dir, records: 20)
        let file = try PosixFileSystem().openForWriting(path, create: false)
        try file.truncate(to: WALSegmentHeader.size + (end - WALSegmentHeader.size) / 2 + 3)
        file.close()
        #expect(throws: Recovery.Failure.self) { _ = try recover(dir) }
        let check = try WALInspector.check(DataDirectory(dir.path))
        #expect(check.isCorrupt)
        let forced = try recover(dir, force: true)
        #expect(!forced.report.skippedCorruption.isEmpty && forced.report.tornTail == nil)
    }

    /// Records after the last commit marker (a group-commit write that never finished) are not replayed.
    @Test func recordsWithoutTheirCommitMarkerAreNotReplayed() throws {
        let dir = TemporaryDirectory()
        let written = try writtenSegment(dir, records: 3)
        let path = written.path
        var bytes = written.bytes
        let end = written.end
        // Wipe the last write's commit marker only (its first word): its record is whole but unclosed.
        let word = withUnsafeBytes(of: (WALCommitMarker.flag | UInt32(WALCommitMarker.bodyBytes)).littleEndian) { Array($0) }
        let marker = try #require(stride(from: end - 4, through: WALSegmentHeader.size, by: -1).first { Array(bytes[$0..<($0 + 4)]) == word })
        for index in marker..<(marker + 4) { bytes[index] = 0 }
        try PosixFileSystem().openForWriting(path, create: false).write(bytes, at: 0)
        let outcome = try recover(dir)
        #expect(outcome.states["t1"]?.sequence == 2)
        #expect(outcome.report.tornTail != nil)
    }
    /// A rotation whose first write failed leaves a newest segment with no record, named above the
    /// older segment's last LSN (a failed LSN is never reused while running). After a restart the log
    /// resumes in that segment at its name, so what it writes there is read back after another crash.
    @Test func theLogResumesInANewestSegmentWithoutRecordsAtItsName() throws {
        let dir = TemporaryDirectory()
        let fs = PosixFileSystem()
        let data = DataDirectory(dir.path)
        try fs.createDirectory(data.walDirectory)
        let first = (1...3).map { WALRecord(lsn: UInt64($0), entry: entry(UInt64($0), records: [sampleRecord($0)])) }
        try fs.openForWriting(data.segmentPath(1), create: true).write(buildSegment(batches: [first]).bytes + [UInt8](repeating: 0, count: 256), at: 0)
        // The failed batch (LSN 5...6, one record torn) was in the newer segment; LSN 4 failed before it.
        let failed = (5...6).map { WALRecord(lsn: UInt64($0), entry: entry(UInt64($0) - 1, records: [sampleRecord($0)])) }
        var newer = buildSegment(batches: [failed]).bytes
        newer.removeLast(WALCommitMarker.size + 7)
        try fs.openForWriting(data.segmentPath(5), create: true).write(newer + [UInt8](repeating: 0, count: 1024), at: 0)

        let outcome = try recover(dir)
        #expect(outcome.states["t1"]?.sequence == 3)
        #expect(outcome.resume?.segmentFirstLSN == 5)
        #expect(outcome.resume?.nextLSN == 5, "the log must resume at the segment's name, not after the older segment's last LSN")
        let wal = try WriteAheadLog(configuration: WALConfiguration(directory: data.walDirectory, fileSystem: fs), resume: outcome.resume,
                                    segments: outcome.segments)
        wal.start()
        let lsn = try wal.append(entry(4, records: [sampleRecord(40)]))
        #expect(lsn == 5)
        #expect(wal.waitUntilCommitted(lsn))
        wal.close()
        let again = try recover(dir)
        #expect(again.states["t1"]?.sequence == 4)
        #expect(again.report.skippedCorruption.isEmpty)
    }
}
