import LearnStoreTestSupport
import Testing

@testable import LearnStoreServer

/// The control plane's deterministic simulation (`learnstore simulate-cluster` runs many more seeds).
@Suite struct ClusterSimulationTests {
    static func run(_ seeds: [UInt64], options: ClusterSimulation.Options = .init()) async -> [ClusterSimulation.Result] {
        await offTheCooperativePool {
            var results: [ClusterSimulation.Result] = []
            for seed in seeds { results.append(await ClusterSimulation(seed: seed, options: options).run()) }
            return results
        }
    }

    /// Each result kept every rule, or the failing seed's last events are reported.
    static func expectNoViolation(_ results: [ClusterSimulation.Result], sourceLocation: SourceLocation = #_sourceLocation) {
        for result in results {
            #expect(result.violation == nil, "seed \(result.seed): \(result.violation ?? "")\n\(result.trace.joined(separator: "\n"))",
                    sourceLocation: sourceLocation)
        }
    }

    @Test func seedsKeepOneHistoryAndRecover() async {
        var options = ClusterSimulation.Options()
        options.faultSeconds = 8
        options.settleSeconds = 8
        let results = await Self.run(Array(1...10), options: options)
        Self.expectNoViolation(results)
        // Fewer than one a seed: until the last node has joined, two of three nodes cannot promote.
        #expect(results.reduce(0) { $0 + $1.promotions } > 5, "the seeds fail primaries over")
        #expect(results.reduce(0) { $0 + $1.acknowledged } > 5_000)
    }

    /// Seeds that found bugs: 614, 916 and 974 promoted a node chosen before the others promised,
    /// losing writes acknowledged in between; 1640 left a primary that no replica would follow (they
    /// had promised a promotion that stalled) and that the controller saw as healthy. 8475 and 8923
    /// (the simulation's own check): a PROMOTE that reached a stopped node after a newer epoch began.
    /// These ran with etcd answering at once and every node there from the start.
    @Test func seedsThatOnceFailed() async {
        var options = ClusterSimulation.Options()
        options.interleavesEtcdCalls = false
        options.lastNodeJoinsLate = false
        let results = await Self.run([614, 916, 974, 1640, 8475, 8923], options: options)
        Self.expectNoViolation(results)
    }

    /// With etcd's calls interleaved too (every node there from the start): 597 let a deposed
    /// controller, resumed mid-promotion, and the new one both pick epoch 2 and both be promised it;
    /// two primaries of epoch 2 followed.
    @Test func interleavedSeedsThatOnceFailed() async {
        var options = ClusterSimulation.Options()
        options.lastNodeJoinsLate = false
        let results = await Self.run([597], options: options)
        Self.expectNoViolation(results)
    }

    /// The operator removes a node of four during the faults (and stops it for good half of the time).
    /// Removing it as soon as it was marked leaving, without waiting for the primary to stop counting
    /// it, lost acknowledged writes on seeds 189, 220, 625 and 844 (a promotion among the other members
    /// missed writes only the removed node had besides the old primary).
    @Test func removingANodeKeepsOneHistory() async {
        var options = ClusterSimulation.Options()
        options.nodes = 4
        options.removesANode = true
        let results = await Self.run([189, 220, 625, 844, 1, 2], options: options)
        Self.expectNoViolation(results)
        #expect(results.reduce(0) { $0 + $1.removals } >= 4, "the seeds remove nodes")
    }

    /// A replication factor of 3, a node lost for good: a spare takes its place. Seeds 12, 84 and 106
    /// (four nodes) and 600057 and 700009 (five, the last with an operator's removal too) ended with a
    /// member marked for replacement for good: it came back, and the controller replaced another member
    /// that was away, after which the members were no more than the factor. The controller now finishes
    /// a replacement it began and lifts the mark when the members are back to the factor. With the
    /// operator removing a node too, 700011 promoted the node being removed and 700020 and 700039 left
    /// it marked with too few members to remove it: a member on its way out is now promoted only when
    /// no other is as up to date, and it does not count toward the factor, so a spare joins for it.
    /// 1000014, 1000255 and 1000410 (four nodes, both) left the operator's node marked leaving for good:
    /// its removal was refused once the spare was lost too (too few members), and nobody called it off.
    /// The simulated operator now retries through the settling time and calls a removal off
    /// (`readmit-node`) after ten refusals in a row, as the runbook says. 1003607 broke safety: the first
    /// primary stopped before any replica followed it, so the promotion's nodes had never heard of its
    /// epoch and promoted another node to the same one; a replica then took the first primary's log of
    /// that epoch over the acknowledged one. The controller's promotions are now above the placement's epoch.
    @Test func aSpareReplacesALostMember() async {
        var options = ClusterSimulation.Options()
        options.nodes = 4
        options.replicationFactor = 3
        options.losesANode = true
        var results = await Self.run([12, 84, 106, 1, 2], options: options)
        options.removesANode = true
        results += await Self.run([1000014, 1000255, 1000410, 1003607], options: options)
        options.removesANode = false
        options.nodes = 5
        results += await Self.run([600057], options: options)
        options.removesANode = true
        results += await Self.run([700009, 700011, 700020, 700039], options: options)
        Self.expectNoViolation(results)
        #expect(results.reduce(0) { $0 + $1.membersDropped } >= 5, "members are replaced")
    }

    /// Five nodes on three machines, three members: the controller spreads the members over the
    /// machines (the simulation judges it by its own map of machines, within 20 s of the faults'
    /// end), then a whole machine is lost, the primary's half of the time, and the cluster recovers.
    /// With the spreading rule switched off, these four seeds and one more of the first 20 fail it.
    /// Seeds 5000468 and 5000644 (30 s of faults) ended with no primary: five members, two of them
    /// dead, cannot promote (all but one must answer). In the first, spreading let a spare join on top
    /// of a replacement already under way; in the second, the spare chosen to replace a member had
    /// died with the lost machine and its key had not expired yet, and it joined. Spreading now waits
    /// for the members to be exactly at the factor, all registered, and a node joins only if it
    /// answers a STATUS.
    @Test func membersSpreadOverMachinesSurviveTheLossOfOne() async {
        var options = ClusterSimulation.Options()
        options.nodes = 5
        options.replicationFactor = 3
        options.machines = 3
        options.losesAMachine = true
        options.faultSeconds = 15
        var results = await Self.run([6, 8, 15, 16], options: options)
        options.faultSeconds = 30
        results += await Self.run([5000468, 5000644], options: options)
        Self.expectNoViolation(results)
        #expect(results.reduce(0) { $0 + $1.machinesLost } == 6)
    }

    /// The operator asks for handovers to random members through the faults: the controller carries
    /// them out (the primary stops, fences itself once the target holds everything, the target is
    /// promoted) or gives them up, and every check holds.
    @Test func handoversKeepOneHistory() async {
        var options = ClusterSimulation.Options()
        options.faultSeconds = 10
        options.settleSeconds = 8
        options.handsOver = true
        options.lastNodeJoinsLate = false
        let results = await Self.run(Array(1...8), options: options)
        Self.expectNoViolation(results)
        #expect(results.reduce(0) { $0 + $1.handoversCompleted } >= 5, "handovers are carried out")
    }

    /// Two other groups' primaries move between three machines through the faults: this group's
    /// controller hands its primary over to spread them, and every check holds.
    @Test func spreadingPrimariesOverMachinesKeepsOneHistory() async {
        var options = ClusterSimulation.Options()
        options.faultSeconds = 10
        options.settleSeconds = 8
        options.machines = 3
        options.otherGroups = 2
        let results = await Self.run(Array(1...6), options: options)
        Self.expectNoViolation(results)
        #expect(results.reduce(0) { $0 + $1.spreadingHandovers } >= 3, "the controller spreads primaries")
    }

    @Test func aSeedReplaysExactly() async {
        var options = ClusterSimulation.Options()
        options.faultSeconds = 5
        options.settleSeconds = 5
        let first = await Self.run([77], options: options)[0]
        let second = await Self.run([77], options: options)[0]
        #expect(first.acknowledged == second.acknowledged && first.promotions == second.promotions && first.crashes == second.crashes
            && first.pauses == second.pauses && first.linkCuts == second.linkCuts && first.restartsRequested == second.restartsRequested)
    }
}
