import Dispatch
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import Logging
import Metrics
import NIOCore
import Synchronization

/// The one owner of this node's replication state: its role, its epoch history, and (as a primary)
/// its replicas and the commit gate they decide, or (as a replica) its follower. The shipping
/// sessions, the follower and the listener only report events here and carry out what it says.
public final class ReplicationNode: Sendable {
    public let configuration: ReplicationConfiguration
    let credential: NodeCredential
    let logger: Logger
    let clock: any EngineClock
    let fileSystem: any FileSystem
    /// Where the epoch history is kept.
    let directory: String
    let group: any EventLoopGroup
    let metrics: ReplicationMetrics?
    /// The server's commit wakes: shipping sessions are woken through their loop's inbox, so a commit
    /// leaves for the replicas between the loop's reads, not after its whole turn.
    let loopWakes: LoopWakes?

    struct State {
        var role: NodeRole
        var history: EpochHistory
        /// With a control plane, the replicas that may count for acknowledgements.
        var members: AcknowledgingMembers
        var replicaSet: ReplicaSetState
        var wal: WriteAheadLog?
        var sessions: [ObjectIdentifier: ShippingSession] = [:]
        /// The commit mark the replicas' sessions were last woken for.
        var markSent: UInt64 = 0
        /// As a replica: what the primary last told.
        var primaryNodeID: String?
        var primaryCommitLSN: UInt64 = 0
        var inSync = false
        var appliedLSN: UInt64 = 0
        var lastHeardMilliseconds: Int64 = 0
        var followerProblem: String?
        var follower: ReplicaFollower?
        var fatal: String?
        var restart: String?
        /// As a primary handing its place over (HANDOVER): until when client writes stay stopped.
        var handoverUntil: Int64?
        /// A copy of the primary being received at the node's start (bytes received, announced).
        var catchUp: (received: Int, total: Int)?
        var onFailStop: (@Sendable () -> Void)?
        var onRestart: (@Sendable () -> Void)?
    }

    let state: Mutex<State>
    /// Connections open on the replication port: replicas, operator tools, and strangers still in
    /// the handshake (each holds at most a 1 KiB frame until it proves the secret).
    private let connections = Atomic<Int>(0)
    static let maximumConnections = 64

