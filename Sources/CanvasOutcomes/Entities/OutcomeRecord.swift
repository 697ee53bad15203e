import LearnStoreModel

/// One row of the store's captured state: what the engine writes to its WAL (after an `.applied` ingest)
/// and to snapshots, and what recovery feeds back through `OutcomeStore.apply(_:)`.
/// Encoded as a kind tag byte (``OutcomeEntityKind`` raw value, or 0 for a tombstone) then the entity.
public enum OutcomeRecord: Hashable, Sendable {
    case entity(OutcomeEntity)
    case tombstone(OutcomeTombstone)

    static let tombstoneTag: UInt8 = 0

    public func encode(into writer: inout ByteWriter) {
        switch self {
        case .tombstone(let tombstone):
            writer.writeU8(Self.tombstoneTag)
            tombstone.encode(into: &writer)
        case .entity(let entity):
            writer.writeU8(entity.kind.rawValue)
            switch entity {
            case .outcome(let e): e.encode(into: &writer)
            case .group(let e): e.encode(into: &writer)
            case .link(let e): e.encode(into: &writer)
            case .result(let e): e.encode(into: &writer)
            case .proficiency(let e): e.encode(into: &writer)
            }
        }
    }

    public var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 256)
        encode(into: &writer)
        return writer.bytes
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> OutcomeRecord {
        let tagOffset = reader.offset
        let tag = try reader.readU8()
        if tag == tombstoneTag { return .tombstone(try OutcomeTombstone.decode(from: &reader)) }
        guard let kind = OutcomeEntityKind(rawValue: tag) else {
            throw DecodeError(offset: tagOffset, reason: "unknown record tag \(tag)")
        }
        switch kind {
        case .outcome: return .entity(.outcome(try LearningOutcome.decode(from: &reader)))
        case .group: return .entity(.group(try OutcomeGroup.decode(from: &reader)))
        case .link: return .entity(.link(try OutcomeLink.decode(from: &reader)))
        case .result: return .entity(.result(try OutcomeResult.decode(from: &reader)))
        case .proficiency: return .entity(.proficiency(try OutcomeProficiency.decode(from: &reader)))
        }
    }

    /// Decodes one record that fills `bytes` exactly.
    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> OutcomeRecord {
        try bytes.decodeExactly { (reader: inout ByteReader) throws(DecodeError) in try decode(from: &reader) }
    }
}
