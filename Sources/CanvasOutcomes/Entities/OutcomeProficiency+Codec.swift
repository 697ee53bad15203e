import LearnStoreModel

extension OutcomeProficiency {
    public func encode(into writer: inout ByteWriter) {
        writer.writeU8(OutcomeCodec.formatVersion)
        encodeContent(into: &writer)
    }

    func encodeContent(into writer: inout ByteWriter) {
        writer.writeString(id)
        writer.writeVarint(UInt64(ratings.count))
        for rating in ratings {
            writer.writeDouble(rating.points)
            writer.writeFields { fields in
                fields.string(rating.id)
                fields.string(rating.description)
                fields.bool(rating.mastery)
                fields.string(rating.color)
                fields.string(rating.workflowState)
            }
        }
        writer.writeFields { fields in
            fields.string(contextType)
            fields.string(contextID)
            fields.string(workflowState)
            fields.timestamp(createdAt)
            fields.timestamp(updatedAt)
            metadata.encode(into: &fields)
        }
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> OutcomeProficiency {
        try OutcomeCodec.readVersion(&reader, of: "outcome proficiency")
        let id = try reader.readKey()
        let count = try reader.readLength(limit: OutcomeCodec.maxRatings)
        var ratings: [OutcomeProficiencyRating] = []
        ratings.reserveCapacity(count)
        for _ in 0..<count {
            let points = try reader.readDouble()
            var fields = try FieldReader(&reader, fieldCount: 5)
            ratings.append(OutcomeProficiencyRating(
                id: try fields.string(&reader), description: try fields.string(&reader), points: points,
                mastery: try fields.bool(&reader), color: try fields.string(&reader),
                workflowState: try fields.string(&reader)))
        }
        var fields = try FieldReader(&reader, fieldCount: 5 + EventMetadata.fieldCount)
        return OutcomeProficiency(
            id: id,
            contextType: try fields.string(&reader),
            contextID: try fields.string(&reader),
            workflowState: try fields.string(&reader),
            ratings: ratings,
            createdAt: try fields.timestamp(&reader),
            updatedAt: try fields.timestamp(&reader),
            metadata: try EventMetadata.decode(&fields, &reader))
    }
}
