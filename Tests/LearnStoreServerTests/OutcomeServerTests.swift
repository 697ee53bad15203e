import CanvasOutcomes
import LearnStoreClient
import LearnStoreModel
import LearnStoreProtocol
import LearnStoreWorkload
import NIOPosix
import Testing

/// What the store must answer for a generated course, computed from the dataset with `RollupCalculator`
/// directly (no store, no index).
struct ExpectedCourse {
    let course: CanvasCourseDataset
    let scale: RollupScale
    /// Live results, by key.
    let live: [OutcomeResult]

    init(_ course: CanvasCourseDataset) {
        self.course = course
        scale = RollupScale(proficiency: course.proficiency)!
        live = course.results.filter { $0.workflowState != "deleted" }
    }

    static func byPosition(_ a: OutcomeResult, _ b: OutcomeResult) -> Bool {
        let (ta, tb) = (a.assessedAt?.milliseconds ?? .min, b.assessedAt?.milliseconds ?? .min)
        return ta != tb ? ta < tb : CanvasID.precedes(a.key, b.key)
    }

    func results(where include: (OutcomeResult) -> Bool) -> [OutcomeResult] {
        live.filter(include).sorted(by: Self.byPosition)
    }

    func rollup(student: String, outcome: LearningOutcome) -> StudentOutcomeRollup? {
        var assets: [AssetRef: Int32] = [:]
        let scored = live.filter { $0.userUUID == student && $0.learningOutcomeID == outcome.id && $0.score != nil }
            .sorted { CanvasID.precedes($0.key, $1.key) }
        let inputs = scored.map { result in
            RollupInput(score: result.score!, percent: result.percent, possible: result.possible,
                        time: result.submittedAt ?? result.assessedAt,
                        association: result.associatedAsset.map { asset in
                            if let known = assets[asset] { return known }
                            assets[asset] = Int32(assets.count)
                            return Int32(assets.count - 1)
                        } ?? -1,
                        isClassicQuiz: result.isClassicQuizResult)
        }
        let method = CalculationMethod(outcome.calculationMethod)
        guard let score = RollupCalculator.rollup(inputs, method: method, calculationInt: outcome.calculationInt, scale: scale) else {
            return nil
        }
        return StudentOutcomeRollup(
            userUUID: student, outcomeID: outcome.id, context: course.context, score: score.score, count: score.count,
            latestAssessedAt: score.latestTime, mastered: scale.isMastered(score.score),
            rating: scale.ratingIndex(for: score.score).map { scale.ratings[$0] }, method: method, scaleSource: scale.source)
    }

    func studentRollups(_ student: String) -> [StudentOutcomeRollup] {
        course.outcomes.compactMap { rollup(student: student, outcome: $0) }
    }

    func aggregates() -> [ContextOutcomeAggregate] {
        let all = course.students.map(studentRollups)
        return course.outcomes.compactMap { outcome in
            let rollups = all.flatMap { $0 }.filter { $0.outcomeID == outcome.id }
            guard !rollups.isEmpty else { return nil }
            let values = rollups.map(\.score)
            let sorted = values.sorted()
            let mean = RubyFloat.round(RubyFloat.sum(values) / Double(values.count))
            var counts = Array(repeating: 0, count: scale.ratings.count)
            for value in values { if let index = scale.ratingIndex(for: value) { counts[index] += 1 } }
            return ContextOutcomeAggregate(
                outcomeID: outcome.id, context: course.context, mean: mean,
                median: (sorted[(sorted.count - 1) / 2] + sorted[sorted.count / 2]) / 2, studentCount: values.count,
                resultCount: rollups.map(\.count).reduce(0, +), latestAssessedAt: rollups.compactMap(\.latestAssessedAt).max(),
                mastered: scale.isMastered(mean), rating: scale.ratingIndex(for: mean).map { scale.ratings[$0] },
                ratingCounts: counts, scale: scale)
        }
    }
}

func collect(_ list: OutcomeResultList) async throws -> [OutcomeResult] {
    var out: [OutcomeResult] = []
    for try await result in list { out.append(result) }
    return out
}

/// Every outcome read opcode, for the scope test.
enum Read: CaseIterable {
    case get, tree, results, proficiency, rollup, rollups, aggregates

