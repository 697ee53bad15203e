/// Turns the tenants' counters of requests served into each partition's requests per second over
/// the last minute, so that one busy moment moves a partition's figure only by its share of the
/// minute. A partition's figure is published only once it has been measured for a whole minute
/// (after it arrived in the group, or the primary started): until then the balancer, which needs
/// every partition's figure, waits rather than act on a partial one. Pure: the mover samples the
/// counters and the clock.
struct PartitionLoadMeter {
    /// The span each published rate covers.
    static let window: Duration = .seconds(60)

    private var lastCounts: [String: UInt64] = [:]
    private var lastAt: Duration?
    /// Per held partition, the requests of each interval since it was first measured, oldest first;
    /// the oldest are dropped once the rest cover the window.
    private var intervals: [Int: [(served: UInt64, length: Duration)]] = [:]

    /// One sample: each tenant's counter (`served`) with its partition, at `now` (monotonic), for the
    /// partitions the group holds. Returns the rate of each held partition measured for a whole window.
    mutating func sample(_ counters: [(tenant: String, partition: Int, served: UInt64)], held: Set<Int>, at now: Duration) -> [Int: Int] {
        defer {
            lastCounts = Dictionary(counters.map { ($0.tenant, $0.served) }, uniquingKeysWith: { max($0, $1) })
            lastAt = now
        }
        guard let lastAt, now > lastAt else {
            intervals = [:]
            return [:]
        }
        var served: [Int: UInt64] = [:]
        for counter in counters where held.contains(counter.partition) {
            let before = lastCounts[counter.tenant] ?? 0
            // A counter below its last value belongs to a tenant opened again since: all of it is new.
            served[counter.partition, default: 0] &+= counter.served >= before ? counter.served - before : counter.served
        }
        var rates: [Int: Int] = [:]
        var kept: [Int: [(served: UInt64, length: Duration)]] = [:]
        for partition in held {
            var measured = intervals[partition] ?? []
            measured.append((served[partition] ?? 0, now - lastAt))
            var covered = measured.reduce(Duration.zero) { $0 + $1.length }
            while measured.count > 1, covered - measured[0].length >= Self.window {
                covered -= measured[0].length
                measured.removeFirst()
            }
            kept[partition] = measured
            guard covered >= Self.window else { continue }
            let seconds = Double(covered.components.seconds) + Double(covered.components.attoseconds) / 1e18
            let total = measured.reduce(0.0) { $0 + Double($1.served) }
            rates[partition] = Int(min((total / seconds).rounded(), Double(1 << 40)))
        }
        intervals = kept
        return rates
    }
}
