import Testing
import LearnStoreModel
import LearnStoreTestSupport
@testable import LearnStoreEngine

@Suite struct ListFilterTests {
    /// 60 records over 6 persons with varied fields; checks each filter against a brute-force answer.
    @Test func everyFilterMatchesABruteForceScan() throws {
        var h = Harness()
        var rng = SeededGenerator(seed: 11)
        let providers = ["AWS", "Coursera", "edX"]
        var all: [LearningRecord] = []
        for i in 0..<60 {
            let completed = Timestamp(milliseconds: 1_700_000_000_000 + Int64(rng.next() % 1_000_000))
            let b = body(
                person: person(UInt64(i % 6)), provider: providers[Int(rng.next() % 3)],
                score: Double(rng.next() % 101), passed: [true, false, nil][Int(rng.next() % 3)],
                cert: "CERT-\(i % 7)", cohort: person(100 + rng.next() % 3), assessment: person(200 + UInt64(i % 4)),
                completed: completed, expires: rng.next() % 2 == 0 ? Timestamp(milliseconds: completed.milliseconds + 500_000) : nil)
            all.append(try h.create(b))
        }
        for id in all.prefix(10).map(\.id) where Int(id.low % 2) == 0 { _ = try h.state.delete(id, caller: h.who, now: h.tick()) }
        all = all.map { try! h.state.get($0.id, caller: h.who) }
        let pivot = Timestamp(milliseconds: 1_700_000_500_000)
        let queries: [(ListQuery, (LearningRecord) -> Bool)] = [
            (ListQuery(personID: person(2)), { $0.personID == person(2) }),
            (ListQuery(certificationRef: "CERT-3"), { $0.certificationRef == "CERT-3" }),
            (ListQuery(linkedCohortID: person(101)), { $0.linkedCohortID == person(101) }),
            (ListQuery(linkedAssessmentID: person(201)), { $0.linkedAssessmentID == person(201) }),
            (ListQuery(provider: "edX"), { $0.provider == "edX" }),
            (ListQuery(passed: false), { $0.passed == false }),
            (ListQuery(completedAt: TimeRange(from: pivot)), { $0.completedAt! >= pivot }),
            (ListQuery(completedAt: TimeRange(to: pivot)), { $0.completedAt! < pivot }),
            (ListQuery(expiresAt: TimeRange(to: Timestamp(milliseconds: 1_700_001_000_000))), { ($0.expiresAt.map { $0.milliseconds < 1_700_001_000_000 }) ?? false }),
            (ListQuery(updatedSince: all[30].updatedAt), { $0.updatedAt >= all[30].updatedAt }),
            (ListQuery(personID: person(1), provider: "AWS", passed: true), { $0.personID == person(1) && $0.provider == "AWS" && $0.passed == true }),
            (ListQuery(provider: "AWS", completedAt: TimeRange(from: pivot)), { $0.provider == "AWS" && $0.completedAt! >= pivot }),
            (ListQuery(), { _ in true }),
            (ListQuery(personID: person(999)), { _ in false }),
            (ListQuery(provider: "never"), { _ in false }),
        ]
        for (query, predicate) in queries {
            for includeDeleted in [false, true] {
                for order in [SortOrder.ascending, .descending] {
                    var q = query
                    q.includeDeleted = includeDeleted
                    q.order = order
                    q.limit = 7
                    var expected = all.filter { predicate($0) && (includeDeleted || !$0.isDeleted) }.map(\.id)
                    if order == .descending { expected.reverse() }
                    #expect(try h.allPages(q) == expected, "query \(q)")
                }
            }
        }
    }

    @Test func defaultOrderIsNewestFirstAndLimitIsChecked() throws {
        var h = Harness()
        let ids = try (0..<3).map { _ in try h.create().id }
        #expect(try h.ids(ListQuery()) == ids.reversed())
        #expect(try h.ids(ListQuery(order: .ascending)) == ids)
        for limit in [0, 1001] {
            #expect(throws: LearnStoreError.self) { try h.ids(ListQuery(limit: limit)) }
        }
    }

    @Test func aCursorCannotBeReusedWithOtherFilters() throws {
        var h = Harness()
        for _ in 0..<3 { try h.create() }
        let page = try h.state.listRecords(ListQuery(limit: 1), caller: h.who)
        let cursor = try #require(page.next)
        #expect(throws: LearnStoreError.self) { try h.ids(ListQuery(provider: "AWS", limit: 1, cursor: cursor)) }
        #expect(throws: LearnStoreError.self) { try h.ids(ListQuery(order: .ascending, limit: 1, cursor: cursor)) }
        #expect(try ListCursor(text: cursor.text) == cursor)
        #expect(throws: LearnStoreError.self) { try ListCursor(text: "not-a-cursor") }
    }
}

