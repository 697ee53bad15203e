import CanvasOutcomes
import LearnStoreModel

/// Where a subscription starts.
public enum FeedStart: Sendable, Hashable {
    /// With the change after this tenant sequence (0: from the tenant's first change).
    case after(UInt64)
    /// With the next change committed after the subscription is made.
    case now
}

public struct SubscribeRequest: Sendable, Hashable {
    public var start: FeedStart
    /// Changes the server may send before the client grants more (FEED_CREDIT).
    public var credit: UInt32

    public init(start: FeedStart, credit: UInt32) {
        self.start = start
        self.credit = credit
    }
}

public struct SubscribeResponse: Sendable, Hashable {
    /// The stream continues with the change after this sequence.
    public var afterSequence: UInt64
    /// The tenant's newest committed sequence when the subscription was made.
    public var tenantSequence: UInt64
    /// The oldest sequence a subscription could start after, when this one was made.
    public var oldestSequence: UInt64
    /// The most changes one FEED_EVENTS frame carries.
    public var maximumBatchChanges: UInt32

    public init(afterSequence: UInt64, tenantSequence: UInt64, oldestSequence: UInt64, maximumBatchChanges: UInt32) {
        self.afterSequence = afterSequence
        self.tenantSequence = tenantSequence
        self.oldestSequence = oldestSequence
        self.maximumBatchChanges = maximumBatchChanges
    }
}

/// One committed change of a tenant: everything one write did, under the sequence it got.
public struct FeedChange: Sendable, Hashable {
    public var sequence: UInt64
    public var timestamp: Timestamp
    public var parts: [Part]

    public enum Part: Sendable, Hashable {
        /// Records as they are after the write; `kind` nil for a write logged without one (`put`).
        case records(RecordChangeKindName, [LearningRecord])
        case purge([RecordID])
        /// Outcome rows as ingested (an entity or a tombstone), as `learnstore export` writes them.
        case outcomes([OutcomeRecord])
        /// The tenant was restored to an earlier point: its whole state was replaced at this sequence.
        case tenantRestore
    }

    public init(sequence: UInt64, timestamp: Timestamp, parts: [Part]) {
        self.sequence = sequence
        self.timestamp = timestamp
        self.parts = parts
    }
}

/// The wire tags of the parts of a change (docs/PROTOCOL.md, D.4).
public enum RecordChangeKindName: UInt8, Sendable, Hashable, CaseIterable {
    case create = 1, patch = 2, delete = 3, restore = 4, `import` = 5, put = 6

    public var name: String {
        switch self {
        case .create: "create"
        case .patch: "patch"
        case .delete: "delete"
        case .restore: "restore"
        case .import: "import"
        case .put: "put"
        }
    }
}

/// One FEED_EVENTS frame: the changes it carries, and how far the subscriber has now seen.
public struct FeedBatch: Sendable, Hashable {
    /// Every change of the tenant up to this sequence that the subscriber may see has been sent.
    public var throughSequence: UInt64
    public var changes: [FeedChange]

    public init(throughSequence: UInt64, changes: [FeedChange]) {
        self.throughSequence = throughSequence
        self.changes = changes
    }
}

/// Payloads of the change feed opcodes `0xA0`–`0xA2` (docs/PROTOCOL.md, appendix D; feature bit 3).
public enum FeedMessages {
    /// Credit a subscription may hold at once; more is clamped to it.
    public static let maximumCredit: UInt32 = 1 << 20
    public static let maximumBatchChanges: UInt32 = 1024
    static let partPurge: UInt8 = 7
    static let partOutcomes: UInt8 = 8
    static let partTenantRestore: UInt8 = 9

    // MARK: SUBSCRIBE 0xA0

    public static func encodeSubscribe(_ request: SubscribeRequest, into writer: inout ByteWriter) {
        switch request.start {
        case .after(let sequence):
            writer.writeU8(0)
            writer.writeU64(sequence)
        case .now:
            writer.writeU8(1)
            writer.writeU64(0)
        }
        writer.writeU32(request.credit)
    }

    public static func decodeSubscribe(from reader: inout ByteReader) throws(DecodeError) -> SubscribeRequest {
        let modeOffset = reader.offset
        let mode = try reader.readU8()
        guard mode <= 1 else { throw DecodeError(offset: modeOffset, reason: "unknown start mode \(mode)") }
        let sequence = try reader.readCounter()
        let creditOffset = reader.offset
        let credit = try reader.readU32()
        guard credit > 0 else { throw DecodeError(offset: creditOffset, reason: "credit must be at least 1") }
        try reader.expectEnd()
        return SubscribeRequest(start: mode == 1 ? .now : .after(sequence), credit: min(credit, maximumCredit))
    }

