import LearnStoreModel

extension OutcomeEntity {
    /// Reads an entity back from its ``json`` form (the event body's fields plus the kept `metadata`),
    /// e.g. as a server returns it; the same field rules as event parsing, so `parse(kind:json: e.json) == e`.
    public static func parse(kind: OutcomeEntityKind, json: JSONValue) throws(OutcomeEventError) -> OutcomeEntity {
        guard case .object = json else { throw OutcomeEventError(.badJSON, field: nil, "an entity is a JSON object") }
        let metadata = try EventMetadata(fields: EventFields(json["metadata"], path: "metadata"))
        let body = try EventFields(json, path: "body")
        switch kind {
        case .outcome: return .outcome(try LearningOutcome(body: body, metadata: metadata))
        case .group: return .group(try OutcomeGroup(body: body, metadata: metadata))
        case .link: return .link(try OutcomeLink(body: body, metadata: metadata))
        case .result: return .result(try OutcomeResult(body: body, metadata: metadata))
        case .proficiency: return .proficiency(try OutcomeProficiency(body: body, metadata: metadata))
        }
    }
}
