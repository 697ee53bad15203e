@testable import LearnStoreServer
import Testing

/// A partition's load is the requests its tenants were served per second, averaged over about a
/// minute: steady traffic reads as its rate, a burst moves the average only part of the way, a
/// tenant opened again (its counter back at zero) is not read as negative, and partitions the group
/// does not hold are left out.
@Suite struct PartitionLoadMeterTests {
    @Test func theFirstSampleOnlySetsTheStartingPointsAndSteadyTrafficReadsAsItsRate() {
        var meter = PartitionLoadMeter()
        #expect(meter.sample([("a", 1, 5000)], held: [1], at: .seconds(10)).isEmpty)
        var served: UInt64 = 5000
        var time = Duration.seconds(10)
        for _ in 0..<30 {
            served += 1000
            time += .seconds(5)
            #expect(meter.sample([("a", 1, served)], held: [1], at: time) == [1: 200])
        }
    }

    @Test func aBurstMovesTheAverageOnlyPartOfTheWay() {
        var meter = PartitionLoadMeter()
        _ = meter.sample([("a", 1, 0)], held: [1], at: .seconds(0))
        #expect(meter.sample([("a", 1, 500)], held: [1], at: .seconds(5)) == [1: 100])
        // 20,000 requests in 5 s (4,000/s): the minute's average rises by 1 - e^(-5/60) of the gap.
        let burst = meter.sample([("a", 1, 20_500)], held: [1], at: .seconds(10))[1] ?? 0
        #expect((400...420).contains(burst), "\(burst)")
    }

    @Test func tenantsAddUpByPartitionAndOnlyHeldPartitionsCount() {
        var meter = PartitionLoadMeter()
        _ = meter.sample([("a", 1, 100), ("b", 1, 100), ("c", 2, 100), ("d", 3, 0)], held: [1, 2, 3, 4], at: .seconds(0))
        // b was opened again (its counter restarted) and e is new: both count all they served.
        let rates = meter.sample([("a", 1, 600), ("b", 1, 50), ("c", 2, 100), ("d", 3, 1000), ("e", 4, 250), ("f", 9, 1000)], held: [1, 2, 3, 4], at: .seconds(5))
        #expect(rates == [1: 110, 2: 0, 3: 200, 4: 50])
    }
}
