import LearnStoreModel
import Testing
@testable import CanvasOutcomes

@Suite struct SeedPayloadParsingTests {
    @Test(arguments: SeedPayloads.all.map(\.name))
    func everySeedPayloadParsesToItsKind(name: String) throws {
        let text = try #require(SeedPayloads.all.first { $0.name == name }).json
        let event = try OutcomeEvent.parse(text: text)
        #expect(event.name.rawValue == name)
        #expect(event.entity.kind == event.name.kind)
        // The result seeds carry no workflow_state (a missing key is null); the others say active.
        #expect(event.entity.workflowState == (event.name.kind == .result ? nil : "active"))
        #expect(!event.entity.isDeleted)
    }

    @Test func learningOutcomeCreated() throws {
        let event = try OutcomeEvent.parse(text: SeedPayloads.learningOutcomeCreated)
        guard case .outcome(let outcome) = event.entity else { Issue.record("not an outcome"); return }
        #expect(outcome.id == "12345")
        #expect(outcome.context == ContextRef(type: "Course", id: "1234"))
        #expect(outcome.calculationMethod == "highest")
        #expect(outcome.calculationInt == 65)
        #expect(outcome.title == "Molecular biology knowledge")
        #expect(outcome.displayName == "Learn molecular biology")
        #expect(outcome.shortDescription == "Molecular biology knowledge")
        #expect(outcome.description == "Develop understanding of molecular and cell biology.")
        #expect(outcome.vendorGUID == "1")
        #expect(outcome.updatedAt == nil)
        let criterion = try #require(outcome.rubricCriterion)
        #expect(criterion.masteryPoints == 2)
        #expect(criterion.pointsPossible == 3)
        #expect(criterion.ratings.map(\.points) == [3, 2, 1, 0])
        #expect(criterion.ratings[0].description == "The student shows fluency.")
        #expect(outcome.metadata.eventTime == ts("2019-11-05T10:03:37.526Z"))
        #expect(outcome.metadata.rootAccountID == "21070000000000001")
        #expect(outcome.metadata.rootAccountUUID == "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs")
        #expect(outcome.metadata.rootAccountLtiGUID == "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs.oxana.instructure.com")
    }

    @Test func learningOutcomeUpdated() throws {
        let event = try OutcomeEvent.parse(text: SeedPayloads.learningOutcomeUpdated)
        guard case .outcome(let outcome) = event.entity else { Issue.record("not an outcome"); return }
        #expect(outcome.updatedAt == ts("2019-11-01T21:42:55Z"))
        #expect(outcome.rubricCriterion?.masteryPoints == 3)
        #expect(outcome.rubricCriterion?.pointsPossible == 5)
        #expect(outcome.rubricCriterion?.ratings.count == 6)
        #expect(outcome.rubricCriterion?.ratings.last?.description == "Does Not Meet Expectations")
    }

    @Test func groups() throws {
        guard case .group(let created) = try OutcomeEvent.parse(text: SeedPayloads.learningOutcomeGroupCreated).entity,
              case .group(let updated) = try OutcomeEvent.parse(text: SeedPayloads.learningOutcomeGroupUpdated).entity
        else { Issue.record("not groups"); return }
        #expect(created.id == "75033")
        #expect(created.parentOutcomeGroupID == "75032")
        #expect(created.context == ContextRef(type: "Course", id: "32054"))
        #expect(created.title == "Official Standards for K-12 Math Education")
        #expect(created.description == "<h3>Outcome</h3>Hello outcome")
        #expect(created.vendorGUID == "123")
        #expect(created.updatedAt == nil)
        #expect(updated.updatedAt == ts("2019-11-05T13:38:00.218Z"))
        #expect(updated.metadata.eventTime == ts("2019-11-01T13:49:07.504Z"))
    }

