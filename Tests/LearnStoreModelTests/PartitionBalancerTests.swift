import LearnStoreModel
import Testing

/// The balancer moves a partition only when it is safe and worth it: one move at a time, on fresh
/// figures of every group that holds partitions, after its cool-down, when a group strays past the
/// tolerance, and only by a move that narrows the spread, so that steady figures settle instead of
/// moving partitions back and forth.
@Suite struct PartitionBalancerTests {
    static let now: Int64 = 1_800_000_000_000

    /// Four partitions over ga and gb (0, 2 in ga; 1, 3 in gb).
    static func map() throws -> PartitionMap { try PartitionMap(partitions: 4, groups: ["ga", "gb"]) }

    static func figures(_ records: [Int: Int], load: [Int: Int] = [:], age: Int64 = 0) -> PartitionFigures {
        PartitionFigures(records: records, requestsPerSecond: load, at: now - age)
    }

    static func policy(_ measure: PartitionFigures.Measure = .records, tolerance: Int = 20, minimum: Int = 0, last: BalancerPolicy.LastMove? = nil) throws
        -> BalancerPolicy
    {
        try BalancerPolicy(measure: measure, tolerancePercent: tolerance, cooldownSeconds: 60, minimumMean: minimum, lastMove: last)
    }

    @Test func itMovesThePartitionThatNarrowsTheSpreadToTheGroupHoldingTheLeast() throws {
        let decision = PartitionBalancer.decide(
            map: try Self.map(), figures: ["ga": Self.figures([0: 6000, 2: 3000]), "gb": Self.figures([1: 1000, 3: 0])], policy: try Self.policy(), now: Self.now)
        // Moving partition 2 leaves 6000 / 4000; partition 0 would leave 3000 / 7000.
        #expect(decision == .move(partition: 2, to: "gb", before: ["ga": 9000, "gb": 1000], after: ["ga": 6000, "gb": 4000]))
    }

    @Test func itWaitsWhileAMoveIsUnderWayOrItCoolsDown() throws {
        let figures = ["ga": Self.figures([0: 6000, 2: 3000]), "gb": Self.figures([1: 1000, 3: 0])]
        let moving = try Self.map().startingMove(of: 0, to: "gb")
        guard case .wait(let reason) = PartitionBalancer.decide(map: moving, figures: figures, policy: try Self.policy(), now: Self.now) else {
            Issue.record("it started a second move")
            return
        }
        #expect(reason.contains("partition 0 is moving"))
        let recent = try Self.policy(last: .init(partition: 1, to: "ga", at: Self.now - 59_500))
        guard case .wait(let cooling) = PartitionBalancer.decide(map: try Self.map(), figures: figures, policy: recent, now: Self.now) else {
            Issue.record("it moved within the cool-down")
            return
        }
        #expect(cooling.contains("cooling down for 1 s"))
        let past = try Self.policy(last: .init(partition: 1, to: "ga", at: Self.now - 60_000))
        guard case .move = PartitionBalancer.decide(map: try Self.map(), figures: figures, policy: past, now: Self.now) else {
            Issue.record("it did not move once the cool-down was over")
            return
        }
    }

    @Test func aGroupHoldingPartitionsWithoutFreshFiguresHoldsTheBalancerBack() throws {
        let ga = Self.figures([0: 6000, 2: 3000])
        let stale = PartitionBalancer.staleAfterMilliseconds + 1
        // Missing, old, or from a clock far ahead.
        for gb in [nil, Self.figures([1: 0, 3: 0], age: stale), Self.figures([1: 0, 3: 0], age: -stale)] {
            var figures = ["ga": ga]
            figures["gb"] = gb
            guard case .wait(let reason) = PartitionBalancer.decide(map: try Self.map(), figures: figures, policy: try Self.policy(), now: Self.now) else {
                Issue.record("it moved on figures it did not have")
                continue
            }
            #expect(reason.contains("group gb"))
        }
    }

