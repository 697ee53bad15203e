/// Fields most records leave at their default, kept by the store beside the records rather than in
/// each of them (16 bytes a record): a soft deletion's time and author, a schema version other than 1.
public struct SparseFields: Sendable, Equatable {
    public var deletedAt: Int64 = StoredRecord.nullTime
    /// Reference into the store's UUID table; 0 for none.
    public var deletedBy: UInt32 = 0
    public var schemaVersion: UInt16 = 1

    public static let defaults = SparseFields()

    public init(deletedAt: Int64 = StoredRecord.nullTime, deletedBy: UInt32 = 0, schemaVersion: UInt16 = 1) {
        self.deletedAt = deletedAt
        self.deletedBy = deletedBy
        self.schemaVersion = schemaVersion
    }
}

/// The ``SparseFields`` of the records that have them, by slot, in one small dictionary per 1,024
/// slots (a page of records): a write after a copy (a snapshot's capture) copies one of them, not the
/// table, as with the record pages.
public struct SparseFieldTable: Sendable {
    private var pages: [[UInt16: SparseFields]] = []
    private static let pageShift: UInt32 = 10

    public init() {}

    public subscript(slot: UInt32) -> SparseFields? {
        get {
            let page = Int(slot >> Self.pageShift)
            return page < pages.count ? pages[page][Self.key(slot)] : nil
        }
        set {
            let page = Int(slot >> Self.pageShift)
            if page >= pages.count {
                guard newValue != nil else { return }
                pages.append(contentsOf: repeatElement([:], count: page + 1 - pages.count))
            }
            pages[page][Self.key(slot)] = newValue
        }
    }

    /// How many slots have an entry.
    public var count: Int { pages.reduce(0) { $0 + $1.count } }

    @inline(__always) private static func key(_ slot: UInt32) -> UInt16 { UInt16(truncatingIfNeeded: slot & ((1 << pageShift) - 1)) }
}
