import LearnStoreModel
import LearnStoreProtocol

/// Read paths that write the binary record encoding straight into the caller's buffer, without
/// building `LearningRecord` values: the server's hot path.
///
/// The state is passed `inout` (an exclusive access to the actor's stored property, so its address):
/// calling a method on the stored `state` directly, passing it `borrowing` or through a pointer made
/// Swift copy the whole struct (a retain and a release of every reference it holds), which measured
/// as a quarter of the server's CPU on GET.
extension TenantActor {
    /// GET: writes the record's encoding.
    public func encodeGet(_ id: RecordID, caller: CallerIdentity, into writer: inout ByteWriter) throws(LearnStoreError) {
        try checkReadable()
        try caller.require(.recordsRead)
        try Self.encodeGet(&state, id, caller: caller, into: &writer)
    }

    /// LIST: writes `varint count`, the records, then `bytes next_cursor`.
    public func encodeList(_ query: ListQuery, caller: CallerIdentity, into writer: inout ByteWriter) throws(LearnStoreError) {
        try checkReadable()
        try Self.encodeList(&state, query, caller: caller, into: &writer)
    }

    /// Point reads of a pipelined batch, before any is served: each lookup costs two or three
    /// dependent cache misses (index bucket, record, its strings), and starting the loads of the whole
    /// batch first lets those misses overlap instead of queueing one after another.
    public func prefetchForGets(_ ids: [RecordID]) {
        Self.prefetchForGets(&state, ids)
    }

    static func prefetchForGets(_ state: inout TenantState, _ ids: [RecordID]) {
        let byID = state.indexes.byID
        let hashes = ids.map(RecordIndexes.hash)
        for hash in hashes { byID.prefetchBucket(hash: hash) }
        state.store.prefetch(hashes: hashes, candidatesIn: byID)
    }

    static func encodeGet(_ state: inout TenantState, _ id: RecordID, caller: CallerIdentity, into writer: inout ByteWriter) throws(LearnStoreError) {
        let slot = try state.visibleSlot(id, caller: caller)
        state.store.encode(slot: slot, into: &writer)
    }

    static func encodeList(_ state: inout TenantState, _ query: ListQuery, caller: CallerIdentity, into writer: inout ByteWriter) throws(LearnStoreError) {
        let page = try state.list(query, caller: caller)
        // The page's records were just read (and are cached); what they point to was not.
        if page.slots.count > 1 { state.store.prefetchReferences(of: page.slots) }
        let response = ListResponseWriter(count: page.slots.count, into: &writer)
        for slot in page.slots { state.store.encode(slot: slot, into: &writer) }
        response.finish(nextCursor: page.nextCursor?.bytes, into: &writer)
    }
}
