import LearnStoreModel

/// Every secondary structure over a tenant's records. None of it is captured by snapshots: it is
/// rebuilt from the records on load, so it can use plain, fast, non-persistent containers.
///
/// All non-purged records are indexed, soft-deleted ones included (lists filter them at read time).
///
/// The id index always covers every record. The other indexes cover the slots below
/// `secondaryThrough`; newer slots (the backlog, always a suffix: new records are appended) are
/// added by ``catchUp(_:)``, which builds them all at once when the backlog is a large share of the
/// tenant (a bulk load: sorting once is several times cheaper than inserting record by record),
/// merges a backlog of some size into the range indexes, and adds a small one slot by slot. Readers
/// of secondary indexes catch up first (`TenantState` does that).
public struct RecordIndexes: Sendable {
    public internal(set) var byID = SlotHashIndex()
    var byPerson = PostingTable()
    var byCertificationRef = SlotHashIndex()
    var byAssessment = SlotHashIndex()
    var byCohort = PostingTable()
    var byProvider = PostingTable()
    var byApp = PostingTable()
    var passedTrue = PostingList()
    var passedFalse = PostingList()
    var byCompletedAt = OrderedSlotIndex()
    var byExpiresAt = OrderedSlotIndex()
    var byUpdatedAt = OrderedSlotIndex()
    /// Slots below this are in every index; slots from here on only in the id index.
    private(set) var secondaryThrough = 0
    /// While true (recovery replaying the WAL), nothing catches up until the end of recovery, which
    /// builds the secondary indexes once.
    var secondaryDeferred = false

    public init() {}

    /// Every index of `store`, built in bulk: tables presized, posting lists appended in slot order,
    /// range indexes sorted once.
    static func build(_ store: RecordStore, secondary: Bool = true) -> RecordIndexes {
        var indexes = RecordIndexes()
        let records = store.records
        let counts = EntryCounts(records)
        indexes.byID = SlotHashIndex(capacity: counts.live + counts.live / 4)
        for slot in 0..<records.count where !records[slot].isPurged {
            indexes.byID.insert(UInt32(slot), hash: hash(records[slot].id)) { hash(records[Int($0)].id) }
        }
        if secondary { indexes.buildSecondary(store, counts) } else { indexes.secondaryDeferred = true }
        return indexes
    }

    /// Takes every secondary index from `built`, which covers the first `slots` slots of this
    /// tenant's records as they are now; the id index stays this one's. The slots after them stay in
    /// the backlog.
    mutating func adoptSecondary(_ built: RecordIndexes, through slots: Int) {
        precondition(built.secondaryThrough == slots && !built.secondaryDeferred, "indexes adopted from an incomplete build")
        let ids = byID
        self = built
        byID = ids
    }

    /// How many entries the presized tables will hold.
    private struct EntryCounts {
        var live = 0
        var certs = 0
        var assessments = 0

        init(_ records: PagedArray<StoredRecord>) {
            for r in records where !r.isPurged {
                live += 1
                if r.flags.contains(.hasCertificationRef) { certs += 1 }
                if r.flags.contains(.hasAssessment) { assessments += 1 }
            }
        }
    }

    /// Every index but the id index, built from scratch over all slots.
    private mutating func buildSecondary(_ store: RecordStore, _ counts: EntryCounts) {
        let records = store.records
        let arena = store.certificationRefs
        let slots = records.count
        // Not presized: their tables intern other kinds too (authors, titles), whose references
        // these indexes never use.
        byCohort = PostingTable()
        byProvider = PostingTable()
        byApp = PostingTable()
        passedTrue = PostingList()
        passedFalse = PostingList()
        byCertificationRef = SlotHashIndex(capacity: counts.certs + counts.certs / 4)
        byAssessment = SlotHashIndex(capacity: counts.assessments + counts.assessments / 4)
        byPerson = PostingTable(references: store.persons.count)
        var completed: [(Int64, UInt32)] = []
        var expires: [(Int64, UInt32)] = []
        var updated: [(Int64, UInt32)] = []
        completed.reserveCapacity(counts.live)
        expires.reserveCapacity(counts.live)
        updated.reserveCapacity(counts.live)
        for index in 0..<slots {
            let r = records[index]
            if r.isPurged { continue }
            let slot = UInt32(index)
            byPerson.insert(slot, reference: r.person)
            if r.flags.contains(.hasCertificationRef) {
                byCertificationRef.insert(slot, hash: Self.certHash(r, arena)) { Self.certHash(records[Int($0)], arena) }
            }
            if let assessment = r.assessment {
                byAssessment.insert(slot, hash: Self.hash(assessment)) { Self.hash(records[Int($0)].assessment ?? .zero) }
            }
            if r.cohort != 0 { byCohort.insert(slot, reference: r.cohort) }
            if r.provider != 0 { byProvider.insert(slot, reference: r.provider) }
            if r.app != 0 { byApp.insert(slot, reference: r.app) }
            switch r.passed {
            case true?: passedTrue.insert(slot)
            case false?: passedFalse.insert(slot)
            case nil: break
            }
            if r.completedAt != StoredRecord.nullTime { completed.append((r.completedAt, slot)) }
            if r.expiresAt != StoredRecord.nullTime { expires.append((r.expiresAt, slot)) }
            updated.append((r.updatedAt, slot))
        }
        byCompletedAt = OrderedSlotIndex(sorting: &completed)
        byExpiresAt = OrderedSlotIndex(sorting: &expires)
        byUpdatedAt = OrderedSlotIndex(sorting: &updated)
        secondaryThrough = slots
    }

