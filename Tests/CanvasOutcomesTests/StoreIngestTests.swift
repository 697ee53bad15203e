import LearnStoreModel
import LearnStoreTestSupport
import Testing
@testable import CanvasOutcomes

@Suite struct StoreIngestTests {
    @Test func createdThenDuplicateThenStale() {
        var store = OutcomeStore()
        let created = makeResult(id: "1", score: 2, createdAt: ts("2020-01-01T00:00:00Z"), eventTime: ts("2020-01-01T00:00:00.100Z"))
        var updated = created
        updated.score = 3
        updated.updatedAt = ts("2020-01-02T00:00:00Z")
        updated.metadata.eventTime = ts("2020-01-02T00:00:00.100Z")
        #expect(store.apply(.result(created)) == .applied)
        #expect(store.apply(.result(created)) == .duplicate)
        #expect(store.apply(.result(updated)) == .applied)
        #expect(store.apply(.result(updated)) == .duplicate)
        #expect(store.apply(.result(created)) == .stale, "a late _created never overwrites an update")
        #expect(store.result(key: "1")?.score == 3)
    }

    @Test func seedOutcomeCreatedThenUpdatedInEitherOrder() {
        let created = parseEvent(SeedPayloads.learningOutcomeCreated)
        let updated = parseEvent(SeedPayloads.learningOutcomeUpdated)
        var forward = OutcomeStore()
        #expect(forward.apply(created) == .applied)
        #expect(forward.apply(updated) == .applied)
        var backward = OutcomeStore()
        #expect(backward.apply(updated) == .applied)
        // The _created event has the later event_time, but no updated_at: the update's record time wins.
        #expect(backward.apply(created) == .stale)
        #expect(forward.tables == backward.tables)
        #expect(forward.outcome(id: "12345")?.rubricCriterion?.pointsPossible == 5)
    }

    @Test func tombstoneHoldsAgainstALateOlderCreated() {
        var store = OutcomeStore()
        let created = makeOutcome(id: "80")
        let deleted = makeOutcome(id: "80", state: "deleted", updatedAt: ts("2020-05-01T00:00:00Z"))
        #expect(store.apply(.outcome(deleted)) == .applied)
        #expect(store.outcome(id: "80") == nil)
        #expect(store.tombstone(kind: .outcome, key: "80")?.version == deleted.version)
        #expect(store.apply(.outcome(created)) == .stale)
        #expect(store.apply(.outcome(deleted)) == .duplicate)
        #expect(store.outcome(id: "80") == nil)
        #expect(store.outcomes(in: course).isEmpty)
        // The same id of another kind is unaffected.
        #expect(store.apply(.group(OutcomeGroup(id: "80", contextType: "Course", contextID: "565"))) == .applied)
        #expect(store.groups(in: course).map(\.id) == ["80"])
    }

    @Test func deletingRemovesFromEveryIndex() {
        var store = OutcomeStore()
        let outcome = makeOutcome(id: "80")
        store.ingest(.outcome(outcome))
        let result = makeResult(id: "1", score: 3, assessedAt: ts("2020-01-01T00:00:00Z"), createdAt: ts("2020-01-01T00:00:00Z"),
                                asset: AssetRef(type: "Assignment", id: "56"))
        #expect(store.apply(.result(result)) == .applied)
        #expect(store.studentRollups(userUUID: "student-a", context: course).count == 1)
        var deleted = result
        deleted.workflowState = "deleted"
        deleted.updatedAt = ts("2020-01-03T00:00:00Z")
        #expect(store.apply(.result(deleted)) == .applied)
        #expect(store.result(key: "1") == nil)
        for scope in [ResultScope.student("student-a"), .outcome("80"), .context(course),
                      .asset(AssetRef(type: "Assignment", id: "56")),
                      .assessedBetween(from: ts("2019-01-01T00:00:00Z"), to: ts("2021-01-01T00:00:00Z"))] {
            #expect(store.results(scope).results.isEmpty, "\(scope)")
        }
        #expect(store.studentRollups(userUUID: "student-a", context: course).isEmpty)
        #expect(store.studentsWithResults(in: course).isEmpty)
    }