    @Test func links() throws {
        guard case .link(let created) = try OutcomeEvent.parse(text: SeedPayloads.learningOutcomeLinkCreated).entity,
              case .link(let updated) = try OutcomeEvent.parse(text: SeedPayloads.learningOutcomeLinkUpdated).entity
        else { Issue.record("not links"); return }
        #expect(created.id == "12345678")
        #expect(created.learningOutcomeID == "1201234")
        #expect(created.learningOutcomeGroupID == "123456")
        // The body's local id, not metadata's global "21070000000000565".
        #expect(created.context == ContextRef(type: "Course", id: "565"))
        #expect(updated.id == "12345")
        #expect(updated.updatedAt == ts("2019-11-01T19:12:12.060Z"))
    }

    @Test func results() throws {
        guard case .result(let created) = try OutcomeEvent.parse(text: SeedPayloads.learningOutcomeResultCreated).entity,
              case .result(let updated) = try OutcomeEvent.parse(text: SeedPayloads.learningOutcomeResultUpdated).entity
        else { Issue.record("not results"); return }
        #expect(created.id == "1")
        #expect(created.key == "1")
        #expect(created.learningOutcomeID == "1")
        #expect(created.userUUID == "elXwFPr6uKGaiVxchQSsqV6YZy5HBtlq8O2vqMXM")
        #expect(created.learningOutcomeContextUUID == "9dewFPr6uKGaiVxchQSsqV6YZy5HBtlq8O2vqp45")
        #expect(created.resultContext == ContextRef(type: "Course", id: "1"))
        #expect(created.resultContextUUID == "c3JwFPr6uKGaiVxchQSsqV6YZy5HBtlq8O2vqNNN")
        #expect(created.mastery == true)
        #expect(created.originalMastery == false)
        #expect(created.score == 5 && created.possible == 5 && created.percent == 1)
        #expect(created.originalScore == 5 && created.originalPossible == 5)
        #expect(created.attempt == 1)
        #expect(created.assessedAt == ts("2019-08-09T21:35:05Z"))
        #expect(created.createdAt == ts("2019-08-09T21:35:05Z"))
        #expect(created.updatedAt == nil)
        #expect(created.artifactID == "22" && created.artifactType == "RubricAssessment")
        #expect(created.artifactCreatedAt == ts("2019-08-09T21:33:05Z"))
        #expect(created.artifactUpdatedAt == ts("2019-08-09T21:33:05Z"))
        #expect(created.associatedAsset == AssetRef(type: "Assignment", id: "56"))
        #expect(created.workflowState == nil, "the seed result omits workflow_state: a missing key is null")
        #expect(updated.updatedAt == ts("2019-11-01T00:21:24Z"))
    }

    @Test func proficiencies() throws {
        guard case .proficiency(let created) = try OutcomeEvent.parse(text: SeedPayloads.outcomeProficiencyCreated).entity,
              case .proficiency(let updated) = try OutcomeEvent.parse(text: SeedPayloads.outcomeProficiencyUpdated).entity
        else { Issue.record("not proficiencies"); return }
        #expect(created.id == "1")
        #expect(created.context == ContextRef(type: "Account", id: "1"))
        #expect(created.ratings.map(\.points) == [4, 3, 2, 1, 0])
        #expect(created.ratings.map(\.mastery) == [false, true, false, false, false])
        #expect(created.ratings[0] == OutcomeProficiencyRating(id: "1", description: "Exceeds Mastery", points: 4,
                                                               mastery: false, color: "02672D", workflowState: "active"))
        // -06:00 offset: the same instant as 23:24:46Z.
        #expect(updated.updatedAt == ts("2020-08-18T23:24:46Z"))
    }

    /// Every seed survives entity → JSON (snake_case) → event → entity, and entity → bytes → entity.
    @Test(arguments: SeedPayloads.all.map(\.name))
    func seedRoundTripsThroughJSONAndCodec(name: String) throws {
        let event = try OutcomeEvent.parse(text: try #require(SeedPayloads.all.first { $0.name == name }).json)
        let json = event.entity.json
        guard case .object(let metadataMembers) = try #require(json["metadata"]) else {
            Issue.record("no metadata object"); return
        }
        let rebuilt: JSONValue = .object([
            ("metadata", .object([("event_name", .string(name))] + metadataMembers)),
            ("body", json),
        ])
        #expect(try OutcomeEvent.parse(rebuilt) == event)
        #expect(try OutcomeEvent.parse(text: rebuilt.serialized) == event)

        let bytes = OutcomeRecord.entity(event.entity).encoded
        #expect(try OutcomeRecord.decode(bytes) == .entity(event.entity))
    }
}

