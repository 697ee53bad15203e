/// Canvas ids arrive as decimal strings (stringify_ids) and may exceed 2^53, so they are kept as the text
/// Canvas sent and never pass through `Double`. Leading zeros are kept as given ("0012" stays "0012").
public enum CanvasID {
    /// Longer than any Int64 id, short enough that a hostile event cannot store megabytes as a key.
    public static let maximumLength = 40

    /// True when `text` is 1...40 ASCII digits.
    public static func isValid(_ text: String) -> Bool {
        var count = 0
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return false }
            count += 1
            if count > maximumLength { return false }
        }
        return count > 0
    }

    /// Numeric order for digit strings of any length; non-digit keys (synthetic result keys) sort after
    /// every numeric id, among themselves by bytes. Equal numbers with different leading zeros are ordered
    /// by their text so the order stays total.
    public static func compare(_ lhs: String, _ rhs: String) -> Int {
        let left = Digits(lhs)
        let right = Digits(rhs)
        switch (left, right) {
        case let (.some(a), .some(b)):
            if a.significantCount != b.significantCount { return a.significantCount < b.significantCount ? -1 : 1 }
            let byDigits = bytewise(lhs.utf8.dropFirst(a.leadingZeros), rhs.utf8.dropFirst(b.leadingZeros))
            return byDigits != 0 ? byDigits : bytewise(lhs.utf8, rhs.utf8)
        case (.some, .none): return -1
        case (.none, .some): return 1
        case (.none, .none): return bytewise(lhs.utf8, rhs.utf8)
        }
    }

    /// `lhs` before `rhs` in ``compare(_:_:)`` order.
    public static func precedes(_ lhs: String, _ rhs: String) -> Bool { compare(lhs, rhs) < 0 }

    /// The id's value when it is all digits and fits 64 bits.
    public static func numericValue(_ text: String) -> UInt64? {
        guard !text.isEmpty, text.utf8.count <= 20 else { return nil }
        var value: UInt64 = 0
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return nil }
            value = sum
        }
        return value
    }

    private struct Digits {
        var leadingZeros = 0
        var significantCount = 0
        init?(_ text: String) {
            var seenNonZero = false
            var any = false
            for byte in text.utf8 {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                any = true
                if !seenNonZero && byte == UInt8(ascii: "0") { leadingZeros += 1 } else { seenNonZero = true; significantCount += 1 }
            }
            guard any else { return nil }
        }
    }

    private static func bytewise<A: Sequence<UInt8>, B: Sequence<UInt8>>(_ a: A, _ b: B) -> Int {
        var left = a.makeIterator()
        var right = b.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case let (x?, y?): if x != y { return x < y ? -1 : 1 }
            }
        }
    }
}

/// A result key in Canvas order, with the common case (an id that fits 64 bits) compared as one integer.
public struct CanvasIDOrder: Comparable, Hashable, Sendable {
    /// The id's value, or `UInt64.max` when it is not a 64-bit decimal (then ``key`` decides).
    public let rank: UInt64
    public let key: String

    public init(_ key: String) {
        self.key = key
        rank = CanvasID.numericValue(key) ?? .max
    }

    public static func < (lhs: CanvasIDOrder, rhs: CanvasIDOrder) -> Bool {
        if lhs.rank != rhs.rank { return lhs.rank < rhs.rank }
        return lhs.key != rhs.key && CanvasID.compare(lhs.key, rhs.key) < 0
    }
}
