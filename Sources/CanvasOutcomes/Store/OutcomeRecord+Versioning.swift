/// What the engine needs to log exactly what an ingest changed and to take it back: each record's key,
/// the verdict `apply` would give without applying it, and the record an applied entity is stored as.
extension OutcomeRecord {
    /// The stored form of an entity snapshot: a tombstone when it is `deleted`, else the entity itself.
    /// Applying either form gives the same tables, so the engine logs this one (it is what a snapshot holds).
    public init(storing entity: OutcomeEntity) {
        guard entity.isDeleted else {
            self = .entity(entity)
            return
        }
        switch entity {
        case .outcome(let e): self = .tombstone(OutcomeTombstone(deleted: e))
        case .group(let e): self = .tombstone(OutcomeTombstone(deleted: e))
        case .link(let e): self = .tombstone(OutcomeTombstone(deleted: e))
        case .result(let e): self = .tombstone(OutcomeTombstone(deleted: e))
        case .proficiency(let e): self = .tombstone(OutcomeTombstone(deleted: e))
        }
    }

    public var kind: OutcomeEntityKind {
        switch self {
        case .entity(let entity): entity.kind
        case .tombstone(let tombstone): tombstone.kind
        }
    }

    /// The table key (for a result, ``OutcomeResult/key``).
    public var key: String {
        switch self {
        case .entity(let entity): entity.key
        case .tombstone(let tombstone): tombstone.key
        }
    }

    var stamp: VersionStamp {
        switch self {
        case .entity(let entity): entity.stamp
        case .tombstone(let tombstone): tombstone.version.stamp
        }
    }

    var digest: ContentDigest {
        switch self {
        case .entity(let entity): entity.version.digest
        case .tombstone(let tombstone): tombstone.version.digest
        }
    }

    /// What applying this record over `stored` (the row under the same key, nil for none) gives, by the
    /// store's own rules: `.applied` when it is newer, `.duplicate` when it is the same version, else `.stale`.
    public func verdict(over stored: OutcomeRecord?) -> IngestResult {
        guard let stored else { return .applied }
        return OutcomeStore.compare(stamp, { digest }, with: stored.stamp, { stored.digest })
    }
}

extension OutcomeEntity {
    var stamp: VersionStamp {
        switch self {
        case .outcome(let e): e.stamp
        case .group(let e): e.stamp
        case .link(let e): e.stamp
        case .result(let e): e.stamp
        case .proficiency(let e): e.stamp
        }
    }
}
