import LearnStoreModel

/// Payloads of the LearningRecord opcodes (docs/PROTOCOL.md, section 4.5).
public enum RecordMessages {
    public static let maximumKeyBytes = 128

    // MARK: requests

    public static func encodeCreate(_ body: RecordBody, idempotencyKey: String?, into writer: inout ByteWriter) {
        writeKey(idempotencyKey, &writer)
        RecordCodec.encode(body, into: &writer)
    }

    public static func decodeCreate(from reader: inout ByteReader) throws(DecodeError) -> (RecordBody, String?) {
        let key = try readKey(&reader)
        let body = try RecordCodec.decodeBody(from: &reader)
        try reader.expectEnd()
        return (body, key)
    }

    public static func encodeCreateBatch(_ bodies: [RecordBody], idempotencyKey: String?, into writer: inout ByteWriter) {
        writeKey(idempotencyKey, &writer)
        writer.writeVarint(UInt64(bodies.count))
        for body in bodies { RecordCodec.encode(body, into: &writer) }
    }

    public static func decodeCreateBatch(from reader: inout ByteReader, maximumCount: Int) throws(DecodeError) -> ([RecordBody], String?) {
        let key = try readKey(&reader)
        let count = try reader.readCount(limit: maximumCount, minimumElementBytes: RecordCodec.minimumBodyBytes)
        var bodies: [RecordBody] = []
        bodies.reserveCapacity(count)
        for _ in 0..<count { bodies.append(try RecordCodec.decodeBody(from: &reader)) }
        try reader.expectEnd()
        return (bodies, key)
    }

    public static func decodeID(from reader: inout ByteReader) throws(DecodeError) -> RecordID {
        let id = try reader.readRecordID()
        try reader.expectEnd()
        return id
    }

    public static func encodePatch(_ id: RecordID, _ body: RecordBody, expectedUpdatedAt: Timestamp?, into writer: inout ByteWriter) {
        writer.writeRecordID(id)
        if let expectedUpdatedAt {
            writer.writeU8(1)
            writer.writeI64(expectedUpdatedAt.milliseconds)
        } else {
            writer.writeU8(0)
        }
        RecordCodec.encode(body, into: &writer)
    }

    public static func decodePatch(from reader: inout ByteReader) throws(DecodeError) -> (RecordID, RecordBody, Timestamp?) {
        let id = try reader.readRecordID()
        let expected = try readBool(&reader) ? try reader.readTimestamp() : nil
        let body = try RecordCodec.decodeBody(from: &reader)
        try reader.expectEnd()
        return (id, body, expected)
    }

    public static func encodePurge(_ person: UUID16, dryRun: Bool, into writer: inout ByteWriter) {
        writer.writeUUID(person)
        writer.writeU8(dryRun ? 1 : 0)
    }

    public static func decodePurge(from reader: inout ByteReader) throws(DecodeError) -> (UUID16, Bool) {
        let person = try reader.readUUID()
        let dryRun = try readBool(&reader)
        try reader.expectEnd()
        return (person, dryRun)
    }

    static func writeKey(_ key: String?, _ writer: inout ByteWriter) {
        if let key {
            writer.writeU8(1)
            writer.writeString(key)
        } else {
            writer.writeU8(0)
        }
    }

    static func readKey(_ reader: inout ByteReader) throws(DecodeError) -> String? {
        try readBool(&reader) ? try reader.readString(limit: maximumKeyBytes) : nil
    }

    static func readBool(_ reader: inout ByteReader) throws(DecodeError) -> Bool {
        let byte = try reader.readU8()
        guard byte <= 1 else { throw DecodeError(offset: reader.offset - 1, reason: "boolean byte must be 0 or 1, got \(byte)") }
        return byte == 1
    }

    // MARK: responses

    /// CREATE: `u64 sequence`, `u8 replayed`, `record`. PATCH, DELETE, RESTORE: the same without `replayed`.
    public static func encodeWriteResponse(sequence: UInt64, replayed: Bool?, _ record: LearningRecord, into writer: inout ByteWriter) {
        writer.writeU64(sequence)
        if let replayed { writer.writeU8(replayed ? 1 : 0) }
        RecordCodec.encode(record, into: &writer)
    }

