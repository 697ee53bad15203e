/// Posting lists by a 1-based reference of the tenant's interning tables (a person, a cohort, an app,
/// a provider).
///
/// References are handed out densely, so while the references in use are dense the lists are an
/// array indexed by reference: one word per reference, none of a hash table's spare buckets (most
/// of a small tenant's index memory was such tables). A table can be shared with other kinds (apps
/// and providers are interned with titles, cohorts with authors), and then the references in use may
/// be sparse: a provider first seen after a million distinct titles. Once the array would be more
/// than four times the lists it holds, the table becomes a dictionary, so its memory stays
/// proportional to the values indexed whatever the numbering.
struct PostingTable: Sendable {
    private enum Storage: Sendable {
        case dense(ContiguousArray<PostingList>)
        case sparse([UInt32: PostingList])
    }

    private var storage = Storage.dense([])
    /// Lists holding at least one slot.
    private(set) var keyCount = 0
    /// Below this many references the array is kept however sparse.
    static let denseFloor = 64

    /// Room for references 1 ... `references`, for a table whose references are all of one kind (a
    /// bulk build of the person index knows how many persons there are).
    init(references: Int = 0) {
        if references > 0 { storage = .dense(ContiguousArray(repeating: PostingList(), count: references)) }
    }

    var isDense: Bool {
        if case .dense = storage { return true }
        return false
    }

    /// The list of `reference` (empty when no record has it).
    subscript(reference: UInt32) -> PostingList {
        switch storage {
        case .dense(let lists):
            let index = Int(reference) - 1
            return index >= 0 && index < lists.count ? lists[index] : PostingList()
        case .sparse(let lists):
            return lists[reference] ?? PostingList()
        }
    }

    mutating func insert(_ slot: UInt32, reference: UInt32) {
        precondition(reference > 0, "reference 0 names no value")
        switch storage {
        case .dense(var lists):
            let index = Int(reference) - 1
            if index >= lists.count && index >= Self.denseFloor && index + 1 > 4 * (keyCount + 1) {
                var sparse: [UInt32: PostingList] = [:]
                sparse.reserveCapacity(keyCount + 1)
                for (offset, list) in lists.enumerated() where !list.isEmpty { sparse[UInt32(offset + 1)] = list }
                storage = .sparse(sparse)
                insert(slot, reference: reference)
                return
            }
            storage = .dense([])  // release the table's reference so the mutation below is in place
            if index >= lists.count {
                let missing = index + 1 - lists.count
                lists.reserveGently(forAppending: missing)
                lists.append(contentsOf: repeatElement(PostingList(), count: missing))
            }
            if lists[index].isEmpty { keyCount += 1 }
            lists[index].insert(slot)
            storage = .dense(lists)
        case .sparse(var lists):
            storage = .dense([])
            if lists[reference, default: PostingList()].isEmpty { keyCount += 1 }
            lists[reference, default: PostingList()].insert(slot)
            storage = .sparse(lists)
        }
    }

    mutating func remove(_ slot: UInt32, reference: UInt32) {
        switch storage {
        case .dense(var lists):
            let index = Int(reference) - 1
            guard index >= 0, index < lists.count else { return }
            storage = .dense([])
            if lists[index].remove(slot), lists[index].isEmpty { keyCount -= 1 }
            storage = .dense(lists)
        case .sparse(var lists):
            storage = .dense([])
            if lists[reference]?.remove(slot) == true, lists[reference]?.isEmpty == true {
                lists[reference] = nil
                keyCount -= 1
            }
            storage = .sparse(lists)
        }
    }

    /// Entries in all lists, and the bytes of the table and its lists.
    var sizes: (entries: Int, bytes: Int) {
        switch storage {
        case .dense(let lists):
            return lists.reduce((0, lists.isEmpty ? 0 : 32 + lists.capacity * 8)) { ($0.0 + $1.count, $0.1 + $1.estimatedBytes) }
        case .sparse(let lists):
            return lists.values.reduce((0, 48 + lists.capacity * 16)) { ($0.0 + $1.count, $0.1 + $1.estimatedBytes) }
        }
    }
}
