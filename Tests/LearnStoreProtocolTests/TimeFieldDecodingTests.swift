import CanvasOutcomes
import LearnStoreModel
import LearnStoreProtocol
import Testing

/// Every `time` a request or response carries is checked against the documented range when it is
/// decoded (docs/PROTOCOL.md, section 1), so no formatter or sum downstream ever meets one outside it.
@Suite struct TimeFieldDecodingTests {
    static let outside: [Int64] = [1 << 62, -(1 << 62), .min, .max, Timestamp.maximum.milliseconds + 1, Timestamp.minimum.milliseconds - 1]

    static func decodeError<T>(_ bytes: [UInt8], _ body: (inout ByteReader) throws(DecodeError) -> T) -> DecodeError? {
        do {
            _ = try bytes.withByteReader(body)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: outside)
    func aPatchExpectingAnUpdatedAtOutsideTheRangeIsMalformed(milliseconds: Int64) throws {
        var writer = ByteWriter()
        writer.writeRecordID(RecordID(high: 1, low: 2))
        writer.writeU8(1)
        writer.writeI64(milliseconds)
        RecordCodec.encode(RecordBody(title: "t"), into: &writer)
        let error = try #require(Self.decodeError(writer.bytes) { (r) throws(DecodeError) in try RecordMessages.decodePatch(from: &r) })
        #expect(error.offset == 17, "the offset names expected_updated_at: \(error)")
        #expect(error.reason.contains("outside"))
    }

    @Test func aPatchExpectingTheRangeEndsDecodes() throws {
        for expected in [Timestamp.minimum, Timestamp.maximum] {
            var writer = ByteWriter()
            RecordMessages.encodePatch(RecordID(high: 1, low: 2), RecordBody(title: "t"), expectedUpdatedAt: expected, into: &writer)
            let decoded = try writer.bytes.withByteReader { (r) throws(DecodeError) in try RecordMessages.decodePatch(from: &r) }
            #expect(decoded.2 == expected)
        }
    }

    @Test(arguments: outside)
    func everyListQueryTimeIsRangeChecked(milliseconds: Int64) {
        let time = Timestamp(milliseconds: milliseconds)
        var queries: [ListQuery] = []
        for index in 0..<5 {
            var query = ListQuery(limit: 10)
            switch index {
            case 0: query.completedAt = TimeRange(from: time)
            case 1: query.completedAt = TimeRange(to: time)
            case 2: query.expiresAt = TimeRange(from: time)
            case 3: query.expiresAt = TimeRange(to: time)
            default: query.updatedSince = time
            }
            queries.append(query)
        }
        for query in queries {
            var writer = ByteWriter()
            ListQueryCodec.encode(query, into: &writer)
            let error = Self.decodeError(writer.bytes) { (r) throws(DecodeError) in try ListQueryCodec.decode(from: &r) }
            #expect(error?.offset == 6, "\(query)")
        }
    }

    @Test(arguments: outside)
    func aRecordWithATimeOutsideTheRangeIsMalformed(milliseconds: Int64) {
        // An IMPORT request, a WAL record and a server response all carry records in this encoding.
        var stamped = minimalRecord
        stamped.updatedAt = Timestamp(milliseconds: milliseconds)
        var deleted = minimalRecord
        deleted.deletedAt = Timestamp(milliseconds: milliseconds)
        var expiring = minimalRecord
        expiring.expiresAt = Timestamp(milliseconds: milliseconds)
        for record in [stamped, deleted, expiring] {
            let error = Self.decodeError(RecordCodec.encode(record)) { (r) throws(DecodeError) in try RecordCodec.decodeRecord(from: &r) }
            #expect(error?.reason.contains("outside") == true)
        }
        var writer = ByteWriter()
        AdminMessages.encodeImport(records: [stamped], outcomeRows: [], into: &writer)
        #expect(Self.decodeError(writer.bytes) { (r) throws(DecodeError) in try AdminMessages.decodeImport(from: &r) } != nil)
    }

    @Test func aBodyTimeOutsideTheRangeStillDecodesForValidationToName() throws {
        // docs/PROTOCOL.md 4.5: out-of-range body times are VALIDATION errors with the field.
        var writer = ByteWriter()
        RecordCodec.encode(RecordBody(completedAt: Timestamp(milliseconds: .max)), into: &writer)
        let body = try writer.bytes.withByteReader { (r) throws(DecodeError) in try RecordCodec.decodeBody(from: &r) }
        #expect(body.completedAt == .value(Timestamp(milliseconds: .max)))
    }

    @Test(arguments: outside)
    func resultsAssessedBetweenTimesOutsideTheRangeAreMalformed(milliseconds: Int64) {
        for scope in [ResultScope.assessedBetween(from: Timestamp(milliseconds: milliseconds), to: .maximum),
                      .assessedBetween(from: .minimum, to: Timestamp(milliseconds: milliseconds))] {
            var writer = ByteWriter()
            OutcomeMessages.encodeResults(scope, after: nil, limit: 10, into: &writer)
            #expect(Self.decodeError(writer.bytes) { (r) throws(DecodeError) in try OutcomeMessages.decodeResults(from: &r) } != nil)
        }
    }

    @Test func anAuthResponseExpiringOutsideTheRangeIsMalformed() {
        let identity = CallerIdentity(tenantID: "t", appID: nil, personID: samplePerson, scopes: [.recordsRead])
        var writer = ByteWriter()
        AuthResponse(identity: identity, expiresAt: Timestamp(milliseconds: .max)).encode(into: &writer)
        #expect(Self.decodeError(writer.bytes) { (r) throws(DecodeError) in try AuthResponse.decode(from: &r) } != nil)
    }

    @Test func aBatchCountNoPayloadCouldHoldIsRefusedBeforeReserving() {
        var writer = ByteWriter()
        writer.writeU8(0)
        writer.writeVarint(1000)
        RecordCodec.encode(RecordBody(title: "t"), into: &writer)
        let error = Self.decodeError(writer.bytes) { (r) throws(DecodeError) in try RecordMessages.decodeCreateBatch(from: &r, maximumCount: 1000) }
        #expect(error?.offset == 1)
        var list = ByteWriter()
        list.writeVarint(100_000)
        #expect(Self.decodeError(list.bytes) { (r) throws(DecodeError) in try RecordMessages.decodeListResponse(from: &r) }?.offset == 0)
    }
}
