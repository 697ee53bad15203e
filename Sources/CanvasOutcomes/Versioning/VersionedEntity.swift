import LearnStoreModel

/// What the store needs from every entity type to version, index and tombstone it.
protocol VersionedEntity: Hashable, Sendable {
    static var kind: OutcomeEntityKind { get }
    /// The table key: the Canvas id (or a result's synthetic key).
    var key: String { get }
    var metadata: EventMetadata { get }
    /// `updated_at`, else `created_at`.
    var recordTime: Timestamp? { get }
    var workflowState: String? { get }
    /// Stamp and digest (each type implements it publicly, below).
    var version: EntityVersion { get }
    /// Writes every field except the format-version byte; the digest is taken over these bytes.
    func encodeContent(into writer: inout ByteWriter)
    func addToIndexes(_ indexes: inout OutcomeIndexes)
    func removeFromIndexes(_ indexes: inout OutcomeIndexes)
}

extension VersionedEntity {
    var isDeleted: Bool { workflowState == "deleted" }

    var stamp: VersionStamp { VersionStamp(recordTime: recordTime, eventTime: metadata.eventTime) }

    /// Computed only when two versions tie on their stamps, so the common path never encodes.
    var digest: ContentDigest {
        var writer = ByteWriter(capacity: 256)
        encodeContent(into: &writer)
        return ContentDigest(bytes: writer.bytes)
    }

}

extension LearningOutcome {
    /// The version the store orders this snapshot by.
    public var version: EntityVersion { EntityVersion(stamp: stamp, digest: digest) }
}

extension OutcomeGroup {
    /// The version the store orders this snapshot by.
    public var version: EntityVersion { EntityVersion(stamp: stamp, digest: digest) }
}

extension OutcomeLink {
    /// The version the store orders this snapshot by.
    public var version: EntityVersion { EntityVersion(stamp: stamp, digest: digest) }
}

extension OutcomeResult {
    /// The version the store orders this snapshot by.
    public var version: EntityVersion { EntityVersion(stamp: stamp, digest: digest) }
}

extension OutcomeProficiency {
    /// The version the store orders this snapshot by.
    public var version: EntityVersion { EntityVersion(stamp: stamp, digest: digest) }
}
