import LearnStoreModel
import LearnStoreProtocol
import Testing

let samplePerson = UUID16("5f0c1e2a-7b3d-4c9e-9a1b-000000000042")!
let sampleCaller = UUID16("0b6d8a3e-2f41-4c7a-8e15-3d9c00a1b2c4")!

/// Every field set, so every presence bit and every value encoding is exercised.
let fullRecord = LearningRecord(
    id: RecordID(milliseconds: 1_750_000_000_000, randomHigh: 0x1234, randomLow: 0x0123_4567_89AB_CDEF), tenantID: "acme",
    appID: "lms", createdAt: Timestamp(milliseconds: 1_750_000_000_000), updatedAt: Timestamp(milliseconds: 1_750_000_123_456),
    createdBy: sampleCaller, updatedBy: UUID16(high: 2, low: 3), source: "import", sourceType: .backend, isDeleted: true,
    deletedAt: Timestamp(milliseconds: 1_750_000_200_000), deletedBy: UUID16(high: 4, low: 5), schemaVersion: 300,
    personID: samplePerson, title: "AWS Solutions Architect – Associate", provider: "AWS",
    completedAt: Timestamp(milliseconds: -62_135_596_800_000), expiresAt: Timestamp(milliseconds: 253_402_300_799_999),
    score: 88.5, passed: false, certificationRef: "CRED-AWS-1", linkedCohortID: UUID16(high: 6, low: 7),
    linkedAssessmentID: UUID16(high: 8, low: 9))

let minimalRecord = LearningRecord(
    id: RecordID(high: 1, low: 2), tenantID: "t", createdAt: Timestamp(milliseconds: 0), updatedAt: Timestamp(milliseconds: 0),
    personID: samplePerson)

let fullBody = RecordBody(
    personID: samplePerson, title: "AWS SAA", provider: "AWS", completedAt: Timestamp(milliseconds: 1_749_945_600_000),
    expiresAt: Timestamp(milliseconds: 1_844_553_600_000), score: 0, passed: true, certificationRef: "CRED-1",
    linkedCohortID: UUID16(high: 10, low: 11), linkedAssessmentID: UUID16(high: 12, low: 13), source: "lms", sourceType: .frontend)

/// A body that clears every nullable client field (a PATCH), plus two server-stamped fields it may not send.
let clearingBody: RecordBody = {
    var body = RecordBody()
    body.provider = .null
    body.completedAt = .null
    body.expiresAt = .null
    body.score = .null
    body.passed = .null
    body.certificationRef = .null
    body.linkedCohortID = .null
    body.linkedAssessmentID = .null
    body.title = .value("renamed")
    body.stampedFieldsSent = [.tenantID, .deletedAt]
    return body
}()

@Suite struct RecordMessageTests {
    static func fails<T>(_ bytes: [UInt8], _ body: (inout ByteReader) throws(DecodeError) -> T) -> Bool {
        ConnectionMessageTests.decodeError(bytes, body) != nil
    }

