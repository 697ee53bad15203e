import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import NIOCore
import Synchronization

/// A node of the control plane's simulation, with the replication rules the control plane relies on
/// (docs/REPLICATION.md): its log is the epoch of each record; a replica follows the primary of the
/// newest epoch it has not promised past and takes the primary's log (a cut where they differ); a
/// PROMISE of a newer epoch fences a primary and makes a replica refuse every older primary; a
/// PROMOTE makes a replica the primary of an epoch above its own and any it promised. Its log,
/// epoch and promise survive a crash.
final class SimulatedClusterNode: ClusterNodeControl, @unchecked Sendable {
    struct State {
        var role: NodeRole = .replica
        var epoch: UInt64 = 0
        var promised: UInt64 = 0
        var promisedTo: UUID16?
        /// The members etcd's placement listed (less those leaving) when the node's agent last read it.
        var members = AcknowledgingMembers(controlPlane: true)
        /// As a primary: the members that followed it in the last step of the replication.
        var inSync: [String] = []
        /// The epoch of each record, LSN 1 first.
        var log: [UInt64] = []
        /// As a primary: how much of its log its in-sync replicas held at the last step of the replication.
        var syncedLogCount = 0
        /// As a primary handing its place over: until when it takes no writes.
        var writesStoppedUntil: Int64 = 0
        var alive = true
        var pausedUntil: Int64 = 0
        var restartRequested = false
    }

    let nodeID: String
    let minimumInSync: Int
    let state = Mutex(State())

    init(nodeID: String, minimumInSync: Int) {
        self.nodeID = nodeID
        self.minimumInSync = minimumInSync
    }

    var address: String { Self.address(of: nodeID) }
    static func address(of node: String) -> String { "\(node).sim:7000" }

    var role: NodeRole { state.withLock { $0.role } }
    var epoch: UInt64 { state.withLock { $0.epoch } }

    /// Where the node's events are noted (the simulation's trace).
    var onEvent: @Sendable (String) -> Void = { _ in }

    func fence(reason: String) {
        let fenced = state.withLock { state -> Bool in
            guard state.role == .primary else { return false }
            state.role = .fenced
            return true
        }
        if fenced { onEvent("\(nodeID) fenced: \(reason)") }
    }

    func requestRestart(_ reason: String) {
        state.withLock { $0.restartRequested = true }
        onEvent("\(nodeID) asks to restart: \(reason)")
    }

    /// A simulated replica reaches every running primary (``SimulatedReplication``), so the list is not kept.
    func setFollowAddresses(_ addresses: [String]) {}

    func setMembers(_ nodeIDs: Set<String>, observedEpoch: UInt64) {
        state.withLock { state in _ = state.members.update(nodeIDs, observedEpoch: observedEpoch, role: state.role, epoch: state.epoch) }
    }

    var needsMembers: Bool { state.withLock { $0.members.isStale(role: $0.role, epoch: $0.epoch) } }

    /// The STATUS document's members a promotion reads. A node's log is in its epoch
    /// (``EpochHistory/logEpoch(through:)``): a replica takes its primary's log whole, so it holds the
    /// log that primary started its epoch with, and a promoted node starts its epoch after its own.
    var status: JSONValue {
        state.withLock { state in
            var fields: [(String, JSONValue)] = [
                ("role", .string(state.role.name)), ("epoch", .number(String(state.epoch))), ("promised", .number(String(state.promised))),
                ("last_epoch", .number(String(state.epoch))), ("durable_lsn", .number(String(state.log.count))),
            ]
            if state.role != .replica {
                fields.append(("minimum_in_sync", .number(String(minimumInSync))))
                fields.append(("in_sync", .array(state.inSync.map { .string($0) })))
                fields.append(("members", .array((state.members.nodeIDs ?? []).sorted().map { .string($0) })))
            }
            return .object(fields)
        }
    }

    /// Whether `promotion` is promised `epoch`, by the rule of ``EpochHistory/promise(_:to:)``.
    func promise(_ epoch: UInt64, to promotion: UUID16) -> Bool {
        let (granted, fenced) = state.withLock { state -> (Bool, Bool) in
            let granted = EpochHistory.promise(epoch, to: promotion, promised: &state.promised, promisedTo: &state.promisedTo) != .refused
            guard state.role == .primary && epoch > state.epoch else { return (granted, false) }
            state.role = .fenced
            return (granted, true)
        }
        onEvent("\(nodeID) \(granted ? "promised" : "refused to promise") epoch \(epoch)\(fenced ? ", fencing itself" : "")")
        return granted
    }

