import CanvasOutcomes
import LearnStoreModel

/// What a snapshot needs of a tenant, taken in O(pages): the record pages, the interning tables'
/// value pages, the idempotency keys and the sequence number. It shares storage with the live
/// tenant; the tenant's next writes copy only the pages they touch. Indexes and lookup
/// dictionaries are deliberately left out: they are rebuilt on load, and capturing them would make
/// the next write copy them whole.
public struct TenantCapture: Sendable {
    public let tenantID: String
    public let sequence: UInt64
    public let records: PagedArray<StoredRecord>
    public let strings: PagedArray<String>
    public let uuids: PagedArray<UUID16>
    public let persons: PagedArray<UUID16>
    let certificationRefs: ByteArena
    let sparseFields: SparseFieldTable
    public let idempotency: [IdempotencyEntry]
    /// The Canvas outcome data (persistent tables: the copy is O(1)).
    public let outcomes: OutcomeTables
    public let liveRecords: Int
    public let deletedRecords: Int

    /// The certification reference bytes of a stored record.
    public func withCertificationRef<R>(of record: StoredRecord, _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        guard record.flags.contains(.hasCertificationRef) else { return nil }
        return certificationRefs.withBytes(at: record.certLocation, length: Int(record.certLength), body)
    }

    /// The sparse fields of the record in `slot`.
    public func sparse(of record: StoredRecord, slot: Int) -> SparseFields {
        record.flags.contains(.hasSparseFields) ? sparseFields[UInt32(slot)] ?? .defaults : .defaults
    }
}

extension TenantState {
    /// An O(pages) capture for a snapshot (see ``TenantCapture``).
    public func capture() -> TenantCapture {
        TenantCapture(
            tenantID: tenantID, sequence: sequence, records: store.records, strings: store.strings.values,
            uuids: store.uuids.values, persons: store.persons.values, certificationRefs: store.certificationRefs, sparseFields: store.sparseFields,
            idempotency: idempotency.entriesInOrder, outcomes: outcomes.tables, liveRecords: store.liveCount,
            deletedRecords: store.deletedCount)
    }
}

/// Rebuilds a ``RecordStore`` from snapshot contents: tables first, then records in slot order.
public struct RecordStoreBuilder {
    private var store: RecordStore

    public init(tenantID: String, strings: [String], uuids: [UUID16], persons: [UUID16]) {
        store = RecordStore(tenantID: tenantID)
        store.strings = StringTable(values: strings)
        store.uuids = UUIDTable(values: uuids)
        store.persons = UUIDTable(values: persons)
    }

    public var tableCounts: (strings: Int, uuids: Int, persons: Int) {
        (store.strings.count, store.uuids.count, store.persons.count)
    }

    /// Appends a record with its sparse fields (its references must be valid for the tables given to
    /// `init`); the certification reference, if any, is copied into the new store's arena.
    public mutating func append(_ record: StoredRecord, sparse: SparseFields, certificationRef: UnsafeRawBufferPointer?) {
        var stored = record
        stored.flags.remove(.hasCertificationRef)
        if let certificationRef {
            stored.certLocation = store.certificationRefs.append(bytes: certificationRef)
            stored.certLength = UInt16(certificationRef.count)
            stored.flags.insert(.hasCertificationRef)
        }
        store.append(stored, sparse: sparse)
        if stored.isDeleted { store.deletedCount += 1 } else { store.liveCount += 1 }
    }

    public var lastKey: (createdAt: Int64, id: RecordID)? { store.lastKey }

    public func build() -> RecordStore { store }
}
