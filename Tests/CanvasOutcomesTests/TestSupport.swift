import LearnStoreModel
@testable import CanvasOutcomes

/// A timestamp from ISO 8601 text; traps on a typo in a test.
func ts(_ text: String) -> Timestamp {
    guard let value = Timestamp(iso8601: text) else { fatalError("bad test timestamp \(text)") }
    return value
}

let course = ContextRef(type: "Course", id: "565")
let account = ContextRef(type: "Account", id: "1")

/// A result in `course` with the fields rollups read; everything else defaulted.
func makeResult(id: String?, user: String = "student-a", outcome: String = "80", score: Double?,
                percent: Double? = nil, possible: Double? = nil, assessedAt: Timestamp? = nil,
                updatedAt: Timestamp? = nil, createdAt: Timestamp? = nil, eventTime: Timestamp? = nil,
                state: String? = "active", context: ContextRef? = course, asset: AssetRef? = nil,
                artifactType: String? = nil, artifactID: String? = nil, hidden: Bool? = nil) -> OutcomeResult {
    OutcomeResult(id: id, learningOutcomeID: outcome, userUUID: user,
                  resultContextType: context?.type, resultContextID: context?.id,
                  score: score, possible: possible, percent: percent, workflowState: state, createdAt: createdAt,
                  updatedAt: updatedAt, assessedAt: assessedAt, hidden: hidden, artifactID: artifactID,
                  artifactType: artifactType, associatedAssetID: asset?.id, associatedAssetType: asset?.type,
                  metadata: EventMetadata(eventTime: eventTime))
}

/// An outcome in `course` with a method, int and criterion (nil criterion = Canvas's default).
func makeOutcome(id: String = "80", method: String? = "highest", int: Int? = nil,
                 criterion: RubricCriterion? = nil, state: String? = "active", updatedAt: Timestamp? = nil,
                 context: ContextRef? = course) -> LearningOutcome {
    LearningOutcome(id: id, contextType: context?.type, contextID: context?.id, title: "Outcome \(id)",
                    calculationMethod: method, calculationInt: int, rubricCriterion: criterion,
                    workflowState: state, updatedAt: updatedAt)
}

/// Canvas's default proficiency scale: 4 Exceeds, 3 Mastery (mastery), 2 Near, 1 Below, 0 No Evidence.
func defaultProficiency(id: String = "1", context: ContextRef = course, updatedAt: Timestamp? = nil,
                        state: String = "active") -> OutcomeProficiency {
    OutcomeProficiency(
        id: id, contextType: context.type, contextID: context.id, workflowState: state,
        ratings: [
            OutcomeProficiencyRating(id: "1", description: "Exceeds Mastery", points: 4, mastery: false, color: "02672D", workflowState: "active"),
            OutcomeProficiencyRating(id: "2", description: "Mastery", points: 3, mastery: true, color: "03893D", workflowState: "active"),
            OutcomeProficiencyRating(id: "3", description: "Near Mastery", points: 2, mastery: false, color: "FAB901", workflowState: "active"),
            OutcomeProficiencyRating(id: "4", description: "Below Mastery", points: 1, mastery: false, color: "FD5D10", workflowState: "active"),
            OutcomeProficiencyRating(id: "5", description: "No Evidence", points: 0, mastery: false, color: "E62429", workflowState: "active"),
        ],
        updatedAt: updatedAt)
}

/// Parses a seed payload or any event text; traps on failure (the parsing tests cover failures).
func parseEvent(_ text: String) -> OutcomeEvent {
    do { return try OutcomeEvent.parse(text: text) } catch { fatalError("test payload does not parse: \(error)") }
}

extension OutcomeStore {
    /// `apply` for set-up lines that do not assert on the ingest result.
    @discardableResult
    mutating func ingest(_ entity: OutcomeEntity) -> IngestResult { apply(entity) }

    @discardableResult
    mutating func ingest(_ event: OutcomeEvent) -> IngestResult { apply(event) }
}
