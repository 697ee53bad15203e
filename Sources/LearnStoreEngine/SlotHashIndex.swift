import CPrefetch

/// An open-addressing hash table of record slots (linear probing, backward-shift deletion).
///
/// Each entry is 4 bytes: 27 bits of slot and a 5-bit tag from the key's hash, so most probes that
/// do not match are rejected without reading the record. The key itself is read from the record
/// through the caller's `matches` closure. That keeps the primary index near 6 bytes per record
/// instead of the ~30 of a `Dictionary<RecordID, UInt32>`. Sizes are not powers of two (positions
/// come from a multiply-shift), and the table grows by half, so its load stays between 0.5 and 0.75.
/// Duplicate keys are allowed (multimap), for secondary indexes such as certification_ref.
///
/// Growth is incremental (as Redis rehashes its dictionaries): `beginGrowth` allocates the larger
/// table and keeps the old one; each later `migrate` call moves the next few slots, in record order,
/// into the new table. Refilling a table at once stalled a tenant for 100–350 ms at 0.5–1M records
/// (and grows linearly with the tenant). While migrating, slots in `next..<end` live in the old table
/// and every other slot in the new one; lookups read both.
public struct SlotHashIndex: Sendable {
    static let empty = UInt32.max
    static let slotBits: UInt32 = 27
    static let slotMask: UInt32 = (1 << slotBits) - 1
    /// The largest slot an entry can hold (a tenant holds at most this many record slots).
    public static let maximumSlot = slotMask - 1

    private var table: ContiguousArray<UInt32>
    public private(set) var count = 0
    private var migration: Migration?

    struct Migration: Sendable {
        var old: ContiguousArray<UInt32>
        /// Slots below `next` (and from `end` on) are in the new table.
        var next: UInt32
        let end: UInt32

        @inline(__always)
        func holds(_ slot: UInt32) -> Bool { slot >= next && slot < end }
    }

