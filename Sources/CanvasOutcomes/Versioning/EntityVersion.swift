import LearnStoreModel

/// The two timestamps that order versions of one entity: the record's own `updated_at` (else
/// `created_at`), then `metadata.event_time`. Absent times sort before every present one, so a
/// `_created` event (which has no `updated_at`) never outranks an `_updated` one.
public struct VersionStamp: Hashable, Comparable, Sendable {
    public var recordTime: Timestamp?
    public var eventTime: Timestamp?

    public init(recordTime: Timestamp?, eventTime: Timestamp?) {
        self.recordTime = recordTime
        self.eventTime = eventTime
    }

    public static func < (lhs: VersionStamp, rhs: VersionStamp) -> Bool {
        let left = (lhs.recordTime?.milliseconds ?? .min, lhs.eventTime?.milliseconds ?? .min)
        let right = (rhs.recordTime?.milliseconds ?? .min, rhs.eventTime?.milliseconds ?? .min)
        return left < right
    }
}

/// A total order on the versions of one entity: stamp, then content digest. The store keeps the maximum
/// version it has seen, and a maximum does not depend on arrival order, so any permutation of the same
/// events (duplicates included) converges to the same state.
public struct EntityVersion: Hashable, Comparable, Sendable {
    public var stamp: VersionStamp
    public var digest: ContentDigest

    public init(stamp: VersionStamp, digest: ContentDigest) {
        self.stamp = stamp
        self.digest = digest
    }

    public static func < (lhs: EntityVersion, rhs: EntityVersion) -> Bool {
        lhs.stamp != rhs.stamp ? lhs.stamp < rhs.stamp : lhs.digest < rhs.digest
    }
}
