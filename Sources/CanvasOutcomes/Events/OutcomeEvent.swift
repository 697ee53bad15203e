import LearnStoreModel

/// One parsed live event: its name and the full snapshot of the entity it carries. Canvas builds every
/// `_created`/`_updated` body fresh from the record, so an event is an upsert of full state, never a diff.
public struct OutcomeEvent: Hashable, Sendable {
    public var name: OutcomeEventName
    public var entity: OutcomeEntity

    public init(name: OutcomeEventName, entity: OutcomeEntity) {
        self.name = name
        self.entity = entity
    }

    /// Parses `{"metadata": {...}, "body": {...}}` as Canvas emits it.
    public static func parse(_ json: JSONValue) throws(OutcomeEventError) -> OutcomeEvent {
        guard case .object = json else { throw OutcomeEventError(.badJSON, field: nil, "an event is a JSON object") }
        let metadataFields = try EventFields(json["metadata"], path: "metadata")
        let rawName = try metadataFields.requiredString("event_name")
        guard let name = OutcomeEventName(rawValue: rawName) else {
            throw OutcomeEventError(.unknownEvent, field: "metadata.event_name", "not an outcome event: \(rawName)")
        }
        let metadata = try EventMetadata(fields: metadataFields)
        let body = try EventFields(json["body"], path: "body")
        let entity: OutcomeEntity
        switch name.kind {
        case .outcome: entity = .outcome(try LearningOutcome(body: body, metadata: metadata))
        case .group: entity = .group(try OutcomeGroup(body: body, metadata: metadata))
        case .link: entity = .link(try OutcomeLink(body: body, metadata: metadata))
        case .result: entity = .result(try OutcomeResult(body: body, metadata: metadata))
        case .proficiency: entity = .proficiency(try OutcomeProficiency(body: body, metadata: metadata))
        }
        return OutcomeEvent(name: name, entity: entity)
    }

    /// Parses raw UTF-8 JSON bytes.
    public static func parse(bytes: [UInt8]) throws(OutcomeEventError) -> OutcomeEvent {
        let json: JSONValue
        do { json = try JSONValue.parse(bytes) } catch {
            throw OutcomeEventError(.badJSON, field: nil, error.description)
        }
        return try parse(json)
    }

    /// Parses JSON text.
    public static func parse(text: String) throws(OutcomeEventError) -> OutcomeEvent {
        try parse(bytes: Array(text.utf8))
    }
}
