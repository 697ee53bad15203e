import LearnStoreModel

/// A learning outcome (`learning_outcome_created` / `_updated` body), with every field Canvas sends.
public struct LearningOutcome: Hashable, Sendable {
    /// `learning_outcome_id`.
    public var id: String
    public var contextType: String?
    public var contextID: String?
    public var contextUUID: String?
    public var title: String?
    public var displayName: String?
    public var shortDescription: String?
    public var description: String?
    public var vendorGUID: String?
    /// Stored verbatim; ``CalculationMethod`` interprets it (nil means `highest`, as in Canvas).
    public var calculationMethod: String?
    public var calculationInt: Int?
    public var rubricCriterion: RubricCriterion?
    /// Verbatim: `active`, `archived`, `retired`, `deleted`, or anything newer.
    public var workflowState: String?
    public var copiedFromOutcomeID: String?
    public var originalOutcomeRootAccountUUID: String?
    public var createdAt: Timestamp?
    public var updatedAt: Timestamp?
    public var metadata: EventMetadata

    public init(id: String, contextType: String? = nil, contextID: String? = nil, contextUUID: String? = nil,
                title: String? = nil, displayName: String? = nil, shortDescription: String? = nil,
                description: String? = nil, vendorGUID: String? = nil, calculationMethod: String? = nil,
                calculationInt: Int? = nil, rubricCriterion: RubricCriterion? = nil, workflowState: String? = nil,
                copiedFromOutcomeID: String? = nil, originalOutcomeRootAccountUUID: String? = nil,
                createdAt: Timestamp? = nil, updatedAt: Timestamp? = nil, metadata: EventMetadata = EventMetadata()) {
        self.id = id
        self.contextType = contextType
        self.contextID = contextID
        self.contextUUID = contextUUID
        self.title = title
        self.displayName = displayName
        self.shortDescription = shortDescription
        self.description = description
        self.vendorGUID = vendorGUID
        self.calculationMethod = calculationMethod
        self.calculationInt = calculationInt
        self.rubricCriterion = rubricCriterion
        self.workflowState = workflowState
        self.copiedFromOutcomeID = copiedFromOutcomeID
        self.originalOutcomeRootAccountUUID = originalOutcomeRootAccountUUID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.metadata = metadata
    }

    public var context: ContextRef? { ContextRef(type: contextType, id: contextID) }
}

extension LearningOutcome: VersionedEntity {
    static var kind: OutcomeEntityKind { .outcome }
    var key: String { id }
    var recordTime: Timestamp? { updatedAt ?? createdAt }
}
