import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle

/// A whole LearnStore server built from its configuration: event loops, tenants, token
/// verification, metrics, INFO, persistence (recovery, WAL, snapshots), the listener and the
/// metrics endpoint, run as one service group. `learnstore serve` and the tests' servers are built
/// here, so the tests run what operators run.
///
/// Build it, call `run()` once; it returns after a graceful shutdown (`triggerGracefulShutdown()`,
/// or SIGTERM/SIGINT with `stopsOnSignals`) has stopped every service and the event loops.
public final class LearnStoreApplication: Sendable {
    public let configuration: ServerConfiguration
    public let group: MultiThreadedEventLoopGroup
    public let context: ServerContext
    public let server: LearnStoreServer
    /// Recovery, the WAL and snapshots; nil for a server that keeps its data only in memory.
    public let persistence: PersistenceService?
    public let metrics: ServerMetrics
    /// Every metric of this server, as the metrics endpoint renders it.
    public let prometheus: PrometheusCollectorRegistry
    /// Makes metrics in `prometheus` with the server's histogram buckets; the executable bootstraps
    /// `MetricsSystem` with it, so metrics of other libraries reach the same endpoint.
    public let metricsFactory: PrometheusMetricsFactory
    /// Nil when `configuration.metricsPort` is nil.
    public let metricsEndpoint: MetricsEndpoint?
    /// This node's replication state and port; nil without `configuration.replication`.
    public let replication: ReplicationNode?
    public let replicationListener: ReplicationListener?
    /// This node's part in the control plane; nil without `replication.cluster`.
    public let clusterAgent: ClusterAgent?
    /// In a partitioned cluster: copies the partitions moving into this node's group while it is the primary.
    let partitionMover: PartitionMover?
    /// Where `clusterAgent` runs; nil without it.
    private let controlPlane: ControlPlaneThread?
    /// The partition mover's thread, in a partitioned cluster.
    private let moverThread: ControlPlaneThread?
    private let services: ServiceGroup
    /// Whether `group` is this server's own, stopped with it.
    private let ownsEventLoops: Bool

    /// Builds the server and binds the metrics endpoint; the server listens once `run()` starts.
    /// - Parameters:
    ///   - persistence: the data directory's settings; nil keeps data in memory only (nothing is
    ///     recovered or written).
    ///   - startsLoading: an in-memory server that answers LOADING until
    ///     `context.runtime.finishLoading()` (with persistence, recovery decides).
    ///   - stopsOnSignals: shut down gracefully on SIGTERM and SIGINT (the executable).
    ///   - sharedEventLoops: event loops this server runs on beside others of the same process (the
    ///     members of `learnstore serve --member`), which it leaves running when it stops; nil: loops
    ///     of its own (`configuration.eventLoops`), stopped with it.
    public init(
        configuration: ServerConfiguration, persistence: PersistenceConfiguration?, clock: any EngineClock = SystemClock(),
        logger: Logger, startsLoading: Bool = false, stopsOnSignals: Bool = false, sharedEventLoops: MultiThreadedEventLoopGroup? = nil
    ) async throws {
        let configuration = try await Self.placedInCluster(configuration, persistence: persistence, logger: logger)
        self.configuration = configuration
        let group = sharedEventLoops ?? MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoops)
        self.group = group
        let ownsEventLoops = sharedEventLoops == nil
        self.ownsEventLoops = ownsEventLoops
        let controlPlane = configuration.replication?.cluster.map { _ in ControlPlaneThread() }
        self.controlPlane = controlPlane
        let prometheus = PrometheusCollectorRegistry()
        self.prometheus = prometheus
        var factory = PrometheusMetricsFactory(registry: prometheus)
        factory.durationHistogramBuckets = ServerMetrics.durationBuckets
        factory.valueHistogramBuckets = ServerMetrics.valueBuckets
        metricsFactory = factory
        let metrics = ServerMetrics(factory: factory)
        self.metrics = metrics

