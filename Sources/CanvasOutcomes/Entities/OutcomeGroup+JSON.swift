import LearnStoreModel

extension OutcomeGroup {
    init(body: EventFields, metadata: EventMetadata) throws(OutcomeEventError) {
        self.init(
            id: try body.requiredID("learning_outcome_group_id"),
            contextType: try body.identifier("context_type"),
            contextID: try body.id("context_id"),
            contextUUID: try body.string("context_uuid"),
            title: try body.string("title"),
            description: try body.string("description"),
            vendorGUID: try body.string("vendor_guid"),
            parentOutcomeGroupID: try body.id("parent_outcome_group_id"),
            parentOutcomeGroupContextUUID: try body.string("parent_outcome_group_context_uuid"),
            workflowState: try body.string("workflow_state"),
            createdAt: try body.timestamp("created_at"),
            updatedAt: try body.timestamp("updated_at"),
            metadata: metadata)
    }

    public var json: JSONValue {
        .object([
            ("learning_outcome_group_id", .string(id)),
            ("context_type", contextType.json),
            ("context_id", contextID.json),
            ("context_uuid", contextUUID.json),
            ("title", title.json),
            ("description", description.json),
            ("vendor_guid", vendorGUID.json),
            ("parent_outcome_group_id", parentOutcomeGroupID.json),
            ("parent_outcome_group_context_uuid", parentOutcomeGroupContextUUID.json),
            ("workflow_state", workflowState.json),
            ("created_at", createdAt.json),
            ("updated_at", updatedAt.json),
            ("metadata", metadata.json),
        ])
    }
}
