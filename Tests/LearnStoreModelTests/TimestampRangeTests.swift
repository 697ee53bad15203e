import LearnStoreModel
import Testing

/// Times outside the documented range never trap and never reach storage; leap seconds are refused.
@Suite struct TimestampRangeTests {
    static let outside: [Int64] = [
        .min, .max, 1 << 62, -(1 << 62), Timestamp.maximum.milliseconds + 1, Timestamp.minimum.milliseconds - 1,
        Timestamp.maximum.milliseconds + 86_400_000 * 366, Timestamp.minimum.milliseconds - 86_400_000 * 366,
    ]

    @Test(arguments: outside)
    func formattingAnyInt64OutsideTheRangePrintsTheRawNumber(milliseconds: Int64) {
        let text = Timestamp(milliseconds: milliseconds).rfc3339
        #expect(text == "\(milliseconds) ms (outside 0001-01-01 ... 9999-12-31)")
        #expect(Timestamp(milliseconds: milliseconds).description == text)
    }

    @Test func theRangeEndsStillFormatAsRFC3339() {
        #expect(Timestamp.maximum.rfc3339 == "9999-12-31T23:59:59.999Z")
        #expect(Timestamp.minimum.rfc3339 == "0001-01-01T00:00:00.000Z")
        #expect(Timestamp(milliseconds: -1).rfc3339 == "1969-12-31T23:59:59.999Z")
    }

    @Test func aLeapSecondIsRefusedWithAReason() throws {
        #expect(Timestamp(iso8601: "2016-12-31T23:59:60Z") == nil)
        #expect(Timestamp(iso8601: "2024-05-01T10:00:60+02:00") == nil)
        #expect(Timestamp(iso8601: "2024-05-01T10:00:61Z") == nil)
        let failure = #expect(throws: Timestamp.ParseFailure.self) { try Timestamp(validatingISO8601: "2024-05-01T10:00:60Z") }
        #expect(failure?.reason.contains("leap second") == true)
        #expect(Timestamp(iso8601: "2024-05-01T10:00:59.999Z")?.milliseconds == 1_714_557_659_999)
        // A malformed text with :60 in it is reported as malformed, not as a leap second.
        let malformed = #expect(throws: Timestamp.ParseFailure.self) { try Timestamp(validatingISO8601: "2024-05-01T10:00:60") }
        #expect(malformed?.reason.contains("leap second") == false)
    }

    @Test func aTextOutsideTheRangeSaysSo() {
        // 9999-12-31T23:59:59Z at -00:01 is one minute past the last instant.
        let failure = #expect(throws: Timestamp.ParseFailure.self) { try Timestamp(validatingISO8601: "9999-12-31T23:59:59-00:01") }
        #expect(failure?.reason.contains("outside") == true)
    }

    @Test func aLeapSecondInRecordJSONIsAValidationErrorNamingTheField() throws {
        let json = try JSONValue.parse(#"{"person_id":"5f0c1e2a-7b3d-4c9e-9a1b-000000000042","title":"t","completed_at":"2024-05-01T10:00:60Z"}"#)
        let error = #expect(throws: LearnStoreError.self) { try RecordBody(json: json) }
        #expect(error?.code == .validation)
        #expect(error?.field == "completed_at")
        #expect(error?.message.contains("leap second") == true, "\(String(describing: error))")
    }

    @Test(arguments: outside)
    func aTimeOutsideTheRangeIsMalformedAtItsOffset(milliseconds: Int64) throws {
        var writer = ByteWriter()
        writer.writeU8(7)
        writer.writeI64(milliseconds)
        let error = #expect(throws: DecodeError.self) {
            try writer.bytes.withByteReader { (r) throws(DecodeError) in
                _ = try r.readU8()
                return try r.readTimestamp()
            }
        }
        #expect(error?.offset == 1)
    }

    @Test func theRangeEndsDecode() throws {
        for value in [Timestamp.minimum, Timestamp.maximum, Timestamp(milliseconds: 0)] {
            var writer = ByteWriter()
            writer.writeI64(value.milliseconds)
            #expect(try writer.bytes.withByteReader { (r) throws(DecodeError) in try r.readTimestamp() } == value)
        }
    }

    @Test func aCountNoRemainingInputCouldHoldIsRefusedBeforeReserving() throws {
        var writer = ByteWriter()
        writer.writeVarint(1000)
        writer.writeBytes([UInt8](repeating: 0, count: 999 * 16))
        let error = #expect(throws: DecodeError.self) {
            try writer.bytes.withByteReader { (r) throws(DecodeError) in try r.readCount(limit: 1 << 20, minimumElementBytes: 16) }
        }
        #expect(error?.offset == 0)
        writer.writeBytes([UInt8](repeating: 0, count: 16))
        #expect(try writer.bytes.withByteReader { (r) throws(DecodeError) in try r.readCount(limit: 1 << 20, minimumElementBytes: 16) } == 1000)
    }

    @Test func aCursorWithATimeOutsideTheRangeIsNotOneThisServerIssued() {
        let cursor = ListCursor(createdAt: .max, id: RecordID(high: 1, low: 2), fingerprint: 3, order: .descending)
        let error = #expect(throws: LearnStoreError.self) { try ListCursor(bytes: cursor.bytes) }
        #expect(error?.field == "cursor")
    }
}
