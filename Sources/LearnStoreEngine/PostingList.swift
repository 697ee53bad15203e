/// The slots of all records sharing one key value (one person, one provider, ...), ascending.
///
/// Slot order is (created_at, id) order, so a posting list is already sorted the way lists are
/// returned. A list of one slot is held inline: most cohorts and apps of a small tenant have one
/// record, and an array for each cost 64 bytes of heap (a third of a 100-record tenant's index
/// memory). Small lists are one array; large ones are split into chunks so that removing or
/// inserting in the middle moves at most one chunk. The whole value is one word, so the tables of
/// lists (by person, cohort, app, provider) hold 8 bytes per key.
public struct PostingList: Sendable {
    static let chunkLimit = 2048

    private enum Storage: Sendable {
        case one(UInt32)
        /// Never holds exactly one slot (that is `.one`); empty is `.small([])`, which allocates nothing.
        case small(ContiguousArray<UInt32>)
        case chunked(Chunks)
    }

    /// A large list's chunks and its count, behind one reference so the list stays a word wide.
    /// Copy-on-write by hand (``uniqueChunks(_:)``): mutated only while uniquely referenced, so it is
    /// as safe to share across threads as an array.
    private final class Chunks: @unchecked Sendable {
        @exclusivity(unchecked) var arrays: [ContiguousArray<UInt32>]
        @exclusivity(unchecked) var count: Int

        init(arrays: [ContiguousArray<UInt32>], count: Int) {
            self.arrays = arrays
            self.count = count
        }
    }

    /// `box`, or a copy of it if another list shares it.
    private static func uniqueChunks(_ box: inout Chunks) {
        if !isKnownUniquelyReferenced(&box) { box = Chunks(arrays: box.arrays, count: box.count) }
    }

    private var storage: Storage = .small([])

    public init() {}

    public var count: Int {
        switch storage {
        case .one: return 1
        case .small(let array): return array.count
        case .chunked(let chunks): return chunks.count
        }
    }

    public var isEmpty: Bool { count == 0 }

    public mutating func insert(_ slot: UInt32) {
        switch storage {
        case .one(let only):
            var array = ContiguousArray<UInt32>()
            array.reserveGently(forAppending: 2)
            array.append(min(only, slot))
            array.append(max(only, slot))
            storage = .small(array)
        case .small(var array):
            if array.isEmpty {
                storage = .one(slot)
                return
            }
            storage = .small([])  // release our reference so the mutation below is in place
            Self.insertSorted(slot, into: &array)
            if array.count > Self.chunkLimit {
                let half = array.count / 2
                storage = .chunked(Chunks(arrays: [ContiguousArray(array[..<half]), ContiguousArray(array[half...])], count: array.count))
            } else {
                storage = .small(array)
            }
        case .chunked(var chunks):
            storage = .small([])  // drop the list's own reference, so `chunks` can be unique
            Self.uniqueChunks(&chunks)
            defer { storage = .chunked(chunks) }
            var chunkIndex = chunks.arrays.count - 1
            if let last = chunks.arrays[chunkIndex].last, slot < last {
                chunkIndex = Self.chunkIndex(for: slot, in: chunks.arrays)
            }
            Self.insertSorted(slot, into: &chunks.arrays[chunkIndex])
            if chunks.arrays[chunkIndex].count > Self.chunkLimit {
                let chunk = chunks.arrays[chunkIndex]
                let half = chunk.count / 2
                chunks.arrays[chunkIndex] = ContiguousArray(chunk[..<half])
                chunks.arrays.insert(ContiguousArray(chunk[half...]), at: chunkIndex + 1)
            }
            chunks.count += 1
        }
    }