    /// CREATE_BATCH: `u64 sequence`, `u8 replayed`, `varint count`, the records in request order.
    public static func encodeBatchResponse(sequence: UInt64, replayed: Bool, _ records: [LearningRecord], into writer: inout ByteWriter) {
        writer.writeU64(sequence)
        writer.writeU8(replayed ? 1 : 0)
        writer.writeVarint(UInt64(records.count))
        for record in records { RecordCodec.encode(record, into: &writer) }
    }

    /// PURGE_PERSON: `u64 sequence`, `u64 count`.
    public static func encodePurgeResponse(sequence: UInt64, count: Int, into writer: inout ByteWriter) {
        writer.writeU64(sequence)
        writer.writeU64(UInt64(count))
    }

    public static func decodePurgeResponse(from reader: inout ByteReader) throws(DecodeError) -> (UInt64, Int) {
        let sequence = try reader.readU64()
        let start = reader.offset
        guard let count = Int(exactly: try reader.readU64()) else { throw DecodeError(offset: start, reason: "count out of range") }
        try reader.expectEnd()
        return (sequence, count)
    }

    /// A write response: sequence, then (for creates) the replayed flag, then the record(s).
    public static func decodeWriteResponse(from reader: inout ByteReader, hasReplayed: Bool) throws(DecodeError) -> (UInt64, Bool, LearningRecord) {
        let sequence = try reader.readU64()
        let replayed = hasReplayed ? try readBool(&reader) : false
        let record = try RecordCodec.decodeRecord(from: &reader)
        try reader.expectEnd()
        return (sequence, replayed, record)
    }

    public static func decodeBatchResponse(from reader: inout ByteReader) throws(DecodeError) -> (UInt64, Bool, [LearningRecord]) {
        try decodeBatch(from: &reader) { (r) throws(DecodeError) in try RecordCodec.decodeRecord(from: &r) }
    }

    /// A CREATE_BATCH response reduced to the created records' ids (for bulk loaders).
    public static func decodeBatchResponseIDs(from reader: inout ByteReader) throws(DecodeError) -> (UInt64, Bool, [RecordID]) {
        try decodeBatch(from: &reader) { (r) throws(DecodeError) in try RecordCodec.decodeRecordIDSkippingRest(from: &r) }
    }

    /// `u64 sequence`, `u8 replayed`, `varint count`, then `count` records read by `element`.
    private static func decodeBatch<T>(
        from reader: inout ByteReader, element: (inout ByteReader) throws(DecodeError) -> T
    ) throws(DecodeError) -> (UInt64, Bool, [T]) {
        let sequence = try reader.readU64()
        let replayed = try readBool(&reader)
        let count = try reader.readCount(limit: 100_000, minimumElementBytes: RecordCodec.minimumRecordBytes)
        var items: [T] = []
        items.reserveCapacity(count)
        for _ in 0..<count { items.append(try element(&reader)) }
        try reader.expectEnd()
        return (sequence, replayed, items)
    }

    /// LIST: `varint count`, the records, `bytes next_cursor` (empty on the last page). The server
    /// writes its records straight from storage, so the page is written in three steps by the caller
    /// that holds them: ``ListResponseWriter``.
    public static func decodeListResponse(from reader: inout ByteReader) throws(DecodeError) -> ([LearningRecord], [UInt8]) {
        let count = try reader.readCount(limit: 100_000, minimumElementBytes: RecordCodec.minimumRecordBytes)
        var records: [LearningRecord] = []
        records.reserveCapacity(count)
        for _ in 0..<count { records.append(try RecordCodec.decodeRecord(from: &reader)) }
        let cursorLength = try reader.readLength(limit: 1024)
        let cursor = Array(try reader.readBytes(cursorLength))
        try reader.expectEnd()
        return (records, cursor)
    }
}

/// The list query's wire form (docs/PROTOCOL.md, "The list query").
public enum ListQueryCodec {
    enum Bit: UInt32 {
        case person = 0, certificationRef, cohort, assessment, provider, passed, completedFrom, completedTo
        case expiresFrom, expiresTo, updatedSince, includeDeleted, ascending, cursor
        var mask: UInt32 { 1 << rawValue }
    }

    static let knownBits: UInt32 = (1 << 14) - 1