        let placement = TenantPlacement(group: group)
        let limits = EngineLimits(maximumBatch: configuration.limits.maximumBatch, idempotencyKeys: configuration.limits.idempotencyKeys)
        // Tenants hold these from the start; recovery points them at the WAL once it is open.
        let deferredLog = DeferredLog()
        let deferredCommits = DeferredCommitTracker()
        let log: any MutationLog = persistence == nil ? DiscardingLog() : deferredLog
        let commits: any CommitTracker = persistence == nil ? ImmediateCommitTracker() : deferredCommits
        let topology = TopologyBoard()
        let partitioned = configuration.replication?.cluster?.partitionMap != nil
        let moverThread = partitioned ? ControlPlaneThread() : nil
        self.moverThread = moverThread
        let registry = placement.makeRegistry(limits: limits, clock: clock, log: log, writeGate: partitioned ? topology.writeGate : nil)
        let runtime = ServerRuntimeState(loading: persistence != nil || startsLoading)
        let info = InfoDocument(runtime: runtime, registry: registry, metrics: metrics, version: configuration.serverVersion,
                                started: clock.now(), log: deferredLog)
        // What was made before a failure to start, to be abandoned before the event loops stop.
        var madeServer: LearnStoreServer?
        var madeListener: ReplicationListener?
        do {
            let verifier = try await TokenVerifier(configuration: configuration.authentication)
            let context = ServerContext(
                configuration: configuration, registry: registry, verifier: verifier, metrics: metrics,
                commits: commits, runtime: runtime, clock: clock, logger: logger, placement: placement, topology: topology,
                info: { serverWide in info.render(clock.now(), serverWide: serverWide) })
            self.context = context
            if let cluster = configuration.replication?.cluster, let map = cluster.partitionMap {
                topology.partition(by: map, group: cluster.name)
            }
            info.attach(feed: context.feed)
            server = LearnStoreServer(context: context, group: group)
            madeServer = server
            let replication: ReplicationNode?
            if let settings = configuration.replication {
                guard let persistence else {
                    throw LearnStoreError(.validation, "replication needs a data directory: a node replicates its write-ahead log")
                }
                replication = try ReplicationNode(
                    configuration: settings, directory: persistence.dataDirectory + "/replication", fileSystem: persistence.fileSystem,
                    clock: clock, group: group, logger: logger, metricsFactory: factory, loopWakes: context.loopWakes)
            } else {
                replication = nil
            }
            self.replication = replication
            if let replication, partitioned {
                // The map read at start counts for the epoch the node starts in.
                let gate = topology.writeGate
                gate.follow(startingEpoch: replication.epoch)
                gate.mapRead(duringEpoch: replication.epoch)
                replication.primaryEpochObserver.withLock { $0 = { epoch in gate.becamePrimary(epoch: epoch) } }
            }
            if let replication {
                info.attach(replication: replication)
                replication.onRestart { [runtime] in runtime.markReplaced() }
            }
            if let node = replication, let cluster = node.configuration.cluster, let controlPlane {
                clusterAgent = try ClusterAgent(
                    configuration: cluster, node: node, address: "\(node.configuration.host):\(node.configuration.port)", topology: context.environment.topology,
                    thread: controlPlane, logger: logger)
            } else {
                clusterAgent = nil
            }
            let persistenceService = persistence.map { settings in
                var settings = settings
                settings.observer = metrics
                return PersistenceService(configuration: settings, context: context, log: deferredLog, commits: deferredCommits, replication: replication)
            }
            self.persistence = persistenceService
            let currentWAL: @Sendable () -> WriteAheadLog? = { persistenceService?.controller?.wal }
            let moveMetrics = partitioned ? PartitionMoveMetrics(factory: factory) : nil
            let exporter = partitioned ? replication.map { node in
                var exporter = PartitionExporter(
                    registry: registry, topology: topology, standing: { (node.role, node.epoch) }, acknowledged: PartitionMover.acknowledgement(in: currentWAL),
                    recovered: { currentWAL() != nil })
                exporter.piecesExported = moveMetrics?.piecesExported
                exporter.logger = logger
                return exporter
            } : nil
            replicationListener = replication.map { node in
                ReplicationListener(node: node, group: group, exporter: exporter) {
                    guard let controller = persistenceService?.controller else { return nil }
                    return (controller.wal, controller.directory, controller.configuration.fileSystem)
                }
            }
            if let thread = moverThread, let node = replication, let cluster = node.configuration.cluster {
                partitionMover = try PartitionMover(
                    configuration: cluster, node: node, topology: topology, registry: registry, thread: thread, logger: logger, metrics: moveMetrics,
                    wal: currentWAL)
            } else {
                partitionMover = nil
            }
            madeListener = replicationListener
            if let port = configuration.metricsPort {
                let endpoint = try await MetricsEndpoint(host: configuration.metricsHost, port: port, group: group) {
                    metrics.sampleState(registry: registry, runtime: runtime, feed: context.feed)
                    replication?.sampleMetrics()
                    var text = prometheus.emitToBuffer()
                    metrics.emitRequestSeries(into: &text)
                    return text
                }
                metricsEndpoint = endpoint
                let bound = endpoint.localAddress?.port ?? port
                logger.info("metrics endpoint", metadata: ["url": "http://\(configuration.metricsHost):\(bound)/metrics"])
            } else {
                metricsEndpoint = nil
            }
        } catch {
            // Their address promises must be completed while the loops still run.
            madeServer?.abandon()
            madeListener?.abandon()
            if ownsEventLoops { try? await group.shutdownGracefully() }
            await controlPlane?.shutdown()
            await moverThread?.shutdown()
            throw error
        }

