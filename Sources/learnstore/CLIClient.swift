import LearnStoreClient
import LearnStoreModel

/// The server a client command talks to: the one of `--host`/`--port`, or with `--seeds` the cluster's
/// primary, followed across a failover. Each ``run(_:)`` is one step of the command that may be sent
/// again whole: with `--seeds`, a step that fails with MOVED, NOT_PRIMARY, SHUTTING_DOWN, LOADING or a
/// lost connection is sent again to the primary the seeds name then (up to 20 attempts, about 10 s,
/// long enough for a failover). Steps that write are safe to send again: creates carry an idempotency
/// key, the other writes set a state that a second application leaves as it is.
struct CLIClient: Sendable {
    private enum Target: Sendable {
        case server(LearnStoreClient)
        case cluster(ClusterClient)
    }

    private let target: Target

    static let clusterAttempts = 20

    init(server: LearnStoreClient) { target = .server(server) }

    init(cluster: ClusterClient) { target = .cluster(cluster) }

    var followsFailovers: Bool {
        if case .cluster = target { return true }
        return false
    }

    func run<T: Sendable>(_ step: @Sendable (LearnStoreClient) async throws(LearnStoreError) -> T) async throws(LearnStoreError) -> T {
        switch target {
        case .server(let client): return try await step(client)
        case .cluster(let cluster): return try await cluster.run(step)
        }
    }

    func shutdown() async {
        switch target {
        case .server(let client): await client.shutdown()
        case .cluster(let cluster): await cluster.shutdown()
        }
    }
}

extension ClientOptions {
    /// The client of a command (see ``CLIClient``).
    func session() async throws -> CLIClient {
        let settings = try Settings(configFile: config)
        guard let seeds = settings.string("seeds", seeds) else { return CLIClient(server: try await connect()) }
        guard let token = settings.string("token", token) else {
            throw CLIError.usage("no token: pass --token or set LEARNSTORE_TOKEN (mint one with 'learnstore token mint')")
        }
        let cluster = ClusterClient(seeds: try Self.seedList(seeds), configuration: ClientConfiguration(token: token, connections: 1),
                                    attempts: CLIClient.clusterAttempts)
        // Fails here, as a direct connection would, when no seed names a primary.
        _ = try await cluster.run { (client) throws(LearnStoreError) in client.configuration.port }
        return CLIClient(cluster: cluster)
    }

    /// The `--seeds` addresses (none without the option).
    func seedAddresses() throws -> [String] {
        let settings = try Settings(configFile: config)
        return try settings.string("seeds", seeds).map(Self.seedList) ?? []
    }
}
