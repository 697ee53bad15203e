/// The binary encoding of LearningRecords and of create/patch bodies (docs/PROTOCOL.md, "Record
/// encoding"). The wire protocol, the WAL and snapshots all use it.
///
/// A record is a u32 presence bitmap (bit n = field n is present and not null, fields numbered as
/// ``RecordField``), then the present fields in field order. A body is a u32 "value" bitmap, a u32
/// "null" bitmap (fields explicitly sent as null), then the values in field order.
public enum RecordCodec {
    public static let maxStringBytes = 4096
    /// The fewest bytes a record can take: bitmap, id, tenant, times, source, flags, schema, person.
    public static let minimumRecordBytes = 4 + 16 + 1 + 8 + 8 + 1 + 1 + 1 + 1 + 16
    /// The fewest bytes a body can take: its two bitmaps.
    public static let minimumBodyBytes = 8

    // MARK: records

    public static func encode(_ record: LearningRecord, into writer: inout ByteWriter) {
        var bits: UInt32 = RecordField.id.bit | RecordField.tenantID.bit | RecordField.createdAt.bit
            | RecordField.updatedAt.bit | RecordField.source.bit | RecordField.sourceType.bit
            | RecordField.isDeleted.bit | RecordField.schemaVersion.bit | RecordField.personID.bit
        if record.appID != nil { bits |= RecordField.appID.bit }
        if record.createdBy != nil { bits |= RecordField.createdBy.bit }
        if record.updatedBy != nil { bits |= RecordField.updatedBy.bit }
        if record.deletedAt != nil { bits |= RecordField.deletedAt.bit }
        if record.deletedBy != nil { bits |= RecordField.deletedBy.bit }
        if record.title != nil { bits |= RecordField.title.bit }
        if record.provider != nil { bits |= RecordField.provider.bit }
        if record.completedAt != nil { bits |= RecordField.completedAt.bit }
        if record.expiresAt != nil { bits |= RecordField.expiresAt.bit }
        if record.score != nil { bits |= RecordField.score.bit }
        if record.passed != nil { bits |= RecordField.passed.bit }
        if record.certificationRef != nil { bits |= RecordField.certificationRef.bit }
        if record.linkedCohortID != nil { bits |= RecordField.linkedCohortID.bit }
        if record.linkedAssessmentID != nil { bits |= RecordField.linkedAssessmentID.bit }
        // One reservation for the whole record (see RawByteCursor).
        func size(_ string: String?) -> Int { string.map(RawByteCursor.maximumSize(of:)) ?? 0 }
        let maximum = RawByteCursor.recordFixedFieldsMaximum + size(record.tenantID) + size(record.appID) + size(record.source) + size(record.title)
            + size(record.provider) + size(record.certificationRef)
        writer.withReservedSpace(maximum: maximum) { out in
            out.writeU32(bits)
            out.writeRecordID(record.id)
            out.writeString(record.tenantID)
            if let v = record.appID { out.writeString(v) }
            out.writeI64(record.createdAt.milliseconds)
            out.writeI64(record.updatedAt.milliseconds)
            if let v = record.createdBy { out.writeUUID(v) }
            if let v = record.updatedBy { out.writeUUID(v) }
            out.writeString(record.source)
            out.writeU8(record.sourceType.rawValue)
            out.writeU8(record.isDeleted ? 1 : 0)
            if let v = record.deletedAt { out.writeI64(v.milliseconds) }
            if let v = record.deletedBy { out.writeUUID(v) }
            out.writeVarint(UInt64(record.schemaVersion))
            out.writeUUID(record.personID)
            if let v = record.title { out.writeString(v) }
            if let v = record.provider { out.writeString(v) }
            if let v = record.completedAt { out.writeI64(v.milliseconds) }
            if let v = record.expiresAt { out.writeI64(v.milliseconds) }
            if let v = record.score { out.writeDouble(v) }
            if let v = record.passed { out.writeU8(v ? 1 : 0) }
            if let v = record.certificationRef { out.writeString(v) }
            if let v = record.linkedCohortID { out.writeUUID(v) }
            if let v = record.linkedAssessmentID { out.writeUUID(v) }
        }
    }

    public static func encode(_ record: LearningRecord) -> [UInt8] {
        var writer = ByteWriter(capacity: 256)
        encode(record, into: &writer)
        return writer.bytes
    }

