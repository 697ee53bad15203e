/// A 128-bit digest of an entity's binary content: the last, deterministic tie-break between two versions
/// with the same timestamps. It must not depend on the process, so it is not `Hasher` (randomly seeded):
/// two independent 64-bit lanes (FNV-1a and a multiply-rotate mix) over the same bytes.
public struct ContentDigest: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public init(bytes: some Sequence<UInt8>) {
        var fnv: UInt64 = 0xcbf2_9ce4_8422_2325
        var mix: UInt64 = 0x9e37_79b9_7f4a_7c15
        var count: UInt64 = 0
        for byte in bytes {
            fnv = (fnv ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            mix = ((mix ^ UInt64(byte)) &* 0xff51_afd7_ed55_8ccd)
            mix = (mix << 29) | (mix >> 35)
            count &+= 1
        }
        high = fnv
        low = ContentDigest.finalize(mix ^ count)
    }

    private static func finalize(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 33)) &* 0xff51_afd7_ed55_8ccd
        z = (z ^ (z >> 33)) &* 0xc4ce_b9fe_1a85_ec53
        return z ^ (z >> 33)
    }

    public static func < (lhs: ContentDigest, rhs: ContentDigest) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    public var description: String {
        let text = String(high, radix: 16) + ":" + String(low, radix: 16)
        return text
    }
}
