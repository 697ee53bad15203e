import CanvasOutcomes
import LearnStoreEngine
import LearnStoreModel

/// The logical content of a snapshot before compression: tagged sections (docs/STORAGE-FORMAT.md).
/// Pure encoding and decoding; no I/O.
public enum SnapshotStream {
    static let endTag: UInt8 = 0
    static let stringsTag: UInt8 = 1
    static let uuidsTag: UInt8 = 2
    static let personsTag: UInt8 = 3
    static let recordsTag: UInt8 = 4
    static let idempotencyTag: UInt8 = 5
    /// Canvas outcome entities and tombstones (optional: absent when the tenant has none).
    static let outcomesTag: UInt8 = 6
    /// The fixed part of a stored record, before its certification reference.
    public static let fixedRecordBytes = 120

    /// Encodes a captured tenant, handing out chunks of about `chunkBytes` as they fill (so the caller
    /// can compress blocks while encoding continues).
    public static func encode(_ capture: TenantCapture, chunkBytes: Int = 1 << 20, emit: ([UInt8]) throws -> Void) rethrows {
        var writer = ByteWriter(capacity: chunkBytes + 4096)
        func flushIfFull() throws {
            if writer.count >= chunkBytes {
                try emit(writer.bytes)
                writer.reset()
            }
        }
        writer.writeU8(stringsTag)
        writer.writeVarint(UInt64(capture.strings.count))
        for string in capture.strings {
            writer.writeString(string)
            try flushIfFull()
        }
        for (tag, table) in [(uuidsTag, capture.uuids), (personsTag, capture.persons)] {
            writer.writeU8(tag)
            writer.writeVarint(UInt64(table.count))
            for uuid in table {
                writer.writeUUID(uuid)
                try flushIfFull()
            }
        }
        writer.writeU8(recordsTag)
        writer.writeVarint(UInt64(capture.liveRecords + capture.deletedRecords))
        var written = 0
        for (slot, record) in capture.records.enumerated() where !record.isPurged {
            encode(record, sparse: capture.sparse(of: record, slot: slot), capture: capture, into: &writer)
            written += 1
            try flushIfFull()
        }
        precondition(written == capture.liveRecords + capture.deletedRecords, "record counts disagree with the pages")
        writer.writeU8(idempotencyTag)
        writer.writeVarint(UInt64(capture.idempotency.count))
        for entry in capture.idempotency {
            IdempotencyCodec.encode(entry, into: &writer)
            try flushIfFull()
        }
        if capture.outcomes.recordCount > 0 {
            writer.writeU8(outcomesTag)
            writer.writeVarint(UInt64(capture.outcomes.recordCount))
            try capture.outcomes.forEachRecord { record in
                record.encode(into: &writer)
                try flushIfFull()
            }
        }
        writer.writeU8(endTag)
        try emit(writer.bytes)
    }

    /// The flag bits a snapshot keeps: `hasSparseFields` only says where the store keeps fields the
    /// snapshot writes in full.
    static let persistedFlags = ~StoredRecord.Flags.hasSparseFields.rawValue

    static func encode(_ r: StoredRecord, sparse: SparseFields, capture: TenantCapture, into writer: inout ByteWriter) {
        writer.writeRecordID(r.id)
        writer.writeI64(r.createdAt)
        writer.writeI64(r.updatedAt)
        writer.writeI64(r.completedAt)
        writer.writeI64(r.expiresAt)
        writer.writeI64(sparse.deletedAt)
        writer.writeDouble(r.score)
        writer.writeU64(r.assessmentHigh)
        writer.writeU64(r.assessmentLow)
        writer.writeU32(r.person)
        writer.writeU32(r.createdBy)
        writer.writeU32(r.updatedBy)
        writer.writeU32(sparse.deletedBy)
        writer.writeU32(r.cohort)
        writer.writeU32(r.title)
        writer.writeU32(r.provider)
        writer.writeU32(r.source)
        writer.writeU32(r.app)
        writer.writeU16(sparse.schemaVersion)
        writer.writeU16(r.flags.rawValue & persistedFlags)
        _ = capture.withCertificationRef(of: r) { bytes in
            writer.writeVarint(UInt64(bytes.count))
            writer.writeBytes(bytes)
        }
    }

    /// What a snapshot holds, decoded.
    public struct Contents: Sendable {
        public var store: RecordStore
        public var idempotency: [IdempotencyEntry]
        public var outcomes: OutcomeTables
    }

    /// Every time the server formats or adds to must be in the documented range; the nullable ones
    /// may also hold the null sentinel.
    static func timesAreInRange(_ r: StoredRecord, _ sparse: SparseFields) -> Bool {
        func nullable(_ value: Int64) -> Bool { value == StoredRecord.nullTime || Timestamp.documentedRange.contains(value) }
        return Timestamp.documentedRange.contains(r.createdAt) && Timestamp.documentedRange.contains(r.updatedAt)
            && nullable(r.completedAt) && nullable(r.expiresAt) && nullable(sparse.deletedAt)
    }

