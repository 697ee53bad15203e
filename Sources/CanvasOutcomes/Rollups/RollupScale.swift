/// The scale a rollup is expressed on: the maximum `P`, the mastery threshold `M` and the ratings,
/// highest points first. Built once per outcome (criterion) or per query (proficiency), never per result.
public struct RollupScale: Hashable, Sendable {
    public enum Source: Hashable, Sendable {
        /// The outcome's own `rubric_criterion` (or Canvas's default criterion when it has none).
        case outcomeCriterion
        /// An OutcomeProficiency (mastery scale), by id.
        case proficiency(id: String)
    }

    public var pointsPossible: Double
    public var masteryPoints: Double
    /// Highest points first; ties keep the order Canvas sent.
    public var ratings: [RollupRating]
    public var source: Source

    public init(pointsPossible: Double, masteryPoints: Double, ratings: [RollupRating], source: Source) {
        self.pointsPossible = pointsPossible
        self.masteryPoints = masteryPoints
        self.ratings = ratings
        self.source = source
    }

    /// Canvas's criterion semantics: `points_possible` falls back to the top rating's points,
    /// `mastery_points` to the top rating's points as well; no criterion at all means the default one.
    public init(criterion: RubricCriterion?) {
        let criterion = criterion ?? .canvasDefault
        let ratings = RollupScale.sortedDescending(criterion.ratings.map {
            RollupRating(points: $0.points, description: $0.description, color: nil, isMastery: nil)
        })
        let top = ratings.first?.points ?? 0
        self.init(pointsPossible: criterion.pointsPossible ?? top, masteryPoints: criterion.masteryPoints ?? top,
                  ratings: ratings, source: .outcomeCriterion)
    }

    /// An OutcomeProficiency's scale: its active ratings, `P` = top rating, `M` = the mastery rating
    /// (the top rating if none is marked, which Canvas's validation forbids). nil when no rating is active.
    public init?(proficiency: OutcomeProficiency) {
        let ratings = RollupScale.sortedDescending(proficiency.ratings.filter { $0.workflowState != "deleted" }.map {
            RollupRating(points: $0.points, description: $0.description, color: $0.color, isMastery: $0.mastery)
        })
        guard let top = ratings.first else { return nil }
        let mastery = ratings.first(where: { $0.isMastery == true }) ?? top
        self.init(pointsPossible: top.points, masteryPoints: mastery.points, ratings: ratings,
                  source: .proficiency(id: proficiency.id))
    }

    private static func sortedDescending(_ ratings: [RollupRating]) -> [RollupRating] {
        // Stable: equal points keep their sent order.
        ratings.enumerated().sorted { a, b in
            a.element.points != b.element.points ? a.element.points > b.element.points : a.offset < b.offset
        }.map(\.element)
    }

    /// The first rating, highest first, whose points are at or below `score` (`rating_percents`); nil
    /// when the score is below every rating.
    public func ratingIndex(for score: Double) -> Int? {
        ratings.firstIndex { $0.points <= score }
    }

    /// A rollup is mastered when it reaches the mastery points (equal counts, as in n_mastery).
    public func isMastered(_ score: Double) -> Bool { score >= masteryPoints }
}

/// A rating as reported with a rollup.
public struct RollupRating: Hashable, Sendable {
    public var points: Double
    public var description: String?
    public var color: String?
    /// Proficiency ratings say which level is mastery; criterion ratings do not.
    public var isMastery: Bool?

    public init(points: Double, description: String?, color: String?, isMastery: Bool?) {
        self.points = points
        self.description = description
        self.color = color
        self.isMastery = isMastery
    }
}
