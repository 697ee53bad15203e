import LearnStoreModel
import NIOCore
import NIOPosix

/// A client of a cluster that follows its primary: it asks the seeds' TOPOLOGY where the primary is,
/// connects there, and when a request fails with MOVED, NOT_PRIMARY, OUTCOME_UNKNOWN or a lost connection (a failover),
/// it finds the primary again and retries, at most `attempts` times. In a partitioned cluster the
/// primary is that of the group holding the token's tenant (a seed of another group answers MOVED). Give writes an idempotency key:
/// a retried write that reached the old primary is then not applied twice (docs/CLUSTER.md). Tasks
/// may share one: a request that fails on a connection another task has already replaced retries on
/// the replacement.
public actor ClusterClient {
    public let seeds: [String]
    private let configuration: ClientConfiguration
    private let attempts: Int
    private var current: (address: String, client: LearnStoreClient)?
    /// The address of the last primary a request failed on: asked last for TOPOLOGY, since a node that
    /// was just replaced may be starting again and slow to answer.
    private var lastFailed: String?
    /// The event loops of every connection it opens (NIO's shared ones, never shut down): a client it
    /// drops only closes its connections, and requests still in flight there fail and are retried.
    private let group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

    /// `seeds` are client addresses (`host:port`) of any nodes; `configuration` gives the token and
    /// the connection settings (its host and port are replaced by the primary's, and its reconnect
    /// attempts by none: finding the primary again is this client's retry).
    public init(seeds: [String], configuration: ClientConfiguration, attempts: Int = 5) {
        self.seeds = seeds
        self.configuration = configuration
        self.attempts = max(1, attempts)
    }

    /// Runs `body` against the primary, following it across failovers.
    public func run<T: Sendable>(_ body: @Sendable (LearnStoreClient) async throws(LearnStoreError) -> T) async throws(LearnStoreError) -> T {
        var last = LearnStoreError(.connectionFailed, "no attempt made")
        for attempt in 0..<attempts {
            var used: LearnStoreClient?
            do {
                let client = try await primary(hint: attempt == 0 ? nil : last.primaryAddress)
                used = client
                return try await body(client)
            } catch where [.moved, .notPrimary, .connectionFailed, .outcomeUnknown, .shuttingDown, .loading].contains(error.code) {
                last = error
                // Another task may have replaced the client meanwhile: that one is kept.
                if used == nil || current?.client === used {
                    lastFailed = current?.address ?? lastFailed
                    await drop()
                }
                try? await Task.sleep(for: .milliseconds(min(20 << attempt, 500)))
            }
        }
        throw last
    }

    /// The primary's address, as the first seed that answers TOPOLOGY knows it (the node a request
    /// last failed on asked last).
    public func primaryAddress() async throws(LearnStoreError) -> String {
        var failures: [String] = []
        for seed in seeds.filter({ $0 != lastFailed }) + seeds.filter({ $0 == lastFailed }) {
            do throws(LearnStoreError) {
                return try await primaryAddress(asking: seed)
            } catch {
                failures.append("\(seed): \(error.message)")
            }
        }
        throw LearnStoreError(.connectionFailed, "no seed named the primary (\(failures.joined(separator: "; ")))")
    }

    /// ``primaryAddress()`` as host and port.
    public func primaryHostPort() async throws(LearnStoreError) -> (host: String, port: Int) {
        let address = try await primaryAddress()
        guard let split = HostPort.split(address) else { throw LearnStoreError(.protocolViolation, "TOPOLOGY named the primary at '\(address)'") }
        return split
    }

    /// In a partitioned cluster a node of another group refuses the token's tenant with MOVED to the
    /// primary of the group that holds it: that is the answer.
    private func primaryAddress(asking seed: String) async throws(LearnStoreError) -> String {
        let client: LearnStoreClient
        let topology: JSONValue
        do {
            client = try await connect(seed)
            topology = try await client.topology()
        } catch {
            guard error.code == .moved, let address = error.primaryAddress else { throw error }
            return address
        }
        defer { Task { await client.shutdown() } }
        guard let primary = topology["primary"]?.stringValue,
            let node = topology["nodes"]?.arrayValue?.first(where: { $0["node_id"]?.stringValue == primary }),
            let address = node["address"]?.stringValue
        else { throw LearnStoreError(.notPrimary, "\(seed) does not know the primary's address yet") }
        return address
    }

    public func shutdown() async {
        await drop()
    }

    private func primary(hint: String?) async throws(LearnStoreError) -> LearnStoreClient {
        if let current { return current.client }
        let address: String
        if let hint { address = hint } else { address = try await primaryAddress() }
        let client = try await connect(address)
        // Another task connected while this one did: one client is enough.
        if let current {
            await client.shutdown()
            return current.client
        }
        current = (address, client)
        return client
    }

    private func drop() async {
        let dropped = current
        current = nil
        if let dropped { await dropped.client.shutdown() }
    }

    private func connect(_ address: String) async throws(LearnStoreError) -> LearnStoreClient {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            throw LearnStoreError(.validation, "'\(address)' is not host:port")
        }
        return try await LearnStoreClient(Self.settings(configuration, host: String(address[..<colon]), port: port), group: group)
    }

    /// The settings of a connection to one node: the caller's, at that address, and without the
    /// client's own reconnects. A node that stopped (a replaced primary starting again elsewhere) would
    /// otherwise be tried again with backoff for a second and a half before this client could ask
    /// where the primary went; finding another node is this client's retry.
    static func settings(_ configuration: ClientConfiguration, host: String, port: Int) -> ClientConfiguration {
        var settings = configuration
        settings.host = host
        settings.port = port
        settings.reconnectAttempts = 0
        return settings
    }
}
