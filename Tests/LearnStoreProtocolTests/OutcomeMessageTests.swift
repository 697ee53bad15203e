import CanvasOutcomes
import Foundation
import LearnStoreModel
import LearnStoreProtocol
import Testing

func encoded(_ body: (inout ByteWriter) -> Void) -> [UInt8] {
    var writer = ByteWriter()
    body(&writer)
    return writer.bytes
}

func decoded<T>(_ bytes: [UInt8], _ body: (inout ByteReader) throws(DecodeError) -> T) throws(DecodeError) -> T {
    try bytes.withByteReader(body)
}

let course = ContextRef(type: "Course", id: "565")

func sampleRating(_ points: Double, _ description: String?, mastery: Bool? = nil, color: String? = nil) -> RollupRating {
    RollupRating(points: points, description: description, color: color, isMastery: mastery)
}

let proficiencyScale = RollupScale(
    pointsPossible: 4, masteryPoints: 3,
    ratings: [sampleRating(4, "Exceeds", mastery: false, color: "02672D"), sampleRating(3, "Mastery", mastery: true),
              sampleRating(0, nil)],
    source: .proficiency(id: "1"))

@Suite struct OutcomeMessageTests {
    static let outcome = LearningOutcome(
        id: "1000", contextType: "Course", contextID: "565", title: "Outcome \u{1F600}", calculationMethod: "n_mastery",
        calculationInt: 2, rubricCriterion: RubricCriterion(description: "c", masteryPoints: 3, pointsPossible: 5,
                                                            ratings: [RubricRating(description: "top", points: 5)]),
        workflowState: "active", updatedAt: Timestamp(milliseconds: 1_704_067_200_123),
        metadata: EventMetadata(eventTime: Timestamp(milliseconds: 1_704_067_200_223), rootAccountID: "21070000000000001"))
    static let result = OutcomeResult(
        id: "9007199254740993", learningOutcomeID: "1000", userUUID: "student-1", resultContextType: "Course",
        resultContextID: "565", score: 2.5, possible: 5, percent: 0.5, assessedAt: Timestamp(milliseconds: 1_704_067_200_000),
        associatedAssetID: "7", associatedAssetType: "Assignment")

    @Test func ingestRequestAndResponseRoundTrip() throws {
        let events: [[UInt8]] = [Array(#"{"metadata":{}}"#.utf8), [], Array(repeating: 0x41, count: 300)]
        let request = encoded { OutcomeMessages.encodeIngest(events, into: &$0) }
        #expect(try decoded(request) { (r) throws(DecodeError) in try OutcomeMessages.decodeIngest(from: &r, maximumCount: 1000) } == events)
        #expect(throws: DecodeError.self) {
            try decoded(request) { (r) throws(DecodeError) in try OutcomeMessages.decodeIngest(from: &r, maximumCount: 2) }
        }
        #expect(throws: DecodeError.self) {
            try decoded(request + [0]) { (r) throws(DecodeError) in try OutcomeMessages.decodeIngest(from: &r, maximumCount: 1000) }
        }

        let outcomes: [EventOutcome] = [
            .applied(.outcome, key: "1000"), .duplicate(.result, key: "syn:3:abc"), .stale(.proficiency, key: "1"),
            .rejected(EventRejection(reason: .missingField, error: .validation("required", field: "body.learning_outcome_id"))),
            .rejected(EventRejection(reason: .badJSON, error: .validation("invalid JSON at byte 3: x"))),
        ]
        let response = encoded { OutcomeMessages.encodeIngestResponse(sequence: 42, outcomes, into: &$0) }
        let back = try decoded(response) { (r) throws(DecodeError) in try OutcomeMessages.decodeIngestResponse(from: &r) }
        #expect(back.sequence == 42 && back.outcomes == outcomes)
        var badStatus = response
        badStatus[9] = 9
        #expect(throws: DecodeError.self) { try decoded(badStatus) { (r) throws(DecodeError) in try OutcomeMessages.decodeIngestResponse(from: &r) } }
    }