    /// LearningOutcomeResult#check_for_existing_results saves a re-assessment's new row already deleted.
    @Test func aResultCreatedAlreadyDeletedNeverCounts() {
        var store = OutcomeStore()
        store.ingest(.outcome(makeOutcome(id: "80", method: "highest")))
        store.ingest(.result(makeResult(id: "1", score: 2, createdAt: ts("2020-01-01T00:00:00Z"))))
        let duplicateRow = makeResult(id: "2", score: 5, createdAt: ts("2020-01-02T00:00:00Z"), state: "deleted")
        #expect(store.apply(.result(duplicateRow)) == .applied)
        #expect(store.result(key: "2") == nil)
        #expect(store.tombstone(kind: .result, key: "2") != nil)
        #expect(store.studentRollup(userUUID: "student-a", outcomeID: "80", context: course)?.score == 2)
        #expect(store.results(.student("student-a")).results.map(\.key) == ["1"])
    }

    @Test func aNewerActiveVersionRestoresADeletedEntity() {
        var store = OutcomeStore()
        store.ingest(.link(OutcomeLink(id: "5", learningOutcomeGroupID: "1", workflowState: "deleted",
                                      updatedAt: ts("2020-01-01T00:00:00Z"))))
        #expect(store.links(inGroup: "1").isEmpty)
        let restored = OutcomeLink(id: "5", learningOutcomeGroupID: "1", workflowState: "active",
                                   updatedAt: ts("2020-01-02T00:00:00Z"))
        #expect(store.apply(.link(restored)) == .applied)
        #expect(store.links(inGroup: "1") == [restored])
        #expect(store.tombstone(kind: .link, key: "5") == nil)
    }

    /// -06:00 is six hours behind Z: as text "17:24:46-06:00" sorts before "23:00:00Z", as an instant after.
    @Test func offsetsCompareAsInstants() throws {
        let updated = parseEvent(SeedPayloads.outcomeProficiencyUpdated)
        guard case .proficiency(var earlier) = updated.entity else { Issue.record("not a proficiency"); return }
        earlier.updatedAt = ts("2020-08-18T23:00:00Z")
        earlier.ratings.removeLast()
        var a = OutcomeStore()
        #expect(a.apply(.proficiency(earlier)) == .applied)
        #expect(a.apply(updated) == .applied)
        var b = OutcomeStore()
        #expect(b.apply(updated) == .applied)
        #expect(b.apply(.proficiency(earlier)) == .stale)
        #expect(a.tables == b.tables)
        #expect(a.proficiency(id: "1")?.ratings.count == 5)
    }

    @Test func equalRecordTimesAreOrderedByEventTimeThenContent() {
        let time = ts("2020-01-01T00:00:00Z")
        let first = makeResult(id: "1", score: 1, updatedAt: time, eventTime: ts("2020-01-01T00:00:00.100Z"))
        let second = makeResult(id: "1", score: 2, updatedAt: time, eventTime: ts("2020-01-01T00:00:00.200Z"))
        var store = OutcomeStore()
        store.ingest(.result(second))
        #expect(store.apply(.result(first)) == .stale)
        #expect(store.result(key: "1")?.score == 2)

        // Same stamps, different content: the larger digest wins, whatever the order.
        let x = makeResult(id: "9", score: 1, updatedAt: time, eventTime: time)
        let y = makeResult(id: "9", score: 4, updatedAt: time, eventTime: time)
        let winner = x.digest > y.digest ? x : y
        var xy = OutcomeStore()
        xy.ingest(.result(x))
        xy.ingest(.result(y))
        var yx = OutcomeStore()
        yx.ingest(.result(y))
        yx.ingest(.result(x))
        #expect(xy.result(key: "9") == winner)
        #expect(yx.result(key: "9") == winner)
    }

