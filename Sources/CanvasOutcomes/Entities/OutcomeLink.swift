import LearnStoreModel

/// An outcome linked into a group of a context (a ContentTag; `learning_outcome_link_created` / `_updated`).
public struct OutcomeLink: Hashable, Sendable {
    /// `learning_outcome_link_id`.
    public var id: String
    public var learningOutcomeID: String?
    public var learningOutcomeGroupID: String?
    public var learningOutcomeContextUUID: String?
    public var learningOutcomeGroupContextUUID: String?
    public var contextType: String?
    public var contextID: String?
    public var contextUUID: String?
    public var workflowState: String?
    public var createdAt: Timestamp?
    public var updatedAt: Timestamp?
    public var metadata: EventMetadata

    public init(id: String, learningOutcomeID: String? = nil, learningOutcomeGroupID: String? = nil,
                learningOutcomeContextUUID: String? = nil, learningOutcomeGroupContextUUID: String? = nil,
                contextType: String? = nil, contextID: String? = nil, contextUUID: String? = nil,
                workflowState: String? = nil, createdAt: Timestamp? = nil, updatedAt: Timestamp? = nil,
                metadata: EventMetadata = EventMetadata()) {
        self.id = id
        self.learningOutcomeID = learningOutcomeID
        self.learningOutcomeGroupID = learningOutcomeGroupID
        self.learningOutcomeContextUUID = learningOutcomeContextUUID
        self.learningOutcomeGroupContextUUID = learningOutcomeGroupContextUUID
        self.contextType = contextType
        self.contextID = contextID
        self.contextUUID = contextUUID
        self.workflowState = workflowState
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.metadata = metadata
    }

    public var context: ContextRef? { ContextRef(type: contextType, id: contextID) }
}

extension OutcomeLink: VersionedEntity {
    static var kind: OutcomeEntityKind { .link }
    var key: String { id }
    var recordTime: Timestamp? { updatedAt ?? createdAt }
}
