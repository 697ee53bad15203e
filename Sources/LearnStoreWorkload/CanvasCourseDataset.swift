import CanvasOutcomes
import LearnStoreModel

/// One Canvas course's outcome data as live events, generated deterministically from a seed: a
/// proficiency scale, a group tree, outcomes with every calculation method, links, and students'
/// results with later updates, deletions, unscored and classic-quiz results. It also keeps the newest
/// version of every entity, so a test can compute what the store must answer without the store.
public struct CanvasCourseDataset: Sendable {
    public let context: ContextRef
    public let students: [String]
    public let proficiency: OutcomeProficiency
    /// Newest versions (all live).
    public let groups: [OutcomeGroup]
    public let outcomes: [LearningOutcome]
    public let links: [OutcomeLink]
    /// The newest version of every result; some are `deleted`.
    public let results: [OutcomeResult]
    /// Every version of every entity, once each, in generation order.
    public let events: [OutcomeEvent]

    public static let baseMilliseconds: Int64 = 1_704_067_200_000
    static let day: Int64 = 86_400_000
    /// Methods the outcomes cycle through, with their `calculation_int`.
    static let methods: [(String, Int?)] = [
        ("highest", nil), ("latest", nil), ("average", nil), ("decaying_average", 65), ("n_mastery", 2),
        ("standard_decaying_average", 70), ("weighted_average", 60), ("n_mastery", nil),
    ]