    @Test func getAndEntitiesRoundTripThroughJSON() throws {
        let request = encoded { OutcomeMessages.encodeGet(.result, key: "syn:9:student-1", into: &$0) }
        let (kind, key) = try decoded(request) { (r) throws(DecodeError) in try OutcomeMessages.decodeGet(from: &r) }
        #expect(kind == .result && key == "syn:9:student-1")
        #expect(throws: DecodeError.self) { try decoded([6, 0]) { (r) throws(DecodeError) in try OutcomeMessages.decodeGet(from: &r) } }

        let entities: [OutcomeEntity] = [
            .outcome(Self.outcome), .result(Self.result),
            .group(OutcomeGroup(id: "100", contextType: "Course", contextID: "565", parentOutcomeGroupID: "99")),
            .link(OutcomeLink(id: "5000", learningOutcomeID: "1000", learningOutcomeGroupID: "100")),
            .proficiency(OutcomeProficiency(id: "1", contextType: "Course", contextID: "565", ratings: [
                OutcomeProficiencyRating(id: "1", description: "Mastery", points: 3, mastery: true, color: "03893D"),
            ])),
        ]
        for entity in entities {
            let bytes = encoded { OutcomeMessages.writeEntity(entity, into: &$0) }
            #expect(try decoded(bytes) { (r) throws(DecodeError) in try OutcomeMessages.decodeGetResponse(entity.kind, from: &r) } == entity)
        }
        let list = encoded { OutcomeMessages.encodeEntities(entities, into: &$0) }
        #expect(try decoded(list) { (r) throws(DecodeError) in try OutcomeMessages.decodeEntities(from: &r) } == entities)
        // JSON that is not the entity it claims to be is a protocol error, with the offset.
        let wrong = encoded { $0.writeVarint(1); $0.writeU8(OutcomeEntityKind.outcome.rawValue); $0.writeString(#"{"metadata":{}}"#) }
        #expect(throws: DecodeError(offset: 2, reason: #"learning_outcome JSON: missingField (body.learning_outcome_id): required"#)) {
            try decoded(wrong) { (r) throws(DecodeError) in try OutcomeMessages.decodeEntities(from: &r) }
        }
    }

    @Test(arguments: [
        OutcomeTreeQuery.contextOutcomes(course), .contextGroups(course), .contextLinks(ContextRef(type: "Account", id: "1")),
        .groupLinks(groupID: "100"), .outcomeLinks(outcomeID: "1000"), .groupChildren(groupID: "100"), .groupPath(groupID: "104"),
    ])
    func treeQueriesRoundTrip(query: OutcomeTreeQuery) throws {
        let bytes = encoded { OutcomeMessages.encodeTree(query, into: &$0) }
        #expect(try decoded(bytes) { (r) throws(DecodeError) in try OutcomeMessages.decodeTree(from: &r) } == query)
    }

    @Test func resultQueriesAndPagesRoundTrip() throws {
        let cursor = ResultCursor(token: "r1.0000018cc2a1e400.313030303031")
        #expect(cursor != nil)
        let scopes: [ResultScope] = [
            .student("student-1"), .outcome("1000"), .context(course), .asset(AssetRef(type: "Assignment", id: "7")),
            .assessedBetween(from: Timestamp(milliseconds: -5), to: Timestamp(milliseconds: 1_704_067_200_000)),
        ]
        for scope in scopes {
            for (after, limit) in [(nil, 0), (cursor, 1000)] as [(ResultCursor?, Int)] {
                let bytes = encoded { OutcomeMessages.encodeResults(scope, after: after, limit: limit, into: &$0) }
                let back = try decoded(bytes) { (r) throws(DecodeError) in try OutcomeMessages.decodeResults(from: &r) }
                #expect(back.scope == scope && back.limit == limit)
                #expect(try OutcomeMessages.cursor(back.cursor) == after)
            }
        }
        #expect(throws: LearnStoreError.validation("not a cursor from an earlier page", field: "cursor")) {
            try OutcomeMessages.cursor(Array("r2.x".utf8))
        }
        for page in [ResultPage(results: [Self.result, Self.result], next: cursor), ResultPage(results: [], next: nil)] {
            let bytes = encoded { OutcomeMessages.encodeResultPage(page, into: &$0) }
            #expect(try decoded(bytes) { (r) throws(DecodeError) in try OutcomeMessages.decodeResultPage(from: &r) } == page)
        }
    }