    func admitConnection() -> Bool {
        if connections.wrappingAdd(1, ordering: .relaxed).newValue > Self.maximumConnections {
            connections.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func connectionClosed() { connections.wrappingSubtract(1, ordering: .relaxed) }

    public init(configuration: ReplicationConfiguration, directory: String, fileSystem: any FileSystem, clock: any EngineClock,
                group: any EventLoopGroup, logger: Logger, metricsFactory: (any MetricsFactory)? = nil, loopWakes: LoopWakes? = nil) throws {
        self.configuration = configuration
        self.loopWakes = loopWakes
        metrics = metricsFactory.map(ReplicationMetrics.init(factory:))
        self.group = group
        credential = try NodeCredential(secret: configuration.secret)
        guard NodeCredential.isValidNodeID(configuration.nodeID) else {
            throw LearnStoreError(.validation, "node id '\(configuration.nodeID)' must be 1-64 letters, digits, '-', '_' or '.'")
        }
        self.logger = logger
        self.clock = clock
        self.fileSystem = fileSystem
        self.directory = directory
        try fileSystem.createDurableDirectory(directory)
        let history = try EpochHistory.read(directory: directory, fileSystem)
        let role: NodeRole = configuration.follow.isEmpty ? .primary : .replica
        // With a control plane, no replica counts for acknowledgements until etcd's placement names
        // the members (the agent's first round).
        let members = AcknowledgingMembers(controlPlane: configuration.cluster != nil)
        state = Mutex(State(
            role: role, history: history, members: members,
            replicaSet: ReplicaSetState(configuration: configuration.replicaSet, localDurableLSN: 0, eligible: members.nodeIDs)))
        followAddresses = Mutex(configuration.follow)
    }

    /// The replication ports a replica looks for its primary among: `follow`, or with a control
    /// plane, the cluster's other members as etcd lists them.
    let followAddresses: Mutex<[String]>

    /// Told when this node becomes the primary of a new epoch: its control-plane agent reads the
    /// members at once (the node counts no replica until it has).
    let promotionObserver = Mutex<(@Sendable () -> Void)?>(nil)
    /// Told the epoch a promotion makes this node the primary of, before it takes a client write in it.
    let primaryEpochObserver = Mutex<(@Sendable (UInt64) -> Void)?>(nil)

    func setFollowAddresses(_ addresses: [String]) {
        followAddresses.withLock { $0 = addresses }
    }

    /// The cluster's members as etcd's placement lists them (less those leaving): only they count for
    /// acknowledgements. `observedEpoch`: the node's epoch before the placement was read; a primary
    /// takes only members read during its own epoch.
    func setMembers(_ nodeIDs: Set<String>, observedEpoch: UInt64) {
        let now = clock.now().milliseconds
        let removed = state.withLock { state -> [String] in
            guard state.members.update(nodeIDs, observedEpoch: observedEpoch, role: state.role, epoch: state.history.currentEpoch) else { return [] }
            return state.replicaSet.setEligible(nodeIDs, nowMilliseconds: now)
        }
        for nodeID in removed { logger.warning("replica left the in-sync set: not a member of the cluster", metadata: ["replica": "\(nodeID)"]) }
        gateChanged()
    }

    public var role: NodeRole { state.withLock { $0.role } }
    public var epoch: UInt64 { state.withLock { $0.history.currentEpoch } }
    var needsMembers: Bool {
        state.withLock { $0.members.isStale(role: $0.role, epoch: $0.history.currentEpoch) }
    }
    /// The highest epoch this node has promised to a promotion.
    var promisedEpoch: UInt64 { state.withLock { $0.history.promised } }
    public var history: EpochHistory { state.withLock { $0.history } }

    // MARK: start

    /// Recovery has opened the log: a primary gates acknowledgements on its replicas, a replica
    /// refuses client writes and starts following.
    func attach(wal: WriteAheadLog, registry: TenantRegistry) {
        let now = clock.now().milliseconds
        let role = state.withLock { state in
            state.wal = wal
            // A primary starting again learned no mark: its whole log counts as committed only once
            // its in-sync replicas hold it (what it wrote last may never have been acknowledged).
            state.replicaSet = ReplicaSetState(
                configuration: configuration.replicaSet, localDurableLSN: wal.locallyDurableLSN, learnedCommitLSN: 0, eligible: state.members.nodeIDs)
            state.appliedLSN = wal.locallyDurableLSN
            state.lastHeardMilliseconds = now
            return state.role
        }
        wal.onLocalCommit = { [weak self] lsn in self?.locallyCommitted(lsn) }
        switch role {
        case .primary:
            becomePrimaryGate(wal)
        case .replica, .fenced:
            wal.clientWriteRefusal = notPrimaryError(role)
            wal.haltsOnFailure = true
            becomeFollowerGate(wal)
            let follower = ReplicaFollower(node: self, wal: wal, registry: registry, group: group)
            state.withLock { $0.follower = follower }
            follower.start()
        }
    }

    /// At a start or a promotion: the log may show records no primary acknowledged, so what it shows
    /// drops back to the mark the node learned.
    private func becomePrimaryGate(_ wal: WriteAheadLog) {
        wal.snapshotsWaitForGate = true
        switch configuration.replicaSet.mode {
        case .sync: wal.restartCommitMark(at: state.withLock { $0.replicaSet.commitMark })
        case .async: wal.resetCommitGate(.max)
        }
    }

    /// A replica shows reads and change-feed subscribers what it recovered, then only what its
    /// primary's commit mark says was acknowledged (``followed(appliedLSN:primaryCommitLSN:inSync:)``):
    /// a write it holds durable that no client had acknowledged may still be cut by a failover.
    private func becomeFollowerGate(_ wal: WriteAheadLog) {
        wal.snapshotsWaitForGate = false
        wal.resetCommitGate(wal.committedLSN)
    }

    func notPrimaryError(_ role: NodeRole) -> LearnStoreError {
        let primary = state.withLock { $0.primaryNodeID }
        switch role {
        case .fenced:
            return LearnStoreError(.notPrimary, "node \(configuration.nodeID) was the primary of an older epoch and takes no writes; send writes to the current primary")
        default:
            return LearnStoreError(.notPrimary, "node \(configuration.nodeID) is a replica\(primary.map { " of \($0)" } ?? ""); send writes to its primary")
        }
    }

    /// Closes every replica's stream and waits until they are closed (shutdown).
    func endSessions() async {
        let sessions = state.withLock { Array($0.sessions.values) }
        for session in sessions {
            session.close()
            try? await session.closeFuture.get()
        }
    }

    func stopFollowing() async {
        if let follower = state.withLock({ $0.follower }) { await follower.stop() }
    }

    // MARK: primary events

    func locallyCommitted(_ lsn: UInt64) {
        let now = clock.now().milliseconds
        let (role, mark, sessions, wal) = state.withLock { state in
            state.replicaSet.locallyCommitted(through: lsn, nowMilliseconds: now)
            return (state.role, state.replicaSet.commitMark, Array(state.sessions.values), state.wal)
        }
        switch role {
        case .primary:
            if configuration.replicaSet.mode == .sync { wal?.setCommitGate(mark) }
            for session in sessions { session.wake() }
        case .replica, .fenced:
            state.withLock { $0.follower }?.locallyCommitted(lsn)
        }
    }

    /// A replica asks to follow from `request`: where its stream starts, or why it cannot.
    func accept(_ request: ReplicateRequest, from nodeID: String) -> Result<ReplicateAccepted, LearnStoreError> {
        let answer = acceptChecked(request, from: nodeID)
        if case .failure(let error) = answer, error.code == .fenced {
            // A node that knows or has promised a newer epoch will never acknowledge this primary's
            // writes; a promotion to that epoch has begun (and may have stalled). Fenced, this node
            // tells the controller's checks it is no primary any more, so a promotion completes.
            fence(reason: error.message)
        }
        return answer
    }

    private func acceptChecked(_ request: ReplicateRequest, from nodeID: String) -> Result<ReplicateAccepted, LearnStoreError> {
        state.withLock { state in
            guard state.role == .primary, let wal = state.wal else {
                return .failure(LearnStoreError(.notPrimary, "node \(configuration.nodeID) is not a primary (it is a \(state.role.name))"))
            }
            let epoch = state.history.currentEpoch
            guard let follower = try? EpochHistory(starts: request.epochs.map { ($0.epoch, $0.firstLSN) }, promised: request.promised) else {
                return .failure(LearnStoreError(.badFrame, "REPLICATE: the epoch history is not ascending"))
            }
            guard let point = state.history.followPoint(follower: follower, lastLSN: request.lastLSN, localLastLSN: wal.locallyDurableLSN) else {
                return .failure(LearnStoreError(.fenced, "node \(nodeID) knows epoch \(max(request.epoch, request.promised)), newer than this primary's \(epoch)"))
            }
            let epochs = state.history.starts.map { EpochStart(epoch: $0.epoch, firstLSN: $0.firstLSN) }
            return .success(ReplicateAccepted(epoch: epoch, startAfter: point.startAfter, truncate: point.truncate, epochs: epochs))
        }
    }

    func sessionStarted(_ session: ShippingSession, nodeID: String, lastLSN: UInt64) {
        let now = clock.now().milliseconds
        state.withLock { state in
            state.sessions[ObjectIdentifier(session)] = session
            state.replicaSet.connected(nodeID, lastLSN: lastLSN, nowMilliseconds: now)
        }
        gateChanged()
        holdSegmentsForReplicas()
    }

    func acknowledged(_ ack: ReplicationAck, from nodeID: String) {
        let now = clock.now().milliseconds
        let waited = state.withLock { state -> Int64? in
            let before = state.replicaSet.replicas[nodeID]?.durableLSN ?? 0
            // How long the oldest write this acknowledgement covers waited for it.
            let waited = ack.durableLSN > before ? state.replicaSet.lagMilliseconds(durableLSN: before, nowMilliseconds: now) : nil
            state.replicaSet.acknowledged(nodeID, durableLSN: ack.durableLSN, appliedLSN: ack.appliedLSN, nowMilliseconds: now)
            return waited
        }
        if let waited { metrics?.acknowledgement.recordMilliseconds(waited) }
        gateChanged()
    }

    /// Sets the replication gauges (the metrics endpoint, when it is read).
    public func sampleMetrics() {
        guard let metrics else { return }
        let now = clock.now().milliseconds
        state.withLock { state in
            metrics.role.record(Int(state.role.rawValue))
            metrics.epoch.record(state.history.currentEpoch)
            let durable = state.wal?.locallyDurableLSN ?? 0
            metrics.durableLSN.record(durable)
            switch state.role {
            case .primary, .fenced:
                metrics.inSyncReplicas.record(state.replicaSet.inSyncReplicas.count)
                for replica in state.replicaSet.replicas.values {
                    metrics.recordLag(
                        replica: replica.nodeID, milliseconds: state.replicaSet.lagMilliseconds(durableLSN: replica.durableLSN, nowMilliseconds: now),
                        lsns: durable &- min(replica.durableLSN, durable))
                }
            case .replica:
                metrics.appliedLSN.record(state.appliedLSN)
            }
        }
    }

    func sessionEnded(_ session: ShippingSession, nodeID: String) {
        let now = clock.now().milliseconds
        state.withLock { state in
            guard state.sessions.removeValue(forKey: ObjectIdentifier(session)) != nil else { return }
            // A newer session of the same replica may have replaced this one.
            if !state.sessions.values.contains(where: { $0.nodeID == nodeID }) {
                state.replicaSet.disconnected(nodeID, nowMilliseconds: now)
            }
        }
        gateChanged()
    }

    /// Time passed: lagging replicas leave the in-sync set. Called by the listener's timer.
    func tick() {
        let now = clock.now().milliseconds
        endLapsedHandover(nowMilliseconds: now)
        let removed = state.withLock { $0.replicaSet.tick(nowMilliseconds: now) }
        for nodeID in removed {
            logger.warning("replica left the in-sync set", metadata: ["replica": "\(nodeID)", "lag_limit_ms": "\(configuration.replicaSet.lagLimitMilliseconds)"])
        }
        gateChanged()
        holdSegmentsForReplicas()
    }

    /// Sets the gate, and sends replicas a mark that advanced (they show only what it covers).
    private func gateChanged() {
        let (role, mark, wal, sessions) = state.withLock { state in
            let advanced = state.replicaSet.commitMark > state.markSent
            state.markSent = state.replicaSet.commitMark
            return (state.role, state.replicaSet.commitMark, state.wal, advanced ? Array(state.sessions.values) : [])
        }
        if role == .primary, configuration.replicaSet.mode == .sync { wal?.setCommitGate(mark) }
        for session in sessions { session.wake() }
    }

    /// Off the acknowledgement path: retention runs after snapshot rounds, so the hold is refreshed
    /// when a replica connects and on every tick (50 ms).
    private func holdSegmentsForReplicas() {
        let now = clock.now().milliseconds
        let (role, hold, wal) = state.withLock { ($0.role, $0.replicaSet.retentionHold(nowMilliseconds: now), $0.wal) }
        if role == .primary { wal?.holdSegments(after: hold) }
    }

    /// What a shipping session tells its replica with each frame.
    func streamStatus(for nodeID: String) -> (epoch: UInt64, commitLSN: UInt64, inSync: Bool, role: NodeRole) {
        state.withLock { state in
            (state.history.currentEpoch, state.wal?.committedLSN ?? 0, state.replicaSet.replicas[nodeID]?.inSync ?? false, state.role)
        }
    }

    /// A node of a newer epoch exists: this old primary stops taking writes (docs/REPLICATION.md, fencing).
    func fence(reason: String) {
        let (wal, sessions, changed) = state.withLock { state -> (WriteAheadLog?, [ShippingSession], Bool) in
            guard state.role == .primary else { return (nil, [], false) }
            state.role = .fenced
            let sessions = Array(state.sessions.values)
            return (state.wal, sessions, true)
        }
        guard changed else { return }
        logger.error("fenced: this node takes no more writes", metadata: ["reason": "\(reason)"])
        wal?.clientWriteRefusal = notPrimaryError(.fenced)
        // Its replicas acknowledge nothing more of its epoch: whoever waits on a write it has not
        // acknowledged yet is told so now, not when the node restarts.
        wal?.stopAcknowledging(LearnStoreError(
            .outcomeUnknown,
            "this node stopped being the primary (a newer epoch exists) before its replicas acknowledged the write this request made or read; "
                + "it may or may not survive on the new primary: find the primary (TOPOLOGY) and retry, a create with the same idempotency key"))
        for session in sessions { session.close() }
    }

    // MARK: replica events

    /// The follower continues the primary's history: it becomes this node's (the two agree up to where
    /// the follower's log ends, or the primary would have asked for a cut).
    func adopt(_ epochs: [EpochStart], primary: String) throws {
        let theirs = try EpochHistory(starts: epochs.map { ($0.epoch, $0.firstLSN) })
        // Under the state's lock, as a promise is: a promise is never written over by an older history.
        try state.withLock { state throws(StorageError) in
            state.primaryNodeID = primary
            let adopted = state.history.adopting(theirs)
            if adopted != state.history { try adopted.write(directory: directory, fileSystem) }
            state.history = adopted
        }
        wal(refuseWith: notPrimaryError(.replica))
    }

    private func wal(refuseWith error: LearnStoreError) {
        state.withLock { $0.wal }?.clientWriteRefusal = error
    }

    /// A promotion asks this node to promise `epoch`: it records the promise durably (so a later
    /// promotion that asks it picks a higher epoch, and another promotion that picked `epoch` too is
    /// refused), and a primary of an older epoch stops taking writes. Returns the highest epoch
    /// promised and whether it is promised to `promotion`.
    public func promise(_ epoch: UInt64, to promotion: UUID16) throws(LearnStoreError) -> PromiseReply {
        guard promotion != .zero else { throw LearnStoreError(.validation, "a promotion id must not be zero") }
        // Decided and written under the state's lock (promotions are rare; a file write there is
        // cheap next to them), so two promotions asking at once are answered one after the other and
        // no other write of the history file lands between the decision and its record.
        let (reply, role, current) = try state.withLock { state throws(LearnStoreError) -> (PromiseReply, NodeRole, UInt64) in
            var history = state.history
            let answer = history.promise(epoch, to: promotion)
            if answer == .granted(raised: true) {
                do throws(StorageError) { try history.write(directory: directory, fileSystem) } catch { throw error.learnStoreError }
                state.history = history
            }
            return (PromiseReply(promised: history.promised, granted: answer != .refused), state.role, history.currentEpoch)
        }
        if role == .primary && epoch > current { fence(reason: "a promotion to epoch \(epoch) is under way") }
        return reply
    }

    /// A replica whose log fails a write stops the node: its log gave the failed LSNs away, and its
    /// primary's records must keep their LSNs. A restart recovers what is durable and follows again.
    func failStop(_ reason: String) {
        logger.critical("the replica's log failed; stopping (restart the node to recover and follow again)", metadata: ["reason": "\(reason)"])
        let stop = state.withLock { state -> (@Sendable () -> Void)? in
            state.fatal = reason
            return state.onFailStop
        }
        stop?()
    }

    /// Why the node stopped itself, if it did.
    public var fatalProblem: String? { state.withLock { $0.fatal } }

    /// The node can go on only after a restart: its position is gone from the primary's log (it copies
    /// the primary at its start), its log diverged (it cuts it at its start), or it is a fenced old
    /// primary the control plane has replaced (it starts as a replica). It stops gracefully and
    /// `learnstore serve` starts it again in place.
    func requestRestart(_ reason: String) {
        let stop = state.withLock { state -> (@Sendable () -> Void)? in
            guard state.fatal == nil, state.restart == nil else { return nil }
            state.restart = reason
            return state.onFailStop
        }
        guard let stop else { return }
        logger.notice("restarting the node", metadata: ["reason": "\(reason)"])
        state.withLock { $0.onRestart }?()
        stop()
    }

    /// Called when the node asks to start again, before it stops.
    public func onRestart(_ action: @escaping @Sendable () -> Void) {
        state.withLock { $0.onRestart = action }
    }

    /// Why the node asked to be restarted, if it did.
    public var restartReason: String? { state.withLock { $0.restart } }

    func onFailStop(_ action: @escaping @Sendable () -> Void) {
        state.withLock { $0.onFailStop = action }
    }

    func followed(appliedLSN: UInt64, primaryCommitLSN: UInt64, inSync: Bool) {
        let now = clock.now().milliseconds
        let wal = state.withLock { state -> WriteAheadLog? in
            state.appliedLSN = appliedLSN
            state.primaryCommitLSN = max(state.primaryCommitLSN, primaryCommitLSN)
            state.inSync = inSync
            state.lastHeardMilliseconds = now
            state.followerProblem = nil
            return state.role == .replica ? state.wal : nil
        }
        wal?.setCommitGate(primaryCommitLSN)
    }

    func followerProblem(_ problem: String?) {
        state.withLock { $0.followerProblem = problem }
    }

    // MARK: promotion

    /// Makes this replica the primary of a new epoch (at least `requested`): it stops following, waits
    /// until everything it applied is durable, records the epoch durably, and takes writes. An epoch
    /// this node promised is begun only for the promotion it promised it to.
    public func promote(atLeast requested: UInt64, promotion: UUID16) async throws(LearnStoreError) -> PromoteReply {
        let (role, follower, wal) = state.withLock { ($0.role, $0.follower, $0.wal) }
        guard let wal else { throw LearnStoreError(.loading, "the node is recovering its data") }
        // A fenced old primary may be the most up-to-date node: it holds every write it acknowledged.
        guard role != .primary else { throw LearnStoreError(.validation, "node \(configuration.nodeID) is already a primary") }
        if let follower { await follower.stop() }
        let applied = state.withLock { $0.appliedLSN }
        let durable = try await offload { wal.waitUntilLocallyResolved(applied) }
        guard durable else { throw LearnStoreError(.storageUnavailable, "the replica's log could not make its applied writes durable") }
        let reply = try state.withLock { state throws(LearnStoreError) -> PromoteReply in
            // A PROMOTE that arrives after this node learned an epoch as new as the one asked for is
            // stale (a newer promotion completed meanwhile): beginning an epoch above it, which no
            // quorum promised, would rank this log above writes acknowledged in that newer epoch.
            guard requested == 0 || requested > state.history.currentEpoch else {
                throw LearnStoreError(
                    .validation, "epoch \(requested) is not newer than this node's epoch \(state.history.currentEpoch): the promotion asking for it is stale")
            }
            let epoch = max(state.history.currentEpoch + 1, requested)
            guard epoch >= state.history.promised else {
                throw LearnStoreError(.validation, "epoch \(epoch) is below epoch \(state.history.promised), which this node promised to another promotion")
            }
            guard epoch > state.history.promised || state.history.promisedTo == promotion else {
                throw LearnStoreError(.validation, "this node promised epoch \(epoch) to another promotion")
            }
            let first = wal.nextLSN
            var history = state.history
            // Epochs this node learned but holds no record of are not part of its log's past.
            history.truncate(after: first - 1)
            do { try history.begin(epoch: epoch, firstLSN: first) } catch { throw LearnStoreError(.internalError, "\(error)") }
            do throws(StorageError) { try history.write(directory: directory, fileSystem) } catch { throw error.learnStoreError }
            state.history = history
            state.role = .primary
            state.handoverUntil = nil
            state.follower = nil
            state.primaryNodeID = nil
            state.members.promoted()
            // The mark starts at the one this node learned in this process (its primary's, or its own
            // as a fenced primary; none after a restart): what its log holds above it counts only once
            // the in-sync replicas hold it all.
            let learned = state.role == .fenced ? wal.committedLSN : state.primaryCommitLSN
            state.replicaSet = ReplicaSetState(
                configuration: configuration.replicaSet, localDurableLSN: wal.locallyDurableLSN, learnedCommitLSN: learned,
                eligible: state.members.nodeIDs)
            return PromoteReply(epoch: epoch, firstLSN: first)
        }
        primaryEpochObserver.withLock { $0 }?(reply.epoch)
        becomePrimaryGate(wal)
        wal.resumeAcknowledging()
        wal.haltsOnFailure = false
        wal.clientWriteRefusal = nil
        logger.notice("promoted to primary", metadata: ["epoch": "\(reply.epoch)", "first_lsn": "\(reply.firstLSN)"])
        promotionObserver.withLock { $0 }?()
        return reply
    }

    // MARK: status

    public func status() -> JSONValue {
        let now = clock.now().milliseconds
        return state.withLock { state in
            var fields: [(String, JSONValue)] = [
                ("node_id", .string(configuration.nodeID)),
                ("role", .string(state.role.name)),
                ("epoch", .number(String(state.history.currentEpoch))),
                ("epochs", .array(state.history.starts.map { .object([("epoch", .number(String($0.epoch))), ("first_lsn", .number(String($0.firstLSN)))]) })),
                ("promised", .number(String(state.history.promised))),
                ("promised_to", state.history.promisedTo.map { .string($0.description) } ?? .null),
                ("last_epoch", .number(String(state.history.logEpoch(through: state.wal?.locallyDurableLSN ?? 0)))),
                ("durable_lsn", .number(String(state.wal?.locallyDurableLSN ?? 0))),
                ("committed_lsn", .number(String(state.wal?.committedLSN ?? 0))),
            ]
            switch state.role {
            case .primary, .fenced:
                fields.append(("mode", .string(configuration.replicaSet.mode.rawValue)))
                fields.append(("minimum_in_sync", .number(String(configuration.replicaSet.minimumInSync))))
                fields.append(("in_sync", .array(state.replicaSet.inSyncReplicas.map { .string($0) })))
                fields.append(("members", state.members.nodeIDs.map { .array($0.sorted().map { .string($0) }) } ?? .null))
                let replicas = state.replicaSet.replicas.values.sorted { $0.nodeID < $1.nodeID }.map { replica -> JSONValue in
                    let lag = state.replicaSet.lagMilliseconds(durableLSN: replica.durableLSN, nowMilliseconds: now)
                    return .object([
                        ("node_id", .string(replica.nodeID)), ("connected", .bool(replica.connected)), ("in_sync", .bool(replica.inSync)),
                        ("durable_lsn", .number(String(replica.durableLSN))), ("applied_lsn", .number(String(replica.appliedLSN))),
                        ("lag_lsns", .number(String((state.wal?.locallyDurableLSN ?? 0) &- min(replica.durableLSN, state.wal?.locallyDurableLSN ?? 0)))),
                        ("lag_ms", .number(String(lag))),
                    ])
                }
                fields.append(("replicas", .array(replicas)))
            case .replica:
                fields.append(("primary", state.primaryNodeID.map { .string($0) } ?? .null))
                fields.append(("applied_lsn", .number(String(state.appliedLSN))))
                fields.append(("primary_commit_lsn", .number(String(state.primaryCommitLSN))))
                fields.append(("in_sync", .bool(state.inSync)))
                fields.append(("last_heard_ms_ago", .number(String(max(0, now - state.lastHeardMilliseconds)))))
                fields.append(("problem", state.followerProblem.map { .string($0) } ?? .null))
                fields.append(("catch_up", state.catchUp.map { progress in
                    .object([("received_bytes", .number(String(progress.received))), ("total_bytes", .number(String(progress.total)))])
                } ?? .null))
            }
            return .object(fields)
        }
    }
}
