import LearnStoreModel

extension LearningOutcome {
    init(body: EventFields, metadata: EventMetadata) throws(OutcomeEventError) {
        self.init(
            id: try body.requiredID("learning_outcome_id"),
            contextType: try body.identifier("context_type"),
            contextID: try body.id("context_id"),
            contextUUID: try body.string("context_uuid"),
            title: try body.string("title"),
            displayName: try body.string("display_name"),
            shortDescription: try body.string("short_description"),
            description: try body.string("description"),
            vendorGUID: try body.string("vendor_guid"),
            calculationMethod: try body.string("calculation_method"),
            calculationInt: try body.int("calculation_int"),
            rubricCriterion: try body.object("rubric_criterion").map { (fields) throws(OutcomeEventError) in
                try RubricCriterion(fields: fields)
            },
            workflowState: try body.string("workflow_state"),
            copiedFromOutcomeID: try body.id("copied_from_outcome_id"),
            originalOutcomeRootAccountUUID: try body.string("original_outcome_root_account_uuid"),
            createdAt: try body.timestamp("created_at"),
            updatedAt: try body.timestamp("updated_at"),
            metadata: metadata)
    }

    /// The event body's field names, plus the kept `metadata`.
    public var json: JSONValue {
        .object([
            ("learning_outcome_id", .string(id)),
            ("context_type", contextType.json),
            ("context_id", contextID.json),
            ("context_uuid", contextUUID.json),
            ("title", title.json),
            ("display_name", displayName.json),
            ("short_description", shortDescription.json),
            ("description", description.json),
            ("vendor_guid", vendorGUID.json),
            ("calculation_method", calculationMethod.json),
            ("calculation_int", calculationInt.json),
            ("rubric_criterion", rubricCriterion?.json ?? .null),
            ("workflow_state", workflowState.json),
            ("copied_from_outcome_id", copiedFromOutcomeID.json),
            ("original_outcome_root_account_uuid", originalOutcomeRootAccountUUID.json),
            ("created_at", createdAt.json),
            ("updated_at", updatedAt.json),
            ("metadata", metadata.json),
        ])
    }
}
