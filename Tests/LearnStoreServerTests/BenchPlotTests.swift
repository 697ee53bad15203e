import Testing

@testable import LearnStoreTools

/// The load tool's throughput plot: completions counted per one-second bucket become rates over the
/// time each bucket really covered, so the run's short last bucket neither drops to zero nor spikes.
@Suite struct BenchPlotTests {
    typealias Interval = ThroughputTimeline.Interval

    @Test func fullBucketsAreTheirCountsPerSecond() {
        let timeline = ThroughputTimeline(counts: [100, 0, 250], runSeconds: 3)
        #expect(timeline.intervals == [
            Interval(start: 0, end: 1, opsPerSecond: 100),
            Interval(start: 1, end: 2, opsPerSecond: 0),
            Interval(start: 2, end: 3, opsPerSecond: 250),
        ])
        #expect(timeline.seconds == 3)
    }

    @Test func aPartialLastBucketIsScaledByItsActualLength() {
        let timeline = ThroughputTimeline(counts: [100, 100, 100, 50], runSeconds: 3.5)
        #expect(timeline.intervals.count == 4)
        #expect(timeline.intervals.last == Interval(start: 3, end: 3.5, opsPerSecond: 100))
        #expect(timeline.seconds == 3.5)
    }

    @Test func aLastBucketShorterThanAFifthIsLeftOut() {
        // 0.1 s of the last bucket: 10 completions would otherwise be drawn as 10 ops/s.
        let timeline = ThroughputTimeline(counts: [100, 100, 10], runSeconds: 2.1)
        #expect(timeline.intervals.map(\.end) == [1, 2])
        // Exactly a fifth is kept.
        let kept = ThroughputTimeline(counts: [100, 20], runSeconds: 1.25, minimumFraction: 0.25)
        #expect(kept.intervals.last == Interval(start: 1, end: 1.25, opsPerSecond: 80))
    }

    @Test func repliesCountedAfterTheClockStoppedDoNotMakeAnInterval() {
        // The run's clock stopped at 1.95 s; a few replies arrived before recording stopped, in the
        // next bucket.
        let timeline = ThroughputTimeline(counts: [100, 95, 3], runSeconds: 1.95)
        #expect(timeline.intervals.count == 2)
        #expect(timeline.intervals[1].end == 1.95)
        #expect(abs(timeline.intervals[1].opsPerSecond - 100) < 1e-9)
    }

    @Test func withoutTheRunLengthEveryBucketIsFull() {
        let timeline = ThroughputTimeline(counts: [7, 9], runSeconds: nil)
        #expect(timeline.intervals == [Interval(start: 0, end: 1, opsPerSecond: 7), Interval(start: 1, end: 2, opsPerSecond: 9)])
        #expect(ThroughputTimeline(counts: [], runSeconds: 4).intervals.isEmpty)
    }

    @Test func longerBucketsGiveRatesPerSecond() {
        let timeline = ThroughputTimeline(counts: [1000, 300], bucketSeconds: 5, runSeconds: 8)
        #expect(timeline.intervals == [Interval(start: 0, end: 5, opsPerSecond: 200), Interval(start: 5, end: 8, opsPerSecond: 100)])
    }

    /// A steady run that ended 0.05 s into a bucket is drawn flat to its end, with units on the axes.
    @Test func theSVGDrawsASteadyRunFlatAndLabelsItsAxes() throws {
        var report = BenchReport(configuration: BenchConfiguration(credentials: .secret(testSecret)))
        report.seconds = 3.05
        report.total = 30_005
        report.perSecond = [10_000, 10_000, 10_000, 5]
        let svg = BenchPlot.svg(report)
        for label in ["time (s)", "throughput (ops/s)", "latency (ms)", "percentile (log scale)"] {
            #expect(svg.contains(">\(label)</text>"), "missing axis label \(label)")
        }
        let polylines = svg.split(separator: "\n").filter { $0.hasPrefix("<polyline") }
        #expect(polylines.count == 1)
        let points = try #require(polylines.first?.split(separator: "points=\"").last?.split(separator: "\"").first)
        let ys = Set(points.split(separator: " ").map { $0.split(separator: ",")[1] })
        #expect(ys.count == 1, "a steady run is drawn flat: \(points)")
    }

    @Test func timeTicksAreRoundAndWithinTheRun() {
        #expect(BenchPlot.timeTicks(upTo: 10) == [0, 2, 4, 6, 8, 10])
        #expect(BenchPlot.timeTicks(upTo: 3.5) == [0, 1, 2, 3])
        #expect(BenchPlot.timeTicks(upTo: 0) == [0])
    }
}
