/// How much of the WAL the change feed keeps for subscribers, whatever the snapshots already cover:
/// segments are kept while the newest ones total at most `bytes` and were written within
/// `milliseconds` (both limits apply, as Kafka's `retention.bytes` and `retention.ms` do). A subscriber
/// resuming from a change outside the window gets FEED_TRUNCATED.
public struct FeedRetention: Sendable, Equatable {
    public var bytes: Int
    public var milliseconds: Int64

    public init(bytes: Int, milliseconds: Int64) {
        self.bytes = max(0, bytes)
        self.milliseconds = max(0, milliseconds)
    }

    /// Only what the snapshots need: the feed serves what happens to be left.
    public static let none = FeedRetention(bytes: 0, milliseconds: 0)
    /// `learnstore serve`'s default: one GiB, one hour.
    public static let standard = FeedRetention(bytes: 1 << 30, milliseconds: 3_600_000)
}