    func perform(_ outcomes: OutcomesClient, _ course: CanvasCourseDataset) async throws(LearnStoreError) {
        switch self {
        case .get: _ = try await outcomes.outcome(id: "1000")
        case .tree: _ = try await outcomes.outcomes(in: course.context)
        case .results: _ = try await outcomes.resultsPage(.context(course.context))
        case .proficiency: _ = try await outcomes.proficiency(inForce: course.context)
        case .rollup: _ = try await outcomes.studentRollup(userUUID: course.students[0], outcomeID: "1000", context: course.context)
        case .rollups: _ = try await outcomes.studentRollups(userUUID: course.students[0], context: course.context)
        case .aggregates: _ = try await outcomes.contextAggregates(context: course.context)
        }
    }
}

@Suite struct OutcomeServerTests {
    /// 30 students × 20 outcomes × 5 results, plus outcomes, groups, links and a proficiency, with later
    /// versions, deletions, duplicates and a shuffled order, ingested over TCP and checked query by query.
    @Test func aGeneratedCourseOverTCP() async throws {
        let server = try await TestServer.start()
        let client = try await server.client()
        let outcomes = client.outcomes
        let course = CanvasCourseDataset(students: 30, outcomes: 20, resultsPerOutcome: 5, seed: 11)
        let expected = ExpectedCourse(course)
        let lines = course.eventLines(shuffleSeed: 99, duplicates: 400)

        var applied = 0, duplicates = 0, stale = 0, rejected = 0
        var start = 0
        while start < lines.count {
            let batch = Array(lines[start..<min(lines.count, start + 500)])
            let report = try await outcomes.ingest(jsonEvents: batch)
            #expect(report.outcomes.count == batch.count)
            applied += report.applied
            duplicates += report.duplicates
            stale += report.stale
            rejected += report.rejected.count
            start += 500
        }
        #expect(rejected == 0)
        #expect(applied + duplicates + stale == lines.count)
        // Every key was applied at least once; versions that arrived after a newer one are stale.
        let keys = 1 + course.groups.count + course.outcomes.count + course.links.count + course.results.count
        #expect(applied >= keys && duplicates >= 400 - (applied - keys))

        // Rollups: per student across the course, per student and outcome, and the course aggregate.
        for student in course.students {
            let rollups = try await outcomes.studentRollups(userUUID: student, context: course.context)
            #expect(rollups == expected.studentRollups(student), "student \(student)")
        }
        #expect(expected.studentRollups(course.students[0]).count > 15)
        for (student, outcome) in [(course.students[0], course.outcomes[0]), (course.students[29], course.outcomes[19]),
                                   (course.students[7], course.outcomes[4])] {
            let rollup = try await outcomes.studentRollup(userUUID: student, outcomeID: outcome.id, context: course.context)
            #expect(rollup == expected.rollup(student: student, outcome: outcome))
        }
        #expect(try await outcomes.studentRollup(userUUID: "nobody", outcomeID: "1000", context: course.context) == nil)
        let aggregates = try await outcomes.contextAggregates(context: course.context)
        #expect(aggregates == expected.aggregates())
        #expect(aggregates.count > 15, "n_mastery with the default int (5) rarely has a rollup, so a few outcomes have none")
        // The criterion scale instead of the proficiency gives other numbers, computed the same way.
        let criterion = try await outcomes.studentRollups(userUUID: course.students[3], context: course.context,
                                                          options: RollupOptions(scale: .outcomeCriterion))
        #expect(criterion.allSatisfy { $0.scaleSource == .outcomeCriterion } && criterion.count == expected.studentRollups(course.students[3]).count)

        // Entities by id.
        #expect(try await outcomes.outcome(id: "1003") == course.outcomes[3])
        #expect(try await outcomes.group(id: "104") == course.groups[4])
        #expect(try await outcomes.link(id: "5002") == course.links[2])
        #expect(try await outcomes.proficiency(id: "1") == course.proficiency)
        let someResult = expected.live[17]
        #expect(try await outcomes.result(key: someResult.key) == someResult)
        if let deleted = course.results.first(where: { $0.workflowState == "deleted" }) {
            await #expect(throws: LearnStoreError.self) { _ = try await outcomes.result(key: deleted.key) }
        } else {
            Issue.record("the dataset has no deleted result")
        }
        do {
            _ = try await outcomes.outcome(id: "999999")
            Issue.record("found a missing outcome")
        } catch {
            #expect(error.code == .notFound)
        }

        // The tree.
        #expect(try await outcomes.outcomes(in: course.context) == course.outcomes)
        #expect(try await outcomes.groups(in: course.context) == course.groups)
        #expect(try await outcomes.links(in: course.context) == course.links)
        let children = try await outcomes.children(of: "101")
        #expect(children.groups.map(\.id) == ["104"])
        #expect(children.links == course.links.filter { $0.learningOutcomeGroupID == "101" })
        #expect(try await outcomes.children(of: "100").groups.map(\.id) == ["101", "102", "103"])
        #expect(try await outcomes.groupPath(toRootFrom: "104").map(\.id) == ["104", "101", "100"])
        #expect(try await outcomes.links(inGroup: "102") == course.links.filter { $0.learningOutcomeGroupID == "102" })
        #expect(try await outcomes.links(forOutcome: "1007") == [course.links[7]])
        #expect(try await outcomes.proficiency(inForce: course.context) == course.proficiency)
        #expect(try await outcomes.proficiency(inForce: ContextRef(type: "Course", id: "1")) == nil)

        // Results, following keyset cursors.
        let student = course.students[5]
        #expect(try await collect(outcomes.results(.student(student), pageSize: 7)) == expected.results { $0.userUUID == student })
        #expect(try await collect(outcomes.results(.outcome("1011"), pageSize: 13)) == expected.results { $0.learningOutcomeID == "1011" })
        let all = try await collect(outcomes.results(.context(course.context), pageSize: 1000))
        #expect(all == expected.results { _ in true })
        #expect(all.count == expected.live.count && all.count > 2800)
        let asset = AssetRef(type: "Assignment", id: "701")
        #expect(try await collect(outcomes.results(.asset(asset), pageSize: 50)) == expected.results { $0.associatedAsset == asset })
        let from = Timestamp(milliseconds: CanvasCourseDataset.baseMilliseconds + 86_400_000)
        let to = Timestamp(milliseconds: CanvasCourseDataset.baseMilliseconds + 2 * 86_400_000)
        let inRange = expected.results { $0.assessedAt.map { $0 >= from && $0 < to } ?? false }
        #expect(try await collect(outcomes.results(.assessedBetween(from: from, to: to), pageSize: 100)) == inRange)
        #expect(!inRange.isEmpty)
        let page = try await outcomes.resultsPage(.student(student), limit: 3)
        #expect(page.results.count == 3 && page.next != nil)
        let rest = try await outcomes.resultsPage(.student(student), after: page.next, limit: 1000)
        #expect(page.results + rest.results == expected.results { $0.userUUID == student } && rest.next == nil)

        let stats = try await client.performance.learningRecords.stats()
        #expect(stats["outcome_results"] == .number(String(expected.live.count)))
        #expect(stats["outcome_entities"] == .number(String(1 + 5 + 20 + 20)))
        await client.shutdown()
        try await server.stop()
    }

