import LearnStoreModel

/// Why a live event was refused, with the JSON path of the offending field (e.g. `body.learning_outcome_id`).
public struct OutcomeEventError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable reason. A struct with static members, not an enum, so adding one never breaks a `switch`.
    public struct Reason: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The bytes are not JSON, or the document is not an object.
        public static let badJSON = Reason("badJSON")
        /// `metadata.event_name` is not one of the ten outcome events.
        public static let unknownEvent = Reason("unknownEvent")
        /// A required key is absent or null (compact_live_events drops null keys, so both mean null).
        public static let missingField = Reason("missingField")
        /// The key holds the wrong JSON type (e.g. a string where a number belongs).
        public static let wrongType = Reason("wrongType")
        /// The type is right but the value is not (an id with non-digits, an unparsable timestamp).
        public static let invalidValue = Reason("invalidValue")
    }

    public let reason: Reason
    /// Dotted JSON path, with `[i]` for array elements; nil when the error is about the whole document.
    public let field: String?
    public let message: String

    public init(_ reason: Reason, field: String?, _ message: String) {
        self.reason = reason
        self.field = field
        self.message = message
    }

    public var description: String {
        if let field { return "\(reason) (\(field)): \(message)" }
        return "\(reason): \(message)"
    }

    /// The engine-wide error: a validation failure naming the field.
    public var learnStoreError: LearnStoreError {
        .validation("\(reason.name): \(message)", field: field)
    }
}
