import LearnStoreModel

/// A learning outcome group (`learning_outcome_group_created` / `_updated` body).
public struct OutcomeGroup: Hashable, Sendable {
    /// `learning_outcome_group_id`.
    public var id: String
    public var contextType: String?
    public var contextID: String?
    public var contextUUID: String?
    public var title: String?
    public var description: String?
    public var vendorGUID: String?
    /// nil for a context's root group.
    public var parentOutcomeGroupID: String?
    public var parentOutcomeGroupContextUUID: String?
    public var workflowState: String?
    public var createdAt: Timestamp?
    public var updatedAt: Timestamp?
    public var metadata: EventMetadata

    public init(id: String, contextType: String? = nil, contextID: String? = nil, contextUUID: String? = nil,
                title: String? = nil, description: String? = nil, vendorGUID: String? = nil,
                parentOutcomeGroupID: String? = nil, parentOutcomeGroupContextUUID: String? = nil,
                workflowState: String? = nil, createdAt: Timestamp? = nil, updatedAt: Timestamp? = nil,
                metadata: EventMetadata = EventMetadata()) {
        self.id = id
        self.contextType = contextType
        self.contextID = contextID
        self.contextUUID = contextUUID
        self.title = title
        self.description = description
        self.vendorGUID = vendorGUID
        self.parentOutcomeGroupID = parentOutcomeGroupID
        self.parentOutcomeGroupContextUUID = parentOutcomeGroupContextUUID
        self.workflowState = workflowState
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.metadata = metadata
    }

    public var context: ContextRef? { ContextRef(type: contextType, id: contextID) }
}

extension OutcomeGroup: VersionedEntity {
    static var kind: OutcomeEntityKind { .group }
    var key: String { id }
    var recordTime: Timestamp? { updatedAt ?? createdAt }
}
