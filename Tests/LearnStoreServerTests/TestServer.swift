import Foundation
import LearnStoreClient
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreServer
import LearnStoreTestSupport
import LearnStoreTokens
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

let testSecret = "test-secret-0123456789abcdef-0123456789abcdef"
let allScopes: Scopes = [.recordsRead, .recordsWrite, .outcomesRead, .outcomesWrite, .admin]

/// A real LearnStore server on an ephemeral loopback port, in this process, built by
/// `LearnStoreApplication` as `learnstore serve` builds it.
final class TestServer: Sendable {
    /// The application now running (a new one after a restart in place) and its client port.
    private final class Current: Sendable {
        let state: Mutex<(application: LearnStoreApplication, port: Int, stopping: Bool)>
        init(_ application: LearnStoreApplication, port: Int) { state = Mutex((application, port, false)) }
    }

    private let current: Current
    let runTask: Task<Void, any Error>
    let clock: any EngineClock

    var application: LearnStoreApplication { current.state.withLock { $0.application } }
    /// The client port; a node that started again in place listens on a new one.
    var port: Int { current.state.withLock { $0.port } }
    var server: LearnStoreServer { application.server }
    var group: MultiThreadedEventLoopGroup { application.group }
    /// The metrics endpoint's port (`configure` sets `metricsPort`; 0 picks a free one).
    var metricsPort: Int? { application.metricsEndpoint?.localAddress?.port }

    /// Starts a server. With `persistence`, it recovers from the data directory, runs a WAL and
    /// takes snapshots, and this returns once recovery is done; without, data lives in memory.
    /// `stayLoading`: an in-memory server that answers LOADING until `finishLoading()`.
    /// `restartsInPlace`: a cluster node that asks to start again (a fenced primary the controller
    /// replaced) does, on the same data directory, as `learnstore serve` does; otherwise it stops.
    static func start(
        configure: (inout ServerConfiguration) -> Void = { _ in }, clock: any EngineClock = SystemClock(),
        persistence: PersistenceConfiguration? = nil, stayLoading: Bool = false, restartsInPlace: Bool = false
    ) async throws -> TestServer {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.metricsPort = nil
        configuration.eventLoops = 2
        configuration.authentication.hmacSecrets = [testSecret]
        // The suite shares two cores among hundreds of tests; a test's client may take seconds to
        // mint a token. The handshake timeout has tests of its own, which set short values.
        configuration.handshakeTimeoutSeconds = 120
        configure(&configuration)
        let application = try await LearnStoreApplication(
            configuration: configuration, persistence: persistence, clock: clock, logger: testLogger("test-server"),
            startsLoading: stayLoading)
        let settled = configuration
        var restart: (@Sendable () async throws -> LearnStoreApplication)?
        if restartsInPlace {
            restart = { @Sendable in
                try await LearnStoreApplication(configuration: settled, persistence: persistence, clock: clock, logger: testLogger("test-server"))
            }
        }
        let current = Current(application, port: 0)
        let task = try await run(application, recovering: persistence != nil, current: current, restart: restart)
        let port = try await application.localAddress.port!
        current.state.withLock { $0.port = port }
        return TestServer(current: current, task: task, clock: clock)
    }

    /// Runs `application` in a task; with `recovering`, returns once recovery is done.
    static func run(_ application: LearnStoreApplication, recovering: Bool) async throws -> Task<Void, any Error> {
        try await run(application, recovering: recovering, current: Current(application, port: 0), restart: nil)
    }

    /// Runs `application` in a task; with `recovering`, returns once recovery is done. With `restart`,
    /// a node that asks to start again is replaced by the application `restart` makes.
    private static func run(
        _ application: LearnStoreApplication, recovering: Bool, current: Current, restart: (@Sendable () async throws -> LearnStoreApplication)?
    ) async throws -> Task<Void, any Error> {
        let failure = Mutex<String?>(nil)
        let task = Task {
            var running = application
            while true {
                do {
                    try await running.run()
                    return
                } catch let asked as NodeRestartRequested {
                    guard let restart, !current.state.withLock({ $0.stopping }) else { throw asked }
                    running = try await restart()
                    let next = running
                    let stopping = current.state.withLock { state in
                        state.application = next
                        return state.stopping
                    }
                    // Its client port, once it listens; and a stop that came meanwhile stops it too.
                    Task {
                        guard let port = try? await next.localAddress.port else { return }
                        current.state.withLock { $0.port = port }
                        if stopping { await next.triggerGracefulShutdown() }
                    }
                } catch {
                    failure.withLock { $0 = "\(error)" }
                    throw error
                }
            }
        }
        let runtime = application.context.runtime
        if recovering {
            // A deadline, not a wait: generous because the whole suite shares two cores.
            guard await eventually(within: 120, { !runtime.isLoading || failure.withLock({ $0 }) != nil }), !runtime.isLoading else {
                await application.triggerGracefulShutdown()
                _ = try? await task.value
                throw LearnStoreError(.loading, "the persistence service did not finish recovery: \(failure.withLock { $0 } ?? "timed out")")
            }
        }
        return task
    }

    private init(current: Current, task: Task<Void, any Error>, clock: any EngineClock) {
        self.current = current
        self.runTask = task
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
        let application = current.state.withLock { state in
            state.stopping = true
            return state.application
        }
        await application.triggerGracefulShutdown()
        try await runTask.value
    }
}

/// Test servers log warnings and errors only.
func testLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = .warning
    return logger
}

