@testable import LearnStoreServer
import Testing

/// A partition's load is the requests its tenants were served per second over the last minute,
/// published only once measured for a whole minute: steady traffic reads as its rate, a burst counts
/// for its share of the minute, a tenant opened again (its counter back at zero) is not read as
/// negative, partitions the group does not hold are left out, and one that arrives waits a minute.
@Suite struct PartitionLoadMeterTests {
    @Test func aPartitionIsPublishedOnceMeasuredForAMinuteAndSteadyTrafficReadsAsItsRate() {
        var meter = PartitionLoadMeter()
        #expect(meter.sample([("a", 1, 5000)], held: [1], at: .seconds(10)).isEmpty)
        var served: UInt64 = 5000
        var time = Duration.seconds(10)
        for interval in 1...30 {
            served += 1000
            time += .seconds(5)
            #expect(meter.sample([("a", 1, served)], held: [1], at: time) == (interval < 12 ? [:] : [1: 200]), "interval \(interval)")
        }
    }

    @Test func aBurstCountsForItsShareOfTheMinute() {
        var meter = PartitionLoadMeter()
        _ = meter.sample([("a", 1, 0)], held: [1], at: .zero)
        var served: UInt64 = 0
        for interval in 1...12 {
            served += 500
            _ = meter.sample([("a", 1, served)], held: [1], at: .seconds(5 * interval))
        }
        // 20,000 requests in 5 s (4,000/s) after 55 s at 100/s: (55 × 100 + 20,000) / 60.
        #expect(meter.sample([("a", 1, served + 20_000)], held: [1], at: .seconds(65)) == [1: 425])
    }

    @Test func tenantsAddUpByPartitionAndAPartitionThatArrivesWaitsAMinute() {
        var meter = PartitionLoadMeter()
        _ = meter.sample([("a", 1, 100), ("b", 1, 100), ("c", 2, 100), ("d", 3, 0)], held: [1, 2, 3], at: .zero)
        // b was opened again (its counter restarted): all it served counts; f's partition is not held.
        let rates = meter.sample([("a", 1, 6100), ("b", 1, 50), ("c", 2, 100), ("d", 3, 12_000), ("f", 9, 1000)], held: [1, 2, 3], at: .seconds(60))
        #expect(rates == [1: 101, 2: 0, 3: 200])
        // Partition 4 arrives: it is measured, but published only a minute later; partition 1 reads
        // over the 90 s since its last published figure until a whole minute lies past it.
        #expect(meter.sample([("a", 1, 6100), ("e", 4, 600)], held: [1, 4], at: .seconds(90)) == [1: 67])
        #expect(meter.sample([("a", 1, 6100), ("e", 4, 1200)], held: [1, 4], at: .seconds(150)) == [1: 0, 4: 10])
    }
}
