import LearnStoreModel

/// Read paths that write the binary record encoding straight into the caller's buffer, without
/// building `LearningRecord` values: the server's hot path.
extension TenantActor {
    /// GET: writes the record's encoding.
    public func encodeGet(_ id: RecordID, caller: CallerIdentity, into writer: inout ByteWriter) throws(LearnStoreError) {
        try checkReadable()
        try caller.require(.recordsRead)
        let slot = try state.visibleSlot(id, caller: caller)
        state.store.encode(slot: slot, into: &writer)
    }

    /// LIST: writes `varint count`, the records, then `bytes next_cursor`.
    public func encodeList(_ query: ListQuery, caller: CallerIdentity, into writer: inout ByteWriter) throws(LearnStoreError) {
        try checkReadable()
        let page = try state.list(query, caller: caller)
        writer.writeVarint(UInt64(page.slots.count))
        for slot in page.slots { state.store.encode(slot: slot, into: &writer) }
        if let next = page.nextCursor { writer.writeLengthPrefixed(next.bytes) } else { writer.writeVarint(0) }
    }
}
