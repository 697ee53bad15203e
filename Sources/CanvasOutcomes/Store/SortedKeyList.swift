/// An ordered set kept as a list of sorted chunks of at most `chunkCapacity` elements: O(log n) seek,
/// O(chunk) insert and remove, and cheap in-order iteration from any position. Backs every paged result
/// listing (a single `[Element]` would make an insert into a million-entry time index copy megabytes).
struct SortedKeyList<Element: Comparable & Sendable>: Sendable {
    static var chunkCapacity: Int { 512 }

    private var chunks: [[Element]] = []
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// Inserts `element`; false when it was already present.
    @discardableResult
    mutating func insert(_ element: Element) -> Bool {
        guard !chunks.isEmpty else {
            chunks = [[element]]
            count = 1
            return true
        }
        let chunk = chunkIndex(for: element)
        let position = Self.firstIndex(in: chunks[chunk]) { $0 < element }
        if position < chunks[chunk].count, chunks[chunk][position] == element { return false }
        chunks[chunk].insert(element, at: position)
        count += 1
        if chunks[chunk].count > Self.chunkCapacity {
            let upper = Array(chunks[chunk][(Self.chunkCapacity / 2)...])
            chunks[chunk].removeSubrange((Self.chunkCapacity / 2)...)
            chunks.insert(upper, at: chunk + 1)
        }
        return true
    }

    /// Removes `element`; false when it was absent.
    @discardableResult
    mutating func remove(_ element: Element) -> Bool {
        guard !chunks.isEmpty else { return false }
        let chunk = chunkIndex(for: element)
        let position = Self.firstIndex(in: chunks[chunk]) { $0 < element }
        guard position < chunks[chunk].count, chunks[chunk][position] == element else { return false }
        chunks[chunk].remove(at: position)
        count -= 1
        if chunks[chunk].isEmpty { chunks.remove(at: chunk) }
        return true
    }

    func contains(_ element: Element) -> Bool {
        guard !chunks.isEmpty else { return false }
        let chunk = chunkIndex(for: element)
        let position = Self.firstIndex(in: chunks[chunk]) { $0 < element }
        return position < chunks[chunk].count && chunks[chunk][position] == element
    }

    /// Visits elements in order, starting at the first one for which `isBefore` is false (`isBefore` must
    /// hold for a prefix of the order), until `body` returns false.
    func forEach(from isBefore: (Element) -> Bool, _ body: (Element) -> Bool) {
        var chunk = Self.firstIndex(in: chunks) { isBefore($0[$0.count - 1]) }
        guard chunk < chunks.count else { return }
        var position = Self.firstIndex(in: chunks[chunk], where: isBefore)
        while chunk < chunks.count {
            let elements = chunks[chunk]
            while position < elements.count {
                guard body(elements[position]) else { return }
                position += 1
            }
            chunk += 1
            position = 0
        }
    }

    var elements: [Element] { chunks.flatMap { $0 } }

    /// The chunk that holds `element` or should receive it: the first whose last element is not below it,
    /// else the last chunk.
    private func chunkIndex(for element: Element) -> Int {
        min(Self.firstIndex(in: chunks) { $0[$0.count - 1] < element }, chunks.count - 1)
    }

    /// The first index where `isBefore` is false, for a predicate true on a prefix.
    private static func firstIndex<C: RandomAccessCollection>(in items: C, where isBefore: (C.Element) -> Bool) -> Int
    where C.Index == Int {
        var low = items.startIndex
        var high = items.endIndex
        while low < high {
            let middle = low + (high - low) / 2
            if isBefore(items[middle]) { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
