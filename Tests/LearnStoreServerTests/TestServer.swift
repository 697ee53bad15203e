import Foundation
import LearnStoreClient
import LearnStoreEngine
import LearnStoreModel
import LearnStoreServer
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

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

    static func start(
        configure: (inout ServerConfiguration) -> Void = { _ in }, clock: any EngineClock = SystemClock(),
        log: any MutationLog = DiscardingLog(), commits: any CommitTracker = ImmediateCommitTracker()
    ) async throws -> TestServer {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.metricsPort = nil
        configuration.eventLoops = 2
        configuration.authentication.hmacSecrets = [testSecret]
        configure(&configuration)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoops)
        let placement = TenantPlacement(group: group)
        let registry = placement.makeRegistry(limits: EngineLimits(), clock: clock, log: log)
        let runtime = ServerRuntimeState(loading: false)
        var logger = Logger(label: "test-server")
        logger.logLevel = .warning
        let context = ServerContext(
            configuration: configuration, registry: registry, verifier: try await TokenVerifier(configuration: configuration.authentication),
            metrics: ServerMetrics(), commits: commits, runtime: runtime, clock: clock, logger: logger, placement: placement,
            info: { "{\"server\":\"learnstore\"}" })
        let server = LearnStoreServer(context: context, group: group)
        let services = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: logger))
        let task = Task { try await services.run() }
        let address = try await server.localAddress
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