    @Test func proficiencyRequestAndResponse() throws {
        let request = encoded { OutcomeMessages.writeContext(course, into: &$0) }
        #expect(try decoded(request) { (r) throws(DecodeError) in try OutcomeMessages.decodeContextRequest(from: &r) } == course)
        let proficiency = OutcomeProficiency(id: "1", contextType: "Course", contextID: "565", workflowState: "active")
        for value in [proficiency, nil] as [OutcomeProficiency?] {
            let bytes = encoded { OutcomeMessages.encodeProficiencyResponse(value, into: &$0) }
            #expect(try decoded(bytes) { (r) throws(DecodeError) in try OutcomeMessages.decodeProficiencyResponse(from: &r) } == value)
        }
        #expect(throws: DecodeError.self) { try decoded([2]) { (r) throws(DecodeError) in try OutcomeMessages.decodeProficiencyResponse(from: &r) } }
    }

    @Test(arguments: [
        RollupOptions(),
        RollupOptions(scale: .outcomeCriterion),
        RollupOptions(scale: .proficiency(of: ContextRef(type: "Account", id: "1")), newDecayingAverage: false),
        RollupOptions(calculationOverride: .init(method: .latest)),
        RollupOptions(scale: .outcomeCriterion, calculationOverride: .init(method: .nMastery, calculationInt: -3)),
        RollupOptions(calculationOverride: .init(method: .unknown("custom"), calculationInt: 65)),
    ])
    func rollupRequestsRoundTrip(options: RollupOptions) throws {
        let one = encoded { RollupMessages.encodeRollup(userUUID: "u", outcomeID: "1000", context: course, options: options, into: &$0) }
        let a = try decoded(one) { (r) throws(DecodeError) in try RollupMessages.decodeRollup(from: &r) }
        #expect(a.userUUID == "u" && a.outcomeID == "1000" && a.context == course && a.options == options)
        let many = encoded { RollupMessages.encodeStudentRollups(userUUID: "u", context: course, options: options, into: &$0) }
        let b = try decoded(many) { (r) throws(DecodeError) in try RollupMessages.decodeStudentRollups(from: &r) }
        #expect(b.userUUID == "u" && b.context == course && b.options == options)
        let aggregates = encoded { RollupMessages.encodeAggregates(context: course, options: options, into: &$0) }
        let c = try decoded(aggregates) { (r) throws(DecodeError) in try RollupMessages.decodeAggregates(from: &r) }
        #expect(c.context == course && c.options == options)
    }