    public static func decodeRecord(from reader: inout ByteReader) throws(DecodeError) -> LearningRecord {
        let bits = try reader.readU32()
        let required: [RecordField] = [.id, .tenantID, .createdAt, .updatedAt, .source, .sourceType, .isDeleted,
                                       .schemaVersion, .personID]
        guard bits & ~RecordField.allBits == 0 else { throw reader.error("unknown field bits \(bits & ~RecordField.allBits)") }
        for field in required where bits & field.bit == 0 {
            throw reader.error("record lacks required field \(field.name)")
        }
        func has(_ field: RecordField) -> Bool { bits & field.bit != 0 }
        let id = try reader.readRecordID()
        let tenant = try reader.readString(limit: maxStringBytes)
        let app = has(.appID) ? try reader.readString(limit: maxStringBytes) : nil
        let created = try reader.readTimestamp()
        let updated = try reader.readTimestamp()
        let createdBy = has(.createdBy) ? try reader.readUUID() : nil
        let updatedBy = has(.updatedBy) ? try reader.readUUID() : nil
        let source = try reader.readString(limit: maxStringBytes)
        let sourceTypeByte = try reader.readU8()
        guard let sourceType = SourceType(rawValue: sourceTypeByte) else { throw reader.error("unknown source_type \(sourceTypeByte)") }
        let deleted = try readBool(&reader)
        let deletedAt = has(.deletedAt) ? try reader.readTimestamp() : nil
        let deletedBy = has(.deletedBy) ? try reader.readUUID() : nil
        let schema = try reader.readVarint()
        guard schema <= UInt64(UInt16.max) else { throw reader.error("schema_version out of range") }
        let person = try reader.readUUID()
        var record = LearningRecord(
            id: id, tenantID: tenant, appID: app, createdAt: created, updatedAt: updated, createdBy: createdBy,
            updatedBy: updatedBy, source: source, sourceType: sourceType, isDeleted: deleted, deletedAt: deletedAt,
            deletedBy: deletedBy, schemaVersion: Int(schema), personID: person)
        if has(.title) { record.title = try reader.readString(limit: maxStringBytes) }
        if has(.provider) { record.provider = try reader.readString(limit: maxStringBytes) }
        if has(.completedAt) { record.completedAt = try reader.readTimestamp() }
        if has(.expiresAt) { record.expiresAt = try reader.readTimestamp() }
        if has(.score) { record.score = try reader.readDouble() }
        if has(.passed) { record.passed = try readBool(&reader) }
        if has(.certificationRef) { record.certificationRef = try reader.readString(limit: maxStringBytes) }
        if has(.linkedCohortID) { record.linkedCohortID = try reader.readUUID() }
        if has(.linkedAssessmentID) { record.linkedAssessmentID = try reader.readUUID() }
        return record
    }

    public static func decodeRecord(_ bytes: [UInt8]) throws(DecodeError) -> LearningRecord {
        try bytes.withByteReader { (reader) throws(DecodeError) in
            let record = try decodeRecord(from: &reader)
            try reader.expectEnd()
            return record
        }
    }

    static func readBool(_ reader: inout ByteReader) throws(DecodeError) -> Bool {
        let byte = try reader.readU8()
        guard byte <= 1 else { throw reader.error("boolean byte must be 0 or 1, got \(byte)") }
        return byte == 1
    }

    // MARK: bodies

    public static func encode(_ body: RecordBody, into writer: inout ByteWriter) {
        var valueBits: UInt32 = 0
        var nullBits: UInt32 = 0
        func mark<T>(_ update: FieldUpdate<T>, _ field: RecordField) {
            switch update {
            case .absent: break
            case .null: nullBits |= field.bit
            case .value: valueBits |= field.bit
            }
        }
        mark(body.source, .source)
        mark(body.sourceType, .sourceType)
        mark(body.personID, .personID)
        mark(body.title, .title)
        mark(body.provider, .provider)
        mark(body.completedAt, .completedAt)
        mark(body.expiresAt, .expiresAt)
        mark(body.score, .score)
        mark(body.passed, .passed)
        mark(body.certificationRef, .certificationRef)
        mark(body.linkedCohortID, .linkedCohortID)
        mark(body.linkedAssessmentID, .linkedAssessmentID)
        // Stamped fields a caller tried to send travel as null bits, so the server can name them.
        for field in body.stampedFieldsSent { nullBits |= field.bit }
        writer.writeU32(valueBits)
        writer.writeU32(nullBits & ~valueBits)
        if case .value(let v) = body.source { writer.writeString(v) }
        if case .value(let v) = body.sourceType { writer.writeU8(v.rawValue) }
        if case .value(let v) = body.personID { writer.writeUUID(v) }
        if case .value(let v) = body.title { writer.writeString(v) }
        if case .value(let v) = body.provider { writer.writeString(v) }
        if case .value(let v) = body.completedAt { writer.writeI64(v.milliseconds) }
        if case .value(let v) = body.expiresAt { writer.writeI64(v.milliseconds) }
        if case .value(let v) = body.score { writer.writeDouble(v) }
        if case .value(let v) = body.passed { writer.writeU8(v ? 1 : 0) }
        if case .value(let v) = body.certificationRef { writer.writeString(v) }
        if case .value(let v) = body.linkedCohortID { writer.writeUUID(v) }
        if case .value(let v) = body.linkedAssessmentID { writer.writeUUID(v) }
    }

