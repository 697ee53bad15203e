import CoreMetrics
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import Metrics
import Synchronization

/// The server's metrics, through swift-metrics (and, for request latencies, a weighted histogram of
/// its own). Per-request figures are accumulated per read batch and added once, so metrics cost
/// nothing measurable on the hot path. Every series is listed in docs/OPERATIONS.md, section 8.
public final class ServerMetrics: Sendable {
    /// Series names, so the bucket tables below and the metrics agree.
    public enum Name {
        public static let requests = "learnstore_requests_total"
        public static let requestDuration = "learnstore_request_duration_seconds"
        public static let errors = "learnstore_errors_total"
        public static let batch = "learnstore_batch_seconds"
        public static let walWrite = "learnstore_wal_write_seconds"
        public static let walSync = "learnstore_wal_fsync_seconds"
        public static let walWriteRecords = "learnstore_wal_write_records"
        public static let walWriteBytes = "learnstore_wal_write_bytes"
        public static let snapshotDuration = "learnstore_snapshot_duration_seconds"
        public static let snapshotBytes = "learnstore_snapshot_bytes"
        public static let snapshotFailures = "learnstore_snapshot_failures_total"
    }

    /// Buckets of the duration histograms, for the metrics backend (`PrometheusMetricsFactory`).
    public static let durationBuckets: [String: [Duration]] = [
        Name.walWrite: MetricBuckets.walWrites,
        Name.walSync: MetricBuckets.walSyncs,
        Name.snapshotDuration: MetricBuckets.snapshots,
    ]
    /// Buckets of the value histograms, for the metrics backend.
    public static let valueBuckets: [String: [Double]] = [
        Name.walWriteRecords: MetricBuckets.recordsPerWrite,
        Name.walWriteBytes: MetricBuckets.bytesPerWrite,
    ]

    /// The `opcode` label of every byte: the protocol's opcodes by name, any other byte "other", so
    /// a client sending random opcodes cannot create series.
    public static let opcodeLabels: [String] = (0...255).map { Opcode.names[UInt8($0)] ?? "other" }

    /// Each opcode label once, in the order the request series are rendered.
    static let latencyLabels: [String] = Set(opcodeLabels).sorted()
    /// The index in ``latencyLabels`` of each opcode's label: opcodes with the same label share a series.
    static let labelIndex: [Int] = opcodeLabels.map { label in latencyLabels.firstIndex(of: label)! }

    let factory: any MetricsFactory
    /// Request counts and latencies, one shard per event loop (``RequestMetricsShard``), plus one
    /// for batches run elsewhere; the metrics backend never sees them: ``emitRequestSeries(into:)``
    /// renders their sums.
    private let shards = Mutex<[ObjectIdentifier: RequestMetricsShard]>([:])
    private let sharedShard = RequestMetricsShard(labelIndex: labelIndex, labelCount: latencyLabels.count)
    private let errorCounters = Mutex<[String: Counter]>([:])
    private let connectionsGauge: Gauge
    private let connectionsOpened: Counter
    /// Batches that waited for their tenant's secondary indexes to be built off its lock.
    private let readIndexBuilds: Counter
    /// IMPORT batches that re-sorted their tenant, run on a copy off its lock.
    private let importRebuilds: Counter
    let tenantsGauge: Gauge
    let recordsGauge: Gauge
    let loadingGauge: Gauge
    let residentMemoryGauge: Gauge
    let feedSubscriptionsGauge: Gauge
    let feedMemoryRecordsGauge: Gauge
    let feedChangesFromMemoryGauge: Gauge
    let feedFellBehindMemoryGauge: Gauge
    let feedChanges: Counter
    let walWriteTimer: Metrics.Timer
    let walSyncTimer: Metrics.Timer
    let walWriteRecords: Recorder
    let walWriteBytes: Recorder
    let snapshotTimer: Metrics.Timer
    let snapshotFailures: Counter
    let snapshotBytes = Mutex<[String: Gauge]>([:])
    let recoveryTenantsLoaded: Gauge
    let recoveryTenants: Gauge
    let recoverySegmentsReplayed: Gauge
    let recoverySegments: Gauge
    /// Totals kept for INFO, independent of the metrics backend.
    private let totals = Mutex<Totals>(Totals())

    struct Totals {
        var errors: [String: Int] = [:]
        var connectionsOpened = 0
    }

