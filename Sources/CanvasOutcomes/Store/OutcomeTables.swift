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
