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
import Synchronization

let testSecret = "test-secret-0123456789abcdef-0123456789abcdef"
let allScopes: Scopes = [.recordsRead, .recordsWrite, .outcomesRead, .outcomesWrite, .admin]

/// A real LearnStore server on an ephemeral loopback port, in this process.
final class TestServer: Sendable {
    let server: LearnStoreServer
    let services: ServiceGroup
    let group: MultiThreadedEventLoopGroup
    let runTask: Task<Void, any Error>
    let port: Int
    let clock: any EngineClock

    /// Starts a server. With `persistence`, it runs a `PersistenceService` wired as `learnstore serve`
    /// wires it (deferred log and commit tracker, recovery before data requests are served) and returns
    /// once recovery is done; `log` and `commits` are then unused.
    static func start(
        configure: (inout ServerConfiguration) -> Void = { _ in }, clock: any EngineClock = SystemClock(),
        log: any MutationLog = DiscardingLog(), commits: any CommitTracker = ImmediateCommitTracker(),
        persistence: PersistenceConfiguration? = nil, stayLoading: Bool = false
    ) async throws -> TestServer {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.metricsPort = nil
        configuration.eventLoops = 2
        configuration.authentication.hmacSecrets = [testSecret]
        configure(&configuration)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoops)
        let placement = TenantPlacement(group: group)
        let deferredLog = DeferredLog()
        let deferredCommits = DeferredCommitTracker()
        let registry = placement.makeRegistry(limits: EngineLimits(), clock: clock, log: persistence == nil ? log : deferredLog)
        let runtime = ServerRuntimeState(loading: persistence != nil || stayLoading)
        var logger = Logger(label: "test-server")
        logger.logLevel = .warning
        let context = ServerContext(
            configuration: configuration, registry: registry, verifier: try await TokenVerifier(configuration: configuration.authentication),
            metrics: ServerMetrics(), commits: persistence == nil ? commits : deferredCommits, runtime: runtime, clock: clock,
            logger: logger, placement: placement, info: { _ in "{\"server\":\"learnstore\"}" })
        let server = LearnStoreServer(context: context, group: group)
        var members: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let persistence {
            // As in ServeCommand: services stop in reverse order, so the server drains before the
            // persistence service takes its last snapshot round and closes the WAL.
            let service = PersistenceService(configuration: persistence, context: context, log: deferredLog, commits: deferredCommits)
            members.append(.init(service: service, failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        members.append(.init(service: server))
        let services = ServiceGroup(configuration: .init(services: members, logger: logger))
        let failure = Mutex<String?>(nil)
        let task = Task {
            do {
                try await services.run()
            } catch {
                failure.withLock { $0 = "\(error)" }
                throw error
            }
        }
        let address = try await server.localAddress
        if persistence != nil {
            guard await eventually(within: 30, { !runtime.isLoading || failure.withLock({ $0 }) != nil }), !runtime.isLoading else {
                await services.triggerGracefulShutdown()
                _ = try? await task.value
                try await group.shutdownGracefully()
                throw LearnStoreError(.loading, "the persistence service did not finish recovery: \(failure.withLock { $0 } ?? "timed out")")
            }
        }
        return TestServer(server: server, services: services, group: group, task: task, port: address.port!, clock: clock)
    }

    private init(server: LearnStoreServer, services: ServiceGroup, group: MultiThreadedEventLoopGroup, task: Task<Void, any Error>, port: Int, clock: any EngineClock) {
        self.server = server
        self.services = services
        self.group = group
        self.runTask = task
        self.port = port
        self.clock = clock
    }

    func token(tenant: String = "tenant_a", person: UUID16 = UUID16(high: 7, low: 7), app: String? = nil, scopes: Scopes = allScopes,
               lifetime: Int64 = 3600, issuedAt: Timestamp? = nil, notBefore: Timestamp? = nil, secret: String = testSecret) async throws -> String {
        try await TokenMinter(secret: secret).mint(
            tenantID: tenant, person: person, appID: app, scopes: scopes, issuedAt: issuedAt ?? clock.now(),
            lifetimeSeconds: lifetime, notBefore: notBefore)
    }

    func client(tenant: String = "tenant_a", app: String? = nil, scopes: Scopes = allScopes, connections: Int = 2) async throws -> LearnStoreClient {
        let token = try await token(tenant: tenant, app: app, scopes: scopes)
        return try await LearnStoreClient(ClientConfiguration(host: "127.0.0.1", port: port, token: token, connections: connections))
    }

    func stop() async throws {
        await services.triggerGracefulShutdown()
        try await runTask.value
        try await group.shutdownGracefully()
    }
}

/// Polls `condition` until it holds or `seconds` pass (tests never sleep to wait for a state).
func eventually(within seconds: Double = 5, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        await pollInterval()
    }
    return try await condition()
}

/// `eventually` for conditions that need no `await`.
func eventually(within seconds: Double = 5, _ condition: () throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        await pollInterval()
    }
    return try condition()
}

/// The pause between two polls of a condition (a poll interval, not a wait for the condition).
func pollInterval() async {
    let loop = MultiThreadedEventLoopGroup.singleton.next()
    try? await loop.scheduleTask(in: .milliseconds(10)) {}.futureResult.get()
}
