import LearnStoreModel

/// The parts of an event's `metadata` an entity keeps: when Canvas emitted it (the second version key) and
/// which root account it came from. The root-account fields are stored for reference only; tenancy is the
/// engine's business, so nothing in this module scopes by them.
public struct EventMetadata: Hashable, Sendable {
    /// `metadata.event_time`: UTC with milliseconds on current Canvas.
    public var eventTime: Timestamp?
    public var rootAccountID: String?
    public var rootAccountUUID: String?
    public var rootAccountLtiGUID: String?

    public init(eventTime: Timestamp? = nil, rootAccountID: String? = nil, rootAccountUUID: String? = nil,
                rootAccountLtiGUID: String? = nil) {
        self.eventTime = eventTime
        self.rootAccountID = rootAccountID
        self.rootAccountUUID = rootAccountUUID
        self.rootAccountLtiGUID = rootAccountLtiGUID
    }

    init(fields: EventFields) throws(OutcomeEventError) {
        eventTime = try fields.timestamp("event_time")
        rootAccountID = try fields.text("root_account_id")
        rootAccountUUID = try fields.text("root_account_uuid")
        rootAccountLtiGUID = try fields.text("root_account_lti_guid")
    }

    public var json: JSONValue {
        .object([
            ("event_time", eventTime.json),
            ("root_account_id", rootAccountID.json),
            ("root_account_uuid", rootAccountUUID.json),
            ("root_account_lti_guid", rootAccountLtiGUID.json),
        ])
    }
}

extension Optional where Wrapped == String {
    var json: JSONValue { map { JSONValue.string($0) } ?? .null }
}

extension Optional where Wrapped == Timestamp {
    var json: JSONValue { map { .string($0.rfc3339) } ?? .null }
}

extension Optional where Wrapped == Double {
    var json: JSONValue { map { JSONValue.number($0) } ?? .null }
}

extension Optional where Wrapped == Int {
    var json: JSONValue { map { .number(String($0)) } ?? .null }
}

extension Optional where Wrapped == Bool {
    var json: JSONValue { map { JSONValue.bool($0) } ?? .null }
}

extension EventMetadata {
    /// Optional fields it adds to its entity's presence bitmap.
    static let fieldCount = 4

    func encode(into fields: inout FieldWriter) {
        fields.timestamp(eventTime)
        fields.string(rootAccountID)
        fields.string(rootAccountUUID)
        fields.string(rootAccountLtiGUID)
    }

    static func decode(_ fields: inout FieldReader, _ reader: inout ByteReader) throws(DecodeError) -> EventMetadata {
        EventMetadata(eventTime: try fields.timestamp(&reader), rootAccountID: try fields.string(&reader),
                      rootAccountUUID: try fields.string(&reader), rootAccountLtiGUID: try fields.string(&reader))
    }
}
