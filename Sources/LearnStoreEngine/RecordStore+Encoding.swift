import LearnStoreModel

extension RecordStore {
    /// Starts the loads of encoding the records whose id hashes are `hashes` (their buckets in `index`
    /// should be on their way): first the records, then, as the first of them arrive, what they
    /// point to that is cold for a random record (the person's UUID, the certification reference
    /// bytes). A method on the store so that it is borrowed, not copied (a copy retains every table).
    func prefetch(hashes: [Int], candidatesIn index: SlotHashIndex) {
        var slots: [UInt32] = []
        slots.reserveCapacity(hashes.count)
        for hash in hashes {
            guard let slot = index.firstCandidate(hash: hash) else { continue }
            records.prefetch(Int(slot))
            slots.append(slot)
        }
        prefetchReferences(of: slots)
    }

    /// Starts loading what encoding the records in `slots` reads besides the records themselves.
    func prefetchReferences(of slots: [UInt32]) {
        for slot in slots { prefetchReferences(of: self[slot]) }
    }

    /// Starts loading what encoding `r` reads besides the record: its interned UUIDs (the person, the
    /// cohort, the authors) and its certification reference bytes, each elsewhere in memory and, for a
    /// random record, cold. Without it the cohort's UUID alone was four fifths of the encoder's time
    /// in a profile of unpipelined lists.
    @inline(__always)
    func prefetchReferences(of r: StoredRecord) {
        if r.person != 0 { persons.values.prefetch(Int(r.person) - 1) }
        if r.cohort != 0 { uuids.values.prefetch(Int(r.cohort) - 1) }
        if r.createdBy != 0 { uuids.values.prefetch(Int(r.createdBy) - 1) }
        if r.updatedBy != 0 && r.updatedBy != r.createdBy { uuids.values.prefetch(Int(r.updatedBy) - 1) }
        if r.flags.contains(.hasCertificationRef) { certificationRefs.prefetch(at: r.certLocation, length: Int(r.certLength)) }
    }

    /// Writes the record in `slot` in the binary record encoding, straight from stored form (no
    /// intermediate LearningRecord). Produces exactly the bytes of `RecordCodec.encode(record(at:))`.
    public func encode(slot: UInt32, into writer: inout ByteWriter) {
        let r = self[slot]
        // The loads of the record's UUIDs overlap each other (and the string lookups below) instead
        // of following each other; for a list page they were started already and this is a no-op.
        prefetchReferences(of: r)
        let sparse = sparse(slot)
        var bits: UInt32 = RecordField.id.bit | RecordField.tenantID.bit | RecordField.createdAt.bit
            | RecordField.updatedAt.bit | RecordField.source.bit | RecordField.sourceType.bit
            | RecordField.isDeleted.bit | RecordField.schemaVersion.bit | RecordField.personID.bit
        if r.app != 0 { bits |= RecordField.appID.bit }
        if r.createdBy != 0 { bits |= RecordField.createdBy.bit }
        if r.updatedBy != 0 { bits |= RecordField.updatedBy.bit }
        if sparse.deletedAt != StoredRecord.nullTime { bits |= RecordField.deletedAt.bit }
        if sparse.deletedBy != 0 { bits |= RecordField.deletedBy.bit }
        if r.title != 0 { bits |= RecordField.title.bit }
        if r.provider != 0 { bits |= RecordField.provider.bit }
        if r.completedAt != StoredRecord.nullTime { bits |= RecordField.completedAt.bit }
        if r.expiresAt != StoredRecord.nullTime { bits |= RecordField.expiresAt.bit }
        if !r.score.isNaN { bits |= RecordField.score.bit }
        if r.flags.contains(.passedKnown) { bits |= RecordField.passed.bit }
        if r.flags.contains(.hasCertificationRef) { bits |= RecordField.certificationRef.bit }
        if r.cohort != 0 { bits |= RecordField.linkedCohortID.bit }
        if r.flags.contains(.hasAssessment) { bits |= RecordField.linkedAssessmentID.bit }
        let none = StringTable.Spelling(span: 0, string: "")
        let app = r.app != 0 ? strings.spelling(r.app) : none
        let source = r.source == 0 ? StringTable.Spelling(span: 0, string: LearningRecord.defaultSource) : strings.spelling(r.source)
        let title = r.title != 0 ? strings.spelling(r.title) : none
        let provider = r.provider != 0 ? strings.spelling(r.provider) : none
        let certLength = r.flags.contains(.hasCertificationRef) ? RawByteCursor.lengthPrefixedSize(Int(r.certLength)) : 0
        let maximum = RawByteCursor.recordFixedFieldsMaximum + certLength + RawByteCursor.maximumSize(of: tenantID) + Self.maximumSize(of: app)
            + Self.maximumSize(of: source) + Self.maximumSize(of: title) + Self.maximumSize(of: provider)
        writer.withReservedSpace(maximum: maximum) { out in
            out.writeU32(bits)
            out.writeRecordID(r.id)
            out.writeString(tenantID)
            if r.app != 0 { write(app, into: &out) }
            out.writeI64(r.createdAt)
            out.writeI64(r.updatedAt)
            if r.createdBy != 0 { out.writeUUID(uuids.values[Int(r.createdBy) - 1]) }
            if r.updatedBy != 0 { out.writeUUID(uuids.values[Int(r.updatedBy) - 1]) }
            write(source, into: &out)
            out.writeU8(r.sourceType.rawValue)
            out.writeU8(r.isDeleted ? 1 : 0)
            if sparse.deletedAt != StoredRecord.nullTime { out.writeI64(sparse.deletedAt) }
            if sparse.deletedBy != 0 { out.writeUUID(uuids.values[Int(sparse.deletedBy) - 1]) }
            out.writeVarint(UInt64(sparse.schemaVersion))
            out.writeUUID(persons.values[Int(r.person) - 1])
            if r.title != 0 { write(title, into: &out) }
            if r.provider != 0 { write(provider, into: &out) }
            if r.completedAt != StoredRecord.nullTime { out.writeI64(r.completedAt) }
            if r.expiresAt != StoredRecord.nullTime { out.writeI64(r.expiresAt) }
            if !r.score.isNaN { out.writeDouble(r.score) }
            if r.flags.contains(.passedKnown) { out.writeU8(r.flags.contains(.passed) ? 1 : 0) }
            if r.flags.contains(.hasCertificationRef) {
                certificationRefs.withBytes(at: r.certLocation, length: Int(r.certLength)) { bytes in
                    out.writeVarint(UInt64(bytes.count))
                    out.writeBytes(bytes)
                }
            }
            if r.cohort != 0 { out.writeUUID(uuids.values[Int(r.cohort) - 1]) }
            if r.flags.contains(.hasAssessment) { out.writeBigEndianPair(r.assessmentHigh, r.assessmentLow) }
        }
    }

    /// Writes an interned string as the encoding does (varint length, UTF-8), from the table's
    /// arena when it is spelled there.
    @inline(__always)
    func write(_ spelling: StringTable.Spelling, into out: inout RawByteCursor) {
        guard spelling.span != 0 else { return out.writeString(spelling.string) }
        strings.withSpelledUTF8(spelling.span) { utf8 in
            out.writeVarint(UInt64(utf8.count))
            out.writeBytes(utf8)
        }
    }

    @inline(__always)
    static func maximumSize(of spelling: StringTable.Spelling) -> Int {
        spelling.span != 0 ? RawByteCursor.lengthPrefixedSize(Int(spelling.span & 0xFFFF_FFFF)) : RawByteCursor.maximumSize(of: spelling.string)
    }
}
