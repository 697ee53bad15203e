import LearnStoreModel

extension OutcomeGroup {
    public func encode(into writer: inout ByteWriter) {
        writer.writeU8(OutcomeCodec.formatVersion)
        encodeContent(into: &writer)
    }

    func encodeContent(into writer: inout ByteWriter) {
        writer.writeString(id)
        writer.writeFields { fields in
            fields.string(contextType)
            fields.string(contextID)
            fields.string(contextUUID)
            fields.string(title)
            fields.string(description)
            fields.string(vendorGUID)
            fields.string(parentOutcomeGroupID)
            fields.string(parentOutcomeGroupContextUUID)
            fields.string(workflowState)
            fields.timestamp(createdAt)
            fields.timestamp(updatedAt)
            metadata.encode(into: &fields)
        }
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> OutcomeGroup {
        try OutcomeCodec.readVersion(&reader, of: "outcome group")
        let id = try reader.readKey()
        var fields = try FieldReader(&reader, fieldCount: 11 + EventMetadata.fieldCount)
        return OutcomeGroup(
            id: id,
            contextType: try fields.string(&reader),
            contextID: try fields.string(&reader),
            contextUUID: try fields.string(&reader),
            title: try fields.string(&reader),
            description: try fields.string(&reader),
            vendorGUID: try fields.string(&reader),
            parentOutcomeGroupID: try fields.string(&reader),
            parentOutcomeGroupContextUUID: try fields.string(&reader),
            workflowState: try fields.string(&reader),
            createdAt: try fields.timestamp(&reader),
            updatedAt: try fields.timestamp(&reader),
            metadata: try EventMetadata.decode(&fields, &reader))
    }
}
