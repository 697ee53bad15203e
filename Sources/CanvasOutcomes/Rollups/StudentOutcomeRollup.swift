import LearnStoreModel

/// One student's rollup for one outcome in one context.
public struct StudentOutcomeRollup: Hashable, Sendable {
    public var userUUID: String
    public var outcomeID: String
    public var context: ContextRef
    /// Rounded to 2 decimals as Ruby rounds.
    public var score: Double
    /// Scored results that went in.
    public var count: Int
    /// `submitted_at ?? assessed_at` of the latest result (Canvas's rollup `submitted_at`).
    public var latestAssessedAt: Timestamp?
    /// `score >= mastery_points` of the scale used.
    public var mastered: Bool
    /// The highest rating at or below the score; nil below every rating.
    public var rating: RollupRating?
    public var method: CalculationMethod
    public var scaleSource: RollupScale.Source

    public init(userUUID: String, outcomeID: String, context: ContextRef, score: Double, count: Int,
                latestAssessedAt: Timestamp?, mastered: Bool, rating: RollupRating?, method: CalculationMethod,
                scaleSource: RollupScale.Source) {
        self.userUUID = userUUID
        self.outcomeID = outcomeID
        self.context = context
        self.score = score
        self.count = count
        self.latestAssessedAt = latestAssessedAt
        self.mastered = mastered
        self.rating = rating
        self.method = method
        self.scaleSource = scaleSource
    }

    public var json: JSONValue {
        .object([
            ("user_uuid", .string(userUUID)),
            ("outcome_id", .string(outcomeID)),
            ("context_type", .string(context.type)),
            ("context_id", .string(context.id)),
            ("score", .number(score)),
            ("count", .number(String(count))),
            ("latest_assessed_at", latestAssessedAt.json),
            ("mastered", .bool(mastered)),
            ("rating", rating?.json ?? .null),
            ("calculation_method", .string(method.rawValue)),
        ])
    }
}

/// A context's aggregate for one outcome over its students' rollups (`aggregate_outcome_results_rollup`).
public struct ContextOutcomeAggregate: Hashable, Sendable {
    public var outcomeID: String
    public var context: ContextRef
    /// Mean of the students' rounded rollups, rounded to 2.
    public var mean: Double
    /// Median of the students' rollups, not rounded (as in Canvas).
    public var median: Double
    /// Students with a rollup for this outcome.
    public var studentCount: Int
    /// Scored results behind those rollups (the sum of the students' counts).
    public var resultCount: Int
    /// The newest of the students' latest assessment times.
    public var latestAssessedAt: Timestamp?
    /// Whether the mean reaches the scale's mastery points (the class average is at mastery).
    public var mastered: Bool
    /// The scale's rating of the mean (the highest at or below it); nil below every rating.
    public var rating: RollupRating?
    /// Students per rating of the scale used, highest rating first (Canvas's `rating_percents` counts;
    /// students below every rating are in no bucket).
    public var ratingCounts: [Int]
    public var scale: RollupScale

    public init(outcomeID: String, context: ContextRef, mean: Double, median: Double, studentCount: Int,
                resultCount: Int, latestAssessedAt: Timestamp?, mastered: Bool, rating: RollupRating?,
                ratingCounts: [Int], scale: RollupScale) {
        self.outcomeID = outcomeID
        self.context = context
        self.mean = mean
        self.median = median
        self.studentCount = studentCount
        self.resultCount = resultCount
        self.latestAssessedAt = latestAssessedAt
        self.mastered = mastered
        self.rating = rating
        self.ratingCounts = ratingCounts
        self.scale = scale
    }

    public var json: JSONValue {
        .object([
            ("outcome_id", .string(outcomeID)),
            ("context_type", .string(context.type)),
            ("context_id", .string(context.id)),
            ("mean", .number(mean)),
            ("median", .number(median)),
            ("student_count", .number(String(studentCount))),
            ("result_count", .number(String(resultCount))),
            ("latest_assessed_at", latestAssessedAt.json),
            ("mastered", .bool(mastered)),
            ("rating", rating?.json ?? .null),
            ("rating_counts", .array(ratingCounts.map { .number(String($0)) })),
        ])
    }
}

extension RollupRating {
    public var json: JSONValue {
        .object([
            ("points", .number(points)),
            ("description", description.json),
            ("color", color.json),
            ("mastery", isMastery.json),
        ])
    }
}