/// Random interleavings of inserts, patches, deletes and page reads: every record that matches the
/// query during the whole paging is seen exactly once, and nothing is seen twice.
@Suite struct CursorPagingPropertyTests {
    @Test(arguments: 0..<40)
    func pagingUnderConcurrentWrites(seed: Int) throws {
        var rng = SeededGenerator(seed: UInt64(seed) &* 7919 &+ 1)
        var h = Harness()
        var existing: [RecordID] = []
        for _ in 0..<40 { existing.append(try h.create(body(person: person(rng.next() % 3))).id) }
        let order: SortOrder = seed % 2 == 0 ? .ascending : .descending
        var query = ListQuery(personID: seed % 3 == 0 ? person(1) : nil, order: order, limit: 1 + Int(rng.next() % 6))
        let matching: (LearningRecord) -> Bool = { r in !r.isDeleted && (query.personID == nil || r.personID == query.personID) }
        // Records matching at the start; those still matching at the end "existed throughout" unless touched.
        let initial = Set(try existing.filter { matching(try h.state.get($0, caller: h.who)) })
        var touched = Set<RecordID>()
        var seen: [RecordID] = []
        while true {
            for _ in 0..<Int(rng.next() % 4) {
                switch rng.next() % 4 {
                case 0: existing.append(try h.create(body(person: person(rng.next() % 3))).id)
                case 1:
                    let id = existing[Int(rng.next() % UInt64(existing.count))]
                    var patch = RecordBody()
                    patch.score = .value(Double(rng.next() % 100))
                    if rng.next() % 3 == 0 { patch.personID = .value(person(rng.next() % 3)); touched.insert(id) }
                    _ = try? h.state.patch(id, patch, caller: h.who, now: h.tick())
                case 2:
                    let id = existing[Int(rng.next() % UInt64(existing.count))]
                    _ = try h.state.delete(id, caller: h.who, now: h.tick())
                    touched.insert(id)
                default:
                    let id = existing[Int(rng.next() % UInt64(existing.count))]
                    _ = try h.state.restore(id, caller: h.who, now: h.tick())
                    touched.insert(id)
                }
            }
            let page = try h.state.listRecords(query, caller: h.who)
            seen += page.records.map(\.id)
            guard let next = page.next else { break }
            query.cursor = next
        }
        #expect(Set(seen).count == seen.count, "a record was returned twice")
        for id in initial.subtracting(touched) {
            #expect(seen.contains(id), "record \(id) present throughout was skipped")
        }
        let sortedSeen = order == .ascending ? seen.sorted() : seen.sorted(by: >)
        #expect(seen == sortedSeen, "pages are in order")
    }
}

@Suite struct UndoAndImportTests {
    @Test func undoTakesBackEveryKindOfWrite() throws {
        var h = Harness()
        let keep = try h.create(body(person: person(1), cert: "K"))
        let before = try h.allPages(ListQuery(includeDeleted: true))
        let snapshotOfKeep = try h.state.get(keep.id, caller: h.who)
        var undos: [TenantUndo] = []
        let created = try h.state.create(body(person: person(2)), caller: h.who, idempotencyKey: "x", now: h.tick())
        undos.append(created.undo!)
        var patch = RecordBody()
        patch.personID = .value(person(3))
        patch.certificationRef = .value("K2")
        undos.append(try h.state.patch(keep.id, patch, caller: h.who, now: h.tick()).undo!)
        undos.append(try h.state.delete(keep.id, caller: h.who, now: h.tick()).undo!)
        undos.append(try h.state.purgePerson(person(3), dryRun: false, caller: h.who).undo!)
        for undo in undos.reversed() { h.state.undo(undo) }
        #expect(h.state.sequence == 1)
        #expect(try h.allPages(ListQuery(includeDeleted: true)) == before)
        #expect(try h.state.get(keep.id, caller: h.who) == snapshotOfKeep)
        #expect(try h.ids(ListQuery(certificationRef: "K")) == [keep.id])
        #expect(try h.ids(ListQuery(personID: person(3))).isEmpty)
        #expect(h.state.idempotency["\u{0}x"] == nil)
        #expect(h.state.store.liveCount == 1)
    }