    /// Metrics made by `factory` (by default the one the process bootstrapped).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        connectionsGauge = Gauge(label: "learnstore_connections", factory: factory)
        connectionsOpened = Counter(label: "learnstore_connections_opened_total", factory: factory)
        readIndexBuilds = Counter(label: "learnstore_read_index_builds_total", factory: factory)
        importRebuilds = Counter(label: "learnstore_import_rebuilds_total", factory: factory)
        tenantsGauge = Gauge(label: "learnstore_tenants", factory: factory)
        recordsGauge = Gauge(label: "learnstore_records", factory: factory)
        loadingGauge = Gauge(label: "learnstore_loading", factory: factory)
        residentMemoryGauge = Gauge(label: "learnstore_resident_memory_bytes", factory: factory)
        feedSubscriptionsGauge = Gauge(label: "learnstore_feed_subscriptions", factory: factory)
        feedMemoryRecordsGauge = Gauge(label: "learnstore_feed_memory_records", factory: factory)
        feedChangesFromMemoryGauge = Gauge(label: "learnstore_feed_changes_from_memory", factory: factory)
        feedFellBehindMemoryGauge = Gauge(label: "learnstore_feed_fell_behind_memory", factory: factory)
        feedChanges = Counter(label: "learnstore_feed_changes_total", factory: factory)
        walWriteTimer = Metrics.Timer(label: Name.walWrite, factory: factory)
        walSyncTimer = Metrics.Timer(label: Name.walSync, factory: factory)
        walWriteRecords = Recorder(label: Name.walWriteRecords, aggregate: true, factory: factory)
        walWriteBytes = Recorder(label: Name.walWriteBytes, aggregate: true, factory: factory)
        snapshotTimer = Metrics.Timer(label: Name.snapshotDuration, factory: factory)
        snapshotFailures = Counter(label: Name.snapshotFailures, factory: factory)
        recoveryTenantsLoaded = Gauge(label: "learnstore_recovery_tenants_loaded", factory: factory)
        recoveryTenants = Gauge(label: "learnstore_recovery_tenants", factory: factory)
        recoverySegmentsReplayed = Gauge(label: "learnstore_recovery_wal_segments_replayed", factory: factory)
        recoverySegments = Gauge(label: "learnstore_recovery_wal_segments", factory: factory)
    }

    public func recordReadIndexBuild() { readIndexBuilds.increment() }
    public func recordImportRebuild() { importRebuilds.increment() }

    /// The shard of the batches `loop` runs (made on its first use).
    func requestShard(for loop: AnyObject) -> RequestMetricsShard {
        shards.withLock { shards in
            if let shard = shards[ObjectIdentifier(loop)] { return shard }
            let shard = RequestMetricsShard(labelIndex: Self.labelIndex, labelCount: Self.latencyLabels.count)
            shards[ObjectIdentifier(loop)] = shard
            return shard
        }
    }

    /// Adds one batch's request counts (by opcode) and its service time: each of its requests was
    /// answered when the batch was done. Into the shard every caller shares; an event loop's
    /// connections record into its own (``requestShard(for:)``).
    public func recordBatch(counts: OpcodeCounts, nanoseconds: Int64) {
        sharedShard.record(counts, nanoseconds: nanoseconds)
    }

    /// Every shard's counts and histograms added up.
    private var requestTotals: RequestMetricsShard.State {
        let all = shards.withLock { Array($0.values) } + [sharedShard]
        var sum = RequestMetricsShard.State(labelIndex: Self.labelIndex, labelCount: Self.latencyLabels.count)
        for shard in all {
            shard.state.withLock { state in
                for opcode in 0..<256 { sum.requests[opcode] += state.requests[opcode] }
                for index in sum.latencies.indices { sum.latencies[index].add(state.latencies[index]) }
                sum.batches.add(state.batches)
            }
        }
        return sum
    }

    public func recordError(opcode: UInt8, code: LearnStoreError.Code) {
        let key = "\(Opcode.name(opcode))|\(code.name)"
        let label = Self.opcodeLabels[Int(opcode)]
        let counter = errorCounters.withLock { map in
            let seriesKey = "\(label)|\(code.name)"
            if let existing = map[seriesKey] { return existing }
            let created = Counter(label: Name.errors, dimensions: [("opcode", label), ("code", code.name)], factory: factory)
            map[seriesKey] = created
            return created
        }
        counter.increment()
        totals.withLock { $0.errors[key, default: 0] += 1 }
    }

    public func connectionOpened(current: Int) {
        connectionsOpened.increment()
        connectionsGauge.record(current)
        totals.withLock { $0.connectionsOpened += 1 }
    }

    public func connectionClosed(current: Int) { connectionsGauge.record(current) }

    /// Changes sent to change-feed subscribers (each once per subscription that received it).
    func recordFeedChanges(_ count: Int) { if count > 0 { feedChanges.increment(by: Int64(count)) } }

    public func recordTenants(_ count: Int, records: Int) {
        tenantsGauge.record(count)
        recordsGauge.record(records)
    }

    /// Appends the request series in the Prometheus text format: requests by opcode, their latency
    /// histograms and the batches' (kept in per-loop shards, and the latencies weighted, which
    /// swift-metrics cannot carry, so rendered here rather than by the metrics backend).
    public func emitRequestSeries(into buffer: inout [UInt8]) {
        let totals = requestTotals
        var byLabel = [Int](repeating: 0, count: Self.latencyLabels.count)
        for opcode in 0..<256 { byLabel[Self.labelIndex[opcode]] += totals.requests[opcode] }
        buffer.append(contentsOf: "# TYPE \(Name.requests) counter\n".utf8)
        for (index, label) in Self.latencyLabels.enumerated() {
            buffer.append(contentsOf: "\(Name.requests){opcode=\"\(label)\"} \(byLabel[index])\n".utf8)
        }
        buffer.append(contentsOf: "# TYPE \(Name.requestDuration) histogram\n".utf8)
        for (index, label) in Self.latencyLabels.enumerated() {
            totals.latencies[index].emit(name: Name.requestDuration, labels: "opcode=\"\(label)\"", into: &buffer)
        }
        buffer.append(contentsOf: "# TYPE \(Name.batch) histogram\n".utf8)
        totals.batches.emit(name: Name.batch, labels: "", into: &buffer)
    }

    /// The request latency histogram of one opcode (of its label), as recorded so far.
    public func requestDurations(opcode: UInt8) -> WeightedDurationHistogram { requestTotals.latencies[Self.labelIndex[Int(opcode)]] }

    /// Request and error totals for INFO.
    public var snapshot: (requests: [String: Int], errors: [String: Int], connectionsOpened: Int) {
        let counts = requestTotals.requests
        let requests = counts.enumerated().filter { $0.element > 0 }.map { (Opcode.name(UInt8($0.offset)), $0.element) }
        return totals.withLock { t in (Dictionary(requests, uniquingKeysWith: +), t.errors, t.connectionsOpened) }
    }
}
