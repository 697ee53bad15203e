import Synchronization

/// Request counts and latencies of the batches one event loop ran, behind a lock of its own: each
/// loop writes only its own shard's cache lines, where one set of counters and histograms shared by
/// every loop made their cores pass the same lines back and forth on every batch (at one request a
/// batch, several times per request). A scrape or INFO adds the shards up.
final class RequestMetricsShard: Sendable {
    struct State {
        /// The index in ``ServerMetrics/latencyLabels`` of each opcode's label: a copy of the shard's
        /// own (an array all shards shared would be retained by every loop).
        let labelIndex: [Int]
        /// By opcode.
        var requests = [Int](repeating: 0, count: 256)
        /// By the index of the opcode's label (``ServerMetrics/latencyLabels``).
        var latencies: [WeightedDurationHistogram]
        /// One observation per batch.
        var batches: WeightedDurationHistogram

        /// Nothing recorded yet, in arrays of its own (not copies of another's: none is shared).
        init(labelIndex: [Int], labelCount: Int) {
            self.labelIndex = labelIndex.map { $0 }
            latencies = (0..<labelCount).map { _ in WeightedDurationHistogram(bounds: MetricBuckets.requests) }
            batches = WeightedDurationHistogram(bounds: MetricBuckets.requests)
        }
    }

    let state: Mutex<State>

    init(labelIndex: [Int], labelCount: Int) {
        state = Mutex(State(labelIndex: labelIndex, labelCount: labelCount))
    }

    /// Adds one batch: `counts` by opcode, each request answered after `nanoseconds`.
    func record(_ counts: OpcodeCounts, nanoseconds: Int64) {
        state.withLock { state in
            for (opcode, count) in counts {
                state.requests[Int(opcode)] += count
                state.latencies[state.labelIndex[Int(opcode)]].record(nanoseconds: nanoseconds, weight: count)
            }
            state.batches.record(nanoseconds: nanoseconds, weight: 1)
        }
    }
}
