import LearnStoreModel
import LearnStoreTestSupport
import Testing
@testable import LearnStorePersistence

/// Receiving and installing a primary's copy (CATCH_UP): what a primary may announce, and an
/// install that can stop anywhere and be repeated.
@Suite struct CatchUpTests {
    let fs = PosixFileSystem()

    @Test func aCopyWritesOnlyWALAndSnapshotFiles() {
        for path in ["wal/removed-segments", "wal/" + WALSegmentHeader.fileName(firstLSN: 7), "tenants/tenant_a/" + SnapshotHeader.fileName(sequence: 3)] {
            #expect(CatchUpPath.isValid(path), "\(path)")
        }
        for path in ["LOCK", "wal/../LOCK", "wal/wal-1.log", "tenants/../wal/" + SnapshotHeader.fileName(sequence: 3), "tenants/tenant_a/x.lss",
                     "/etc/passwd", "replication/epochs", "tenants/tenant_a/" + SnapshotHeader.fileName(sequence: 3) + "/x", ""] {
            #expect(!CatchUpPath.isValid(path), "\(path)")
        }
    }

    @Test func aPrimaryThatBreaksTheCopysRulesIsRefusedWithBadFrame() throws {
        let directory = TemporaryDirectory()
        let data = DataDirectory(directory.path)
        let segment = "wal/" + WALSegmentHeader.fileName(firstLSN: 1)
        let cases: [(String, (CatchUpWriter) throws(LearnStoreError) -> Void)] = [
            ("FILE before BEGIN", { w throws(LearnStoreError) in try w.file(path: segment, size: 8, sentBytes: 8) }),
            ("a path outside the copy", { w throws(LearnStoreError) in
                try w.begin(files: 1, bytes: 1, throughLSN: 1)
                try w.file(path: "LOCK", size: 1, sentBytes: 1)
            }),
            ("more bytes than the file's", { w throws(LearnStoreError) in
                try w.begin(files: 1, bytes: 8, throughLSN: 1)
                try w.file(path: segment, size: 8, sentBytes: 4)
                try w.data([1, 2, 3, 4, 5])
            }),
            ("more than the total announced", { w throws(LearnStoreError) in
                try w.begin(files: 1, bytes: 4, throughLSN: 1)
                try w.file(path: segment, size: 8, sentBytes: 8)
            }),
            ("sent bytes beyond the size", { w throws(LearnStoreError) in
                try w.begin(files: 1, bytes: 9, throughLSN: 1)
                try w.file(path: segment, size: 8, sentBytes: 9)
            }),
            ("the same file twice", { w throws(LearnStoreError) in
                try w.begin(files: 2, bytes: 0, throughLSN: 1)
                try w.file(path: segment, size: 0, sentBytes: 0)
                try w.file(path: segment, size: 0, sentBytes: 0)
            }),
            ("END with a file missing", { w throws(LearnStoreError) in
                try w.begin(files: 2, bytes: 0, throughLSN: 1)
                try w.file(path: segment, size: 0, sentBytes: 0)
                try w.finish(history: EpochHistory())
            }),
            ("a file cut short", { w throws(LearnStoreError) in
                try w.begin(files: 1, bytes: 4, throughLSN: 1)
                try w.file(path: segment, size: 8, sentBytes: 4)
                try w.data([1, 2])
                try w.finish(history: EpochHistory())
            }),
            ("a file count out of range", { w throws(LearnStoreError) in try w.begin(files: -1, bytes: 0, throughLSN: 1) }),
        ]
        for (name, run) in cases {
            let writer = try CatchUpWriter(data: data, fileSystem: fs)
            let error = #expect(throws: LearnStoreError.self, "\(name)") { try run(writer) }
            #expect(error?.code == .badFrame, "\(name)")
            writer.abandon()
            #expect(!fs.exists(directory.path + "/catch-up"), "\(name)")
        }
    }

