import LearnStoreServer

/// Range checks of the connection limits `serve` is given, so a typo in a config file is a usage
/// error at start, not an overflow or a server that cannot serve anyone.
enum ServeLimits {
    /// A year: longer intervals are typos, and the scheduler's clock arithmetic stays far from overflow.
    static let maximumSnapshotIntervalSeconds: Double = 365 * 86_400

    static func validate(_ configuration: ServerConfiguration) throws {
        func check(_ name: String, _ value: Int, _ range: ClosedRange<Int>) throws {
            guard range.contains(value) else { throw CLIError.usage("\(name) must be \(range.lowerBound) ... \(range.upperBound), not \(value)") }
        }
        func checkSeconds(_ name: String, _ value: Double, _ range: ClosedRange<Double>) throws {
            guard range.contains(value) else { throw CLIError.usage("\(name) must be \(range.lowerBound) ... \(range.upperBound) seconds, not \(value)") }
        }
        let gib = 1 << 30
        try check("max-frame-bytes", configuration.maximumFrameBytes, 1024...(256 << 20))
        try check("max-in-flight", configuration.maximumInFlight, 1...1 << 20)
        try check("max-connections", configuration.maximumConnections, 1...1 << 20)
        try check("handshake-max-frame-bytes", configuration.maximumHandshakeFrameBytes, 1024...configuration.maximumFrameBytes)
        try check("output-soft-limit", configuration.connectionOutputSoftLimitBytes, 4096...(64 * gib))
        try check("output-hard-limit", configuration.connectionOutputHardLimitBytes, configuration.connectionOutputSoftLimitBytes...(64 * gib))
        try check("output-budget", configuration.serverOutputBudgetBytes, configuration.connectionOutputSoftLimitBytes...(1024 * gib))
        try check("input-allowance", configuration.connectionInputAllowanceBytes, 0...configuration.maximumFrameBytes)
        try check("input-budget", configuration.serverInputBudgetBytes, configuration.maximumFrameBytes...(1024 * gib))
        try checkSeconds("handshake-timeout", configuration.handshakeTimeoutSeconds, 0.01...86_400)
        try check("feed-max-subscriptions", configuration.maximumFeedSubscriptions, 0...configuration.maximumConnections)
        try check("feed-max-subscriptions-per-tenant", configuration.maximumFeedSubscriptionsPerTenant, 0...configuration.maximumFeedSubscriptions)
        try check("feed-memory-records", configuration.feedMemoryRecordsPerTenant, 0...1_000_000)
        try checkSeconds("idle-timeout", configuration.idleTimeoutSeconds, 0.01...(365 * 86_400))
        try checkSeconds("ack-timeout", configuration.acknowledgementTimeoutSeconds, 0...86_400)
    }
}
