import LearnStoreModel
@testable import LearnStoreServer
import Testing

/// The controller keeps a group's members on different machines (`serve --machine`) where its spares
/// allow, and a promotion favours machines running fewer other groups' primaries.
@Suite struct MachinePlacementTests {
    private func node(_ port: Int, _ machine: String?, role: NodeRole = .replica) -> ClusterNodeEntry {
        ClusterNodeEntry(replication: "127.0.0.1:\(port)", role: role, epoch: 4, machine: machine)
    }

    private func placement(_ members: [String], primary: String = "n0") -> ClusterPlacement {
        ClusterPlacement(epoch: 4, primary: primary, members: Dictionary(uniqueKeysWithValues: members.map { ($0, "127.0.0.1:\(7400 + Int($0.dropFirst())!)") }))
    }

    @Test func aNodeEntryCarriesItsMachineAndDropsAMalformedOne() {
        let entry = node(7401, "rack1-host3", role: .primary)
        #expect(ClusterNodeEntry.decode(entry.encoded) == entry)
        let bad = ClusterNodeEntry.decode(Array(#"{"replication":"127.0.0.1:1","role":"replica","epoch":1,"machine":"../etc"}"#.utf8))
        #expect(bad != nil && bad?.machine == nil, "a malformed machine name counts as none")
        #expect(ClusterNodeEntry.failureDomain(of: "n1", node(7401, nil)) != ClusterNodeEntry.failureDomain(of: "n2", node(7402, nil)),
                "nodes without a machine are machines of their own")
    }

    @Test func newMembersComeFromMachinesThatHoldNoneYet() {
        let registered = ["n0": node(7400, "a", role: .primary), "n1": node(7401, "a"), "n2": node(7402, "a"), "n3": node(7403, "b"), "n4": node(7404, "c")]
        let next = ControllerRules.reconciled(placement(["n0"]), registered: registered, replicationFactor: 3)
        #expect(Set(next.members.keys) == ["n0", "n3", "n4"], "not the lowest ids: they share n0's machine")
        #expect(ControllerRules.sharedMachines(next, registered: registered).isEmpty)
        let unnamed = registered.mapValues { ClusterNodeEntry(replication: $0.replication, role: $0.role, epoch: $0.epoch) }
        #expect(Set(ControllerRules.reconciled(placement(["n0"]), registered: unnamed, replicationFactor: 3).members.keys) == ["n0", "n1", "n2"],
                "without machine names, the lowest ids as before")
    }

