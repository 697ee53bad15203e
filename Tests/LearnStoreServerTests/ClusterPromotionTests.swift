import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import NIOCore
import Synchronization
import Testing

@testable import LearnStoreServer

/// The promotion's rules against scripted nodes: who must promise, and what the new primary is chosen from.
@Suite struct ClusterPromotionTests {
    /// Nodes whose STATUS changes once they promised: `before` and `after` are their durable LSNs.
    final class ScriptedNodes: PromotionTransport, @unchecked Sendable {
        struct Node {
            var role = "replica"
            var lsnBefore: UInt64
            var lsnAfter: UInt64
            var promises = true
            var promised: UInt64 = 0
            var promisedTo: UUID16?
            /// What STATUS says was promised, when it is stale.
            var reportedPromise: UInt64?
        }

        let nodes: Mutex<[String: Node]>
        let promoted = Mutex<String?>(nil)

        init(_ nodes: [String: Node]) { self.nodes = Mutex(nodes) }

        func status(_ address: String, timeout: TimeAmount) async -> ClusterPromotion.NodeStatus {
            guard let node = nodes.withLock({ $0[address] }) else {
                return ClusterPromotion.NodeStatus(address: address, status: nil, error: "down")
            }
            let lsn = node.promised > 0 ? node.lsnAfter : node.lsnBefore
            return ClusterPromotion.NodeStatus(address: address, status: .object([
                ("role", .string(node.role)), ("epoch", .number("3")), ("promised", .number(String(node.reportedPromise ?? max(3, node.promised)))),
                ("last_epoch", .number("3")), ("durable_lsn", .number(String(lsn))),
            ]), error: nil)
        }

        func promise(_ address: String, epoch: UInt64, promotion: UUID16, timeout: TimeAmount) async -> Bool {
            nodes.withLock { nodes in
                guard var node = nodes[address], node.promises else { return false }
                defer { nodes[address] = node }
                return EpochHistory.promise(epoch, to: promotion, promised: &node.promised, promisedTo: &node.promisedTo) != .refused
            }
        }

        func promote(_ address: String, epoch: UInt64, promotion: UUID16) async throws(LearnStoreError) -> (nodeID: String, reply: PromoteReply) {
            promoted.withLock { $0 = address }
            return (address, PromoteReply(epoch: epoch, firstLSN: 100))
        }

        func handover(_ address: String, _ request: HandoverRequest, timeout: TimeAmount) async throws(LearnStoreError) -> HandoverReply {
            throw LearnStoreError(.validation, "promotions only")
        }
    }

    /// b was behind a when their STATUS was first read, then took more of the old primary's writes
    /// (acknowledged through it) before it promised: the new primary must be b, or those writes are lost.
    @Test func theNewPrimaryIsChosenFromWhatTheNodesHoldAfterTheyPromised() async throws {
        let nodes = ScriptedNodes(["a:1": .init(lsnBefore: 11, lsnAfter: 11), "b:1": .init(lsnBefore: 10, lsnAfter: 12)])
        let outcome = try await ClusterPromotion.promote(["old:1", "a:1", "b:1"], over: nodes, minimumInSync: 1, timeout: .seconds(1))
        #expect(outcome.address == "b:1")
        #expect(outcome.epoch == 4)
        #expect(outcome.promisedBy == 2)
    }

    /// The epoch is above the placement's even when no reachable node has heard of it (its primary
    /// stopped before a replica followed it), and a node on its way out is chosen only when no other
    /// is as up to date.
    @Test func theEpochIsAboveTheMinimumAndAPreferredNodeIsChosenAmongEquals() async throws {
        let nodes = ScriptedNodes(["a:1": .init(lsnBefore: 12, lsnAfter: 12), "b:1": .init(lsnBefore: 12, lsnAfter: 12)])
        var outcome = try await ClusterPromotion.promote(
            ["old:1", "a:1", "b:1"], over: nodes, minimumInSync: 1, preferred: ["b:1"], minimumEpoch: 9, timeout: .seconds(1))
        #expect(outcome.epoch == 9, "the nodes know epoch 3 only")
        #expect(outcome.address == "b:1", "a leaves: b is as up to date")
        nodes.nodes.withLock { $0["b:1"]!.lsnAfter = 11 }
        outcome = try await ClusterPromotion.promote(["old:1", "a:1", "b:1"], over: nodes, minimumInSync: 1, preferred: ["b:1"], timeout: .seconds(1))
        #expect(outcome.address == "a:1", "b lacks what a holds")
    }

    /// Among preferred nodes as up to date as the best, the one whose machine runs the fewest other
    /// groups' primaries; never one that lacks what another holds.
    @Test func amongEqualsTheNodeOnAMachineWithFewerOtherPrimariesIsChosen() async throws {
        let nodes = ScriptedNodes(["a:1": .init(lsnBefore: 12, lsnAfter: 12), "b:1": .init(lsnBefore: 12, lsnAfter: 12)])
        var outcome = try await ClusterPromotion.promote(
            ["old:1", "a:1", "b:1"], over: nodes, minimumInSync: 1, preferred: ["a:1", "b:1"], otherPrimaries: ["a:1": 1, "b:1": 0], timeout: .seconds(1))
        #expect(outcome.address == "b:1")
        nodes.nodes.withLock { $0["b:1"]!.lsnAfter = 11 }
        outcome = try await ClusterPromotion.promote(
            ["old:1", "a:1", "b:1"], over: nodes, minimumInSync: 1, preferred: ["a:1", "b:1"], otherPrimaries: ["a:1": 1, "b:1": 0], timeout: .seconds(1))
        #expect(outcome.address == "a:1", "b lacks what a holds")
    }

