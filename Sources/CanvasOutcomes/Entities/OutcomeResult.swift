import LearnStoreModel

/// One student's assessment against one outcome (`learning_outcome_result_created` / `_updated` body).
public struct OutcomeResult: Hashable, Sendable {
    /// `id`; older Canvas versions omitted it (see ``key``).
    public var id: String?
    public var learningOutcomeID: String
    public var learningOutcomeContextUUID: String?
    public var resultContextType: String?
    public var resultContextID: String?
    public var resultContextUUID: String?
    /// The student. Result events identify students only by uuid (`metadata.user_id` is the actor).
    public var userUUID: String
    /// Canvas's per-assessment mastery flag; not a rollup value.
    public var mastery: Bool?
    public var score: Double?
    public var possible: Double?
    /// Score as a fraction of the outcome scale, already rescaled by Canvas for alignment mastery, so
    /// rollups use it rather than recomputing score / possible.
    public var percent: Double?
    public var attempt: Int?
    public var originalScore: Double?
    public var originalPossible: Double?
    public var originalMastery: Bool?
    public var workflowState: String?
    public var createdAt: Timestamp?
    public var updatedAt: Timestamp?
    public var assessedAt: Timestamp?
    /// Not in current payloads; honoured when a future payload carries it (it outranks `assessed_at`
    /// for ordering in Canvas).
    public var submittedAt: Timestamp?
    /// Not in current payloads; honoured when present (hidden results never count in Canvas rollups).
    public var hidden: Bool?
    public var artifactID: String?
    public var artifactType: String?
    public var artifactCreatedAt: Timestamp?
    public var artifactUpdatedAt: Timestamp?
    public var associatedAssetID: String?
    public var associatedAssetType: String?
    public var metadata: EventMetadata

    public init(id: String?, learningOutcomeID: String, userUUID: String, learningOutcomeContextUUID: String? = nil,
                resultContextType: String? = nil, resultContextID: String? = nil, resultContextUUID: String? = nil,
                mastery: Bool? = nil, score: Double? = nil, possible: Double? = nil, percent: Double? = nil,
                attempt: Int? = nil, originalScore: Double? = nil, originalPossible: Double? = nil,
                originalMastery: Bool? = nil, workflowState: String? = nil, createdAt: Timestamp? = nil,
                updatedAt: Timestamp? = nil, assessedAt: Timestamp? = nil, submittedAt: Timestamp? = nil,
                hidden: Bool? = nil, artifactID: String? = nil, artifactType: String? = nil,
                artifactCreatedAt: Timestamp? = nil, artifactUpdatedAt: Timestamp? = nil,
                associatedAssetID: String? = nil, associatedAssetType: String? = nil,
                metadata: EventMetadata = EventMetadata()) {
        self.id = id
        self.learningOutcomeID = learningOutcomeID
        self.userUUID = userUUID
        self.learningOutcomeContextUUID = learningOutcomeContextUUID
        self.resultContextType = resultContextType
        self.resultContextID = resultContextID
        self.resultContextUUID = resultContextUUID
        self.mastery = mastery
        self.score = score
        self.possible = possible
        self.percent = percent
        self.attempt = attempt
        self.originalScore = originalScore
        self.originalPossible = originalPossible
        self.originalMastery = originalMastery
        self.workflowState = workflowState
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.assessedAt = assessedAt
        self.submittedAt = submittedAt
        self.hidden = hidden
        self.artifactID = artifactID
        self.artifactType = artifactType
        self.artifactCreatedAt = artifactCreatedAt
        self.artifactUpdatedAt = artifactUpdatedAt
        self.associatedAssetID = associatedAssetID
        self.associatedAssetType = associatedAssetType
        self.metadata = metadata
    }

    /// The table key: `id`, or for an id-less (older Canvas) event a synthetic key built from the student,
    /// the outcome, the associated asset and the artifact, each length-prefixed so the key is unambiguous.
    /// It starts with "syn:", which no digit id can, and sorts after every numeric id.
    public var key: String {
        if let id { return id }
        var key = "syn:"
        for part in [userUUID, learningOutcomeID, associatedAssetType ?? "", associatedAssetID ?? "",
                     artifactType ?? "", artifactID ?? ""] {
            key += "\(part.utf8.count):\(part)"
        }
        return key
    }

    public var resultContext: ContextRef? { ContextRef(type: resultContextType, id: resultContextID) }
    public var associatedAsset: AssetRef? { AssetRef(type: associatedAssetType, id: associatedAssetID) }

    /// Classic-quiz results are re-aggregated per quiz by some rollup methods (docs/ROLLUPS.md).
    public var isClassicQuizResult: Bool { artifactType == "Quizzes::QuizSubmission" }
}

extension OutcomeResult: VersionedEntity {
    static var kind: OutcomeEntityKind { .result }
    var recordTime: Timestamp? { updatedAt ?? createdAt }
}