    @Test func malformedEventsAreRejectedOneByOneAndTheRestApplies() async throws {
        let server = try await TestServer.start()
        let client = try await server.client()
        let course = CanvasCourseDataset(students: 1, outcomes: 1, resultsPerOutcome: 1, seed: 2)
        let good = course.eventLines()
        let noUser = #"{"metadata":{"event_name":"learning_outcome_result_created"},"body":{"learning_outcome_id":"1"}}"#
        let badID = #"{"metadata":{"event_name":"learning_outcome_created"},"body":{"learning_outcome_id":"12a"}}"#
        let goldenEvent = #"{"metadata":{"event_name":"learning_outcome_result_created"},"body":{"learning_outcome_id":"1","user_uuid":"u1","score":3}}"#
        let batch = [good[0], noUser, "not json", good[1], badID, goldenEvent] + good.dropFirst(2)
        let report = try await client.outcomes.ingest(jsonEvents: batch)
        #expect(report.applied == good.count + 1 && report.sequence == 1)
        let rejected = report.rejected
        #expect(rejected.map(\.index) == [1, 2, 4])
        #expect(rejected.map(\.rejection.reason.name) == ["missingField", "badJSON", "invalidValue"])
        #expect(rejected.map(\.rejection.error.field) == ["body.user_uuid", nil, "body.learning_outcome_id"])
        #expect(rejected.allSatisfy { $0.rejection.error.code == .validation })
        // The id-less result got its synthetic key (docs/PROTOCOL.md, appendix B, example B-2).
        #expect(report.outcomes[5] == .applied(.result, key: "syn:2:u11:10:0:0:0:"))
        #expect(try await client.outcomes.result(key: "syn:2:u11:10:0:0:0:").score == 3)
        #expect(try await client.outcomes.outcomes(in: course.context) == course.outcomes)

        // A batch with nothing valid writes nothing; an empty batch is invalid.
        let none = try await client.outcomes.ingest(jsonEvents: ["[]"])
        #expect(none.sequence == 1 && none.rejected.count == 1)
        do {
            _ = try await client.outcomes.ingest([])
            Issue.record("an empty batch was accepted")
        } catch {
            #expect(error.code == .validation && error.field == "events")
        }
        await client.shutdown()
        try await server.stop()
    }

