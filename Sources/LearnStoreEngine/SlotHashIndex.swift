import CPrefetch

/// An open-addressing hash table of record slots (linear probing, backward-shift deletion).
///
/// Each entry is 4 bytes: 27 bits of slot and a 5-bit tag from the key's hash, so most probes that
/// do not match are rejected without reading the record. The key itself is read from the record
/// through the caller's `matches` closure. That keeps the primary index near 6 bytes per record
/// instead of the ~30 of a `Dictionary<RecordID, UInt32>`. Sizes are not powers of two (positions
/// come from a multiply-shift), and the table grows by half, so its load stays between 0.5 and 0.75.
/// Duplicate keys are allowed (multimap), for secondary indexes such as certification_ref.
public struct SlotHashIndex: Sendable {
    static let empty = UInt32.max
    static let slotBits: UInt32 = 27
    static let slotMask: UInt32 = (1 << slotBits) - 1
    /// The largest slot an entry can hold (a tenant holds at most this many record slots).
    public static let maximumSlot = slotMask - 1

    private var table: ContiguousArray<UInt32>
    public private(set) var count = 0

    public init(capacity: Int = 16) {
        table = ContiguousArray(repeating: Self.empty, count: max(16, capacity * 4 / 3 + 1))
    }

    public var bucketCount: Int { table.count }

    @inline(__always)
    private static func position(_ hash: Int, size: Int) -> Int {
        Int((UInt64(UInt32(truncatingIfNeeded: hash)) &* UInt64(size)) >> 32)
    }

    @inline(__always)
    private static func tag(_ hash: Int) -> UInt32 { UInt32(truncatingIfNeeded: hash >> 32) & 0x1F }

    @inline(__always)
    private static func entry(_ slot: UInt32, _ hash: Int) -> UInt32 { tag(hash) << slotBits | slot }

    @inline(__always)
    public func first(hash: Int, matches: (UInt32) -> Bool) -> UInt32? {
        let size = table.count
        let wanted = Self.tag(hash)
        var index = Self.position(hash, size: size)
        while true {
            let stored = table[index]
            if stored == Self.empty { return nil }
            if stored >> Self.slotBits == wanted, matches(stored & Self.slotMask) { return stored & Self.slotMask }
            index += 1
            if index == size { index = 0 }
        }
    }

    /// Starts loading the bucket where a lookup of `hash` begins.
    @inline(__always)
    public func prefetchBucket(hash: Int) {
        table.withUnsafeBufferPointer { buckets in
            learnstore_prefetch(buckets.baseAddress! + Self.position(hash, size: buckets.count))
        }
    }

    /// The first stored slot whose tag matches `hash`: the record a lookup will most likely read
    /// (a candidate only; the key is not compared).
    @inline(__always)
    public func firstCandidate(hash: Int) -> UInt32? {
        let size = table.count
        let wanted = Self.tag(hash)
        var index = Self.position(hash, size: size)
        while true {
            let stored = table[index]
            if stored == Self.empty { return nil }
            if stored >> Self.slotBits == wanted { return stored & Self.slotMask }
            index += 1
            if index == size { index = 0 }
        }
    }

    /// Calls `body` for every stored slot whose key matches.
    public func forEach(hash: Int, matches: (UInt32) -> Bool, _ body: (UInt32) -> Void) {
        let size = table.count
        let wanted = Self.tag(hash)
        var index = Self.position(hash, size: size)
        while true {
            let stored = table[index]
            if stored == Self.empty { return }
            if stored >> Self.slotBits == wanted, matches(stored & Self.slotMask) { body(stored & Self.slotMask) }
            index += 1
            if index == size { index = 0 }
        }
    }

    /// Inserts `slot`. `hashOf` recomputes a stored slot's hash when the table grows.
    public mutating func insert(_ slot: UInt32, hash: Int, hashOf: (UInt32) -> Int) {
        precondition(slot <= Self.maximumSlot, "tenant exceeds \(Self.maximumSlot) record slots")
        if needsGrowth { grow(hashOf: hashOf) }
        Self.place(Self.entry(slot, hash), at: Self.position(hash, size: table.count), in: &table)
        count += 1
    }

    /// Whether the next insert would push the load above 0.75.
    public var needsGrowth: Bool { (count + 1) * 4 > table.count * 3 }

    /// Grows by half and refills the table from `entries`, which must list every stored slot with its
    /// hash. Callers pass the slots in record order: reading records sequentially is several times
    /// faster than dereferencing them in table order.
    public mutating func regrow(_ entries: ((UInt32, Int) -> Void) -> Void) {
        table = ContiguousArray(repeating: Self.empty, count: table.count + table.count / 2)
        var refilled = 0
        entries { slot, hash in
            Self.place(Self.entry(slot, hash), at: Self.position(hash, size: table.count), in: &table)
            refilled += 1
        }
        precondition(refilled == count, "regrow saw \(refilled) entries, the table holds \(count)")
    }

    private static func place(_ entry: UInt32, at start: Int, in table: inout ContiguousArray<UInt32>) {
        let size = table.count
        var index = start
        while table[index] != empty {
            index += 1
            if index == size { index = 0 }
        }
        table[index] = entry
    }

    /// Removes exactly `slot` (found by its hash). Returns false if it was not present.
    @discardableResult
    public mutating func remove(_ slot: UInt32, hash: Int, hashOf: (UInt32) -> Int) -> Bool {
        let size = table.count
        let target = Self.entry(slot, hash)
        var index = Self.position(hash, size: size)
        while true {
            let stored = table[index]
            if stored == Self.empty { return false }
            if stored == target { break }
            index += 1
            if index == size { index = 0 }
        }
        // Backward-shift: move later entries of the probe run into the hole when that keeps them
        // reachable from their home position.
        var hole = index
        var next = hole + 1 == size ? 0 : hole + 1
        while table[next] != Self.empty {
            let home = Self.position(hashOf(table[next] & Self.slotMask), size: size)
            let distanceToNext = (next - home + size) % size
            let distanceToHole = (hole - home + size) % size
            if distanceToHole <= distanceToNext {
                table[hole] = table[next]
                hole = next
            }
            next = next + 1 == size ? 0 : next + 1
        }
        table[hole] = Self.empty
        count -= 1
        return true
    }

    private mutating func grow(hashOf: (UInt32) -> Int) {
        let old = table
        table = ContiguousArray(repeating: Self.empty, count: old.count + old.count / 2)
        for stored in old where stored != Self.empty {
            let slot = stored & Self.slotMask
            let hash = hashOf(slot)
            Self.place(Self.entry(slot, hash), at: Self.position(hash, size: table.count), in: &table)
        }
    }

    public var estimatedBytes: Int { table.count * 4 }
}

/// Fast, seeded mixing for keys the server generates (record ids). Client-chosen keys use `Hasher`.
@usableFromInline
enum KeyMixer {
    @usableFromInline static let seed: UInt64 = {
        var generator = SystemRandomNumberGenerator()
        return generator.next() | 1
    }()

    @inline(__always) @usableFromInline
    static func mix(_ high: UInt64, _ low: UInt64) -> Int {
        var x = high &* 0x9E37_79B9_7F4A_7C15 ^ low ^ seed
        x ^= x >> 32
        x &*= 0xD6E8_FEB8_6659_FD93
        x ^= x >> 29
        return Int(truncatingIfNeeded: x)
    }
}
