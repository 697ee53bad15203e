import LearnStoreEngine
import LearnStoreModel

/// The end of one group-commit write: everything up to `lastLSN` was written together. A torn tail
/// can only follow the last marker; damage followed by a valid marker is corruption.
///
/// ```
/// u32 0x8000000C   high bit = marker, low 31 bits = body length (12)
/// u32 crc32c       of body
/// u64 last_lsn
/// u32 records      in this write
/// ```
public struct WALCommitMarker: Sendable, Hashable {
    public static let flag: UInt32 = 0x8000_0000
    public static let bodyBytes = 12
    public static let size = 8 + bodyBytes

    public var lastLSN: UInt64
    public var records: UInt32

    public var encoded: [UInt8] {
        var writer = ByteWriter(capacity: Self.size)
        writer.writeU32(Self.flag | UInt32(Self.bodyBytes))
        writer.writeU32(0)
        writer.writeU64(lastLSN)
        writer.writeU32(records)
        writer.setU32(CRC32C.checksum(writer.bytes[8...]), at: 4)
        return writer.bytes
    }
}

/// One WAL record: a tenant's write with its global log sequence number (docs/STORAGE-FORMAT.md).
///
/// ```
/// u32 body_length   bytes of body (> 0; a 0 here marks the end of written data in a preallocated segment)
/// u32 crc32c        CRC-32C of body
/// body:
///   u64 lsn         global, +1 per record
///   u64 sequence    the tenant's sequence number after this write
///   i64 timestamp   milliseconds since the epoch, when the write was applied
///   string tenant
///   varint count    mutations
///   mutation × count
/// ```
public struct WALRecord: Sendable, Hashable {
    public static let headerSize = 8
    public static let maximumBodyBytes = 64 << 20
    /// Body bytes before the tenant string: lsn, sequence, timestamp.
    static let fixedBodyPrefix = 24

    public var lsn: UInt64
    public var entry: LogEntry

    public init(lsn: UInt64, entry: LogEntry) {
        self.lsn = lsn
        self.entry = entry
    }

    /// Encodes the body with `lsn` 0; the writer patches the LSN and checksum when it assigns one.
    public static func encodeUnsequenced(_ entry: LogEntry) -> [UInt8] {
        var writer = ByteWriter(capacity: 512)
        writer.writeU32(0)
        writer.writeU32(0)
        writer.writeU64(0)
        writer.writeU64(entry.sequence)
        writer.writeI64(entry.timestamp.milliseconds)
        writer.writeString(entry.tenantID)
        writer.writeVarint(UInt64(entry.mutations.count))
        for mutation in entry.mutations { MutationCodec.encode(mutation, into: &writer) }
        writer.setU32(UInt32(writer.count - headerSize), at: 0)
        return writer.bytes
    }

    /// Sets the LSN and the checksum of a record produced by `encodeUnsequenced`, in place.
    public static func seal(_ record: inout [UInt8], at offset: Int = 0, lsn: UInt64) {
        record.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: lsn.littleEndian, toByteOffset: offset + headerSize, as: UInt64.self)
            let bodyLength = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            let body = UnsafeRawBufferPointer(rebasing: raw[(offset + headerSize)..<(offset + headerSize + bodyLength)])
            raw.storeBytes(of: CRC32C.checksum(body).littleEndian, toByteOffset: offset + 4, as: UInt32.self)
        }
    }

    public var encoded: [UInt8] {
        var bytes = Self.encodeUnsequenced(entry)
        Self.seal(&bytes, lsn: lsn)
        return bytes
    }

    /// Decodes a body (after its length and checksum were verified).
    public static func decodeBody(_ body: UnsafeRawBufferPointer) throws(DecodeError) -> WALRecord {
        var reader = ByteReader(body)
        let lsn = try reader.readCounter()
        let sequence = try reader.readCounter()
        let timestamp = try reader.readTimestamp()
        let tenant = try reader.readString(limit: 256)
        let count = try reader.readCount(limit: 1 << 16, minimumElementBytes: 1)  // a reset or a release is its tag alone
        var mutations: [TenantMutation] = []
        mutations.reserveCapacity(count)
        for _ in 0..<count { mutations.append(try MutationCodec.decode(from: &reader)) }
        try reader.expectEnd()
        return WALRecord(lsn: lsn, entry: LogEntry(tenantID: tenant, sequence: sequence, timestamp: timestamp, mutations: mutations))
    }
}
