import HashTreeCollections

/// Row-level reads and exact restores: what an engine needs to take back an ingest that could not be
/// made durable. `apply` only ever moves a key to a newer version; `restore` puts back any prior row.
extension OutcomeStore {
    /// The row stored under a key: the live entity, its tombstone, or nil when the store never saw it.
    public func record(kind: OutcomeEntityKind, key: String) -> OutcomeRecord? {
        let live: OutcomeEntity? = switch kind {
        case .outcome: tables.outcomes[key].map(OutcomeEntity.outcome)
        case .group: tables.groups[key].map(OutcomeEntity.group)
        case .link: tables.links[key].map(OutcomeEntity.link)
        case .result: tables.results[key].map(OutcomeEntity.result)
        case .proficiency: tables.proficiencies[key].map(OutcomeEntity.proficiency)
        }
        if let live { return .entity(live) }
        return tables.tombstones[TombstoneKey(kind: kind, key: key)].map(OutcomeRecord.tombstone)
    }

    /// The verdict `apply(record)` would give now, without applying it.
    public func verdict(for record: OutcomeRecord) -> IngestResult {
        record.verdict(over: self.record(kind: record.kind, key: record.key))
    }

    /// Makes the row under (`kind`, `key`) exactly `row` (a value ``record(kind:key:)`` returned
    /// earlier; nil removes the key entirely), whatever it holds now, keeping every index in step.
    /// Unlike `apply`, this ignores versions: it is for undo, newest write first.
    public mutating func restore(_ row: OutcomeRecord?, kind: OutcomeEntityKind, key: String) {
        precondition(row.map { $0.kind == kind && $0.key == key } ?? true, "restore of a row under another key")
        let entity: OutcomeEntity? = if case .entity(let e) = row { e } else { nil }
        switch kind {
        case .outcome: Self.replace(key, with: entity.flatMap { if case .outcome(let e) = $0 { e } else { nil } }, &tables.outcomes, &indexes)
        case .group: Self.replace(key, with: entity.flatMap { if case .group(let e) = $0 { e } else { nil } }, &tables.groups, &indexes)
        case .link: Self.replace(key, with: entity.flatMap { if case .link(let e) = $0 { e } else { nil } }, &tables.links, &indexes)
        case .result: Self.replace(key, with: entity.flatMap { if case .result(let e) = $0 { e } else { nil } }, &tables.results, &indexes)
        case .proficiency:
            Self.replace(key, with: entity.flatMap { if case .proficiency(let e) = $0 { e } else { nil } }, &tables.proficiencies, &indexes)
        }
        let tombstoneKey = TombstoneKey(kind: kind, key: key)
        if case .tombstone(let tombstone) = row {
            tables.tombstones[tombstoneKey] = tombstone
        } else if tables.tombstones[tombstoneKey] != nil {
            tables.tombstones[tombstoneKey] = nil
        }
    }

    private static func replace<E: VersionedEntity>(
        _ key: String, with entity: E?, _ table: inout TreeDictionary<String, E>, _ indexes: inout OutcomeIndexes
    ) {
        if let current = table[key] {
            current.removeFromIndexes(&indexes)
            table[key] = nil
        }
        if let entity {
            table[key] = entity
            entity.addToIndexes(&indexes)
        }
    }
}
