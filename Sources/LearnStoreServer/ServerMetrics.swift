import CoreMetrics
import LearnStoreModel
import LearnStoreProtocol
import Metrics
import Synchronization

/// Counters and timers of the server, through swift-metrics. Per-request counts are accumulated per
/// read batch and added once, so metrics cost nothing measurable on the hot path.
public final class ServerMetrics: Sendable {
    private let requests: [Counter]
    private let otherRequests: Counter
    private let errorCounters = Mutex<[String: Counter]>([:])
    private let batchTimer = Metrics.Timer(label: "learnstore_batch_seconds")
    private let connectionsGauge = Gauge(label: "learnstore_connections")
    private let connectionsOpened = Counter(label: "learnstore_connections_opened_total")
    private let tenantsGauge = Gauge(label: "learnstore_tenants")
    private let recordsGauge = Gauge(label: "learnstore_records")
    /// Totals kept for INFO, independent of the metrics backend.
    private let totals = Mutex<Totals>(Totals())

    struct Totals {
        var requests: [UInt8: Int] = [:]
        var errors: [String: Int] = [:]
        var connectionsOpened = 0
    }

    public init() {
        requests = (0...255).map { Counter(label: "learnstore_requests_total", dimensions: [("opcode", Opcode.name(UInt8($0)))]) }
        otherRequests = Counter(label: "learnstore_requests_total", dimensions: [("opcode", "other")])
    }

    /// Adds one batch's request counts (indexed by opcode) and its service time.
    public func recordBatch(counts: [UInt8: Int], nanoseconds: Int64) {
        for (opcode, count) in counts { requests[Int(opcode)].increment(by: Int64(count)) }
        batchTimer.recordNanoseconds(nanoseconds)
        totals.withLock { t in for (opcode, count) in counts { t.requests[opcode, default: 0] += count } }
    }

    public func recordError(opcode: UInt8, code: LearnStoreError.Code) {
        let key = "\(Opcode.name(opcode))|\(code.name)"
        let counter = errorCounters.withLock { map in
            if let existing = map[key] { return existing }
            let created = Counter(label: "learnstore_errors_total", dimensions: [("opcode", Opcode.name(opcode)), ("code", code.name)])
            map[key] = created
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

    public func recordTenants(_ count: Int, records: Int) {
        tenantsGauge.record(count)
        recordsGauge.record(records)
    }

    /// Request and error totals for INFO.
    public var snapshot: (requests: [String: Int], errors: [String: Int], connectionsOpened: Int) {
        totals.withLock { t in
            (Dictionary(uniqueKeysWithValues: t.requests.map { (Opcode.name($0.key), $0.value) }), t.errors, t.connectionsOpened)
        }
    }
}
