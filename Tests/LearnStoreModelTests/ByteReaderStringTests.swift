import Testing
@testable import LearnStoreModel

/// Strings read from frames and files: ASCII takes a fast path, everything else is validated, and
/// invalid UTF-8 is a typed error at any position, on either side of an eight-byte boundary.
@Suite struct ByteReaderStringTests {
    static func frame(_ bytes: [UInt8]) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeVarint(UInt64(bytes.count))
        writer.writeBytes(bytes)
        return writer.bytes
    }

    static func read(_ bytes: [UInt8]) -> String? {
        let framed = frame(bytes)
        return framed.withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            return try? reader.readString()
        }
    }

    @Test func everyLengthOfASCIIAndOfMultiByteTextRoundTrips() {
        for length in 0...40 {
            let ascii = String(repeating: "a", count: length)
            #expect(Self.read(Array(ascii.utf8)) == ascii)
            let mixed = String(repeating: "é", count: length) + String(repeating: "z", count: length % 9) + "🎓"
            #expect(Self.read(Array(mixed.utf8)) == mixed)
        }
    }

    @Test func invalidUTF8IsRefusedWherever() {
        for length in 1...24 {
            for position in 0..<length {
                for bad: [UInt8] in [[0xFF], [0xC3], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80]] {
                    var bytes = [UInt8](repeating: 0x61, count: length)
                    bytes.replaceSubrange(position..<min(length, position + 1), with: bad)
                    #expect(Self.read(bytes) == nil, "\(bytes)")
                }
            }
        }
    }

    @Test func aRefusedStringLeavesTheReaderWhereItWas() {
        let framed = Self.frame([0x61, 0xFF, 0x62])
        framed.withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            #expect(throws: DecodeError.self) { try reader.readString() }
            #expect(reader.offset == 0)
        }
    }
}
