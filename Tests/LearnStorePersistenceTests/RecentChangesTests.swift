import LearnStoreEngine
import LearnStoreModel
import Synchronization
import Testing
@testable import LearnStorePersistence

/// The tenant's recent changes in memory: what a caught-up subscriber reads instead of the log.
@Suite struct RecentChangesTests {
    static func entry(_ sequence: UInt64, records: Int = 1) -> LogEntry {
        LogEntry(tenantID: "t", sequence: sequence, timestamp: Timestamp(milliseconds: Int64(sequence)),
                 mutations: [.putRecords((0..<records).map { Self.learningRecord(sequence * 1000 + UInt64($0)) })])
    }

    static func learningRecord(_ n: UInt64) -> LearningRecord {
        LearningRecord(id: RecordID(high: n, low: n), tenantID: "t", createdAt: Timestamp(milliseconds: 1),
                       updatedAt: Timestamp(milliseconds: 1), personID: UUID16(high: 2, low: 2))
    }

    static func record(_ lsn: UInt64, sequence: UInt64, records: Int = 1) -> WALRecord {
        WALRecord(lsn: lsn, entry: entry(sequence, records: records))
    }

    @Test func theBufferHoldsEveryWriteAfterItsStartAndReadsUpToTheCommitMark() {
        var buffer = RecentChangesBuffer(maximumRecords: 10)
        #expect(!buffer.holdsEverything(after: 100), "before the tenant said where it stands, nothing is known to be held")
        buffer.start(afterSequence: 5)
        buffer.start(afterSequence: 9)
        #expect(buffer.completeAfterSequence == 5, "only the first start counts")
        #expect(!buffer.holdsEverything(after: 4) && buffer.holdsEverything(after: 5) && buffer.holdsEverything(after: 7))
        for (lsn, sequence) in [(10, 6), (12, 7), (15, 8), (20, 9)] as [(UInt64, UInt64)] { buffer.append(Self.record(lsn, sequence: sequence)) }

        let all = buffer.read(afterLSN: 0, through: 15, maximum: 100)
        #expect(all.records.map(\.lsn) == [10, 12, 15] && !all.more && all.firstUncommittedLSN == 20)
        let capped = buffer.read(afterLSN: 10, through: 20, maximum: 2)
        #expect(capped.records.map(\.lsn) == [12, 15] && capped.more && capped.firstUncommittedLSN == nil)
        let rest = buffer.read(afterLSN: 15, through: 20, maximum: 2)
        #expect(rest.records.map(\.lsn) == [20] && !rest.more && rest.firstUncommittedLSN == nil)
        let between = buffer.read(afterLSN: 11, through: 11, maximum: 5)
        #expect(between.records.isEmpty && between.firstUncommittedLSN == 12, "a position between two LSNs starts at the next")
    }

