import LearnStoreModel

/// A mastery scale for a context (`outcome_proficiency_created` / `_updated` body).
public struct OutcomeProficiency: Hashable, Sendable {
    /// `outcome_proficiency_id`.
    public var id: String
    public var contextType: String?
    public var contextID: String?
    public var workflowState: String?
    /// As sent (Canvas orders them by points, highest first, then id).
    public var ratings: [OutcomeProficiencyRating]
    public var createdAt: Timestamp?
    public var updatedAt: Timestamp?
    public var metadata: EventMetadata

    public init(id: String, contextType: String? = nil, contextID: String? = nil, workflowState: String? = nil,
                ratings: [OutcomeProficiencyRating] = [], createdAt: Timestamp? = nil, updatedAt: Timestamp? = nil,
                metadata: EventMetadata = EventMetadata()) {
        self.id = id
        self.contextType = contextType
        self.contextID = contextID
        self.workflowState = workflowState
        self.ratings = ratings
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.metadata = metadata
    }

    public var context: ContextRef? { ContextRef(type: contextType, id: contextID) }
}

/// One level of a proficiency scale.
public struct OutcomeProficiencyRating: Hashable, Sendable {
    /// `outcome_proficiency_rating_id`.
    public var id: String?
    public var description: String?
    public var points: Double
    /// Exactly one rating of a valid scale is the mastery level.
    public var mastery: Bool?
    public var color: String?
    public var workflowState: String?

    public init(id: String? = nil, description: String? = nil, points: Double, mastery: Bool? = nil,
                color: String? = nil, workflowState: String? = nil) {
        self.id = id
        self.description = description
        self.points = points
        self.mastery = mastery
        self.color = color
        self.workflowState = workflowState
    }
}

extension OutcomeProficiency: VersionedEntity {
    static var kind: OutcomeEntityKind { .proficiency }
    var key: String { id }
    var recordTime: Timestamp? { updatedAt ?? createdAt }
}