    @Test func scopesGuardEveryOpcode() async throws {
        let server = try await TestServer.start()
        let course = CanvasCourseDataset(students: 2, outcomes: 2, resultsPerOutcome: 2, seed: 4)
        let reader = try await server.client(scopes: [.outcomesRead, .recordsWrite, .recordsRead])
        let writer = try await server.client(scopes: [.outcomesWrite, .recordsRead])
        do {
            _ = try await reader.outcomes.ingest(jsonEvents: course.eventLines())
            Issue.record("ingest without outcomes:write")
        } catch {
            #expect(error.code == .forbidden)
        }
        #expect(try await writer.outcomes.ingest(jsonEvents: course.eventLines()).applied == course.events.count)
        for read in Read.allCases {
            do {
                try await read.perform(writer.outcomes, course)
                Issue.record("\(read) without outcomes:read")
            } catch {
                #expect(error.code == .forbidden)
            }
            try await read.perform(reader.outcomes, course)
        }
        await reader.shutdown()
        await writer.shutdown()
        try await server.stop()
    }

    @Test func anotherTenantSeesNothing() async throws {
        let server = try await TestServer.start()
        let a = try await server.client(tenant: "tenant_a")
        let b = try await server.client(tenant: "tenant_b")
        let course = CanvasCourseDataset(students: 3, outcomes: 3, resultsPerOutcome: 2, seed: 5)
        // The events claim a root account; the tenant is the token's, whatever they claim.
        #expect(try await a.outcomes.ingest(jsonEvents: course.eventLines()).rejected.isEmpty)
        #expect(try await a.outcomes.outcomes(in: course.context).count == 3)
        do {
            _ = try await b.outcomes.outcome(id: "1000")
            Issue.record("tenant_b sees tenant_a's outcome")
        } catch {
            #expect(error.code == .notFound)
        }
        #expect(try await b.outcomes.outcomes(in: course.context).isEmpty)
        #expect(try await b.outcomes.groups(in: course.context).isEmpty)
        #expect(try await b.outcomes.groupPath(toRootFrom: "104").isEmpty)
        #expect(try await collect(b.outcomes.results(.context(course.context))).isEmpty)
        #expect(try await b.outcomes.proficiency(inForce: course.context) == nil)
        #expect(try await b.outcomes.studentRollups(userUUID: course.students[0], context: course.context).isEmpty)
        #expect(try await b.outcomes.contextAggregates(context: course.context).isEmpty)
        // tenant_b's own copy of the same events is its own, with its own sequence.
        let report = try await b.outcomes.ingest(jsonEvents: course.eventLines())
        #expect(report.sequence == 1 && report.applied == course.events.count)
        await a.shutdown()
        await b.shutdown()
        try await server.stop()
    }

    @Test func helloAnnouncesTheFeatureAndAServerWithoutItDoesNotKnowTheOpcodes() async throws {
        let on = try await TestServer.start()
        let connection = try await ClientConnection.connect(host: "127.0.0.1", port: on.port, group: on.group)
        #expect(connection.hello.features.contains(.outcomes) && connection.hello.features.contains(.records))
        #expect(connection.hello.features.rawValue == 15, "a server on its defaults sends what example A-2 shows")
        await connection.close()
        try await on.stop()

        let off = try await TestServer.start(configure: { $0.features = [] })
        let client = try await off.client()
        do {
            _ = try await client.outcomes.contextAggregates(context: ContextRef(type: "Course", id: "1"))
            Issue.record("a server without the feature answered")
        } catch {
            #expect(error.code == .unknownOpcode)
        }
        await client.shutdown()
        try await off.stop()
    }
}
