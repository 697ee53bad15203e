import CanvasOutcomes
import LearnStoreEngine
import LearnStoreModel

/// The binary form of a ``TenantMutation`` inside a WAL record (docs/STORAGE-FORMAT.md, "Mutations").
public enum MutationCodec {
    static let putRecordsTag: UInt8 = 1
    static let purgeRecordsTag: UInt8 = 2
    static let idempotencyTag: UInt8 = 3
    static let outcomesTag: UInt8 = 4
    static let recordChangeTag: UInt8 = 5
    static let resetTenantTag: UInt8 = 6
    static let releaseTenantTag: UInt8 = 7
    static let continueTenantTag: UInt8 = 8
    static let forgetIdempotencyKeysTag: UInt8 = 9

    public static func encode(_ mutation: TenantMutation, into writer: inout ByteWriter) {
        switch mutation {
        case .putRecords(let records):
            writer.writeU8(putRecordsTag)
            writer.writeVarint(UInt64(records.count))
            for record in records { RecordCodec.encode(record, into: &writer) }
        case .purgeRecords(let ids):
            writer.writeU8(purgeRecordsTag)
            writer.writeVarint(UInt64(ids.count))
            for id in ids { writer.writeRecordID(id) }
        case .rememberIdempotencyKey(let entry):
            writer.writeU8(idempotencyTag)
            IdempotencyCodec.encode(entry, into: &writer)
        case .outcomes(let records):
            writer.writeU8(outcomesTag)
            writer.writeVarint(UInt64(records.count))
            for record in records { record.encode(into: &writer) }
        case .recordChange(let kind):
            writer.writeU8(recordChangeTag)
            writer.writeU8(kind.rawValue)
        case .resetTenant:
            writer.writeU8(resetTenantTag)
        case .releaseTenant:
            writer.writeU8(releaseTenantTag)
        case .continueTenant:
            writer.writeU8(continueTenantTag)
        case .forgetIdempotencyKeys:
            writer.writeU8(forgetIdempotencyKeysTag)
        }
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> TenantMutation {
        let tagOffset = reader.offset
        switch try reader.readU8() {
        case putRecordsTag:
            let count = try reader.readCount(limit: 1 << 20, minimumElementBytes: RecordCodec.minimumRecordBytes)
            var records: [LearningRecord] = []
            records.reserveCapacity(count)
            for _ in 0..<count { records.append(try RecordCodec.decodeRecord(from: &reader)) }
            return .putRecords(records)
        case purgeRecordsTag:
            let count = try reader.readCount(limit: 1 << 24, minimumElementBytes: 16)
            var ids: [RecordID] = []
            ids.reserveCapacity(count)
            for _ in 0..<count { ids.append(try reader.readRecordID()) }
            return .purgeRecords(ids)
        case idempotencyTag:
            return .rememberIdempotencyKey(try IdempotencyCodec.decode(from: &reader))
        case outcomesTag:
            let count = try reader.readCount(limit: 1 << 20, minimumElementBytes: 1)
            var records: [OutcomeRecord] = []
            records.reserveCapacity(count)
            for _ in 0..<count { records.append(try OutcomeRecord.decode(from: &reader)) }
            return .outcomes(records)
        case recordChangeTag:
            let kindOffset = reader.offset
            let raw = try reader.readU8()
            guard let kind = RecordChangeKind(rawValue: raw) else {
                throw DecodeError(offset: kindOffset, reason: "unknown record change kind \(raw)")
            }
            return .recordChange(kind)
        case resetTenantTag:
            return .resetTenant
        case releaseTenantTag:
            return .releaseTenant
        case continueTenantTag:
            return .continueTenant
        case forgetIdempotencyKeysTag:
            return .forgetIdempotencyKeys
        case let tag:
            throw DecodeError(offset: tagOffset, reason: "unknown mutation tag \(tag)")
        }
    }
}

enum IdempotencyCodec {
    static func encode(_ entry: IdempotencyEntry, into writer: inout ByteWriter) {
        writer.writeString(entry.key)
        writer.writeU64(entry.fingerprint)
        writer.writeU64(entry.sequence)
        writer.writeVarint(UInt64(entry.ids.count))
        for id in entry.ids { writer.writeRecordID(id) }
    }

    static func decode(from reader: inout ByteReader) throws(DecodeError) -> IdempotencyEntry {
        let key = try reader.readString(limit: 1024)
        let fingerprint = try reader.readU64()
        let sequence = try reader.readU64()
        let count = try reader.readCount(limit: 1 << 20, minimumElementBytes: 16)
        var ids: [RecordID] = []
        ids.reserveCapacity(count)
        for _ in 0..<count { ids.append(try reader.readRecordID()) }
        return IdempotencyEntry(key: key, fingerprint: fingerprint, ids: ids, sequence: sequence)
    }
}
