import CanvasOutcomes
import LearnStoreModel
import Synchronization

/// Limits the engine enforces on every tenant.
public struct EngineLimits: Sendable, Hashable {
    public var maximumBatch = 1000
    public var idempotencyKeys = IdempotencyTable.defaultCapacity
    public init(maximumBatch: Int = 1000, idempotencyKeys: Int = IdempotencyTable.defaultCapacity) {
        self.maximumBatch = maximumBatch
        self.idempotencyKeys = idempotencyKeys
    }
}

/// One tenant's data and indexes: a pure value type. Commands validate, stamp and return the
/// mutations they made; `apply(_:sequence:)` is the single path that changes records, used both
/// live and when replaying the WAL, so both produce the same state.
public struct TenantState: Sendable {
    public internal(set) var store: RecordStore
    public internal(set) var indexes = RecordIndexes()
    public internal(set) var idempotency: IdempotencyTable
    /// The tenant's Canvas outcome data (entities, results, tombstones and their indexes).
    public internal(set) var outcomes = OutcomeStore()
    /// The sequence number of the last applied write (0 for a new tenant).
    public internal(set) var sequence: UInt64 = 0
    /// Whether the tenant's last write released it to another group (its partition moved away):
    /// requests on connections opened before the move must be sent there, not answered from the
    /// emptied tenant. A copy of the tenant into this group (a reset) lifts it.
    public private(set) var releasedToAnotherGroup = false
    var idGenerator = ULIDGenerator()
    /// Where new record ids draw their random bits: nil, the system's generator; a simulation sets a
    /// seeded one, so that a seed's records, and so its snapshots' compressed bytes, are the same in
    /// every run.
    var idRandomness: SplitMix64?
    public let limits: EngineLimits
    /// Changes whenever a record changes in place or the records are replaced; appends leave it (see
    /// `TenantState+IndexBuild`). Drawn from one process-wide counter, so two states that differ
    /// never share a value, even when one replaced the other.
    private(set) var storeRevision: UInt64 = 0
    /// Changes whenever the records are replaced and their slots laid out anew (a load or a rebuild),
    /// from the same counter: a partition move's copy read in slot order while writes went on is
    /// valid only while this holds (``TenantChangeSet``).
    public private(set) var layoutRevision: UInt64 = 0
    private static let revisions = Atomic<UInt64>(0)

    mutating func storeChanged() {
        storeRevision = Self.revisions.add(1, ordering: .relaxed).newValue
    }

    /// Changes with every write, undo and load, from the same counter: equal values mean the same
    /// state (see `TenantState+PreparedImport`).
    public private(set) var writeRevision: UInt64 = TenantState.revisions.add(1, ordering: .relaxed).newValue

    mutating func stateChanged() {
        writeRevision = Self.revisions.add(1, ordering: .relaxed).newValue
    }

    public init(tenantID: String, limits: EngineLimits = EngineLimits()) {
        self.store = RecordStore(tenantID: tenantID)
        self.idempotency = IdempotencyTable(capacity: limits.idempotencyKeys)
        self.limits = limits
    }

    public var tenantID: String { store.tenantID }

    // MARK: the one mutation path

