import LearnStoreModel

/// A tenant's records and the tables they reference: everything a snapshot captures of the
/// LearningRecords. Copying it is O(pages); writes after a copy duplicate only touched pages.
///
/// Slots are assigned in (created_at, id) order (new records always sort last because the tenant's
/// clock and id generator are monotonic), so slot order is list order. A purged slot keeps only its
/// id and created_at, so binary search over slots still works; purged slots vanish at the next load.
public struct RecordStore: Sendable {
    public let tenantID: String
    public internal(set) var records = PagedArray<StoredRecord>()
    /// Titles, providers, sources and app ids.
    public internal(set) var strings = StringTable()
    /// Authors (created_by/updated_by/deleted_by) and cohorts.
    public internal(set) var uuids = UUIDTable()
    public internal(set) var persons = UUIDTable()
    public internal(set) var certificationRefs = ByteArena()
    /// The ``SparseFields`` of the slots whose record has `hasSparseFields`, and of no other.
    public internal(set) var sparseFields = SparseFieldTable()
    public internal(set) var liveCount = 0
    public internal(set) var deletedCount = 0

    public init(tenantID: String) { self.tenantID = tenantID }

    public var slotCount: Int { records.count }

    @inline(__always) public subscript(slot: UInt32) -> StoredRecord {
        get { records[Int(slot)] }
        _modify { yield &records[Int(slot)] }
    }

    /// The fields of `slot` that most records leave at their default.
    @inline(__always) public func sparse(_ slot: UInt32) -> SparseFields {
        self[slot].flags.contains(.hasSparseFields) ? sparseFields[slot] ?? .defaults : .defaults
    }

    /// Stores `record` in `slot`, replacing what was there.
    mutating func put(_ record: LearningRecord, at slot: UInt32) {
        let (stored, sparse) = makeStored(record)
        set(stored, sparse: sparse, at: slot)
    }

    /// Stores `record` in a new slot after the last.
    mutating func append(_ record: LearningRecord) {
        let (stored, sparse) = makeStored(record)
        append(stored, sparse: sparse)
    }

    /// Stores `stored` (whose `hasSparseFields` flag is ignored) and its sparse fields in `slot`.
    mutating func set(_ stored: StoredRecord, sparse: SparseFields, at slot: UInt32) {
        var stored = stored
        if sparse != .defaults {
            stored.flags.insert(.hasSparseFields)
            sparseFields[slot] = sparse
        } else {
            stored.flags.remove(.hasSparseFields)
            if self[slot].flags.contains(.hasSparseFields) { sparseFields[slot] = nil }
        }
        self[slot] = stored
    }

    /// Appends `stored` (whose `hasSparseFields` flag is ignored) and its sparse fields.
    mutating func append(_ stored: StoredRecord, sparse: SparseFields) {
        var stored = stored
        if sparse != .defaults {
            stored.flags.insert(.hasSparseFields)
            sparseFields[UInt32(records.count)] = sparse
        } else {
            stored.flags.remove(.hasSparseFields)
        }
        records.append(stored)
    }

    /// Converts a caller-visible record into stored form, interning its strings and UUIDs.
    mutating func makeStored(_ record: LearningRecord) -> (StoredRecord, SparseFields) {
        var stored = StoredRecord(id: record.id, createdAt: record.createdAt.milliseconds, updatedAt: record.updatedAt.milliseconds)
        stored.app = strings.intern(record.appID)
        stored.createdBy = uuids.intern(record.createdBy)
        stored.updatedBy = uuids.intern(record.updatedBy)
        stored.source = strings.intern(record.source)
        stored.sourceType = record.sourceType
        if record.isDeleted { stored.flags.insert(.deleted) }
        let sparse = SparseFields(
            deletedAt: record.deletedAt?.milliseconds ?? StoredRecord.nullTime, deletedBy: uuids.intern(record.deletedBy),
            schemaVersion: UInt16(clamping: record.schemaVersion))
        stored.person = persons.intern(record.personID)
        stored.title = strings.intern(record.title)
        stored.provider = strings.intern(record.provider)
        stored.completedAt = record.completedAt?.milliseconds ?? StoredRecord.nullTime
        stored.expiresAt = record.expiresAt?.milliseconds ?? StoredRecord.nullTime
        stored.score = record.score ?? .nan
        stored.passed = record.passed
        if let cert = record.certificationRef {
            stored.certLocation = certificationRefs.append(cert)
            stored.certLength = UInt16(cert.utf8.count)
            stored.flags.insert(.hasCertificationRef)
        }
        stored.cohort = uuids.intern(record.linkedCohortID)
        stored.assessment = record.linkedAssessmentID
        return (stored, sparse)
    }

    /// The caller-visible record in `slot`.
    public func record(at slot: UInt32) -> LearningRecord {
        let stored = self[slot]
        var record = LearningRecord(
            id: stored.id, tenantID: tenantID, createdAt: Timestamp(milliseconds: stored.createdAt),
            updatedAt: Timestamp(milliseconds: stored.updatedAt), personID: persons.uuid(stored.person) ?? .zero)
        record.appID = strings.string(stored.app)
        record.createdBy = uuids.uuid(stored.createdBy)
        record.updatedBy = uuids.uuid(stored.updatedBy)
        record.source = strings.string(stored.source) ?? LearningRecord.defaultSource
        record.sourceType = stored.sourceType
        record.isDeleted = stored.isDeleted
        let sparse = sparse(slot)
        record.deletedAt = StoredRecord.time(sparse.deletedAt)
        record.deletedBy = uuids.uuid(sparse.deletedBy)
        record.schemaVersion = Int(sparse.schemaVersion)
        record.title = strings.string(stored.title)
        record.provider = strings.string(stored.provider)
        record.completedAt = StoredRecord.time(stored.completedAt)
        record.expiresAt = StoredRecord.time(stored.expiresAt)
        record.score = stored.score.isNaN ? nil : stored.score
        record.passed = stored.passed
        record.certificationRef = certificationRef(of: stored)
        record.linkedCohortID = uuids.uuid(stored.cohort)
        record.linkedAssessmentID = stored.assessment
        return record
    }

    public func certificationRef(of stored: StoredRecord) -> String? {
        guard stored.flags.contains(.hasCertificationRef) else { return nil }
        return certificationRefs.string(at: stored.certLocation, length: Int(stored.certLength))
    }

    /// The first slot whose (created_at, id) sorts after the given key (binary search; purged slots
    /// keep their key, so the search stays valid).
    public func firstSlot(after createdAt: Int64, _ idHigh: UInt64, _ idLow: UInt64) -> UInt32 {
        var low = 0
        var high = records.count
        while low < high {
            let mid = (low + high) >> 1
            let r = records[mid]
            if (r.createdAt, r.idHigh, r.idLow) <= (createdAt, idHigh, idLow) { low = mid + 1 } else { high = mid }
        }
        return UInt32(low)
    }

    /// The slot holding exactly this id, found by key order (also finds purged slots).
    func slotByOrder(of id: RecordID, createdAt: Int64) -> UInt32? {
        // A new record sorts after every slot: skip the search (a create's common case).
        if let last = lastKey, (last.createdAt, last.id) < (createdAt, id) { return nil }
        let after = firstSlot(after: createdAt, id.high, id.low)
        guard after > 0 else { return nil }
        let candidate = after - 1
        return self[candidate].id == id ? candidate : nil
    }

    /// The key of the newest slot, which every new record must sort after.
    public var lastKey: (createdAt: Int64, id: RecordID)? {
        guard let last = records.last else { return nil }
        return (last.createdAt, last.id)
    }
}
