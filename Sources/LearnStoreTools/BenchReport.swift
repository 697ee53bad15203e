import Foundation
import Histogram
import LearnStoreModel

/// The results of a load run: throughput, latency percentiles from HDR histograms, errors by code,
/// server CPU per operation, and throughput per second.
public struct BenchReport: Sendable {
    public struct Operation: Sendable {
        public var name: String
        public var count: Int
        public var percentilesNanoseconds: [(Double, UInt64)]
        public var maxNanoseconds: UInt64
        public var meanNanoseconds: Double
        /// (percentile, latency) points for the percentile-distribution plot.
        public var distribution: [(Double, UInt64)]
    }

    public var configuration: BenchConfiguration
    public var seconds = 0.0
    public var preloadSeconds: Double?
    public var preloadRecords = 0
    public var operations: [Operation] = []
    public var total = 0
    public var errors: [(code: UInt16, name: String, count: Int)] = []
    public var serverCPUSeconds: Double?
    public var perSecond: [Int] = []
    /// Connections replaced during the run (a failover followed with `--seeds`).
    public var reconnects = 0
    /// Replies without an error on the connections that replaced others (the run went on there).
    public var successesAfterReconnect = 0
    /// Requests whose connection closed before their reply: their outcome is unknown.
    public var unanswered = 0
    /// The longest stretch of the run without a successful reply, in tenths of a second.
    public var longestPauseTenths = 0
    public var all: Operation?
    /// With change-feed subscribers.
    public var feed: FeedFigures?

    public struct FeedFigures: Sendable {
        public var subscribers: Int
        public var changes: Int
        /// Acknowledged writes of a followed tenant, after its subscriber's first change, never delivered.
        public var undelivered: Int
        public var latency: Operation
    }

    init(configuration: BenchConfiguration) { self.configuration = configuration }

    public static let percentiles: [Double] = [50, 90, 99, 99.9]

