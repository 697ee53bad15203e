/// An instant with millisecond precision: milliseconds since 1970-01-01T00:00:00Z.
/// Shown as RFC 3339 UTC with milliseconds, e.g. `2024-01-01T00:00:00.000Z`.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    /// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z: the range RFC 3339 can print.
    public static let minimum = Timestamp(milliseconds: -62_135_596_800_000)
    public static let maximum = Timestamp(milliseconds: 253_402_300_799_999)

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.milliseconds < rhs.milliseconds }

    public var description: String { rfc3339 }

    /// Whether the instant lies in ``minimum`` ... ``maximum``, the documented `time` range.
    public var isInDocumentedRange: Bool { Self.documentedRange.contains(milliseconds) }

    /// The `time` range of docs/PROTOCOL.md, section 1, in milliseconds.
    public static let documentedRange = minimum.milliseconds...maximum.milliseconds

    /// RFC 3339 for an instant in the documented range; any other value (only a bug or damaged data
    /// can hold one) is shown as its raw millisecond count, because the calendar arithmetic below
    /// would overflow or print a year RFC 3339 cannot hold.
    public var rfc3339: String {
        guard isInDocumentedRange else { return "\(milliseconds) ms (outside 0001-01-01 ... 9999-12-31)" }
        var out = [UInt8]()
        out.reserveCapacity(24)
        let ms = milliseconds
        let days = ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
        let msOfDay = ms - days * 86_400_000
        let (year, month, day) = CivilCalendar.civil(fromDays: days)
        func put(_ value: Int64, digits: Int) {
            var divisor: Int64 = 1
            for _ in 1..<digits { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(rest / divisor))
                rest %= divisor
                divisor /= 10
            }
        }
        put(year, digits: 4); out.append(UInt8(ascii: "-"))
        put(month, digits: 2); out.append(UInt8(ascii: "-"))
        put(day, digits: 2); out.append(UInt8(ascii: "T"))
        put(msOfDay / 3_600_000, digits: 2); out.append(UInt8(ascii: ":"))
        put(msOfDay / 60_000 % 60, digits: 2); out.append(UInt8(ascii: ":"))
        put(msOfDay / 1000 % 60, digits: 2); out.append(UInt8(ascii: "."))
        put(msOfDay % 1000, digits: 3); out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Why a text is not an instant: a reason a person can act on.
    public struct ParseFailure: Error, Sendable, Equatable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }

        static let malformed = ParseFailure(
            reason: "must be an ISO 8601 date-time with offset, e.g. 2024-05-01T12:00:00Z, or a date")
        static let leapSecond = ParseFailure(
            reason: "has seconds = 60 (a leap second); LearnStore times have no leap seconds, write :59.999 or the next minute's :00")
        static let outOfRange = ParseFailure(reason: "is outside 0001-01-01T00:00:00Z ... 9999-12-31T23:59:59.999Z")
    }

    /// Parses an ISO 8601 / RFC 3339 instant: `YYYY-MM-DDTHH:MM[:SS[.fraction]]` followed by `Z`,
    /// `±HH:MM` or `±HHMM` (the offset is required), or a bare date `YYYY-MM-DD` read as midnight UTC.
    /// Fractions beyond milliseconds are truncated toward the past. A leap second (`:60`) is refused:
    /// stored times count milliseconds without leap seconds, and folding it into `:59` would store
    /// an instant other than the one sent.
    public init?(iso8601 text: some StringProtocol) {
        guard case .success(let value) = Timestamp.parse(Array(text.utf8)) else { return nil }
        self = value
    }

    /// Like ``init(iso8601:)``, but says why a text is refused.
    public init(validatingISO8601 text: some StringProtocol) throws(ParseFailure) {
        self = try Timestamp.parse(Array(text.utf8)).get()
    }

    static func parse(_ bytes: [UInt8]) -> Result<Timestamp, ParseFailure> {
        guard let value = parseFields(bytes) else { return .failure(.malformed) }
        switch value {
        case .leapSecond: return .failure(.leapSecond)
        case .instant(let ms):
            let instant = Timestamp(milliseconds: ms)
            return instant.isInDocumentedRange ? .success(instant) : .failure(.outOfRange)
        }
    }

    private enum Parsed { case instant(Int64), leapSecond }

    private static func parseFields(_ bytes: [UInt8]) -> Parsed? {
        var position = 0
        func digits(_ count: Int) -> Int64? {
            guard position + count <= bytes.count else { return nil }
            var value: Int64 = 0
            for _ in 0..<count {
                let byte = bytes[position]
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
                position += 1
            }
            return value
        }
        func expect(_ char: Character) -> Bool {
            guard position < bytes.count, bytes[position] == char.asciiValue! else { return false }
            position += 1
            return true
        }
        guard let year = digits(4), expect("-"), let month = digits(2), expect("-"), let day = digits(2) else {
            return nil
        }
        guard year >= 1, (1...12).contains(month), day >= 1,
            day <= CivilCalendar.daysInMonth(year: year, month: month)
        else { return nil }
        let dayNumber = CivilCalendar.days(fromYear: year, month: month, day: day)
        if position == bytes.count { return .instant(dayNumber * 86_400_000) }
        guard position < bytes.count, [UInt8(ascii: "T"), UInt8(ascii: "t"), UInt8(ascii: " ")].contains(bytes[position])
        else { return nil }
        position += 1
        guard let hour = digits(2), expect(":"), let minute = digits(2), hour < 24, minute < 60 else { return nil }
        var second: Int64 = 0
        var millis: Int64 = 0
        var isLeapSecond = false
        if expect(":") {
            guard let s = digits(2), s <= 60 else { return nil }
            // Judged once the whole text parsed, so a malformed text is reported as malformed.
            isLeapSecond = s == 60
            second = s
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") || bytes[position] == UInt8(ascii: ",") {
                position += 1
                var count = 0
                while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
                    if count < 3 { millis = millis * 10 + Int64(bytes[position] - UInt8(ascii: "0")) }
                    count += 1
                    position += 1
                }
                guard count > 0 else { return nil }
                if count < 3 { for _ in count..<3 { millis *= 10 } }
            }
        }
        guard position < bytes.count else { return nil }  // an offset is required
        var offsetMinutes: Int64 = 0
        switch bytes[position] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            position += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let negative = bytes[position] == UInt8(ascii: "-")
            position += 1
            guard let offsetHours = digits(2) else { return nil }
            _ = expect(":")
            guard let offsetMins = digits(2), offsetHours < 24, offsetMins < 60 else { return nil }
            offsetMinutes = (offsetHours * 60 + offsetMins) * (negative ? -1 : 1)
        default:
            return nil
        }
        guard position == bytes.count else { return nil }
        if isLeapSecond { return .leapSecond }
        // At most 4 year digits, so no product or sum here can overflow.
        return .instant(((dayNumber * 24 + hour) * 60 + minute - offsetMinutes) * 60_000 + second * 1000 + millis)
    }
}

/// Proleptic Gregorian calendar arithmetic (Howard Hinnant's days-from-civil algorithms).
enum CivilCalendar {
    static func days(fromYear y: Int64, month m: Int64, day d: Int64) -> Int64 {
        let year = m <= 2 ? y - 1 : y
        let era = (year >= 0 ? year : year - 399) / 400
        let yearOfEra = year - era * 400
        let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
