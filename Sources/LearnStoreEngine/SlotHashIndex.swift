/// An open-addressing hash table of record slots (linear probing, backward-shift deletion).
///
/// It stores only 4-byte slot numbers; the key is read from the record itself through the caller's
/// `matches` closure. That costs one extra memory read per probe but keeps the primary index at about
/// 6 bytes per record instead of the ~30 of a `Dictionary<RecordID, UInt32>`. Duplicate keys are
/// allowed (multimap), for secondary indexes such as certification_ref.
public struct SlotHashIndex: Sendable {
    static let empty = UInt32.max

    private var table: ContiguousArray<UInt32>
    private var mask: Int
    public private(set) var count = 0

    public init(capacity: Int = 16) {
        var size = 16
        while size * 7 < capacity * 10 { size <<= 1 }
        table = ContiguousArray(repeating: Self.empty, count: size)
        mask = size - 1
    }

    public var bucketCount: Int { table.count }

    @inline(__always)
    public func first(hash: Int, matches: (UInt32) -> Bool) -> UInt32? {
        var index = hash & mask
        while true {
            let slot = table[index]
            if slot == Self.empty { return nil }
            if matches(slot) { return slot }
            index = (index + 1) & mask
        }
    }

    /// Calls `body` for every stored slot whose key matches.
    public func forEach(hash: Int, matches: (UInt32) -> Bool, _ body: (UInt32) -> Void) {
        var index = hash & mask
        while true {
            let slot = table[index]
            if slot == Self.empty { return }
            if matches(slot) { body(slot) }
            index = (index + 1) & mask
        }
    }

    /// Inserts `slot`. `hashOf` recomputes a stored slot's hash when the table grows.
    public mutating func insert(_ slot: UInt32, hash: Int, hashOf: (UInt32) -> Int) {
        if (count + 1) * 10 > table.count * 7 { grow(hashOf: hashOf) }
        var index = hash & mask
        while table[index] != Self.empty { index = (index + 1) & mask }
        table[index] = slot
        count += 1
    }

    /// Removes exactly `slot` (found by its hash). Returns false if it was not present.
    @discardableResult
    public mutating func remove(_ slot: UInt32, hash: Int, hashOf: (UInt32) -> Int) -> Bool {
        var index = hash & mask
        while true {
            let stored = table[index]
            if stored == Self.empty { return false }
            if stored == slot { break }
            index = (index + 1) & mask
        }
        // Backward-shift: move later entries of the probe run into the hole when that keeps them
        // reachable from their home bucket.
        var hole = index
        var next = (hole + 1) & mask
        while table[next] != Self.empty {
            let home = hashOf(table[next]) & mask
            let distanceToNext = (next - home) & mask
            let distanceToHole = (hole - home) & mask
            if distanceToHole <= distanceToNext {
                table[hole] = table[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        table[hole] = Self.empty
        count -= 1
        return true
    }

    private mutating func grow(hashOf: (UInt32) -> Int) {
        let old = table
        table = ContiguousArray(repeating: Self.empty, count: old.count * 2)
        mask = table.count - 1
        for slot in old where slot != Self.empty {
            var index = hashOf(slot) & mask
            while table[index] != Self.empty { index = (index + 1) & mask }
            table[index] = slot
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
        x ^= x >> 32
        return Int(truncatingIfNeeded: x)
    }
}