    @Test func malformedRollupOptionsAreRefused() {
        for flags: UInt8 in [0x10, 0x80, 0x03] {
            #expect(throws: DecodeError.self) {
                try decoded([flags]) { (r) throws(DecodeError) in try RollupMessages.readOptions(&r) }
            }
        }
    }

    @Test func rollupsAndAggregatesRoundTrip() throws {
        let rollups = [
            StudentOutcomeRollup(userUUID: "u", outcomeID: "1000", context: course, score: 3.48, count: 5,
                                 latestAssessedAt: Timestamp(milliseconds: 1_704_067_200_000), mastered: true,
                                 rating: proficiencyScale.ratings[1], method: .decayingAverage, scaleSource: .proficiency(id: "1")),
            StudentOutcomeRollup(userUUID: "u", outcomeID: "1001", context: course, score: 0, count: 1, latestAssessedAt: nil,
                                 mastered: false, rating: nil, method: .unknown("x"), scaleSource: .outcomeCriterion),
        ]
        let many = encoded { RollupMessages.encodeRollupsResponse(rollups, into: &$0) }
        #expect(try decoded(many) { (r) throws(DecodeError) in try RollupMessages.decodeRollupsResponse(from: &r, userUUID: "u", context: course) } == rollups)
        for rollup in [rollups[0], nil] as [StudentOutcomeRollup?] {
            let one = encoded { RollupMessages.encodeRollupResponse(rollup, into: &$0) }
            #expect(try decoded(one) { (r) throws(DecodeError) in try RollupMessages.decodeRollupResponse(from: &r, userUUID: "u", context: course) } == rollup)
        }

        let aggregates = [
            ContextOutcomeAggregate(outcomeID: "1000", context: course, mean: 11.5, median: 2.5, studentCount: 4, resultCount: 9,
                                    latestAssessedAt: Timestamp(milliseconds: 1), mastered: true, rating: proficiencyScale.ratings[0],
                                    ratingCounts: [1, 0, 3], scale: proficiencyScale),
            ContextOutcomeAggregate(outcomeID: "1001", context: course, mean: 0.5, median: 0.5, studentCount: 1, resultCount: 1,
                                    latestAssessedAt: nil, mastered: false, rating: nil, ratingCounts: [0], scale: RollupScale(
                                        pointsPossible: 5, masteryPoints: 3, ratings: [sampleRating(1, "one")], source: .outcomeCriterion)),
        ]
        let bytes = encoded { RollupMessages.encodeAggregatesResponse(aggregates, into: &$0) }
        #expect(try decoded(bytes) { (r) throws(DecodeError) in try RollupMessages.decodeAggregatesResponse(from: &r, context: course) } == aggregates)
    }

    // MARK: golden frames (docs/PROTOCOL.md, appendix B worked examples)

    static func golden(_ name: String) throws -> [UInt8] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "hex", subdirectory: "Golden"))
        let text = try String(contentsOf: url, encoding: .utf8)
        // Hex bytes; `#` starts a comment to the end of the line.
        let digits = text.split(separator: "\n").map { $0.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0] }
            .joined().split(whereSeparator: \.isWhitespace).joined()
        var bytes: [UInt8] = []
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            bytes.append(try #require(UInt8(digits[index..<next], radix: 16)))
            index = next
        }
        return bytes
    }

    static let goldenEvent = #"{"metadata":{"event_name":"learning_outcome_result_created"},"body":{"learning_outcome_id":"1","user_uuid":"u1","score":3}}"#

    @Test func goldenIngestRequest() throws {
        let frame = encoded { writer in
            writer.writeFrame(FrameHeader(opcode: Opcode.outcomeIngest, requestID: 7)) {
                OutcomeMessages.encodeIngest([Array(Self.goldenEvent.utf8)], into: &$0)
            }
        }
        #expect(frame == (try Self.golden("outcome_ingest_request")))
    }

    @Test func goldenIngestResponse() throws {
        let frame = encoded { writer in
            writer.writeFrame(FrameHeader(opcode: Opcode.outcomeIngest, requestID: 11)) {
                OutcomeMessages.encodeIngestResponse(sequence: 3, [
                    .applied(.result, key: "syn:2:u11:10:0:0:0:"),
                    .rejected(EventRejection(reason: .missingField, error: .validation("required", field: "body.user_uuid"))),
                ], into: &$0)
            }
        }
        #expect(frame == (try Self.golden("outcome_ingest_response")))
    }

    @Test func goldenStudentRollupsResponse() throws {
        let rollup = StudentOutcomeRollup(
            userUUID: "u1", outcomeID: "1", context: course, score: 3.5, count: 2,
            latestAssessedAt: Timestamp(milliseconds: 1_704_067_200_000), mastered: true,
            rating: RollupRating(points: 3, description: "Mastery", color: nil, isMastery: true),
            method: .highest, scaleSource: .proficiency(id: "1"))
        let frame = encoded { writer in
            writer.writeFrame(FrameHeader(opcode: Opcode.outcomeStudentRollups, requestID: 8)) {
                RollupMessages.encodeRollupsResponse([rollup], into: &$0)
            }
        }
        #expect(frame == (try Self.golden("outcome_student_rollups_response")))
    }
}
