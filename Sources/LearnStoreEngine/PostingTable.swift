/// Posting lists by a 1-based reference of the tenant's interning tables (a person, a cohort, an app,
/// a provider). References are handed out densely, so the lists are an array indexed by reference
/// rather than a hash table: one word per reference, no buckets or spare capacity of a dictionary.
/// A table the index shares with other kinds (cohorts are interned with authors) leaves their
/// references an empty word.
struct PostingTable: Sendable {
    private var lists = ContiguousArray<PostingList>()

    /// Room for references 1 ... `references` (a bulk build knows how many the tables hold).
    init(references: Int = 0) {
        if references > 0 { lists = ContiguousArray(repeating: PostingList(), count: references) }
    }

    /// The list of `reference` (empty when no record has it).
    subscript(reference: UInt32) -> PostingList {
        let index = Int(reference) - 1
        return index >= 0 && index < lists.count ? lists[index] : PostingList()
    }

    mutating func insert(_ slot: UInt32, reference: UInt32) {
        let index = Int(reference) - 1
        precondition(index >= 0, "reference 0 names no value")
        if index >= lists.count {
            let missing = index + 1 - lists.count
            lists.reserveGently(forAppending: missing)
            lists.append(contentsOf: repeatElement(PostingList(), count: missing))
        }
        lists[index].insert(slot)
    }

    mutating func remove(_ slot: UInt32, reference: UInt32) {
        let index = Int(reference) - 1
        guard index >= 0, index < lists.count else { return }
        lists[index].remove(slot)
    }

    /// Entries in all lists, and the bytes of the table and its lists.
    var sizes: (entries: Int, bytes: Int) {
        lists.reduce((0, lists.isEmpty ? 0 : 32 + lists.capacity * 8)) { ($0.0 + $1.count, $0.1 + $1.estimatedBytes) }
    }
}
