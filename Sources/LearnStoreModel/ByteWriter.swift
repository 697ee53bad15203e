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

    @inline(__always) public mutating func writeU8(_ value: UInt8) { bytes.append(value) }

    @inline(__always) public mutating func writeU16(_ value: UInt16) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    @inline(__always) public mutating func writeU32(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    @inline(__always) public mutating func writeU64(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    @inline(__always) public mutating func writeI64(_ value: Int64) { writeU64(UInt64(bitPattern: value)) }

    @inline(__always) public mutating func writeDouble(_ value: Double) { writeU64(value.bitPattern) }

    /// Unsigned LEB128.
    @inline(__always) public mutating func writeVarint(_ value: UInt64) {
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
        var string = string
        string.withUTF8 { utf8 in
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
    @inline(__always) public mutating func writeUUID(_ uuid: UUID16) {
        withUnsafeBytes(of: uuid.high.bigEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: uuid.low.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// 16 bytes, big-endian (ULID binary form; byte order is time order).
    @inline(__always) public mutating func writeRecordID(_ id: RecordID) {
        withUnsafeBytes(of: id.high.bigEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: id.low.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// Overwrites 4 bytes at `offset` (for length fields written before their contents are known).
    public mutating func setU32(_ value: UInt32, at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for index in 0..<4 { bytes[offset + index] = raw[index] }
        }
    }
}