    @Test func recordsRoundTripAndEveryPresenceBitMatchesItsField() throws {
        for record in [fullRecord, minimalRecord] {
            let bytes = RecordCodec.encode(record)
            #expect(try RecordCodec.decodeRecord(bytes) == record)
            let present = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
            #expect(present == (record == fullRecord ? RecordField.allBits : 0b0011_0011_1001_1011))
            for cut in 0..<bytes.count { #expect(throws: DecodeError.self) { try RecordCodec.decodeRecord(Array(bytes[0..<cut])) } }
        }
        var unknownBit = RecordCodec.encode(minimalRecord)
        unknownBit[2] |= 0x80  // bit 23
        #expect(throws: DecodeError.self) { try RecordCodec.decodeRecord(unknownBit) }
        var missingRequired = RecordCodec.encode(minimalRecord)
        missingRequired[1] &= ~0x20  // bit 13, person_id
        let missing = #expect(throws: DecodeError.self) { try RecordCodec.decodeRecord(missingRequired) }
        #expect(missing?.reason == "record lacks required field person_id", "\(String(describing: missing))")
    }

    @Test func createRoundTripsWithAndWithoutAnIdempotencyKey() throws {
        for key in [nil, "k", String(repeating: "k", count: RecordMessages.maximumKeyBytes)] as [String?] {
            for body in [fullBody, RecordBody(personID: samplePerson, title: "t"), RecordBody()] {
                let bytes = encoded { RecordMessages.encodeCreate(body, idempotencyKey: key, into: &$0) }
                let (back, backKey) = try decoded(bytes) { (r) throws(DecodeError) in try RecordMessages.decodeCreate(from: &r) }
                #expect(back == body && backKey == key)
                #expect(bytes[0] == (key == nil ? 0 : 1))
                #expect(Self.fails(bytes + [0]) { (r) throws(DecodeError) in try RecordMessages.decodeCreate(from: &r) })
            }
        }
        let longKey = encoded { RecordMessages.encodeCreate(fullBody, idempotencyKey: String(repeating: "k", count: 129), into: &$0) }
        #expect(Self.fails(longKey) { (r) throws(DecodeError) in try RecordMessages.decodeCreate(from: &r) })
        var badFlag = encoded { RecordMessages.encodeCreate(fullBody, idempotencyKey: nil, into: &$0) }
        badFlag[0] = 2
        #expect(Self.fails(badFlag) { (r) throws(DecodeError) in try RecordMessages.decodeCreate(from: &r) })
    }

    @Test func bodiesCarryValuesNullsAndStampedFields() throws {
        let bytes = encoded { RecordMessages.encodeCreate(clearingBody, idempotencyKey: nil, into: &$0) }
        let (back, _) = try decoded(bytes) { (r) throws(DecodeError) in try RecordMessages.decodeCreate(from: &r) }
        #expect(back == clearingBody)
        // Stamped fields travel as null bits.
        let nulls = UInt32(bytes[5]) | UInt32(bytes[6]) << 8 | UInt32(bytes[7]) << 16 | UInt32(bytes[8]) << 24
        #expect(nulls & RecordField.tenantID.bit != 0 && nulls & RecordField.deletedAt.bit != 0)

        // A body may also carry values for stamped fields (a client echoing a record): they are skipped
        // with their record encoding and reported, and the fields after them still decode.
        var writer = ByteWriter()
        writer.writeU8(0)
        let stamped: [RecordField] = [.id, .appID, .createdAt, .createdBy, .isDeleted, .deletedAt, .schemaVersion]
        writer.writeU32(stamped.reduce(RecordField.title.bit | RecordField.sourceType.bit) { $0 | $1.bit })
        writer.writeU32(RecordField.updatedBy.bit)
        writer.writeRecordID(RecordID(high: 9, low: 9))  // id
        writer.writeString("app")  // app_id
        writer.writeI64(5)  // created_at
        writer.writeUUID(sampleCaller)  // created_by
        writer.writeU8(SourceType.system.rawValue)  // source_type
        writer.writeU8(1)  // is_deleted
        writer.writeI64(6)  // deleted_at
        writer.writeVarint(300)  // schema_version
        writer.writeString("kept")  // title
        let (echo, _) = try decoded(writer.bytes) { (r) throws(DecodeError) in try RecordMessages.decodeCreate(from: &r) }
        #expect(echo.title == .value("kept") && echo.sourceType == .value(.system))
        #expect(echo.stampedFieldsSent == [.id, .appID, .createdAt, .createdBy, .updatedBy, .isDeleted, .deletedAt, .schemaVersion])

        let both = encoded { w in w.writeU8(0); w.writeU32(RecordField.title.bit); w.writeU32(RecordField.title.bit); w.writeString("x") }
        #expect(Self.fails(both) { (r) throws(DecodeError) in try RecordMessages.decodeCreate(from: &r) }, "a bit set in both bitmaps")
        let high = encoded { w in w.writeU8(0); w.writeU32(0); w.writeU32(1 << 23) }
        #expect(Self.fails(high) { (r) throws(DecodeError) in try RecordMessages.decodeCreate(from: &r) }, "a bit above 22")
        let badSource = encoded { w in w.writeU8(0); w.writeU32(RecordField.sourceType.bit); w.writeU32(0); w.writeU8(5) }
        #expect(Self.fails(badSource) { (r) throws(DecodeError) in try RecordMessages.decodeCreate(from: &r) })
        let badPassed = encoded { w in w.writeU8(0); w.writeU32(RecordField.passed.bit); w.writeU32(0); w.writeU8(2) }
        #expect(Self.fails(badPassed) { (r) throws(DecodeError) in try RecordMessages.decodeCreate(from: &r) })
    }

    @Test func createBatchRoundTripsUpToItsCount() throws {
        let bodies = [fullBody, clearingBody, RecordBody(personID: samplePerson, title: "third")]
        let bytes = encoded { RecordMessages.encodeCreateBatch(bodies, idempotencyKey: "batch-1", into: &$0) }
        let (back, key) = try decoded(bytes) { (r) throws(DecodeError) in try RecordMessages.decodeCreateBatch(from: &r, maximumCount: 3) }
        #expect(back == bodies && key == "batch-1")
        #expect(Self.fails(bytes) { (r) throws(DecodeError) in try RecordMessages.decodeCreateBatch(from: &r, maximumCount: 2) })
        #expect(Self.fails(bytes + [0]) { (r) throws(DecodeError) in try RecordMessages.decodeCreateBatch(from: &r, maximumCount: 3) })
        let empty = encoded { RecordMessages.encodeCreateBatch([], idempotencyKey: nil, into: &$0) }
        #expect(try decoded(empty) { (r) throws(DecodeError) in try RecordMessages.decodeCreateBatch(from: &r, maximumCount: 3) }.0.isEmpty,
                "count 0 is well-formed; the engine answers VALIDATION")
    }

