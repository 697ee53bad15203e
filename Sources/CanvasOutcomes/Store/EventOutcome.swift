import LearnStoreModel

/// What ingesting one event did, reported per event (in the engine, on the wire and by the client).
public enum EventOutcome: Hashable, Sendable {
    /// The event became the stored version of `key` (possibly a tombstone).
    case applied(OutcomeEntityKind, key: String)
    /// The store already held this very version: nothing changed.
    case duplicate(OutcomeEntityKind, key: String)
    /// The store holds a newer version: nothing changed.
    case stale(OutcomeEntityKind, key: String)
    /// The event was refused and changed nothing.
    case rejected(EventRejection)

    public init(_ result: IngestResult, kind: OutcomeEntityKind, key: String) {
        switch result {
        case .applied: self = .applied(kind, key: key)
        case .duplicate: self = .duplicate(kind, key: key)
        case .stale: self = .stale(kind, key: key)
        }
    }
}

/// Why one event was refused: a stable reason (an ``OutcomeEventError/Reason`` name such as
/// `missingField`) and the error as the wire reports it (code, message, and the field's JSON path).
public struct EventRejection: Hashable, Sendable, CustomStringConvertible {
    public var reason: OutcomeEventError.Reason
    public var error: LearnStoreError

    public init(reason: OutcomeEventError.Reason, error: LearnStoreError) {
        self.reason = reason
        self.error = error
    }

    /// A parse failure: VALIDATION naming the field (e.g. `body.learning_outcome_id`).
    public init(_ parseError: OutcomeEventError) {
        self.init(reason: parseError.reason, error: .validation(parseError.message, field: parseError.field))
    }

    public var description: String { "\(reason): \(error)" }
}
