import LearnStoreModel

extension RecordStore {
    /// Writes the record in `slot` in the binary record encoding, straight from stored form (no
    /// intermediate LearningRecord). Produces exactly the bytes of `RecordCodec.encode(record(at:))`.
    public func encode(slot: UInt32, into writer: inout ByteWriter) {
        let r = self[slot]
        var bits: UInt32 = RecordField.id.bit | RecordField.tenantID.bit | RecordField.createdAt.bit
            | RecordField.updatedAt.bit | RecordField.source.bit | RecordField.sourceType.bit
            | RecordField.isDeleted.bit | RecordField.schemaVersion.bit | RecordField.personID.bit
        if r.app != 0 { bits |= RecordField.appID.bit }
        if r.createdBy != 0 { bits |= RecordField.createdBy.bit }
        if r.updatedBy != 0 { bits |= RecordField.updatedBy.bit }
        if r.deletedAt != StoredRecord.nullTime { bits |= RecordField.deletedAt.bit }
        if r.deletedBy != 0 { bits |= RecordField.deletedBy.bit }
        if r.title != 0 { bits |= RecordField.title.bit }
        if r.provider != 0 { bits |= RecordField.provider.bit }
        if r.completedAt != StoredRecord.nullTime { bits |= RecordField.completedAt.bit }
        if r.expiresAt != StoredRecord.nullTime { bits |= RecordField.expiresAt.bit }
        if !r.score.isNaN { bits |= RecordField.score.bit }
        if r.flags.contains(.passedKnown) { bits |= RecordField.passed.bit }
        if r.flags.contains(.hasCertificationRef) { bits |= RecordField.certificationRef.bit }
        if r.cohort != 0 { bits |= RecordField.linkedCohortID.bit }
        if r.flags.contains(.hasAssessment) { bits |= RecordField.linkedAssessmentID.bit }
        writer.writeU32(bits)
        writer.writeRecordID(r.id)
        writer.writeString(tenantID)
        if r.app != 0 { writer.writeString(strings.values[Int(r.app) - 1]) }
        writer.writeI64(r.createdAt)
        writer.writeI64(r.updatedAt)
        if r.createdBy != 0 { writer.writeUUID(uuids.values[Int(r.createdBy) - 1]) }
        if r.updatedBy != 0 { writer.writeUUID(uuids.values[Int(r.updatedBy) - 1]) }
        writer.writeString(r.source == 0 ? LearningRecord.defaultSource : strings.values[Int(r.source) - 1])
        writer.writeU8(r.sourceType.rawValue)
        writer.writeU8(r.isDeleted ? 1 : 0)
        if r.deletedAt != StoredRecord.nullTime { writer.writeI64(r.deletedAt) }
        if r.deletedBy != 0 { writer.writeUUID(uuids.values[Int(r.deletedBy) - 1]) }
        writer.writeVarint(UInt64(r.schemaVersion))
        writer.writeUUID(persons.values[Int(r.person) - 1])
        if r.title != 0 { writer.writeString(strings.values[Int(r.title) - 1]) }
        if r.provider != 0 { writer.writeString(strings.values[Int(r.provider) - 1]) }
        if r.completedAt != StoredRecord.nullTime { writer.writeI64(r.completedAt) }
        if r.expiresAt != StoredRecord.nullTime { writer.writeI64(r.expiresAt) }
        if !r.score.isNaN { writer.writeDouble(r.score) }
        if r.flags.contains(.passedKnown) { writer.writeU8(r.flags.contains(.passed) ? 1 : 0) }
        if r.flags.contains(.hasCertificationRef) {
            certificationRefs.withBytes(at: r.certLocation, length: Int(r.certLength)) { bytes in
                writer.writeVarint(UInt64(bytes.count))
                writer.writeBytes(bytes)
            }
        }
        if r.cohort != 0 { writer.writeUUID(uuids.values[Int(r.cohort) - 1]) }
        if r.flags.contains(.hasAssessment) { writer.writeUUID(UUID16(high: r.assessmentHigh, low: r.assessmentLow)) }
    }
}
