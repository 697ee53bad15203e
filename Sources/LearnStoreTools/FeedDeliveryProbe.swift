import Histogram
import LearnStoreClient
import LearnStoreProtocol
import NIOCore
import NIOPosix
import Synchronization

/// The load tool's change-feed subscribers: each follows one tenant from now on and notes when every
/// change arrives; joined with when the writers got their replies, that gives delivery latency.
final class FeedDeliveryProbe: Sendable {
    private let subscribers: [(tenant: Int, client: LearnStoreClient, task: Task<Void, Never>, received: ReceivedChanges)]

    final class ReceivedChanges: Sendable {
        let list = Mutex<[(sequence: UInt64, at: UInt64)]>([])
        var last: UInt64 { list.withLock { $0.last?.sequence ?? 0 } }
    }

    /// Subscribes `count` clients, spread over the tenants (`tokens`, one per tenant), on an event
    /// loop of their own: a subscriber is another process, whose reads do not queue behind the
    /// writers' replies.
    static func start(count: Int, host: String, port: Int, tokens: [String]) async throws -> FeedDeliveryProbe {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var subscribers: [(Int, LearnStoreClient, Task<Void, Never>, ReceivedChanges)] = []
        for index in 0..<count {
            let tenant = index % tokens.count
            let client = try await LearnStoreClient(ClientConfiguration(host: host, port: port, token: tokens[tenant], connections: 1), group: group)
            let received = ReceivedChanges()
            let subscription = client.feed.subscribe(from: .now, credit: 4096)
            let task = Task {
                // Stamped when the event loop read the change, as the writers' replies are: the
                // task iterating here waits for a thread of the load tool's busy pool.
                var changes = subscription.makeAsyncIterator()
                do {
                    while let change = try await changes.next() {
                        let at = (changes.receivedAt ?? .now()).uptimeNanoseconds
                        received.list.withLock { $0.append((change.sequence, at)) }
                    }
                } catch {
                    return
                }
            }
            subscribers.append((tenant, client, task, received))
        }
        return FeedDeliveryProbe(subscribers: subscribers, group: group)
    }

    private let group: MultiThreadedEventLoopGroup

    private init(subscribers: [(Int, LearnStoreClient, Task<Void, Never>, ReceivedChanges)], group: MultiThreadedEventLoopGroup) {
        self.subscribers = subscribers.map { (tenant: $0.0, client: $0.1, task: $0.2, received: $0.3) }
        self.group = group
    }

    /// Waits (at most `seconds`) until every subscriber has the newest acknowledged write of its tenant,
    /// then stops them and measures: per change, reply-to-writer → subscriber, 0 when the change came first.
    func finish(acknowledgements: [Int: [UInt64: UInt64]], seconds: Double = 5) async -> BenchReport.FeedFigures {
        let newest = acknowledgements.mapValues { $0.keys.max() ?? 0 }
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline, subscribers.contains(where: { $0.received.last < (newest[$0.tenant] ?? 0) }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        var histogram = Histogram<UInt64>(highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .three)
        var delivered = 0
        var missing = 0
        for subscriber in subscribers {
            subscriber.task.cancel()
            await subscriber.task.value
            await subscriber.client.shutdown()
            let received = subscriber.received.list.withLock { $0 }
            let acknowledged = acknowledgements[subscriber.tenant] ?? [:]
            delivered += received.count
            let receivedSequences = Set(received.map(\.sequence))
            let firstSeen = received.first?.sequence ?? .max
            missing += acknowledged.keys.filter { $0 >= firstSeen && !receivedSequences.contains($0) }.count
            for change in received {
                guard let acknowledgedAt = acknowledged[change.sequence] else { continue }
                histogram.record(change.at > acknowledgedAt ? change.at - acknowledgedAt : 0)
            }
        }
        try? await group.shutdownGracefully()
        return BenchReport.FeedFigures(
            subscribers: subscribers.count, changes: delivered, undelivered: missing, latency: BenchReport.summarize("feed delivery", histogram))
    }
}
