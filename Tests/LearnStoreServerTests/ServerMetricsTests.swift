import LearnStoreModel
import LearnStoreProtocol
@testable import LearnStoreServer
import Testing

/// The logic behind the metrics: bucket bounds, the weighted latency histogram and its text, the
/// opcode labels and the resident-memory parser. No server, no socket.
@Suite struct ServerMetricsTests {
    @Test func requestBucketsRunFrom50MicrosecondsTo10SecondsInSteps1_2_5_5() {
        let bounds = MetricBuckets.requests
        #expect(bounds.first == .microseconds(50))
        #expect(bounds.last == .seconds(10))
        #expect(bounds.count == 17)
        #expect(bounds.prefix(6) == [.microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500)])
        #expect(zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 })
    }

    @Test func everyHistogramHasIncreasingBoundsCoveringItsRange() {
        for bounds in [MetricBuckets.walWrites, MetricBuckets.walSyncs, MetricBuckets.snapshots] {
            #expect(zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 })
        }
        #expect(MetricBuckets.walWrites.first == .microseconds(10))
        #expect(MetricBuckets.snapshots.last == .seconds(500))
        #expect(MetricBuckets.recordsPerWrite == [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536])
        #expect(MetricBuckets.bytesPerWrite.first == 256 && MetricBuckets.bytesPerWrite.last == Double(16 << 20))
        #expect(Set(ServerMetrics.durationBuckets.keys).isDisjoint(with: ServerMetrics.valueBuckets.keys))
    }

    @Test func aWeightedObservationCountsOncePerRequest() {
        var histogram = WeightedDurationHistogram(bounds: [.microseconds(100), .milliseconds(1)])
        histogram.record(nanoseconds: 100_000, weight: 3)  // on a bound: in that bucket
        histogram.record(nanoseconds: 100_001, weight: 1)
        histogram.record(nanoseconds: 5_000_000_000, weight: 2)
        histogram.record(nanoseconds: 1, weight: 0)
        #expect(histogram.bucketCounts == [3, 1, 2])
        #expect(histogram.cumulativeCounts == [3, 4, 6])
        #expect(histogram.count == 6)
        #expect(histogram.sumNanoseconds == 3 * 100_000 + 100_001 + 2 * 5_000_000_000)
    }