    @Test func aGroupHoldingNothingTakesPartitionsOnlyWhileItPublishes() throws {
        let map = try PartitionMap(partitions: 4, groups: ["ga", "gb"]).addingGroup("gc")
        let figures = ["ga": Self.figures([0: 3000, 2: 3000]), "gb": Self.figures([1: 3000, 3: 3000])]
        // gc is not running: ga and gb are even, and gc is left out of the mean.
        guard case .wait(let reason) = PartitionBalancer.decide(map: map, figures: figures, policy: try Self.policy(), now: Self.now) else {
            Issue.record("it moved a partition to a group that publishes nothing")
            return
        }
        #expect(reason.contains("within 20 %"))
        var running = figures
        running["gc"] = Self.figures([:])
        #expect(PartitionBalancer.decide(map: map, figures: running, policy: try Self.policy(), now: Self.now)
            == .move(partition: 0, to: "gc", before: ["ga": 6000, "gb": 6000, "gc": 0], after: ["ga": 3000, "gb": 6000, "gc": 3000]))
    }

    @Test func withinTheToleranceOrBelowTheMinimumItWaits() throws {
        let figures = ["ga": Self.figures([0: 1000, 2: 100]), "gb": Self.figures([1: 450, 3: 450])]
        guard case .wait(let within) = PartitionBalancer.decide(map: try Self.map(), figures: figures, policy: try Self.policy(tolerance: 10), now: Self.now)
        else {
            Issue.record("it moved within the tolerance")
            return
        }
        #expect(within.contains("within 10 %"))
        guard case .move = PartitionBalancer.decide(map: try Self.map(), figures: figures, policy: try Self.policy(tolerance: 9), now: Self.now) else {
            Issue.record("it did not move past the tolerance")
            return
        }
        guard case .wait(let small) = PartitionBalancer.decide(map: try Self.map(), figures: figures, policy: try Self.policy(tolerance: 9, minimum: 1001), now: Self.now)
        else {
            Issue.record("it moved below the minimum mean")
            return
        }
        #expect(small.contains("below the policy's minimum of 1001"))
    }

    @Test func byLoadItWeighsRequestsAndWaitsForAMeasurement() throws {
        let measured = ["ga": Self.figures([0: 1, 2: 1], load: [0: 900, 2: 300]), "gb": Self.figures([1: 5000, 3: 5000], load: [1: 100, 3: 0])]
        #expect(PartitionBalancer.decide(map: try Self.map(), figures: measured, policy: try Self.policy(.load), now: Self.now)
            == .move(partition: 2, to: "gb", before: ["ga": 1200, "gb": 100], after: ["ga": 900, "gb": 400]))
        // gb's partition 3 arrived (or gb's primary started) less than a minute ago.
        let unmeasured = ["ga": Self.figures([0: 1, 2: 1], load: [0: 900, 2: 300]), "gb": Self.figures([1: 5000, 3: 5000], load: [1: 100])]
        guard case .wait(let reason) = PartitionBalancer.decide(map: try Self.map(), figures: unmeasured, policy: try Self.policy(.load), now: Self.now) else {
            Issue.record("it moved without the load of gb's partition 3")
            return
        }
        #expect(reason.contains("gb is still measuring the load of partition 3"))
    }

    /// On steady figures, following the balancer's moves (cool-down aside) ends, every move lowers the
    /// sum of the squares of the groups' totals, and no partition goes back where it came from.
    @Test(arguments: 0..<200)
    func onSteadyFiguresTheMovesSettleAndNeverUndoEachOther(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let groups = (0..<(2 + random.next(below: 4))).map { "g\($0)" }
        let partitions = 1 + random.next(below: 40)
        var map = try PartitionMap(partitions: partitions, groups: groups, assignment: (0..<partitions).map { _ in random.next(below: groups.count) }, overrides: [:])
        let weights = (0..<partitions).map { _ in random.next(below: 4) == 0 ? 0 : random.next(below: 100_000) }
        let policy = try BalancerPolicy(measure: .records, tolerancePercent: 1 + random.next(below: 30), cooldownSeconds: 1, minimumMean: 0)
        var visited: Set<[Int]> = [map.assignment]
        var lastSquares = Int.max
        for _ in 0...(20 * partitions * groups.count) {
            var figures: [String: PartitionFigures] = [:]
            for group in groups {
                figures[group] = PartitionFigures(
                    records: Dictionary(uniqueKeysWithValues: (0..<partitions).filter { map.holder(of: $0) == group }.map { ($0, weights[$0]) }), at: Self.now)
            }
            guard case .move(let partition, let to, let before, let after) = PartitionBalancer.decide(map: map, figures: figures, policy: policy, now: Self.now)
            else { return }
            let squares = after.values.map { $0 * $0 }.reduce(0, +)
            #expect(squares < before.values.map { $0 * $0 }.reduce(0, +))
            #expect(squares < lastSquares)
            lastSquares = squares
            let started = try map.startingMove(of: partition, to: to)
            let move = try #require(started.moves[partition])
            map = try started.fencingMove(of: partition, id: move.id).completingMove(of: partition, id: move.id)
            #expect(visited.insert(map.assignment).inserted, "seed \(seed): the moves came back to an earlier placement")
        }
        Issue.record("seed \(seed): the balancer did not settle")
    }
}

