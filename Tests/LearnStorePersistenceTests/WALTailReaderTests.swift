import Foundation
import LearnStoreEngine
import LearnStoreModel
import LearnStoreTestSupport
import Testing
@testable import LearnStorePersistence

/// The change feed's source: committed WAL records read back from the segment files, across rotations,
/// never past the commit mark, and the ledger's index of where each tenant's sequences are.
@Suite struct WALTailReaderTests {
    func openWAL(_ dir: TemporaryDirectory, segmentBytes: Int = 16 << 10, retention: FeedRetention = .none) throws -> WriteAheadLog {
        let wal = try WriteAheadLog(
            configuration: WALConfiguration(directory: dir.path + "/wal", policy: .always, segmentBytes: segmentBytes, feedRetention: retention), resume: nil)
        wal.start()
        return wal
    }

    /// Appends `count` writes of each tenant, interleaved, waiting for each round to commit: group
    /// commit then writes small batches, so rotation happens where the segment size says and not only
    /// where a large batch happened to end.
    func write(_ wal: WriteAheadLog, tenants: [String], count: Int, from first: Int = 1) {
        for n in first..<(first + count) {
            for tenant in tenants {
                let record = sampleRecord(n, tenant: tenant)
                _ = try! wal.append(entry(UInt64(n), tenant: tenant, records: [record]))
            }
            let last = UInt64(tenants.count * n)
            #expect(waitFor { wal.committedLSN >= last })
        }
    }

    func readAll(_ reader: WALTailReader, _ wal: WriteAheadLog, tenant: String, maximum: Int = 7) throws -> [WALRecord] {
        var records: [WALRecord] = []
        while true {
            let batch = try reader.read(wal.tail, isFailed: wal.hasFailed, maximumRecords: maximum) { candidate, _ in TenantFilter(tenant).matches(candidate) }
            records += batch.records
            #expect(batch.stalled == nil)
            if batch.caughtUp { return records }
        }
    }

    @Test func aTenantsRecordsComeBackInOrderAcrossSegmentsAndLiveAppendsFollow() throws {
        let dir = TemporaryDirectory()
        let wal = try openWAL(dir, segmentBytes: 8 << 10)
        write(wal, tenants: ["a", "b", "c"], count: 120)
        #expect(wal.segmentFirstLSNs.count > 3, "the records span several segments")
        let reader = WALTailReader(walDirectory: dir.path + "/wal", fileSystem: PosixFileSystem(), position: .init(segmentFirstLSN: 1))
        let first = try readAll(reader, wal, tenant: "b")
        #expect(first.map(\.entry.sequence) == Array(1...120))
        #expect(first.map(\.entry.mutations) == (1...120).map { [.putRecords([sampleRecord($0, tenant: "b")])] })
        write(wal, tenants: ["a", "b", "c"], count: 30, from: 121)
        #expect(try readAll(reader, wal, tenant: "b").map(\.entry.sequence) == Array(121...150))
        #expect(try readAll(reader, wal, tenant: "b").isEmpty, "caught up: nothing is read twice")
        wal.close()
    }

    @Test func theIndexFindsWhereASubscriberResumesAndWhatIsGone() throws {
        let dir = TemporaryDirectory()
        let wal = try openWAL(dir)
        write(wal, tenants: ["a", "b"], count: 200)
        let tail = wal.tail
        // Resuming after 150: the first segment holding a later change of b.
        guard case .segment(let first) = tail.start(tenant: "b", after: 150, tenantSequence: 200) else { Issue.record("no start"); return }
        let reader = WALTailReader(walDirectory: dir.path + "/wal", fileSystem: PosixFileSystem(), position: .init(segmentFirstLSN: first))
        let records = try readAll(reader, wal, tenant: "b").filter { $0.entry.sequence > 150 }
        #expect(records.map(\.entry.sequence) == Array(151...200))
        #expect(tail.start(tenant: "b", after: 200, tenantSequence: 200) == .live(firstLSN: tail.segments.last!.firstLSN))
        #expect(tail.start(tenant: "nobody", after: 0, tenantSequence: 0) == .live(firstLSN: tail.segments.last!.firstLSN))
        #expect(tail.start(tenant: "nobody", after: 0, tenantSequence: 3) == .truncated(oldest: 3),
                "a tenant with changes none of which is kept cannot be followed from before them")
        #expect(tail.oldestSequence(tenant: "b", tenantSequence: 200) == 0)
        wal.close()
    }

    @Test func retentionMovesTheFloorAndAReaderOnARemovedSegmentIsTold() throws {
        let dir = TemporaryDirectory()
        let wal = try openWAL(dir)
        write(wal, tenants: ["a"], count: 200)
        let reader = WALTailReader(walDirectory: dir.path + "/wal", fileSystem: PosixFileSystem(), position: .init(segmentFirstLSN: 1))
        wal.snapshotsKept(tenant: "a", oldestKeptLSN: 150)
        let removed = wal.removeUnneededSegments()
        #expect(!removed.isEmpty)
        let tail = wal.tail
        #expect(tail.floorLSN > 0 && tail.floorLSN <= 150, "only segments the snapshot covers are removed: \(wal.segmentFirstLSNs)")
        #expect(tail.segments.first!.firstLSN == tail.floorLSN + 1)
        if case .truncated(let oldest) = tail.start(tenant: "a", after: 0, tenantSequence: 200) {
            #expect(oldest == tail.floorLSN, "one tenant: its sequences are the LSNs")
        } else {
            Issue.record("the removed changes were offered")
        }
        #expect(throws: WALTailReader.ReadError.segmentGone(1)) {
            _ = try reader.read(tail, isFailed: wal.hasFailed, maximumRecords: 10) { _, _ in true }
        }
        wal.close()
    }

    @Test func theFeedWindowKeepsTheNewestSegmentsBySizeAndAge() {
        let segment = 1000
        var ledger = DurabilityLedger(nextLSN: 1, feedRetention: FeedRetention(bytes: 3 * segment, milliseconds: 10_000))
        for (index, openedAt) in [0, 1_000, 20_000, 21_000, 22_000].enumerated() {
            ledger.segmentOpened(firstLSN: UInt64(index * 10 + 1), bytes: segment, openedAtMilliseconds: Int64(openedAt))
            for _ in 0..<10 { _ = DurabilityLedgerTests.write(&ledger, "t") }
        }
        ledger.committed(through: 50)
        ledger.snapshotsKept(tenant: "t", oldestKeptLSN: 50)
        // Bytes keep the newest three; age (10 s at 25 s) keeps those whose writes ended at 15 s or later.
        #expect(ledger.removableSegments(nowMilliseconds: 25_000) == [1, 11])
        #expect(ledger.removableSegments(nowMilliseconds: 31_500) == [1, 11, 21], "the third segment's writes ended at 21 s")
        #expect(DurabilityLedger(nextLSN: 1).feedRetention == .none)
        ledger.segmentsRemoved([11])
        #expect(ledger.feedFloorLSN == 20, "a removed segment breaks the run: only what follows it is whole")
    }
}