    // MARK: hashing

    @inline(__always) static func hash(_ id: RecordID) -> Int { KeyMixer.mix(id.high, id.low) }
    @inline(__always) static func hash(_ uuid: UUID16) -> Int { KeyMixer.mix(uuid.high, uuid.low) }

    static func hash(certificationRef bytes: UnsafeRawBufferPointer) -> Int {
        var hasher = Hasher()
        hasher.combine(bytes: bytes)
        return hasher.finalize()
    }

    static func certHash(_ stored: StoredRecord, _ arena: ByteArena) -> Int {
        arena.withBytes(at: stored.certLocation, length: Int(stored.certLength)) { hash(certificationRef: $0) }
    }

    // MARK: maintenance

    /// Slots moved to a growing hash table per created record: small enough that no request waits for
    /// a whole table, large enough that a growth finishes long before the next one is due.
    static let migrationSteps = 64

    /// Slots not yet in the secondary indexes.
    func backlog(in store: RecordStore) -> Int { store.records.count - secondaryThrough }

    /// About how long ``catchUp(_:limit:)`` (no limit) takes, from the costs measured on a bulk load:
    /// a bulk build 0.38 µs a slot of the tenant, a stepwise one 1.45 µs a slot of the backlog.
    static func catchUpMicroseconds(backlog: Int, slots: Int) -> Double {
        guard backlog > 0 else { return 0 }
        return backlog * 4 >= slots ? 0.38 * Double(slots) : 1.45 * Double(backlog)
    }

    /// Brings the secondary indexes up to every slot of `store`: one bulk build of the whole tenant
    /// when the backlog is at least a quarter of it, else the backlog alone. Measured on a bulk load, a
    /// build costs about a quarter of inserting per record (0.38 µs against 1.45 µs), so this picks
    /// the cheaper of the two. A backlog of `mergeMinimumBacklog` slots or more is merged into the range
    /// indexes in one pass instead of a search per slot (a 5M-record load in 10 tenants, whose
    /// tenants catch up while it goes on, ran about 8 % faster than with one by one).
    ///
    /// With `limit`, adds at most that many slots, one by one (a write's share of a large backlog).
    mutating func catchUp(_ store: RecordStore, limit: Int? = nil) {
        secondaryDeferred = false
        let end = store.records.count
        guard secondaryThrough < end else { return }
        if limit == nil && (end - secondaryThrough) * 4 >= end {
            buildSecondary(store, EntryCounts(store.records))
            return
        }
        if limit == nil && end - secondaryThrough >= Self.mergeMinimumBacklog {
            mergeBacklog(store)
            return
        }
        let records = store.records
        let arena = store.certificationRefs
        let stop = min(end, secondaryThrough + (limit ?? end))
        while secondaryThrough < stop {
            let slot = UInt32(secondaryThrough)
            secondaryThrough += 1
            guard !records[Int(slot)].isPurged else { continue }
            advanceSecondaryGrowth(newest: slot, records, arena)
            addSecondary(slot, records, arena)
        }
    }

    /// Backlogs from this size are merged into the range indexes (``OrderedSlotIndex/merge(sorting:keys:)``)
    /// rather than inserted one by one.
    static let mergeMinimumBacklog = 256

