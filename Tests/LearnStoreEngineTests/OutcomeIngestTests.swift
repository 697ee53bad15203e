import CanvasOutcomes
import LearnStoreModel
import LearnStoreTestSupport
import LearnStoreWorkload
import Synchronization
import Testing
@testable import LearnStoreEngine

/// A log that keeps every entry, so a test can replay exactly what the engine logged.
final class RecordingLog: MutationLog {
    private let entries = Mutex<[LogEntry]>([])
    private let failing = Mutex(false)
    private let counter = Mutex<UInt64>(0)

    var logged: [LogEntry] { entries.withLock { $0 } }
    func failNextAppends(_ fail: Bool) { failing.withLock { $0 = fail } }

    func append(_ entry: LogEntry) throws(LearnStoreError) -> UInt64 {
        if failing.withLock({ $0 }) { throw LearnStoreError(.storageUnavailable, "disk full") }
        entries.withLock { $0.append(entry) }
        return counter.withLock { $0 += 1; return $0 }
    }

    /// Nothing is committed until a test says so (undo information is kept meanwhile).
    var committedLSN: UInt64 { 0 }
}

func lines(_ events: [OutcomeEvent]) -> [[UInt8]] { events.map { Array($0.json.serialized.utf8) } }

/// Everything a client can observe of a tenant's outcome data, for comparing two states.
struct ObservedOutcomes: Equatable {
    var tables: OutcomeTables
    var sequence: UInt64
    var trees: [[OutcomeEntity]]
    var results: [[String]]
    var rollups: [[StudentOutcomeRollup]]
    var aggregates: [ContextOutcomeAggregate]
    var proficiency: OutcomeProficiency?

    init(_ state: TenantState, _ course: CanvasCourseDataset) throws {
        let who = caller()
        tables = state.outcomes.tables
        sequence = state.sequence
        trees = try [OutcomeTreeQuery.contextOutcomes(course.context), .contextGroups(course.context), .contextLinks(course.context),
                     .groupChildren(groupID: "100"), .groupPath(groupID: "104"), .outcomeLinks(outcomeID: "1000")]
            .map { query throws(LearnStoreError) in try state.outcomeTree(query, caller: who) }
        results = try [ResultScope.context(course.context), .student(course.students[0]), .outcome("1001")].map { scope throws(LearnStoreError) in
            var keys: [String] = []
            var cursor: ResultCursor?
            repeat {
                let page = try state.outcomeResults(scope, after: cursor, limit: 7, caller: who)
                keys += page.results.map(\.key)
                cursor = page.next
            } while cursor != nil
            return keys
        }
        rollups = try course.students.map { student throws(LearnStoreError) in
            try state.studentRollups(userUUID: student, context: course.context, caller: who)
        }
        aggregates = try state.contextAggregates(context: course.context, caller: who)
        proficiency = try state.proficiency(inForce: course.context, caller: who)
    }
}

@Suite struct OutcomeIngestTests {
    static let course = CanvasCourseDataset(students: 4, outcomes: 5, resultsPerOutcome: 4, seed: 3)

    @Test func aBatchIsOneWriteWithAResultPerEvent() throws {
        var state = TenantState(tenantID: tenantA)
        let events = Self.course.events
        let write = try state.ingest(lines(events), caller: caller())
        #expect(write.result.count == events.count)
        #expect(write.sequence == 1 && state.sequence == 1)
        #expect(write.mutations.count == 1)
        guard case .outcomes(let records)? = write.mutations.first else { Issue.record("no outcome mutation"); return }
        let applied = write.result.filter { if case .applied = $0 { true } else { false } }
        #expect(records.count == applied.count)
        // Versions are generated in order, so every event of a fresh course applies.
        #expect(applied.count == events.count)
        #expect(state.outcomes.outcomes(in: Self.course.context).count == 5)
        let live = Self.course.results.filter { $0.workflowState != "deleted" }
        #expect(state.stats.outcomeResults == live.count)
        #expect(state.stats.outcomeEntities == 1 + 5 + 5 + 5)
        for (event, outcome) in zip(events, write.result) {
            #expect(outcome == .applied(event.entity.kind, key: event.entity.key))
        }
    }

    @Test func replayedEventsAreDuplicatesOrStaleAndWriteNothing() throws {
        var state = TenantState(tenantID: tenantA)
        let events = Self.course.events
        _ = try state.ingest(lines(events), caller: caller())
        let before = try ObservedOutcomes(state, Self.course)
        let again = try state.ingest(lines(events.reversed()), caller: caller())
        #expect(again.mutations.isEmpty && again.undo == nil && again.sequence == 1)
        #expect(try ObservedOutcomes(state, Self.course) == before)
        var duplicates = 0
        var stale = 0
        for outcome in again.result {
            switch outcome {
            case .duplicate: duplicates += 1
            case .stale: stale += 1
            default: Issue.record("unexpected \(outcome)")
            }
        }
        // Each key's newest version is a duplicate; every superseded one (outcomes' _created, results
        // later re-assessed or deleted) is stale.
        let keys = 1 + Self.course.groups.count + Self.course.outcomes.count + Self.course.links.count + Self.course.results.count
        #expect(duplicates == keys)
        #expect(stale == events.count - keys && stale > Self.course.outcomes.count)
        #expect(duplicates + stale == events.count)
    }