    /// Whether a growth is still moving slots to the new table.
    public var isMigrating: Bool { migration != nil }

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
        if let found = Self.first(in: table, hash: hash, matches: matches) { return found }
        guard let migration else { return nil }
        return Self.first(in: migration.old, hash: hash) { migration.holds($0) && matches($0) }
    }

    @inline(__always)
    private static func first(in table: ContiguousArray<UInt32>, hash: Int, matches: (UInt32) -> Bool) -> UInt32? {
        let size = table.count
        let wanted = tag(hash)
        var index = position(hash, size: size)
        while true {
            let stored = table[index]
            if stored == empty { return nil }
            if stored >> slotBits == wanted, matches(stored & slotMask) { return stored & slotMask }
            index += 1
            if index == size { index = 0 }
        }
    }

    /// Starts loading the bucket where a lookup of `hash` begins.
    @inline(__always)
    public func prefetchBucket(hash: Int) {
        // Only the address leaves the borrow (as in `PagedArray.prefetch`): no retain of the table.
        let bucket = table.withUnsafeBufferPointer { buckets in buckets.baseAddress! + Self.position(hash, size: buckets.count) }
        learnstore_prefetch(bucket)
    }

    /// The first stored slot whose tag matches `hash`: the record a lookup will most likely read
    /// (a candidate only; the key is not compared).
    @inline(__always)
    public func firstCandidate(hash: Int) -> UInt32? {
        if let found = Self.first(in: table, hash: hash, matches: { _ in true }) { return found }
        guard let migration else { return nil }
        return Self.first(in: migration.old, hash: hash) { migration.holds($0) }
    }

    /// Calls `body` for every stored slot whose key matches.
    public func forEach(hash: Int, matches: (UInt32) -> Bool, _ body: (UInt32) -> Void) {
        Self.forEach(in: table, hash: hash, matches: matches, body)
        guard let migration else { return }
        Self.forEach(in: migration.old, hash: hash, matches: { migration.holds($0) && matches($0) }, body)
    }

    private static func forEach(in table: ContiguousArray<UInt32>, hash: Int, matches: (UInt32) -> Bool, _ body: (UInt32) -> Void) {
        let size = table.count
        let wanted = tag(hash)
        var index = position(hash, size: size)
        while true {
            let stored = table[index]
            if stored == empty { return }
            if stored >> slotBits == wanted, matches(stored & slotMask) { body(stored & slotMask) }
            index += 1
            if index == size { index = 0 }
        }
    }

    /// Inserts `slot`. `hashOf` recomputes a stored slot's hash when the table grows.
    public mutating func insert(_ slot: UInt32, hash: Int, hashOf: (UInt32) -> Int) {
        precondition(slot <= Self.maximumSlot, "tenant exceeds \(Self.maximumSlot) record slots")
        if var migrating = migration, migrating.holds(slot) {
            // A slot not yet moved goes back where the migration will look for it. The old table was
            // at most 3/4 full when the growth began, and such inserts only follow removals.
            migration = nil
            Self.place(Self.entry(slot, hash), at: Self.position(hash, size: migrating.old.count), in: &migrating.old)
            migration = migrating
            count += 1
            return
        }
        if needsGrowth { grow(hashOf: hashOf) }
        Self.place(Self.entry(slot, hash), at: Self.position(hash, size: table.count), in: &table)
        count += 1
    }

    /// Starts an incremental growth: a table half as large again, with the slots below `end` still in
    /// the current one until `migrate` has moved them. Finishes a growth in progress first.
    public mutating func beginGrowth(end: UInt32, indexedHash: (UInt32) -> Int?) {
        if migration != nil { migrate(steps: Int.max, indexedHash: indexedHash) }
        let old = table
        table = ContiguousArray(repeating: Self.empty, count: old.count + old.count / 2)
        if end > 0 {
            migration = Migration(old: old, next: 0, end: end)
        } else {
            precondition(count == 0, "a growth with no old slots needs an empty table")
        }
    }

    /// Moves up to `steps` more slots to the new table. `indexedHash` gives a slot's hash from its
    /// record as it is now, or nil when the slot is not in this index (purged, or without the key).
    public mutating func migrate(steps: Int, indexedHash: (UInt32) -> Int?) {
        guard var migrating = migration else { return }
        migration = nil
        let stop = UInt32(min(Int(migrating.end), Int(migrating.next) + min(steps, Int(migrating.end))))
        var slot = migrating.next
        while slot < stop {
            if let hash = indexedHash(slot) {
                Self.place(Self.entry(slot, hash), at: Self.position(hash, size: table.count), in: &table)
            }
            slot += 1
        }
        migrating.next = stop
        if stop < migrating.end { migration = migrating }
    }

    /// Whether the next insert would push the load above 0.75.
    public var needsGrowth: Bool { (count + 1) * 4 > table.count * 3 }

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
        if var migrating = migration, migrating.holds(slot) {
            migration = nil
            let removed = Self.remove(slot, hash: hash, hashOf: hashOf, from: &migrating.old)
            migration = migrating
            if removed { count -= 1 }
            return removed
        }
        let removed = Self.remove(slot, hash: hash, hashOf: hashOf, from: &table)
        if removed { count -= 1 }
        return removed
    }

    /// Removes exactly `slot` from `table` with backward shift. In an old table under migration,
    /// entries of already-moved slots are stale; `hashOf` may give them a different home than the
    /// one they were placed by, which can only misplace those stale entries, never a live one (a
    /// live entry moves or stays by its own, correct, home).
    private static func remove(_ slot: UInt32, hash: Int, hashOf: (UInt32) -> Int, from table: inout ContiguousArray<UInt32>) -> Bool {
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
        return true
    }

    /// Grows at once from the table itself (a safety net: the record indexes grow incrementally).
    private mutating func grow(hashOf: (UInt32) -> Int) {
        let old = table
        let leftovers = migration
        migration = nil
        table = ContiguousArray(repeating: Self.empty, count: max(old.count + old.count / 2, (count + 1) * 4 / 3 + 16))
        for stored in old where stored != Self.empty {
            let slot = stored & Self.slotMask
            let hash = hashOf(slot)
            Self.place(Self.entry(slot, hash), at: Self.position(hash, size: table.count), in: &table)
        }
        if let leftovers {
            for stored in leftovers.old where stored != Self.empty && leftovers.holds(stored & Self.slotMask) {
                let slot = stored & Self.slotMask
                let hash = hashOf(slot)
                Self.place(Self.entry(slot, hash), at: Self.position(hash, size: table.count), in: &table)
            }
        }
    }

    public var estimatedBytes: Int { (table.count + (migration?.old.count ?? 0)) * 4 }
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