    @Test func recordsReplayIntoTheSameTables() throws {
        var store = OutcomeStore()
        for event in SeedPayloads.all.map({ parseEvent($0.json) }) { store.ingest(event) }
        store.ingest(.outcome(makeOutcome(id: "99", state: "deleted", updatedAt: ts("2021-01-01T00:00:00Z"))))
        var bytes: [[UInt8]] = []
        store.tables.forEachRecord { bytes.append($0.encoded) }
        #expect(bytes.count == store.tables.recordCount)
        var rng = SeededGenerator(seed: 7)
        var replayed = OutcomeStore()
        for record in bytes.shuffled(using: &rng) {
            #expect(replayed.apply(try OutcomeRecord.decode(record)) == .applied)
        }
        #expect(replayed.tables == store.tables)
        // Replaying again (a WAL replayed over a snapshot) changes nothing.
        for record in bytes { #expect(replayed.apply(try OutcomeRecord.decode(record)) == .duplicate) }
        #expect(OutcomeStore(tables: store.tables).tables == store.tables)
    }

    @Test func aTombstoneRecordBuriesAnOlderLiveEntityAndLosesToANewerOne() {
        var store = OutcomeStore()
        let live = makeResult(id: "1", score: 3, updatedAt: ts("2020-01-02T00:00:00Z"))
        store.ingest(.result(live))
        var older = live
        older.workflowState = "deleted"
        older.updatedAt = ts("2020-01-01T00:00:00Z")
        #expect(store.apply(.tombstone(OutcomeTombstone(deleted: older))) == .stale)
        #expect(store.result(key: "1") == live)
        var newer = older
        newer.updatedAt = ts("2020-01-03T00:00:00Z")
        #expect(store.apply(.tombstone(OutcomeTombstone(deleted: newer))) == .applied)
        #expect(store.result(key: "1") == nil)
        #expect(store.results(.student("student-a")).results.isEmpty)
        #expect(store.apply(.result(live)) == .stale)
    }
}

/// Any permutation of a set of events, with duplicates, converges to one state.
@Suite struct ConvergenceTests {
    static let instants: [Timestamp?] = [nil, ts("2020-01-01T00:00:00Z"), ts("2020-01-01T00:00:00Z"),
                                         ts("2020-01-01T06:00:00+06:00"), ts("2020-01-02T00:00:00Z")]

    static func randomStamp(_ rng: inout SeededGenerator) -> (Timestamp?, Timestamp?) {
        (instants.randomElement(using: &rng)!, instants.randomElement(using: &rng)!)
    }

    static func state(_ rng: inout SeededGenerator) -> String {
        ["active", "active", "active", "deleted", "archived"].randomElement(using: &rng)!
    }

    /// Several versions of a few entities of every kind, with deliberate timestamp ties.
    static func versions(seed: UInt64) -> [OutcomeEntity] {
        var rng = SeededGenerator(seed: seed)
        var out: [OutcomeEntity] = []
        for _ in 0..<40 {
            let (record, event) = randomStamp(&rng)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0:
                out.append(.outcome(LearningOutcome(
                    id: ["80", "81"].randomElement(using: &rng)!, contextType: "Course", contextID: "565",
                    calculationMethod: ["highest", "latest", "n_mastery", nil].randomElement(using: &rng)!,
                    calculationInt: [nil, 2].randomElement(using: &rng)!, workflowState: state(&rng),
                    updatedAt: record, metadata: EventMetadata(eventTime: event))))
            case 1:
                out.append(.group(OutcomeGroup(
                    id: ["1", "2", "3"].randomElement(using: &rng)!, contextType: "Course", contextID: "565",
                    parentOutcomeGroupID: [nil, "1", "2"].randomElement(using: &rng)!, workflowState: state(&rng),
                    updatedAt: record, metadata: EventMetadata(eventTime: event))))
            case 2:
                out.append(.link(OutcomeLink(
                    id: ["10", "11"].randomElement(using: &rng)!, learningOutcomeID: ["80", "81"].randomElement(using: &rng)!,
                    learningOutcomeGroupID: ["1", "2"].randomElement(using: &rng)!, contextType: "Course", contextID: "565",
                    workflowState: state(&rng), updatedAt: record, metadata: EventMetadata(eventTime: event))))
            case 3:
                var proficiency = defaultProficiency(id: ["1", "2"].randomElement(using: &rng)!, updatedAt: record,
                                                     state: state(&rng))
                proficiency.metadata.eventTime = event
                if Bool.random(using: &rng) { proficiency.ratings.removeFirst() }
                out.append(.proficiency(proficiency))
            default:
                out.append(.result(makeResult(
                    id: ["100", "101", "102", "9007199254740993", nil].randomElement(using: &rng)!,
                    user: ["a", "b"].randomElement(using: &rng)!, outcome: ["80", "81"].randomElement(using: &rng)!,
                    score: [nil, 1, 2.5, 4].randomElement(using: &rng)!, percent: [nil, 0.5].randomElement(using: &rng)!,
                    assessedAt: instants.randomElement(using: &rng)!, updatedAt: record,
                    createdAt: instants.randomElement(using: &rng)!, eventTime: event, state: state(&rng),
                    asset: AssetRef(type: "Assignment", id: "56"))))
            }
        }
        return out
    }

