/// How an ``OrderedSlotIndex`` reads the key of a slot.
protocol SlotKeys {
    func key(_ slot: UInt32) -> Int64
}

/// Slots ordered by a timestamp field of their record (completed_at, expires_at, updated_at), then
/// by slot, for range filters.
///
/// Each entry is 8 bytes: the slot (27 bits, the tenant's limit, as in ``SlotHashIndex``) and above
/// it a 37-bit *hint* of the key (the key in units of 2^11 ms, about two seconds, order-preserving).
/// Comparisons decide on the hints and read the key from the record through ``SlotKeys`` only when
/// two hints are equal; reading a record per search step (a likely cache miss) was a seventh of the
/// server's CPU under creates. The hint must be fine-grained: a search ends on the new key's
/// neighbours, and hints of about two minutes were often equal there. Since keys still come from the
/// records, a record must be removed *before* its field changes and re-inserted after. Chunks keep
/// inserts and removals in the middle cheap.
///
/// Each chunk's first key is also kept in `fences`, one contiguous array: finding the chunk is a
/// binary search that never leaves that array.
public struct OrderedSlotIndex: Sendable {
    /// Small enough that inserting in the middle of a chunk moves little memory (half a KiB on
    /// average), large enough that the chunk headers and fences stay a small part of each entry.
    static let chunkLimit = 128
    /// How full the bulk build leaves each chunk: room for a few inserts before a split, little
    /// empty capacity (the three ordered indexes are about a tenth of the memory per record).
    static let builtChunkSize = chunkLimit * 15 / 16

    private var chunks: [ContiguousArray<UInt64>] = []
    /// `fences[i]` is the key of the first entry of `chunks[i]`.
    private var fences: [Int64] = []
    public private(set) var count = 0

    public init() {}

    static let slotBits: UInt64 = 27
    static let hintBits: Int64 = 64 - Int64(slotBits)

    /// The order-keeping 37-bit summary of a key: two keys with different hints compare like them.
    @inline(__always)
    static func hint(_ key: Int64) -> UInt64 {
        // Keys in 2^11 ms units, clamped to ±2^36 (about ±4 400 years around 1970; later keys share
        // the top hint and fall back to the record) and biased, so that the unsigned order of the
        // packed entries is the signed order of the keys.
        let limit: Int64 = 1 << (hintBits - 1)
        return UInt64(min(max(key >> 11, -limit), limit - 1) + limit)
    }

    @inline(__always)
    static func entry(_ key: Int64, _ slot: UInt32) -> UInt64 { hint(key) << slotBits | UInt64(slot) }

