import LearnStoreModel
import LearnStoreTestSupport
import Testing
@testable import CanvasOutcomes

@Suite struct OutcomeTreeQueryTests {
    static func tree() -> OutcomeStore {
        var store = OutcomeStore()
        let groups = [("1", nil), ("2", "1"), ("3", "1"), ("4", "2"), ("10", "2")] as [(String, String?)]
        for (id, parent) in groups {
            store.ingest(.group(OutcomeGroup(id: id, contextType: "Course", contextID: "565", title: "g\(id)",
                                            parentOutcomeGroupID: parent, workflowState: "active")))
        }
        store.ingest(.group(OutcomeGroup(id: "99", contextType: "Account", contextID: "1", workflowState: "active")))
        store.ingest(.outcome(makeOutcome(id: "80")))
        store.ingest(.outcome(makeOutcome(id: "9", context: account)))
        store.ingest(.outcome(makeOutcome(id: "81")))
        for (id, outcome, group) in [("500", "80", "2"), ("501", "81", "2"), ("502", "80", "4"), ("60", "9", "99")] {
            let context = group == "99" ? account : course
            store.ingest(.link(OutcomeLink(id: id, learningOutcomeID: outcome, learningOutcomeGroupID: group,
                                          contextType: context.type, contextID: context.id, workflowState: "active")))
        }
        return store
    }

    @Test func byIDAndByContext() {
        let store = Self.tree()
        #expect(store.outcome(id: "80")?.title == "Outcome 80")
        #expect(store.outcome(id: "nope") == nil)
        #expect(store.outcomes(in: course).map(\.id) == ["80", "81"])
        #expect(store.outcomes(in: account).map(\.id) == ["9"])
        #expect(store.groups(in: course).map(\.id) == ["1", "2", "3", "4", "10"], "numeric id order")
        #expect(store.group(id: "99")?.context == account)
    }

    @Test func childrenAndLinks() {
        let store = Self.tree()
        #expect(store.childGroups(of: "1").map(\.id) == ["2", "3"])
        #expect(store.childGroups(of: "2").map(\.id) == ["4", "10"])
        let children = store.children(of: "2")
        #expect(children.groups.map(\.id) == ["4", "10"])
        #expect(children.links.map(\.id) == ["500", "501"])
        #expect(store.links(forOutcome: "80").map(\.id) == ["500", "502"])
        #expect(store.links(in: course).map(\.id) == ["500", "501", "502"])
        #expect(store.links(in: account).map(\.id) == ["60"])
    }

    @Test func pathToRoot() {
        var store = Self.tree()
        #expect(store.groupPath(toRootFrom: "4").map(\.id) == ["4", "2", "1"])
        #expect(store.groupPath(toRootFrom: "1").map(\.id) == ["1"])
        #expect(store.groupPath(toRootFrom: "nope").isEmpty)
        // Moving a group re-parents it in the child index.
        store.ingest(.group(OutcomeGroup(id: "4", contextType: "Course", contextID: "565", parentOutcomeGroupID: "3",
                                        workflowState: "active", updatedAt: ts("2020-01-01T00:00:00Z"))))
        #expect(store.childGroups(of: "2").map(\.id) == ["10"])
        #expect(store.groupPath(toRootFrom: "4").map(\.id) == ["4", "3", "1"])
        // A parent that has not arrived yet ends the path.
        store.ingest(.group(OutcomeGroup(id: "7", parentOutcomeGroupID: "404", workflowState: "active")))
        #expect(store.groupPath(toRootFrom: "7").map(\.id) == ["7"])
    }

    @Test func pathToRootSurvivesACycle() {
        var store = OutcomeStore()
        for (id, parent) in [("1", "3"), ("2", "1"), ("3", "2")] {
            store.ingest(.group(OutcomeGroup(id: id, parentOutcomeGroupID: parent, workflowState: "active")))
        }
        #expect(store.groupPath(toRootFrom: "2").map(\.id) == ["2", "1", "3"])
        store.ingest(.group(OutcomeGroup(id: "5", parentOutcomeGroupID: "5", workflowState: "active")))
        #expect(store.groupPath(toRootFrom: "5").map(\.id) == ["5"])
    }

