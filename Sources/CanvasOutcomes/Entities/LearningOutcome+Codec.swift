import LearnStoreModel

extension LearningOutcome {
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
            fields.string(displayName)
            fields.string(shortDescription)
            fields.string(description)
            fields.string(vendorGUID)
            fields.string(calculationMethod)
            fields.int(calculationInt)
            fields.nested(rubricCriterion) { criterion, out in criterion.encode(into: &out) }
            fields.string(workflowState)
            fields.string(copiedFromOutcomeID)
            fields.string(originalOutcomeRootAccountUUID)
            fields.timestamp(createdAt)
            fields.timestamp(updatedAt)
            metadata.encode(into: &fields)
        }
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> LearningOutcome {
        try OutcomeCodec.readVersion(&reader, of: "learning outcome")
        let id = try reader.readKey()
        var fields = try FieldReader(&reader, fieldCount: 16 + EventMetadata.fieldCount)
        return LearningOutcome(
            id: id,
            contextType: try fields.string(&reader),
            contextID: try fields.string(&reader),
            contextUUID: try fields.string(&reader),
            title: try fields.string(&reader),
            displayName: try fields.string(&reader),
            shortDescription: try fields.string(&reader),
            description: try fields.string(&reader),
            vendorGUID: try fields.string(&reader),
            calculationMethod: try fields.string(&reader),
            calculationInt: try fields.int(&reader),
            rubricCriterion: try fields.nested(&reader) { (r: inout ByteReader) throws(DecodeError) in
                try RubricCriterion.decode(from: &r)
            },
            workflowState: try fields.string(&reader),
            copiedFromOutcomeID: try fields.string(&reader),
            originalOutcomeRootAccountUUID: try fields.string(&reader),
            createdAt: try fields.timestamp(&reader),
            updatedAt: try fields.timestamp(&reader),
            metadata: try EventMetadata.decode(&fields, &reader))
    }
}
