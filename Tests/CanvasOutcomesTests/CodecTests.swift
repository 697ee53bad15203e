import LearnStoreModel
import Testing
@testable import CanvasOutcomes

@Suite struct CodecTests {
    static let metadata = EventMetadata(eventTime: ts("2019-11-01T21:42:55.950Z"), rootAccountID: "21070000000000001",
                                        rootAccountUUID: "VicYj", rootAccountLtiGUID: "VicYj.oxana.instructure.com")

    /// Every field set, so a field the codec forgets fails the round trip.
    static let full: [OutcomeEntity] = [
        .outcome(LearningOutcome(
            id: "9007199254740993", contextType: "Course", contextID: "1234", contextUUID: "cu", title: "t",
            displayName: "d", shortDescription: "s", description: "<p>ü</p>", vendorGUID: "v",
            calculationMethod: "n_mastery", calculationInt: -3,
            rubricCriterion: RubricCriterion(description: "c", masteryPoints: 2.5, pointsPossible: 3,
                                             ratings: [RubricRating(description: "a", points: 3),
                                                       RubricRating(description: nil, points: -0.5)]),
            workflowState: "retired", copiedFromOutcomeID: "1", originalOutcomeRootAccountUUID: "o",
            createdAt: ts("2019-01-01T00:00:00Z"), updatedAt: ts("1969-12-31T23:59:59.999Z"), metadata: metadata)),
        .group(OutcomeGroup(
            id: "75033", contextType: "Course", contextID: "32054", contextUUID: "cu", title: "t", description: "d",
            vendorGUID: "123", parentOutcomeGroupID: "75032", parentOutcomeGroupContextUUID: "pu",
            workflowState: "archived", createdAt: ts("2019-11-01T00:00:00Z"), updatedAt: ts("2019-11-05T13:38:00.218Z"),
            metadata: metadata)),
        .link(OutcomeLink(
            id: "12345678", learningOutcomeID: "1201234", learningOutcomeGroupID: "123456",
            learningOutcomeContextUUID: "lu", learningOutcomeGroupContextUUID: "gu", contextType: "Course",
            contextID: "565", contextUUID: "cu", workflowState: "active", createdAt: ts("2019-11-01T19:12:01Z"),
            updatedAt: ts("2019-11-01T19:12:12.060Z"), metadata: metadata)),
        .result(OutcomeResult(
            id: "1", learningOutcomeID: "1", userUUID: "elXw", learningOutcomeContextUUID: "9dew",
            resultContextType: "Course", resultContextID: "1", resultContextUUID: "c3Jw", mastery: true, score: 5,
            possible: 5, percent: 0.1 + 0.2, attempt: 3, originalScore: 4, originalPossible: 5, originalMastery: false,
            workflowState: "active", createdAt: ts("2019-08-09T21:35:05Z"), updatedAt: ts("2019-11-01T00:21:24Z"),
            assessedAt: ts("2019-08-09T21:35:05Z"), submittedAt: ts("2019-08-09T21:30:00Z"), hidden: false,
            artifactID: "22", artifactType: "RubricAssessment", artifactCreatedAt: ts("2019-08-09T21:33:05Z"),
            artifactUpdatedAt: ts("2019-08-09T21:33:06Z"), associatedAssetID: "56", associatedAssetType: "Assignment",
            metadata: metadata)),
        .proficiency(OutcomeProficiency(
            id: "1", contextType: "Account", contextID: "1", workflowState: "active",
            ratings: [OutcomeProficiencyRating(id: "1", description: "Exceeds", points: 4, mastery: false,
                                               color: "02672D", workflowState: "active"),
                      OutcomeProficiencyRating(points: 3)],
            createdAt: ts("2020-08-18T23:28:24Z"), updatedAt: ts("2020-08-18T17:24:46-06:00"), metadata: metadata)),
    ]

    /// Only the required fields.
    static let minimal: [OutcomeEntity] = [
        .outcome(LearningOutcome(id: "1")),
        .group(OutcomeGroup(id: "1")),
        .link(OutcomeLink(id: "1")),
        .result(OutcomeResult(id: nil, learningOutcomeID: "1", userUUID: "")),
        .proficiency(OutcomeProficiency(id: "1")),
    ]

    static let tombstone = OutcomeTombstone(
        kind: .result, key: "syn:1:a",
        version: EntityVersion(stamp: VersionStamp(recordTime: ts("2020-01-01T00:00:00Z"), eventTime: nil),
                               digest: ContentDigest(high: .max, low: 7)))

