/// A LearningRecord id: a ULID (48-bit millisecond time + 80 random bits), stored as 16 bytes and
/// shown as `lr_` followed by 26 Crockford base32 characters. Byte order equals time order.
public struct RecordID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let prefix = "lr_"
    public static let textLength = 29

    /// First 8 bytes, big-endian: 48 bits of milliseconds then the top 16 random bits.
    public var high: UInt64
    /// Last 8 bytes: the low 64 random bits.
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public init(milliseconds: UInt64, randomHigh: UInt16, randomLow: UInt64) {
        self.high = (milliseconds & 0xFFFF_FFFF_FFFF) << 16 | UInt64(randomHigh)
        self.low = randomLow
    }

    /// The creation time encoded in the id.
    public var milliseconds: UInt64 { high >> 16 }

    public static func < (lhs: RecordID, rhs: RecordID) -> Bool { (lhs.high, lhs.low) < (rhs.high, rhs.low) }

    public var description: String {
        var out = [UInt8](repeating: 0, count: 29)
        out[0] = UInt8(ascii: "l"); out[1] = UInt8(ascii: "r"); out[2] = UInt8(ascii: "_")
        // 128 bits -> 26 chars of 5 bits, the first carrying only the top 3 bits.
        for index in 0..<26 {
            let bitOffset = 128 - 5 * (26 - index)  // may be negative for index 0 (-2)
            let value = Self.bits(high: high, low: low, from: bitOffset, count: 5)
            out[3 + index] = Crockford.alphabet[Int(value)]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses `lr_` + 26 Crockford characters (case-insensitive; I/L read as 1, O as 0).
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        guard utf8.count == 29, utf8[0] | 0x20 == UInt8(ascii: "l"), utf8[1] | 0x20 == UInt8(ascii: "r"),
            utf8[2] == UInt8(ascii: "_")
        else { return nil }
        guard let first = Crockford.value(of: utf8[3]), first <= 7 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = UInt64(first)
        for byte in utf8[4...] {
            guard let value = Crockford.value(of: byte) else { return nil }
            high = high << 5 | low >> 59
            low = low << 5 | UInt64(value)
        }
        self.init(high: high, low: low)
    }

    private static func bits(high: UInt64, low: UInt64, from offset: Int, count: Int) -> UInt64 {
        // Bit 0 is the most significant bit of `high`.
        var value: UInt64 = 0
        for bit in offset..<(offset + count) {
            value <<= 1
            if bit < 0 { continue }
            let word = bit < 64 ? high : low
            let shift = UInt64(63 - bit % 64)
            value |= (word >> shift) & 1
        }
        return value
    }

    /// The 16 bytes in big-endian order.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: low >> UInt64(shift))) }
        return out
    }
}

enum Crockford {
    static let alphabet: [UInt8] = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    static let decode: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (index, byte) in alphabet.enumerated() {
            table[Int(byte)] = Int8(index)
            table[Int(byte | 0x20)] = Int8(index)
        }
        for byte in "IiLl".utf8 { table[Int(byte)] = 1 }
        for byte in "Oo".utf8 { table[Int(byte)] = 0 }
        return table
    }()

    @inline(__always)
    static func value(of byte: UInt8) -> UInt8? {
        let value = decode[Int(byte)]
        return value < 0 ? nil : UInt8(value)
    }
}

/// Generates strictly increasing ULIDs: a later call never returns a smaller id, even within one
/// millisecond (the random part is incremented) or when the clock steps back (the last time is kept).
public struct ULIDGenerator: Sendable {
    public private(set) var last: RecordID?

    public init(last: RecordID? = nil) { self.last = last }

    /// Resumes after `id` if it is newer than the last id generated.
    public mutating func observe(_ id: RecordID) {
        if let last, last >= id { return }
        last = id
    }

    public mutating func next<G: RandomNumberGenerator>(milliseconds: UInt64, using generator: inout G) -> RecordID {
        if let last, milliseconds <= last.milliseconds {
            // Same (or earlier) millisecond: increment the 80-bit random part; on overflow move to the next ms.
            var low = last.low &+ 1
            var randomHigh = UInt16(truncatingIfNeeded: last.high)
            var ms = last.milliseconds
            if low == 0 {
                randomHigh &+= 1
                if randomHigh == 0 { ms += 1; low = generator.next() >> 1 }
            }
            let id = RecordID(milliseconds: ms, randomHigh: randomHigh, randomLow: low)
            self.last = id
            return id
        }
        // Leave headroom below the top so that increments within one millisecond do not overflow.
        let id = RecordID(
            milliseconds: milliseconds, randomHigh: UInt16(truncatingIfNeeded: generator.next()) & 0x7FFF,
            randomLow: generator.next())
        self.last = id
        return id
    }
}
