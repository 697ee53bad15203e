import LearnStoreModel
import Testing

@testable import LearnStoreServer

/// The rules of `learnstore cluster remove-node`, and the members a primary counts.
@Suite struct MemberRemovalTests {
    static let placement = ClusterPlacement(
        epoch: 4, primary: "n0", members: ["n0": "127.0.0.1:7401", "n1": "127.0.0.1:7402", "n2": "127.0.0.1:7403", "n3": "127.0.0.1:7404"])

    static func replica(epoch: Int = 4, promised: Int = 4) -> JSONValue {
        .object([("role", .string("replica")), ("epoch", .number(String(epoch))), ("promised", .number(String(promised)))])
    }

    static func primary(members: [String], inSync: [String], epoch: Int = 4, minimumInSync: Int = 1) -> JSONValue {
        .object([
            ("role", .string("primary")), ("epoch", .number(String(epoch))), ("promised", .number(String(epoch))),
            ("minimum_in_sync", .number(String(minimumInSync))), ("in_sync", .array(inSync.map { .string($0) })),
            ("members", .array(members.map { .string($0) })),
        ])
    }

    /// Every member answering, the primary counting n1 ... n3 as members and in sync.
    static let steady: [String: JSONValue] = [
        "n0": primary(members: ["n1", "n2", "n3"], inSync: ["n1", "n2", "n3"]), "n1": replica(), "n2": replica(), "n3": replica(),
    ]

    @Test func aNodeIsFirstMarkedLeavingThenRemovedOnceNoPrimaryCountsIt() {
        guard case .mark(let marked) = MemberRemoval.next(Self.placement, removing: "n3", statuses: Self.steady) else {
            Issue.record("the first step marks the node leaving")
            return
        }
        #expect(marked.leaving == ["n3"] && marked.members.count == 4 && marked.acknowledgingMembers == ["n0", "n1", "n2"])
        guard case .wait(let reason) = MemberRemoval.next(marked, removing: "n3", statuses: Self.steady) else {
            Issue.record("the primary still counts n3")
            return
        }
        #expect(reason.contains("still counts n3"))
        var statuses = Self.steady
        statuses["n0"] = Self.primary(members: ["n1", "n2"], inSync: ["n1", "n2"])
        guard case .remove(let removed) = MemberRemoval.next(marked, removing: "n3", statuses: statuses) else {
            Issue.record("n3 can go")
            return
        }
        #expect(removed.members["n3"] == nil && removed.leaving.isEmpty && removed.removed == ["n3"] && removed.epoch == 4 && removed.primary == "n0")
        #expect(MemberRemoval.next(removed, removing: "n3", statuses: statuses) == .done)
        // A removed node that is down: its status is missing, three of four answer.
        statuses["n3"] = nil
        if case .remove = MemberRemoval.next(marked, removing: "n3", statuses: statuses) {} else { Issue.record("a node that is down can be removed") }
    }

    @Test func itWaitsWhileAFailoverMayBeUnderWay() {
        var marked = Self.placement
        marked.leaving = ["n3"]
        let counting = Self.primary(members: ["n1", "n2"], inSync: ["n1", "n2"])
        func step(_ change: (inout [String: JSONValue]) -> Void) -> MemberRemoval.Step {
            var statuses = Self.steady
            statuses["n0"] = counting
            change(&statuses)
            return MemberRemoval.next(marked, removing: "n3", statuses: statuses)
        }
        let waits: [(String, (inout [String: JSONValue]) -> Void)] = [
            ("the primary does not answer", { $0["n0"] = nil }),
            ("a fenced primary", { $0["n0"] = .object([("role", .string("fenced")), ("epoch", .number("4")), ("promised", .number("5")), ("minimum_in_sync", .number("1")), ("members", .array([])), ("in_sync", .array([]))]) }),
            ("a primary of another epoch", { $0["n0"] = Self.primary(members: ["n1", "n2"], inSync: ["n1"], epoch: 3) }),
            ("no in-sync replica besides n3", { $0["n0"] = Self.primary(members: ["n1", "n2"], inSync: ["n3"]) }),
            ("two members promised a newer epoch", { $0["n1"] = Self.replica(promised: 5); $0["n2"] = Self.replica(epoch: 5, promised: 5) }),
            ("a member promised, another is down", { $0["n1"] = Self.replica(promised: 5); $0["n2"] = nil }),
        ]
        for (name, change) in waits {
            guard case .wait = step(change) else {
                Issue.record("\(name): waits")
                continue
            }
        }
        if case .remove = step({ $0["n1"] = Self.replica(promised: 5) }) {} else { Issue.record("all but one member answer without a newer promise") }
    }

