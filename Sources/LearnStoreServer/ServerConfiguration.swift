import LearnStorePersistence
import LearnStoreProtocol
import NIOCore
import LearnStoreModel

/// Everything `learnstore serve` can be told. Defaults are the embedded defaults the README's run
/// command uses.
public struct ServerConfiguration: Sendable {
    public static let defaultPort = 7878
    public static let defaultMetricsPort = 9464

    public var host = "127.0.0.1"
    public var port = ServerConfiguration.defaultPort
    public var dataDirectory = "snapshots"
    /// Event loops (threads serving connections and tenants); default one per core.
    public var eventLoops = System.coreCount
    public var maximumFrameBytes = 16 << 20
    public var maximumInFlight = 1024
    public var maximumConnections = 10_000
    /// The largest frame accepted before AUTH succeeds: a HELLO and an AUTH (token ≤ 8192 bytes) fit.
    public var maximumHandshakeFrameBytes = 16 << 10
    /// Response bytes one connection may have waiting for its client (unsent or held for a commit)
    /// before the server stops running that connection's requests until the client reads.
    public var connectionOutputSoftLimitBytes = 4 << 20
    /// Response bytes waiting on one connection past which it is closed with `OVERLOADED`.
    public var connectionOutputHardLimitBytes = 64 << 20
    /// Response bytes waiting on all connections together before every connection pauses.
    public var serverOutputBudgetBytes = 256 << 20
    /// Request bytes a connection may buffer without drawing on the server-wide input budget.
    public var connectionInputAllowanceBytes = 64 << 10
    /// Request bytes buffered beyond the allowances, over all connections; a connection that needs
    /// more than is left is closed with `OVERLOADED`.
    public var serverInputBudgetBytes = 256 << 20
    public var handshakeTimeoutSeconds = 10.0
    public var idleTimeoutSeconds = 300.0
    /// How long a reply waits for the acknowledgement of its write (in-sync replicas, the disk) before
    /// it is answered with OUTCOME_UNKNOWN; 0: for ever. Checked about once a second.
    public var acknowledgementTimeoutSeconds = 30.0
    /// Metrics endpoint (`/metrics`, Prometheus text); nil disables it.
    public var metricsPort: Int? = ServerConfiguration.defaultMetricsPort
    public var metricsHost = "127.0.0.1"
    public var authentication = AuthenticationConfiguration()
    public var limits = EngineLimitsConfiguration()
    public var serverVersion = "0.1.0"
    /// Optional protocol features this server offers beyond LearningRecords (HELLO feature bits).
    /// Canvas outcome data (bit 1) and administration (bit 2: snapshots, restore, import; admin
    /// scope required) are on by default.
    public var features: ProtocolFeatures = [.outcomes, .admin, .feed]
    /// Change-feed subscriptions open at once, on the whole server and per tenant.
    public var maximumFeedSubscriptions = 256
    public var maximumFeedSubscriptionsPerTenant = 16
    /// Records of a followed tenant's newest writes kept in memory for its subscriptions that have
    /// caught up (they read there instead of the WAL files); 0: subscriptions always read the files.
    public var feedMemoryRecordsPerTenant = RecentChanges.defaultMaximumRecords
    /// A subscription with nothing to send sends an empty FEED_EVENTS this often, so its client can
    /// tell a quiet tenant from a dead connection.
    public var feedHeartbeatSeconds = 5.0
    /// Replication (docs/REPLICATION.md); nil: a standalone server with no replication port.
    public var replication: ReplicationConfiguration?

    public init() {}
}

/// Which keys verify tokens, and which claims are required.
public struct AuthenticationConfiguration: Sendable {
    /// HS256 shared secrets (the first also signs `token mint`).
    public var hmacSecrets: [String] = []
    /// A JWKS document (JSON) with RS256 / ES256 public keys.
    public var jwksJSON: String?
    /// If set, tokens must carry this `aud`.
    public var audience: String?
    /// If set, tokens must carry this `iss`.
    public var issuer: String?
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    public var leewaySeconds: Int64 = 30

    public init() {}

    public var hasKeys: Bool { !hmacSecrets.isEmpty || jwksJSON != nil }
}

public struct EngineLimitsConfiguration: Sendable {
    public var maximumBatch = 1000
    public var idempotencyKeys = 10_000
    public init() {}
}
