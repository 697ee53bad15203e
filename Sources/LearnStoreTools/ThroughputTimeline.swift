/// Throughput over a run as the plot draws it: the load tool counts completions per bucket of
/// `bucketSeconds` since recording began, and each bucket becomes the rate over the time it really
/// covered. The run rarely ends on a bucket boundary, so its last bucket is short; drawn as a full
/// one it would show throughput falling to near zero at the end.
public struct ThroughputTimeline: Equatable, Sendable {
    /// One interval of the run and its rate.
    public struct Interval: Equatable, Sendable {
        /// Seconds since recording began.
        public var start: Double
        public var end: Double
        public var opsPerSecond: Double
    }

    public var intervals: [Interval]

    /// `counts[i]` is the completions in `[i × bucketSeconds, (i + 1) × bucketSeconds)`; the run lasted
    /// `runSeconds`. An interval is cut at `runSeconds`, its rate is its count over its actual length,
    /// and an interval shorter than `minimumFraction` of a bucket is left out (a few replies counted
    /// after the clock stopped, or too short a time for its rate to mean much). Without `runSeconds`
    /// every bucket counts as full.
    public init(counts: [Int], bucketSeconds: Double = 1, runSeconds: Double?, minimumFraction: Double = 0.2) {
        precondition(bucketSeconds > 0, "a bucket must have a length")
        let runEnd = runSeconds ?? Double(counts.count) * bucketSeconds
        intervals = counts.enumerated().compactMap { index, count in
            let start = Double(index) * bucketSeconds
            let end = min(start + bucketSeconds, runEnd)
            guard end - start >= minimumFraction * bucketSeconds else { return nil }
            return Interval(start: start, end: end, opsPerSecond: Double(count) / (end - start))
        }
    }

    /// The end of the last interval drawn, in seconds (0 if none).
    public var seconds: Double { intervals.last?.end ?? 0 }

    public var maxOpsPerSecond: Double { intervals.map(\.opsPerSecond).max() ?? 0 }
}