    /// Adds the backlog: slot by slot to the hash indexes and posting lists (appends, in slot
    /// order), in one merge pass to each range index.
    private mutating func mergeBacklog(_ store: RecordStore) {
        let records = store.records
        let arena = store.certificationRefs
        let end = records.count
        var completed: [(Int64, UInt32)] = []
        var expires: [(Int64, UInt32)] = []
        var updated: [(Int64, UInt32)] = []
        completed.reserveCapacity(end - secondaryThrough)
        expires.reserveCapacity(end - secondaryThrough)
        updated.reserveCapacity(end - secondaryThrough)
        while secondaryThrough < end {
            let slot = UInt32(secondaryThrough)
            secondaryThrough += 1
            let r = records[Int(slot)]
            guard !r.isPurged else { continue }
            advanceSecondaryGrowth(newest: slot, records, arena)
            addUnordered(slot, r, records, arena)
            if r.completedAt != StoredRecord.nullTime { completed.append((r.completedAt, slot)) }
            if r.expiresAt != StoredRecord.nullTime { expires.append((r.expiresAt, slot)) }
            updated.append((r.updatedAt, slot))
        }
        byCompletedAt.merge(sorting: &completed, keys: RecordTimeKeys(records, .completedAt))
        byExpiresAt.merge(sorting: &expires, keys: RecordTimeKeys(records, .expiresAt))
        byUpdatedAt.merge(sorting: &updated, keys: RecordTimeKeys(records, .updatedAt))
    }

    /// The secondary hash indexes grow ahead of their newest slot, refilling from the slots below it.
    private mutating func advanceSecondaryGrowth(newest slot: UInt32, _ records: PagedArray<StoredRecord>, _ arena: ByteArena) {
        Self.advanceGrowth(of: &byCertificationRef, newest: slot) { slot in
            let r = records[Int(slot)]
            return !r.isPurged && r.flags.contains(.hasCertificationRef) ? Self.certHash(r, arena) : nil
        }
        Self.advanceGrowth(of: &byAssessment, newest: slot) { slot in
            let r = records[Int(slot)]
            guard !r.isPurged, let assessment = r.assessment else { return nil }
            return Self.hash(assessment)
        }
    }

    private static func advanceGrowth(of index: inout SlotHashIndex, newest: UInt32, indexedHash: (UInt32) -> Int?) {
        index.migrate(steps: migrationSteps, indexedHash: indexedHash)
        if index.needsGrowth { index.beginGrowth(end: newest, indexedHash: indexedHash) }
    }

    /// Indexes `slot`: always in the id index; in the others only if it is below the backlog (a
    /// record replaced or revived in place), since backlog slots are added by ``catchUp(_:)``.
    mutating func add(_ slot: UInt32, _ store: RecordStore) {
        let records = store.records
        let newest = UInt32(records.count - 1)
        let r = records[Int(slot)]
        // Growth refills from record order up to the newest slot, so only an appended slot
        // advances it, and that slot itself goes straight to the new table below.
        if slot == newest {
            Self.advanceGrowth(of: &byID, newest: newest) { slot in
                let r = records[Int(slot)]
                return r.isPurged ? nil : Self.hash(r.id)
            }
        }
        byID.insert(slot, hash: Self.hash(r.id)) { Self.hash(records[Int($0)].id) }
        if Int(slot) < secondaryThrough { addSecondary(slot, records, store.certificationRefs) }
    }

    private mutating func addSecondary(_ slot: UInt32, _ records: PagedArray<StoredRecord>, _ arena: ByteArena) {
        let r = records[Int(slot)]
        addUnordered(slot, r, records, arena)
        if r.completedAt != StoredRecord.nullTime { byCompletedAt.insert(slot, keys: RecordTimeKeys(records, .completedAt)) }
        if r.expiresAt != StoredRecord.nullTime { byExpiresAt.insert(slot, keys: RecordTimeKeys(records, .expiresAt)) }
        byUpdatedAt.insert(slot, keys: RecordTimeKeys(records, .updatedAt))
    }

    /// Every secondary index of `r` at `slot` but the range indexes.
    private mutating func addUnordered(_ slot: UInt32, _ r: StoredRecord, _ records: PagedArray<StoredRecord>, _ arena: ByteArena) {
        byPerson.insert(slot, reference: r.person)
        if r.flags.contains(.hasCertificationRef) {
            byCertificationRef.insert(slot, hash: Self.certHash(r, arena)) { Self.certHash(records[Int($0)], arena) }
        }
        if let assessment = r.assessment {
            byAssessment.insert(slot, hash: Self.hash(assessment)) { Self.hash(records[Int($0)].assessment ?? .zero) }
        }
        if r.cohort != 0 { byCohort.insert(slot, reference: r.cohort) }
        if r.provider != 0 { byProvider.insert(slot, reference: r.provider) }
        if r.app != 0 { byApp.insert(slot, reference: r.app) }
        switch r.passed {
        case true?: passedTrue.insert(slot)
        case false?: passedFalse.insert(slot)
        case nil: break
        }
    }