    @Test func replayingMutationsRebuildsTheSameState() throws {
        var h = Harness()
        var log: [(UInt64, [TenantMutation])] = []
        func record<R>(_ write: TenantWrite<R>) { if !write.mutations.isEmpty { log.append((write.sequence, write.mutations)) } }
        var rng = SeededGenerator(seed: 3)
        var ids: [RecordID] = []
        for i in 0..<50 {
            let w = try h.state.create(body(person: person(rng.next() % 5), cert: "C\(i % 4)"), caller: h.who, now: h.tick())
            record(w); ids.append(w.result.id)
            if i % 5 == 0 { record(try h.state.delete(ids[Int(rng.next() % UInt64(ids.count))], caller: h.who, now: h.tick())) }
            if i % 7 == 0 {
                var p = RecordBody(); p.personID = .value(person(rng.next() % 5))
                if let w = try? h.state.patch(ids[Int(rng.next() % UInt64(ids.count))], p, caller: h.who, now: h.tick()) { record(w) }
            }
        }
        record(try h.state.purgePerson(person(2), dryRun: false, caller: h.who))
        var replica = TenantState(tenantID: tenantA)
        for (sequence, mutations) in log { replica.apply(mutations, sequence: sequence) }
        #expect(replica.sequence == h.state.sequence)
        for query in [ListQuery(includeDeleted: true), ListQuery(personID: person(1)), ListQuery(certificationRef: "C1")] {
            let a = try h.state.listRecords(query, caller: h.who).records
            let b = try replica.listRecords(query, caller: h.who).records
            #expect(a == b)
        }
    }

    /// A batch in slot order with distinct ids skips the de-duplication; any other batch must still
    /// store one record per id, the last one winning, whatever its created_at.
    @Test func importBatchesKeepOneRecordPerId() throws {
        var h = Harness()
        let template = try h.create()
        func record(_ ms: Int64, _ low: UInt64, title: String) -> LearningRecord {
            var r = template
            r.id = RecordID(milliseconds: UInt64(ms), randomHigh: 1, randomLow: low)
            r.createdAt = Timestamp(milliseconds: ms)
            r.updatedAt = Timestamp(milliseconds: ms)
            r.title = title
            return r
        }
        let ascending = [record(1000, 1, title: "a"), record(1000, 2, title: "b"), record(2000, 1, title: "c")]
        #expect(TenantState.idsAscendInCreationOrder(ascending))
        let repeated = [record(1500, 9, title: "first"), record(1500, 9, title: "second")]
        var later = record(3500, 11, title: "q")
        later.id = RecordID(milliseconds: 1600, randomHigh: 1, randomLow: 11)  // same id, later created_at
        let sameIDTwice = [record(1600, 11, title: "p"), later]
        let outOfOrder = [record(2000, 5, title: "x"), record(1000, 7, title: "y")]
        for batch in [repeated, sameIDTwice, outOfOrder] { #expect(!TenantState.idsAscendInCreationOrder(batch)) }

        _ = try h.state.importRecords(ascending, caller: h.who)
        #expect(h.state.store.liveCount == 4)
        _ = try h.state.importRecords(repeated, caller: h.who)
        #expect(h.state.store.liveCount == 5, "one record per id")
        #expect(try h.state.get(repeated[0].id, caller: h.who).title == "second", "the last put of an id wins")
        _ = try h.state.importRecords(sameIDTwice, caller: h.who)
        #expect(h.state.store.liveCount == 6, "one record per id, whatever its created_at")
        let kept = try h.state.get(later.id, caller: h.who)
        #expect(kept.title == "q" && kept.createdAt == Timestamp(milliseconds: 3500))
        _ = try h.state.importRecords(outOfOrder, caller: h.who)
        let ids = try h.ids(ListQuery(order: .ascending, limit: 100))
        #expect(ids.count == 8 && Set(ids).count == 8)
    }

    @Test func importOfOlderRecordsRebuildsOrder() throws {
        var h = Harness()
        let newer = try h.create()
        var old = newer
        old.id = RecordID(milliseconds: 1000, randomHigh: 1, randomLow: 1)
        old.createdAt = Timestamp(milliseconds: 1000)
        old.updatedAt = Timestamp(milliseconds: 1000)
        _ = try h.state.importRecords([old], caller: h.who)
        #expect(try h.ids(ListQuery(order: .ascending)) == [old.id, newer.id])
        #expect(try h.ids(ListQuery(personID: newer.personID, order: .descending)) == [newer.id, old.id])
        let next = try h.create()
        #expect(try h.ids(ListQuery(order: .ascending)) == [old.id, newer.id, next.id])
        _ = try h.state.importRecords([old], caller: h.who)
        #expect(h.state.store.liveCount == 3, "re-importing replaces, never duplicates")
        #expect(throws: LearnStoreError.self) { try h.state.importRecords([old], caller: caller(scopes: [.recordsWrite])) }
    }
}
