import LearnStoreModel

extension OutcomeResult {
    init(body: EventFields, metadata: EventMetadata) throws(OutcomeEventError) {
        self.init(
            id: try body.id("id"),
            learningOutcomeID: try body.requiredID("learning_outcome_id"),
            userUUID: try body.requiredString("user_uuid", limit: EventFields.maximumIdentifierBytes),
            learningOutcomeContextUUID: try body.string("learning_outcome_context_uuid"),
            resultContextType: try body.identifier("result_context_type"),
            resultContextID: try body.id("result_context_id"),
            resultContextUUID: try body.string("result_context_uuid"),
            mastery: try body.bool("mastery"),
            score: try body.double("score"),
            possible: try body.double("possible"),
            percent: try body.double("percent"),
            attempt: try body.int("attempt"),
            originalScore: try body.double("original_score"),
            originalPossible: try body.double("original_possible"),
            originalMastery: try body.bool("original_mastery"),
            workflowState: try body.string("workflow_state"),
            createdAt: try body.timestamp("created_at"),
            updatedAt: try body.timestamp("updated_at"),
            assessedAt: try body.timestamp("assessed_at"),
            submittedAt: try body.timestamp("submitted_at"),
            hidden: try body.bool("hidden"),
            artifactID: try body.id("artifact_id"),
            artifactType: try body.identifier("artifact_type"),
            artifactCreatedAt: try body.timestamp("artifact_created_at"),
            artifactUpdatedAt: try body.timestamp("artifact_updated_at"),
            associatedAssetID: try body.id("associated_asset_id"),
            associatedAssetType: try body.identifier("associated_asset_type"),
            metadata: metadata)
    }

    public var json: JSONValue {
        .object([
            ("id", id.json),
            ("learning_outcome_id", .string(learningOutcomeID)),
            ("learning_outcome_context_uuid", learningOutcomeContextUUID.json),
            ("result_context_id", resultContextID.json),
            ("result_context_type", resultContextType.json),
            ("result_context_uuid", resultContextUUID.json),
            ("user_uuid", .string(userUUID)),
            ("mastery", mastery.json),
            ("score", score.json),
            ("possible", possible.json),
            ("percent", percent.json),
            ("attempt", attempt.json),
            ("original_score", originalScore.json),
            ("original_possible", originalPossible.json),
            ("original_mastery", originalMastery.json),
            ("workflow_state", workflowState.json),
            ("created_at", createdAt.json),
            ("updated_at", updatedAt.json),
            ("assessed_at", assessedAt.json),
            ("submitted_at", submittedAt.json),
            ("hidden", hidden.json),
            ("artifact_id", artifactID.json),
            ("artifact_type", artifactType.json),
            ("artifact_created_at", artifactCreatedAt.json),
            ("artifact_updated_at", artifactUpdatedAt.json),
            ("associated_asset_id", associatedAssetID.json),
            ("associated_asset_type", associatedAssetType.json),
            ("metadata", metadata.json),
        ])
    }
}
