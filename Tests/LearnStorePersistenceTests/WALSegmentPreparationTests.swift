import Foundation
import LearnStoreEngine
import LearnStoreModel
import LearnStoreTestSupport
import Testing
@testable import LearnStorePersistence

/// The next segment is zero-filled in the background once the current one is half full, so rotation
/// does not write a whole segment on the commit path; when preparation fails, rotation still works.
@Suite struct WALSegmentPreparationTests {
    let segmentBytes = 64 << 10

    func openWAL(_ dir: TemporaryDirectory, fs: any FileSystem) throws -> WriteAheadLog {
        let wal = try WriteAheadLog(configuration: WALConfiguration(directory: dir.path + "/wal", segmentBytes: segmentBytes, fileSystem: fs), resume: nil)
        wal.start()
        return wal
    }

    /// Appends records one by one (each committed before the next) until the log has `segments` segments.
    func appendUntil(segments: Int, _ wal: WriteAheadLog, from start: Int = 1) throws -> Int {
        var n = start
        while wal.segmentFirstLSNs.count < segments {
            let lsn = try wal.append(entry(UInt64(n), records: [sampleRecord(n)]))
            #expect(waitFor { wal.committedLSN == lsn })
            n += 1
        }
        return n
    }

    @Test func theNextSegmentIsPreparedAheadAndUsedByRotation() throws {
        let dir = TemporaryDirectory()
        let wal = try openWAL(dir, fs: PosixFileSystem())
        let prepared = WriteAheadLog.preparedPath(dir.path + "/wal")
        #expect(!PosixFileSystem().exists(prepared), "nothing is prepared while the first segment is nearly empty")

        var n = 1
        while !wal.preparer.isReady {
            let lsn = try wal.append(entry(UInt64(n), records: [sampleRecord(n)]))
            #expect(waitFor { wal.committedLSN == lsn })
            n += 1
            if n > 10_000 { Issue.record("no segment was prepared"); return }
        }
        #expect(PosixFileSystem().exists(prepared))
        n = try appendUntil(segments: 2, wal, from: n)
        #expect(wal.stats.segmentsPrepared == 1, "rotation used the prepared segment")
        // The next one is prepared right after a rotation; once it is ready, the next rotation uses it.
        #expect(waitFor { wal.preparer.isReady })
        n = try appendUntil(segments: 3, wal, from: n)
        #expect(wal.stats.segmentsPrepared == 2)
        wal.close()
        #expect(!PosixFileSystem().exists(prepared), "closing removes a prepared segment")
        let files = try PosixFileSystem().list(dir.path + "/wal")
        #expect(files.filter { $0.hasPrefix("wal-") }.count == 3)
        #expect(files.filter { !$0.hasPrefix("wal-") }.isEmpty, "no temporary files are left: \(files)")
        for file in files where file.hasPrefix("wal-") {
            let size = try PosixFileSystem().openForReading(dir.path + "/wal/" + file).size()
            #expect(size == segmentBytes, "every segment is full size and preallocated: \(file)")
        }
        let outcome = try Recovery(options: Recovery.Options(directory: DataDirectory(dir.path))).run()
        #expect(allRecords(try #require(outcome.states["t1"])) == (1..<n).map { sampleRecord($0) })
    }

    @Test func aFailedPreparationFallsBackToCreatingTheSegmentAtRotation() throws {
        let dir = TemporaryDirectory()
        let fs = FaultInjectingFileSystem()
        let wal = try openWAL(dir, fs: fs)
        // Armed after the first segment exists, so the failing write is the background preparation's.
        fs.inject(.writeError(28), times: 1, pathContains: "prepared-segment")
        let n = try appendUntil(segments: 3, wal)
        wal.close()
        #expect(fs.state.withLock { $0.faults.isEmpty }, "the fault was met")
        #expect(wal.stats.segmentsPrepared < 2, "the failed preparation was not used")
        #expect(wal.stats.failures == 0, "no write failed: the preparation error was absorbed")
        let outcome = try Recovery(options: Recovery.Options(directory: DataDirectory(dir.path))).run()
        #expect(allRecords(try #require(outcome.states["t1"])) == (1..<n).map { sampleRecord($0) })
    }
}
