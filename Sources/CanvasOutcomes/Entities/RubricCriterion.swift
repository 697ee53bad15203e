import LearnStoreModel

/// An outcome's own scale (`rubric_criterion`): its ratings, the points for mastery and the maximum.
public struct RubricCriterion: Hashable, Sendable {
    public var description: String?
    public var masteryPoints: Double?
    public var pointsPossible: Double?
    /// As sent (Canvas stores them by points, highest first).
    public var ratings: [RubricRating]

    public init(description: String? = nil, masteryPoints: Double? = nil, pointsPossible: Double? = nil,
                ratings: [RubricRating] = []) {
        self.description = description
        self.masteryPoints = masteryPoints
        self.pointsPossible = pointsPossible
        self.ratings = ratings
    }

    /// Canvas's `LearningOutcome.default_rubric_criterion`, used when an outcome carries none.
    public static let canvasDefault = RubricCriterion(
        description: nil, masteryPoints: 3, pointsPossible: 5,
        ratings: [
            RubricRating(description: "Exceeds Expectations", points: 5),
            RubricRating(description: "Meets Expectations", points: 3),
            RubricRating(description: "Does Not Meet Expectations", points: 0),
        ])

    init(fields: EventFields) throws(OutcomeEventError) {
        description = try fields.string("description")
        masteryPoints = try fields.double("mastery_points")
        pointsPossible = try fields.double("points_possible")
        ratings = []
        for rating in try fields.objects("ratings") ?? [] {
            ratings.append(RubricRating(description: try rating.string("description"),
                                        points: try rating.requiredDouble("points")))
        }
    }

    public var json: JSONValue {
        .object([
            ("description", description.json),
            ("mastery_points", masteryPoints.json),
            ("points_possible", pointsPossible.json),
            ("ratings", .array(ratings.map(\.json))),
        ])
    }

    func encode(into writer: inout ByteWriter) {
        writer.writeVarint(UInt64(ratings.count))
        for rating in ratings {
            writer.writeDouble(rating.points)
            writer.writeFields { $0.string(rating.description) }
        }
        writer.writeFields { fields in
            fields.string(description)
            fields.double(masteryPoints)
            fields.double(pointsPossible)
        }
    }

    static func decode(from reader: inout ByteReader) throws(DecodeError) -> RubricCriterion {
        let count = try reader.readLength(limit: OutcomeCodec.maxRatings)
        var ratings: [RubricRating] = []
        ratings.reserveCapacity(count)
        for _ in 0..<count {
            let points = try reader.readDouble()
            var fields = try FieldReader(&reader, fieldCount: 1)
            ratings.append(RubricRating(description: try fields.string(&reader), points: points))
        }
        var fields = try FieldReader(&reader, fieldCount: 3)
        return RubricCriterion(description: try fields.string(&reader), masteryPoints: try fields.double(&reader),
                               pointsPossible: try fields.double(&reader), ratings: ratings)
    }
}

/// One level of an outcome's criterion.
public struct RubricRating: Hashable, Sendable {
    public var description: String?
    public var points: Double

    public init(description: String?, points: Double) {
        self.description = description
        self.points = points
    }

    public var json: JSONValue {
        .object([("description", description.json), ("points", .number(points))])
    }
}