    /// Applies mutations as one write with the given sequence number, returning how to undo them.
    @discardableResult
    public mutating func apply(_ mutations: [TenantMutation], sequence newSequence: UInt64) -> TenantUndo {
        stateChanged()
        var undo = TenantUndo(sequenceBefore: sequence)
        var needsRebuild = false
        var slotsBefore = store.slotCount
        for mutation in mutations {
            switch mutation {
            case .putRecords(let records):
                needsRebuild = putAll(records, undo: &undo) || needsRebuild
            case .purgeRecords(let ids):
                for id in ids {
                    guard let slot = indexes.slot(of: id, in: store) else { continue }
                    undo.steps.append(.put(store.record(at: slot)))
                    purge(slot)
                }
            case .rememberIdempotencyKey(let entry):
                if let previous = idempotency[entry.key] {
                    undo.steps.append(.restoreKey(previous))
                    idempotency.remember(entry)
                } else {
                    let evicted = idempotency.remember(entry)
                    undo.steps.append(.unremember(entry.key, evicted: evicted))
                }
            case .forgetIdempotencyKeys:
                undo.steps.append(.restoreState(self))
                idempotency = IdempotencyTable(capacity: limits.idempotencyKeys)
            case .outcomes(let records):
                for record in records {
                    let prior = outcomes.record(kind: record.kind, key: record.key)
                    // A record that is not newer than the stored row changes nothing (replay of an
                    // entry whose effect a snapshot already holds), so it needs no undo.
                    if outcomes.apply(record) == .applied {
                        undo.steps.append(.restoreOutcome(record.kind, key: record.key, row: prior))
                    }
                }
            case .recordChange, .continueTenant:
                break
            case .resetTenant, .releaseTenant:
                undo.steps.append(.restoreState(self))
                empty()
                needsRebuild = false
                slotsBefore = 0
                releasedToAnotherGroup = mutation == .releaseTenant
            }
        }
        if needsRebuild { rebuild() } else { boundIndexBacklog(added: store.slotCount - slotsBefore) }
        sequence = newSequence
        return undo
    }

    // MARK: the index backlog

    /// Tenants up to this many slots let the backlog grow until a read or an idle moment (the
    /// persistence scheduler's tick): a bulk load then builds its indexes once, at a quarter of the
    /// cost of inserting record by record.
    public static let lazyIndexSlots = 131_072

    /// The longest catch-up a read may have to wait for, by ``RecordIndexes/catchUpMicroseconds(backlog:slots:)``:
    /// a backlog of `lazyIndexSlots` added to a larger tenant (about 190 ms), or a build of a tenant
    /// of up to 500,000 records. A tenant that outgrows `lazyIndexSlots` during a write burst keeps
    /// its backlog until the scheduler catches it up off the lock
    /// (``indexBuildDuringWrites(minimumBacklog:minimumSlots:)``); only past this cost do its writes
    /// index the backlog themselves.
    static let longestReadCatchUpMicroseconds = 1.45 * Double(lazyIndexSlots)

    /// Whether a write must index part of the backlog itself: catching it up would cost a read more
    /// than ``longestReadCatchUpMicroseconds``. Never for a tenant of up to `lazyIndexSlots`.
    static func writesIndexBacklog(backlog: Int, slots: Int) -> Bool {
        RecordIndexes.catchUpMicroseconds(backlog: backlog, slots: slots) > longestReadCatchUpMicroseconds
    }

    /// New records enter only the id index at write time (see ``RecordIndexes``). Past the bound of
    /// ``writesIndexBacklog(backlog:slots:)``, each write indexes up to twice as many slots as it
    /// added (at least two), so what is above the bound drains over many writes, each paying at most
    /// about three times its own indexing, instead of one write stalling its whole event loop.
    mutating func boundIndexBacklog(added: Int) {
        guard !indexes.secondaryDeferred,
              Self.writesIndexBacklog(backlog: indexes.backlog(in: store), slots: store.slotCount)
        else { return }
        indexes.catchUp(store, limit: 2 * max(1, added))
    }

    /// Adds every record to the secondary indexes; readers of those indexes call this first.
    public mutating func catchUpIndexes() {
        if !indexes.secondaryDeferred { indexes.catchUp(store) }
    }

    /// Records not yet in the secondary indexes.
    public var indexBacklog: Int { indexes.backlog(in: store) }

