import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol

/// A primary handing its place to an in-sync replica (HANDOVER, docs/PROTOCOL.md E.9): it stops
/// taking client writes, and once the replica holds everything it wrote and every write is
/// acknowledged it fences itself, so the controller promotes that replica with nothing to cut and no
/// request left to answer `OUTCOME_UNKNOWN`.
extension ReplicationNode {
    /// One HANDOVER request: stops client writes (again) for `holdMilliseconds`, and fences this node
    /// if `target` has caught up. Refused unless this node is the primary of `epoch` and `target` an
    /// in-sync replica of it.
    func handover(_ request: HandoverRequest) throws(LearnStoreError) -> HandoverReply {
        let now = clock.now().milliseconds
        let refusal = LearnStoreError(
            .notPrimary, "node \(configuration.nodeID) is handing its place as the primary to \(request.target); send writes to the new primary")
        let (wal, durable, began) = try state.withLock { state throws(LearnStoreError) -> (WriteAheadLog, UInt64, Bool) in
            guard state.role == .primary, let wal = state.wal, state.history.currentEpoch == request.epoch else {
                throw LearnStoreError(.notPrimary, "node \(configuration.nodeID) is not the primary of epoch \(request.epoch)")
            }
            guard request.target != configuration.nodeID, let replica = state.replicaSet.replicas[request.target], replica.inSync else {
                throw LearnStoreError(.validation, "\(request.target) is not an in-sync replica of \(configuration.nodeID)")
            }
            let began = state.handoverUntil == nil
            state.handoverUntil = now + Int64(request.holdMilliseconds)
            // Under the state's lock, as the role is read: a fence in between cannot be undone here.
            wal.clientWriteRefusal = refusal
            return (wal, replica.durableLSN, began)
        }
        if began { logger.notice("handing over: client writes stop until the replica holds them all", metadata: ["to": "\(request.target)"]) }
        let last = wal.nextLSN - 1
        let caughtUp = wal.committedLSN >= last && durable >= last
        if caughtUp { fence(reason: "it handed its place over to \(request.target)") }
        return HandoverReply(handedOver: caughtUp, lastLSN: last, targetDurableLSN: durable)
    }

    /// A handover that was not renewed in time (its controller stopped asking, or the replica did not
    /// catch up): a primary that has not fenced itself takes client writes again.
    func endLapsedHandover(nowMilliseconds now: Int64) {
        let resumed = state.withLock { state -> Bool in
            guard let until = state.handoverUntil, now >= until else { return false }
            state.handoverUntil = nil
            guard state.role == .primary, let wal = state.wal else { return false }
            wal.clientWriteRefusal = nil
            return true
        }
        if resumed { logger.warning("handover not completed in time; this primary takes client writes again") }
    }
}