@Suite struct MalformedEventTests {
    static let validResultBody = #""id":"7","learning_outcome_id":"80","user_uuid":"u1","score":3"#

    static func result(_ body: String, eventTime: String = "2020-01-01T00:00:00Z") -> String {
        #"{"metadata":{"event_name":"learning_outcome_result_created","event_time":"\#(eventTime)"},"body":{\#(body)}}"#
    }

    static func outcome(_ body: String) -> String {
        #"{"metadata":{"event_name":"learning_outcome_updated"},"body":{\#(body)}}"#
    }

    static let cases: [(text: String, reason: OutcomeEventError.Reason, field: String?)] = [
        ("not json", .badJSON, nil),
        (#"{"metadata":{"event_name":"learning_outcome_created"},"body":{"#, .badJSON, nil),
        ("[]", .badJSON, nil),
        (#"{"body":{}}"#, .missingField, "metadata"),
        (#"{"metadata":{},"body":{}}"#, .missingField, "metadata.event_name"),
        (#"{"metadata":{"event_name":"course_created"},"body":{}}"#, .unknownEvent, "metadata.event_name"),
        (#"{"metadata":{"event_name":7},"body":{}}"#, .wrongType, "metadata.event_name"),
        (#"{"metadata":{"event_name":"learning_outcome_created"}}"#, .missingField, "body"),
        (#"{"metadata":{"event_name":"learning_outcome_created"},"body":"x"}"#, .wrongType, "body"),
        (outcome(#""title":"no id""#), .missingField, "body.learning_outcome_id"),
        (outcome(#""learning_outcome_id":null"#), .missingField, "body.learning_outcome_id"),
        (outcome(#""learning_outcome_id":true"#), .wrongType, "body.learning_outcome_id"),
        (outcome(#""learning_outcome_id":"12a""#), .invalidValue, "body.learning_outcome_id"),
        (outcome(#""learning_outcome_id":"-12""#), .invalidValue, "body.learning_outcome_id"),
        (outcome(#""learning_outcome_id":12.5"#), .invalidValue, "body.learning_outcome_id"),
        (outcome(#""learning_outcome_id":"1","calculation_int":65.5"#), .invalidValue, "body.calculation_int"),
        (outcome(#""learning_outcome_id":"1","calculation_int":"65""#), .wrongType, "body.calculation_int"),
        (outcome(#""learning_outcome_id":"1","rubric_criterion":{"ratings":[{"points":3},{"description":"x"}]}"#),
         .missingField, "body.rubric_criterion.ratings[1].points"),
        (outcome(#""learning_outcome_id":"1","rubric_criterion":[]"#), .wrongType, "body.rubric_criterion"),
        (result(#""id":"7","learning_outcome_id":"80""#), .missingField, "body.user_uuid"),
        (result(#""id":"7","user_uuid":"u1""#), .missingField, "body.learning_outcome_id"),
        (result(#""id":"7","learning_outcome_id":"80","user_uuid":"u1","score":"5""#), .wrongType, "body.score"),
        (result(#""id":"7","learning_outcome_id":"80","user_uuid":"u1","mastery":"yes""#), .wrongType, "body.mastery"),
        (result(#""id":"7","learning_outcome_id":"80","user_uuid":"u1","assessed_at":"yesterday""#), .invalidValue, "body.assessed_at"),
        (result(#""id":"7","learning_outcome_id":"80","user_uuid":"u1","assessed_at":5"#), .wrongType, "body.assessed_at"),
        (result(#""id":"7","learning_outcome_id":"80","user_uuid":"u1","assessed_at":"2020-01-01T00:00:00""#),
         .invalidValue, "body.assessed_at"),
        (result(#""id":"x7","learning_outcome_id":"80","user_uuid":"u1""#), .invalidValue, "body.id"),
        (result(validResultBody, eventTime: "noon"), .invalidValue, "metadata.event_time"),
        (#"{"metadata":{"event_name":"outcome_proficiency_created"},"body":{"outcome_proficiency_id":"1","outcome_proficiency_ratings":{}}}"#,
         .wrongType, "body.outcome_proficiency_ratings"),
        (#"{"metadata":{"event_name":"outcome_proficiency_created"},"body":{"outcome_proficiency_id":"1","outcome_proficiency_ratings":[{"points":1,"mastery":1}]}}"#,
         .wrongType, "body.outcome_proficiency_ratings[0].mastery"),
        (#"{"metadata":{"event_name":"learning_outcome_link_created"},"body":{"learning_outcome_link_id":null}}"#,
         .missingField, "body.learning_outcome_link_id"),
        (#"{"metadata":{"event_name":"learning_outcome_group_created"},"body":{"learning_outcome_group_id":"1","parent_outcome_group_id":"p"}}"#,
         .invalidValue, "body.parent_outcome_group_id"),
    ]

    @Test(arguments: 0..<cases.count)
    func malformedEventIsATypedErrorNamingTheField(index: Int) {
        let (text, reason, field) = Self.cases[index]
        do {
            let event = try OutcomeEvent.parse(text: text)
            Issue.record("parsed \(event) from \(text)")
        } catch {
            #expect(error.reason == reason, "\(text)")
            #expect(error.field == field, "\(text)")
            let converted = error.learnStoreError
            #expect(converted.code == .validation)
            #expect(converted.field == field)
        }
    }

    /// Whatever parses must also encode and decode, so strings are capped at the codec's limits.
    @Test func overlongStringsAreRefused() {
        let longUUID = String(repeating: "u", count: 1025)
        #expect(throws: OutcomeEventError(.invalidValue, field: "body.user_uuid", "longer than 1024 bytes")) {
            try OutcomeEvent.parse(text: Self.result(#""id":"7","learning_outcome_id":"80","user_uuid":"\#(longUUID)""#))
        }
        let longText = String(repeating: "x", count: OutcomeCodec.maxStringBytes + 1)
        #expect(throws: OutcomeEventError(.invalidValue, field: "body.description", "longer than 1048576 bytes")) {
            try OutcomeEvent.parse(text: Self.outcome(#""learning_outcome_id":"1","description":"\#(longText)""#))
        }
        let atLimit = String(repeating: "x", count: OutcomeCodec.maxStringBytes)
        let event = parseEvent(Self.outcome(#""learning_outcome_id":"1","description":"\#(atLimit)""#))
        #expect(throws: Never.self) { try OutcomeRecord.decode(OutcomeRecord.entity(event.entity).encoded) }
    }

    @Test func theValidBaseOfTheResultCasesParses() throws {
        let event = try OutcomeEvent.parse(text: Self.result(Self.validResultBody))
        #expect(event.entity.key == "7")
    }
}

@Suite struct EventFieldSemanticsTests {
    @Test func missingKeyAndNullAreTheSame() throws {
        let absent = try OutcomeEvent.parse(text: MalformedEventTests.result(#""id":"7","learning_outcome_id":"80","user_uuid":"u1""#))
        let null = try OutcomeEvent.parse(text: MalformedEventTests.result(
            #""id":"7","learning_outcome_id":"80","user_uuid":"u1","score":null,"percent":null,"assessed_at":null"#))
        #expect(absent == null)
    }

    @Test func idsAbove2To53SurviveFromStringsAndFromNumberLiterals() throws {
        // 2^53 + 1 cannot be a Double; 21070000000000565123 does not even fit UInt64.
        let text = #"{"metadata":{"event_name":"learning_outcome_link_created","root_account_id":21070000000000001},"#
            + #""body":{"learning_outcome_link_id":9007199254740993,"learning_outcome_id":"21070000000000565123","#
            + #""learning_outcome_group_id":"0012","context_type":"Course","context_id":21070000000000565}}"#
        guard case .link(let link) = try OutcomeEvent.parse(text: text).entity else { Issue.record("not a link"); return }
        #expect(link.id == "9007199254740993")
        #expect(link.learningOutcomeID == "21070000000000565123")
        #expect(link.learningOutcomeGroupID == "0012", "kept as given")
        #expect(link.contextID == "21070000000000565")
        #expect(link.metadata.rootAccountID == "21070000000000001")
        let decoded = try OutcomeRecord.decode(OutcomeRecord.entity(.link(link)).encoded)
        #expect(decoded == .entity(.link(link)))

        var store = OutcomeStore()
        #expect(store.apply(.link(link)) == .applied)
        #expect(store.link(id: "9007199254740993") == link)
        #expect(store.link(id: "9007199254740992") == nil)
        #expect(store.links(forOutcome: "21070000000000565123").map(\.id) == ["9007199254740993"])
    }

    @Test func canvasIDOrderIsNumericForAnyLength() {
        let ids = ["21070000000000565123", "9", "0012", "12", "9007199254740993", "10", "syn:1:a", "9007199254740992"]
        let sorted = ids.sorted(by: CanvasID.precedes)
        #expect(sorted == ["9", "10", "0012", "12", "9007199254740992", "9007199254740993", "21070000000000565123", "syn:1:a"])
        #expect(ids.map(CanvasIDOrder.init).sorted().map(\.key) == sorted)
    }

    @Test func resultWithoutIDGetsASyntheticKeyFromStudentOutcomeAssetAndArtifact() throws {
        let body = #""learning_outcome_id":"80","user_uuid":"u|1","associated_asset_type":"Assignment","#
            + #""associated_asset_id":"56","artifact_type":"RubricAssessment","artifact_id":"22","score":2"#
        let event = try OutcomeEvent.parse(text: MalformedEventTests.result(body))
        guard case .result(let result) = event.entity else { Issue.record("not a result"); return }
        #expect(result.id == nil)
        #expect(result.key == "syn:3:u|12:8010:Assignment2:5616:RubricAssessment2:22")
        // Another artifact is another result; the same one is the same key, whatever the score.
        var other = result
        other.artifactID = "23"
        #expect(other.key != result.key)
        var rescored = result
        rescored.score = 4
        #expect(rescored.key == result.key)
    }

    @Test func integralFloatsAreAcceptedAsIntegers() throws {
        let text = MalformedEventTests.outcome(#""learning_outcome_id":"1","calculation_int":65.0"#)
        guard case .outcome(let outcome) = try OutcomeEvent.parse(text: text).entity else { Issue.record("no"); return }
        #expect(outcome.calculationInt == 65)
    }

    @Test func unknownWorkflowStatesAreKeptVerbatim() throws {
        let text = MalformedEventTests.outcome(#""learning_outcome_id":"1","workflow_state":"quarantined""#)
        let event = try OutcomeEvent.parse(text: text)
        #expect(event.entity.workflowState == "quarantined")
        #expect(!event.entity.isDeleted)
    }

    @Test func rawBytesParse() throws {
        let event = try OutcomeEvent.parse(bytes: Array(SeedPayloads.outcomeProficiencyUpdated.utf8))
        #expect(event.name == .outcomeProficiencyUpdated)
    }
}