    @Test func idPatchAndPurgeRoundTrip() throws {
        let id = fullRecord.id
        let idBytes = encoded { $0.writeRecordID(id) }
        #expect(idBytes == id.bytes)
        #expect(try decoded(idBytes) { (r) throws(DecodeError) in try RecordMessages.decodeID(from: &r) } == id)
        #expect(Self.fails(Array(idBytes.dropLast())) { (r) throws(DecodeError) in try RecordMessages.decodeID(from: &r) })
        #expect(Self.fails(idBytes + [0]) { (r) throws(DecodeError) in try RecordMessages.decodeID(from: &r) })

        for expected in [nil, Timestamp(milliseconds: 1_750_000_123_456)] as [Timestamp?] {
            let bytes = encoded { RecordMessages.encodePatch(id, clearingBody, expectedUpdatedAt: expected, into: &$0) }
            let (backID, body, backExpected) = try decoded(bytes) { (r) throws(DecodeError) in try RecordMessages.decodePatch(from: &r) }
            #expect(backID == id && body == clearingBody && backExpected == expected)
            var badFlag = bytes
            badFlag[16] = 2
            #expect(Self.fails(badFlag) { (r) throws(DecodeError) in try RecordMessages.decodePatch(from: &r) })
        }

        for dryRun in [false, true] {
            let bytes = encoded { RecordMessages.encodePurge(samplePerson, dryRun: dryRun, into: &$0) }
            #expect(bytes == samplePerson.bytes + [dryRun ? 1 : 0])
            let (person, backDryRun) = try decoded(bytes) { (r) throws(DecodeError) in try RecordMessages.decodePurge(from: &r) }
            #expect(person == samplePerson && backDryRun == dryRun)
        }
        #expect(Self.fails(samplePerson.bytes + [2]) { (r) throws(DecodeError) in try RecordMessages.decodePurge(from: &r) })
    }