    @Test func aCopyCutShortIsRemovedAndTheNodeKeepsItsData() throws {
        let directory = TemporaryDirectory()
        let data = DataDirectory(directory.path)
        try fs.createDirectory(data.walDirectory)
        try fs.replaceDurably(data.walDirectory + "/" + RemovedSegmentsFile.name, with: RemovedSegmentsFile.encode(["tenant_a": 5]), directory: data.walDirectory)
        let writer = try CatchUpWriter(data: data, fileSystem: fs)
        try writer.begin(files: 2, bytes: 10, throughLSN: 7)
        try writer.file(path: "wal/" + WALSegmentHeader.fileName(firstLSN: 3), size: 64, sentBytes: 10)
        try writer.data(Array(repeating: 9, count: 10))
        // The node stops here: nothing is complete.
        #expect(try CatchUpInstall.resume(data, historyDirectory: directory.path + "/replication", fs) == nil)
        #expect(!fs.exists(directory.path + "/catch-up"))
        #expect(try data.segments(fs).isEmpty)
        #expect(try RemovedSegmentsFile.decode(fs.readWholeFile(data.walDirectory + "/" + RemovedSegmentsFile.name)) == ["tenant_a": 5])
    }

    /// A complete copy replaces the node's WAL and snapshots whole, keeps the node's promise, and an
    /// install interrupted after any of its renames ends the same when repeated.
    @Test func aCompleteCopyReplacesTheNodesFilesAndItsInstallCanBeRepeated() throws {
        for movedBeforeTheCrash in 0...3 {
            let directory = TemporaryDirectory()
            let data = DataDirectory(directory.path)
            let historyDirectory = directory.path + "/replication"
            // What the node held: an old segment, a snapshot of a tenant the primary lacks, and a promise.
            try fs.createDirectory(data.walDirectory)
            try fs.replaceDurably(data.segmentPath(1), with: [0xEE], directory: data.walDirectory)
            try fs.createDirectory(data.tenantDirectory("tenant_old"))
            try fs.replaceDurably(data.snapshotPath("tenant_old", sequence: 4), with: [0xEE], directory: data.tenantDirectory("tenant_old"))
            var own = try EpochHistory(starts: [(1, 1)])
            _ = own.promise(5, to: UUID16(high: 1, low: 5))
            try fs.createDirectory(historyDirectory)
            try own.write(directory: historyDirectory, fs)

            let files: [(String, [UInt8], Int)] = [
                ("wal/" + RemovedSegmentsFile.name, Array(RemovedSegmentsFile.encode(["tenant_a": 3])), 0),
                ("tenants/tenant_a/" + SnapshotHeader.fileName(sequence: 2), [1, 2, 3], 0),
                ("wal/" + WALSegmentHeader.fileName(firstLSN: 40), [4, 5, 6, 7], 16),
            ]
            let writer = try CatchUpWriter(data: data, fileSystem: fs)
            try writer.begin(files: files.count, bytes: files.reduce(0) { $0 + $1.1.count }, throughLSN: 44)
            for (path, bytes, size) in files {
                try writer.file(path: path, size: max(size, bytes.count), sentBytes: bytes.count)
                try writer.data(bytes)
            }
            try writer.finish(history: try EpochHistory(starts: [(1, 1), (3, 30)]))
            // A crash after some renames: the install is repeated from the start.
            for index in 0..<min(movedBeforeTheCrash, files.count) {
                let target = directory.path + "/" + files[index].0
                try fs.createDirectory(String(target[..<target.lastIndex(of: "/")!]))
                try fs.rename(CatchUpStaging(data).stagedPath(index), to: target)
            }

            let installed = try #require(try CatchUpInstall.resume(data, historyDirectory: historyDirectory, fs))
            #expect(installed.throughLSN == 44 && installed.files == 3)
            #expect(try data.segments(fs) == [40])
            #expect(try fs.readWholeFile(data.segmentPath(40)) == [4, 5, 6, 7] + Array(repeating: 0, count: 12))
            #expect(try data.tenants(fs) == ["tenant_a"])
            #expect(try fs.readWholeFile(data.snapshotPath("tenant_a", sequence: 2)) == [1, 2, 3])
            #expect(try RemovedSegmentsFile.decode(fs.readWholeFile(data.walDirectory + "/" + RemovedSegmentsFile.name)) == ["tenant_a": 3])
            let history = try EpochHistory.read(directory: historyDirectory, fs)
            #expect(history.starts.map(\.epoch) == [1, 3] && history.promised == 5, "the primary's epochs, the node's promise")
            #expect(!fs.exists(directory.path + "/catch-up"))
            #expect(try CatchUpInstall.resume(data, historyDirectory: historyDirectory, fs) == nil)
        }
    }
}
