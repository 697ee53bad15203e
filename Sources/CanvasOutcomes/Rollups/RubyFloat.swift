/// Canvas computes rollups in Ruby `Float`s. These replicate the two Ruby operations whose results differ
/// from a naive Swift version, so our rollups match Canvas to the last bit (docs/ROLLUPS.md, "Rounding").
public enum RubyFloat {
    /// Ruby's `Float#round(digits)` (numeric.c, `flo_round` with the default `half: :up`): round
    /// `x * 10^digits` half away from zero, then bump up by one unit when the decimal half-way point,
    /// `(f + 0.5) / 10^digits`, is at or below `x`. This reads `x` as its shortest decimal, so 1.005
    /// (binary 1.00499999999999989…) rounds to 1.01 and 3.175 to 3.18, where `(x * 100).rounded() / 100`
    /// gives 1.0 and 3.17.
    public static func round(_ x: Double, digits: Int = 2) -> Double {
        precondition((1...14).contains(digits), "Ruby switches to rational rounding above 14 digits")
        guard x != 0, x.isFinite else { return x }
        let binaryExponent = Int(x.exponent) + 1  // C frexp's exponent: x = m * 2^e with 0.5 <= |m| < 1
        // float_round_overflow: x already has no digits beyond `digits`.
        if digits >= 17 - (binaryExponent > 0 ? binaryExponent / 4 : binaryExponent / 3 - 1) { return x }
        // float_round_underflow: x is far below one unit of the last digit.
        if digits < -(binaryExponent > 0 ? binaryExponent / 3 + 1 : binaryExponent / 4) { return 0 }
        let scale = pow10(digits)
        return roundHalfUp(x, scale) / scale
    }

    /// numeric.c `round_half_up(x, s)`.
    static func roundHalfUp(_ x: Double, _ scale: Double) -> Double {
        var f = (x * scale).rounded(.toNearestOrAwayFromZero)
        if x > 0 {
            if (f + 0.5) / scale <= x { f += 1 }
        } else {
            if (f - 0.5) / scale >= x { f -= 1 }
        }
        return f
    }

    private static func pow10(_ digits: Int) -> Double {
        var value = 1.0
        for _ in 0..<digits { value *= 10 }
        return value
    }

    /// Ruby's `Array#sum` over Floats (array.c): Kahan-Babuska compensated summation starting from 0.
    public static func sum(_ values: some Sequence<Double>) -> Double {
        var total = CompensatedSum()
        for value in values { total.add(value) }
        return total.value
    }
}

/// The running state of Ruby's `Array#sum` (Kahan-Babuska), for sums over filtered values.
public struct CompensatedSum: Sendable {
    private var sum = 0.0
    private var compensation = 0.0

    public init() {}

    public mutating func add(_ x: Double) {
        // Non-finite handling as in array.c: NaN is sticky, infinities replace the sum.
        if sum.isNaN { return }
        if x.isNaN { sum = x; return }
        if x.isInfinite {
            sum = sum.isInfinite && sum.sign != x.sign ? .nan : x
            return
        }
        if sum.isInfinite { return }
        let t = sum + x
        if abs(sum) >= abs(x) {
            compensation += (sum - t) + x
        } else {
            compensation += (x - t) + sum
        }
        sum = t
    }

    public var value: Double { sum + compensation }
}
