import LearnStoreModel
import LearnStoreProtocol
import NIOCore
import NIOPosix
import Synchronization

/// How a client reaches and authenticates to a server.
public struct ClientConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Returns a token; called on connect and again when the server says the token expired.
    public var token: @Sendable () async throws -> String
    /// Connections in the pool; requests are spread over them and pipelined on each.
    public var connections: Int
    /// Reconnect attempts (with exponential backoff from 50 ms to 2 s) before a request fails.
    public var reconnectAttempts: Int
    public var clientName: String
    /// A change-feed connection that receives nothing for this long is closed and the subscription
    /// resumes on a new one. The server sends a heartbeat after 5 s of silence, so the default
    /// (15 s) is three missed heartbeats.
    public var feedSilenceLimit: Duration = .seconds(15)
    /// How long a change-feed connection waits for the answer to its SUBSCRIBE (the server first waits
    /// until the tenant's last write is durable) before it is closed and the subscription tried again.
    /// A subscription from "now" takes its position from that answer.
    public var feedSubscribeTimeout: Duration = .seconds(30)
    /// A request unanswered for this long fails with TIMEOUT, with every request behind it on its
    /// connection, which is closed (the next request opens another). Longer than the waits a server
    /// bounds itself by default (an acknowledgement 30 s, WAIT_SEQUENCE 60 s), so only a server that
    /// stopped answering hits it.
    public var requestTimeout: Duration = .seconds(120)

    public init(host: String = "127.0.0.1", port: Int = 7878, connections: Int = 2, reconnectAttempts: Int = 5,
                clientName: String = "learnstore-swift", token: @escaping @Sendable () async throws -> String) {
        self.host = host
        self.port = port
        self.token = token
        self.connections = max(1, connections)
        self.reconnectAttempts = max(0, reconnectAttempts)
        self.clientName = clientName
    }

    public init(host: String = "127.0.0.1", port: Int = 7878, token: String, connections: Int = 2) {
        self.init(host: host, port: port, connections: connections, token: { token })
    }
}

/// The LearnStore client: a small pool of pipelined connections with reconnect and re-authentication.
/// `Sendable`; share one per process.
///
/// ```swift
/// let client = try await LearnStoreClient(ClientConfiguration(port: 7878, token: jwt))
/// let record = try await client.performance.learningRecords.create(RecordBody(personID: p, title: "AWS SAA"))
/// ```
public final class LearnStoreClient: Sendable {
    public let configuration: ClientConfiguration
    let group: any EventLoopGroup
    private let ownsGroup: Bool
    private let pool: Mutex<Pool>

    struct Pool {
        var connections: [ClientConnection?]
        /// A connect in progress per slot: every request that finds the slot empty waits for the same
        /// one, so a burst of first requests opens one connection, not one each.
        var connecting: [Task<ClientConnection, any Error>?]
        var next = 0
        var isShutDown = false

        init(size: Int) {
            connections = Array(repeating: nil, count: size)
            connecting = Array(repeating: nil, count: size)
        }
    }

    /// Connects the first connection eagerly, so a wrong address or token fails here, at once.
    public init(_ configuration: ClientConfiguration, group: (any EventLoopGroup)? = nil) async throws(LearnStoreError) {
        self.configuration = configuration
        self.ownsGroup = group == nil
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.pool = Mutex(Pool(size: configuration.connections))
        do {
            _ = try await connection(slot: 0)
        } catch {
            // The group this client made has a thread of its own: a failed start must not leave it running.
            if ownsGroup { try? await self.group.shutdownGracefully() }
            throw error
        }
    }

    public func shutdown() async {
        let (connections, connecting) = pool.withLock { pool in
            defer {
                pool.connections = Array(repeating: nil, count: pool.connections.count)
                pool.connecting = Array(repeating: nil, count: pool.connecting.count)
                pool.isShutDown = true
            }
            return (pool.connections.compactMap { $0 }, pool.connecting.compactMap { $0 })
        }
        for task in connecting { task.cancel() }
        for connection in connections { await connection.close() }
        if ownsGroup { try? await group.shutdownGracefully() }
    }

    public var performance: Performance { Performance(client: self) }

    /// The `client.performance` namespace: LearningRecord operations (docs/PROTOCOL.md 4.5).
    public struct Performance: Sendable {
        let client: LearnStoreClient
        public var learningRecords: LearningRecordsClient { LearningRecordsClient(client: client) }
    }

    // MARK: connections

    func connection(slot: Int) async throws(LearnStoreError) -> ClientConnection {
        let found: Result<ClientConnection, LearnStoreError>? = pool.withLock { pool in
            if pool.isShutDown { return .failure(LearnStoreError(.connectionFailed, "the client was shut down")) }
            if let existing = pool.connections[slot], existing.isActive { return .success(existing) }
            return nil
        }
        if let found { return try found.get() }
        let connect = pool.withLock { pool in
            if let pending = pool.connecting[slot] { return pending }
            let task = Task { try await self.connect(slot: slot) }
            pool.connecting[slot] = task
            return task
        }
        do {
            return try await connect.value
        } catch let error as LearnStoreError {
            throw error
        } catch {
            throw LearnStoreError(.connectionFailed, "\(error)")
        }
    }