    @Test func proficiencyInForce() {
        var store = OutcomeStore()
        #expect(store.proficiency(inForce: course) == nil)
        store.ingest(.proficiency(defaultProficiency(id: "1", context: account)))
        #expect(store.proficiency(inForce: course) == nil, "no account chain: only the context's own")
        #expect(store.proficiency(inForce: account)?.id == "1")
        store.ingest(.proficiency(defaultProficiency(id: "3", context: course, updatedAt: ts("2020-01-01T00:00:00Z"))))
        store.ingest(.proficiency(defaultProficiency(id: "2", context: course, updatedAt: ts("2020-02-01T00:00:00Z"))))
        #expect(store.proficiency(inForce: course)?.id == "2", "the newest of several")
        store.ingest(.proficiency(defaultProficiency(id: "2", context: course, updatedAt: ts("2020-03-01T00:00:00Z"),
                                                    state: "deleted")))
        #expect(store.proficiency(inForce: course)?.id == "3")
    }
}

@Suite struct ResultPagingTests {
    static let base = ts("2020-01-01T00:00:00Z").milliseconds

    /// `count` results for student-a with assessed_at on a coarse grid, so many share a time.
    static func store(count: Int, seed: UInt64) -> OutcomeStore {
        var rng = SeededGenerator(seed: seed)
        var store = OutcomeStore()
        for index in 0..<count {
            store.ingest(.result(makeResult(
                id: String(1000 + index), outcome: ["80", "81"].randomElement(using: &rng)!, score: 1,
                assessedAt: Bool.random(using: &rng) || index % 7 == 0
                    ? Timestamp(milliseconds: base + Int64.random(in: 0..<20, using: &rng) * 60_000) : nil,
                asset: AssetRef(type: "Assignment", id: "56"))))
        }
        return store
    }

    static func all(_ store: OutcomeStore, _ scope: ResultScope, limit: Int) -> [OutcomeResult] {
        var out: [OutcomeResult] = []
        var cursor: ResultCursor?
        repeat {
            let page = store.results(scope, after: cursor, limit: limit)
            #expect(page.results.count <= limit)
            out += page.results
            cursor = page.next
            if cursor != nil { #expect(page.results.count == limit) }
        } while cursor != nil
        return out
    }

    static func isOrdered(_ results: [OutcomeResult]) -> Bool {
        zip(results, results.dropFirst()).allSatisfy { ResultOrderKey($0) < ResultOrderKey($1) }
    }

    @Test(arguments: [1, 3, 7, 100, 1000])
    func pagingVisitsEveryResultOnceInOrder(limit: Int) {
        let store = Self.store(count: 300, seed: 1)
        for scope in [ResultScope.student("student-a"), .outcome("80"), .context(course),
                      .asset(AssetRef(type: "Assignment", id: "56"))] {
            let seen = Self.all(store, scope, limit: limit)
            #expect(Self.isOrdered(seen), "\(scope)")
            let expected = store.tables.results.values.filter { result in
                switch scope {
                case .outcome(let id): result.learningOutcomeID == id
                default: true
                }
            }
            #expect(Set(seen.map(\.key)) == Set(expected.map(\.key)), "\(scope)")
            #expect(seen.count == expected.count)
        }
    }

    @Test func timeRangeIsHalfOpenAndSkipsUndatedResults() {
        let store = Self.store(count: 300, seed: 2)
        let from = Timestamp(milliseconds: Self.base + 5 * 60_000)
        let to = Timestamp(milliseconds: Self.base + 9 * 60_000)
        let seen = Self.all(store, .assessedBetween(from: from, to: to), limit: 4)
        let expected = store.tables.results.values.filter { $0.assessedAt.map { $0 >= from && $0 < to } ?? false }
        #expect(Self.isOrdered(seen))
        #expect(Set(seen.map(\.key)) == Set(expected.map(\.key)))
        #expect(seen.count == expected.count && !seen.isEmpty)
        #expect(store.results(.assessedBetween(from: to, to: from)).results.isEmpty)
    }

    @Test func unknownScopesAreEmpty() {
        let store = Self.store(count: 10, seed: 3)
        #expect(store.results(.student("nobody")) == ResultPage(results: [], next: nil))
        #expect(store.results(.context(account)).results.isEmpty)
    }

    /// Between pages other events arrive: new results before and after the cursor, deletions of new
    /// results, re-scores and duplicates of old ones. No result is returned twice, and every result
    /// present throughout (never deleted, assessed_at unchanged) is returned.
    @Test(arguments: [21, 22, 23] as [UInt64])
    func pagingUnderConcurrentIngestion(seed: UInt64) {
        var store = Self.store(count: 200, seed: seed)
        let original = Set(store.tables.results.keys)
        var rng = SeededGenerator(seed: seed + 100)
        var seen: [String] = []
        var cursor: ResultCursor?
        var nextID = 5000
        var added: [OutcomeResult] = []
        repeat {
            let page = store.results(.student("student-a"), after: cursor, limit: 9)
            seen += page.results.map(\.key)
            cursor = page.next
            for _ in 0..<6 {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0, 1:
                    let result = makeResult(
                        id: String(nextID), score: 2,
                        assessedAt: Timestamp(milliseconds: Self.base + Int64.random(in: -5..<25, using: &rng) * 60_000),
                        createdAt: ts("2021-01-01T00:00:00Z"))
                    nextID += 1
                    #expect(store.apply(.result(result)) == .applied)
                    added.append(result)
                case 2:
                    guard var victim = added.randomElement(using: &rng) else { continue }
                    victim.workflowState = "deleted"
                    victim.updatedAt = ts("2021-02-01T00:00:00Z")
                    store.ingest(.result(victim))
                default:
                    let key = original.randomElement(using: &rng)!
                    guard var rescored = store.result(key: key) else { continue }
                    #expect(store.apply(.result(rescored)) == .duplicate)
                    rescored.score = Double.random(in: 0...4, using: &rng)
                    rescored.updatedAt = Timestamp(milliseconds: ts("2021-03-01T00:00:00Z").milliseconds + Int64(nextID))
                    nextID += 1
                    store.ingest(.result(rescored))
                }
            }
        } while cursor != nil
        #expect(seen.count == Set(seen).count, "no result twice")
        #expect(original.isSubset(of: Set(seen)), "nothing present throughout is skipped")
    }

