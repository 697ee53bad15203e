import Foundation

/// Turns the tenants' counters of requests served into each partition's requests per second,
/// averaged exponentially over about a minute, so that one busy moment does not move a partition.
/// Pure: the mover samples the counters and the clock.
struct PartitionLoadMeter {
    /// The average's time constant.
    static let averagingSeconds = 60.0

    private var lastCounts: [String: UInt64] = [:]
    private var lastAt: Duration?
    private var rates: [Int: Double] = [:]

    /// One sample: each tenant's counter (`served`) with its partition, at `now` (monotonic), for the
    /// partitions the group holds. Returns each held partition's averaged rate; empty at the first
    /// sample, which only sets the counters' starting points.
    mutating func sample(_ counters: [(tenant: String, partition: Int, served: UInt64)], held: Set<Int>, at now: Duration) -> [Int: Int] {
        defer {
            lastCounts = Dictionary(counters.map { ($0.tenant, $0.served) }, uniquingKeysWith: { max($0, $1) })
            lastAt = now
        }
        guard let lastAt, now > lastAt else { return [:] }
        let elapsed = Double((now - lastAt).components.seconds) + Double((now - lastAt).components.attoseconds) / 1e18
        var served: [Int: UInt64] = [:]
        for counter in counters where held.contains(counter.partition) {
            let before = lastCounts[counter.tenant] ?? 0
            // A counter below its last value belongs to a tenant opened again since: all of it is new.
            served[counter.partition, default: 0] &+= counter.served >= before ? counter.served - before : counter.served
        }
        let weight = 1 - exp(-elapsed / Self.averagingSeconds)
        var next: [Int: Double] = [:]
        for partition in held {
            let rate = Double(served[partition] ?? 0) / elapsed
            next[partition] = rates[partition].map { $0 + weight * (rate - $0) } ?? rate
        }
        rates = next
        return next.mapValues { Int(min($0.rounded(), Double(1 << 40))) }
    }
}
