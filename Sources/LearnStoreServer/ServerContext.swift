import LearnStoreEngine
import LearnStoreModel
import Logging
import NIOCore

/// What every connection shares: configuration, tenants, token verification, metrics, durability.
public final class ServerContext: Sendable {
    public let configuration: ServerConfiguration
    public let registry: TenantRegistry
    public let verifier: TokenVerifier
    public let metrics: ServerMetrics
    public let commits: any CommitTracker
    public let runtime: ServerRuntimeState
    public let clock: any EngineClock
    public let logger: Logger
    public let environment: ExecutionEnvironment
    public let startedAt: Timestamp
    public let placement: TenantPlacement
    /// Snapshot and restore for the admin opcodes, once persistence is ready.
    public let admin = AdminBinding()
    /// WAIT_SEQUENCE requests waiting for their tenant to reach a sequence.
    let sequenceWatch = SequenceWatch()
    let connections: ConnectionRegistry
    /// Request bytes buffered by connections beyond their allowance.
    public let inputBudget: BufferBudget
    /// Response bytes waiting for clients on every connection.
    public let outputBudget: BufferBudget
    /// Index builds that reads wait for, off the tenants' locks.
    public let indexBuilds = IndexBuildQueue()
    /// Change-feed subscriptions.
    public let feed: FeedHub
    /// Commit wakes for each event loop, run by its connections between reads.
    public let loopWakes = LoopWakes()

    public init(
        configuration: ServerConfiguration, registry: TenantRegistry, verifier: TokenVerifier, metrics: ServerMetrics,
        commits: any CommitTracker, runtime: ServerRuntimeState, clock: any EngineClock, logger: Logger,
        placement: TenantPlacement, topology: TopologyBoard = TopologyBoard(), info: @escaping @Sendable (_ serverWide: Bool) -> String
    ) {
        self.placement = placement
        self.configuration = configuration
        self.registry = registry
        self.verifier = verifier
        self.metrics = metrics
        self.commits = commits
        self.runtime = runtime
        self.clock = clock
        self.logger = logger
        self.startedAt = clock.now()
        self.connections = ConnectionRegistry()
        self.inputBudget = BufferBudget(limit: configuration.serverInputBudgetBytes)
        self.outputBudget = BufferBudget(limit: configuration.serverOutputBudgetBytes)
        self.feed = FeedHub(
            maximum: configuration.maximumFeedSubscriptions, maximumPerTenant: configuration.maximumFeedSubscriptionsPerTenant,
            memoryRecordsPerTenant: configuration.feedMemoryRecordsPerTenant)
        self.environment = ExecutionEnvironment(
            runtime: runtime, clock: clock,
            limits: EngineLimits(maximumBatch: configuration.limits.maximumBatch, idempotencyKeys: configuration.limits.idempotencyKeys),
            features: configuration.features, info: info, topology: topology)
    }
}

import Synchronization

extension ServerContext {
    /// An admitted connection closed (whichever handler served it last).
    func connectionEnded(_ channel: any Channel) {
        connections.remove(channel)
        runtime.connectionClosed()
        metrics.connectionClosed(current: runtime.connections)
    }
}

/// Open connections, so a graceful shutdown can drain and close each.
final class ConnectionRegistry: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])

    func add(_ channel: any Channel) { channels.withLock { $0[ObjectIdentifier(channel)] = channel } }
    func remove(_ channel: any Channel) { channels.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(channel)) } }
    var all: [any Channel] { channels.withLock { Array($0.values) } }
}

/// Drains a connection during graceful shutdown.
struct ShutdownRequest: Sendable {}