    @Test func membersSharingAMachineAreSpreadByASpareOneAtATime() {
        // n0 (the primary) and n2 share machine a: its loss would take two of three members.
        let registered = ["n0": node(7400, "a", role: .primary), "n1": node(7401, "b"), "n2": node(7402, "a"), "n3": node(7403, "c")]
        let crowded = placement(["n0", "n1", "n2"])
        #expect(ControllerRules.sharedMachines(crowded, registered: registered).mapValues(Set.init) == ["machine a": ["n0", "n2"]])
        #expect(ControllerRules.spreadingSpare(crowded, registered: registered, replicationFactor: 3) == "n3")
        let joined = ControllerRules.reconciled(crowded, registered: registered, replicationFactor: 3)
        #expect(Set(joined.members.keys) == ["n0", "n1", "n2", "n3"], "the spare joins above the factor")
        #expect(ControllerRules.reconciled(joined, registered: registered, replicationFactor: 3) == joined, "and only one")
        #expect(ControllerRules.memberToReplace(joined, replicationFactor: 3, away: [], missing: [], registered: registered) == "n2",
                "the member sharing the primary's machine, not the highest id")
        #expect(ControllerRules.memberToReplace(joined, replicationFactor: 3, away: ["n1"], missing: ["n1"], registered: registered) == "n1",
                "a member away still goes first")
        var spread = joined
        spread.members["n2"] = nil
        #expect(ControllerRules.spreadingSpare(spread, registered: registered, replicationFactor: 3) == nil, "n2 waits as a spare on a machine with a member")
        #expect(ControllerRules.reconciled(spread, registered: registered, replicationFactor: 3) == spread, "the spreading ends")
    }

    /// Never on top of another replacement (seed 5000468 of `simulate-cluster --nodes 5
    /// --replication-factor 3 --machines 3 --lose-a-machine`: a member away let one spare join, then
    /// spreading let a second in, a spare lost with the primary's machine whose key had not expired,
    /// and five members with two dead could not promote).
    @Test func noSpreadingWhileAMemberIsMissingOrBeingReplacedOrAboveTheFactor() {
        let registered = ["n0": node(7400, "a", role: .primary), "n1": node(7401, "a"), "n2": node(7402, "b"), "n3": node(7403, "c")]
        let crowded = placement(["n0", "n1", "n2"])
        #expect(ControllerRules.spreadingSpare(crowded, registered: registered, replicationFactor: 3) == "n3")
        var missing = registered
        missing["n2"] = nil
        #expect(ControllerRules.spreadingSpare(crowded, registered: missing, replicationFactor: 3) == nil, "n2's key is gone")
        var replacing = crowded
        replacing.replacing = ["n2"]
        #expect(ControllerRules.spreadingSpare(replacing, registered: registered, replicationFactor: 3) == nil)
        var above = registered
        above["n4"] = node(7404, "d")
        #expect(ControllerRules.spreadingSpare(placement(["n0", "n1", "n2", "n3"]), registered: above, replicationFactor: 3) == nil)
    }

    @Test func noSpreadingWithoutASpareOnAFreeMachineOrWithoutAFactor() {
        let registered = ["n0": node(7400, "a", role: .primary), "n1": node(7401, "a"), "n2": node(7402, "b"), "n3": node(7403, "b")]
        let crowded = placement(["n0", "n1", "n2"])
        #expect(ControllerRules.spreadingSpare(crowded, registered: registered, replicationFactor: 3) == nil, "n3's machine already holds n2")
        #expect(ControllerRules.reconciled(crowded, registered: registered, replicationFactor: 3) == crowded)
        #expect(ControllerRules.spreadingSpare(crowded, registered: registered, replicationFactor: nil) == nil)
        let below = placement(["n0", "n1"])
        #expect(ControllerRules.spreadingSpare(below, registered: registered, replicationFactor: 3) == nil, "below the factor a node simply joins")
        #expect(Set(ControllerRules.reconciled(below, registered: registered, replicationFactor: 3).members.keys) == ["n0", "n1", "n2"])
    }

    @Test func aPromotionFavoursAMachineRunningFewerOtherPrimaries() {
        let registered = ["n0": node(7400, "a", role: .primary), "n1": node(7401, "a"), "n2": node(7402, "b")]
        let groups = [
            "gb": TopologyBoard.GroupPrimary(epoch: 3, primary: "b0", address: nil, machine: "b"),
            "gc": TopologyBoard.GroupPrimary(epoch: 2, primary: "c1", address: nil, machine: "b"),
            "gd": TopologyBoard.GroupPrimary(epoch: 2, primary: "d0", address: nil, machine: nil),
        ]
        let counts = ControllerRules.otherPrimaries(onMachinesOf: placement(["n0", "n1", "n2"]), registered: registered, groups: groups)
        #expect(counts == ["127.0.0.1:7400": 0, "127.0.0.1:7401": 0, "127.0.0.1:7402": 2])
    }

    @Test func aPrimarySharingAMachineWithOtherPrimariesIsHandedToAMemberOnAQuieterOne() {
        let registered = ["n0": node(7400, "a", role: .primary), "n1": node(7401, "b"), "n2": node(7402, "c")]
        let placement = placement(["n0", "n1", "n2"])
        func primary(_ machine: String?) -> TopologyBoard.GroupPrimary { TopologyBoard.GroupPrimary(epoch: 1, primary: "x", address: nil, machine: machine) }
        #expect(ControllerRules.spreadingHandover(placement, group: "gb", registered: registered, groups: ["ga": primary("a"), "gc": primary("b")]) == "n2",
                "machine a runs ga's primary too; c runs none, b runs gc's")
        #expect(ControllerRules.spreadingHandover(placement, group: "ga", registered: registered, groups: ["gb": primary("a")]) == nil,
                "of two groups on one machine only the greater name moves")
        #expect(ControllerRules.spreadingHandover(placement, group: "gb", registered: registered, groups: ["ga": primary("b")]) == nil, "a runs no other primary")
        #expect(ControllerRules.spreadingHandover(placement, group: "gb", registered: registered, groups: ["ga": primary("a"), "gc": primary("b"), "gd": primary("c")]) == nil,
                "every other machine runs one too: moving would not lower the sum of squares")
        #expect(ControllerRules.spreadingHandover(placement, group: "gd", registered: registered, groups: ["ga": primary("a"), "gb": primary("a"), "gc": primary("b")]) == "n2")
        var leaving = placement
        leaving.leaving = ["n2"]
        #expect(ControllerRules.spreadingHandover(leaving, group: "gb", registered: registered, groups: ["ga": primary("a"), "gc": primary("b")]) == nil,
                "b would run two; n2 is on its way out")
        var unnamed = registered
        unnamed["n0"] = node(7400, nil, role: .primary)
        #expect(ControllerRules.spreadingHandover(placement, group: "gb", registered: unnamed, groups: ["ga": primary("a")]) == nil)
    }
}
