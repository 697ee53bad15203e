/// Writes the same encodings as ``ByteWriter`` through a raw pointer into space reserved beforehand,
/// for hot paths that know an upper bound of their output: each field is one unaligned store instead
/// of an `Array.append(contentsOf:)` (a capacity check and a `memmove` call per field, measured at 14 %
/// of server CPU on GET when records were encoded field by field into the array).
public struct RawByteCursor {
    @usableFromInline let base: UnsafeMutableRawPointer
    /// Bytes written so far.
    @usableFromInline var written = 0

    @inlinable init(_ base: UnsafeMutableRawPointer) { self.base = base }

    @inlinable @inline(__always) public mutating func writeU8(_ value: UInt8) {
        base.storeBytes(of: value, toByteOffset: written, as: UInt8.self)
        written += 1
    }

    @inlinable @inline(__always) public mutating func writeU32(_ value: UInt32) {
        base.storeBytes(of: value.littleEndian, toByteOffset: written, as: UInt32.self)
        written += 4
    }

    @inlinable @inline(__always) public mutating func writeI64(_ value: Int64) {
        base.storeBytes(of: UInt64(bitPattern: value).littleEndian, toByteOffset: written, as: UInt64.self)
        written += 8
    }

    @inlinable @inline(__always) public mutating func writeDouble(_ value: Double) {
        base.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: written, as: UInt64.self)
        written += 8
    }

    /// Unsigned LEB128.
    @inlinable @inline(__always) public mutating func writeVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            writeU8(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        writeU8(UInt8(rest))
    }

    /// Two big-endian 64-bit halves (UUIDs and record ids).
    @inlinable @inline(__always) public mutating func writeBigEndianPair(_ high: UInt64, _ low: UInt64) {
        base.storeBytes(of: high.bigEndian, toByteOffset: written, as: UInt64.self)
        base.storeBytes(of: low.bigEndian, toByteOffset: written + 8, as: UInt64.self)
        written += 16
    }

    @inlinable @inline(__always) public mutating func writeUUID(_ uuid: UUID16) { writeBigEndianPair(uuid.high, uuid.low) }

    @inlinable @inline(__always) public mutating func writeRecordID(_ id: RecordID) { writeBigEndianPair(id.high, id.low) }

    @inlinable public mutating func writeBytes(_ data: UnsafeRawBufferPointer) {
        guard let source = data.baseAddress, data.count > 0 else { return }
        (base + written).copyMemory(from: source, byteCount: data.count)
        written += data.count
    }

    /// varint byte length, then UTF-8.
    @inlinable public mutating func writeString(_ string: String) {
        string.withUTF8InPlace { utf8 in
            writeVarint(UInt64(utf8.count))
            writeBytes(UnsafeRawBufferPointer(utf8))
        }
    }

    /// The bytes ``writeString(_:)`` writes for `string`.
    @inlinable public static func maximumSize(of string: String) -> Int { lengthPrefixedSize(string.utf8.count) }

    /// The bytes of a varint length `count` followed by `count` bytes.
    @inlinable public static func lengthPrefixedSize(_ count: Int) -> Int {
        var size = count + 1
        var rest = UInt64(count) >> 7
        while rest != 0 {
            size += 1
            rest >>= 7
        }
        return size
    }

    /// The most bytes of a record's fixed-size fields in the record encoding: bitmap 4, id 16, five
    /// timestamps 8 each, five UUIDs and the person 16 each, schema version varint 10, three
    /// one-byte fields, score 8.
    public static let recordFixedFieldsMaximum = 4 + 16 + 5 * 8 + 6 * 16 + 10 + 3 + 8
}

extension ByteWriter {
    /// Zeros to grow a writer by: never freed, never written, and with no reference count for the
    /// event loops to contend on (a shared array's would be).
    @usableFromInline nonisolated(unsafe) static let zeros: UnsafeBufferPointer<UInt8> = {
        let zeros = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 4096)
        zeros.initialize(repeating: 0)
        return UnsafeBufferPointer(zeros)
    }()

    /// Reserves `maximum` bytes, lets `body` write at most that many through a cursor, and keeps
    /// exactly what it wrote.
    @inlinable public mutating func withReservedSpace(maximum: Int, _ body: (inout RawByteCursor) -> Void) {
        let start = bytes.count
        // One copy of zeros (a memcpy) where appending a repeated element went byte by byte.
        if maximum <= Self.zeros.count {
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: Self.zeros[..<maximum]))
        } else {
            bytes.append(contentsOf: repeatElement(0, count: maximum))
        }
        let written: Int = bytes.withUnsafeMutableBytes { raw in
            var cursor = RawByteCursor(raw.baseAddress! + start)
            body(&cursor)
            return cursor.written
        }
        precondition(written <= maximum, "RawByteCursor wrote past its reservation")
        bytes.removeLast(maximum - written)
    }
}

extension String {
    /// Runs `body` on the string's UTF-8: a native string lends its storage in place, where
    /// `withUTF8` needs a mutable copy (a retain and a release of storage other readers share);
    /// only a bridged or lazily decoded string is copied.
    @inlinable @usableFromInline func withUTF8InPlace<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let result = utf8.withContiguousStorageIfAvailable(body) { return result }
        var copy = self
        return copy.withUTF8(body)
    }
}