    /// HANDOVER, by the rule of ``ReplicationNode/handover(_:)``: writes stop until `now` plus the hold,
    /// and once the target and enough replicas to acknowledge hold the whole log, the node fences itself.
    func handover(_ request: HandoverRequest, now: Int64) throws(LearnStoreError) -> HandoverReply {
        let reply = try state.withLock { (state: inout State) throws(LearnStoreError) -> HandoverReply in
            guard state.role == .primary, state.epoch == request.epoch else { throw LearnStoreError(.notPrimary, "\(nodeID) is not the primary of epoch \(request.epoch)") }
            guard request.target != nodeID, state.inSync.contains(request.target) else {
                throw LearnStoreError(.validation, "\(request.target) is not an in-sync replica of \(nodeID)")
            }
            state.writesStoppedUntil = now + Int64(request.holdMilliseconds)
            let caughtUp = state.syncedLogCount == state.log.count && state.inSync.count >= minimumInSync
            if caughtUp { state.role = .fenced }
            return HandoverReply(handedOver: caughtUp, lastLSN: UInt64(state.log.count), targetDurableLSN: UInt64(state.syncedLogCount))
        }
        onEvent("\(nodeID) \(reply.handedOver ? "handed over to \(request.target), fencing itself" : "stops writes to hand over to \(request.target)")")
        return reply
    }

    func promote(atLeast requested: UInt64, promotion: UUID16) throws(LearnStoreError) -> PromoteReply {
        try state.withLock { (state: inout State) throws(LearnStoreError) -> PromoteReply in
            guard state.role != .primary else { throw LearnStoreError(.validation, "\(nodeID) is already a primary") }
            guard requested > state.epoch else { throw LearnStoreError(.validation, "\(nodeID) knows epoch \(state.epoch): the promotion to \(requested) is stale") }
            let epoch = requested
            guard epoch >= state.promised else { throw LearnStoreError(.validation, "epoch \(epoch) is below the promised \(state.promised)") }
            guard epoch > state.promised || state.promisedTo == promotion else {
                throw LearnStoreError(.validation, "\(nodeID) promised epoch \(epoch) to another promotion")
            }
            state.role = .primary
            state.epoch = epoch
            state.promisedTo = nil
            state.members.promoted()
            state.inSync = []
            return PromoteReply(epoch: epoch, firstLSN: UInt64(state.log.count) + 1)
        }
    }
}

/// How one simulated node reaches the others: not at all while either is down or paused, or the link
/// between them is cut. Each call waits for its turn (``SimulatedScheduler``).
struct SimulatedPeers: PromotionTransport {
    let from: String
    let cluster: SimulatedCluster

    private func reach(_ address: String) async -> SimulatedClusterNode? {
        guard await cluster.scheduler.turn(from) else { return nil }
        return cluster.reachable(address, from: from)
    }

    func status(_ address: String, timeout: TimeAmount) async -> ClusterPromotion.NodeStatus {
        guard let node = await reach(address) else {
            return ClusterPromotion.NodeStatus(address: address, status: nil, error: "no answer (simulated)")
        }
        return ClusterPromotion.NodeStatus(address: address, status: node.status, error: nil)
    }

    func promise(_ address: String, epoch: UInt64, promotion: UUID16, timeout: TimeAmount) async -> Bool {
        guard let node = await reach(address) else { return false }
        return node.promise(epoch, to: promotion)
    }

    func promote(_ address: String, epoch: UInt64, promotion: UUID16) async throws(LearnStoreError) -> (nodeID: String, reply: PromoteReply) {
        guard let node = await reach(address) else { throw LearnStoreError(.connectionFailed, "\(address): no answer (simulated)") }
        let reply = try node.promote(atLeast: epoch, promotion: promotion)
        cluster.promoted(node, epoch: reply.epoch)
        return (node.nodeID, reply)
    }

    func handover(_ address: String, _ request: HandoverRequest, timeout: TimeAmount) async throws(LearnStoreError) -> HandoverReply {
        guard let node = await reach(address) else { throw LearnStoreError(.connectionFailed, "\(address): no answer (simulated)") }
        return try node.handover(request, now: cluster.time.now)
    }
}
