/// Slots ordered by a timestamp field of their record (completed_at, expires_at, updated_at), then
/// by slot, for range filters.
///
/// It stores only slots (4 bytes each) in chunks; comparisons read the key from the record through
/// the caller's `key` closure. So a record must be removed *before* its field changes and re-inserted
/// after. Chunks keep inserts and removals in the middle cheap.
public struct OrderedSlotIndex: Sendable {
    static let chunkLimit = 1024

    private var chunks: [ContiguousArray<UInt32>] = []
    public private(set) var count = 0

    public init() {}

    /// An index of the given (key, slot) pairs, sorted here once and cut into chunks.
    init(sorting pairs: inout [(Int64, UInt32)]) {
        pairs.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        let chunkSize = Self.chunkLimit / 2
        var start = 0
        while start < pairs.count {
            let end = min(pairs.count, start + chunkSize)
            var chunk = ContiguousArray<UInt32>()
            chunk.reserveCapacity(Self.chunkLimit)
            for index in start..<end { chunk.append(pairs[index].1) }
            chunks.append(chunk)
            start = end
        }
        count = pairs.count
    }

    @inline(__always)
    private static func less(_ a: (Int64, UInt32), _ b: (Int64, UInt32)) -> Bool { a < b }

    /// Index of the chunk where (value, slot) belongs.
    private func chunkIndex(_ value: Int64, _ slot: UInt32, key: (UInt32) -> Int64) -> Int {
        // The last chunk whose first element is <= (value, slot).
        var low = 0
        var high = chunks.count
        while low < high {
            let mid = (low + high) >> 1
            let first = chunks[mid][0]
            if !Self.less((value, slot), (key(first), first)) { low = mid + 1 } else { high = mid }
        }
        return max(0, low - 1)
    }

    /// Position of the first element >= (value, slot) inside `chunk`.
    private static func lowerBound(_ value: Int64, _ slot: UInt32, in chunk: ContiguousArray<UInt32>, key: (UInt32) -> Int64) -> Int {
        var low = 0
        var high = chunk.count
        while low < high {
            let mid = (low + high) >> 1
            let element = chunk[mid]
            if less((key(element), element), (value, slot)) { low = mid + 1 } else { high = mid }
        }
        return low
    }

    public mutating func insert(_ slot: UInt32, key: (UInt32) -> Int64) {
        let value = key(slot)
        count += 1
        if chunks.isEmpty {
            chunks.append([slot])
            return
        }
        // New records usually sort last (updated_at of a create is "now"): append without searching.
        let lastIndex = chunks.count - 1
        if let last = chunks[lastIndex].last, !Self.less((value, slot), (key(last), last)) {
            if chunks[lastIndex].count < Self.chunkLimit {
                chunks[lastIndex].append(slot)
            } else {
                chunks.append([slot])
            }
            return
        }
        let index = chunkIndex(value, slot, key: key)
        let position = Self.lowerBound(value, slot, in: chunks[index], key: key)
        chunks[index].insert(slot, at: position)
        if chunks[index].count > Self.chunkLimit {
            let chunk = chunks[index]
            let half = chunk.count / 2
            chunks[index] = ContiguousArray(chunk[..<half])
            chunks.insert(ContiguousArray(chunk[half...]), at: index + 1)
        }
    }

    @discardableResult
    public mutating func remove(_ slot: UInt32, key: (UInt32) -> Int64) -> Bool {
        guard !chunks.isEmpty else { return false }
        let value = key(slot)
        let index = chunkIndex(value, slot, key: key)
        let position = Self.lowerBound(value, slot, in: chunks[index], key: key)
        guard position < chunks[index].count, chunks[index][position] == slot else { return false }
        chunks[index].remove(at: position)
        if chunks[index].isEmpty { chunks.remove(at: index) }
        count -= 1
        return true
    }

    /// Visits every slot whose key is in `lower ..< upper` (nil = unbounded), in key order.
    public func visit(lower: Int64?, upper: Int64?, key: (UInt32) -> Int64, _ body: (UInt32) -> Void) {
        guard !chunks.isEmpty else { return }
        var index = 0
        var position = 0
        if let lower {
            index = chunkIndex(lower, 0, key: key)
            position = Self.lowerBound(lower, 0, in: chunks[index], key: key)
        }
        while index < chunks.count {
            let chunk = chunks[index]
            while position < chunk.count {
                let slot = chunk[position]
                if let upper, key(slot) >= upper { return }
                body(slot)
                position += 1
            }
            index += 1
            position = 0
        }
    }

    /// An estimate of how many slots have keys in `lower ..< upper`, from chunk positions (O(log n)).
    public func estimateCount(lower: Int64?, upper: Int64?, key: (UInt32) -> Int64) -> Int {
        guard !chunks.isEmpty else { return 0 }
        let averageChunk = max(1, count / chunks.count)
        let start = lower.map { chunkIndex($0, 0, key: key) } ?? 0
        let end = upper.map { chunkIndex($0, 0, key: key) } ?? (chunks.count - 1)
        return min(count, (end - start + 1) * averageChunk)
    }

    public var estimatedBytes: Int { chunks.count * 8 + chunks.reduce(0) { $0 + 32 + $1.capacity * 4 } }
}