    @Test func histogramTextIsPrometheusExposition() {
        var histogram = WeightedDurationHistogram(bounds: [.microseconds(50), .milliseconds(2500)])
        histogram.record(nanoseconds: 30_000, weight: 2)
        histogram.record(nanoseconds: 3_000_000_000, weight: 1)
        var text: [UInt8] = []
        histogram.emit(name: "x_seconds", labels: #"opcode="get""#, into: &text)
        #expect(String(decoding: text, as: UTF8.self) == """
            x_seconds_bucket{opcode="get",le="0.00005"} 2
            x_seconds_bucket{opcode="get",le="2.5"} 2
            x_seconds_bucket{opcode="get",le="+Inf"} 3
            x_seconds_sum{opcode="get"} 3.00006
            x_seconds_count{opcode="get"} 3

            """)
        text = []
        WeightedDurationHistogram(bounds: [.seconds(10)]).emit(name: "y", labels: "", into: &text)
        #expect(String(decoding: text, as: UTF8.self) == "y_bucket{le=\"10.0\"} 0\ny_bucket{le=\"+Inf\"} 0\ny_sum 0.0\ny_count 0\n")
    }

    @Test func onlyTheProtocolsOpcodesHaveTheirOwnLabel() {
        let labels = Set(ServerMetrics.opcodeLabels)
        #expect(labels == Set(Opcode.names.values).union(["other"]))
        #expect(ServerMetrics.opcodeLabels[Int(Opcode.get)] == "get")
        #expect(ServerMetrics.opcodeLabels[0x7E] == "other" && ServerMetrics.opcodeLabels[0xFF] == "other")
        #expect(!labels.contains { $0.hasPrefix("op_0x") })
    }

    @Test func batchesRecordEachRequestAndUnknownOpcodesShareOneSeries() {
        let metrics = ServerMetrics()
        metrics.recordBatch(counts: [Opcode.get: 3, Opcode.create: 1], nanoseconds: 200_000)
        metrics.recordBatch(counts: [0x7E: 1, 0x7F: 2], nanoseconds: 1_000)
        let gets = metrics.requestDurations(opcode: Opcode.get)
        #expect(gets.count == 3 && gets.sumNanoseconds == 600_000)
        #expect(metrics.requestDurations(opcode: Opcode.create).count == 1)
        #expect(metrics.requestDurations(opcode: 0x7E).count == 3)
        #expect(metrics.requestDurations(opcode: 0x7F) == metrics.requestDurations(opcode: 0x7E))
        #expect(metrics.requestDurations(opcode: Opcode.list).count == 0)
        // INFO keeps its own names for every opcode.
        #expect(metrics.snapshot.requests == ["get": 3, "create": 1, "op_0x7e": 1, "op_0x7f": 2])
    }

    @Test func theShardsOfTwoLoopsAndTheSharedOneAddUp() {
        let metrics = ServerMetrics()
        final class Loop {}
        let (first, second) = (Loop(), Loop())
        #expect(metrics.requestShard(for: first) === metrics.requestShard(for: first))
        #expect(metrics.requestShard(for: first) !== metrics.requestShard(for: second))
        metrics.requestShard(for: first).record([Opcode.get: 16], nanoseconds: 100_000)
        metrics.requestShard(for: second).record([Opcode.get: 1, Opcode.list: 2], nanoseconds: 3_000_000)
        metrics.recordBatch(counts: [Opcode.stats: 1], nanoseconds: 50_000)
        #expect(metrics.snapshot.requests == ["get": 17, "list": 2, "stats": 1])
        let gets = metrics.requestDurations(opcode: Opcode.get)
        #expect(gets.count == 17 && gets.sumNanoseconds == 16 * 100_000 + 3_000_000)
        var text: [UInt8] = []
        metrics.emitRequestSeries(into: &text)
        let lines = Set(String(decoding: text, as: UTF8.self).split(separator: "\n").map(String.init))
        #expect(lines.contains(#"learnstore_requests_total{opcode="get"} 17"#))
        #expect(lines.contains(#"learnstore_requests_total{opcode="create"} 0"#))
        #expect(lines.contains(#"learnstore_request_duration_seconds_count{opcode="list"} 2"#))
        #expect(lines.contains("learnstore_batch_seconds_count 3"))
        #expect(lines.contains(#"learnstore_batch_seconds_bucket{le="0.0001"} 2"#))
        #expect(lines.contains("# TYPE learnstore_requests_total counter"))
    }

    @Test func residentBytesAreTheSecondStatmFieldTimesThePageSize() {
        #expect(ResidentMemory.parseStatm("30219 4873 2510 420 0 7003 0\n", pageSize: 4096) == 4873 * 4096)
        #expect(ResidentMemory.parseStatm("30219 4873", pageSize: 16384) == 4873 * 16384)
        #expect(ResidentMemory.parseStatm("30219\n", pageSize: 4096) == nil)
        #expect(ResidentMemory.parseStatm("", pageSize: 4096) == nil)
        #expect(ResidentMemory.parseStatm("1 x 2", pageSize: 4096) == nil)
        #expect(ResidentMemory.parseStatm("1 -5 2", pageSize: 4096) == nil)
        #expect(ResidentMemory.parseStatm("1 \(Int.max) 2", pageSize: 4096) == nil)
        #expect(ResidentMemory.parseStatm("1 5 2", pageSize: 0) == nil)
        #if os(Linux)
        #expect((ResidentMemory.current() ?? 0) > 1 << 20, "this test process holds more than a MiB")
        #endif
    }
}