    @Test func versionsOfOneKeyInOneBatchAreJudgedInOrder() throws {
        var state = TenantState(tenantID: tenantA)
        let created = OutcomeEvent(name: .learningOutcomeCreated, entity: .outcome(LearningOutcome(
            id: "7", contextType: "Course", contextID: "1", calculationMethod: "highest", workflowState: "active",
            createdAt: Timestamp(milliseconds: 1000))))
        var newer = created
        newer.name = .learningOutcomeUpdated
        guard case .outcome(var outcome) = newer.entity else { return }
        outcome.calculationMethod = "latest"
        outcome.updatedAt = Timestamp(milliseconds: 2000)
        newer.entity = .outcome(outcome)
        let write = try state.ingest(lines([created, newer, created, newer]), caller: caller())
        #expect(write.result == [.applied(.outcome, key: "7"), .applied(.outcome, key: "7"), .stale(.outcome, key: "7"),
                                 .duplicate(.outcome, key: "7")])
        #expect(state.outcomes.outcome(id: "7")?.calculationMethod == "latest")
        guard case .outcomes(let records)? = write.mutations.first else { return }
        #expect(records.count == 2)
        // Replaying the logged rows in either order gives the same tables.
        var forward = TenantState(tenantID: tenantA)
        forward.apply(write.mutations, sequence: 1)
        var backward = TenantState(tenantID: tenantA)
        backward.apply([.outcomes(records.reversed())], sequence: 1)
        #expect(forward.outcomes.tables == state.outcomes.tables && backward.outcomes.tables == state.outcomes.tables)
    }

    @Test func malformedEventsAreRejectedByFieldAndTheRestApplies() throws {
        var state = TenantState(tenantID: tenantA)
        let good = Array(Self.course.events.prefix(3))
        let missingID = #"{"metadata":{"event_name":"learning_outcome_created"},"body":{"title":"x"}}"#
        let wrongType = #"{"metadata":{"event_name":"learning_outcome_result_created"},"body":{"learning_outcome_id":"1","user_uuid":"u","score":"high"}}"#
        let unknown = #"{"metadata":{"event_name":"course_created"},"body":{}}"#
        let notJSON = #"{"metadata":"#
        var batch = lines(good)
        batch.insert(Array(missingID.utf8), at: 1)
        batch.append(Array(wrongType.utf8))
        batch.append(Array(unknown.utf8))
        batch.append(Array(notJSON.utf8))
        let write = try state.ingest(batch, caller: caller())
        #expect(write.result.count == 7 && write.sequence == 1)
        func rejection(_ index: Int) -> EventRejection? {
            if case .rejected(let rejection) = write.result[index] { return rejection }
            return nil
        }
        #expect(rejection(1)?.reason == .missingField && rejection(1)?.error.field == "body.learning_outcome_id")
        #expect(rejection(1)?.error.code == .validation)
        #expect(rejection(4)?.reason == .wrongType && rejection(4)?.error.field == "body.score")
        #expect(rejection(5)?.reason == .unknownEvent && rejection(5)?.error.field == "metadata.event_name")
        #expect(rejection(6)?.reason == .badJSON && rejection(6)?.error.field == nil)
        for index in [0, 2, 3] { #expect(rejection(index) == nil) }
        #expect(state.outcomes.tables.recordCount == 3)

        // A batch of nothing but bad events is no write at all.
        let none = try state.ingest([Array(notJSON.utf8)], caller: caller())
        #expect(none.mutations.isEmpty && none.sequence == 1 && state.sequence == 1)
    }

    @Test func aRollupOverrideNamingAnUnknownMethodIsValidationNotAnEmptyAnswer() throws {
        let state = TenantState(tenantID: tenantA)
        let typo = RollupOptions(calculationOverride: .init(method: CalculationMethod("latset")))
        let context = Self.course.context
        func expectRefused(_ request: () throws -> Void) {
            do {
                try request()
                Issue.record("an unknown method was accepted")
            } catch let error as LearnStoreError {
                #expect(error.code == .validation && error.field == "calculation_method", "\(error)")
            } catch {
                Issue.record("\(error)")
            }
        }
        expectRefused { _ = try state.studentRollup(userUUID: "u", outcomeID: "1", context: context, options: typo, caller: caller()) }
        expectRefused { _ = try state.studentRollups(userUUID: "u", context: context, options: typo, caller: caller()) }
        expectRefused { _ = try state.contextAggregates(context: context, options: typo, caller: caller()) }
        let known = RollupOptions(calculationOverride: .init(method: .latest))
        #expect(try state.contextAggregates(context: context, options: known, caller: caller()).isEmpty)
    }

    @Test func scopesAndBatchLimits() throws {
        var state = TenantState(tenantID: tenantA, limits: EngineLimits(maximumBatch: 3))
        let readOnly = caller(scopes: [.outcomesRead, .recordsWrite])
        #expect(throws: LearnStoreError(.forbidden, "this operation needs the scope 'outcomes:write'")) {
            try state.ingest(lines(Array(Self.course.events.prefix(1))), caller: readOnly)
        }
        let writeOnly = caller(scopes: [.outcomesWrite])
        #expect(throws: LearnStoreError.self) { try state.outcomeTree(.contextOutcomes(Self.course.context), caller: writeOnly) }
        #expect(throws: LearnStoreError.self) { try state.contextAggregates(context: Self.course.context, caller: writeOnly) }
        #expect(throws: LearnStoreError.self) { try state.ingest([], caller: caller()) }
        #expect(throws: LearnStoreError.self) { try state.ingest(lines(Array(Self.course.events.prefix(4))), caller: caller()) }
        #expect(state.sequence == 0)
        #expect(throws: LearnStoreError.self) {
            try state.outcomeResults(.context(Self.course.context), after: nil, limit: 1001, caller: caller())
        }
        #expect(throws: LearnStoreError(.notFound, "no learning_outcome 1000")) { try state.outcomeEntity(.outcome, key: "1000", caller: caller()) }
    }

    /// Undo of each write, newest first, restores every earlier state exactly; replaying the logged
    /// entries (in order or not) rebuilds the final state exactly.
    @Test(arguments: [5, 6, 7] as [UInt64])
    func undoRestoresExactlyAndReplayRebuilds(seed: UInt64) async throws {
        let course = CanvasCourseDataset(students: 3, outcomes: 4, resultsPerOutcome: 5, seed: seed)
        let log = RecordingLog()
        let actor = TenantActor(state: TenantState(tenantID: tenantA, limits: EngineLimits(maximumBatch: 25)), log: log)
        var batches: [[[UInt8]]] = []
        var pending = course.eventLines(shuffleSeed: seed, duplicates: 40).map { Array($0.utf8) }
        while !pending.isEmpty {
            batches.append(Array(pending.prefix(25)))
            pending.removeFirst(min(25, pending.count))
        }
        var observed: [ObservedOutcomes] = [try ObservedOutcomes(await actor.state, course)]
        var lsns: [UInt64] = []
        for batch in batches {
            let write = try await actor.ingestOutcomes(batch, caller: caller())
            #expect(write.result.count == batch.count)
            observed.append(try ObservedOutcomes(await actor.state, course))
            lsns.append(write.lsn)
        }
        let final = observed.last!

        // Replay.
        var replayed = TenantState(tenantID: tenantA)
        for entry in log.logged { replayed.apply(entry.mutations, sequence: entry.sequence) }
        #expect(try ObservedOutcomes(replayed, course) == final)
        var shuffled = TenantState(tenantID: tenantA)
        var rng = SeededGenerator(seed: seed)
        for entry in log.logged.shuffled(using: &rng) { shuffled.apply(entry.mutations, sequence: entry.sequence) }
        #expect(shuffled.outcomes.tables == final.tables)
        #expect(OutcomeStore(tables: shuffled.outcomes.tables).contextAggregates(context: course.context) == final.aggregates)

        // Undo, newest write first, one at a time.
        var expected = observed.count - 1
        for lsn in lsns.reversed() where lsn > 0 {
            let undone = await actor.rollBack(lsn...lsn)
            #expect(undone == 1)
            while expected > 0, observed[expected - 1].sequence == observed[expected].sequence { expected -= 1 }
            expected -= 1
            #expect(try ObservedOutcomes(await actor.state, course) == observed[expected])
        }
        #expect(await actor.state.outcomes.tables == OutcomeTables())
    }

    @Test func aWriteTheLogRefusesIsTakenBack() async throws {
        let log = RecordingLog()
        let actor = TenantActor(state: TenantState(tenantID: tenantA), log: log)
        let first = Array(Self.course.events.prefix(20))
        _ = try await actor.ingestOutcomes(lines(first), caller: caller())
        let before = try ObservedOutcomes(await actor.state, Self.course)
        log.failNextAppends(true)
        await #expect(throws: LearnStoreError.self) {
            _ = try await actor.ingestOutcomes(lines(Array(Self.course.events.dropFirst(20))), caller: caller())
        }
        #expect(try ObservedOutcomes(await actor.state, Self.course) == before)
        #expect(log.logged.count == 1)
    }
}
