/// A UUID stored as 16 bytes (two big-endian halves), printed in canonical lowercase 8-4-4-4-12 form.
public struct UUID16: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public static let zero = UUID16(high: 0, low: 0)

    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (hex digits in either case).
    public init?(_ text: some StringProtocol) {
        var utf8 = Array(text.utf8)
        if utf8.count != 36 { return nil }
        guard let parsed = utf8.withUnsafeMutableBufferPointer({ UUID16(utf8: UnsafeBufferPointer($0)) }) else { return nil }
        self = parsed
    }

    public init?(utf8: UnsafeBufferPointer<UInt8>) {
        guard utf8.count == 36 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        var nibbles = 0
        for (index, byte) in utf8.enumerated() {
            if index == 8 || index == 13 || index == 18 || index == 23 {
                guard byte == UInt8(ascii: "-") else { return nil }
                continue
            }
            guard let value = HexDigits.value(of: byte) else { return nil }
            if nibbles < 16 { high = high << 4 | UInt64(value) } else { low = low << 4 | UInt64(value) }
            nibbles += 1
        }
        self.init(high: high, low: low)
    }

    public var description: String {
        var out = [UInt8](repeating: UInt8(ascii: "-"), count: 36)
        var position = 0
        for nibbleIndex in 0..<32 {
            if position == 8 || position == 13 || position == 18 || position == 23 { position += 1 }
            let word = nibbleIndex < 16 ? high : low
            let shift = UInt64(60 - (nibbleIndex % 16) * 4)
            out[position] = HexDigits.lower[Int((word >> shift) & 0xF)]
            position += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func < (lhs: UUID16, rhs: UUID16) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// The 16 bytes, most significant first (RFC 4122 byte order).
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: low >> UInt64(shift))) }
        return out
    }

    /// A random version-4 UUID.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> UUID16 {
        let high = (generator.next() & ~0xF000) | 0x4000
        let low = (generator.next() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return UUID16(high: high, low: low)
    }

    public static func random() -> UUID16 {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }
}

enum HexDigits {
    static let lower: [UInt8] = Array("0123456789abcdef".utf8)

    @inline(__always)
    static func value(of byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte &- UInt8(ascii: "A") &+ 10
        default: return nil
        }
    }
}