    /// Removes a slot from every index, using the record's current field values.
    mutating func remove(_ slot: UInt32, _ store: RecordStore) {
        let records = store.records
        let arena = store.certificationRefs
        let r = records[Int(slot)]
        byID.remove(slot, hash: Self.hash(r.id)) { Self.hash(records[Int($0)].id) }
        guard Int(slot) < secondaryThrough else { return }
        byPerson.remove(slot, reference: r.person)
        if r.flags.contains(.hasCertificationRef) {
            byCertificationRef.remove(slot, hash: Self.certHash(r, arena)) { Self.certHash(records[Int($0)], arena) }
        }
        if let assessment = r.assessment {
            byAssessment.remove(slot, hash: Self.hash(assessment)) { Self.hash(records[Int($0)].assessment ?? .zero) }
        }
        if r.cohort != 0 { byCohort.remove(slot, reference: r.cohort) }
        if r.provider != 0 { byProvider.remove(slot, reference: r.provider) }
        if r.app != 0 { byApp.remove(slot, reference: r.app) }
        switch r.passed {
        case true?: passedTrue.remove(slot)
        case false?: passedFalse.remove(slot)
        case nil: break
        }
        if r.completedAt != StoredRecord.nullTime { byCompletedAt.remove(slot, keys: RecordTimeKeys(records, .completedAt)) }
        if r.expiresAt != StoredRecord.nullTime { byExpiresAt.remove(slot, keys: RecordTimeKeys(records, .expiresAt)) }
        byUpdatedAt.remove(slot, keys: RecordTimeKeys(records, .updatedAt))
    }

    // MARK: lookups

    public func slot(of id: RecordID, in store: borrowing RecordStore) -> UInt32? {
        byID.first(hash: Self.hash(id)) { slot in
            let record = store.records[Int(slot)]
            return record.idHigh == id.high && record.idLow == id.low
        }
    }

    func personList(_ personRef: UInt32) -> PostingList { byPerson[personRef] }

    func slots(certificationRef: String, in store: RecordStore) -> [UInt32] {
        var value = certificationRef
        return value.withUTF8 { utf8 in
            let raw = UnsafeRawBufferPointer(utf8)
            var found: [UInt32] = []
            byCertificationRef.forEach(hash: Self.hash(certificationRef: raw)) { slot in
                let r = store[slot]
                return store.certificationRefs.equals(at: r.certLocation, length: Int(r.certLength), raw)
            } _: { found.append($0) }
            return found.sorted()
        }
    }

    func slots(assessment: UUID16, in store: RecordStore) -> [UInt32] {
        var found: [UInt32] = []
        byAssessment.forEach(hash: Self.hash(assessment)) { store[$0].assessment == assessment } _: { found.append($0) }
        return found.sorted()
    }

    // MARK: size

    public struct Sizes: Sendable, Hashable {
        public var entries: [String: Int]
        public var estimatedBytes: Int
    }

    public var sizes: Sizes {
        let person = byPerson.sizes
        let cohort = byCohort.sizes
        let provider = byProvider.sizes
        let app = byApp.sizes
        let entries: [String: Int] = [
            "id": byID.count, "person_id": person.0, "certification_ref": byCertificationRef.count,
            "linked_assessment_id": byAssessment.count, "linked_cohort_id": cohort.0, "provider": provider.0,
            "app_id": app.0, "passed": passedTrue.count + passedFalse.count, "completed_at": byCompletedAt.count,
            "expires_at": byExpiresAt.count, "updated_at": byUpdatedAt.count,
        ]
        let bytes = byID.estimatedBytes + person.1 + byCertificationRef.estimatedBytes + byAssessment.estimatedBytes
            + cohort.1 + provider.1 + app.1 + passedTrue.estimatedBytes + passedFalse.estimatedBytes
            + byCompletedAt.estimatedBytes + byExpiresAt.estimatedBytes + byUpdatedAt.estimatedBytes
        return Sizes(entries: entries, estimatedBytes: bytes)
    }
}

/// One timestamp field of the records, as the key of an ``OrderedSlotIndex``.
struct RecordTimeKeys: SlotKeys {
    enum Field { case completedAt, expiresAt, updatedAt }

    let records: PagedArray<StoredRecord>
    let field: Field

    init(_ records: PagedArray<StoredRecord>, _ field: Field) {
        self.records = records
        self.field = field
    }

    @inline(__always)
    func key(_ slot: UInt32) -> Int64 {
        let record = records[Int(slot)]
        switch field {
        case .completedAt: return record.completedAt
        case .expiresAt: return record.expiresAt
        case .updatedAt: return record.updatedAt
        }
    }
}
