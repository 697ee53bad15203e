import LearnStoreModel

/// What remains of an entity whose newest version is `workflow_state: "deleted"`: enough to refuse any
/// older event about it (so a late `_created` never resurrects it) and to tie-break an equal-stamped one.
/// A tombstone never expires: Canvas keeps soft-deleted rows forever, and an event may arrive days late.
public struct OutcomeTombstone: Hashable, Sendable {
    public var kind: OutcomeEntityKind
    public var key: String
    public var version: EntityVersion

    public init(kind: OutcomeEntityKind, key: String, version: EntityVersion) {
        self.kind = kind
        self.key = key
        self.version = version
    }

    init<E: VersionedEntity>(deleted entity: E) {
        self.init(kind: E.kind, key: entity.key, version: entity.version)
    }

    public var tableKey: TombstoneKey { TombstoneKey(kind: kind, key: key) }

    public func encode(into writer: inout ByteWriter) {
        writer.writeU8(OutcomeCodec.formatVersion)
        writer.writeU8(kind.rawValue)
        writer.writeString(key)
        writer.writeU64(version.digest.high)
        writer.writeU64(version.digest.low)
        writer.writeFields { fields in
            fields.timestamp(version.stamp.recordTime)
            fields.timestamp(version.stamp.eventTime)
        }
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> OutcomeTombstone {
        try OutcomeCodec.readVersion(&reader, of: "tombstone")
        let kindOffset = reader.offset
        let rawKind = try reader.readU8()
        guard let kind = OutcomeEntityKind(rawValue: rawKind) else {
            throw DecodeError(offset: kindOffset, reason: "unknown entity kind \(rawKind)")
        }
        let key = try reader.readKey()
        let digest = ContentDigest(high: try reader.readU64(), low: try reader.readU64())
        var fields = try FieldReader(&reader, fieldCount: 2)
        let stamp = VersionStamp(recordTime: try fields.timestamp(&reader), eventTime: try fields.timestamp(&reader))
        return OutcomeTombstone(kind: kind, key: key, version: EntityVersion(stamp: stamp, digest: digest))
    }
}

/// Tombstones of all kinds share one table; ids of different kinds may collide, so the kind is in the key.
public struct TombstoneKey: Hashable, Sendable {
    public var kind: OutcomeEntityKind
    public var key: String

    public init(kind: OutcomeEntityKind, key: String) {
        self.kind = kind
        self.key = key
    }
}
