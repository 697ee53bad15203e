import LearnStoreModel

/// Binary layout shared by every entity (docs/ROLLUPS.md, "Binary format"): a format-version byte, the
/// required fields, then a u64 little-endian presence bitmap (bit n = optional field n is present) and
/// the present optional fields in order. Strings are varint length + UTF-8, timestamps i64 milliseconds,
/// numbers IEEE doubles, integers zigzag varints, booleans one byte.
public enum OutcomeCodec {
    /// Bump when a layout changes; decoders refuse versions they do not know.
    public static let formatVersion: UInt8 = 1
    static let maxStringBytes = 1 << 20
    static let maxRatings = 1024

    static func readVersion(_ reader: inout ByteReader, of what: String) throws(DecodeError) {
        let start = reader.offset
        let version = try reader.readU8()
        guard version == formatVersion else {
            throw DecodeError(offset: start, reason: "unsupported \(what) format version \(version)")
        }
    }
}

/// Collects optional fields behind one presence bitmap, written in place (no temporary buffer).
struct FieldWriter {
    fileprivate(set) var out: ByteWriter
    fileprivate var bits: UInt64 = 0
    fileprivate var index = 0

    private mutating func mark(_ present: Bool) {
        precondition(index < 64, "at most 64 optional fields")
        if present { bits |= 1 << UInt64(index) }
        index += 1
    }

    mutating func string(_ value: String?) {
        mark(value != nil)
        if let value { out.writeString(value) }
    }

    mutating func timestamp(_ value: Timestamp?) {
        mark(value != nil)
        if let value { out.writeI64(value.milliseconds) }
    }

    mutating func double(_ value: Double?) {
        mark(value != nil)
        if let value { out.writeDouble(value) }
    }

    mutating func int(_ value: Int?) {
        mark(value != nil)
        if let value { out.writeZigZag(Int64(value)) }
    }

    mutating func bool(_ value: Bool?) {
        mark(value != nil)
        if let value { out.writeU8(value ? 1 : 0) }
    }

    mutating func nested<T>(_ value: T?, _ encode: (T, inout ByteWriter) -> Void) {
        mark(value != nil)
        if let value { encode(value, &out) }
    }
}

/// Reads what ``FieldWriter`` wrote, refusing bitmaps with bits beyond the known fields.
struct FieldReader {
    private let bits: UInt64
    private var index = 0

    init(_ reader: inout ByteReader, fieldCount: Int) throws(DecodeError) {
        let start = reader.offset
        bits = try reader.readU64()
        let known: UInt64 = fieldCount >= 64 ? .max : (1 << UInt64(fieldCount)) - 1
        guard bits & ~known == 0 else { throw DecodeError(offset: start, reason: "unknown optional field bits") }
    }

    private mutating func present() -> Bool {
        defer { index += 1 }
        return bits & (1 << UInt64(index)) != 0
    }

    mutating func string(_ reader: inout ByteReader) throws(DecodeError) -> String? {
        present() ? try reader.readString(limit: OutcomeCodec.maxStringBytes) : nil
    }

    mutating func timestamp(_ reader: inout ByteReader) throws(DecodeError) -> Timestamp? {
        present() ? try reader.readTimestamp() : nil
    }

    mutating func double(_ reader: inout ByteReader) throws(DecodeError) -> Double? {
        present() ? try reader.readDouble() : nil
    }

    mutating func int(_ reader: inout ByteReader) throws(DecodeError) -> Int? {
        guard present() else { return nil }
        let start = reader.offset
        let value = try reader.readZigZag()
        guard let exact = Int(exactly: value) else { throw DecodeError(offset: start, reason: "integer out of range") }
        return exact
    }

    mutating func bool(_ reader: inout ByteReader) throws(DecodeError) -> Bool? {
        guard present() else { return nil }
        return try reader.readBool()
    }

    mutating func nested<T>(_ reader: inout ByteReader,
                            _ decode: (inout ByteReader) throws(DecodeError) -> T) throws(DecodeError) -> T? {
        present() ? try decode(&reader) : nil
    }
}

extension ByteWriter {
    /// Writes the optional fields `body` adds behind their presence bitmap.
    mutating func writeFields(_ body: (inout FieldWriter) -> Void) {
        let bitsOffset = count
        writeU64(0)
        var fields = FieldWriter(out: ByteWriter(capacity: 0))
        swap(&fields.out, &self)
        body(&fields)
        swap(&fields.out, &self)
        withUnsafeBytes(of: fields.bits.littleEndian) { raw in
            for index in 0..<8 { bytes[bitsOffset + index] = raw[index] }
        }
    }

    mutating func writeZigZag(_ value: Int64) {
        writeVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    mutating func writeBool(_ value: Bool) { writeU8(value ? 1 : 0) }
}

extension ByteReader {
    mutating func readZigZag() throws(DecodeError) -> Int64 {
        let raw = try readVarint()
        return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
    }

    mutating func readBool() throws(DecodeError) -> Bool {
        let start = offset
        switch try readU8() {
        case 0: return false
        case 1: return true
        default: throw DecodeError(offset: start, reason: "boolean byte is not 0 or 1")
        }
    }

    /// A required id or key: a non-empty string.
    mutating func readKey() throws(DecodeError) -> String {
        let start = offset
        let key = try readString(limit: OutcomeCodec.maxStringBytes)
        guard !key.isEmpty else { throw DecodeError(offset: start, reason: "empty key") }
        return key
    }
}

extension Array where Element == UInt8 {
    /// Decodes one value that must use every byte.
    func decodeExactly<T>(_ decode: (inout ByteReader) throws(DecodeError) -> T) throws(DecodeError) -> T {
        try withByteReader { (reader: inout ByteReader) throws(DecodeError) -> T in
            let value = try decode(&reader)
            try reader.expectEnd()
            return value
        }
    }
}
