import LearnStorePersistence

/// How this node takes part in replication (docs/REPLICATION.md). Without it a server is a
/// standalone primary with no replication port.
public struct ReplicationConfiguration: Sendable {
    /// This node's name in the cluster (letters, digits, '-', '_', '.').
    public var nodeID: String
    public var host = "127.0.0.1"
    /// The replication port: replicas follow this node here, operators promote and inspect it.
    public var port: Int
    /// The cluster's shared secret (at least 16 bytes).
    public var secret: [UInt8]
    /// Replication ports (`host:port`) of the nodes to follow. Empty: this node starts as a primary;
    /// otherwise it starts as a replica of whichever of them is the primary of the newest epoch.
    public var follow: [String] = []
    /// Synchronous acknowledgement, lag limit, minimum in-sync replicas.
    public var replicaSet = ReplicaSetState.Configuration(minimumInSync: 1)
    /// A primary sends an empty RECORDS frame this often when it has nothing to send.
    public var heartbeatMilliseconds: Int64 = 100
    /// A replica that hears nothing from its primary for this long reconnects.
    public var silenceLimitMilliseconds: Int64 = 3_000
    public var maximumFrameBytes = 16 << 20
    /// With a control plane: etcd decides this node's role, finds its primary and fails over by itself.
    public var cluster: ClusterConfiguration?

    public init(nodeID: String, port: Int, secret: [UInt8]) {
        self.nodeID = nodeID
        self.port = port
        self.secret = secret
    }
}
