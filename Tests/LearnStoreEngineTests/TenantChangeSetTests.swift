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

    /// Copies `actor` into `target` piece by piece (a write between pieces), then `rounds` rounds of
    /// what changed (a write between their pieces too), then its changes.
    static func copyWhileWriting(_ actor: TenantActor, into target: inout TenantState, pieceItems: Int, token: UInt64, rounds: Int = 0) async throws {
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
        for _ in 0..<rounds {
            cursor = .changesStart
            var starting = true
            while let current = cursor {
                let (piece, next) = try #require(await actor.exportRound(from: current, maximumItems: pieceItems, token: token, starting: starting))
                starting = false
                target.apply(piece, sequence: target.sequence + 1)
                cursor = next
                try await write(step, to: actor)
                step += 1
            }
        }
        cursor = .changesStart
        while let current = cursor {
            let (piece, next) = try #require(await actor.exportChanges(from: current, maximumItems: pieceItems, token: token))
            let sequence = current == .changesStart ? max(await actor.state.sequence, target.sequence) + 1 : target.sequence + 1
            target.apply(current == .changesStart ? [.continueTenant] + piece : piece, sequence: sequence)
            cursor = next
        }
    }

    @Test(arguments: [(1, 0), (3, 0), (50, 0), (2000, 0), (1, 2), (3, 1), (50, 3)])
    func aCopyReadWhileWritesGoOnPlusItsChangesIsTheTenant(pieceItems: Int, rounds: Int) async throws {
        let actor = TenantActor(state: try TenantExportTests.source(), log: DiscardingLog())
        var target = TenantState(tenantID: tenantA)
        try await Self.copyWhileWriting(actor, into: &target, pieceItems: pieceItems, token: 7, rounds: rounds)
        let source = await actor.state
        #expect(TenantExportTests.observed(target) == TenantExportTests.observed(source))
        #expect(target.outcomes.tables == source.outcomes.tables)
        #expect(target.sequence > source.sequence)
        #expect(await actor.exportChanges(from: .changesStart, maximumItems: 10, token: 8) == nil, "tracked for another copy")
        #expect(await actor.exportRound(from: .changesStart, maximumItems: 10, token: 8, starting: true) == nil, "tracked for another copy")
    }

    /// A round takes the records touched so far and tracking starts over: the fenced part then has
    /// only what was touched since.
    @Test func aRoundLeavesTheFencedPartOnlyWhatWasTouchedSince() async throws {
        let actor = TenantActor(state: try TenantExportTests.source(), log: DiscardingLog())
        _ = await actor.exportPiece(from: .start, maximumItems: 1000, tracking: 5)
        for step in [0, 1, 5] { try await Self.write(step, to: actor) }
        let touched = try #require(await actor.changesSinceCopy).records.count
        let round = try #require(await actor.exportRound(from: .changesStart, maximumItems: 1000, token: 5, starting: true))
        #expect(touched >= 3 && round.next == nil)
        #expect(try #require(await actor.changesSinceCopy).records.isEmpty)
        try await Self.write(6, to: actor)
        #expect(try #require(await actor.changesSinceCopy).records.count == 1)
        // A piece inside the round does not start it again.
        _ = try #require(await actor.exportRound(from: .changesStart, maximumItems: 1000, token: 5, starting: false))
        #expect(try #require(await actor.changesSinceCopy).records.count == 1)
    }

    /// A round also takes the outcome rows and the keys when they changed, so the fenced part copies
    /// them only if they changed again during the round.
    @Test func aRoundTakesChangedOutcomeRowsAndKeysSoTheFencedPartNeedNot() async throws {
        func hasOutcomes(_ mutations: [TenantMutation]) -> Bool { mutations.contains { if case .outcomes = $0 { true } else { false } } }
        let actor = TenantActor(state: try TenantExportTests.source(), log: DiscardingLog())
        _ = await actor.exportPiece(from: .start, maximumItems: 100_000, tracking: 5)
        for step in [0, 4] { try await Self.write(step, to: actor) }
        let before = try #require(await actor.changesSinceCopy)
        #expect(before.outcomesChanged && before.keysChanged)
        let round = try #require(await actor.exportRound(from: .changesStart, maximumItems: 100_000, token: 5, starting: true))
        #expect(hasOutcomes(round.mutations) && round.mutations.contains(.forgetIdempotencyKeys) && round.next == nil)
        let after = try #require(await actor.changesSinceCopy)
        #expect(!after.outcomesChanged && !after.keysChanged)
        let fenced = try #require(await actor.exportChanges(from: .changesStart, maximumItems: 100_000, token: 5))
        #expect(!hasOutcomes(fenced.mutations) && !fenced.mutations.contains(.forgetIdempotencyKeys))
    }

    /// The fenced part sends only the outcome rows writes touched, as they are now: one result
    /// re-assessed after the first copy is one row, not the tenant's every row.
    @Test func theFencedPartSendsOnlyTheOutcomeRowsWritesTouched() async throws {
        let actor = TenantActor(state: try TenantExportTests.source(), log: DiscardingLog())
        let rows = await actor.state.outcomes.tables.recordCount
        _ = await actor.exportPiece(from: .start, maximumItems: 100_000, tracking: 9)
        let result = try #require(TenantExportTests.course.results.first)
        var reassessed = result
        reassessed.score = (result.score ?? 0) + 0.5
        reassessed.updatedAt = Timestamp(milliseconds: (result.updatedAt ?? result.assessedAt ?? Timestamp(milliseconds: 0)).milliseconds + 86_400_000)
        reassessed.metadata.eventTime = reassessed.updatedAt
        _ = try await actor.ingestOutcomes(lines([OutcomeEvent(name: .learningOutcomeResultUpdated, entity: .result(reassessed))]), caller: caller())
        let fenced = try #require(await actor.exportChanges(from: .changesStart, maximumItems: 100_000, token: 9))
        let sent = fenced.mutations.flatMap { mutation -> [OutcomeRecord] in if case .outcomes(let rows) = mutation { rows } else { [] } }
        #expect(rows > 10 && sent.count == 1 && sent.first?.key == result.key)
    }

    /// The first copy reads the outcome rows as they were when it began: rows written between its
    /// pieces (which shift the offsets the pieces read by) are left to the changes.
    @Test func theFirstCopyReadsTheOutcomeRowsAsTheyWereWhenItBegan() async throws {
        let actor = TenantActor(state: try TenantExportTests.source(), log: DiscardingLog())
        let atStart = await actor.state.outcomes.tables
        var copied: [OutcomeRecord] = []
        var cursor: TenantExportCursor? = .start
        while let current = cursor {
            let (piece, next) = await actor.exportPiece(from: current, maximumItems: 3, tracking: 4)
            for case .outcomes(let rows) in piece { copied += rows }
            cursor = next
            _ = try await actor.ingestOutcomes(lines(Self.laterCourse.events), caller: caller())
        }
        var expected: [OutcomeRecord] = []
        atStart.forEachRecord { expected.append($0) }
        #expect(copied == expected && copied.count > 10)
        #expect(await actor.state.outcomes.tables != atStart, "the rows changed while it copied")
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

    /// A full key table pushes its oldest key out with each new one, which no mutation says, and a
    /// first copy read a key at a time while that happens skips keys: the changes forget the first
    /// copy's keys and send the table again, in its order.
    @Test func aFullKeyTableIsCopiedExactly() async throws {
        let actor = TenantActor(state: TenantState(tenantID: tenantA, limits: EngineLimits(idempotencyKeys: 2)), log: DiscardingLog())
        for key in ["a", "b"] { _ = try await actor.create(body(title: key), caller: caller(), idempotencyKey: key) }
        var target = TenantState(tenantID: tenantA, limits: EngineLimits(idempotencyKeys: 2))
        var cursor: TenantExportCursor? = .start
        var added = false
        while let current = cursor {
            let (piece, next) = await actor.exportPiece(from: current, maximumItems: 1, tracking: 3)
            target.apply(current == .start ? [.resetTenant] + piece : piece, sequence: target.sequence + 1)
            cursor = next
            // After the first key is read, a new key pushes it out: the table turns under the copy.
            if !added, piece.contains(where: { if case .rememberIdempotencyKey = $0 { true } else { false } }) {
                _ = try await actor.create(body(title: "c"), caller: caller(), idempotencyKey: "c")
                added = true
            }
        }
        let turned = await actor.state.idempotency.entriesInOrder.map(\.key)
        #expect(added && target.idempotency.entriesInOrder.map(\.key) != turned, "the first copy alone has the keys wrong")
        cursor = .changesStart
        while let current = cursor {
            let (piece, next) = try #require(await actor.exportChanges(from: current, maximumItems: 1, token: 3))
            target.apply(current == .changesStart ? [.continueTenant] + piece : piece, sequence: target.sequence + 1)
            cursor = next
        }
        let source = await actor.state
        #expect(target.idempotency.entriesInOrder.map(\.key) == source.idempotency.entriesInOrder.map(\.key))
        #expect(TenantExportTests.observed(target) == TenantExportTests.observed(source))
        // The forget is taken back with the write it starts.
        var undone = target
        let undo = undone.apply([.forgetIdempotencyKeys], sequence: undone.sequence + 1)
        #expect(undone.idempotency.count == 0)
        undone.undo(undo)
        #expect(undone.idempotency.entriesInOrder.map(\.key) == target.idempotency.entriesInOrder.map(\.key))
    }

    @Test func tooManyRecordsTouchedLoseTrack() {
        var changes = TenantChangeSet(token: 1, layoutRevision: 0, outcomes: OutcomeTables())
        var other = Harness()
        let record = try! other.create(body())
        let ids = (0...TenantChangeSet.maximumRecords).map { RecordID(high: record.id.high, low: UInt64($0)) }
        changes.note([.purgeRecords(ids)])
        #expect(changes.lostTrack && changes.records.isEmpty)
    }
}
