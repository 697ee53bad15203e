import Foundation
import LearnStoreClient
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreServer
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A real LearnStore server with persistence (WAL, snapshots, recovery) on a data directory, wired as
/// `learnstore serve` wires it, in this process. Stopping it is a graceful shutdown (last snapshot
/// round, WAL closed, LOCK released), so another can start on the same directory.
final class PersistentTestServer: Sendable {
    let server: LearnStoreServer
    let persistence: PersistenceService
    let services: ServiceGroup
    let group: MultiThreadedEventLoopGroup
    let runTask: Task<Void, any Error>
    let port: Int
    let dataDirectory: String

    static func start(dataDirectory: String, eventLoops: Int = 2) async throws -> PersistentTestServer {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.metricsPort = nil
        configuration.eventLoops = eventLoops
        configuration.dataDirectory = dataDirectory
        configuration.authentication.hmacSecrets = [testSecret]
        var persistenceConfiguration = PersistenceConfiguration(dataDirectory: dataDirectory)
        persistenceConfiguration.segmentBytes = 1 << 20
        persistenceConfiguration.snapshotIntervalSeconds = nil
        persistenceConfiguration.snapshotWALBytes = nil
        let group = MultiThreadedEventLoopGroup(numberOfThreads: eventLoops)
        let clock = SystemClock()
        let placement = TenantPlacement(group: group)
        let log = DeferredLog()
        let commits = DeferredCommitTracker()
        let registry = placement.makeRegistry(limits: EngineLimits(), clock: clock, log: log)
        var logger = Logger(label: "persistent-test-server")
        logger.logLevel = .warning
        let runtime = ServerRuntimeState(loading: true)
        let context = ServerContext(
            configuration: configuration, registry: registry, verifier: try await TokenVerifier(configuration: configuration.authentication),
            metrics: ServerMetrics(), commits: commits, runtime: runtime, clock: clock, logger: logger, placement: placement,
            info: { _ in "{\"server\":\"learnstore\"}" })
        let server = LearnStoreServer(context: context, group: group)
        let persistence = PersistenceService(configuration: persistenceConfiguration, context: context, log: log, commits: commits)
        let services = ServiceGroup(configuration: .init(
            services: [.init(service: persistence, failureTerminationBehavior: .gracefullyShutdownGroup), .init(service: server)],
            logger: logger))
        let task = Task { try await services.run() }
        let address = try await server.localAddress
        guard await eventually(within: 30, { !runtime.isLoading }) else { throw LearnStoreError(.loading, "recovery did not finish") }
        return PersistentTestServer(server: server, persistence: persistence, services: services, group: group, task: task,
                                    port: address.port!, dataDirectory: dataDirectory)
    }

    private init(server: LearnStoreServer, persistence: PersistenceService, services: ServiceGroup, group: MultiThreadedEventLoopGroup,
                 task: Task<Void, any Error>, port: Int, dataDirectory: String) {
        self.server = server
        self.persistence = persistence
        self.services = services
        self.group = group
        self.runTask = task
        self.port = port
        self.dataDirectory = dataDirectory
    }

    func token(tenant: String, scopes: Scopes = allScopes) async throws -> String {
        try await TokenMinter(secret: testSecret).mint(
            tenantID: tenant, person: UUID16(high: 7, low: 7), scopes: scopes, issuedAt: SystemClock().now(), lifetimeSeconds: 3600)
    }

    func client(tenant: String, scopes: Scopes = allScopes, connections: Int = 1) async throws -> LearnStoreClient {
        try await LearnStoreClient(ClientConfiguration(host: "127.0.0.1", port: port, token: try await token(tenant: tenant, scopes: scopes),
                                                       connections: connections))
    }

    func stop() async throws {
        await services.triggerGracefulShutdown()
        try await runTask.value
        try await group.shutdownGracefully()
    }
}