    @discardableResult
    public mutating func remove(_ slot: UInt32) -> Bool {
        switch storage {
        case .one(let only):
            guard only == slot else { return false }
            storage = .small([])
        case .small(var array):
            storage = .small([])
            guard let position = Self.lowerBound(slot, in: array), array[position] == slot else {
                storage = .small(array)
                return false
            }
            array.remove(at: position)
            storage = array.count == 1 ? .one(array[0]) : .small(array)
        case .chunked(var chunks):
            storage = .small([])
            Self.uniqueChunks(&chunks)
            defer { storage = .chunked(chunks) }
            let chunkIndex = Self.chunkIndex(for: slot, in: chunks.arrays)
            guard let position = Self.lowerBound(slot, in: chunks.arrays[chunkIndex]), chunks.arrays[chunkIndex][position] == slot
            else { return false }
            chunks.arrays[chunkIndex].remove(at: position)
            if chunks.arrays[chunkIndex].isEmpty && chunks.arrays.count > 1 { chunks.arrays.remove(at: chunkIndex) }
            chunks.count -= 1
        }
        return true
    }

    /// Visits slots in ascending order starting at the first slot ≥ `from` (or descending from the
    /// last slot ≤ `from`), until `body` returns false.
    public func visit(from: UInt32, ascending: Bool, _ body: (UInt32) -> Bool) {
        switch storage {
        case .one(let only):
            if ascending ? only >= from : only <= from { _ = body(only) }
        case .small(let array):
            Self.visit(array, from: from, ascending: ascending, body)
        case .chunked(let box):
            let chunks = box.arrays
            if ascending {
                var index = Self.chunkIndex(for: from, in: chunks)
                while index < chunks.count {
                    if !Self.visit(chunks[index], from: from, ascending: true, body) { return }
                    index += 1
                }
            } else {
                var index = Self.chunkIndex(for: from, in: chunks)
                while index >= 0 {
                    if !Self.visit(chunks[index], from: from, ascending: false, body) { return }
                    index -= 1
                }
            }
        }
    }

    public func forEach(_ body: (UInt32) -> Void) {
        visit(from: 0, ascending: true) { body($0); return true }
    }

    public var slots: [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(count)
        forEach { out.append($0) }
        return out
    }

    @discardableResult
    private static func visit(_ array: ContiguousArray<UInt32>, from: UInt32, ascending: Bool, _ body: (UInt32) -> Bool) -> Bool {
        if ascending {
            var index = lowerBound(from, in: array) ?? array.count
            while index < array.count {
                if !body(array[index]) { return false }
                index += 1
            }
        } else {
            // last element <= from
            var index = (upperBound(from, in: array)) - 1
            while index >= 0 {
                if !body(array[index]) { return false }
                index -= 1
            }
        }
        return true
    }

    /// First index with element >= slot, nil if none.
    private static func lowerBound(_ slot: UInt32, in array: ContiguousArray<UInt32>) -> Int? {
        var low = 0
        var high = array.count
        while low < high {
            let mid = (low + high) >> 1
            if array[mid] < slot { low = mid + 1 } else { high = mid }
        }
        return low < array.count ? low : nil
    }

    /// First index with element > slot.
    private static func upperBound(_ slot: UInt32, in array: ContiguousArray<UInt32>) -> Int {
        var low = 0
        var high = array.count
        while low < high {
            let mid = (low + high) >> 1
            if array[mid] <= slot { low = mid + 1 } else { high = mid }
        }
        return low
    }

    private static func insertSorted(_ slot: UInt32, into array: inout ContiguousArray<UInt32>) {
        array.reserveGently(forAppending: 1)
        if array.last.map({ $0 < slot }) ?? true {
            array.append(slot)
        } else {
            array.insert(slot, at: lowerBound(slot, in: array) ?? array.count)
        }
    }

    /// The chunk that holds (or would hold) `slot`: the last chunk whose first element is <= slot.
    private static func chunkIndex(for slot: UInt32, in chunks: [ContiguousArray<UInt32>]) -> Int {
        var low = 0
        var high = chunks.count
        while low < high {
            let mid = (low + high) >> 1
            if let first = chunks[mid].first, first <= slot { low = mid + 1 } else { high = mid }
        }
        return max(0, low - 1)
    }

    public var estimatedBytes: Int {
        switch storage {
        case .one: return 0
        case .small(let array): return array.isEmpty ? 0 : 32 + array.capacity * 4
        case .chunked(let chunks): return 48 + chunks.arrays.count * 8 + chunks.arrays.reduce(0) { $0 + 32 + $1.capacity * 4 }
        }
    }
}
