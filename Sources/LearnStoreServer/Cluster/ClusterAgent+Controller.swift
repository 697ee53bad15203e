import LearnStoreModel

/// The controller's part of a round: placement updates, replacements by spares, handovers, and failover.
extension ClusterAgent {
    /// One round as the controller: records new members and primaries it did not promote, carries a
    /// replacement or an operator's handover on, and promotes a replica when the primary failed.
    func control(
        _ placement: ClusterPlacement, revision: Int64, controllerRevision: Int64, registered: [String: ClusterNodeEntry],
        handover: EtcdClient.KeyValue? = nil, state: inout LoopState
    ) async throws(LearnStoreError) {
        let guards: [EtcdClient.Compare] = [.modRevision(configuration.placementKey, revision), .modRevision(configuration.controllerKey, controllerRevision)]
        let (away, missing) = absentMembers(placement, registered: registered, state: &state)
        var next = await reconciledWithAnsweringNodes(placement, registered: registered, away: away)
        if next != placement {
            if try await etcd.transaction(if: guards, put: [(configuration.placementKey, next.encoded, 0)]) {
                logger.notice("cluster: placement updated", metadata: ["primary": "\(next.primary)", "epoch": "\(next.epoch)", "members": "\(next.members.count)"])
            }
            return
        }
        if let replaced = ControllerRules.memberToReplace(
            placement, replicationFactor: configuration.replicationFactor, away: away, missing: missing, registered: registered),
            try await replacementStep(replaced, placement, guards: guards, state: &state)
        {
            return
        }
        if let handover, try await handOver(placement, request: handover, registered: registered, guards: guards, state: &state) { return }
        guard try await primaryFailed(placement, registered: registered, state: &state) else {
            try await spreadPrimaries(placement, registered: registered, request: handover, guards: guards, state: &state)
            return
        }
        // The keys came from the watch, which lags while it resumes on another etcd member; a promotion
        // acts on the nodes before its guarded record, so it is decided again on a fresh read.
        guard try await stillTheSame(placementRevision: revision, controllerRevision: controllerRevision, primary: placement.primary,
                                     registered: registered[placement.primary] != nil, state: &state)
        else {
            state.primaryWatch.reset()
            logger.info("cluster: the cluster's keys changed since the watch reported them; not promoting on that view")
            return
        }
        let addresses = placement.members.values.sorted()
        logger.warning("cluster: primary failed; promoting", metadata: ["primary": "\(placement.primary)", "failed_checks": "\(state.primaryWatch.failedChecks)"])
        // A member whose key is gone (its lease lapsed) would fence itself as soon as it was promoted.
        let registeredAddresses = Set(registered.values.map(\.replication))
        // A member on its way out is promoted only when no other is as up to date.
        let staying = Set(placement.members.filter { placement.acknowledgingMembers.contains($0.key) }.values)
        let outcome = try await ClusterPromotion.promote(
            addresses, over: peers, minimumInSync: node.minimumInSync, eligible: registeredAddresses, preferred: staying,
            otherPrimaries: ControllerRules.otherPrimaries(onMachinesOf: placement, registered: registered, groups: topology.groupPrimaries),
            minimumEpoch: placement.epoch + 1, timeout: .milliseconds(500))
        state.primaryWatch.reset()
        next.primary = outcome.nodeID
        next.epoch = outcome.epoch
        let recorded = try await etcd.transaction(if: guards, put: [(configuration.placementKey, next.encoded, 0)])
        logger.notice("cluster: promoted a new primary", metadata: [
            "primary": "\(outcome.nodeID)", "epoch": "\(outcome.epoch)", "promised_by": "\(outcome.promisedBy)", "recorded": "\(recorded)",
        ])
    }