    /// Takes back a write that could not be made durable. Undos must be applied newest first.
    public mutating func undo(_ undo: TenantUndo) {
        stateChanged()
        var needsRebuild = false
        var scratch = TenantUndo(sequenceBefore: sequence)
        for step in undo.steps.reversed() {
            switch step {
            case .put(let record): needsRebuild = putAll([record], undo: &scratch) || needsRebuild
            case .remove(let id):
                if let slot = indexes.slot(of: id, in: store) { purge(slot) }
            case .unremember(let key, let evicted): idempotency.undoRemember(key, evicted: evicted)
            case .restoreKey(let entry): idempotency.remember(entry)
            case .restoreOutcome(let kind, let key, let row): outcomes.restore(row, kind: kind, key: key)
            case .restoreState(let saved):
                self = saved
                needsRebuild = false
            }
        }
        if needsRebuild { rebuild() }
        sequence = undo.sequenceBefore
    }

    /// Inserts or replaces records. Existing ids are replaced in place; new records are appended in
    /// (created_at, id) order. Returns true if a new record sorts before an existing one (only an
    /// import can do that), in which case the tenant must be rebuilt to restore slot order.
    mutating func putAll(_ records: [LearningRecord], undo: inout TenantUndo) -> Bool {
        var fresh: [LearningRecord] = []
        for record in records {
            idGenerator.observe(record.id)
            if !replaceExisting(record, undo: &undo) { fresh.append(record) }
        }
        guard !fresh.isEmpty else { return false }
        if fresh.count > 1 && !Self.idsAscendInCreationOrder(fresh) {
            // One put per id: the last one in the batch wins.
            var seen = Set<RecordID>()
            fresh = fresh.reversed().filter { seen.insert($0.id).inserted }
            fresh.sort { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        }
        let first = fresh[0]
        let inOrder = store.lastKey.map { ($0.createdAt, $0.id) < (first.createdAt.milliseconds, first.id) } ?? true
        store.records.reserve(forAppending: fresh.count)
        undo.steps.reserveCapacity(undo.steps.count + fresh.count)
        for record in fresh {
            undo.steps.append(.remove(record.id))
            store.append(record)
            adjustCounts(store[UInt32(store.records.count - 1)], by: 1)
            if inOrder { indexes.add(UInt32(store.records.count - 1), store) }
        }
        return !inOrder
    }

    /// Whether the ids strictly ascend and created_at never descends: then the ids are distinct and
    /// already in slot order, as in every batch of new records the tenant stamps itself, and the
    /// de-duplication and sort (a hash set and two copies per record) can be skipped.
    static func idsAscendInCreationOrder(_ records: [LearningRecord]) -> Bool {
        for index in records.indices.dropFirst() {
            if !(records[index - 1].id < records[index].id) || records[index].createdAt < records[index - 1].createdAt { return false }
        }
        return true
    }

    /// Replaces a record whose id is already stored (or revives its purged slot). False if it is new.
    mutating func replaceExisting(_ record: LearningRecord, undo: inout TenantUndo) -> Bool {
        if let slot = indexes.slot(of: record.id, in: store) {
            storeChanged()
            undo.steps.append(.put(store.record(at: slot)))
            guard store[slot].createdAt == record.createdAt.milliseconds else {
                purge(slot)  // created_at changed (import): it is re-inserted at its new position
                return false
            }
            indexes.remove(slot, store)
            adjustCounts(store[slot], by: -1)
            store.put(record, at: slot)
            adjustCounts(store[slot], by: 1)
            indexes.add(slot, store)
            return true
        }
        if let slot = store.slotByOrder(of: record.id, createdAt: record.createdAt.milliseconds), store[slot].isPurged {
            // Revive a purged slot in place (undo of a purge, or a re-import).
            storeChanged()
            undo.steps.append(.remove(record.id))
            store.put(record, at: slot)
            adjustCounts(store[slot], by: 1)
            indexes.add(slot, store)
            return true
        }
        return false
    }

    mutating func purge(_ slot: UInt32) {
        storeChanged()
        indexes.remove(slot, store)
        let old = store[slot]
        adjustCounts(old, by: -1)
        var tombstone = StoredRecord(id: old.id, createdAt: old.createdAt, updatedAt: old.createdAt)
        tombstone.flags = .purged
        store.set(tombstone, sparse: .defaults, at: slot)
    }

    mutating func adjustCounts(_ record: StoredRecord, by delta: Int) {
        if record.isPurged { return }
        if record.isDeleted { store.deletedCount += delta } else { store.liveCount += delta }
    }

    /// Re-sorts every record into (created_at, id) order and rebuilds tables and indexes. Only an
    /// import of records older than the newest existing one needs this.
    mutating func rebuild() {
        var live: [LearningRecord] = []
        live.reserveCapacity(store.liveCount + store.deletedCount)
        for slot in 0..<UInt32(store.slotCount) where !store[slot].isPurged {
            live.append(store.record(at: slot))
        }
        live.sort { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        load(records: live)
    }

    /// No record (deleted ones included; a purged slot is no record), idempotency key or outcome row.
    public var isEmpty: Bool { store.liveCount == 0 && store.deletedCount == 0 && idempotency.count == 0 && outcomes.tables.recordCount == 0 }

    /// Drops every record, idempotency key and outcome row; the sequence stays (a reset write sets it).
    mutating func empty() {
        load(records: [])
        outcomes = OutcomeStore()
        idempotency = IdempotencyTable(capacity: limits.idempotencyKeys)
    }

    /// Replaces all records (snapshot load, rebuild). `records` must be in (created_at, id) order.
    public mutating func load(records: [LearningRecord]) {
        stateChanged()
        let deferred = indexes.secondaryDeferred
        storeChanged()
        layoutRevision = storeRevision
        store = RecordStore(tenantID: store.tenantID)
        indexes = RecordIndexes()
        for record in records {
            store.append(record)
            adjustCounts(store.records[store.records.count - 1], by: 1)
            idGenerator.observe(record.id)
        }
        indexes = RecordIndexes.build(store, secondary: !deferred)
    }

    /// Replaces the captured parts wholesale (snapshot load) and rebuilds the indexes.
    public mutating func load(store newStore: RecordStore, idempotency entries: [IdempotencyEntry], outcomes tables: OutcomeTables = OutcomeTables(),
                              sequence newSequence: UInt64) {
        stateChanged()
        storeChanged()
        layoutRevision = storeRevision
        store = newStore
        outcomes = OutcomeStore(tables: tables)
        idempotency = IdempotencyTable(capacity: limits.idempotencyKeys)
        for entry in entries { idempotency.remember(entry) }
        sequence = newSequence
        if let last = store.lastKey { idGenerator.observe(last.id) }
        rebuildIndexes()
    }

    public mutating func rebuildIndexes() {
        indexes = RecordIndexes.build(store)
    }

    /// Recovery: from here until ``endBulkLoad()``, only the id index is maintained (WAL replay needs
    /// nothing else), and the rest is built once at the end.
    public mutating func beginBulkLoad() {
        indexes = RecordIndexes.build(store, secondary: false)
    }

    public mutating func endBulkLoad() {
        indexes.catchUp(store)
    }

    // MARK: reads

    /// The slot of a record the caller may see (app scoping), or NOT_FOUND.
    public func visibleSlot(_ id: RecordID, caller: CallerIdentity) throws(LearnStoreError) -> UInt32 {
        guard let slot = indexes.slot(of: id, in: store), isVisible(store[slot], to: caller) else {
            throw .notFound("no learning record \(id)")
        }
        return slot
    }

    @inline(__always)
    func isVisible(_ record: StoredRecord, to caller: CallerIdentity) -> Bool {
        guard let app = caller.appID else { return true }
        return record.app != 0 && store.strings.string(record.app) == app
    }

    public func get(_ id: RecordID, caller: CallerIdentity) throws(LearnStoreError) -> LearningRecord {
        try caller.require(.recordsRead)
        return store.record(at: try visibleSlot(id, caller: caller))
    }
}
