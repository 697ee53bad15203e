import LearnStoreModel

/// Interns repeated strings (titles, providers, sources, app ids): each distinct value is stored once
/// and records hold a 4-byte reference. Reference 0 means null.
///
/// The values live in a ``PagedArray`` (captured by snapshots); the index that finds a value's
/// reference is rebuilt from them and never captured, so it is never copied.
public struct StringTable: Sendable {
    public private(set) var values = PagedArray<String>()
    private var lookup = InternIndex<String>()
    private var recent = RecentReferences()
    /// The UTF-8 of every value too long to be a small string (over 15 bytes), which the encoder
    /// writes from here: writing a `String` retains and releases its storage, and the values many
    /// records share (titles, providers) are the same objects on every event loop, whose cores then
    /// pass their reference counts back and forth on every record encoded.
    private var spelled = ByteArena()
    /// Per value, where `spelled` holds it: location << 32 | byte count; 0 for a value kept only as
    /// a `String` (a small string, which has no storage to retain, or one over the arena's limit).
    private var spans = PagedArray<UInt64>()

    public init() {}

    public var count: Int { values.count }

    /// Where the encoder finds `reference`'s UTF-8: in the table's arena (`span` non-zero), or in
    /// `string`.
    struct Spelling {
        let span: UInt64
        let string: String
    }

    @inline(__always)
    func spelling(_ reference: UInt32) -> Spelling {
        let span = spans[Int(reference) - 1]
        return span != 0 ? Spelling(span: span, string: "") : Spelling(span: 0, string: values[Int(reference) - 1])
    }

    /// The bytes of a spelled value (`spelling(_:).span` non-zero).
    @inline(__always)
    func withSpelledUTF8<R>(_ span: UInt64, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        spelled.withBytes(at: UInt32(truncatingIfNeeded: span >> 32), length: Int(span & 0xFFFF_FFFF), body)
    }

    /// Keeps `spans` one per value.
    private mutating func spellNewValues() {
        while spans.count < values.count {
            var value = values[spans.count]
            let span: UInt64 = value.withUTF8 { utf8 in
                guard utf8.count > 15, utf8.count < ByteArena.pageSize else { return 0 }
                return UInt64(spelled.append(bytes: UnsafeRawBufferPointer(utf8))) << 32 | UInt64(utf8.count)
            }
            spans.append(span)
        }
    }

    public func string(_ reference: UInt32) -> String? {
        reference == 0 ? nil : values[Int(reference) - 1]
    }

    /// The reference for `value`, adding it if new.
    public mutating func intern(_ value: String?) -> UInt32 {
        guard let value else { return 0 }
        let reference = recent.intern(value, slot: RecentReferences.slot(of: value), values: &values, lookup: &lookup)
        if spans.count < values.count { spellNewValues() }
        return reference
    }

    /// The reference for `value` if it was ever interned (queries never add strings).
    public func find(_ value: String) -> UInt32? { lookup.find(value, in: values) }

    /// Rebuilds from a list of values in reference order (snapshot load).
    public init(values list: [String]) {
        lookup = InternIndex(capacity: list.count)
        for value in list {
            values.append(value)
            lookup.add(UInt32(values.count), of: value, in: values)
        }
        spellNewValues()
    }

    public var allValues: [String] { Array(values) }

    var estimatedBytes: Int {
        values.reduce(0) { $0 + max(0, $1.utf8.count - 15) + 16 } + lookup.estimatedBytes + spelled.capacityBytes + spans.capacityBytes
    }
}

/// Interns UUIDs that repeat across records (authors, cohorts, persons). Reference 0 means null.
public struct UUIDTable: Sendable {
    public private(set) var values = PagedArray<UUID16>()
    private var lookup = InternIndex<UUID16>()
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

    public func find(_ value: UUID16) -> UInt32? { lookup.find(value, in: values) }

    public init(values list: [UUID16]) {
        lookup = InternIndex(capacity: list.count)
        for value in list {
            values.append(value)
            lookup.add(UInt32(values.count), of: value, in: values)
        }
    }

    public var allValues: [UUID16] { Array(values) }

    var estimatedBytes: Int { values.count * 16 + lookup.estimatedBytes }
}

/// A small direct-mapped cache in front of an interning table's dictionary: most interned values
/// repeat within a write (the caller is both created_by and updated_by) or across records (a few
/// sources, providers, titles, cohorts), and a hit skips the dictionary's SipHash and its cache
/// miss (interning was 9 % of server CPU in a bulk load). The slot comes from an unkeyed hash, so
/// crafted values can only make the cache miss; the index behind it keeps using `Hasher`.
struct RecentReferences: Sendable {
    static let size = 64
    var references = [UInt32](repeating: 0, count: size)

    /// The reference for `value`: from the cache, else from `lookup`, else appended to `values`.
    mutating func intern<Value: Hashable & Sendable>(_ value: Value, slot: Int, values: inout PagedArray<Value>, lookup: inout InternIndex<Value>) -> UInt32 {
        let cached = references[slot]
        if cached != 0 && values[Int(cached) - 1] == value { return cached }
        let reference: UInt32
        if let found = lookup.find(value, in: values) {
            reference = found
        } else {
            values.append(value)
            reference = UInt32(values.count)
            lookup.add(reference, of: value, in: values)
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

/// Which reference an interning table gave a value: a ``SlotHashIndex`` of references keyed by the
/// value's `hashValue` (the process's seeded `Hasher`, so client-chosen values cannot flood one chain),
/// with the value itself compared in the table. About 6 bytes a value where a `[Value: UInt32]` took
/// 20–40 and, in a small tenant, a dictionary's whole first table: the interning dictionaries were the
/// largest part of a small tenant's fixed cost. References past what a slot index holds (patches can
/// intern values without adding records) go to a dictionary.
struct InternIndex<Value: Hashable & Sendable>: Sendable {
    private var references: SlotHashIndex
    private var overflow: [Value: UInt32] = [:]
    /// References up to this one are in the slot index.
    private let indexedThrough: UInt32

    init(capacity: Int = 0, indexedThrough: UInt32 = SlotHashIndex.maximumSlot + 1) {
        self.indexedThrough = min(indexedThrough, SlotHashIndex.maximumSlot + 1)
        references = SlotHashIndex(capacity: min(capacity, Int(self.indexedThrough)))
    }

    @inline(__always)
    func find(_ value: Value, in values: PagedArray<Value>) -> UInt32? {
        if let found = references.first(hash: value.hashValue, matches: { values[Int($0)] == value }) { return found + 1 }
        return overflow.isEmpty ? nil : overflow[value]
    }

    /// Records that `reference` (1-based, already appended to `values`) holds `value`.
    mutating func add(_ reference: UInt32, of value: Value, in values: PagedArray<Value>) {
        guard reference <= indexedThrough else {
            overflow[value] = reference
            return
        }
        references.insert(reference - 1, hash: value.hashValue) { values[Int($0)].hashValue }
    }

    var estimatedBytes: Int { references.estimatedBytes + overflow.count * 40 }
}