    /// ``ControllerRules/reconciled(_:registered:replicationFactor:away:)`` over the registered nodes
    /// less those that would join without answering a STATUS: a node whose process died keeps its key
    /// until its lease expires, and as a member it would count against every promotion (all but *m*
    /// members must answer), as when a machine is lost with a member and the spare chosen to replace it.
    private func reconciledWithAnsweringNodes(
        _ placement: ClusterPlacement, registered: [String: ClusterNodeEntry], away: Set<String>
    ) async -> ClusterPlacement {
        var silent: Set<String> = []
        var asked: Set<String> = []
        while true {
            let next = ControllerRules.reconciled(
                placement, registered: registered.filter { !silent.contains($0.key) }, replicationFactor: configuration.replicationFactor, away: away)
            let joining = next.members.filter { placement.members[$0.key] == nil && !asked.contains($0.key) }
            if joining.isEmpty { return next }
            for (id, address) in joining.sorted(by: { $0.key < $1.key }) {
                asked.insert(id)
                if await peers.status(address, timeout: .milliseconds(300)).status == nil { silent.insert(id) }
            }
        }
    }

    /// The members whose `nodes/<id>` key is missing, and those of them missing for
    /// `replaceAfterMilliseconds` (away), as this controller has seen it (a new one counts afresh).
    private func absentMembers(
        _ placement: ClusterPlacement, registered: [String: ClusterNodeEntry], state: inout LoopState
    ) -> (away: Set<String>, missing: Set<String>) {
        let now = self.now()
        var since: [String: ContinuousClock.Instant] = [:]
        for id in placement.members.keys where registered[id] == nil { since[id] = state.missingSince[id] ?? now }
        state.missingSince = since
        let limit = Duration.milliseconds(configuration.replaceAfterMilliseconds)
        return (Set(since.filter { now - $0.value >= limit }.keys), Set(since.keys))
    }

    /// One step of removing `member` while the members are more than the replication factor
    /// (``MemberRemoval``'s replacement: if it returns, it waits as a spare), at most once a second.
    /// True when it wrote the placement.
    private func replacementStep(
        _ member: String, _ placement: ClusterPlacement, guards: [EtcdClient.Compare], state: inout LoopState
    ) async throws(LearnStoreError) -> Bool {
        let now = self.now()
        if let last = state.lastReplacementStep, now - last < .seconds(1) { return false }
        state.lastReplacementStep = now
        let statuses = await MemberRemoval.statuses(of: placement, over: peers, timeout: .milliseconds(300))
        let next: ClusterPlacement
        switch MemberRemoval.next(placement, removing: member, statuses: statuses, purpose: .replacement) {
        case .mark(let marked): next = marked
        case .remove(let removed): next = removed
        case .wait(let reason), .refuse(let reason):
            logger.info("cluster: replacing \(member): \(reason)")
            return false
        case .done:
            return false
        }
        guard try await etcd.transaction(if: guards, put: [(configuration.placementKey, next.encoded, 0)]) else { return true }
        logger.notice(next.members[member] == nil ? "cluster: a member was replaced by a spare" : "cluster: a member is being replaced by a spare", metadata: [
            "member": "\(member)", "members": "\(next.members.keys.sorted())",
        ])
        return true
    }

    /// Reads the keys (linearizable) and says whether the placement and controller keys are at the
    /// revisions decided on and the primary's node key is as present as it seemed.
    private func stillTheSame(
        placementRevision: Int64, controllerRevision: Int64, primary: String, registered: Bool, state: inout LoopState
    ) async throws(LearnStoreError) -> Bool {
        let byKey = Dictionary(try await readKeys(&state).map { ($0.key, $0) }, uniquingKeysWith: { $1 })
        return byKey[configuration.placementKey]?.modRevision == placementRevision
            && byKey[configuration.controllerKey]?.modRevision == controllerRevision
            && (byKey[configuration.nodeKey(primary)] != nil) == registered
    }

    /// Whether the primary is gone: its key expired, or it failed enough checks in a row.
    private func primaryFailed(_ placement: ClusterPlacement, registered: [String: ClusterNodeEntry], state: inout LoopState) async throws(LearnStoreError) -> Bool {
        guard let address = placement.members[placement.primary] else { return false }
        let now = self.now()
        if let last = state.lastPrimaryCheck, now - last < .milliseconds(configuration.checkMilliseconds) { return false }
        state.lastPrimaryCheck = now
        guard registered[placement.primary] != nil else { return state.primaryWatch.failed(keyPresent: false, answeredPrimary: nil) }
        let status = await peers.status(address, timeout: .milliseconds(300))
        return state.primaryWatch.failed(keyPresent: true, answeredPrimary: status.status?["role"]?.stringValue == NodeRole.primary.name)
    }
}
