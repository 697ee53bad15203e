import LearnStoreModel

/// The 64-byte header of a WAL segment (docs/STORAGE-FORMAT.md, "WAL segments").
///
/// ```
/// 0   8  magic "LSWALSEG"
/// 8   4  format version (1)
/// 12  4  header size (64)
/// 16  8  first LSN this segment may hold
/// 24  8  creation time, ms since the epoch
/// 32  28 reserved, zero
/// 60  4  CRC-32C of bytes 0..<60
/// ```
public struct WALSegmentHeader: Sendable, Hashable {
    public static let magic: [UInt8] = Array("LSWALSEG".utf8)
    public static let formatVersion: UInt32 = 1
    public static let size = 64

    public var firstLSN: UInt64
    public var createdAt: Timestamp

    public init(firstLSN: UInt64, createdAt: Timestamp) {
        self.firstLSN = firstLSN
        self.createdAt = createdAt
    }

    public var encoded: [UInt8] {
        var writer = ByteWriter(capacity: Self.size)
        writer.writeBytes(Self.magic)
        writer.writeU32(Self.formatVersion)
        writer.writeU32(UInt32(Self.size))
        writer.writeU64(firstLSN)
        writer.writeI64(createdAt.milliseconds)
        writer.writeBytes([UInt8](repeating: 0, count: 28))
        writer.writeU32(CRC32C.checksum(writer.bytes))
        return writer.bytes
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(DecodeError) -> WALSegmentHeader {
        guard bytes.count >= size else { throw DecodeError(offset: 0, reason: "segment shorter than its 64-byte header") }
        guard Array(bytes[0..<8]) == magic else { throw DecodeError(offset: 0, reason: "not a WAL segment (bad magic)") }
        var reader = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[0..<size]), offset: 8)
        let version = try reader.readU32()
        guard version == formatVersion else { throw DecodeError(offset: 8, reason: "unsupported WAL format version \(version)") }
        let headerSize = try reader.readU32()
        guard headerSize == UInt32(size) else { throw DecodeError(offset: 12, reason: "unexpected header size \(headerSize)") }
        let first = try reader.readCounter()
        let created = try reader.readTimestamp()
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 60, as: UInt32.self))
        guard stored == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<60])) else {
            throw DecodeError(offset: 60, reason: "segment header checksum mismatch")
        }
        return WALSegmentHeader(firstLSN: first, createdAt: created)
    }

    /// `wal-<first LSN, 20 digits>.log`: names sort in LSN order.
    public static func fileName(firstLSN: UInt64) -> String {
        let digits = String(firstLSN)
        return "wal-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".log"
    }

    public static func firstLSN(fromFileName name: String) -> UInt64? {
        guard name.hasPrefix("wal-"), name.hasSuffix(".log"), name.count == 28 else { return nil }
        return UInt64(name.dropFirst(4).dropLast(4))
    }
}
