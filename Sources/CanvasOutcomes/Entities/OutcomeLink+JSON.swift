import LearnStoreModel

extension OutcomeLink {
    init(body: EventFields, metadata: EventMetadata) throws(OutcomeEventError) {
        self.init(
            id: try body.requiredID("learning_outcome_link_id"),
            learningOutcomeID: try body.id("learning_outcome_id"),
            learningOutcomeGroupID: try body.id("learning_outcome_group_id"),
            learningOutcomeContextUUID: try body.string("learning_outcome_context_uuid"),
            learningOutcomeGroupContextUUID: try body.string("learning_outcome_group_context_uuid"),
            contextType: try body.identifier("context_type"),
            contextID: try body.id("context_id"),
            contextUUID: try body.string("context_uuid"),
            workflowState: try body.string("workflow_state"),
            createdAt: try body.timestamp("created_at"),
            updatedAt: try body.timestamp("updated_at"),
            metadata: metadata)
    }

    public var json: JSONValue {
        .object([
            ("learning_outcome_link_id", .string(id)),
            ("learning_outcome_id", learningOutcomeID.json),
            ("learning_outcome_group_id", learningOutcomeGroupID.json),
            ("learning_outcome_context_uuid", learningOutcomeContextUUID.json),
            ("learning_outcome_group_context_uuid", learningOutcomeGroupContextUUID.json),
            ("context_type", contextType.json),
            ("context_id", contextID.json),
            ("context_uuid", contextUUID.json),
            ("workflow_state", workflowState.json),
            ("created_at", createdAt.json),
            ("updated_at", updatedAt.json),
            ("metadata", metadata.json),
        ])
    }
}