    /// Decodes a body. Server-stamped fields present in either bitmap are reported in
    /// `stampedFieldsSent` (their values are skipped), so validation can name them.
    public static func decodeBody(from reader: inout ByteReader) throws(DecodeError) -> RecordBody {
        let valueBits = try reader.readU32()
        let nullBits = try reader.readU32()
        guard (valueBits | nullBits) & ~RecordField.allBits == 0 else {
            throw reader.error("unknown field bits \((valueBits | nullBits) & ~RecordField.allBits)")
        }
        guard valueBits & nullBits == 0 else { throw reader.error("a field is both set and null") }
        var body = RecordBody()
        func state<T>(_ field: RecordField, _ read: (inout ByteReader) throws(DecodeError) -> T) throws(DecodeError) -> FieldUpdate<T> {
            if valueBits & field.bit != 0 { return .value(try read(&reader)) }
            if nullBits & field.bit != 0 { return .null }
            return .absent
        }
        for field in RecordField.allCases where field.isServerStamped && (valueBits | nullBits) & field.bit != 0 {
            body.stampedFieldsSent.append(field)
        }
        // Values of stamped fields are skipped with the same encoding a record uses.
        for field in [RecordField.id, .tenantID, .appID, .createdAt, .updatedAt, .createdBy, .updatedBy]
        where valueBits & field.bit != 0 {
            try skipValue(field, &reader)
        }
        body.source = try state(.source) { (r) throws(DecodeError) in try r.readString(limit: maxStringBytes) }
        body.sourceType = try state(.sourceType) { (r) throws(DecodeError) in
            let byte = try r.readU8()
            guard let value = SourceType(rawValue: byte) else { throw r.error("unknown source_type \(byte)") }
            return value
        }
        for field in [RecordField.isDeleted, .deletedAt, .deletedBy, .schemaVersion] where valueBits & field.bit != 0 {
            try skipValue(field, &reader)
        }
        body.personID = try state(.personID) { (r) throws(DecodeError) in try r.readUUID() }
        body.title = try state(.title) { (r) throws(DecodeError) in try r.readString(limit: maxStringBytes) }
        body.provider = try state(.provider) { (r) throws(DecodeError) in try r.readString(limit: maxStringBytes) }
        // Out-of-range body times are VALIDATION errors naming the field (RecordValidator.checkTime,
        // docs/PROTOCOL.md "The body encoding"), not malformed frames.
        body.completedAt = try state(.completedAt) { (r) throws(DecodeError) in Timestamp(milliseconds: try r.readI64()) }
        body.expiresAt = try state(.expiresAt) { (r) throws(DecodeError) in Timestamp(milliseconds: try r.readI64()) }
        body.score = try state(.score) { (r) throws(DecodeError) in try r.readDouble() }
        body.passed = try state(.passed) { (r) throws(DecodeError) in try readBool(&r) }
        body.certificationRef = try state(.certificationRef) { (r) throws(DecodeError) in try r.readString(limit: maxStringBytes) }
        body.linkedCohortID = try state(.linkedCohortID) { (r) throws(DecodeError) in try r.readUUID() }
        body.linkedAssessmentID = try state(.linkedAssessmentID) { (r) throws(DecodeError) in try r.readUUID() }
        return body
    }

    /// The id of the record at the reader; the rest of the record is skipped without building it
    /// (the load tool needs only the ids of the records a bulk load created).
    public static func decodeRecordIDSkippingRest(from reader: inout ByteReader) throws(DecodeError) -> RecordID {
        let bits = try reader.readU32()
        guard bits & ~RecordField.allBits == 0 else { throw reader.error("unknown field bits \(bits & ~RecordField.allBits)") }
        guard bits & RecordField.id.bit != 0 else { throw reader.error("record lacks required field id") }
        let id = try reader.readRecordID()
        for field in RecordField.allCases where field != .id && bits & field.bit != 0 {
            switch field {
            case .tenantID, .appID, .source, .title, .provider, .certificationRef:
                try reader.skip(try reader.readLength(limit: maxStringBytes))  // not validated: not used
            default:
                try skipValue(field, &reader)
            }
        }
        return id
    }

    static func skipValue(_ field: RecordField, _ reader: inout ByteReader) throws(DecodeError) {
        switch field {
        case .id, .createdBy, .updatedBy, .deletedBy, .personID, .linkedCohortID, .linkedAssessmentID:
            try reader.skip(16)
        case .tenantID, .appID, .source, .title, .provider, .certificationRef:
            _ = try reader.readString(limit: maxStringBytes)
        case .createdAt, .updatedAt, .deletedAt, .completedAt, .expiresAt, .score:
            try reader.skip(8)
        case .sourceType, .isDeleted, .passed:
            try reader.skip(1)
        case .schemaVersion:
            _ = try reader.readVarint()
        }
    }
}
