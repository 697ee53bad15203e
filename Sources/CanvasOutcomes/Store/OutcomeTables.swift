import HashTreeCollections

/// The captured state: live entities by key, and tombstones. Persistent hash tries, so copying the
/// tables for a snapshot is O(1) and the store's next mutation copies only the path it touches.
/// Everything else the store holds (indexes) is derived from these.
public struct OutcomeTables: Hashable, Sendable {
    public internal(set) var outcomes = TreeDictionary<String, LearningOutcome>()
    public internal(set) var groups = TreeDictionary<String, OutcomeGroup>()
    public internal(set) var links = TreeDictionary<String, OutcomeLink>()
    /// Keyed by ``OutcomeResult/key``.
    public internal(set) var results = TreeDictionary<String, OutcomeResult>()
    public internal(set) var proficiencies = TreeDictionary<String, OutcomeProficiency>()
    public internal(set) var tombstones = TreeDictionary<TombstoneKey, OutcomeTombstone>()

    public init() {}

    /// Live entities plus tombstones.
    public var recordCount: Int {
        outcomes.count + groups.count + links.count + results.count + proficiencies.count + tombstones.count
    }

    /// Up to `limit` rows from the `offset`-th on, in ``forEachRecord(_:)``'s order: each table is
    /// entered at its offset by the tries' subtree counts, so a reader that takes the rows in pieces
    /// pays for the rows it takes, not for every row before them.
    public func records(from offset: Int, limit: Int) -> [OutcomeRecord] {
        var rows: [OutcomeRecord] = []
        var skip = max(0, offset)
        let wanted = max(0, limit)
        func take<Value>(_ table: TreeDictionary<some Hashable, Value>, _ row: (Value) -> OutcomeRecord) {
            guard rows.count < wanted else { return }
            guard skip < table.count else {
                skip -= table.count
                return
            }
            var index = table.index(table.startIndex, offsetBy: skip)
            skip = 0
            while index != table.endIndex, rows.count < wanted {
                rows.append(row(table[index].value))
                table.formIndex(after: &index)
            }
        }
        take(outcomes) { .entity(.outcome($0)) }
        take(groups) { .entity(.group($0)) }
        take(links) { .entity(.link($0)) }
        take(results) { .entity(.result($0)) }
        take(proficiencies) { .entity(.proficiency($0)) }
        take(tombstones) { .tombstone($0) }
        return rows
    }

    /// Every row as a record, for a snapshot writer; order is unspecified (apply is order-independent).
    public func forEachRecord(_ body: (OutcomeRecord) throws -> Void) rethrows {
        for (_, value) in outcomes { try body(.entity(.outcome(value))) }
        for (_, value) in groups { try body(.entity(.group(value))) }
        for (_, value) in links { try body(.entity(.link(value))) }
        for (_, value) in results { try body(.entity(.result(value))) }
        for (_, value) in proficiencies { try body(.entity(.proficiency(value))) }
        for (_, value) in tombstones { try body(.tombstone(value)) }
    }
}
