import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import Testing
@testable import LearnStoreServer

/// A subscriber's view of the log, as transcripts: records in, changes out.
@Suite struct FeedTranslatorTests {
    static let reader = CallerIdentity(tenantID: "t", personID: UUID16(high: 1, low: 1), scopes: [.recordsRead, .outcomesRead])

    static func record(_ n: UInt64, app: String? = nil) -> LearningRecord {
        LearningRecord(id: RecordID(high: n, low: n), tenantID: "t", appID: app, createdAt: Timestamp(milliseconds: 1),
                       updatedAt: Timestamp(milliseconds: 1), personID: UUID16(high: 2, low: 2))
    }

    static func wal(_ lsn: UInt64, sequence: UInt64, tenant: String = "t", _ mutations: [TenantMutation]) -> WALRecord {
        WALRecord(lsn: lsn, entry: LogEntry(tenantID: tenant, sequence: sequence, timestamp: Timestamp(milliseconds: Int64(lsn)), mutations: mutations))
    }

    @Test func writesBecomeChangesWithTheirKindAndIdempotencyKeysAreNotShown() {
        var translator = FeedTranslator(tenantID: "t", caller: Self.reader, after: 0)
        let key = IdempotencyEntry(key: "k", fingerprint: 1, ids: [], sequence: 1)
        let changes = translator.translate([
            Self.wal(1, sequence: 1, [.putRecords([Self.record(1)]), .recordChange(.create), .rememberIdempotencyKey(key)]),
            Self.wal(2, sequence: 2, [.putRecords([Self.record(1)])]),
            Self.wal(3, sequence: 3, [.purgeRecords([RecordID(high: 1, low: 1)])]),
        ], readThroughLSN: 3)
        #expect(changes.map(\.parts) == [[.records(.create, [Self.record(1)])], [.records(.put, [Self.record(1)])], [.purge([RecordID(high: 1, low: 1)])]])
        #expect(translator.throughSequence == 3)
    }

    @Test func aGapInTheSequencesIsARestoreAndAnAnnouncedOneWaitsForTheWritesBeforeIt() {
        var translator = FeedTranslator(tenantID: "t", caller: Self.reader, after: 0)
        var changes = translator.translate([Self.wal(1, sequence: 1, [.putRecords([Self.record(1)])]), Self.wal(5, sequence: 3, [.putRecords([Self.record(2)])])], readThroughLSN: 5)
        #expect(changes.map(\.sequence) == [1, 2, 3])
        #expect(changes[1].parts == [.tenantRestore])
        // Announced at sequence 4 after the write at LSN 9, which the reader has not reached yet.
        translator.restored(sequence: 4, afterLSN: 9, at: Timestamp(milliseconds: 77))
        #expect(translator.translate([], readThroughLSN: 8).isEmpty)
        changes = translator.translate([], readThroughLSN: 9)
        #expect(changes == [FeedChange(sequence: 4, timestamp: Timestamp(milliseconds: 77), parts: [.tenantRestore])])
        #expect(translator.translate([Self.wal(10, sequence: 5, [.putRecords([Self.record(3)])])], readThroughLSN: 10).map(\.sequence) == [5])
    }

    /// A partition move: the group a tenant arrives in starts with a reset at the sequence it had
    /// (no restores are made up for the sequences it never held), and the group it left ends the
    /// subscription at its release, giving nothing after it.
    @Test func aTenantArrivingStartsWithARestoreAndATenantLeavingEndsTheFeed() {
        var arriving = FeedTranslator(tenantID: "t", caller: Self.reader, after: 0)
        let adopted = arriving.translate([Self.wal(3, sequence: 41, [.resetTenant, .putRecords([Self.record(1)]), .recordChange(.import)])], readThroughLSN: 3)
        #expect(adopted == [FeedChange(sequence: 41, timestamp: Timestamp(milliseconds: 3), parts: [.tenantRestore, .records(.import, [Self.record(1)])])])

        var leaving = FeedTranslator(tenantID: "t", caller: Self.reader, after: 0)
        let last = leaving.translate([
            Self.wal(1, sequence: 1, [.putRecords([Self.record(1)]), .recordChange(.create)]),
            Self.wal(2, sequence: 2, [.releaseTenant]),
            Self.wal(3, sequence: 3, [.putRecords([Self.record(2)])]),
        ], readThroughLSN: 3)
        #expect(last.map(\.sequence) == [1])
        #expect(leaving.releasedAfter == 1 && leaving.throughSequence == 1)
        #expect(leaving.translate([Self.wal(4, sequence: 4, [.putRecords([Self.record(3)])])], readThroughLSN: 4).isEmpty)
    }