    public init(students studentCount: Int = 30, outcomes outcomeCount: Int = 20, resultsPerOutcome: Int = 5,
                seed: UInt64 = 1, courseID: String = "565") {
        var rng = SplitMix64(seed: seed)
        let context = ContextRef(type: "Course", id: courseID)
        self.context = context
        var events: [OutcomeEvent] = []
        let metadata = { (time: Int64) in
            EventMetadata(eventTime: Timestamp(milliseconds: time + 100), rootAccountID: "21070000000000001",
                          rootAccountUUID: "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs")
        }
        let base = Self.baseMilliseconds
        func at(_ ms: Int64) -> Timestamp { Timestamp(milliseconds: ms) }

        let ratings = [(4.0, "Exceeds Mastery", false), (3, "Mastery", true), (2, "Near Mastery", false),
                       (1, "Below Mastery", false), (0, "No Evidence", false)]
        proficiency = OutcomeProficiency(
            id: "1", contextType: context.type, contextID: context.id, workflowState: "active",
            ratings: ratings.enumerated().map { index, rating in
                OutcomeProficiencyRating(id: String(index + 1), description: rating.1, points: rating.0,
                                         mastery: rating.2, color: "00000\(index)", workflowState: "active")
            },
            createdAt: at(base), metadata: metadata(base))
        events.append(OutcomeEvent(name: .outcomeProficiencyCreated, entity: .proficiency(proficiency)))

        // Root 100; 101-103 under it; 104 under 101.
        let tree: [(String, String?)] = [("100", nil), ("101", "100"), ("102", "100"), ("103", "100"), ("104", "101")]
        groups = tree.map { id, parent in
            OutcomeGroup(id: id, contextType: context.type, contextID: context.id, title: "Group \(id)",
                         parentOutcomeGroupID: parent, workflowState: "active", createdAt: at(base), metadata: metadata(base))
        }
        events += groups.map { OutcomeEvent(name: .learningOutcomeGroupCreated, entity: .group($0)) }

        var outcomes: [LearningOutcome] = []
        var links: [OutcomeLink] = []
        for index in 0..<outcomeCount {
            let (method, int) = Self.methods[index % Self.methods.count]
            let id = String(1000 + index)
            let criterion = RubricCriterion(description: "Criterion \(id)", masteryPoints: 3, pointsPossible: 5, ratings: [
                RubricRating(description: "Exceeds", points: 5), RubricRating(description: "Meets", points: 3),
                RubricRating(description: "Does not meet", points: 0),
            ])
            let created = LearningOutcome(
                id: id, contextType: context.type, contextID: context.id, title: "Outcome \(id)",
                calculationMethod: "highest", rubricCriterion: criterion, workflowState: "active", createdAt: at(base),
                metadata: metadata(base))
            events.append(OutcomeEvent(name: .learningOutcomeCreated, entity: .outcome(created)))
            // Every outcome is then updated to its real method, so the final state needs the newer version.
            var updated = created
            updated.calculationMethod = method
            updated.calculationInt = int
            updated.updatedAt = at(base + Self.day)
            updated.metadata = metadata(base + Self.day)
            events.append(OutcomeEvent(name: .learningOutcomeUpdated, entity: .outcome(updated)))
            outcomes.append(updated)
            let link = OutcomeLink(
                id: String(5000 + index), learningOutcomeID: id, learningOutcomeGroupID: tree[1 + index % 4].0,
                contextType: context.type, contextID: context.id, workflowState: "active", createdAt: at(base),
                metadata: metadata(base))
            events.append(OutcomeEvent(name: .learningOutcomeLinkCreated, entity: .link(link)))
            links.append(link)
        }
        self.outcomes = outcomes
        self.links = links

        let students = (0..<studentCount).map { index in
            "student-" + String(repeating: "0", count: max(0, 4 - String(index).count)) + String(index)
        }
        self.students = students
        var results: [OutcomeResult] = []
        var nextID = 100_000
        for (studentIndex, student) in students.enumerated() {
            for outcome in outcomes {
                for attempt in 0..<resultsPerOutcome {
                    nextID += 1
                    let assessed = base + Int64(attempt) * Self.day + Int64(studentIndex) * 60_000
                        + Int64(rng.next() % 3_600) * 1000
                    let isQuiz = attempt % 5 == 4
                    let asset = isQuiz ? ("Quizzes::Quiz", String(900 + attempt)) : ("Assignment", String(700 + attempt))
                    var result = OutcomeResult(
                        id: String(nextID), learningOutcomeID: outcome.id, userUUID: student,
                        resultContextType: context.type, resultContextID: context.id,
                        score: rng.next() % 50 == 0 ? nil : Double(rng.next() % 11) / 2, possible: 5,
                        attempt: attempt + 1, workflowState: "active", createdAt: at(assessed), assessedAt: at(assessed),
                        artifactID: String(nextID * 10), artifactType: isQuiz ? "Quizzes::QuizSubmission" : "RubricAssessment",
                        associatedAssetID: asset.1, associatedAssetType: asset.0, metadata: metadata(assessed))
                    result.percent = result.score.map { $0 / 5 }
                    events.append(OutcomeEvent(name: .learningOutcomeResultCreated, entity: .result(result)))
                    switch rng.next() % 20 {
                    case 0, 1, 2:
                        // Re-assessed: a newer version with another score.
                        result.score = Double(rng.next() % 11) / 2
                        result.percent = result.score.map { $0 / 5 }
                        result.updatedAt = at(assessed + Self.day / 2)
                        result.metadata = metadata(assessed + Self.day / 2)
                        events.append(OutcomeEvent(name: .learningOutcomeResultUpdated, entity: .result(result)))
                    case 3:
                        result.workflowState = "deleted"
                        result.updatedAt = at(assessed + Self.day / 2)
                        result.metadata = metadata(assessed + Self.day / 2)
                        events.append(OutcomeEvent(name: .learningOutcomeResultUpdated, entity: .result(result)))
                    default:
                        break
                    }
                    results.append(result)
                }
            }
        }
        self.results = results
        self.events = events
    }

    /// Every event as a JSON line, in a shuffled order (nil keeps generation order), with `duplicates`
    /// extra copies of randomly chosen events mixed in.
    public func eventLines(shuffleSeed: UInt64? = nil, duplicates: Int = 0) -> [String] {
        var lines = events.map { $0.json.serialized }
        var rng = SplitMix64(seed: shuffleSeed ?? 7)
        for _ in 0..<duplicates where !events.isEmpty {
            lines.append(lines[Int(rng.next() % UInt64(events.count))])
        }
        if shuffleSeed != nil { lines.shuffle(using: &rng) }
        return lines
    }
}