    static func summarize(_ name: String, _ histogram: Histogram<UInt64>) -> Operation {
        let points: [Double] = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999]
        return Operation(
            name: name, count: Int(histogram.totalCount),
            percentilesNanoseconds: percentiles.map { ($0, histogram.totalCount > 0 ? histogram.valueAtPercentile($0) : 0) },
            maxNanoseconds: histogram.totalCount > 0 ? histogram.max : 0, meanNanoseconds: histogram.totalCount > 0 ? histogram.mean : 0,
            distribution: points.map { ($0, histogram.totalCount > 0 ? histogram.valueAtPercentile($0) : 0) })
    }

    mutating func fill(from snapshot: BenchRunner.Snapshot, kinds: [BenchWorkload]) {
        operations = zip(kinds, snapshot.histograms).map { Self.summarize($0.0.rawValue, $0.1) }
        all = Self.summarize("all", snapshot.merged)
        total = snapshot.completed.reduce(0, +)
        errors = snapshot.errors.map { (code: $0.key, name: snapshot.errorNames[$0.key] ?? "UNKNOWN", count: $0.value) }.sorted { $0.count > $1.count }
        perSecond = snapshot.perSecond
        unanswered = snapshot.unanswered
        longestPauseTenths = Self.longestPause(snapshot.successesPerTenth, tenths: Int(seconds * 10))
    }

    /// The longest run of tenths without a successful reply among the first `tenths` of the run.
    static func longestPause(_ successes: [Int], tenths: Int) -> Int {
        var longest = 0
        var current = 0
        for tenth in 0..<max(0, tenths) {
            if tenth < successes.count && successes[tenth] > 0 {
                current = 0
            } else {
                current += 1
                longest = max(longest, current)
            }
        }
        return longest
    }

    public var throughput: Double { seconds > 0 ? Double(total) / seconds : 0 }
    public var serverMicrosecondsPerOperation: Double? { serverCPUSeconds.map { total > 0 ? $0 * 1e6 / Double(total) : 0 } }

    static func ms(_ nanoseconds: UInt64) -> String { String(format: "%.3f", Double(nanoseconds) / 1e6) }

    /// The human-readable summary.
    public var text: String {
        var lines: [String] = []
        let c = configuration
        let shape = c.rate.map { String(format: "open loop at %.0f req/s", $0) } ?? "pipeline \(c.pipeline)"
        lines.append("workload    \(c.mix.map { c.mix.count > 1 ? "\($0.0.rawValue)=\($0.1)" : $0.0.rawValue }.joined(separator: ","))  connections \(c.connections)  \(shape)  client threads \(c.clientThreads)")
        if let preloadSeconds {
            lines.append(String(format: "preload     %d records in %.2f s (%.0f records/s)", preloadRecords, preloadSeconds, Double(preloadRecords) / preloadSeconds))
        }
        lines.append(String(format: "duration    %.2f s (after %.1f s warm-up)", seconds, c.warmupSeconds))
        lines.append(String(format: "throughput  %.0f ops/s  (%d ops)", throughput, total))
        for operation in (operations.count > 1 ? [all!] + operations : operations) {
            let percentiles = operation.percentilesNanoseconds.map { "p\(Self.label($0.0)) \(Self.ms($0.1))" }.joined(separator: "  ")
            lines.append("latency ms  \(operation.name.padding(toLength: 15, withPad: " ", startingAt: 0)) \(percentiles)  max \(Self.ms(operation.maxNanoseconds))  (\(operation.count) ops)")
        }
        lines.append("errors      " + (errors.isEmpty ? "none" : errors.map { "\($0.name) (\($0.code)) \($0.count)" }.joined(separator: ", ")))
        if !c.seeds.isEmpty || unanswered > 0 {
            lines.append(String(format: "failover    %d connections replaced (%d successful replies on them), %d requests unanswered (outcome unknown), longest pause without a successful reply %.1f s",
                                reconnects, successesAfterReconnect, unanswered, Double(longestPauseTenths) / 10))
        }
        if let feed {
            let percentiles = feed.latency.percentilesNanoseconds.map { "p\(Self.label($0.0)) \(Self.ms($0.1))" }.joined(separator: "  ")
            lines.append("feed        \(feed.subscribers) subscribers, \(feed.changes) changes, \(feed.undelivered) undelivered; delivery ms \(percentiles)  max \(Self.ms(feed.latency.maxNanoseconds))")
        }
        if let cpu = serverMicrosecondsPerOperation, let pid = c.serverPID {
            lines.append(String(format: "server CPU  %.2f µs/op  (pid %d, %.2f s CPU)", cpu, pid, serverCPUSeconds ?? 0))
        }
        return lines.joined(separator: "\n")
    }

    static func label(_ percentile: Double) -> String {
        percentile == percentile.rounded() ? String(Int(percentile)) : String(percentile)
    }

    /// Everything, machine-readable.
    public var json: JSONValue {
        func number(_ value: Double) -> JSONValue { JSONValue.number((value * 1000).rounded() / 1000) }
        func operationJSON(_ operation: Operation) -> JSONValue {
            .object([
                ("name", .string(operation.name)),
                ("count", .number(String(operation.count))),
                ("latency_ms", .object(operation.percentilesNanoseconds.map { ("p" + Self.label($0.0), number(Double($0.1) / 1e6)) }
                    + [("max", number(Double(operation.maxNanoseconds) / 1e6)), ("mean", number(operation.meanNanoseconds / 1e6))])),
                ("distribution_ms", .array(operation.distribution.map { .array([number($0.0), number(Double($0.1) / 1e6)]) })),
            ])
        }
        let c = configuration
        var members: [(String, JSONValue)] = [
            ("workload", .object(c.mix.map { ($0.0.rawValue, .number(String($0.1))) })),
            ("connections", .number(String(c.connections))),
            ("pipeline", .number(String(c.pipeline))),
            ("client_threads", .number(String(c.clientThreads))),
            ("rate", c.rate.map { number($0) } ?? .null),
            ("tenants", .number(String(c.tenants))),
            ("seconds", number(seconds)),
            ("ops", .number(String(total))),
            ("ops_per_second", number(throughput)),
            ("all", all.map(operationJSON) ?? .null),
            ("operations", .array(operations.map(operationJSON))),
            ("errors", .object(errors.map { ($0.name, .number(String($0.count))) })),
            ("server_cpu_us_per_op", serverMicrosecondsPerOperation.map(number) ?? .null),
            ("ops_per_second_timeline", .array(perSecond.map { .number(String($0)) })),
            ("reconnects", .number(String(reconnects))),
            ("successes_after_reconnect", .number(String(successesAfterReconnect))),
            ("unanswered", .number(String(unanswered))),
            ("longest_pause_seconds", number(Double(longestPauseTenths) / 10)),
        ]
        if let feed {
            members.append(("feed", .object([
                ("subscribers", .number(String(feed.subscribers))), ("changes", .number(String(feed.changes))),
                ("undelivered", .number(String(feed.undelivered))), ("delivery", operationJSON(feed.latency)),
            ])))
        }
        if let preloadSeconds {
            members.append(("preload", .object([("records", .number(String(preloadRecords))), ("seconds", number(preloadSeconds)),
                                                ("records_per_second", number(Double(preloadRecords) / preloadSeconds))])))
        }
        return .object(members)
    }
}
