import LearnStoreModel

/// Counts and sizes of one tenant, for the stats opcode and operators.
public struct TenantStats: Sendable, Hashable {
    public var tenantID: String
    public var sequence: UInt64
    public var liveRecords: Int
    public var deletedRecords: Int
    public var purgedSlots: Int
    public var persons: Int
    public var internedStrings: Int
    public var internedUUIDs: Int
    public var idempotencyKeys: Int
    public var indexEntries: [String: Int]
    public var recordBytes: Int
    public var indexBytes: Int
    public var outcomeEntities: Int = 0
    public var outcomeResults: Int = 0

    public var estimatedBytes: Int { recordBytes + indexBytes }
}

extension TenantState {
    public mutating func stats(caller: CallerIdentity) throws(LearnStoreError) -> TenantStats {
        try caller.require(.recordsRead)
        catchUpIndexes()
        return stats
    }

    public var stats: TenantStats {
        let sizes = indexes.sizes
        let recordBytes = store.records.capacityBytes + store.certificationRefs.capacityBytes
            + store.strings.estimatedBytes + store.uuids.estimatedBytes + store.persons.estimatedBytes
        return TenantStats(
            tenantID: tenantID, sequence: sequence, liveRecords: store.liveCount, deletedRecords: store.deletedCount,
            purgedSlots: store.slotCount - store.liveCount - store.deletedCount, persons: store.persons.count,
            internedStrings: store.strings.count, internedUUIDs: store.uuids.count, idempotencyKeys: idempotency.count,
            indexEntries: sizes.entries, recordBytes: recordBytes, indexBytes: sizes.estimatedBytes,
            outcomeEntities: outcomes.entityCount, outcomeResults: outcomes.resultCount)
    }
}
