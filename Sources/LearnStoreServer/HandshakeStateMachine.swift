import LearnStoreModel
import LearnStoreProtocol

/// Who is on the other end of an authenticated connection.
public struct Session: Sendable, Hashable {
    public var identity: CallerIdentity
    /// The token's `exp`.
    public var expiresAt: Timestamp
    /// `exp` plus the server's clock leeway: from this instant requests get TOKEN_EXPIRED.
    public var acceptedUntil: Timestamp
    public var protocolVersion: UInt16
}

/// The handshake as a pure state machine: HELLO, then AUTH, then requests; re-AUTH on the
/// same connection. Part of ``ConnectionStateMachine``, which adds the order and flow of requests.
public struct HandshakeStateMachine: Sendable {
    public static let maximumFailedAuthentications = 3

    public enum State: Sendable, Equatable {
        case awaitingHello
        case awaitingAuth(version: UInt16)
        case authenticated(Session)
        case closed
    }

    public enum FrameAction: Sendable, Equatable {
        /// Answer HELLO (negotiate the version).
        case hello
        /// Verify the token in this AUTH frame.
        case authenticate
        /// Answer on the connection's own loop without the tenant (PING before AUTH).
        case answerLocally
        /// Run on the tenant, as the authenticated ``session``. It carries no session: one is read
        /// only where it is needed, not copied for every request.
        case dispatch
        /// Answer with this error; close afterwards when `close` is true.
        case reject(LearnStoreError, close: Bool)
        /// The connection is closed; drop the frame.
        case ignore
    }

    public enum AuthAction: Sendable, Equatable {
        case accept(Session)
        case reject(LearnStoreError, close: Bool)
    }

    public private(set) var state: State = .awaitingHello
    private var failedAuthentications = 0

    public init() {}

    public var session: Session? {
        if case .authenticated(let session) = state { return session }
        return nil
    }

    /// Whether AUTH has succeeded: ``session`` without copying it.
    public var isAuthenticated: Bool {
        if case .authenticated = state { return true }
        return false
    }

    public mutating func frameReceived(opcode: UInt8) -> FrameAction {
        switch state {
        case .closed:
            return .ignore
        case .awaitingHello:
            guard opcode == Opcode.hello else {
                state = .closed
                return .reject(LearnStoreError(.badFrame, "the first frame must be HELLO (opcode 0x01)"), close: true)
            }
            return .hello
        case .awaitingAuth:
            switch opcode {
            case Opcode.auth: return .authenticate
            case Opcode.ping: return .answerLocally
            case Opcode.hello: return .reject(LearnStoreError(.badFrame, "HELLO may be sent only once"), close: false)
            default: return .reject(LearnStoreError(.unauthenticated, "send AUTH with a token first"), close: false)
            }
        case .authenticated:
            // A HELLO here is answered BAD_FRAME by the executor, in order with the requests around it.
            return opcode == Opcode.auth ? .authenticate : .dispatch
        }
    }

    /// The outcome of HELLO: the version both sides speak, or nil.
    public mutating func helloReceived(_ request: HelloRequest) -> Result<UInt16, LearnStoreError> {
        guard let version = request.negotiate() else {
            state = .closed
            return .failure(LearnStoreError(
                .unsupportedVersion,
                "client speaks \(request.minimumVersion)...\(request.maximumVersion), server speaks \(ProtocolVersion.supported.lowerBound)...\(ProtocolVersion.supported.upperBound)"))
        }
        state = .awaitingAuth(version: version)
        return .success(version)
    }

    public mutating func authenticationSucceeded(_ token: VerifiedToken) -> AuthAction {
        let identity = token.identity
        switch state {
        case .awaitingAuth(let version):
            let session = Session(identity: identity, expiresAt: token.expiresAt, acceptedUntil: token.acceptedUntil, protocolVersion: version)
            state = .authenticated(session)
            failedAuthentications = 0
            return .accept(session)
        case .authenticated(let current):
            guard current.identity.tenantID == identity.tenantID else {
                return authenticationFailed(LearnStoreError(.forbidden, "re-authentication must keep tenant \(current.identity.tenantID)"))
            }
            let session = Session(identity: identity, expiresAt: token.expiresAt, acceptedUntil: token.acceptedUntil, protocolVersion: current.protocolVersion)
            state = .authenticated(session)
            failedAuthentications = 0
            return .accept(session)
        case .awaitingHello, .closed:
            return .reject(LearnStoreError(.badFrame, "AUTH out of order"), close: true)
        }
    }

    /// Every AUTH answered with an error counts, a re-AUTH's too; a successful AUTH starts the count again.
    public mutating func authenticationFailed(_ error: LearnStoreError) -> AuthAction {
        failedAuthentications += 1
        if failedAuthentications >= Self.maximumFailedAuthentications {
            state = .closed
            return .reject(error, close: true)
        }
        return .reject(error, close: false)
    }

    public mutating func close() { state = .closed }
}