    @Test func itRefusesThePrimaryAStrangerAndTooFewMembersLeft() {
        guard case .refuse(let primary) = MemberRemoval.next(Self.placement, removing: "n0", statuses: Self.steady) else {
            Issue.record("the primary is refused")
            return
        }
        #expect(primary.contains("is the primary"))
        guard case .refuse = MemberRemoval.next(Self.placement, removing: "n9", statuses: Self.steady) else {
            Issue.record("a stranger is refused")
            return
        }
        var three = Self.placement
        three.members["n3"] = nil
        guard case .refuse(let few) = MemberRemoval.next(three, removing: "n2", statuses: Self.steady) else {
            Issue.record("two members left cannot fail over with one in-sync replica")
            return
        }
        #expect(few.contains("would leave 2 members") && few.contains("replacement"))
        var statuses = Self.steady
        statuses["n0"] = Self.primary(members: ["n1", "n2", "n3"], inSync: ["n1", "n2", "n3"], minimumInSync: 2)
        guard case .refuse = MemberRemoval.next(Self.placement, removing: "n3", statuses: statuses) else {
            Issue.record("with two in-sync replicas, three members left are too few")
            return
        }
    }

    /// With a replication factor of 3, a fourth node waits as a spare; it joins once a member has been
    /// away long enough, and the controller then removes that member (not as `removed`: it may come back
    /// as a spare).
    @Test func aSpareJoinsInPlaceOfAMemberThatIsAwayWhichThenLeaves() {
        var three = Self.placement
        three.members["n3"] = nil
        let registered: [String: ClusterNodeEntry] = [
            "n0": ClusterNodeEntry(replication: "127.0.0.1:7401", role: .primary, epoch: 4),
            "n2": ClusterNodeEntry(replication: "127.0.0.1:7403", role: .replica, epoch: 4),
            "n3": ClusterNodeEntry(replication: "127.0.0.1:7404", role: .replica, epoch: 4),
            "n4": ClusterNodeEntry(replication: "127.0.0.1:7405", role: .replica, epoch: 4),
        ]
        #expect(ControllerRules.reconciled(three, registered: registered, replicationFactor: 3) == three, "n3 and n4 are spares")
        #expect(ControllerRules.reconciled(three, registered: registered).members.count == 5, "without a factor every node is a member")
        let joined = ControllerRules.reconciled(three, registered: registered, replicationFactor: 3, away: ["n1"])
        #expect(Set(joined.members.keys) == ["n0", "n1", "n2", "n3"], "the lowest spare joins in n1's place")
        #expect(ControllerRules.reconciled(joined, registered: registered, replicationFactor: 3, away: ["n1"]) == joined, "one replacement per member away")
        #expect(ControllerRules.memberToReplace(three, replicationFactor: 3, away: ["n1"], missing: ["n1"]) == nil, "not before its replacement joined")
        #expect(ControllerRules.memberToReplace(joined, replicationFactor: 3, away: ["n1"], missing: ["n1", "n2"]) == "n1")
        #expect(ControllerRules.memberToReplace(joined, replicationFactor: 3, away: [], missing: ["n2"]) == "n2", "one whose key is gone first")
        #expect(ControllerRules.memberToReplace(joined, replicationFactor: 3, away: ["n0"], missing: ["n0"]) == "n3", "never the primary; else the highest id")
        #expect(ControllerRules.memberToReplace(joined, replicationFactor: nil, away: ["n1"], missing: ["n1"]) == nil)
        var statuses: [String: JSONValue] = ["n0": Self.primary(members: ["n1", "n2", "n3"], inSync: ["n2", "n3"]), "n2": Self.replica(), "n3": Self.replica()]
        guard case .mark(let marked) = MemberRemoval.next(joined, removing: "n1", statuses: statuses, purpose: .replacement) else {
            Issue.record("n1 is marked first")
            return
        }
        #expect(marked.replacing == ["n1"] && marked.leaving.isEmpty && marked.acknowledgingMembers == ["n0", "n2", "n3"])
        var operatorRemoving = joined
        operatorRemoving.leaving = ["n1"]
        #expect(ControllerRules.memberToReplace(operatorRemoving, replicationFactor: 3, away: ["n1"], missing: ["n1"]) == nil,
                "the operator removes n1: it does not count toward the factor, and the others are three")
        statuses["n0"] = Self.primary(members: ["n2", "n3"], inSync: ["n2", "n3"])
        guard case .remove(let replaced) = MemberRemoval.next(marked, removing: "n1", statuses: statuses, purpose: .replacement) else {
            Issue.record("n1 can go")
            return
        }
        #expect(Set(replaced.members.keys) == ["n0", "n2", "n3"] && replaced.removed.isEmpty && replaced.replacing.isEmpty)
        #expect(MemberRemoval.next(replaced, removing: "n1", statuses: statuses, purpose: .replacement) == .done)
        // Called off: with the members back to the factor, or the member promoted, the mark is lifted.
        var shrunk = marked
        shrunk.members["n3"] = nil
        #expect(ControllerRules.reconciled(shrunk, registered: registered, replicationFactor: 3).replacing.isEmpty)
        #expect(ControllerRules.reconciled(marked, registered: registered, replicationFactor: nil).replacing.isEmpty)
        #expect(ControllerRules.reconciled(marked, registered: registered, replicationFactor: 3, away: ["n1"]).replacing == ["n1"])
        var back = registered
        back["n1"] = ClusterNodeEntry(replication: "127.0.0.1:7402", role: .replica, epoch: 4)
        #expect(ControllerRules.reconciled(replaced, registered: back, replicationFactor: 3) == replaced, "n1 returns as a spare")
    }

    /// Three members and a spare, a replication factor of 3: the operator's removal marks the node, a
    /// spare joins for it (a member on its way out does not count toward the factor), then it goes.
    @Test func withASpareTheOperatorCanRemoveOneOfThreeMembers() {
        var three = Self.placement
        three.members["n3"] = nil
        let statuses: [String: JSONValue] = ["n0": Self.primary(members: ["n1", "n2"], inSync: ["n1", "n2"]), "n1": Self.replica(), "n2": Self.replica()]
        guard case .refuse = MemberRemoval.next(three, removing: "n2", statuses: statuses) else {
            Issue.record("no spare: refused")
            return
        }
        guard case .mark(let marked) = MemberRemoval.next(three, removing: "n2", statuses: statuses, spares: 1) else {
            Issue.record("with a spare: marked")
            return
        }
        #expect(MemberRemoval.next(marked, removing: "n2", statuses: statuses, spares: 1) == .wait("waiting for a spare to join the members in place of n2"))
        let registered: [String: ClusterNodeEntry] = [
            "n0": ClusterNodeEntry(replication: "127.0.0.1:7401", role: .primary, epoch: 4),
            "n1": ClusterNodeEntry(replication: "127.0.0.1:7402", role: .replica, epoch: 4),
            "n2": ClusterNodeEntry(replication: "127.0.0.1:7403", role: .replica, epoch: 4),
            "n4": ClusterNodeEntry(replication: "127.0.0.1:7405", role: .replica, epoch: 4),
        ]
        let joined = ControllerRules.reconciled(marked, registered: registered, replicationFactor: 3)
        #expect(Set(joined.members.keys) == ["n0", "n1", "n2", "n4"] && joined.leaving == ["n2"])
        #expect(ControllerRules.memberToReplace(joined, replicationFactor: 3, away: [], missing: []) == nil, "the operator's removal is not the controller's")
        let counting: [String: JSONValue] = [
            "n0": Self.primary(members: ["n1", "n4"], inSync: ["n1", "n4"]), "n1": Self.replica(), "n2": Self.replica(), "n4": Self.replica(),
        ]
        guard case .remove(let removed) = MemberRemoval.next(joined, removing: "n2", statuses: counting) else {
            Issue.record("n2 can go once the spare joined")
            return
        }
        #expect(Set(removed.members.keys) == ["n0", "n1", "n4"] && removed.removed == ["n2"])
    }

    /// `readmit-node` lifts `removed`, or calls off a removal under way (`leaving`), in a transaction
    /// guarded by the placement's revision.
    @Test func readmittingLiftsARemovalOrCallsOffOneUnderWay() async throws {
        let etcd = SimulatedEtcd(time: SimulatedTime())
        let configuration = ClusterConfiguration(endpoints: [])
        var placement = Self.placement
        placement.leaving = ["n3"]
        placement.removed = ["n9"]
        try await etcd.endpoint(for: "operator").put(configuration.placementKey, placement.encoded, lease: 0)
        func stored() async throws -> ClusterPlacement {
            try ClusterPlacement.decode(try #require(try await etcd.endpoint(for: "operator").get(configuration.placementKey)).value)
        }
        let endpoint = etcd.endpoint(for: "operator")
        var readmitted = try await MemberRemoval.readmit("n3", configuration: configuration, etcd: endpoint)
        var now = try await stored()
        #expect(readmitted && now.leaving.isEmpty && now.acknowledgingMembers.contains("n3"), "the removal under way is called off")
        readmitted = try await MemberRemoval.readmit("n9", configuration: configuration, etcd: endpoint)
        now = try await stored()
        #expect(readmitted && now.removed.isEmpty)
        readmitted = try await MemberRemoval.readmit("n1", configuration: configuration, etcd: endpoint)
        #expect(!readmitted, "a member in good standing")
    }

    /// A list of members read before a primary's epoch began may name a node removed since: a primary
    /// counts no replica until its agent read the members during its epoch.
    @Test func aPrimaryCountsOnlyMembersReadDuringItsEpoch() {
        var members = AcknowledgingMembers(controlPlane: true)
        #expect(members.nodeIDs == [] && members.isStale(role: .primary, epoch: 1), "a node that starts as the primary waits for its first read")
        var changed = members.update(["n1", "n2"], observedEpoch: 1, role: .replica, epoch: 1)
        #expect(changed)
        #expect(!members.isStale(role: .replica, epoch: 1))
        members.promoted()
        #expect(members.nodeIDs == [] && members.isStale(role: .primary, epoch: 2))
        changed = members.update(["n1", "n2"], observedEpoch: 1, role: .primary, epoch: 2)
        #expect(!changed, "read before the promotion")
        #expect(members.nodeIDs == [] && members.isStale(role: .primary, epoch: 2))
        changed = members.update(["n1"], observedEpoch: 2, role: .primary, epoch: 2)
        #expect(changed)
        #expect(members.nodeIDs == ["n1"] && !members.isStale(role: .primary, epoch: 2))
        #expect(members.isStale(role: .fenced, epoch: 3), "a fenced node of a newer epoch reads again")
        var none = AcknowledgingMembers(controlPlane: false)
        #expect(none.nodeIDs == nil && !none.isStale(role: .primary, epoch: 5))
        changed = none.update(["n1"], observedEpoch: 5, role: .primary, epoch: 5)
        #expect(!changed)
        none.promoted()
        #expect(none.nodeIDs == nil, "without a control plane every replica counts")
    }
}