    @Test func scopesAndTheAppClaimDecideWhatIsShownAndSkippedChangesStillAdvance() {
        let app = CallerIdentity(tenantID: "t", appID: "one", personID: UUID16(high: 1, low: 1), scopes: [.recordsRead])
        var translator = FeedTranslator(tenantID: "t", caller: app, after: 0)
        let changes = translator.translate([
            Self.wal(1, sequence: 1, [.putRecords([Self.record(1, app: "two")]), .recordChange(.create)]),
            Self.wal(2, sequence: 2, [.putRecords([Self.record(2, app: "one"), Self.record(3, app: "two")]), .recordChange(.import)]),
            Self.wal(3, sequence: 3, [.outcomes([])]),
            Self.wal(4, sequence: 4, tenant: "other", [.putRecords([Self.record(4, app: "one")])]),
        ], readThroughLSN: 4)
        #expect(changes == [FeedChange(sequence: 2, timestamp: Timestamp(milliseconds: 2), parts: [.records(.import, [Self.record(2, app: "one")])])])
        #expect(translator.throughSequence == 3, "another app's write and an outcome change the token may not read are passed")
    }

    @Test func creditAndCommitsDecideWhenTheLogIsRead() {
        var state = FeedSessionState(credit: 3, maximumBatchChanges: 2)
        #expect(state.nextAction(writable: false, committedLSN: 10) == .none, "a backed-up socket stops reading")
        #expect(state.nextAction(writable: true, committedLSN: 10) == .read(maximumChanges: 2))
        #expect(state.nextAction(writable: true, committedLSN: 10) == .none, "one read at a time")
        state.readFinished(sent: 2, wait: nil)
        #expect(state.nextAction(writable: true, committedLSN: 10) == .read(maximumChanges: 1))
        state.readFinished(sent: 1, wait: .commit(11))
        #expect(state.nextAction(writable: true, committedLSN: 11) == .none, "no credit, no read")
        state.creditGranted(5, cap: 4)
        #expect(state.credit == 4, "credit is capped")
        #expect(state.nextAction(writable: true, committedLSN: 10) == .waitForCommit(11))
        #expect(state.nextAction(writable: true, committedLSN: 10) == .none)
        state.commitProgressed()
        #expect(state.nextAction(writable: true, committedLSN: 11) == .read(maximumChanges: 2))
        state.readFinished(sent: 0, wait: .commit(12))
        state.somethingToRead()
        #expect(state.nextAction(writable: true, committedLSN: 11) == .read(maximumChanges: 2), "an announced restore is read without a commit")
    }

    /// A subscriber that has every change its tenant's memory holds waits for the tenant's next write,
    /// not for the log's next commit: commits of other tenants' writes do not make it read.
    @Test func aSubscriberWithNothingUncommittedWaitsForItsTenantsNextWrite() {
        var state = FeedSessionState(credit: 10, maximumBatchChanges: 4)
        #expect(state.nextAction(writable: true, committedLSN: 11) == .read(maximumChanges: 4))
        state.readFinished(sent: 2, wait: .write)
        #expect(state.nextAction(writable: true, committedLSN: 12) == .none, "another tenant's commit")
        #expect(state.nextAction(writable: true, committedLSN: 99) == .none)
        state.somethingToRead()
        #expect(state.nextAction(writable: true, committedLSN: 99) == .read(maximumChanges: 4), "the tenant wrote")
        state.somethingToRead()
        state.readFinished(sent: 0, wait: .write)
        #expect(state.nextAction(writable: true, committedLSN: 99) == .read(maximumChanges: 4), "a write during the read is read at once")
    }

    /// A read off the event loop can look at the recent changes just before the tenant appends a write
    /// the commit mark has already passed; the append's wake then arrives while the read is still
    /// out. Taking the read's "wait for the next commit" would leave that write unsent until the
    /// tenant's next write, however long that is.
    @Test func aWakeDuringAReadIsNotLostToTheReadsWaitForCommit() {
        var state = FeedSessionState(credit: 10, maximumBatchChanges: 4)
        #expect(state.nextAction(writable: true, committedLSN: 11) == .read(maximumChanges: 4))
        state.somethingToRead()
        #expect(state.nextAction(writable: true, committedLSN: 11) == .none, "still one read at a time")
        state.readFinished(sent: 0, wait: .commit(12))
        #expect(state.nextAction(writable: true, committedLSN: 11) == .read(maximumChanges: 4), "read again at once")
        state.readFinished(sent: 1, wait: .commit(12))
        #expect(state.nextAction(writable: true, committedLSN: 11) == .waitForCommit(12), "a wake is counted once")
    }
}
