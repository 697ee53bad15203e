/// Appends little-endian integers, LEB128 varints, length-prefixed strings and 16-byte ids to a byte array.
/// The one binary writer behind the wire protocol, the WAL and snapshots.
public struct ByteWriter: Sendable {
    public var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    public mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    /// Drops everything written after `count` (to replace a half-written response by an error).
    public mutating func truncate(to count: Int) {
        if bytes.count > count { bytes.removeLast(bytes.count - count) }
    }

    // The fixed-width writes are inlinable and append byte by byte: across modules, appending a
    // 4- or 8-byte buffer through `append(contentsOf:)` costs a call and a copy per field, which was
    // a sixth of the CPU of writing a snapshot.
    @inlinable public mutating func writeU8(_ value: UInt8) { bytes.append(value) }

    @inlinable public mutating func writeU16(_ value: UInt16) { appendLittleEndian(value) }

    @inlinable public mutating func writeU32(_ value: UInt32) { appendLittleEndian(value) }

    @inlinable public mutating func writeU64(_ value: UInt64) { appendLittleEndian(value) }

    @inlinable public mutating func writeI64(_ value: Int64) { appendLittleEndian(UInt64(bitPattern: value)) }

    @inlinable public mutating func writeDouble(_ value: Double) { appendLittleEndian(value.bitPattern) }

    @inlinable mutating func appendLittleEndian<T: FixedWidthInteger & UnsignedInteger>(_ value: T) {
        var rest = value
        for _ in 0..<MemoryLayout<T>.size {
            bytes.append(UInt8(truncatingIfNeeded: rest))
            rest >>= 8
        }
    }

    @inlinable mutating func appendBigEndian(_ value: UInt64) {
        var shift = 56
        while shift >= 0 {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
            shift -= 8
        }
    }

    /// Unsigned LEB128.
    @inlinable public mutating func writeVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    public mutating func writeBytes(_ data: some Collection<UInt8>) { bytes.append(contentsOf: data) }

    public mutating func writeBytes(_ data: UnsafeRawBufferPointer) { bytes.append(contentsOf: data) }

    /// varint byte length, then UTF-8.
    public mutating func writeString(_ string: String) {
        string.withUTF8InPlace { utf8 in
            writeVarint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    /// varint length, then the bytes.
    public mutating func writeLengthPrefixed(_ data: some Collection<UInt8>) {
        writeVarint(UInt64(data.count))
        bytes.append(contentsOf: data)
    }

    /// 16 bytes, big-endian (the UUID's printed byte order).
    @inlinable public mutating func writeUUID(_ uuid: UUID16) {
        appendBigEndian(uuid.high)
        appendBigEndian(uuid.low)
    }

    /// 16 bytes, big-endian (ULID binary form; byte order is time order).
    @inlinable public mutating func writeRecordID(_ id: RecordID) {
        appendBigEndian(id.high)
        appendBigEndian(id.low)
    }

    /// Overwrites 4 bytes at `offset` (for length fields written before their contents are known).
    public mutating func setU32(_ value: UInt32, at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for index in 0..<4 { bytes[offset + index] = raw[index] }
        }
    }
}
