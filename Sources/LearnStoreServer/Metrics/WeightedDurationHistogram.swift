/// A histogram of durations whose observations carry a weight, in Prometheus' cumulative form.
///
/// The server runs the requests of one socket read as a batch and answers them together, so each of
/// a batch's n requests of one opcode took the batch's time: that is one observation of weight n, one
/// lock per batch instead of n. (swift-metrics' `Timer` records one value per call.)
public struct WeightedDurationHistogram: Sendable, Hashable {
    /// Upper bounds in nanoseconds, increasing; above the last is the `+Inf` bucket.
    public let upperBounds: [Int64]
    /// Observations per bucket (not cumulative); the last element is the `+Inf` bucket.
    public private(set) var bucketCounts: [UInt64]
    public private(set) var sumNanoseconds: UInt64 = 0
    public private(set) var count: UInt64 = 0

    public init(bounds: [Duration]) {
        upperBounds = bounds.map { Self.nanoseconds($0) }
        precondition(zip(upperBounds, upperBounds.dropFirst()).allSatisfy { $0 < $1 }, "bucket bounds must increase")
        bucketCounts = Array(repeating: 0, count: bounds.count + 1)
    }

    /// Records `weight` observations of `nanoseconds` each.
    public mutating func record(nanoseconds: Int64, weight: Int) {
        guard weight > 0 else { return }
        let value = max(0, nanoseconds)
        var index = 0
        while index < upperBounds.count && value > upperBounds[index] { index += 1 }
        bucketCounts[index] &+= UInt64(weight)
        sumNanoseconds &+= UInt64(value) &* UInt64(weight)
        count &+= UInt64(weight)
    }

    /// Adds `other`'s observations (a histogram of the same bounds) to these.
    public mutating func add(_ other: WeightedDurationHistogram) {
        precondition(other.upperBounds == upperBounds, "histograms of different bounds")
        for index in bucketCounts.indices { bucketCounts[index] &+= other.bucketCounts[index] }
        sumNanoseconds &+= other.sumNanoseconds
        count &+= other.count
    }

    /// Observations at or below each bound, then the total (the `+Inf` bucket).
    public var cumulativeCounts: [UInt64] {
        var running: UInt64 = 0
        return bucketCounts.map { count in
            running &+= count
            return running
        }
    }

    /// Appends the `_bucket`, `_sum` and `_count` lines of one series. `labels` is the rendered label
    /// set without braces (`opcode="get"`), or empty.
    public func emit(name: String, labels: String, into buffer: inout [UInt8]) {
        let prefix = labels.isEmpty ? "" : labels + ","
        let cumulative = cumulativeCounts
        for (index, bound) in upperBounds.enumerated() {
            buffer.append(contentsOf: "\(name)_bucket{\(prefix)le=\"\(Self.seconds(bound))\"} \(cumulative[index])\n".utf8)
        }
        buffer.append(contentsOf: "\(name)_bucket{\(prefix)le=\"+Inf\"} \(count)\n".utf8)
        let braced = labels.isEmpty ? "" : "{\(labels)}"
        buffer.append(contentsOf: "\(name)_sum\(braced) \(Self.seconds(Int64(clamping: sumNanoseconds)))\n".utf8)
        buffer.append(contentsOf: "\(name)_count\(braced) \(count)\n".utf8)
    }

    /// Exact decimal seconds (`0.00005`, `2.5`, `10.0`), as the metrics backend writes its own
    /// duration histograms: an exact form keeps `le` labels stable across versions.
    static func seconds(_ nanoseconds: Int64) -> String {
        let whole = nanoseconds / 1_000_000_000
        var fraction = String(nanoseconds % 1_000_000_000)
        guard fraction != "0" else { return "\(whole).0" }
        fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(whole).\(fraction)"
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
