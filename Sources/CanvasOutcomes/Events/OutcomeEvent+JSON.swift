import LearnStoreModel

extension OutcomeEvent {
    /// The event as Canvas emits it: `metadata` (the kept fields plus `event_name`) and `body` (the
    /// entity's fields). Parsing it gives this event back. Absent fields are written as null, which
    /// parsing treats as absent, as it does Canvas's compacted keys.
    public var json: JSONValue {
        guard case .object(let members) = entity.json else { return entity.json }
        var metadata: [(String, JSONValue)] = [("event_name", .string(name.rawValue))]
        var body: [(String, JSONValue)] = []
        for (key, value) in members {
            if key == "metadata", case .object(let kept) = value { metadata += kept } else { body.append((key, value)) }
        }
        return .object([("metadata", .object(metadata)), ("body", .object(body))])
    }
}
