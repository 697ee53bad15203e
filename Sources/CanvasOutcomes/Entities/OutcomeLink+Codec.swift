import LearnStoreModel

extension OutcomeLink {
    public func encode(into writer: inout ByteWriter) {
        writer.writeU8(OutcomeCodec.formatVersion)
        encodeContent(into: &writer)
    }

    func encodeContent(into writer: inout ByteWriter) {
        writer.writeString(id)
        writer.writeFields { fields in
            fields.string(learningOutcomeID)
            fields.string(learningOutcomeGroupID)
            fields.string(learningOutcomeContextUUID)
            fields.string(learningOutcomeGroupContextUUID)
            fields.string(contextType)
            fields.string(contextID)
            fields.string(contextUUID)
            fields.string(workflowState)
            fields.timestamp(createdAt)
            fields.timestamp(updatedAt)
            metadata.encode(into: &fields)
        }
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> OutcomeLink {
        try OutcomeCodec.readVersion(&reader, of: "outcome link")
        let id = try reader.readKey()
        var fields = try FieldReader(&reader, fieldCount: 10 + EventMetadata.fieldCount)
        return OutcomeLink(
            id: id,
            learningOutcomeID: try fields.string(&reader),
            learningOutcomeGroupID: try fields.string(&reader),
            learningOutcomeContextUUID: try fields.string(&reader),
            learningOutcomeGroupContextUUID: try fields.string(&reader),
            contextType: try fields.string(&reader),
            contextID: try fields.string(&reader),
            contextUUID: try fields.string(&reader),
            workflowState: try fields.string(&reader),
            createdAt: try fields.timestamp(&reader),
            updatedAt: try fields.timestamp(&reader),
            metadata: try EventMetadata.decode(&fields, &reader))
    }
}
