import LearnStoreTestSupport
import Testing

@testable import LearnStoreServer

/// Partition moves' deterministic simulation (`learnstore simulate-moves` runs many more seeds).
@Suite struct MoveSimulationTests {
    static func run(_ seeds: [UInt64], options: MoveSimulation.Options = .init()) async -> [MoveSimulation.Result] {
        await offTheCooperativePool {
            var results: [MoveSimulation.Result] = []
            for seed in seeds { results.append(await MoveSimulation(seed: seed, options: options).run()) }
            return results
        }
    }

    static func expectNoFailure(_ results: [MoveSimulation.Result], sourceLocation: SourceLocation = #_sourceLocation) {
        for result in results {
            #expect(result.failure == nil, "seed \(result.seed): \(result.failure ?? "")\n\(result.trace.joined(separator: "\n"))", sourceLocation: sourceLocation)
        }
    }

    @Test func seedsLoseNoAcknowledgedWrite() async {
        let results = await Self.run(Array(1...150))
        Self.expectNoFailure(results)
        func total(_ figure: (MoveSimulation.Result) -> Int) -> Int { results.map(figure).reduce(0, +) }
        #expect(total(\.movesCompleted) > 100 && total(\.copiesFailed) > 100 && total(\.failovers) > 100 && total(\.releases) > 50,
                "moves completed \(total(\.movesCompleted)), copies failed \(total(\.copiesFailed)), failovers \(total(\.failovers)), releases \(total(\.releases))")
        #expect(total(\.acknowledged) > 1500)
        #expect(total(\.outcomeIngests) > 500 && total(\.outcomeRowsCompared) > 100,
                "outcome results ingested \(total(\.outcomeIngests)), outcome rows compared at completed moves \(total(\.outcomeRowsCompared))")
        #expect(total(\.copiesCompared) * 10 >= total(\.movesCompleted) * 9 && total(\.completedAfterFirstCopy) > 50 && total(\.changedPieces) > 50,
                "compared \(total(\.copiesCompared)), after a first copy \(total(\.completedAfterFirstCopy)), changed pieces \(total(\.changedPieces))")
    }

    /// Seeds that failed while moves were built: a source primary promoted with a map older than the
    /// move took the partition's writes (1007, 1008, 1011: a new primary's writes now wait until it has
    /// read the map in its epoch); a primary promoted with an old map released tenants that had moved
    /// back to its group (1024); a copy of a move that had completed, by a target holding an old map,
    /// emptied tenants its group served (1389: a copy now starts only while etcd has the move); a
    /// first copy that read a write the source then lost in a failover left it in the target (130:
    /// the target empties the partition's tenants the fenced answer does not name); a source primary
    /// restarted in place answered before it had recovered its tenants, naming none, and the target
    /// completed the move without them (971, 994: a node exports, copies and releases only once it has
    /// recovered); a create refused by the write gate took back its key but not the one it had pushed
    /// out of a full table, so the source's keys differed from the copy's (602396: the engine's undo
    /// puts the pushed-out key back).
    @Test func seedsThatOnceFailed() async {
        var asFound = MoveSimulation.Options()
        asFound.outcomes = false
        asFound.pieceItems = 2000
        Self.expectNoFailure(await Self.run([130, 971, 994, 1007, 1008, 1011, 1014, 1024, 1265, 1389, 602396], options: asFound))
    }

    /// Each group under its control plane: leases, controllers and promotions decide who is the
    /// primary while nodes crash, pause and lose etcd or one another during the moves, and (the last
    /// three seeds) the operator hands primaries over.
    @Test func seedsUnderTheControlPlanesLoseNoAcknowledgedWrite() async {
        var options = MoveSimulation.Options()
        options.controlPlane = true
        options.faultSeconds = 15
        options.settleSeconds = 5
        var handingOver = options
        handingOver.handsOver = true
        let results = await Self.run(Array(1...3), options: options) + Self.run(Array(4...6), options: handingOver)
        Self.expectNoFailure(results)
        func total(_ figure: (MoveSimulation.Result) -> Int) -> Int { results.map(figure).reduce(0, +) }
        #expect(total(\.failovers) > 10 && total(\.restarts) > 10 && total(\.faults) > 50 && total(\.movesCompleted) > 20 && total(\.acknowledged) > 500,
                "promotions \(total(\.failovers)), restarts \(total(\.restarts)), faults \(total(\.faults)), moves completed \(total(\.movesCompleted)), acknowledged \(total(\.acknowledged))")
        #expect(total(\.handoversCompleted) > 5, "handovers asked \(total(\.handoversAsked)), completed \(total(\.handoversCompleted))")
    }

    /// The seed that found a promoted primary counting its inherited tail as committed at once
    /// (docs/REPLICATION.md, "Promotion"). In group ga, n0 (primary of epoch 7) writes LSNs 209-234
    /// unacknowledged; n2, promoted to epoch 8 from 208 records, writes 209-211; n0, promoted to epoch
    /// 9, acknowledged its log as soon as n1 followed it; n0 stopped, and n2 (last record of epoch 8)
    /// was promoted to epoch 10 over n1 (234 records of epoch 7), cutting what epoch 9 acknowledged.
    /// Now n1, holding the log epoch 9 started with, ranks in epoch 9 and is promoted instead.
    /// Seed 20000251 failed once logs ranked so: n2, paused while a handover's PROMOTE to epoch 9
    /// waited for it, followed the primary of epoch 10 on waking and then took the stale PROMOTE as
    /// epoch 11, which no quorum had promised; ranked in epoch 11, its log was preferred over those
    /// holding writes epoch 10 acknowledged after. A PROMOTE of an epoch not above the node's is now
    /// refused.
    @Test func aPromotedPrimarysInheritedTailSurvivesTheNextPromotion() async {
        var options = MoveSimulation.Options()
        options.controlPlane = true
        options.handsOver = true
        let results = await Self.run([20_000_638, 20_000_251], options: options)
        Self.expectNoFailure(results)
    }

    /// Moves the balancer chooses are moves like the operator's: the same faults, the same checks.
    @Test func seedsWithTheBalancerChoosingMovesLoseNoAcknowledgedWrite() async {
        var options = MoveSimulation.Options()
        options.balancer = true
        let results = await Self.run(Array(1...60), options: options)
        Self.expectNoFailure(results)
        let chosen = results.map(\.balancerMoves).reduce(0, +)
        #expect(chosen > 20 && results.map(\.movesCompleted).reduce(0, +) > 40, "balancer moves \(chosen)")
    }
}
