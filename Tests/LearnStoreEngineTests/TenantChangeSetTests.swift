import CanvasOutcomes
import LearnStoreModel
import LearnStoreWorkload
import Testing
@testable import LearnStoreEngine

/// A partition move copies a tenant while it still takes writes, then, once fenced, what those writes
/// touched: the two together are the tenant as it is; where the changes cannot say that exactly, the
/// tenant gives none and is copied whole.
@Suite struct TenantChangeSetTests {
    static let laterCourse = CanvasCourseDataset(students: 4, outcomes: 5, resultsPerOutcome: 2, seed: 11)

    /// One write of each kind, chosen by `step`, against the records the tenant holds.
    static func write(_ step: Int, to actor: TenantActor) async throws {
        let records = await actor.state.store
        let live = (0..<UInt32(records.slotCount)).filter { !records[$0].isPurged && !records[$0].isDeleted }.map { records.record(at: $0) }
        let target = live[step % live.count]
        switch step % 6 {
        case 0: _ = try await actor.create(body(person: person(UInt64(100 + step)), title: "during the copy \(step)"), caller: caller(), idempotencyKey: "new-\(step)")
        case 1: _ = try await actor.patch(target.id, body(person: target.personID, title: "patched \(step)", score: Double(step % 100)), caller: caller())
        case 2: _ = try await actor.delete(target.id, caller: caller())
        case 3: _ = try await actor.purgePerson(target.personID, dryRun: false, caller: caller())
        case 4: _ = try await actor.ingestOutcomes(lines(laterCourse.events), caller: caller())
        default: _ = try await actor.createBatch([body(person: person(7), title: "batch \(step)"), body(person: person(8), title: "batch")], caller: caller())
        }
    }

    /// Copies `actor` into `target` piece by piece (a write between pieces), then its changes.
    static func copyWhileWriting(_ actor: TenantActor, into target: inout TenantState, pieceItems: Int, token: UInt64) async throws {
        var cursor: TenantExportCursor? = .start
        var step = 0
        while let current = cursor {
            let (piece, next) = await actor.exportPiece(from: current, maximumItems: pieceItems, tracking: token)
            let sequence = current == .start ? max(await actor.state.sequence, target.sequence) + 1 : target.sequence + 1
            target.apply(current == .start ? [.resetTenant] + piece : piece, sequence: sequence)
            cursor = next
            try await write(step, to: actor)
            step += 1
        }
        cursor = .changesStart
        while let current = cursor {
            let (piece, next) = try #require(await actor.exportChanges(from: current, maximumItems: pieceItems, token: token))
            let sequence = current == .changesStart ? max(await actor.state.sequence, target.sequence) + 1 : target.sequence + 1
            target.apply(current == .changesStart ? [.continueTenant] + piece : piece, sequence: sequence)
            cursor = next
        }
    }

    @Test(arguments: [1, 3, 50, 2000])
    func aCopyReadWhileWritesGoOnPlusItsChangesIsTheTenant(pieceItems: Int) async throws {
        let actor = TenantActor(state: try TenantExportTests.source(), log: DiscardingLog())
        var target = TenantState(tenantID: tenantA)
        try await Self.copyWhileWriting(actor, into: &target, pieceItems: pieceItems, token: 7)
        let source = await actor.state
        #expect(TenantExportTests.observed(target) == TenantExportTests.observed(source))
        #expect(target.outcomes.tables == source.outcomes.tables)
        #expect(target.sequence > source.sequence)
        #expect(await actor.exportChanges(from: .changesStart, maximumItems: 10, token: 8) == nil, "tracked for another copy")
    }

    /// Without the changes the copy is stale: the test above would pass without tracking otherwise.
    @Test func theFirstCopyAloneMissesTheWritesDuringIt() async throws {
        let actor = TenantActor(state: try TenantExportTests.source(), log: DiscardingLog())
        var target = TenantState(tenantID: tenantA)
        var cursor: TenantExportCursor? = .start
        var step = 0
        while let current = cursor {
            let (piece, next) = await actor.exportPiece(from: current, maximumItems: 5, tracking: 1)
            target.apply(current == .start ? [.resetTenant] + piece : piece, sequence: target.sequence + 1)
            cursor = next
            try await Self.write(step, to: actor)
            step += 1
        }
        #expect(TenantExportTests.observed(target) != TenantExportTests.observed(await actor.state))
        let changes = try #require(await actor.changesSinceCopy)
        #expect(!changes.records.isEmpty && changes.outcomesChanged && changes.keysChanged && !changes.lostTrack)
    }

    @Test func aWriteTakenBackLosesTrack() async throws {
        let log = RecordingLog()
        let actor = TenantActor(state: try TenantExportTests.source(), log: log)
        _ = await actor.exportPiece(from: .start, maximumItems: 10, tracking: 3)
        let write = try await actor.create(body(title: "not durable"), caller: caller())
        #expect(await actor.exportChanges(from: .changesStart, maximumItems: 10, token: 3) != nil)
        #expect(await actor.rollBack(write.lsn...write.lsn) == 1)
        #expect(await actor.exportChanges(from: .changesStart, maximumItems: 10, token: 3) == nil)
    }

    @Test func slotsLaidOutAnewLoseTrack() async throws {
        let actor = TenantActor(state: try TenantExportTests.source(), log: DiscardingLog())
        _ = await actor.exportPiece(from: .start, maximumItems: 10, tracking: 3)
        // An import of a record older than every other sorts before them: the slots are rebuilt.
        var other = Harness()
        var old = try other.create(body(title: "from long ago"))
        old.createdAt = Timestamp(milliseconds: 1_000)
        old.updatedAt = old.createdAt
        _ = try await actor.importRecords([old], caller: caller())
        #expect(await actor.exportChanges(from: .changesStart, maximumItems: 10, token: 3) == nil)
    }

    @Test func aNewKeyPushingAnOldOneOutLosesTrack() async throws {
        let actor = TenantActor(state: TenantState(tenantID: tenantA, limits: EngineLimits(idempotencyKeys: 2)), log: DiscardingLog())
        for key in ["a", "b"] { _ = try await actor.create(body(title: key), caller: caller(), idempotencyKey: key) }
        _ = await actor.exportPiece(from: .start, maximumItems: 10, tracking: 3)
        _ = try await actor.create(body(title: "plain"), caller: caller())
        #expect(await actor.exportChanges(from: .changesStart, maximumItems: 10, token: 3) != nil, "no key written: the full table does not matter")
        _ = try await actor.create(body(title: "c"), caller: caller(), idempotencyKey: "c")
        #expect(await actor.exportChanges(from: .changesStart, maximumItems: 10, token: 3) == nil)
    }

    @Test func tooManyRecordsTouchedLoseTrack() {
        var changes = TenantChangeSet(token: 1, layoutRevision: 0)
        var other = Harness()
        let record = try! other.create(body())
        let ids = (0...TenantChangeSet.maximumRecords).map { RecordID(high: record.id.high, low: UInt64($0)) }
        changes.note([.purgeRecords(ids)])
        #expect(changes.lostTrack && changes.records.isEmpty)
    }
}
