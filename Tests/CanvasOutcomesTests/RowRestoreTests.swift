import LearnStoreModel
import Testing
@testable import CanvasOutcomes

/// The row-level API the engine logs and undoes ingests with: verdicts without applying, the stored form
/// of an entity, exact restores, and entity JSON read back.
@Suite struct RowRestoreTests {
    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func verdictPredictsApplyAndRestoreTakesEachStepBack(seed: UInt64) {
        var store = OutcomeStore()
        var history: [(observed: ConvergenceTests.Observed, kind: OutcomeEntityKind, key: String, prior: OutcomeRecord?)] = []
        for entity in ConvergenceTests.versions(seed: seed) {
            let stored = OutcomeRecord(storing: entity)
            let predicted = store.verdict(for: stored)
            #expect(store.verdict(for: .entity(entity)) == predicted)
            let before = ConvergenceTests.Observed(store)
            let prior = store.record(kind: entity.kind, key: entity.key)
            #expect(store.apply(entity) == predicted)
            if predicted == .applied {
                #expect(store.record(kind: entity.kind, key: entity.key) == stored)
                history.append((before, entity.kind, entity.key, prior))
            } else {
                #expect(ConvergenceTests.Observed(store) == before)
            }
        }
        #expect(!history.isEmpty)
        for step in history.reversed() {
            store.restore(step.prior, kind: step.kind, key: step.key)
            #expect(ConvergenceTests.Observed(store) == step.observed)
        }
        #expect(store.tables == OutcomeTables())
    }

    /// A partition move reads the rows in pieces by offset: every offset and piece size gives the
    /// slice of the rows in ``OutcomeTables/forEachRecord(_:)``'s order, across the tables' bounds.
    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func rowsReadFromAnOffsetAreThatSliceOfAllRows(seed: UInt64) {
        var store = OutcomeStore()
        for entity in ConvergenceTests.versions(seed: seed) { _ = store.apply(entity) }
        for n in 0..<40 { _ = store.apply(.result(makeResult(id: "r\(n)", user: "student-\(n % 7)", score: Double(n)))) }
        var all: [OutcomeRecord] = []
        store.tables.forEachRecord { all.append($0) }
        #expect(all.count == store.tables.recordCount && all.count > 40)
        for limit in [1, 3, 17, all.count + 5] {
            for offset in 0...(all.count + 1) {
                let expected = Array(all[min(offset, all.count)..<min(all.count, offset + limit)])
                #expect(store.tables.records(from: offset, limit: limit) == expected, "offset \(offset), limit \(limit)")
            }
        }
    }

    @Test func aDeletedEntityIsStoredAsItsTombstone() {
        let deleted = OutcomeEntity.outcome(makeOutcome(id: "80", state: "deleted", updatedAt: ts("2020-05-01T00:00:00Z")))
        guard case .tombstone(let tombstone) = OutcomeRecord(storing: deleted) else {
            Issue.record("not a tombstone")
            return
        }
        #expect(tombstone.version == deleted.version && tombstone.kind == .outcome && tombstone.key == "80")
        var byEntity = OutcomeStore()
        byEntity.ingest(deleted)
        var byRecord = OutcomeStore()
        #expect(byRecord.apply(OutcomeRecord(storing: deleted)) == .applied)
        #expect(byEntity.tables == byRecord.tables)
        #expect(byRecord.verdict(for: .entity(deleted)) == .duplicate)
        #expect(byRecord.entity(.outcome, key: "80") == nil)
    }