    /// Connects and authenticates the connection of `slot`, retrying with backoff; the result goes in
    /// the pool, and the slot is free for the next attempt either way.
    private func connect(slot: Int) async throws -> ClientConnection {
        do {
            let connection = try await connectWithRetries()
            let kept = pool.withLock { pool in
                pool.connecting[slot] = nil
                guard !pool.isShutDown else { return false }
                pool.connections[slot] = connection
                return true
            }
            if !kept {
                await connection.close()
                throw LearnStoreError(.connectionFailed, "the client was shut down")
            }
            return connection
        } catch {
            pool.withLock { $0.connecting[slot] = nil }
            throw error
        }
    }

    private func connectWithRetries() async throws(LearnStoreError) -> ClientConnection {
        var delay: UInt64 = 50_000_000
        var lastError = LearnStoreError(.connectionFailed, "not connected")
        for attempt in 0...configuration.reconnectAttempts {
            if attempt > 0 {
                try? await Task.sleep(nanoseconds: delay)
                delay = min(delay * 2, 2_000_000_000)
            }
            do throws(LearnStoreError) {
                return try await ClientConnection.connect(
                    host: configuration.host, port: configuration.port, group: group, clientName: configuration.clientName,
                    requestTimeout: TimeAmount(configuration.requestTimeout), token: try await fetchToken())
            } catch {
                lastError = error
                // A refused token will not get better by retrying.
                if error.code != .connectionFailed && error.code != .loading { throw error }
            }
        }
        throw lastError
    }

    func fetchToken() async throws(LearnStoreError) -> String {
        do {
            return try await configuration.token()
        } catch let error as LearnStoreError {
            throw error
        } catch {
            throw LearnStoreError(.unauthenticated, "the token provider failed: \(error)")
        }
    }

    /// Sends a request on the next pooled connection, re-authenticating once if the token expired.
    public func request(opcode: UInt8, payload: @escaping (inout ByteWriter) -> Void) async throws(LearnStoreError) -> Frame {
        let slot = pool.withLock { pool in
            defer { pool.next = (pool.next + 1) % pool.connections.count }
            return pool.next
        }
        let connection = try await connection(slot: slot)
        do throws(LearnStoreError) {
            return try await connection.send(opcode: opcode, payload: payload)
        } catch where error.code == .tokenExpired {
            try await connection.authenticate(token: try await fetchToken())
            return try await connection.send(opcode: opcode, payload: payload)
        }
    }

    /// The server's INFO document.
    public func info() async throws(LearnStoreError) -> JSONValue {
        let frame = try await request(opcode: Opcode.info) { _ in }
        return try Self.json(frame)
    }

    /// Where the cluster's primary and nodes are, as this server knows (docs/PROTOCOL.md 4.4b):
    /// `{partitions, epoch, primary, this_node, nodes: [{node_id, address, role}]}`.
    public func topology() async throws(LearnStoreError) -> JSONValue {
        let frame = try await request(opcode: Opcode.topology) { _ in }
        return try Self.json(frame)
    }

    /// Waits until the token's tenant has applied `sequence` on this server (a replica), at most
    /// `timeout` (≤ 60 s), and returns the tenant's sequence there. Reads sent after it returns see
    /// every write up to `sequence` (each write's reply carries its sequence). Fails with `NOT_YET`
    /// when the time runs out first.
    public func waitForSequence(_ sequence: UInt64, timeout: Duration = .seconds(5)) async throws(LearnStoreError) -> UInt64 {
        let milliseconds = UInt32(clamping: max(0, timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000))
        let frame = try await request(opcode: Opcode.waitSequence) { writer in
            writer.writeU64(sequence)
            writer.writeU32(milliseconds)
        }
        do {
            return try frame.readPayload { (r) throws(DecodeError) in
                let reached = try r.readU64()
                try r.expectEnd()
                return reached
            }
        } catch {
            throw LearnStoreError(.protocolViolation, "WAIT_SEQUENCE answer: \(error)")
        }
    }

    /// Round-trip time of a PING.
    public func ping() async throws(LearnStoreError) -> Duration {
        let start = ContinuousClock.now
        _ = try await request(opcode: Opcode.ping) { $0.writeBytes(Array("ping".utf8)) }
        return ContinuousClock.now - start
    }

    static func json(_ frame: Frame) throws(LearnStoreError) -> JSONValue {
        let bytes = Array(frame.payload.readableBytesView)
        do { return try JSONValue.parse(bytes) } catch {
            throw LearnStoreError(.protocolViolation, "the server sent invalid JSON: \(error)")
        }
    }
}