    /// Decodes the whole uncompressed stream, validating every reference.
    public static func decode(_ bytes: UnsafeRawBufferPointer, tenantID: String, expectedRecords: UInt64) throws(DecodeError) -> Contents {
        var reader = ByteReader(bytes)
        func expectTag(_ tag: UInt8) throws(DecodeError) {
            let offset = reader.offset
            let found = try reader.readU8()
            guard found == tag else { throw DecodeError(offset: offset, reason: "expected section \(tag), found \(found)") }
        }
        try expectTag(stringsTag)
        let stringCount = try reader.readCount(limit: bytes.count, minimumElementBytes: 1)
        var strings: [String] = []
        strings.reserveCapacity(stringCount)
        for _ in 0..<stringCount { strings.append(try reader.readString(limit: 1 << 16)) }
        try expectTag(uuidsTag)
        let uuidCount = try reader.readCount(limit: bytes.count, minimumElementBytes: 16)
        var uuids: [UUID16] = []
        uuids.reserveCapacity(uuidCount)
        for _ in 0..<uuidCount { uuids.append(try reader.readUUID()) }
        try expectTag(personsTag)
        let personCount = try reader.readCount(limit: bytes.count, minimumElementBytes: 16)
        var persons: [UUID16] = []
        persons.reserveCapacity(personCount)
        for _ in 0..<personCount { persons.append(try reader.readUUID()) }
        try expectTag(recordsTag)
        let recordCount = try reader.readCount(limit: bytes.count, minimumElementBytes: fixedRecordBytes)
        guard UInt64(recordCount) == expectedRecords else {
            throw reader.error("section holds \(recordCount) records, the header says \(expectedRecords)")
        }
        var builder = RecordStoreBuilder(tenantID: tenantID, strings: strings, uuids: uuids, persons: persons)
        var previous: (Int64, UInt64, UInt64)?
        for _ in 0..<recordCount {
            let start = reader.offset
            let id = try reader.readRecordID()
            var r = StoredRecord(id: id, createdAt: try reader.readI64(), updatedAt: try reader.readI64())
            r.completedAt = try reader.readI64()
            r.expiresAt = try reader.readI64()
            var sparse = SparseFields(deletedAt: try reader.readI64())
            r.score = try reader.readDouble()
            r.assessmentHigh = try reader.readU64()
            r.assessmentLow = try reader.readU64()
            r.person = try reader.readU32()
            r.createdBy = try reader.readU32()
            r.updatedBy = try reader.readU32()
            sparse.deletedBy = try reader.readU32()
            r.cohort = try reader.readU32()
            r.title = try reader.readU32()
            r.provider = try reader.readU32()
            r.source = try reader.readU32()
            r.app = try reader.readU32()
            sparse.schemaVersion = try reader.readU16()
            r.flags = StoredRecord.Flags(rawValue: try reader.readU16() & persistedFlags)
            guard r.person >= 1, Int(r.person) <= personCount else { throw DecodeError(offset: start, reason: "record \(id) has person reference \(r.person) of \(personCount)") }
            // Checked field by field (an array literal here would allocate twice per record).
            let maxUUID = max(r.createdBy, r.updatedBy, sparse.deletedBy, r.cohort)
            if Int(maxUUID) > uuidCount {
                throw DecodeError(offset: start, reason: "record \(id) has UUID reference \(maxUUID) of \(uuidCount)")
            }
            let maxString = max(r.title, r.provider, r.source, r.app)
            if Int(maxString) > stringCount {
                throw DecodeError(offset: start, reason: "record \(id) has string reference \(maxString) of \(stringCount)")
            }
            guard !r.flags.contains(.purged) else { throw DecodeError(offset: start, reason: "record \(id) is marked purged") }
            guard Self.timesAreInRange(r, sparse) else {
                throw DecodeError(offset: start, reason: "record \(id) has a time outside 0001-01-01 ... 9999-12-31")
            }
            let key = (r.createdAt, r.idHigh, r.idLow)
            if let previous, previous >= key { throw DecodeError(offset: start, reason: "records are not in (created_at, id) order at \(id)") }
            previous = key
            if r.flags.contains(.hasCertificationRef) {
                let length = try reader.readLength(limit: Int(UInt16.max))
                builder.append(r, sparse: sparse, certificationRef: try reader.readBytes(length))
            } else {
                builder.append(r, sparse: sparse, certificationRef: nil)
            }
        }
        try expectTag(idempotencyTag)
        let keyCount = try reader.readCount(limit: bytes.count, minimumElementBytes: 1 + 8 + 8 + 1)
        var entries: [IdempotencyEntry] = []
        entries.reserveCapacity(keyCount)
        for _ in 0..<keyCount { entries.append(try IdempotencyCodec.decode(from: &reader)) }
        var outcomes = OutcomeStore()
        if reader.remaining > 1 {
            try expectTag(outcomesTag)
            let count = try reader.readLength(limit: bytes.count)
            for _ in 0..<count {
                let start = reader.offset
                let record = try OutcomeRecord.decode(from: &reader)
                guard outcomes.apply(record) == .applied else {
                    throw DecodeError(offset: start, reason: "outcome record \(record.key) appears twice")
                }
            }
        }
        try expectTag(endTag)
        try reader.expectEnd()
        return Contents(store: builder.build(), idempotency: entries, outcomes: outcomes.tables)
    }
}