        // Services stop in reverse order: the server drains first, then persistence takes its last
        // snapshot round and closes the WAL, and the metrics endpoint, which shows all of it, goes last.
        var members: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let metricsEndpoint {
            members.append(.init(service: metricsEndpoint, successTerminationBehavior: .ignore))
        }
        if let persistence = self.persistence {
            members.append(.init(service: persistence, failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        if let replicationListener {
            members.append(.init(service: replicationListener, failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        if let clusterAgent {
            members.append(.init(service: clusterAgent, failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        if let partitionMover {
            members.append(.init(service: partitionMover, failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        members.append(.init(service: server))
        services = ServiceGroup(configuration: .init(
            services: members, gracefulShutdownSignals: stopsOnSignals ? [.sigterm, .sigint] : [], logger: logger))
    }

    /// With a control plane, etcd's placement decides whether the node starts as the primary or as a
    /// replica, and of which nodes (``ClusterAgent/startingFollowAddresses``).
    private static func placedInCluster(_ configuration: ServerConfiguration, persistence: PersistenceConfiguration?, logger: Logger) async throws -> ServerConfiguration {
        guard var settings = configuration.replication, var cluster = settings.cluster, let persistence else { return configuration }
        guard settings.port != 0 else { throw LearnStoreError(.validation, "a cluster node needs a fixed --replication-port: other nodes find it in etcd") }
        let epoch = try EpochHistory.read(directory: persistence.dataDirectory + "/replication", persistence.fileSystem).currentEpoch
        if let name = cluster.partitionMapName {
            cluster.partitionMap = try await ClusterAgent.partitionMap(named: name, group: cluster.name, endpoints: cluster.endpoints)
            settings.cluster = cluster
        }
        settings.follow = try await ClusterAgent.startingFollowAddresses(
            cluster, nodeID: settings.nodeID, address: "\(settings.host):\(settings.port)", epoch: epoch, group: MultiThreadedEventLoopGroup.singleton,
            logger: logger)
        var placed = configuration
        placed.replication = settings
        return placed
    }

    /// The address the server listens on, once `run()` has bound it.
    public var localAddress: SocketAddress {
        get async throws { try await server.localAddress }
    }

    /// Runs every service until a graceful shutdown completes (or one fails), then stops the event loops.
    public func run() async throws {
        // TOPOLOGY and the control plane name this node by the client address it binds.
        let board = context.environment.topology
        let host = configuration.host
        let replication = self.replication
        let server = self.server
        Task {
            guard let port = try? await server.localAddress.port else { return }
            board.identify(nodeID: replication?.configuration.nodeID, address: "\(host):\(port)") {
                replication.map { ($0.role, $0.epoch) }
            }
        }
        do {
            try await services.run()
        } catch {
            // A service that failed before the server listened leaves its address to nobody.
            server.abandon()
            if ownsEventLoops { try? await group.shutdownGracefully() }
            await controlPlane?.shutdown()
            await moverThread?.shutdown()
            throw error
        }
        server.abandon()
        await controlPlane?.shutdown()
        await moverThread?.shutdown()
        if ownsEventLoops { try await group.shutdownGracefully() }
    }

    /// Starts a graceful shutdown; `run()` returns when it is done.
    public func triggerGracefulShutdown() async {
        await services.triggerGracefulShutdown()
    }
}