    @Test func restoreReplacesWhateverIsThere() {
        var store = OutcomeStore()
        let live = makeOutcome(id: "80", updatedAt: ts("2020-01-01T00:00:00Z"))
        store.ingest(.outcome(live))
        let tombstone = OutcomeRecord(storing: .outcome(makeOutcome(id: "80", state: "deleted", updatedAt: ts("2020-02-01T00:00:00Z"))))
        store.restore(tombstone, kind: .outcome, key: "80")
        #expect(store.outcome(id: "80") == nil && store.outcomes(in: course).isEmpty)
        #expect(store.record(kind: .outcome, key: "80") == tombstone)
        store.restore(.entity(.outcome(live)), kind: .outcome, key: "80")
        #expect(store.outcomes(in: course) == [live])
        #expect(store.tombstone(kind: .outcome, key: "80") == nil)
        store.restore(nil, kind: .outcome, key: "80")
        #expect(store.tables == OutcomeTables() && store.outcomes(in: course).isEmpty)
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func entityJSONReadsBackExactly(seed: UInt64) throws {
        var entities = ConvergenceTests.versions(seed: seed)
        for payload in [SeedPayloads.learningOutcomeCreated, SeedPayloads.learningOutcomeUpdated] {
            entities.append(parseEvent(payload).entity)
        }
        for entity in entities {
            #expect(try OutcomeEntity.parse(kind: entity.kind, json: entity.json) == entity)
            let text = try JSONValue.parse(entity.json.serialized)
            #expect(try OutcomeEntity.parse(kind: entity.kind, json: text) == entity)
        }
        #expect(throws: OutcomeEventError.self) { try OutcomeEntity.parse(kind: .outcome, json: .array([])) }
        #expect(throws: OutcomeEventError.self) {
            try OutcomeEntity.parse(kind: .outcome, json: .object([("metadata", .object([]))]))
        }
    }

    @Test func treeQueriesAnswerAsTheDirectQueries() {
        let store = OutcomeTreeQueryTests.tree()
        #expect(store.entities(.contextOutcomes(course)) == store.outcomes(in: course).map(OutcomeEntity.outcome))
        #expect(store.entities(.contextGroups(course)) == store.groups(in: course).map(OutcomeEntity.group))
        #expect(store.entities(.contextLinks(course)) == store.links(in: course).map(OutcomeEntity.link))
        #expect(store.entities(.groupLinks(groupID: "2")).map(\.key) == ["500", "501"])
        #expect(store.entities(.outcomeLinks(outcomeID: "80")).map(\.key) == ["500", "502"])
        #expect(store.entities(.groupChildren(groupID: "2")).map { "\($0.kind.rawValue):\($0.key)" } == ["2:4", "2:10", "3:500", "3:501"])
        #expect(store.entities(.groupPath(groupID: "4")).map(\.key) == ["4", "2", "1"])
        #expect(store.entityCount == 13 && store.resultCount == 0)
        #expect(store.entity(.group, key: "4") != nil && store.entity(.link, key: "4") == nil)
    }

    @Test func aggregatesCarryResultCountsLatestTimeMasteryAndRating() throws {
        var store = OutcomeStore()
        store.ingest(.proficiency(defaultProficiency()))
        store.ingest(.outcome(makeOutcome(id: "80", method: "highest")))
        let day = 86_400_000 as Int64
        for (index, (user, score)) in [("a", 4.0), ("a", 2.0), ("b", 2.0), ("c", 3.0)].enumerated() {
            store.ingest(.result(makeResult(id: "\(index + 1)", user: user, score: score,
                                           assessedAt: Timestamp(milliseconds: 1_600_000_000_000 + Int64(index) * day))))
        }
        let aggregate = try #require(store.contextAggregates(context: course).first)
        #expect(aggregate.studentCount == 3 && aggregate.resultCount == 4)
        #expect(aggregate.mean == 3 && aggregate.median == 3)
        #expect(aggregate.latestAssessedAt == Timestamp(milliseconds: 1_600_000_000_000 + 3 * day))
        #expect(aggregate.mastered && aggregate.rating?.description == "Mastery")
        #expect(aggregate.ratingCounts == [1, 1, 1, 0, 0])
        #expect(aggregate.json["result_count"] == .number("4"))
    }
}
