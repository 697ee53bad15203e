import LearnStoreModel
import LearnStoreProtocol

/// The controller's part of a handover: the primary stops client writes and fences itself once the
/// target holds everything (HANDOVER), then the target is promoted like any member (the promotion's
/// quorum and up-to-date rule unchanged) and the placement recorded.
extension ClusterAgent {
    /// How long the controller asks the primary to wait for the target before giving the handover up.
    static let handoverLimit: Duration = .seconds(3)

    /// How often at most a group's controller hands its primary over to spread primaries over machines.
    static let spreadingCooldown: Duration = .seconds(60)

    /// In a partitioned cluster whose nodes name their machines: asks for a handover (as the operator
    /// would) when ``ControllerRules/spreadingHandover(_:group:registered:groups:)`` finds a member on a
    /// machine running fewer primaries, at most once per ``spreadingCooldown`` and only on the other
    /// groups' primaries as read within the last 10 s; never over a request under way (one the
    /// controller gave up is replaced).
    func spreadPrimaries(
        _ placement: ClusterPlacement, registered: [String: ClusterNodeEntry], request: EtcdClient.KeyValue?, guards: [EtcdClient.Compare],
        state: inout LoopState
    ) async throws(LearnStoreError) {
        let now = self.now()
        let requestGuard: EtcdClient.Compare
        if let request {
            guard HandoverRecord.decode(request.value)?.error != nil else { return }
            requestGuard = .modRevision(configuration.handoverKey, request.modRevision)
        } else {
            requestGuard = .createRevision(configuration.handoverKey, 0)
        }
        guard configuration.partitionMapName != nil, let read = state.lastGroupsRead, now - read <= .seconds(10),
            state.lastSpreadingHandover.map({ now - $0 >= Self.spreadingCooldown }) ?? true,
            let target = ControllerRules.spreadingHandover(placement, group: configuration.name, registered: registered, groups: topology.groupPrimaries)
        else { return }
        state.lastSpreadingHandover = now
        let record = HandoverRecord(to: target, epoch: placement.epoch)
        if try await etcd.transaction(if: guards + [requestGuard], put: [(configuration.handoverKey, record.encoded, 0)]) {
            logger.notice("cluster: the primary's machine runs other groups' primaries too; handing over to spread them", metadata: [
                "to": "\(target)", "machine": "\(registered[placement.primary]?.machine ?? "")",
            ])
        }
    }

    /// Why a promotion could not follow a handover now, or nil: it needs more than 2*m* members, and
    /// all but *m* of them answering.
    private func promotionRefusal(_ placement: ClusterPlacement) async -> String? {
        let minimum = node.minimumInSync
        guard placement.members.count > 2 * minimum else {
            return "\(placement.members.count) members cannot promote with a minimum of \(minimum) in-sync replicas (more than \(2 * minimum) are needed)"
        }
        var answering = 0
        for address in placement.members.values.sorted() where await peers.status(address, timeout: .milliseconds(300)).status != nil { answering += 1 }
        guard answering >= placement.members.count - minimum else {
            return "only \(answering) of \(placement.members.count) members answer; a promotion needs \(placement.members.count - minimum)"
        }
        return nil
    }

    /// Carries an operator's handover one step on. True when this round did something about it (the
    /// controller then skips its failover check: the primary it stopped is expected to look fenced).
    func handOver(
        _ placement: ClusterPlacement, request: EtcdClient.KeyValue, registered: [String: ClusterNodeEntry], guards: [EtcdClient.Compare],
        state: inout LoopState
    ) async throws(LearnStoreError) -> Bool {
        guard let record = HandoverRecord.decode(request.value), record.error == nil else { return false }
        func giveUp(_ reason: String) async throws(LearnStoreError) {
            state.handover = nil
            var failed = record
            failed.error = reason
            logger.warning("cluster: handover to \(record.to) given up: \(reason)")
            _ = try await etcd.transaction(if: guards + [.modRevision(configuration.handoverKey, request.modRevision)],
                                           put: [(configuration.handoverKey, failed.encoded, 0)])
        }
        if let refusal = record.refusal(placement, registered: Set(registered.keys)) {
            try await giveUp(refusal)
            return true
        }
        let now = self.now()
        if state.handover?.revision != request.modRevision {
            // The promotion that follows needs all but *m* members to answer; a primary stopped for a
            // handover that cannot be promoted away would leave the group with no primary at all.
            if let refusal = await promotionRefusal(placement) {
                try await giveUp(refusal)
                return true
            }
            state.handover = (request.modRevision, now, nil)
        }
        if let started = state.handover?.started, now - started > Self.handoverLimit {
            let last = state.handover?.refusal.map { " (the primary's last answer: \($0))" } ?? ""
            try await giveUp("\(record.to) did not catch up with the primary within \(Self.handoverLimit)\(last); the primary takes writes again")
            return true
        }
        guard let primaryAddress = placement.members[placement.primary], let targetAddress = placement.members[record.to] else { return false }
        let asked = HandoverRequest(epoch: placement.epoch, target: record.to, holdMilliseconds: 1_000)
        var handedOver = false
        var attempts = 0
        // Each attempt is a connection and a round trip; the target usually catches up within a few.
        while !handedOver, attempts < 100, self.now() - now < .seconds(1) {
            attempts += 1
            do throws(LearnStoreError) {
                handedOver = try await peers.handover(primaryAddress, asked, timeout: .milliseconds(300)).handedOver
            } catch where error.code == .notPrimary {
                try await giveUp("the primary refused: \(error.message)")
                return true
            } catch where error.code == .validation {
                // The target is not in sync yet (it may have just started or rejoined): the primary goes
                // on taking writes meanwhile, and the request is tried again until the limit.
                state.handover?.refusal = error.message
                return true
            } catch {
                // The primary did not answer: the failover check runs as in any round.
                return false
            }
        }
        guard handedOver else { return true }
        logger.notice("cluster: the primary stopped for a handover; promoting \(record.to)")
        let registeredAddresses = Set(registered.values.map(\.replication))
        let outcome: ClusterPromotion.Outcome
        do throws(LearnStoreError) {
            outcome = try await ClusterPromotion.promote(
                placement.members.values.sorted(), over: peers, minimumInSync: node.minimumInSync, node: targetAddress, eligible: registeredAddresses,
                minimumEpoch: placement.epoch + 1, timeout: .milliseconds(500))
        } catch {
            // The primary has fenced itself: the controller's checks now see it fail, and it is replaced
            // as after any failure.
            try await giveUp("promoting \(record.to) failed (\(error.message)); the fenced primary is replaced as after a failure")
            return true
        }
        state.handover = nil
        var next = placement
        next.primary = outcome.nodeID
        next.epoch = outcome.epoch
        let recorded = try await etcd.transaction(if: guards, put: [(configuration.placementKey, next.encoded, 0)], delete: [configuration.handoverKey])
        logger.notice("cluster: handed the primary over", metadata: ["primary": "\(outcome.nodeID)", "epoch": "\(outcome.epoch)", "recorded": "\(recorded)"])
        return true
    }
}
