import LearnStoreModel

/// Interns repeated strings (titles, providers, sources, app ids): each distinct value is stored once
/// and records hold a 4-byte reference. Reference 0 means null.
///
/// The values live in a ``PagedArray`` (captured by snapshots); the lookup dictionary is rebuilt from
/// them and never captured, so it is never copied.
public struct StringTable: Sendable {
    public private(set) var values = PagedArray<String>()
    private var lookup: [String: UInt32] = [:]
    private var recent = RecentReferences()

    public init() {}

    public var count: Int { values.count }

    public func string(_ reference: UInt32) -> String? {
        reference == 0 ? nil : values[Int(reference) - 1]
    }

    /// The reference for `value`, adding it if new.
    public mutating func intern(_ value: String?) -> UInt32 {
        guard let value else { return 0 }
        return recent.intern(value, slot: RecentReferences.slot(of: value), values: &values, lookup: &lookup)
    }

    /// The reference for `value` if it was ever interned (queries never add strings).
    public func find(_ value: String) -> UInt32? { lookup[value] }

    /// Rebuilds from a list of values in reference order (snapshot load).
    public init(values list: [String]) {
        for value in list {
            values.append(value)
            lookup[value] = UInt32(values.count)
        }
    }

    public var allValues: [String] { Array(values) }

    var estimatedBytes: Int {
        values.reduce(0) { $0 + max(0, $1.utf8.count - 15) + 16 + 40 }
    }
}

/// Interns UUIDs that repeat across records (authors, cohorts, persons). Reference 0 means null.
public struct UUIDTable: Sendable {
    public private(set) var values = PagedArray<UUID16>()
    private var lookup: [UUID16: UInt32] = [:]
    private var recent = RecentReferences()

    public init() {}

    public var count: Int { values.count }

    @inline(__always)
    public func uuid(_ reference: UInt32) -> UUID16? {
        reference == 0 ? nil : values[Int(reference) - 1]
    }

    public mutating func intern(_ value: UUID16?) -> UInt32 {
        guard let value else { return 0 }
        return recent.intern(value, slot: RecentReferences.slot(of: value), values: &values, lookup: &lookup)
    }

    public func find(_ value: UUID16) -> UInt32? { lookup[value] }

    public init(values list: [UUID16]) {
        lookup.reserveCapacity(list.count)
        for value in list {
            values.append(value)
            lookup[value] = UInt32(values.count)
        }
    }

    public var allValues: [UUID16] { Array(values) }

    var estimatedBytes: Int { values.count * (16 + 28) }
}

/// A small direct-mapped cache in front of an interning table's dictionary: most interned values
/// repeat within a write (the caller is both created_by and updated_by) or across records (a few
/// sources, providers, titles, cohorts), and a hit skips the dictionary's SipHash and its cache
/// miss (interning was 9 % of server CPU in a bulk load). The slot comes from an unkeyed hash, so
/// crafted values can only make the cache miss; the dictionary behind it keeps using `Hasher`.
struct RecentReferences: Sendable {
    static let size = 64
    var references = [UInt32](repeating: 0, count: size)

    /// The reference for `value`: from the cache, else from `lookup`, else appended to `values`.
    mutating func intern<Value: Hashable>(_ value: Value, slot: Int, values: inout PagedArray<Value>, lookup: inout [Value: UInt32]) -> UInt32 {
        let cached = references[slot]
        if cached != 0 && values[Int(cached) - 1] == value { return cached }
        let reference: UInt32
        if let found = lookup[value] {
            reference = found
        } else {
            values.append(value)
            reference = UInt32(values.count)
            lookup[value] = reference
        }
        references[slot] = reference
        return reference
    }

    static func slot(of value: UUID16) -> Int {
        Int(truncatingIfNeeded: ((value.high &* 0x9E37_79B9_7F4A_7C15) ^ value.low) >> 58)
    }

    static func slot(of value: String) -> Int {
        var value = value
        return value.withUTF8 { utf8 in
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325
            for byte in utf8.prefix(32) { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
            return Int(truncatingIfNeeded: ((hash ^ UInt64(utf8.count)) &* 0x9E37_79B9_7F4A_7C15) >> 58)
        }
    }
}
