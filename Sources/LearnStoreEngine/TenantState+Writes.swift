import LearnStoreModel

/// Write commands. Each validates and stamps, then goes through `apply`, so the returned mutations
/// are exactly what changed the state.
extension TenantState {
    /// The tenant's clock never runs backwards: a new record sorts after every existing one.
    /// The slot indexes hold 27-bit slots; a write that would need more is refused before anything
    /// changes (purged slots stay taken until the tenant is rebuilt from a snapshot).
    static func checkSlotCapacity(used: Int, adding: Int) throws(LearnStoreError) {
        let capacity = Int(SlotHashIndex.maximumSlot) + 1
        guard adding <= capacity - used else {
            throw .validation("the tenant holds \(used) record slots; \(adding) more would pass the limit of \(capacity)")
        }
    }

    func stampTime(_ now: Timestamp) -> Int64 {
        max(now.milliseconds, store.lastKey?.createdAt ?? Int64.min)
    }

    public mutating func create(
        _ body: RecordBody, caller: CallerIdentity, idempotencyKey: String? = nil, now: Timestamp
    ) throws(LearnStoreError) -> TenantWrite<LearningRecord> {
        let write = try createBatch([body], caller: caller, idempotencyKey: idempotencyKey, now: now)
        return TenantWrite(result: write.result[0], mutations: write.mutations, sequence: write.sequence,
                           replayed: write.replayed, undo: write.undo)
    }

    /// Creates all records or none.
    public mutating func createBatch(
        _ bodies: [RecordBody], caller: CallerIdentity, idempotencyKey: String? = nil, now: Timestamp
    ) throws(LearnStoreError) -> TenantWrite<[LearningRecord]> {
        try caller.require(.recordsWrite)
        guard !bodies.isEmpty else { throw .validation("a batch needs at least one record") }
        guard bodies.count <= limits.maximumBatch else {
            throw .validation("a batch holds at most \(limits.maximumBatch) records, got \(bodies.count)")
        }
        try Self.checkSlotCapacity(used: store.slotCount, adding: bodies.count)
        var scopedKey: String?
        var fingerprint: UInt64 = 0
        if let idempotencyKey {
            guard (1...IdempotencyEntry.maximumKeyBytes).contains(idempotencyKey.utf8.count) else {
                throw .validation("an idempotency key is 1 to \(IdempotencyEntry.maximumKeyBytes) bytes", field: "idempotency_key")
            }
            let key = IdempotencyEntry.scopedKey(idempotencyKey, appID: caller.appID)
            fingerprint = IdempotencyEntry.fingerprint(of: bodies)
            if let entry = idempotency[key] {
                guard entry.fingerprint == fingerprint else {
                    throw LearnStoreError(.conflict, "idempotency key '\(idempotencyKey)' was used for a different request", field: "idempotency_key")
                }
                let records = entry.ids.compactMap { id in indexes.slot(of: id, in: store).map { store.record(at: $0) } }
                guard records.count == entry.ids.count else {
                    throw LearnStoreError(.conflict, "idempotency key '\(idempotencyKey)' created records that were since purged", field: "idempotency_key")
                }
                return TenantWrite(result: records, mutations: [], sequence: sequence, replayed: true)
            }
            scopedKey = key
        }
        var records: [LearningRecord] = []
        records.reserveCapacity(bodies.count)
        var generator = SystemRandomNumberGenerator()
        var seeded = idRandomness
        defer { if seeded != nil { idRandomness = seeded } }
        let createdAt = stampTime(now)
        var ids = idGenerator
        for (index, body) in bodies.enumerated() {
            do {
                try RecordValidator.checkCreate(body)
            } catch {
                if bodies.count > 1 { throw LearnStoreError(error.code, "record \(index): \(error.message)", field: error.field) }
                throw error
            }
            let milliseconds = UInt64(max(0, createdAt))
            let id = seeded == nil ? ids.next(milliseconds: milliseconds, using: &generator) : ids.next(milliseconds: milliseconds, using: &seeded!)
            var record = LearningRecord(
                id: id, tenantID: tenantID, appID: caller.appID, createdAt: Timestamp(milliseconds: createdAt),
                updatedAt: Timestamp(milliseconds: createdAt), createdBy: caller.personID, updatedBy: caller.personID,
                personID: .zero)
            RecordValidator.apply(body, to: &record)
            do {
                try RecordValidator.checkRecord(record)
            } catch {
                if bodies.count > 1 { throw LearnStoreError(error.code, "record \(index): \(error.message)", field: error.field) }
                throw error
            }
            records.append(record)
        }
        let newSequence = sequence + 1
        var mutations: [TenantMutation] = [.putRecords(records), .recordChange(.create)]
        if let scopedKey {
            mutations.append(.rememberIdempotencyKey(
                IdempotencyEntry(key: scopedKey, fingerprint: fingerprint, ids: records.map(\.id), sequence: newSequence)))
        }
        let undo = apply(mutations, sequence: newSequence)
        return TenantWrite(result: records, mutations: mutations, sequence: newSequence, undo: undo)
    }