    static var allRecords: [OutcomeRecord] {
        (full + minimal).map(OutcomeRecord.entity) + [.tombstone(tombstone)]
    }

    @Test(arguments: 0..<allRecords.count)
    func recordRoundTrips(index: Int) throws {
        let record = Self.allRecords[index]
        let bytes = record.encoded
        #expect(try OutcomeRecord.decode(bytes) == record)
    }

    @Test func entitiesAndTombstonesRoundTripOnTheirOwn() throws {
        for entity in Self.full + Self.minimal {
            var writer = ByteWriter()
            switch entity {
            case .outcome(let e):
                e.encode(into: &writer)
                #expect(try writer.bytes.decodeExactly { (r: inout ByteReader) throws(DecodeError) in try LearningOutcome.decode(from: &r) } == e)
            case .group(let e):
                e.encode(into: &writer)
                #expect(try writer.bytes.decodeExactly { (r: inout ByteReader) throws(DecodeError) in try OutcomeGroup.decode(from: &r) } == e)
            case .link(let e):
                e.encode(into: &writer)
                #expect(try writer.bytes.decodeExactly { (r: inout ByteReader) throws(DecodeError) in try OutcomeLink.decode(from: &r) } == e)
            case .result(let e):
                e.encode(into: &writer)
                #expect(try writer.bytes.decodeExactly { (r: inout ByteReader) throws(DecodeError) in try OutcomeResult.decode(from: &r) } == e)
            case .proficiency(let e):
                e.encode(into: &writer)
                #expect(try writer.bytes.decodeExactly { (r: inout ByteReader) throws(DecodeError) in try OutcomeProficiency.decode(from: &r) } == e)
            }
            #expect(writer.bytes.first == OutcomeCodec.formatVersion)
        }
        var writer = ByteWriter()
        Self.tombstone.encode(into: &writer)
        #expect(try writer.bytes.decodeExactly { (r: inout ByteReader) throws(DecodeError) in try OutcomeTombstone.decode(from: &r) } == Self.tombstone)
    }

    /// Every strict prefix of every record is refused with an error, never a crash or a wrong value.
    @Test func everyTruncationFailsCleanly() {
        for record in Self.allRecords {
            let bytes = record.encoded
            for length in 0..<bytes.count {
                #expect(throws: DecodeError.self) { try OutcomeRecord.decode(Array(bytes[..<length])) }
            }
        }
    }

    @Test func trailingBytesAreRefused() {
        let bytes = OutcomeRecord.entity(Self.full[0]).encoded + [0]
        #expect(throws: DecodeError.self) { try OutcomeRecord.decode(bytes) }
    }

    @Test func unknownFormatVersionTagAndFieldBitsAreRefused() throws {
        var bytes = OutcomeRecord.entity(Self.minimal[0]).encoded
        bytes[1] = OutcomeCodec.formatVersion + 1
        #expect(throws: DecodeError.self) { try OutcomeRecord.decode(bytes) }

        bytes = OutcomeRecord.entity(Self.minimal[0]).encoded
        bytes[0] = 9
        #expect(throws: DecodeError.self) { try OutcomeRecord.decode(bytes) }

        // Minimal outcome: tag, version, key "1" (2 bytes), then the u64 presence bitmap.
        bytes = OutcomeRecord.entity(Self.minimal[0]).encoded
        bytes[4 + 7] = 0x80
        #expect(throws: DecodeError.self) { try OutcomeRecord.decode(bytes) }
    }

    /// The layout is a contract with data already on disk: this golden value must not change silently.
    @Test func goldenBytesOfAMinimalOutcome() {
        #expect(OutcomeRecord.entity(.outcome(LearningOutcome(id: "12"))).encoded
            == [1, 1, 2, 0x31, 0x32, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(OutcomeRecord.entity(.outcome(LearningOutcome(id: "12", calculationInt: -1))).encoded
            == [1, 1, 2, 0x31, 0x32, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0x01])
    }

    @Test func digestIsStableAndContentSensitive() {
        let outcome = LearningOutcome(id: "12")
        #expect(outcome.digest == LearningOutcome(id: "12").digest)
        #expect(outcome.digest != LearningOutcome(id: "13").digest)
        #expect(outcome.digest != LearningOutcome(id: "12", title: "").digest)
        // Pinned: the digest orders equal-stamped versions, so it must not vary between processes or builds.
        #expect(ContentDigest(bytes: [UInt8]("abc".utf8)) == ContentDigest(bytes: [0x61, 0x62, 0x63]))
        #expect(ContentDigest(bytes: [UInt8]("abc".utf8)).high == 0xe71f_a219_0541_574b)
    }
}