    /// Everything observable through queries, for comparing two stores.
    struct Observed: Equatable {
        var tables: OutcomeTables
        var outcomes: [LearningOutcome]
        var groups: [OutcomeGroup]
        var children: [[OutcomeGroup]]
        var paths: [[String]]
        var linksByGroup: [[OutcomeLink]]
        var linksByOutcome: [[OutcomeLink]]
        var proficiency: OutcomeProficiency?
        var results: [[String]]
        var rollups: [StudentOutcomeRollup]
        var aggregates: [ContextOutcomeAggregate]

        init(_ store: OutcomeStore) {
            tables = store.tables
            outcomes = store.outcomes(in: course)
            groups = store.groups(in: course)
            children = ["1", "2", "3"].map { store.childGroups(of: $0) }
            paths = ["1", "2", "3"].map { store.groupPath(toRootFrom: $0).map(\.id) }
            linksByGroup = ["1", "2"].map { store.links(inGroup: $0) }
            linksByOutcome = ["80", "81"].map { store.links(forOutcome: $0) }
            proficiency = store.proficiency(inForce: course)
            results = [ResultScope.student("a"), .student("b"), .outcome("80"), .context(course),
                       .asset(AssetRef(type: "Assignment", id: "56")),
                       .assessedBetween(from: ts("2020-01-01T00:00:00Z"), to: ts("2020-01-02T00:00:00Z"))]
                .map { scope in store.results(scope, limit: 1000).results.map(\.key) }
            rollups = store.contextRollups(context: course)
            aggregates = store.contextAggregates(context: course)
        }
    }

    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func permutationsWithDuplicatesConverge(seed: UInt64) {
        let versions = Self.versions(seed: seed)
        var rng = SeededGenerator(seed: seed &* 1000)
        var reference = OutcomeStore()
        for entity in versions { reference.ingest(entity) }
        let expected = Observed(reference)

        for _ in 0..<60 {
            var events = versions
            for _ in 0..<10 { events.append(versions.randomElement(using: &rng)!) }
            events.shuffle(using: &rng)
            var store = OutcomeStore()
            for event in events { store.ingest(event) }
            #expect(Observed(store) == expected)
            // The incrementally maintained indexes answer exactly as freshly rebuilt ones.
            #expect(Observed(OutcomeStore(tables: store.tables)) == expected)
        }
    }

    /// The converged state is, per key, the greatest version seen: live if active, a tombstone if deleted.
    @Test(arguments: [11, 12, 13] as [UInt64])
    func theStoredVersionIsTheMaximum(seed: UInt64) {
        let versions = Self.versions(seed: seed)
        var store = OutcomeStore()
        for entity in versions { store.ingest(entity) }
        var newest: [TombstoneKey: OutcomeEntity] = [:]
        for entity in versions {
            let key = TombstoneKey(kind: entity.kind, key: entity.key)
            if let current = newest[key], current.version >= entity.version { continue }
            newest[key] = entity
        }
        for (key, entity) in newest {
            let tombstone = store.tombstone(kind: key.kind, key: key.key)
            if entity.isDeleted {
                #expect(tombstone?.version == entity.version)
            } else {
                #expect(tombstone == nil)
                switch entity {
                case .outcome(let e): #expect(store.outcome(id: e.id) == e)
                case .group(let e): #expect(store.group(id: e.id) == e)
                case .link(let e): #expect(store.link(id: e.id) == e)
                case .result(let e): #expect(store.result(key: e.key) == e)
                case .proficiency(let e): #expect(store.proficiency(id: e.id) == e)
                }
            }
        }
        #expect(store.tables.recordCount == newest.count)
    }
}
