/// The slots of all records sharing one key value (one person, one provider, ...), ascending.
///
/// Slot order is (created_at, id) order, so a posting list is already sorted the way lists are
/// returned. Small lists are one array; large ones are split into chunks so that removing or
/// inserting in the middle moves at most one chunk.
public struct PostingList: Sendable {
    static let chunkLimit = 2048

    private enum Storage: Sendable {
        case small(ContiguousArray<UInt32>)
        case chunked([ContiguousArray<UInt32>])
    }

    private var storage: Storage = .small([])
    public private(set) var count = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    public mutating func insert(_ slot: UInt32) {
        count += 1
        switch storage {
        case .small(var array):
            storage = .small([])  // release our reference so the mutation below is in place
            Self.insertSorted(slot, into: &array)
            if array.count > Self.chunkLimit {
                let half = array.count / 2
                storage = .chunked([ContiguousArray(array[..<half]), ContiguousArray(array[half...])])
            } else {
                storage = .small(array)
            }
        case .chunked(var chunks):
            storage = .small([])
            var chunkIndex = chunks.count - 1
            if let last = chunks[chunkIndex].last, slot < last {
                chunkIndex = Self.chunkIndex(for: slot, in: chunks)
            }
            Self.insertSorted(slot, into: &chunks[chunkIndex])
            if chunks[chunkIndex].count > Self.chunkLimit {
                let chunk = chunks[chunkIndex]
                let half = chunk.count / 2
                chunks[chunkIndex] = ContiguousArray(chunk[..<half])
                chunks.insert(ContiguousArray(chunk[half...]), at: chunkIndex + 1)
            }
            storage = .chunked(chunks)
        }
    }

    @discardableResult
    public mutating func remove(_ slot: UInt32) -> Bool {
        switch storage {
        case .small(var array):
            storage = .small([])
            defer { storage = .small(array) }
            guard let position = Self.lowerBound(slot, in: array), array[position] == slot else { return false }
            array.remove(at: position)
        case .chunked(var chunks):
            storage = .small([])
            defer { storage = .chunked(chunks) }
            let chunkIndex = Self.chunkIndex(for: slot, in: chunks)
            guard let position = Self.lowerBound(slot, in: chunks[chunkIndex]), chunks[chunkIndex][position] == slot
            else { return false }
            chunks[chunkIndex].remove(at: position)
            if chunks[chunkIndex].isEmpty && chunks.count > 1 { chunks.remove(at: chunkIndex) }
        }
        count -= 1
        return true
    }

    /// Visits slots in ascending order starting at the first slot ≥ `from` (or descending from the
    /// last slot ≤ `from`), until `body` returns false.
    public func visit(from: UInt32, ascending: Bool, _ body: (UInt32) -> Bool) {
        switch storage {
        case .small(let array):
            Self.visit(array, from: from, ascending: ascending, body)
        case .chunked(let chunks):
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
        case .small(let array): return array.isEmpty ? 0 : 32 + array.capacity * 4
        case .chunked(let chunks): return 32 + chunks.count * 8 + chunks.reduce(0) { $0 + 32 + $1.capacity * 4 }
        }
    }
}
