import Synchronization

/// How the server's subscriptions read: changes taken from the tenants' recent changes in memory, and
/// the times a subscription fell behind them and went back to the WAL files (metrics, tests).
public final class FeedStatistics: Sendable {
    private let fromMemory = Atomic<Int>(0)
    private let fallbacks = Atomic<Int>(0)

    public init() {}

    public var changesFromMemory: Int { fromMemory.load(ordering: .relaxed) }
    public var fellBehindMemory: Int { fallbacks.load(ordering: .relaxed) }

    func tookFromMemory(_ changes: Int) { if changes > 0 { fromMemory.add(changes, ordering: .relaxed) } }
    func fellBehind() { fallbacks.add(1, ordering: .relaxed) }
}