    @Test func writeBatchAndListResponsesRoundTrip() throws {
        for (hasReplayed, replayed) in [(true, true), (true, false), (false, false)] {
            let bytes = encoded { w in
                w.writeU64(42)
                if hasReplayed { w.writeU8(replayed ? 1 : 0) }
                RecordCodec.encode(fullRecord, into: &w)
            }
            let (sequence, backReplayed, record) = try decoded(bytes) { (r) throws(DecodeError) in
                try RecordMessages.decodeWriteResponse(from: &r, hasReplayed: hasReplayed)
            }
            #expect(sequence == 42 && backReplayed == replayed && record == fullRecord)
        }
        let batch = encoded { w in
            w.writeU64(.max)
            w.writeU8(1)
            w.writeVarint(2)
            RecordCodec.encode(fullRecord, into: &w)
            RecordCodec.encode(minimalRecord, into: &w)
        }
        let (sequence, replayed, records) = try decoded(batch) { (r) throws(DecodeError) in try RecordMessages.decodeBatchResponse(from: &r) }
        #expect(sequence == .max && replayed && records == [fullRecord, minimalRecord])
        // The ids-only reading a bulk loader uses walks the same bytes to the same ids.
        let (idsSequence, _, ids) = try decoded(batch) { (r) throws(DecodeError) in try RecordMessages.decodeBatchResponseIDs(from: &r) }
        #expect(idsSequence == .max && ids == [fullRecord.id, minimalRecord.id])
        let truncated = Array(batch.dropLast(3))
        #expect(throws: DecodeError.self) { _ = try decoded(truncated) { (r) throws(DecodeError) in try RecordMessages.decodeBatchResponseIDs(from: &r) } }

        let cursor = ListCursor(createdAt: 1_750_000_000_000, id: fullRecord.id, fingerprint: 0xFEED, order: .ascending)
        for next in [[], cursor.bytes] {
            let bytes = encoded { w in
                w.writeVarint(2)
                RecordCodec.encode(minimalRecord, into: &w)
                RecordCodec.encode(fullRecord, into: &w)
                w.writeLengthPrefixed(next)
            }
            let (listed, backCursor) = try decoded(bytes) { (r) throws(DecodeError) in try RecordMessages.decodeListResponse(from: &r) }
            #expect(listed == [minimalRecord, fullRecord] && backCursor == next)
            #expect(Self.fails(bytes + [0]) { (r) throws(DecodeError) in try RecordMessages.decodeListResponse(from: &r) })
        }
        #expect(try ListCursor(bytes: cursor.bytes) == cursor)
        #expect(cursor.bytes.count == 34)
    }
}

/// The list query (docs/PROTOCOL.md, "The list query"): one test per filter bit, and all together.
@Suite struct ListQueryCodecTests {
    static let cursor = ListCursor(createdAt: 1_750_000_000_000, id: RecordID(high: 3, low: 4), fingerprint: 77, order: .ascending)

    /// The query with only filter `bit` set, and the bytes its value takes.
    static func query(bit: Int) -> (ListQuery, valueBytes: [UInt8]) {
        var query = ListQuery(limit: 25)
        var value = ByteWriter()
        switch bit {
        case 0: query.personID = samplePerson; value.writeUUID(samplePerson)
        case 1: query.certificationRef = "CRED-1"; value.writeString("CRED-1")
        case 2: query.linkedCohortID = UUID16(high: 2, low: 2); value.writeUUID(UUID16(high: 2, low: 2))
        case 3: query.linkedAssessmentID = UUID16(high: 3, low: 3); value.writeUUID(UUID16(high: 3, low: 3))
        case 4: query.provider = "AWS"; value.writeString("AWS")
        case 5: query.passed = false; value.writeU8(0)
        case 6: query.completedAt = TimeRange(from: Timestamp(milliseconds: 6)); value.writeI64(6)
        case 7: query.completedAt = TimeRange(to: Timestamp(milliseconds: 7)); value.writeI64(7)
        case 8: query.expiresAt = TimeRange(from: Timestamp(milliseconds: 8)); value.writeI64(8)
        case 9: query.expiresAt = TimeRange(to: Timestamp(milliseconds: -9)); value.writeI64(-9)
        case 10: query.updatedSince = Timestamp(milliseconds: 10); value.writeI64(10)
        case 11: query.includeDeleted = true
        case 12: query.order = .ascending
        case 13: query.cursor = cursor; value.writeLengthPrefixed(cursor.bytes)
        default: Issue.record("no filter bit \(bit)")
        }
        return (query, value.bytes)
    }

    static func decode(_ bytes: [UInt8]) throws -> ListQuery {
        let (query, cursorBytes) = try decoded(bytes) { (r) throws(DecodeError) in try ListQueryCodec.decode(from: &r) }
        var full = query
        if let cursorBytes { full.cursor = try ListCursor(bytes: cursorBytes) }
        return full
    }

