import LearnStoreModel
import LearnStoreProtocol
import NIOCore

/// `client.feed`: the tenant's committed changes, in order, resumable (docs/PROTOCOL.md, appendix D).
public struct FeedClient: Sendable {
    let client: LearnStoreClient

    /// The changes after `start`, as an `AsyncSequence` that reconnects and resumes by itself (after a
    /// lost connection, a server restart or shutdown, an expired token). It ends with an error it cannot
    /// get past: FEED_TRUNCATED (the changes are no longer kept: export the tenant and subscribe from the
    /// export's sequence), FORBIDDEN, VALIDATION, or when reconnecting has failed for `retryFor`.
    /// `credit` is how many changes may wait unread. `alsoAt` are client addresses (`host:port`) of other
    /// nodes of a cluster (replicas serve the feed too): a subscription that loses its node tries them
    /// in turn, so it follows a failover.
    public func subscribe(from start: FeedStart, credit: UInt32 = 1024, retryFor: Duration = .seconds(300), alsoAt: [String] = []) -> FeedSubscription {
        FeedSubscription(client: client, start: start, credit: max(2, min(credit, FeedMessages.maximumCredit)), retryFor: retryFor, alsoAt: alsoAt)
    }
}

extension LearnStoreClient {
    public var feed: FeedClient { FeedClient(client: self) }
}

public struct FeedSubscription: AsyncSequence, Sendable {
    public typealias Element = FeedChange
    let client: LearnStoreClient
    let start: FeedStart
    let credit: UInt32
    let retryFor: Duration
    let alsoAt: [String]

    public func makeAsyncIterator() -> Iterator {
        Iterator(cursor: FeedCursor(client: client, start: start, credit: credit, retryFor: retryFor, alsoAt: alsoAt))
    }

    public struct Iterator: AsyncIteratorProtocol {
        let cursor: FeedCursor
        public mutating func next() async throws -> FeedChange? { try await cursor.next() }

        /// When the change the last ``next()`` returned was read off its connection by the client's
        /// event loop: for delivery latency without the wait of the task that iterates.
        public var receivedAt: NIODeadline? { cursor.receivedAt }
    }
}

/// The subscriber's position and its current connection; used by one iterator at a time.
public final class FeedCursor: @unchecked Sendable {
    let client: LearnStoreClient
    let credit: UInt32
    private var start: FeedStart
    private var channel: FeedChannel?
    private var buffered: ArraySlice<FeedChange> = []
    /// When the frame of the buffered changes was read; see ``FeedSubscription/Iterator/receivedAt``.
    private var bufferedReceivedAt: NIODeadline?
    private(set) var receivedAt: NIODeadline?
    /// The current batch's end: once its changes are taken, everything up to it has been seen.
    private var batchThrough: UInt64?
    private var consumedSinceGrant: UInt32 = 0
    private var failures = 0
    /// When the current run of failed attempts began; the subscription gives up `retryFor` after it.
    private var failingSince: ContinuousClock.Instant?
    let retryFor: Duration
    /// After FEED_TRUNCATED: the oldest sequence a new subscription can start after.
    var truncatedAfter: UInt64?
    /// The last sequence the subscriber has seen (nil until the first SUBSCRIBE answer, when it started "now").
    public private(set) var position: UInt64?
    /// Where to subscribe: the client's server first, then the other nodes given; a failed attempt
    /// moves to the next.
    private var addresses: [(host: String, port: Int)]
    private var addressIndex = 0

    init(client: LearnStoreClient, start: FeedStart, credit: UInt32, retryFor: Duration, alsoAt: [String] = []) {
        self.retryFor = retryFor
        addresses = [(client.configuration.host, client.configuration.port)] + alsoAt.compactMap(HostPort.split)
        self.client = client
        self.start = start
        self.credit = credit
        if case .after(let sequence) = start { position = sequence }
    }

    deinit {
        // A cursor may outlive its client: once the client has shut down, its event loops and
        // channels are gone, and nothing may be scheduled on them.
        if let channel, channel.channel.isActive { channel.channel.close(promise: nil) }
    }

    func next() async throws -> FeedChange? {
        let result: Result<FeedChange?, LearnStoreError>
        do throws(LearnStoreError) {
            result = .success(try await nextChange())
        } catch {
            result = .failure(error)
        }
        switch result {
        case .success(let change):
            return change
        case .failure(let error):
            if error.code == .feedTruncated { throw FeedTruncated(error: error, oldestSequence: truncatedAfter ?? 0, position: position ?? 0) }
            throw error
        }
    }

