import LearnStoreModel

/// The uncompressed header of a snapshot file (docs/STORAGE-FORMAT.md, "Snapshots").
public struct SnapshotHeader: Sendable, Hashable {
    public static let magic: [UInt8] = Array("LSSNAP01".utf8)
    public static let trailerMagic: [UInt8] = Array("LSSNEND1".utf8)
    public static let formatVersion: UInt32 = 1

    public var tenantID: String
    /// The tenant sequence number the snapshot covers: WAL records with a higher one are replayed.
    public var sequence: UInt64
    /// The LSN of the tenant's last write included (WAL segments below every tenant's LSN can go).
    public var lsn: UInt64
    public var createdAt: Timestamp
    public var records: UInt64
    public var outcomeRecords: UInt64
    public var idempotencyKeys: UInt64

    public init(tenantID: String, sequence: UInt64, lsn: UInt64, createdAt: Timestamp, records: UInt64,
                outcomeRecords: UInt64, idempotencyKeys: UInt64) {
        self.tenantID = tenantID
        self.sequence = sequence
        self.lsn = lsn
        self.createdAt = createdAt
        self.records = records
        self.outcomeRecords = outcomeRecords
        self.idempotencyKeys = idempotencyKeys
    }

    /// magic 8 | version u32 | header length u32 | sequence u64 | lsn u64 | created i64 | records u64 |
    /// outcome records u64 | idempotency keys u64 | tenant string | crc32c u32 of everything before it.
    public var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 128)
        writer.writeBytes(Self.magic)
        writer.writeU32(Self.formatVersion)
        writer.writeU32(0)
        writer.writeU64(sequence)
        writer.writeU64(lsn)
        writer.writeI64(createdAt.milliseconds)
        writer.writeU64(records)
        writer.writeU64(outcomeRecords)
        writer.writeU64(idempotencyKeys)
        writer.writeString(tenantID)
        writer.setU32(UInt32(writer.count + 4), at: 12)
        writer.writeU32(CRC32C.checksum(writer.bytes))
        return writer.bytes
    }

    /// Decodes a header and returns it with its length.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(DecodeError) -> (SnapshotHeader, Int) {
        guard bytes.count >= 64, Array(bytes[0..<8]) == magic else { throw DecodeError(offset: 0, reason: "not a LearnStore snapshot (bad magic)") }
        var reader = ByteReader(bytes, offset: 8)
        let version = try reader.readU32()
        guard version == formatVersion else { throw DecodeError(offset: 8, reason: "unsupported snapshot format version \(version)") }
        let length = Int(try reader.readU32())
        guard length >= 69, length <= bytes.count, length <= 4096 else { throw DecodeError(offset: 12, reason: "bad header length \(length)") }
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: length - 4, as: UInt32.self))
        guard stored == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<(length - 4)])) else {
            throw DecodeError(offset: length - 4, reason: "snapshot header checksum mismatch")
        }
        let sequence = try reader.readCounter()
        let lsn = try reader.readCounter()
        let created = try reader.readTimestamp()
        let records = try reader.readU64()
        let outcomes = try reader.readU64()
        let keys = try reader.readU64()
        let tenant = try reader.readString(limit: 256)
        return (SnapshotHeader(tenantID: tenant, sequence: sequence, lsn: lsn, createdAt: created, records: records,
                               outcomeRecords: outcomes, idempotencyKeys: keys), length)
    }

    /// `snapshot-<sequence, 20 digits>.lss`: names sort in sequence order.
    public static func fileName(sequence: UInt64) -> String {
        let digits = String(sequence)
        return "snapshot-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".lss"
    }

    public static func sequence(fromFileName name: String) -> UInt64? {
        guard name.hasPrefix("snapshot-"), name.hasSuffix(".lss"), name.count == 33 else { return nil }
        return UInt64(name.dropFirst(9).dropLast(4))
    }
}