    @Test(arguments: 0...13)
    func eachFilterBitRoundTripsAlone(bit: Int) throws {
        let (query, valueBytes) = Self.query(bit: bit)
        let bytes = encoded { ListQueryCodec.encode(query, into: &$0) }
        #expect(bytes == [25, 0] + withUnsafeBytes(of: (UInt32(1) << UInt32(bit)).littleEndian, Array.init) + valueBytes)
        #expect(try Self.decode(bytes) == query)
        #expect(ConnectionMessageTests.decodeError(bytes + [0]) { (r) throws(DecodeError) in try ListQueryCodec.decode(from: &r) } != nil)
        if !valueBytes.isEmpty {
            #expect(ConnectionMessageTests.decodeError(Array(bytes.dropLast())) { (r) throws(DecodeError) in try ListQueryCodec.decode(from: &r) } != nil)
        }
    }

    @Test func everyFilterTogetherWritesValuesInBitOrder() throws {
        var query = ListQuery(limit: 1000)
        var values: [UInt8] = []
        for bit in 0...13 {
            let (single, valueBytes) = Self.query(bit: bit)
            values += valueBytes
            query.personID = query.personID ?? single.personID
            query.certificationRef = query.certificationRef ?? single.certificationRef
            query.linkedCohortID = query.linkedCohortID ?? single.linkedCohortID
            query.linkedAssessmentID = query.linkedAssessmentID ?? single.linkedAssessmentID
            query.provider = query.provider ?? single.provider
            query.passed = query.passed ?? single.passed
            if let range = single.completedAt { query.completedAt = TimeRange(from: range.from ?? query.completedAt?.from, to: range.to ?? query.completedAt?.to) }
            if let range = single.expiresAt { query.expiresAt = TimeRange(from: range.from ?? query.expiresAt?.from, to: range.to ?? query.expiresAt?.to) }
            query.updatedSince = query.updatedSince ?? single.updatedSince
            query.includeDeleted = query.includeDeleted || single.includeDeleted
            if single.order == .ascending { query.order = .ascending }
            query.cursor = query.cursor ?? single.cursor
        }
        let bytes = encoded { ListQueryCodec.encode(query, into: &$0) }
        #expect(bytes == [0xE8, 0x03, 0xFF, 0x3F, 0, 0] + values)
        #expect(try Self.decode(bytes) == query)
    }

    @Test func limitsUnknownBitsAndBadValues() throws {
        #expect(try Self.decode([0, 0, 0, 0, 0, 0]).limit == ListQuery.defaultLimit, "limit 0 means the default")
        #expect(try Self.decode([0xFF, 0xFF, 0, 0, 0, 0]).limit == 65535, "the engine, not the codec, enforces 1-1000")
        #expect(try Self.decode([1, 0, 0, 0, 0, 0]) == ListQuery(limit: 1))
        for bit in 14..<32 {
            let bytes = [10, 0] + withUnsafeBytes(of: (UInt32(1) << UInt32(bit)).littleEndian, Array.init)
            #expect(ConnectionMessageTests.decodeError(bytes) { (r) throws(DecodeError) in try ListQueryCodec.decode(from: &r) }?.offset == 6)
        }
        #expect(ConnectionMessageTests.decodeError([10, 0, 0x20, 0, 0, 0, 2]) { (r) throws(DecodeError) in try ListQueryCodec.decode(from: &r) } != nil,
                "passed must be 0 or 1")
        let longCursor = [10, 0, 0, 0x20, 0, 0, 0x81, 0x08] + [UInt8](repeating: 0, count: 1025)
        #expect(ConnectionMessageTests.decodeError(longCursor) { (r) throws(DecodeError) in try ListQueryCodec.decode(from: &r) } != nil)
        // A well-framed cursor that this server never issued is the engine's VALIDATION, not a decode error.
        let (_, cursorBytes) = try decoded([10, 0, 0, 0x20, 0, 0, 3, 1, 2, 3]) { (r) throws(DecodeError) in try ListQueryCodec.decode(from: &r) }
        #expect(cursorBytes == [1, 2, 3])
        #expect(throws: LearnStoreError.self) { try ListCursor(bytes: [1, 2, 3]) }
    }
}
