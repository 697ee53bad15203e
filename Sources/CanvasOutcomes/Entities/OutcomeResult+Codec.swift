import LearnStoreModel

extension OutcomeResult {
    public func encode(into writer: inout ByteWriter) {
        writer.writeU8(OutcomeCodec.formatVersion)
        encodeContent(into: &writer)
    }

    func encodeContent(into writer: inout ByteWriter) {
        writer.writeString(learningOutcomeID)
        writer.writeString(userUUID)
        writer.writeFields { fields in
            fields.string(id)
            fields.string(learningOutcomeContextUUID)
            fields.string(resultContextType)
            fields.string(resultContextID)
            fields.string(resultContextUUID)
            fields.bool(mastery)
            fields.double(score)
            fields.double(possible)
            fields.double(percent)
            fields.int(attempt)
            fields.double(originalScore)
            fields.double(originalPossible)
            fields.bool(originalMastery)
            fields.string(workflowState)
            fields.timestamp(createdAt)
            fields.timestamp(updatedAt)
            fields.timestamp(assessedAt)
            fields.timestamp(submittedAt)
            fields.bool(hidden)
            fields.string(artifactID)
            fields.string(artifactType)
            fields.timestamp(artifactCreatedAt)
            fields.timestamp(artifactUpdatedAt)
            fields.string(associatedAssetID)
            fields.string(associatedAssetType)
            metadata.encode(into: &fields)
        }
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> OutcomeResult {
        try OutcomeCodec.readVersion(&reader, of: "outcome result")
        let outcomeID = try reader.readKey()
        let userUUID = try reader.readString(limit: OutcomeCodec.maxStringBytes)
        var fields = try FieldReader(&reader, fieldCount: 25 + EventMetadata.fieldCount)
        return OutcomeResult(
            id: try fields.string(&reader),
            learningOutcomeID: outcomeID,
            userUUID: userUUID,
            learningOutcomeContextUUID: try fields.string(&reader),
            resultContextType: try fields.string(&reader),
            resultContextID: try fields.string(&reader),
            resultContextUUID: try fields.string(&reader),
            mastery: try fields.bool(&reader),
            score: try fields.double(&reader),
            possible: try fields.double(&reader),
            percent: try fields.double(&reader),
            attempt: try fields.int(&reader),
            originalScore: try fields.double(&reader),
            originalPossible: try fields.double(&reader),
            originalMastery: try fields.bool(&reader),
            workflowState: try fields.string(&reader),
            createdAt: try fields.timestamp(&reader),
            updatedAt: try fields.timestamp(&reader),
            assessedAt: try fields.timestamp(&reader),
            submittedAt: try fields.timestamp(&reader),
            hidden: try fields.bool(&reader),
            artifactID: try fields.string(&reader),
            artifactType: try fields.string(&reader),
            artifactCreatedAt: try fields.timestamp(&reader),
            artifactUpdatedAt: try fields.timestamp(&reader),
            associatedAssetID: try fields.string(&reader),
            associatedAssetType: try fields.string(&reader),
            metadata: try EventMetadata.decode(&fields, &reader))
    }
}