    @Test func droppingWritesRaisesWhatTheBufferCanVouchFor() {
        var buffer = RecentChangesBuffer(maximumRecords: 5)
        buffer.start(afterSequence: 0)
        buffer.append(Self.record(1, sequence: 1, records: 2))
        buffer.append(Self.record(2, sequence: 2, records: 2))
        #expect(buffer.heldRecords == 4 && buffer.completeAfterSequence == 0)
        buffer.append(Self.record(3, sequence: 3, records: 2))
        #expect(buffer.heldRecords == 4 && buffer.count == 2, "over the bound the oldest write goes")
        #expect(buffer.completeAfterSequence == 1 && !buffer.holdsEverything(after: 0) && buffer.holdsEverything(after: 1))
        buffer.release(through: 2)
        #expect(buffer.count == 1 && buffer.completeAfterSequence == 2)
        buffer.append(Self.record(4, sequence: 4, records: 6))
        #expect(buffer.count == 0 && buffer.heldRecords == 0 && buffer.completeAfterSequence == 4,
                "a write larger than the bound is not held, and nothing before it either")
        buffer.append(Self.record(5, sequence: 5))
        #expect(buffer.read(afterLSN: 0, through: 5, maximum: 9).records.map(\.lsn) == [5])
    }

    @Test func manyAppendsAndReleasesKeepOrderAndCompact() {
        var buffer = RecentChangesBuffer(maximumRecords: 1000)
        buffer.start(afterSequence: 0)
        var released: UInt64 = 0
        for sequence in UInt64(1)...5000 {
            buffer.append(Self.record(sequence * 2, sequence: sequence))
            if sequence % 7 == 0 {
                released = sequence * 2 - 6
                buffer.release(through: released)
            }
            #expect(buffer.count <= 10)
        }
        let left = buffer.read(afterLSN: 0, through: .max, maximum: 100).records.map(\.lsn)
        #expect(left == Array(stride(from: released + 2, through: 10000, by: 2)))
    }

    /// A reader joins, reads what is committed, and is told when it fell behind; having read everything
    /// held, it is woken by the tenant's next write; waiting for a commit, by an append of a write the
    /// commit mark already passed (it would otherwise wait for a commit after that one).
    @Test func readersTakeCommittedWritesSkipFailedOnesAndAreWokenByAWriteAlreadyCommitted() {
        let committed = Atomic<UInt64>(0)
        let recent = RecentChanges(tenantID: "t", maximumRecords: 4) { committed.load(ordering: .relaxed) }
        recent.attached(atSequence: 3)
        let reader = ObjectIdentifier(RecentChangesTests.Marker())
        #expect(!recent.join(reader, throughSequence: 2, passedLSN: 0), "a reader behind what is held reads the log")
        #expect(recent.join(reader, throughSequence: 3, passedLSN: 0))
        let woken = Atomic<Int>(0)
        let wokenFor = Mutex<[UInt64?]>([])
        let wake: @Sendable (UInt64?) -> Void = { lsn in
            woken.add(1, ordering: .relaxed)
            wokenFor.withLock { $0.append(lsn) }
        }
        func read(through: UInt64 = 3, failed: Set<UInt64> = [], mayReturn: Set<UInt64> = []) -> RecentChanges.Read {
            recent.read(reader, throughSequence: through, committed: committed.load(ordering: .relaxed), maximum: 10, checkFailures: !failed.isEmpty,
                        resolve: { failed.contains($0) ? (mayReturn.contains($0) ? .stop : .skip) : .take }, wake: wake)
        }
        guard case .records(let none, 0, .waitForWrite) = read() else { Issue.record("nothing held: wait for the tenant's next write"); return }
        #expect(none.isEmpty)
        #expect(recent.appended(Self.entry(4), lsn: 7))
        #expect(woken.load(ordering: .relaxed) == 1, "a reader that had everything is woken by the tenant's next write, committed or not")
        #expect(wokenFor.withLock { $0 } == [7], "to wait for its commit")
        guard case .records(let uncommitted, 0, .waitForCommit(7)) = read() else { Issue.record("lsn 7 is held, not committed"); return }
        #expect(uncommitted.isEmpty, "the reader now waits for that commit, and a later write wakes it only if the mark passed it")
        committed.store(8, ordering: .relaxed)
        #expect(recent.appended(Self.entry(5), lsn: 8))
        #expect(woken.load(ordering: .relaxed) == 2, "a write the commit mark passed before it was held wakes the reader")
        #expect(wokenFor.withLock { $0 } == [7, nil], "to read at once")
        #expect(recent.appended(Self.entry(6), lsn: 8))
        #expect(woken.load(ordering: .relaxed) == 2, "once")
        committed.store(7, ordering: .relaxed)
        guard case .records(let first, 7, .waitForCommit(8)) = read() else { Issue.record("lsn 7 only"); return }
        #expect(first.map(\.lsn) == [7])
        committed.store(9, ordering: .relaxed)
        #expect(recent.appended(Self.entry(5), lsn: 9))
        let stopping = read(through: 4, failed: [8], mayReturn: [8])
        guard case .records(let stopped, 7, .waitForCommit(10)) = stopping else {
            Issue.record("a failed write that may return stops the read: \(stopping)"); return
        }
        #expect(stopped.isEmpty)
        guard case .records(let skipped, 9, .waitForWrite) = read(through: 4, failed: [8]) else { Issue.record("a failed write is passed"); return }
        #expect(skipped.map(\.lsn) == [9])
        for sequence in UInt64(6)...10 { _ = recent.appended(Self.entry(sequence), lsn: sequence + 4) }
        committed.store(20, ordering: .relaxed)
        guard case .behind = read(through: 5) else { Issue.record("writes the reader had not read were dropped"); return }
        recent.close()
        #expect(!recent.appended(Self.entry(11), lsn: 30), "a closed buffer tells the tenant to let go")
        #expect(recent.heldRecords == 0)
    }

    final class Marker {}
}