    public static func encodeSubscribeResponse(_ response: SubscribeResponse, into writer: inout ByteWriter) {
        writer.writeU64(response.afterSequence)
        writer.writeU64(response.tenantSequence)
        writer.writeU64(response.oldestSequence)
        writer.writeU32(response.maximumBatchChanges)
    }

    public static func decodeSubscribeResponse(from reader: inout ByteReader) throws(DecodeError) -> SubscribeResponse {
        let after = try reader.readCounter()
        let tenant = try reader.readCounter()
        let oldest = try reader.readCounter()
        let batch = try reader.readU32()
        try reader.expectEnd()
        return SubscribeResponse(afterSequence: after, tenantSequence: tenant, oldestSequence: oldest, maximumBatchChanges: batch)
    }

    // MARK: FEED_CREDIT 0xA1

    public static func encodeCredit(_ credit: UInt32, into writer: inout ByteWriter) {
        writer.writeU32(credit)
    }

    public static func decodeCredit(from reader: inout ByteReader) throws(DecodeError) -> UInt32 {
        let credit = try reader.readU32()
        try reader.expectEnd()
        return credit
    }

    // MARK: FEED_EVENTS 0xA2

    public static func encodeBatch(_ batch: FeedBatch, into writer: inout ByteWriter) {
        writer.writeU64(batch.throughSequence)
        writer.writeVarint(UInt64(batch.changes.count))
        for change in batch.changes { encode(change, into: &writer) }
    }

    public static func encode(_ change: FeedChange, into writer: inout ByteWriter) {
        writer.writeU64(change.sequence)
        writer.writeI64(change.timestamp.milliseconds)
        writer.writeVarint(UInt64(change.parts.count))
        for part in change.parts {
            switch part {
            case .records(let kind, let records):
                writer.writeU8(kind.rawValue)
                writer.writeVarint(UInt64(records.count))
                for record in records { RecordCodec.encode(record, into: &writer) }
            case .purge(let ids):
                writer.writeU8(partPurge)
                writer.writeVarint(UInt64(ids.count))
                for id in ids { writer.writeRecordID(id) }
            case .outcomes(let rows):
                writer.writeU8(partOutcomes)
                writer.writeVarint(UInt64(rows.count))
                for row in rows { writer.writeString(row.exportJSON.serialized) }
            case .tenantRestore:
                writer.writeU8(partTenantRestore)
            }
        }
    }

    public static func decodeBatch(from reader: inout ByteReader) throws(DecodeError) -> FeedBatch {
        let through = try reader.readCounter()
        let count = try reader.readCount(limit: Int(maximumBatchChanges), minimumElementBytes: 17)
        var changes: [FeedChange] = []
        changes.reserveCapacity(count)
        for _ in 0..<count { changes.append(try decodeChange(from: &reader)) }
        try reader.expectEnd()
        return FeedBatch(throughSequence: through, changes: changes)
    }

    static func decodeChange(from reader: inout ByteReader) throws(DecodeError) -> FeedChange {
        let sequence = try reader.readCounter()
        let timestamp = try reader.readTimestamp()
        let partCount = try reader.readCount(limit: 16, minimumElementBytes: 1)
        var parts: [FeedChange.Part] = []
        for _ in 0..<partCount {
            let tagOffset = reader.offset
            let tag = try reader.readU8()
            switch tag {
            case partPurge:
                let count = try reader.readCount(limit: 1 << 24, minimumElementBytes: 16)
                var ids: [RecordID] = []
                ids.reserveCapacity(count)
                for _ in 0..<count { ids.append(try reader.readRecordID()) }
                parts.append(.purge(ids))
            case partOutcomes:
                let count = try reader.readCount(limit: 1 << 20, minimumElementBytes: 1)
                var rows: [OutcomeRecord] = []
                for _ in 0..<count {
                    let textOffset = reader.offset
                    let text = try reader.readString(limit: 4 << 20)
                    do {
                        rows.append(try OutcomeRecord(exportJSON: try JSONValue.parse(text)))
                    } catch {
                        throw DecodeError(offset: textOffset, reason: "outcome row: \(error)")
                    }
                }
                parts.append(.outcomes(rows))
            case partTenantRestore:
                parts.append(.tenantRestore)
            default:
                guard let kind = RecordChangeKindName(rawValue: tag) else { throw DecodeError(offset: tagOffset, reason: "unknown change part \(tag)") }
                let count = try reader.readCount(limit: 1 << 20, minimumElementBytes: RecordCodec.minimumRecordBytes)
                var records: [LearningRecord] = []
                records.reserveCapacity(count)
                for _ in 0..<count { records.append(try RecordCodec.decodeRecord(from: &reader)) }
                parts.append(.records(kind, records))
            }
        }
        return FeedChange(sequence: sequence, timestamp: timestamp, parts: parts)
    }
}