    @Test func cursorTokensRoundTripAndRejectGarbage() throws {
        let store = Self.store(count: 20, seed: 4)
        let page = store.results(.student("student-a"), limit: 5)
        let next = try #require(page.next)
        let reparsed = try #require(ResultCursor(token: next.token))
        #expect(reparsed == next)
        #expect(store.results(.student("student-a"), after: reparsed, limit: 5)
            == store.results(.student("student-a"), after: next, limit: 5))
        let synthetic = ResultCursor(position: ResultOrderKey(time: .min, key: "syn:3:ü|x"))
        #expect(ResultCursor(token: synthetic.token) == synthetic)
        for garbage in ["", "r1", "r1..", "r2.0000000000000000.31", "r1.000000000000000.31", "r1.0000000000000000.3",
                        "r1.0000000000000000.zz", "r1.0000000000000000.ff", "r1.0000000000000000."] {
            #expect(ResultCursor(token: garbage) == nil, "\(garbage)")
        }
    }

    @Test func sortedKeyListSplitsAndMergesChunks() {
        var list = SortedKeyList<Int>()
        var reference: Set<Int> = []
        var rng = SeededGenerator(seed: 9)
        for _ in 0..<5000 {
            let value = Int.random(in: 0..<3000, using: &rng)
            if Bool.random(using: &rng) {
                #expect(list.insert(value) == reference.insert(value).inserted)
            } else {
                #expect(list.remove(value) == (reference.remove(value) != nil))
            }
        }
        #expect(list.elements == reference.sorted())
        #expect(list.count == reference.count)
        var fromMiddle: [Int] = []
        list.forEach(from: { $0 < 1500 }) { fromMiddle.append($0); return fromMiddle.count < 10 }
        #expect(fromMiddle == Array(reference.sorted().filter { $0 >= 1500 }.prefix(10)))
    }
}
