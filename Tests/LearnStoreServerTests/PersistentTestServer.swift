import Foundation
import LearnStoreClient
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreServer
import LearnStoreTokens
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A real LearnStore server with persistence (WAL, snapshots, recovery) on a data directory, built by
/// `LearnStoreApplication` as `learnstore serve` builds it, in this process. Stopping it is a graceful
/// shutdown (last snapshot round, WAL closed, LOCK released), so another can start on the same directory.
final class PersistentTestServer: Sendable {
    let application: LearnStoreApplication
    let runTask: Task<Void, any Error>
    let port: Int
    let dataDirectory: String

    var server: LearnStoreServer { application.server }
    var persistence: PersistenceService { application.persistence! }

    static func start(dataDirectory: String, eventLoops: Int = 2) async throws -> PersistentTestServer {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.metricsPort = nil
        configuration.eventLoops = eventLoops
        configuration.dataDirectory = dataDirectory
        configuration.authentication.hmacSecrets = [testSecret]
        let application = try await LearnStoreApplication(
            configuration: configuration, persistence: .forTests(dataDirectory), logger: testLogger("persistent-test-server"))
        let task = try await TestServer.run(application, recovering: true)
        return PersistentTestServer(application: application, task: task, port: try await application.localAddress.port!,
                                    dataDirectory: dataDirectory)
    }

    private init(application: LearnStoreApplication, task: Task<Void, any Error>, port: Int, dataDirectory: String) {
        self.application = application
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
        await application.triggerGracefulShutdown()
        try await runTask.value
    }
}

extension PersistenceConfiguration {
    /// Small segments (a few hundred writes fill one) and snapshots only when a test asks or at shutdown.
    static func forTests(_ directory: String) -> PersistenceConfiguration {
        var configuration = PersistenceConfiguration(dataDirectory: directory)
        configuration.segmentBytes = 1 << 20
        configuration.snapshotIntervalSeconds = nil
        configuration.snapshotWALBytes = nil
        return configuration
    }
}