    public static func encode(_ query: ListQuery, into writer: inout ByteWriter) {
        var bits: UInt32 = 0
        if query.personID != nil { bits |= Bit.person.mask }
        if query.certificationRef != nil { bits |= Bit.certificationRef.mask }
        if query.linkedCohortID != nil { bits |= Bit.cohort.mask }
        if query.linkedAssessmentID != nil { bits |= Bit.assessment.mask }
        if query.provider != nil { bits |= Bit.provider.mask }
        if query.passed != nil { bits |= Bit.passed.mask }
        if query.completedAt?.from != nil { bits |= Bit.completedFrom.mask }
        if query.completedAt?.to != nil { bits |= Bit.completedTo.mask }
        if query.expiresAt?.from != nil { bits |= Bit.expiresFrom.mask }
        if query.expiresAt?.to != nil { bits |= Bit.expiresTo.mask }
        if query.updatedSince != nil { bits |= Bit.updatedSince.mask }
        if query.includeDeleted { bits |= Bit.includeDeleted.mask }
        if query.order == .ascending { bits |= Bit.ascending.mask }
        if query.cursor != nil { bits |= Bit.cursor.mask }
        writer.writeU16(UInt16(clamping: query.limit))
        writer.writeU32(bits)
        if let v = query.personID { writer.writeUUID(v) }
        if let v = query.certificationRef { writer.writeString(v) }
        if let v = query.linkedCohortID { writer.writeUUID(v) }
        if let v = query.linkedAssessmentID { writer.writeUUID(v) }
        if let v = query.provider { writer.writeString(v) }
        if let v = query.passed { writer.writeU8(v ? 1 : 0) }
        if let v = query.completedAt?.from { writer.writeI64(v.milliseconds) }
        if let v = query.completedAt?.to { writer.writeI64(v.milliseconds) }
        if let v = query.expiresAt?.from { writer.writeI64(v.milliseconds) }
        if let v = query.expiresAt?.to { writer.writeI64(v.milliseconds) }
        if let v = query.updatedSince { writer.writeI64(v.milliseconds) }
        if let v = query.cursor { writer.writeLengthPrefixed(v.bytes) }
    }

    /// Decodes a query; a malformed cursor is reported as a validation error by the engine, so here it
    /// only needs to be well-framed bytes.
    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> (ListQuery, cursorBytes: [UInt8]?) {
        let limit = try reader.readU16()
        let bits = try reader.readU32()
        guard bits & ~knownBits == 0 else { throw reader.error("unknown filter bits \(bits & ~knownBits)") }
        func has(_ bit: Bit) -> Bool { bits & bit.mask != 0 }
        var query = ListQuery(limit: limit == 0 ? ListQuery.defaultLimit : Int(limit))
        if has(.person) { query.personID = try reader.readUUID() }
        if has(.certificationRef) { query.certificationRef = try reader.readString(limit: RecordCodec.maxStringBytes) }
        if has(.cohort) { query.linkedCohortID = try reader.readUUID() }
        if has(.assessment) { query.linkedAssessmentID = try reader.readUUID() }
        if has(.provider) { query.provider = try reader.readString(limit: RecordCodec.maxStringBytes) }
        if has(.passed) { query.passed = try RecordMessages.readBool(&reader) }
        func time() throws(DecodeError) -> Timestamp { try reader.readTimestamp() }
        if has(.completedFrom) || has(.completedTo) {
            var range = TimeRange()
            if has(.completedFrom) { range.from = try time() }
            if has(.completedTo) { range.to = try time() }
            query.completedAt = range
        }
        if has(.expiresFrom) || has(.expiresTo) {
            var range = TimeRange()
            if has(.expiresFrom) { range.from = try time() }
            if has(.expiresTo) { range.to = try time() }
            query.expiresAt = range
        }
        if has(.updatedSince) { query.updatedSince = try time() }
        query.includeDeleted = has(.includeDeleted)
        query.order = has(.ascending) ? .ascending : .descending
        var cursor: [UInt8]?
        if has(.cursor) {
            let length = try reader.readLength(limit: 1024)
            cursor = Array(try reader.readBytes(length))
        }
        try reader.expectEnd()
        return (query, cursor)
    }
}

/// Writes a LIST response whose records come from a source that encodes them itself (the engine
/// writes records from its slots without building values): the count, each record, then the cursor.
public struct ListResponseWriter {
    public init(count: Int, into writer: inout ByteWriter) {
        writer.writeVarint(UInt64(count))
    }

    public func record(_ record: LearningRecord, into writer: inout ByteWriter) {
        RecordCodec.encode(record, into: &writer)
    }

    public func finish(nextCursor: [UInt8]?, into writer: inout ByteWriter) {
        if let nextCursor { writer.writeLengthPrefixed(nextCursor) } else { writer.writeVarint(0) }
    }
}
