/// Histogram bucket bounds. Prometheus cannot change a histogram's buckets once it has data, so
/// they are chosen to cover what the server can do on any disk: sub-millisecond requests and WAL
/// writes on a fast machine, multi-second ones on a stalled disk.
public enum MetricBuckets {
    /// The 1, 2.5, 5 steps of each decade from `lowest` through `highest` (both must be such a step).
    /// Three buckets a decade keep quantile estimates within a factor of about two, at 3 × decades
    /// series per labelled histogram.
    public static func decades(from lowest: Duration, through highest: Duration) -> [Duration] {
        precondition(lowest > .zero && lowest <= highest)
        var bounds: [Duration] = []
        var decade = Duration.nanoseconds(1)
        while decade <= highest {
            for step in [decade, decade * 5 / 2, decade * 5] where step >= lowest && step <= highest {
                bounds.append(step)
            }
            decade *= 10
        }
        return bounds
    }

    /// Powers of `factor` from `lowest` through `highest`.
    public static func powers(of factor: Double, from lowest: Double, through highest: Double) -> [Double] {
        precondition(factor > 1 && lowest > 0 && lowest <= highest)
        var bounds: [Double] = []
        var bound = lowest
        while bound <= highest {
            bounds.append(bound)
            bound *= factor
        }
        return bounds
    }

    /// A request's time in the server: 50 µs (a point read) to 10 s (a restore, a stalled disk).
    public static let requests = decades(from: .microseconds(50), through: .seconds(10))
    /// One `pwrite` of the WAL: page-cache writes take microseconds.
    public static let walWrites = decades(from: .microseconds(10), through: .seconds(10))
    /// One `fdatasync`: 100 µs (a write-back cache) to 10 s (an overloaded disk).
    public static let walSyncs = decades(from: .microseconds(100), through: .seconds(10))
    /// Writing one tenant's snapshot: milliseconds for a small tenant, minutes for millions of records.
    public static let snapshots = decades(from: .milliseconds(1), through: .seconds(500))
    /// Records in one WAL write: 1 when writes come one at a time, thousands under group commit.
    public static let recordsPerWrite = powers(of: 4, from: 1, through: 65_536)
    /// Bytes in one WAL write: one small record (about 200 bytes) to a 16 MiB batch.
    public static let bytesPerWrite = powers(of: 4, from: 256, through: 16_777_216)
}