    /// Partial update. `expectedUpdatedAt`, when given, must equal the stored updated_at (optimistic
    /// concurrency: updated_at rises by at least 1 ms on every change, so it works as a version).
    public mutating func patch(
        _ id: RecordID, _ body: RecordBody, expectedUpdatedAt: Timestamp? = nil, caller: CallerIdentity, now: Timestamp
    ) throws(LearnStoreError) -> TenantWrite<LearningRecord> {
        try caller.require(.recordsWrite)
        try RecordValidator.checkPatch(body)
        let slot = try visibleSlot(id, caller: caller)
        var record = store.record(at: slot)
        if record.isDeleted {
            throw LearnStoreError(.conflict, "record \(id) is deleted; restore it before patching")
        }
        if let expectedUpdatedAt, expectedUpdatedAt != record.updatedAt {
            throw LearnStoreError(.conflict, "record \(id) was updated at \(record.updatedAt), not \(expectedUpdatedAt)", field: "updated_at")
        }
        RecordValidator.apply(body, to: &record)
        try RecordValidator.checkRecord(record)
        try stampUpdate(&record, caller: caller, now: now)
        return commit(record, .patch)
    }

    /// Soft delete; deleting a deleted record changes nothing and returns it.
    public mutating func delete(_ id: RecordID, caller: CallerIdentity, now: Timestamp) throws(LearnStoreError) -> TenantWrite<LearningRecord> {
        try caller.require(.recordsWrite)
        var record = store.record(at: try visibleSlot(id, caller: caller))
        if record.isDeleted { return TenantWrite(result: record, mutations: [], sequence: sequence) }
        try stampUpdate(&record, caller: caller, now: now)
        record.isDeleted = true
        record.deletedAt = record.updatedAt
        record.deletedBy = caller.personID
        return commit(record, .delete)
    }

    /// Undoes a soft delete; restoring a live record changes nothing and returns it.
    public mutating func restore(_ id: RecordID, caller: CallerIdentity, now: Timestamp) throws(LearnStoreError) -> TenantWrite<LearningRecord> {
        try caller.require(.recordsWrite)
        var record = store.record(at: try visibleSlot(id, caller: caller))
        if !record.isDeleted { return TenantWrite(result: record, mutations: [], sequence: sequence) }
        try stampUpdate(&record, caller: caller, now: now)
        record.isDeleted = false
        record.deletedAt = nil
        record.deletedBy = nil
        return commit(record, .restore)
    }

    /// Hard-deletes every record of one person (right to erasure). Admin only. With `dryRun`, only
    /// counts. App-scoped callers purge only their app's records.
    public mutating func purgePerson(
        _ personID: UUID16, dryRun: Bool, caller: CallerIdentity
    ) throws(LearnStoreError) -> TenantWrite<Int> {
        try caller.require(.admin)
        catchUpIndexes()
        var ids: [RecordID] = []
        if let personRef = store.persons.find(personID) {
            let list = indexes.personList(personRef)
            list.forEach { slot in
                let record = store[slot]
                if isVisible(record, to: caller) { ids.append(record.id) }
            }
        }
        if dryRun || ids.isEmpty { return TenantWrite(result: ids.count, mutations: [], sequence: sequence) }
        let newSequence = sequence + 1
        let mutations: [TenantMutation] = [.purgeRecords(ids)]
        let undo = apply(mutations, sequence: newSequence)
        return TenantWrite(result: ids.count, mutations: mutations, sequence: newSequence, undo: undo)
    }

    /// Puts whole records as given (import). Admin only; ids and stamps are kept, the tenant is forced
    /// to this tenant.
    public mutating func importRecords(_ records: [LearningRecord], caller: CallerIdentity) throws(LearnStoreError) -> TenantWrite<Int> {
        let write = try importBatch(records: records, outcomes: [], caller: caller)
        return TenantWrite(result: write.result.records, mutations: write.mutations, sequence: write.sequence, undo: write.undo)
    }

    /// Moves updated_at forward by at least 1 ms. An imported record may carry the last instant of
    /// the `time` range, past which updated_at cannot rise; refused rather than stored out of range.
    func stampUpdate(_ record: inout LearningRecord, caller: CallerIdentity, now: Timestamp) throws(LearnStoreError) {
        guard record.updatedAt < Timestamp.maximum else {
            throw .validation("record \(record.id) has updated_at \(record.updatedAt), the last time LearnStore can store; it cannot change again", field: "updated_at")
        }
        record.updatedAt = Timestamp(milliseconds: max(now.milliseconds, record.updatedAt.milliseconds + 1))
        record.updatedBy = caller.personID
    }

    mutating func commit(_ record: LearningRecord, _ kind: RecordChangeKind) -> TenantWrite<LearningRecord> {
        let newSequence = sequence + 1
        let mutations: [TenantMutation] = [.putRecords([record]), .recordChange(kind)]
        let undo = apply(mutations, sequence: newSequence)
        return TenantWrite(result: record, mutations: mutations, sequence: newSequence, undo: undo)
    }
}
