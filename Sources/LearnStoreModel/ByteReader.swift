/// A malformed binary input, with the offset where decoding failed.
public struct DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    public let offset: Int
    public let reason: String
    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }
    public var description: String { "malformed input at byte \(offset): \(reason)" }
}

/// Reads what ``ByteWriter`` writes, from borrowed memory. Every length is checked against the bytes
/// that remain before anything is allocated; every failure is a ``DecodeError`` carrying the offset.
public struct ByteReader {
    public let base: UnsafeRawBufferPointer
    public private(set) var offset: Int

    public init(_ base: UnsafeRawBufferPointer, offset: Int = 0) {
        self.base = base
        self.offset = offset
    }

    public var remaining: Int { base.count - offset }
    public var isAtEnd: Bool { offset == base.count }

    public func error(_ reason: String) -> DecodeError { DecodeError(offset: offset, reason: reason) }

    @inline(__always) mutating func need(_ count: Int) throws(DecodeError) {
        guard count >= 0, base.count - offset >= count else {
            throw error("needs \(count) more bytes, \(base.count - offset) left")
        }
    }

    @inline(__always) public mutating func readU8() throws(DecodeError) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return base[offset]
    }

    @inline(__always) public mutating func readU16() throws(DecodeError) -> UInt16 {
        try need(2)
        defer { offset += 2 }
        return UInt16(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always) public mutating func readU32() throws(DecodeError) -> UInt32 {
        try need(4)
        defer { offset += 4 }
        return UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always) public mutating func readU64() throws(DecodeError) -> UInt64 {
        try need(8)
        defer { offset += 8 }
        return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always) public mutating func readI64() throws(DecodeError) -> Int64 { Int64(bitPattern: try readU64()) }

    @inline(__always) public mutating func readDouble() throws(DecodeError) -> Double { Double(bitPattern: try readU64()) }

    @inline(__always) public mutating func readBigEndianU64() throws(DecodeError) -> UInt64 {
        try need(8)
        defer { offset += 8 }
        return UInt64(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    public mutating func readVarint() throws(DecodeError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let start = offset
            let byte = try readU8()
            if shift == 63 && byte > 1 { offset = start; throw error("varint overflows 64 bits") }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { offset = start; throw error("varint longer than 10 bytes") }
        }
    }

    /// A varint that must fit `limit`.
    public mutating func readLength(limit: Int) throws(DecodeError) -> Int {
        let start = offset
        let value = try readVarint()
        guard value <= UInt64(limit) else {
            offset = start
            throw error("length \(value) exceeds the limit of \(limit)")
        }
        return Int(value)
    }

    /// A varint element count that must fit `limit` and the bytes that remain, each element taking
    /// at least `minimumElementBytes`: a count no remaining input could hold is refused before
    /// anything is reserved for it.
    public mutating func readCount(limit: Int, minimumElementBytes: Int) throws(DecodeError) -> Int {
        let start = offset
        let count = try readLength(limit: limit)
        guard count <= remaining / max(1, minimumElementBytes) else {
            offset = start
            throw error("count \(count) of elements of at least \(minimumElementBytes) bytes exceeds the \(remaining) bytes left")
        }
        return count
    }

    /// A stored sequence number or LSN: a u64 of at most `Int64.max`. No history reaches that many
    /// writes, so a larger one is damage, and refusing it keeps every later `+ 1` from overflowing.
    public mutating func readCounter() throws(DecodeError) -> UInt64 {
        let start = offset
        let value = try readU64()
        guard value <= UInt64(Int64.max) else {
            offset = start
            throw error("counter \(value) is above \(Int64.max)")
        }
        return value
    }

    /// A `time`: i64 milliseconds within ``Timestamp/documentedRange`` (docs/PROTOCOL.md, section 1).
    /// A value outside is malformed, so no formatting or arithmetic later meets it.
    public mutating func readTimestamp() throws(DecodeError) -> Timestamp {
        let start = offset
        let value = try readI64()
        guard Timestamp.documentedRange.contains(value) else {
            offset = start
            throw error("time \(value) is outside \(Timestamp.minimum.milliseconds) ... \(Timestamp.maximum.milliseconds) (0001-01-01 ... 9999-12-31)")
        }
        return Timestamp(milliseconds: value)
    }

    public mutating func readBytes(_ count: Int) throws(DecodeError) -> UnsafeRawBufferPointer {
        try need(count)
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: base[offset..<(offset + count)])
    }

    /// A varint length then that many bytes of valid UTF-8.
    public mutating func readString(limit: Int = 1 << 20) throws(DecodeError) -> String {
        let start = offset
        let count = try readLength(limit: limit)
        let raw = try readBytes(count)
        guard let string = raw.withMemoryRebound(to: UInt8.self, Self.utf8String) else {
            offset = start
            throw error("string is not valid UTF-8")
        }
        return string
    }

    /// Most strings are ASCII, which needs no validation beyond the high bits (checked eight bytes at a
    /// time): about half the cost of `String(validating:as:)`, which the rest still get.
    static func utf8String(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        let raw = UnsafeRawBufferPointer(bytes)
        var highBits: UInt64 = 0
        var index = 0
        while index + 8 <= raw.count {
            highBits |= raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < raw.count {
            highBits |= UInt64(raw[index])
            index += 1
        }
        if highBits & 0x8080_8080_8080_8080 == 0 { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    public mutating func readUUID() throws(DecodeError) -> UUID16 {
        let high = try readBigEndianU64()
        return UUID16(high: high, low: try readBigEndianU64())
    }

    public mutating func readRecordID() throws(DecodeError) -> RecordID {
        let high = try readBigEndianU64()
        return RecordID(high: high, low: try readBigEndianU64())
    }

    public mutating func skip(_ count: Int) throws(DecodeError) {
        try need(count)
        offset += count
    }

    public func expectEnd() throws(DecodeError) {
        guard isAtEnd else { throw error("\(remaining) unexpected trailing bytes") }
    }
}

extension Array where Element == UInt8 {
    /// Runs `body` with a reader over this array.
    public func withByteReader<R>(_ body: (inout ByteReader) throws(DecodeError) -> R) throws(DecodeError) -> R {
        let result: Result<R, DecodeError> = withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            do throws(DecodeError) { return .success(try body(&reader)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