    private func nextChange() async throws(LearnStoreError) -> FeedChange? {
        while true {
            // A cancelled task ends the sequence (after the changes already received).
            if Task.isCancelled && buffered.isEmpty {
                await dropChannel()
                return nil
            }
            if let change = buffered.popFirst() {
                position = change.sequence
                receivedAt = bufferedReceivedAt
                consumedSinceGrant += 1
                if buffered.isEmpty, let through = batchThrough { position = max(position ?? 0, through) }
                if consumedSinceGrant >= credit / 2, let channel {
                    channel.grant(consumedSinceGrant)
                    consumedSinceGrant = 0
                }
                return change
            }
            if channel == nil {
                try await connect()
                // A failed attempt that may succeed later has backed off: try again.
                if channel == nil { continue }
            }
            do throws(LearnStoreError) {
                let received = try await channel!.next()
                bufferedReceivedAt = received.receivedAt
                try handle(received.frame)
                failures = 0
                failingSince = nil
            } catch {
                await dropChannel()
                guard Self.isRetriable(error) else { throw error }
                try await backOff(error)
            }
        }
    }

    private func handle(_ frame: Frame) throws(LearnStoreError) {
        if frame.header.isError {
            let error = (try? frame.readPayload { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) })
                ?? LearnStoreError(.protocolViolation, "malformed error response")
            if error.code == .feedTruncated { truncatedAfter = try? Self.oldestSequence(frame) }
            throw error
        }
        switch frame.header.opcode {
        case Opcode.subscribe:
            let response = try ClientConnection.decode(frame) { (r) throws(DecodeError) in try FeedMessages.decodeSubscribeResponse(from: &r) }
            position = response.afterSequence
        case Opcode.feedEvents:
            let batch = try ClientConnection.decode(frame) { (r) throws(DecodeError) in try FeedMessages.decodeBatch(from: &r) }
            // A change at or before the position was already seen (never sent twice by one server,
            // but a resumed stream starts strictly after it anyway).
            buffered = batch.changes.drop { $0.sequence <= (position ?? 0) }[...]
            batchThrough = batch.throughSequence
            if buffered.isEmpty { position = max(position ?? 0, batch.throughSequence) }
        default:
            break
        }
    }

    private func connect() async throws(LearnStoreError) {
        let request = SubscribeRequest(start: position.map { .after($0) } ?? start, credit: credit)
        consumedSinceGrant = 0
        var configuration = client.configuration
        (configuration.host, configuration.port) = addresses[addressIndex % addresses.count]
        do throws(LearnStoreError) {
            channel = try await FeedChannel.open(configuration, token: try await client.fetchToken(), request: request, group: client.group)
        } catch {
            if error.code == .moved, let moved = error.primaryAddress.flatMap(HostPort.split) {
                // A partitioned cluster: a node of another group named the tenant's group's primary.
                tryNext(moved)
            } else if !Self.isRetriable(error) {
                throw error
            }
            try await backOff(error)
        }
    }

    /// Puts `address` next in turn (at most 64 addresses are kept).
    private func tryNext(_ address: (host: String, port: Int)) {
        addressIndex %= addresses.count
        let next = addressIndex + 1
        if next < addresses.count, addresses[next] == address { return }
        if addresses.count < 64 { addresses.insert(address, at: next) } else { addresses[next % addresses.count] = address }
    }

    private func backOff(_ error: LearnStoreError) async throws(LearnStoreError) {
        failures += 1
        addressIndex += 1
        let now = ContinuousClock.now
        let since = failingSince ?? now
        failingSince = since
        guard now - since < retryFor else { throw error }
        let delay = min(2_000_000_000, 50_000_000 << UInt64(min(failures, 6)))
        try? await Task.sleep(nanoseconds: UInt64(delay))
    }

    private func dropChannel() async {
        await channel?.close()
        channel = nil
        buffered = []
        batchThrough = nil
    }

    /// What reconnecting can get past: a lost connection, a restart, an expired token, a full server,
    /// an old primary (another address, or the same after its restart as a replica).
    static func isRetriable(_ error: LearnStoreError) -> Bool {
        [.connectionFailed, .shuttingDown, .tokenExpired, .loading, .overloaded, .timeout, .storageUnavailable, .notYet, .notPrimary].contains(error.code)
    }

    /// The `u64` FEED_TRUNCATED carries after its error body.
    static func oldestSequence(_ frame: Frame) throws -> UInt64 {
        try frame.readPayload { (r) throws(DecodeError) in
            _ = try ErrorBody.decode(from: &r)
            return try r.readU64()
        }
    }

    public func close() async { await dropChannel() }
}

/// The server no longer keeps the changes after `position`: re-read the tenant (an export gives the
/// sequence it was taken at) and subscribe after that sequence. `oldestSequence` is the oldest a new
/// subscription could start after when the server refused.
public struct FeedTruncated: Error, Sendable, CustomStringConvertible {
    public var error: LearnStoreError
    public var oldestSequence: UInt64
    public var position: UInt64

    public var description: String { "\(error)" }
}
