import LearnStoreModel

/// Interns repeated strings (titles, providers, sources, app ids): each distinct value is stored once
/// and records hold a 4-byte reference. Reference 0 means null.
///
/// The values live in a ``PagedArray`` (captured by snapshots); the lookup dictionary is rebuilt from
/// them and never captured, so it is never copied.
public struct StringTable: Sendable {
    public private(set) var values = PagedArray<String>()
    private var lookup: [String: UInt32] = [:]

    public init() {}

    public var count: Int { values.count }

    public func string(_ reference: UInt32) -> String? {
        reference == 0 ? nil : values[Int(reference) - 1]
    }

    /// The reference for `value`, adding it if new.
    public mutating func intern(_ value: String?) -> UInt32 {
        guard let value else { return 0 }
        if let found = lookup[value] { return found }
        values.append(value)
        let reference = UInt32(values.count)
        lookup[value] = reference
        return reference
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

    public init() {}

    public var count: Int { values.count }

    @inline(__always)
    public func uuid(_ reference: UInt32) -> UUID16? {
        reference == 0 ? nil : values[Int(reference) - 1]
    }

    public mutating func intern(_ value: UUID16?) -> UInt32 {
        guard let value else { return 0 }
        if let found = lookup[value] { return found }
        values.append(value)
        let reference = UInt32(values.count)
        lookup[value] = reference
        return reference
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
