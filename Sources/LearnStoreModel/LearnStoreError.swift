/// The one error type every LearnStore layer reports to callers.
///
/// `Code` is an extensible struct, not an enum, so adding a code never breaks a client's `switch`.
/// Each code has a stable number on the wire (see docs/PROTOCOL.md, "Error codes").
public struct LearnStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: UInt16
        public let name: String

        public init(rawValue: UInt16, name: String) {
            self.rawValue = rawValue
            self.name = name
        }

        public var description: String { name }

        public static let badFrame = Code(rawValue: 100, name: "BAD_FRAME")
        public static let frameTooLarge = Code(rawValue: 101, name: "FRAME_TOO_LARGE")
        public static let unsupportedVersion = Code(rawValue: 102, name: "UNSUPPORTED_VERSION")
        public static let unknownOpcode = Code(rawValue: 103, name: "UNKNOWN_OPCODE")
        public static let unauthenticated = Code(rawValue: 200, name: "UNAUTHENTICATED")
        public static let tokenExpired = Code(rawValue: 201, name: "TOKEN_EXPIRED")
        public static let forbidden = Code(rawValue: 202, name: "FORBIDDEN")
        public static let notFound = Code(rawValue: 300, name: "NOT_FOUND")
        public static let validation = Code(rawValue: 301, name: "VALIDATION")
        public static let conflict = Code(rawValue: 302, name: "CONFLICT")
        /// A change feed cannot resume where asked: the changes after it are no longer kept.
        public static let feedTruncated = Code(rawValue: 303, name: "FEED_TRUNCATED")
        /// A replica asked to follow from an LSN its primary's log no longer holds.
        public static let logTruncated = Code(rawValue: 304, name: "LOG_TRUNCATED")
        public static let tooManyInFlight = Code(rawValue: 400, name: "TOO_MANY_IN_FLIGHT")
        public static let loading = Code(rawValue: 401, name: "LOADING")
        public static let storageUnavailable = Code(rawValue: 402, name: "STORAGE_UNAVAILABLE")
        public static let shuttingDown = Code(rawValue: 403, name: "SHUTTING_DOWN")
        public static let tooManyConnections = Code(rawValue: 404, name: "TOO_MANY_CONNECTIONS")
        public static let timeout = Code(rawValue: 405, name: "TIMEOUT")
        /// A server-wide or per-connection buffer limit was reached; the connection is closed.
        public static let overloaded = Code(rawValue: 406, name: "OVERLOADED")
        /// A write reached a node that is not its tenant's primary (a replica, or a fenced old primary).
        public static let notPrimary = Code(rawValue: 407, name: "NOT_PRIMARY")
        /// A node of an older epoch spoke to one that knows a newer epoch.
        public static let fenced = Code(rawValue: 408, name: "FENCED")
        /// WAIT_SEQUENCE: the tenant did not reach the sequence on this node within the timeout.
        public static let notYet = Code(rawValue: 409, name: "NOT_YET")
        /// A write reached a node that is not the primary, and the node knows where the primary is:
        /// `primaryAddress` (the error body is followed by the partition, its epoch and the address).
        public static let moved = Code(rawValue: 410, name: "MOVED")
        /// A request this node applied was never acknowledged: the node stopped being the primary (a
        /// newer epoch fenced it) before its replicas confirmed the write (or the write a read saw).
        /// The write may or may not survive on the new primary.
        public static let outcomeUnknown = Code(rawValue: 411, name: "OUTCOME_UNKNOWN")
        public static let internalError = Code(rawValue: 500, name: "INTERNAL")
        /// Client side only (never on the wire): the connection could not be made or was lost.
        public static let connectionFailed = Code(rawValue: 600, name: "CONNECTION_FAILED")
        /// Client side only: the server sent something this client cannot parse.
        public static let protocolViolation = Code(rawValue: 601, name: "PROTOCOL_VIOLATION")

        /// Every code this version knows, in wire order.
        public static let all: [Code] = [
            .badFrame, .frameTooLarge, .unsupportedVersion, .unknownOpcode,
            .unauthenticated, .tokenExpired, .forbidden,
            .notFound, .validation, .conflict, .feedTruncated, .logTruncated,
            .tooManyInFlight, .loading, .storageUnavailable, .shuttingDown, .tooManyConnections, .timeout, .overloaded,
            .notPrimary, .fenced, .notYet, .moved, .outcomeUnknown,
            .internalError, .connectionFailed, .protocolViolation,
        ]

        /// The code for a wire number; unknown numbers keep their number and get a generic name.
        public static func fromWire(_ value: UInt16, name: String? = nil) -> Code {
            if let known = all.first(where: { $0.rawValue == value }) { return known }
            return Code(rawValue: value, name: name ?? "UNKNOWN_\(value)")
        }

        public static func == (lhs: Code, rhs: Code) -> Bool { lhs.rawValue == rhs.rawValue }
        public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }
    }

    public var code: Code
    public var message: String
    /// The offending field (snake_case, as in JSON), when the error is about one field.
    public var field: String?
    /// MOVED: the client address (`host:port`) of the primary the request belongs to.
    public var primaryAddress: String?

    public init(_ code: Code, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String {
        if let field { return "\(code.name) (\(field)): \(message)" }
        return "\(code.name): \(message)"
    }

    public static func validation(_ message: String, field: String? = nil) -> LearnStoreError {
        LearnStoreError(.validation, message, field: field)
    }

    public static func notFound(_ message: String) -> LearnStoreError {
        LearnStoreError(.notFound, message)
    }
}