    @inline(__always)
    static func slot(_ entry: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: entry & ((1 << slotBits) - 1)) }

    /// Whether `entry` sorts before (value, slot), whose packed form is `target`.
    @inline(__always)
    private static func precedes<Keys: SlotKeys>(_ entry: UInt64, _ target: UInt64, _ value: Int64, _ slot: UInt32, keys: Keys) -> Bool {
        let entryHint = entry >> slotBits
        let targetHint = target >> slotBits
        if entryHint != targetHint { return entryHint < targetHint }
        let entrySlot = Self.slot(entry)
        return (keys.key(entrySlot), entrySlot) < (value, slot)
    }

    /// A chunk holding `entries`, with room for a quarter more (a built chunk: up to the limit). A
    /// chunk's room is sized by its entries, not by the limit: a small tenant's only chunk of each of
    /// the three indexes would otherwise hold a KiB whatever its size.
    private static func chunk(_ entries: some Collection<UInt64>, room: Int? = nil) -> ContiguousArray<UInt64> {
        var chunk = ContiguousArray<UInt64>()
        chunk.reserveCapacity(room ?? min(chunkLimit, entries.count + max(4, entries.count / 4)))
        chunk.append(contentsOf: entries)
        return chunk
    }

    /// An index of the given (key, slot) pairs, sorted here once and cut into chunks.
    init(sorting pairs: inout [(Int64, UInt32)]) {
        pairs.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        var start = 0
        while start < pairs.count {
            let end = min(pairs.count, start + Self.builtChunkSize)
            chunks.append(Self.chunk(pairs[start..<end].lazy.map { Self.entry($0.0, $0.1) }))
            fences.append(pairs[start].0)
            start = end
        }
        count = pairs.count
    }

    /// Adds the given (key, slot) pairs, sorted here, in one pass over the index: each chunk that
    /// gains entries is rewritten once, merged with its share of the pairs and cut into chunks of the
    /// built size; the others are kept as they are. O(entries + pairs · log pairs), against a search
    /// and a move inside a chunk per pair for ``insert(_:keys:)``. The slots must not be in the index.
    mutating func merge<Keys: SlotKeys>(sorting pairs: inout [(Int64, UInt32)], keys: Keys) {
        guard !pairs.isEmpty else { return }
        precondition(pairs.allSatisfy { UInt64($0.1) < 1 << Self.slotBits }, "a slot exceeds the ordered index's 27 bits")
        guard !chunks.isEmpty else {
            self = OrderedSlotIndex(sorting: &pairs)
            return
        }
        pairs.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        var mergedChunks: [ContiguousArray<UInt64>] = []
        var mergedFences: [Int64] = []
        mergedChunks.reserveCapacity(chunks.count + pairs.count / Self.builtChunkSize + 1)
        mergedFences.reserveCapacity(mergedChunks.capacity)
        var next = 0
        for index in chunks.indices {
            // This chunk takes the pairs before the next chunk's first entry (the first chunk also
            // those before its own).
            var end = pairs.count
            if index + 1 < chunks.count {
                let fence = (fences[index + 1], Self.slot(chunks[index + 1][0]))
                end = next
                while end < pairs.count && (pairs[end].0, pairs[end].1) < fence { end += 1 }
            }
            guard end > next else {
                mergedChunks.append(chunks[index])
                mergedFences.append(fences[index])
                continue
            }
            // Copy the chunk's runs between insertion points whole; the pairs are few per chunk.
            let chunk = chunks[index]
            var merged = ContiguousArray<UInt64>()
            merged.reserveCapacity(Swift.min(Self.chunkLimit, chunk.count + end - next))
            var position = 0
            var fence = fences[index]
            for pair in pairs[next..<end] {
                let insertion = Self.lowerBound(pair.0, pair.1, in: chunk, from: position, keys: keys)
                if insertion == 0 && merged.isEmpty { fence = pair.0 }
                merged.append(contentsOf: chunk[position..<insertion])
                merged.append(Self.entry(pair.0, pair.1))
                position = insertion
            }
            merged.append(contentsOf: chunk[position...])
            next = end
            if merged.count <= Self.chunkLimit {
                mergedFences.append(fence)
                mergedChunks.append(merged)
                continue
            }
            var start = 0
            while start < merged.count {
                // No chunk left shorter than a quarter of the built size: the last two share.
                var stop = Swift.min(merged.count, start + Self.builtChunkSize)
                if merged.count - stop > 0 && merged.count - stop < Self.builtChunkSize / 4 { stop = start + (merged.count - start) / 2 }
                mergedChunks.append(Self.chunk(merged[start..<stop]))
                mergedFences.append(start == 0 ? fence : keys.key(Self.slot(merged[start])))
                start = stop
            }
        }
        count += pairs.count
        chunks = mergedChunks
        fences = mergedFences
    }

    /// Index of the chunk where (value, slot) belongs: the last chunk whose first element is
    /// <= (value, slot), or 0.
    private func chunkIndex(_ value: Int64, _ slot: UInt32) -> Int {
        var low = 0
        var high = fences.count
        fences.withUnsafeBufferPointer { fences in
            while low < high {
                let mid = (low + high) >> 1
                let fence = fences[mid]
                // Ties on the key are broken by the first slot, read from the chunk only then.
                let notBefore = value > fence || (value == fence && slot >= Self.slot(chunks[mid][0]))
                if notBefore { low = mid + 1 } else { high = mid }
            }
        }
        return max(0, low - 1)
    }

    /// Position of the first element >= (value, slot) inside `chunk`.
    private static func lowerBound<Keys: SlotKeys>(_ value: Int64, _ slot: UInt32, in chunk: ContiguousArray<UInt64>, from start: Int = 0, keys: Keys) -> Int {
        let target = entry(value, slot)
        return chunk.withUnsafeBufferPointer { chunk in
            var low = start
            var high = chunk.count
            while low < high {
                let mid = (low + high) >> 1
                if precedes(chunk[mid], target, value, slot, keys: keys) { low = mid + 1 } else { high = mid }
            }
            return low
        }
    }

    mutating func insert<Keys: SlotKeys>(_ slot: UInt32, keys: Keys) {
        precondition(UInt64(slot) < 1 << Self.slotBits, "slot \(slot) exceeds the ordered index's 27 bits")
        let value = keys.key(slot)
        count += 1
        let lastIndex = chunks.count - 1
        let entry = Self.entry(value, slot)
        if lastIndex >= 0, let last = chunks[lastIndex].last, !Self.precedes(last, entry, value, slot, keys: keys) {
            let index = chunkIndex(value, slot)
            let position = Self.lowerBound(value, slot, in: chunks[index], keys: keys)
            chunks[index].reserveGently(forAppending: 1, limit: Self.chunkLimit + 1)
            chunks[index].insert(entry, at: position)
            if position == 0 { fences[index] = value }
            if chunks[index].count > Self.chunkLimit { split(index, keys: keys) }
            return
        }
        // New records usually sort last (updated_at of a create is "now"): append without searching.
        if lastIndex >= 0 && chunks[lastIndex].count < Self.chunkLimit {
            chunks[lastIndex].reserveGently(forAppending: 1, limit: Self.chunkLimit)
            chunks[lastIndex].append(entry)
        } else {
            // Only a tenant's first chunk grows with it; a new last chunk of a larger index is
            // taken whole, like a split one.
            chunks.append(Self.chunk(CollectionOfOne(entry), room: chunks.isEmpty ? nil : Self.chunkLimit))
            fences.append(value)
        }
    }

    private mutating func split<Keys: SlotKeys>(_ index: Int, keys: Keys) {
        let half = chunks[index].count / 2
        // A split chunk takes inserts in the middle of a large index: room to the limit at once.
        let upper = Self.chunk(chunks[index][half...], room: Self.chunkLimit)
        chunks[index].removeSubrange(half...)
        chunks.insert(upper, at: index + 1)
        fences.insert(keys.key(Self.slot(upper[0])), at: index + 1)
    }

    @discardableResult
    mutating func remove<Keys: SlotKeys>(_ slot: UInt32, keys: Keys) -> Bool {
        guard !chunks.isEmpty else { return false }
        let value = keys.key(slot)
        let index = chunkIndex(value, slot)
        let position = Self.lowerBound(value, slot, in: chunks[index], keys: keys)
        guard position < chunks[index].count, Self.slot(chunks[index][position]) == slot else { return false }
        chunks[index].remove(at: position)
        if chunks[index].isEmpty {
            chunks.remove(at: index)
            fences.remove(at: index)
        } else if position == 0 {
            fences[index] = keys.key(Self.slot(chunks[index][0]))
        }
        count -= 1
        return true
    }

    /// Visits every slot whose key is in `lower ..< upper` (nil = unbounded), in key order.
    func visit<Keys: SlotKeys>(lower: Int64?, upper: Int64?, keys: Keys, _ body: (UInt32) -> Void) {
        guard !chunks.isEmpty else { return }
        var index = 0
        var position = 0
        let upperHint = upper.map(Self.hint)
        if let lower {
            index = chunkIndex(lower, 0)
            position = Self.lowerBound(lower, 0, in: chunks[index], keys: keys)
        }
        while index < chunks.count {
            let chunk = chunks[index]
            if let upper, position == 0, fences[index] >= upper { return }
            while position < chunk.count {
                let entry = chunk[position]
                let slot = Self.slot(entry)
                if let upper, let upperHint {
                    // A smaller hint means a smaller key; only equal hints need the record.
                    let entryHint = entry >> Self.slotBits
                    if entryHint > upperHint || (entryHint == upperHint && keys.key(slot) >= upper) { return }
                }
                body(slot)
                position += 1
            }
            index += 1
            position = 0
        }
    }

    /// An estimate of how many slots have keys in `lower ..< upper`, from chunk positions (O(log n)).
    public func estimateCount(lower: Int64?, upper: Int64?) -> Int {
        guard !chunks.isEmpty else { return 0 }
        let averageChunk = max(1, count / chunks.count)
        let start = lower.map { chunkIndex($0, 0) } ?? 0
        let end = upper.map { chunkIndex($0, 0) } ?? (chunks.count - 1)
        return min(count, (end - start + 1) * averageChunk)
    }

    public var estimatedBytes: Int { chunks.count * 16 + chunks.reduce(0) { $0 + 32 + $1.capacity * 8 } }

    /// The entries of the fullest chunk; for tests.
    var largestChunk: Int { chunks.map(\.count).max() ?? 0 }

    /// Whether every fence equals its chunk's first key and the slots are in (key, slot) order;
    /// for tests.
    func isConsistent<Keys: SlotKeys>(keys: Keys) -> Bool {
        guard chunks.count == fences.count, chunks.allSatisfy({ !$0.isEmpty }) else { return false }
        var previous: (Int64, UInt32)?
        for (index, chunk) in chunks.enumerated() {
            if fences[index] != keys.key(Self.slot(chunk[0])) { return false }
            for entry in chunk {
                let slot = Self.slot(entry)
                if entry >> Self.slotBits != Self.hint(keys.key(slot)) { return false }
                let current = (keys.key(slot), slot)
                if let previous, previous >= current { return false }
                previous = current
            }
        }
        return chunks.reduce(0) { $0 + $1.count } == count
    }
}