/// The balancer's policy and the groups' figures come from etcd: both are read whole and checked.
@Suite struct BalancerPolicyTests {
    @Test func aPolicyReadsBackAsWritten() throws {
        let policy = try BalancerPolicy(measure: .load, tolerancePercent: 15, cooldownSeconds: 120, minimumMean: 10,
                                        lastMove: .init(partition: 7, to: "gb", at: 1_800_000_000_000))
        #expect(try BalancerPolicy.decode(policy.encoded) == policy)
        #expect(try BalancerPolicy(measure: .records).minimumMean == 1000)
    }

    @Test(arguments: [
        #"{"by":"size","tolerance_percent":20,"cooldown_seconds":300,"minimum_mean":0}"#,
        #"{"by":"load","tolerance_percent":0,"cooldown_seconds":300,"minimum_mean":0}"#,
        #"{"by":"load","tolerance_percent":20,"cooldown_seconds":0,"minimum_mean":0}"#,
        #"{"by":"load","tolerance_percent":20,"cooldown_seconds":300,"minimum_mean":-1}"#,
        #"{"by":"load","tolerance_percent":20,"cooldown_seconds":300,"minimum_mean":99999999999999999999}"#,
        #"{"by":"load","tolerance_percent":20,"cooldown_seconds":300,"minimum_mean":0,"last_move":{"partition":4096,"to":"gb","at":1}}"#,
        #"{"by":"load","tolerance_percent":20,"cooldown_seconds":300,"minimum_mean":0,"last_move":{"partition":1,"to":"g b","at":1}}"#,
        #"{"by":"load"}"#,
        "not json",
    ])
    func aMalformedPolicyIsRefused(_ text: String) {
        #expect(throws: LearnStoreError.self) { _ = try BalancerPolicy.decode(Array(text.utf8)) }
    }

    @Test func figuresReadBackAndOlderFiguresHaveNoLoad() throws {
        let figures = PartitionFigures(records: [0: 12, 5: 0], requestsPerSecond: [0: 300, 5: 1], at: 42)
        #expect(try PartitionFigures.decode(figures.encoded) == figures)
        #expect(try PartitionFigures.decode(Array(#"{"records":{"3":9},"at":1}"#.utf8)) == PartitionFigures(records: [3: 9], at: 1))
        for text in [#"{"records":{"4096":1},"at":1}"#, #"{"records":{"1":-1},"at":1}"#, #"{"records":{"1":1},"requests_per_second":[1],"at":1}"#,
                     #"{"records":{"1":1,"1":2},"at":1}"#, #"{"records":{}}"#]
        {
            #expect(throws: LearnStoreError.self, "\(text)") { _ = try PartitionFigures.decode(Array(text.utf8)) }
        }
    }
}
