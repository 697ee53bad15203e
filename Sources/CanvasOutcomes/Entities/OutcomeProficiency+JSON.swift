import LearnStoreModel

extension OutcomeProficiency {
    init(body: EventFields, metadata: EventMetadata) throws(OutcomeEventError) {
        var ratings: [OutcomeProficiencyRating] = []
        for rating in try body.objects("outcome_proficiency_ratings") ?? [] {
            ratings.append(OutcomeProficiencyRating(
                id: try rating.id("outcome_proficiency_rating_id"),
                description: try rating.string("description"),
                points: try rating.requiredDouble("points"),
                mastery: try rating.bool("mastery"),
                color: try rating.string("color"),
                workflowState: try rating.string("workflow_state")))
        }
        self.init(
            id: try body.requiredID("outcome_proficiency_id"),
            contextType: try body.identifier("context_type"),
            contextID: try body.id("context_id"),
            workflowState: try body.string("workflow_state"),
            ratings: ratings,
            createdAt: try body.timestamp("created_at"),
            updatedAt: try body.timestamp("updated_at"),
            metadata: metadata)
    }

    public var json: JSONValue {
        .object([
            ("outcome_proficiency_id", .string(id)),
            ("context_type", contextType.json),
            ("context_id", contextID.json),
            ("workflow_state", workflowState.json),
            ("outcome_proficiency_ratings", .array(ratings.map(\.json))),
            ("created_at", createdAt.json),
            ("updated_at", updatedAt.json),
            ("metadata", metadata.json),
        ])
    }
}

extension OutcomeProficiencyRating {
    public var json: JSONValue {
        .object([
            ("outcome_proficiency_rating_id", id.json),
            ("description", description.json),
            ("points", .number(points)),
            ("mastery", mastery.json),
            ("color", color.json),
            ("workflow_state", workflowState.json),
        ])
    }
}
