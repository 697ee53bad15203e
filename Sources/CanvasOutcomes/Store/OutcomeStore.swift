import HashTreeCollections

/// The Canvas outcome data of one tenant: a pure value the tenant actor owns and mutates with events.
///
/// Ingestion is idempotent and order-independent. Per entity the store keeps the greatest
/// ``EntityVersion`` it has seen: newest `updated_at` (else `created_at`), then newest
/// `metadata.event_time`, then the larger content digest. A maximum does not depend on arrival order,
/// so every permutation of the same events, duplicates included, ends in the same ``tables``. A version
/// whose `workflow_state` is `deleted` is kept as a tombstone, which outranks every older event, so a
/// late `_created` never brings a deleted entity back (a newer active version legitimately does).
///
/// For a snapshot, copy ``tables`` (O(1)) and serialize the copy elsewhere; do not copy the whole store,
/// or the indexes would be copied on the next write.
public struct OutcomeStore: Sendable {
    public internal(set) var tables: OutcomeTables
    var indexes = OutcomeIndexes()

    public init() {
        tables = OutcomeTables()
    }

    /// A store over previously captured tables (e.g. a loaded snapshot); builds the indexes.
    public init(tables: OutcomeTables) {
        self.tables = tables
        rebuildIndexes()
    }

    /// Discards and rebuilds every index from the tables.
    public mutating func rebuildIndexes() {
        var fresh = OutcomeIndexes()
        for (_, value) in tables.outcomes { value.addToIndexes(&fresh) }
        for (_, value) in tables.groups { value.addToIndexes(&fresh) }
        for (_, value) in tables.links { value.addToIndexes(&fresh) }
        for (_, value) in tables.results { value.addToIndexes(&fresh) }
        for (_, value) in tables.proficiencies { value.addToIndexes(&fresh) }
        indexes = fresh
    }

    /// Applies a parsed live event.
    public mutating func apply(_ event: OutcomeEvent) -> IngestResult {
        apply(event.entity)
    }

    /// Applies one entity snapshot.
    public mutating func apply(_ entity: OutcomeEntity) -> IngestResult {
        switch entity {
        case .outcome(let e): Self.upsert(e, &tables.outcomes, &tables.tombstones, &indexes)
        case .group(let e): Self.upsert(e, &tables.groups, &tables.tombstones, &indexes)
        case .link(let e): Self.upsert(e, &tables.links, &tables.tombstones, &indexes)
        case .result(let e): Self.upsert(e, &tables.results, &tables.tombstones, &indexes)
        case .proficiency(let e): Self.upsert(e, &tables.proficiencies, &tables.tombstones, &indexes)
        }
    }

    /// Applies a record from a WAL or snapshot: the same rules as events, so replay order does not matter.
    public mutating func apply(_ record: OutcomeRecord) -> IngestResult {
        switch record {
        case .entity(let entity): apply(entity)
        case .tombstone(let tombstone): apply(tombstone)
        }
    }

    private mutating func apply(_ tombstone: OutcomeTombstone) -> IngestResult {
        switch tombstone.kind {
        case .outcome: Self.bury(tombstone, &tables.outcomes, &tables.tombstones, &indexes)
        case .group: Self.bury(tombstone, &tables.groups, &tables.tombstones, &indexes)
        case .link: Self.bury(tombstone, &tables.links, &tables.tombstones, &indexes)
        case .result: Self.bury(tombstone, &tables.results, &tables.tombstones, &indexes)
        case .proficiency: Self.bury(tombstone, &tables.proficiencies, &tables.tombstones, &indexes)
        }
    }

    private static func upsert<E: VersionedEntity>(
        _ incoming: E, _ table: inout TreeDictionary<String, E>,
        _ tombstones: inout TreeDictionary<TombstoneKey, OutcomeTombstone>, _ indexes: inout OutcomeIndexes
    ) -> IngestResult {
        let key = incoming.key
        let tombstoneKey = TombstoneKey(kind: E.kind, key: key)
        let live = table[key]
        let buried = live == nil ? tombstones[tombstoneKey] : nil
        let verdict: IngestResult
        if let live {
            verdict = compare(incoming.stamp, { incoming.digest }, with: live.stamp, { live.digest })
        } else if let buried {
            verdict = compare(incoming.stamp, { incoming.digest }, with: buried.version.stamp, { buried.version.digest })
        } else {
            verdict = .applied
        }
        guard verdict == .applied else { return verdict }

        live?.removeFromIndexes(&indexes)
        if incoming.isDeleted {
            if live != nil { table[key] = nil }
            tombstones[tombstoneKey] = OutcomeTombstone(deleted: incoming)
        } else {
            if buried != nil { tombstones[tombstoneKey] = nil }
            table[key] = incoming
            incoming.addToIndexes(&indexes)
        }
        return .applied
    }

    private static func bury<E: VersionedEntity>(
        _ tombstone: OutcomeTombstone, _ table: inout TreeDictionary<String, E>,
        _ tombstones: inout TreeDictionary<TombstoneKey, OutcomeTombstone>, _ indexes: inout OutcomeIndexes
    ) -> IngestResult {
        let live = table[tombstone.key]
        let verdict: IngestResult
        if let live {
            verdict = compare(tombstone.version.stamp, { tombstone.version.digest }, with: live.stamp, { live.digest })
        } else if let buried = tombstones[tombstone.tableKey] {
            verdict = compare(tombstone.version.stamp, { tombstone.version.digest },
                              with: buried.version.stamp, { buried.version.digest })
        } else {
            verdict = .applied
        }
        guard verdict == .applied else { return verdict }
        if let live {
            live.removeFromIndexes(&indexes)
            table[tombstone.key] = nil
        }
        tombstones[tombstone.tableKey] = tombstone
        return .applied
    }

    /// Stamps first; digests (which cost an encoding) only on a tie.
    static func compare(_ stamp: VersionStamp, _ digest: () -> ContentDigest,
                                with storedStamp: VersionStamp, _ storedDigest: () -> ContentDigest) -> IngestResult {
        if stamp != storedStamp { return stamp > storedStamp ? .applied : .stale }
        let incoming = digest()
        let stored = storedDigest()
        if incoming == stored { return .duplicate }
        return incoming > stored ? .applied : .stale
    }
}