    /// Four nodes, one in-sync replica needed: the old primary can acknowledge with any one replica,
    /// so all three others must promise before it is fenced from every one of them.
    @Test func allButMinimumInSyncNodesMustPromise() async throws {
        let nodes = ScriptedNodes([
            "a:1": .init(lsnBefore: 10, lsnAfter: 10), "b:1": .init(lsnBefore: 10, lsnAfter: 10),
            "c:1": .init(lsnBefore: 10, lsnAfter: 10, promises: false),
        ])
        await #expect(throws: LearnStoreError.self) {
            try await ClusterPromotion.promote(["old:1", "a:1", "b:1", "c:1"], over: nodes, minimumInSync: 1, timeout: .seconds(1))
        }
        #expect(nodes.promoted.withLock { $0 } == nil, "nothing is promoted")
        nodes.nodes.withLock { $0["c:1"]!.promises = true }
        let outcome = try await ClusterPromotion.promote(["old:1", "a:1", "b:1", "c:1"], over: nodes, minimumInSync: 1, timeout: .seconds(1))
        #expect(outcome.promisedBy == 3)
    }

    /// The controller promotes only a node registered in etcd (one whose lease lapsed would fence
    /// itself at once), and only if it is as up to date as the most up-to-date node that promised.
    @Test func onlyAnEligibleNodeAsUpToDateAsEveryPromiserIsPromoted() async throws {
        let nodes = ScriptedNodes(["a:1": .init(lsnBefore: 12, lsnAfter: 12), "b:1": .init(lsnBefore: 10, lsnAfter: 10)])
        do {
            _ = try await ClusterPromotion.promote(["old:1", "a:1", "b:1"], over: nodes, minimumInSync: 1, eligible: ["b:1"], timeout: .seconds(1))
            Issue.record("b lacks what a holds: nothing may be promoted")
        } catch {
            #expect(error.code == .notYet)
        }
        #expect(nodes.promoted.withLock { $0 } == nil)
        nodes.nodes.withLock { $0["b:1"]!.lsnAfter = 12 }
        let outcome = try await ClusterPromotion.promote(["old:1", "a:1", "b:1"], over: nodes, minimumInSync: 1, eligible: ["b:1"], timeout: .seconds(1))
        #expect(outcome.address == "b:1", "as up to date as a, and registered")
    }

    @Test func aNodeThatDoesNotAnswerAfterPromisingCanLeaveTooFewToChooseFrom() async throws {
        let nodes = ScriptedNodes(["a:1": .init(lsnBefore: 10, lsnAfter: 10), "b:1": .init(lsnBefore: 10, lsnAfter: 10)])
        final class Vanishing: PromotionTransport, @unchecked Sendable {
            let inner: ScriptedNodes
            init(_ inner: ScriptedNodes) { self.inner = inner }
            func status(_ address: String, timeout: TimeAmount) async -> ClusterPromotion.NodeStatus { await inner.status(address, timeout: timeout) }
            func promise(_ address: String, epoch: UInt64, promotion: UUID16, timeout: TimeAmount) async -> Bool {
                let promised = await inner.promise(address, epoch: epoch, promotion: promotion, timeout: timeout)
                if address == "b:1" { inner.nodes.withLock { _ = $0.removeValue(forKey: "b:1") } }
                return promised
            }
            func promote(_ address: String, epoch: UInt64, promotion: UUID16) async throws(LearnStoreError) -> (nodeID: String, reply: PromoteReply) {
                try await inner.promote(address, epoch: epoch, promotion: promotion)
            }
            func handover(_ address: String, _ request: HandoverRequest, timeout: TimeAmount) async throws(LearnStoreError) -> HandoverReply {
                try await inner.handover(address, request, timeout: timeout)
            }
        }
        do {
            _ = try await ClusterPromotion.promote(["old:1", "a:1", "b:1"], over: Vanishing(nodes), minimumInSync: 1, timeout: .seconds(1))
            Issue.record("a promotion that cannot see what b holds must not go on")
        } catch {
            #expect(error.code == .storageUnavailable)
        }
        #expect(nodes.promoted.withLock { $0 } == nil)
    }

    /// Two promotions that read the same STATUS pick the same epoch (a deposed controller finishing
    /// its round while the new one starts). A node promises that epoch to the first that asks; the
    /// second is refused by every node that promised the first and, short of all but `m`, promotes
    /// nothing: two primaries of one epoch would pass for one history.
    @Test func aNodeThatPromisedTheEpochToAnotherPromotionDoesNotCount() async throws {
        let nodes = ScriptedNodes(["a:1": .init(lsnBefore: 10, lsnAfter: 10), "b:1": .init(lsnBefore: 10, lsnAfter: 10)])
        let other = UUID16.random()
        #expect(await nodes.promise("a:1", epoch: 4, promotion: other, timeout: .seconds(1)))
        // a's STATUS still says 3 promised, as it did when both promotions read it.
        nodes.nodes.withLock { $0["a:1"]!.reportedPromise = 3 }
        do {
            _ = try await ClusterPromotion.promote(["old:1", "a:1", "b:1"], over: nodes, minimumInSync: 1, timeout: .seconds(1))
            Issue.record("only b promised epoch 4 to this promotion: nothing may be promoted")
        } catch {
            #expect(error.code == .storageUnavailable)
        }
        #expect(nodes.promoted.withLock { $0 } == nil)
        // Asked again, the promotion reads epoch 4 promised and picks 5, which both promise.
        nodes.nodes.withLock { $0["a:1"]!.reportedPromise = nil }
        let outcome = try await ClusterPromotion.promote(["old:1", "a:1", "b:1"], over: nodes, minimumInSync: 1, timeout: .seconds(1))
        #expect(outcome.epoch == 5 && outcome.promisedBy == 2)
    }
}
