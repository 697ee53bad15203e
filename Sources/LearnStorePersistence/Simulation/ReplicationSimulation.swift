import Foundation
import LearnStoreEngine
import LearnStoreModel
import Logging

/// A deterministic simulation of replication: a primary and replicas, each with its own simulated
/// disk, real tenant actors, WAL, recovery and epoch history, joined by simulated connections that
/// carry the replication frames in order (as TCP does) and break, stall, duplicate a frame or are
/// partitioned. Nodes crash (a machine crash loses what was not synced) and restart; replicas' disks
/// fail writes for a while; when the primary is down, the replica holding the most of the log is
/// promoted (the operator's rule) and the old primary rejoins as a replica, cutting what it wrote alone.
///
/// The primary's side (in-sync set and commit gate: ``ReplicaSetState``, WAL reading:
/// ``WALTailReader/readRaw``), the replica's (``ReplicatedApply``), where a follower continues
/// (``EpochHistory/followPoint``) and the cut of a diverged log (``DivergedLog``) are the server's own
/// code; only the sockets are simulated. Invariants, after every step:
/// - every acknowledged write is durable on every in-sync replica;
/// - a promoted replica holds every acknowledged write;
/// - what a primary showed as committed (a read or an idempotent replay could have shown it to a
///   client) is never replaced: no later primary commits another write at the same tenant sequence;
/// - a replica shows (to reads and the change feed) only acknowledged writes, besides what it
///   recovered at its start;
/// - at the end, with faults healed, every node holds the same tenants (per-tenant digests).
public struct ReplicationSimulation {
    public struct Options: Sendable {
        public var steps = 500
        public var nodes = 3
        public var tenants = 3
        public var minimumInSync = 1
        public var lagLimitMilliseconds: Int64 = 400
        public init() {}
    }

    public struct Result: Sendable {
        public var seed: UInt64
        public var steps = 0
        public var acknowledged = 0
        public var crashes = 0
        public var promotions = 0
        public var logCuts = 0
        public var connectionBreaks = 0
        public var partitions = 0
        public var duplicatedFrames = 0
        public var storageFaults = 0
        public var recordsShipped = 0
        public var snapshots = 0
        public var catchUps = 0
        /// Partition-move writes made on a primary: pieces of tenants copied in, and releases.
        public var movePieces = 0
        public var releases = 0
        /// Copies cut short (the connection broke or the replica's disk failed) or whose install failed.
        public var catchUpsInterrupted = 0
        public var failure: String?
        public var trace: [String] = []

        public init(seed: UInt64) { self.seed = seed }
    }

    final class Node {
        let id: String
        let fs: SimulatedFileSystem
        let directory: DataDirectory
        var historyDirectory: String { directory.path + "/replication" }
        var alive = true
        var role: NodeRole
        var wal: WriteAheadLog?
        var controller: PersistenceController?
        var actors: [String: TenantActor] = [:]
        var history = EpochHistory()
        var replicaSet: ReplicaSetState
        /// As a replica: the last LSN applied to its tenants.
        var applied: UInt64 = 0
        /// The newest commit mark a primary sent it since it started (a new primary's mark starts there).
        var learnedCommitLSN: UInt64 = 0
        /// How many times it started.
        var boots = 0
        /// What its log showed when it started (recovered, not heard from a primary).
        var shownAtBoot: UInt64 = 0
        var partitionedUntil = 0
        var failingUntil = 0
        let rollbacks = RollbackQueue()

        init(id: String, seed: UInt64, role: NodeRole, configuration: ReplicaSetState.Configuration) {
            self.id = id
            fs = SimulatedFileSystem(random: SplitMix64(seed: seed))
            directory = DataDirectory("/sim/\(id)")
            self.role = role
            replicaSet = ReplicaSetState(configuration: configuration, localDurableLSN: 0)
        }
    }

    /// A replica's stream from the primary: frames in order each way.
    final class Connection {
        let replica: String
        let epoch: UInt64
        let reader: WALTailReader
        let startAfter: UInt64
        var toReplica: [Frame] = []
        /// The primary's commit mark in the last frame sent.
        var sentCommitLSN: UInt64 = 0
        var toPrimary: [(durable: UInt64, applied: UInt64)] = []

        init(replica: String, epoch: UInt64, reader: WALTailReader, startAfter: UInt64) {
            self.replica = replica
            self.epoch = epoch
            self.reader = reader
            self.startAfter = startAfter
        }
    }

    /// A RECORDS frame: records (none for a heartbeat) and the primary's status.
    struct Frame {
        var records: [UInt8]
        var inSync: Bool
        var commitLSN: UInt64
    }

    /// One write a client made on the primary, and whether it was acknowledged.
    struct Write {
        var tenant: String
        var sequence: UInt64
        var lsn: UInt64
        var digest: UInt64
    }

    let seed: UInt64
    let options: Options
    var random: SplitMix64
    /// The partition-move writes' own stream, so that they leave the other steps' draws as they were.
    var moveRandom: SplitMix64
    let clock = SimulatedClock()
    var logger: Logger
    var result: Result
    var nodes: [Node] = []
    var connections: [String: Connection] = [:]
    /// Writes made on the current primary, not yet acknowledged.
    var pending: [Write] = []
    /// Per tenant, every acknowledged write (sequence → digest after it), across epochs.
    var acknowledged: [String: [UInt64: UInt64]] = [:]
    /// The highest LSN any primary let its log acknowledge (its commit mark), across epochs.
    var acknowledgedThroughLSN: UInt64 = 0
    /// Per tenant, each sequence a primary showed as committed and the checksum of its record.
    var shownCommitted: [String: [UInt64: UInt32]] = [:]
    /// Per primary (node, epoch and start), the LSN up to which its log was checked against `shownCommitted`.
    var shownChecked: [String: UInt64] = [:]
    /// A committed write shown replaced, found where the gate moved (checked after each step).
    var shownReplaced: String?
    var step = 0
    /// Faults have stopped (the end of a run).
    var healing = false

    public init(seed: UInt64, options: Options = Options()) {
        self.seed = seed
        self.options = options
        random = SplitMix64(seed: seed)
        moveRandom = SplitMix64(seed: seed ^ 0x0A0B_0C0D)
        var logger = Logger(label: "learnstore.replication-simulation")
        logger.logLevel = .critical
        self.logger = logger
        result = Result(seed: seed)
        let configuration = ReplicaSetState.Configuration(
            mode: .sync, lagLimitMilliseconds: options.lagLimitMilliseconds, minimumInSync: options.minimumInSync)
        for index in 0..<options.nodes {
            let node = Node(id: "n\(index)", seed: seed ^ UInt64(index + 1) &* 0x9E37_79B9, role: index == 0 ? .primary : .replica,
                            configuration: configuration)
            node.fs.clock = clock
            nodes.append(node)
        }
    }

    var tenantIDs: [String] { (0..<options.tenants).map { "t\($0)" } }
    var primary: Node? { nodes.first { $0.alive && $0.role == .primary } }

    mutating func note(_ line: String) {
        result.trace.append("[\(step)] \(line)")
        if result.trace.count > 60 { result.trace.removeFirst(result.trace.count - 60) }
    }

    public mutating func run() -> Result {
        do {
            for node in nodes { try boot(node) }
            for index in 0..<options.steps {
                step = index
                result.steps = index + 1
                try self.step(random.next(below: 100))
                if index % 25 == 24 { snapshotRound(on: nodes[(index / 25) % nodes.count]) }
                try checkInSyncHoldAcknowledged()
                if let shownReplaced { throw SimulationFailure(shownReplaced) }
            }
            try heal()
            if let shownReplaced { throw SimulationFailure(shownReplaced) }
        } catch let failure as SimulationFailure {
            result.failure = failure.message
        } catch {
            result.failure = "unexpected error: \(error)"
        }
        return result
    }

    // MARK: nodes

    mutating func boot(_ node: Node) throws {
        node.history = try EpochHistory.read(directory: node.historyDirectory, node.fs)
        var recoveryOptions = Recovery.Options(directory: node.directory)
        recoveryOptions.fileSystem = node.fs
        recoveryOptions.loadsTenantsInParallel = false
        let outcome = try Recovery(options: recoveryOptions, logger: logger).run()
        let configuration = WALConfiguration(
            directory: node.directory.walDirectory, policy: .always, segmentBytes: 4 << 10, fileSystem: node.fs,
            appendersWriteNow: false, prepareSegmentsInBackground: false)
        let kept = try PersistenceController.keptSnapshots(node.directory, node.fs)
        let wal = try WriteAheadLog(configuration: configuration, resume: outcome.resume, startLSN: outcome.firstFreeLSN,
                                    segments: outcome.segments, snapshotCoverage: kept.compactMapValues { $0.map(\.lsn).min() },
                                    clock: clock, logger: logger)
        var persistence = PersistenceConfiguration(dataDirectory: node.directory.path)
        persistence.fileSystem = node.fs
        node.controller = PersistenceController(
            configuration: persistence, wal: wal, directory: node.directory, logger: logger, clock: clock, lockDescriptor: -1, kept: kept)
        let queue = node.rollbacks
        wal.onFailure = { queue.append($0) }
        node.wal = wal
        node.actors = [:]
        for tenant in tenantIDs {
            let actor = TenantActor(state: TenantState(tenantID: tenant), log: wal, clock: clock, executor: TenantExecutor { $0() })
            if let state = outcome.states[tenant] { actor.withExclusiveAccess { $0.recovered(state, lsn: outcome.lastLSN[tenant] ?? 0) } }
            // Derived from the seed rather than drawn from the steps' streams, which the ids then leave alone.
            let idSeed = seed ^ UInt64(tenantIDs.firstIndex(of: tenant)! + 1) << 40 ^ UInt64(node.boots) << 20 ^ UInt64(nodes.firstIndex { $0 === node }! + 1) << 56
            actor.withExclusiveAccess { $0.drawRecordIDs(from: SplitMix64(seed: idSeed)) }
            node.actors[tenant] = actor
        }
        node.applied = wal.locallyDurableLSN
        node.learnedCommitLSN = 0
        node.boots += 1
        node.alive = true
        // As the server's node: a primary starting again learned no mark.
        node.replicaSet = ReplicaSetState(configuration: node.replicaSet.configuration, localDurableLSN: wal.locallyDurableLSN, learnedCommitLSN: 0)
        if node.role == .primary {
            wal.restartCommitMark(at: node.replicaSet.commitMark)
            checkShownCommitted(node, committed: wal.committedLSN)
        } else {
            wal.clientWriteRefusal = LearnStoreError(.notPrimary, "replica")
            wal.haltsOnFailure = true
            // As the server's follower: it shows what it recovered, then what its primary's commit mark allows.
            wal.snapshotsWaitForGate = false
            wal.setCommitGate(wal.committedLSN)
        }
        node.shownAtBoot = wal.committedLSN
        note("\(node.id) started as \(node.role.name), epoch \(node.history.currentEpoch), last LSN \(wal.locallyDurableLSN)")
    }

    mutating func crash(_ node: Node) {
        note("\(node.id) crashed (\(node.role.name))")
        result.crashes += 1
        for connection in orderedConnections where connection.replica == node.id || node.role == .primary {
            let replica = connection.replica
            connection.reader.close()
            connections[replica] = nil
            if node.role != .primary, let primary { primary.replicaSet.disconnected(replica, nowMilliseconds: now) }
        }
        if node.role == .primary { pending.removeAll() }
        node.wal = nil
        node.controller = nil
        node.actors = [:]
        node.rollbacks.removeAll()
        node.alive = false
        node.fs.rates = SimulatedFileSystem.FaultRates()
        node.failingUntil = 0
        node.fs.machineCrash()
    }

    /// A node comes back. One that was a primary of an older epoch (a promotion happened while it was
    /// down) rejoins as a replica, cutting its log where the new primary's history says.
    mutating func restart(_ node: Node) throws {
        if node.role != .replica, let current = primary, current !== node {
            node.role = .replica
        }
        if node.role == .fenced { node.role = .replica }
        if node.role == .replica {
            // A copy received before the node stopped is installed first (the server does the same).
            if let installed = try CatchUpInstall.resume(node.directory, historyDirectory: node.historyDirectory, node.fs) {
                note("\(node.id) installed a copy through LSN \(installed.throughLSN)")
            }
        }
        if node.role == .replica, let current = primary, let wal = current.wal {
            let history = try EpochHistory.read(directory: node.historyDirectory, node.fs)
            let last = try DivergedLog.lastLSN(node.directory, node.fs)
            if let point = current.history.followPoint(follower: history, lastLSN: last, localLastLSN: wal.locallyDurableLSN), point.truncate {
                guard try DivergedLog.canCut(node.directory, after: point.startAfter, node.fs) else {
                    note("\(node.id) cannot cut after LSN \(point.startAfter): a snapshot beyond it is all that holds records retention removed")
                    return try catchUp(node, from: current, after: point.startAfter)
                }
                _ = try DivergedLog.cut(node.directory, after: point.startAfter, history: history, historyDirectory: node.historyDirectory, node.fs)
                result.logCuts += 1
                note("\(node.id) cut its log after LSN \(point.startAfter) (it held up to \(last))")
            }
        }
        try boot(node)
        // A replica may still hold an old primary's branch until it learns where to cut: only a
        // primary is checked here (replicas converge by the end).
        if node.role == .primary { try checkHoldsAcknowledged(node, what: "restarted \(node.id)", strict: true) }
    }

    var now: Int64 { clock.now().milliseconds }

    // MARK: steps

    mutating func step(_ pick: Int) throws {
        clock.advance(milliseconds: Int64(random.next(below: 30)))
        switch pick {
        case 0..<30: try write()
        case 30..<40: primaryWriterStep()
        case 40..<52: ship()
        case 52..<64: try deliverRecords()
        case 64..<74: replicaWriterStep()
        case 74..<84: deliverAck()
        case 84..<88: tick()
        case 88..<92: try connect()
        case 92..<94: breakConnection()
        case 94: partition()
        case 95: if random.chance(1, in: 3) { storageTrouble() }
        case 96: if let node = randomNode(alive: true) { crash(node) }
        case 97, 98:
            if let node = randomNode(alive: false) {
                try restart(node)
            } else if let fenced = nodes.first(where: { $0.alive && $0.role == .fenced }), primary != nil {
                // The operator restarts a fenced old primary as a replica.
                crash(fenced)
                try restart(fenced)
            }
        default: try promoteIfPrimaryDown()
        }
        for node in nodes where node.alive && node.failingUntil > 0 && step >= node.failingUntil {
            node.fs.rates = SimulatedFileSystem.FaultRates()
            node.failingUntil = 0
        }
        try deliverRollbacks()
    }

    func randomNode(alive: Bool) -> Node? {
        let candidates = nodes.filter { $0.alive == alive }
        return candidates.isEmpty ? nil : candidates[Int(UInt64(step) &* 2_654_435_761 % UInt64(candidates.count))]
    }

    mutating func write() throws {
        guard let primary, let actor = primary.actors[tenantIDs[random.next(below: tenantIDs.count)]] else { return }
        let caller = CallerIdentity(tenantID: actor.tenantID, personID: UUID16(high: 1, low: 1), scopes: [.recordsRead, .recordsWrite])
        let body = DurabilitySimulation.body(random.next())
        if moveRandom.chance(1, in: 40) { return moveWrite(actor, on: primary) }
        let outcome: (UInt64, UInt64, UInt64)? = actor.withExclusiveAccess { actor in
            guard let write = try? actor.create(body, caller: caller) else { return nil }
            return (write.sequence, write.lsn, DurabilitySimulation.digest(actor.state))
        }
        guard let (sequence, lsn, digest) = outcome else { return }
        pending.append(Write(tenant: actor.tenantID, sequence: sequence, lsn: lsn, digest: digest))
    }

    /// A partition move's writes on the primary, shipped like any other: the tenant released
    /// (emptied), or copied in piece by piece from another tenant's state, the first piece emptying it
    /// and jumping its sequence. Replicas apply them in order; a promoted replica must hold every
    /// acknowledged piece.
    mutating func moveWrite(_ actor: TenantActor, on primary: Node) {
        let tenant = actor.tenantID
        if moveRandom.chance(1, in: 3) {
            let released: (UInt64, UInt64, UInt64)? = actor.withExclusiveAccess { actor in
                guard let lsn = try? actor.release() else { return nil }
                return (actor.state.sequence, lsn, DurabilitySimulation.digest(actor.state))
            }
            guard let (sequence, lsn, digest) = released else { return }
            pending.append(Write(tenant: tenant, sequence: sequence, lsn: lsn, digest: digest))
            note("\(tenant) released at sequence \(sequence), LSN \(lsn)")
            result.releases += 1
            return
        }
        let others = tenantIDs.filter { $0 != tenant }
        guard !others.isEmpty, let source = primary.actors[others[moveRandom.next(below: others.count)]]?.withExclusiveAccess({ $0.state }) else { return }
        let sourceSequence = source.sequence + UInt64(moveRandom.next(below: 50))
        let items = 1 + moveRandom.next(below: 8)
        var cursor: TenantExportCursor? = .start
        var first = true
        while let current = cursor {
            let (piece, next) = DurabilitySimulation.movePiece(of: source, from: current, maximumItems: items, as: tenant)
            let isFirst = first
            let written: (UInt64, UInt64, UInt64)? = actor.withExclusiveAccess { actor in
                guard let (sequence, lsn) = try? actor.adopt(piece, as: isFirst ? .firstOfCopy : .later, sourceSequence: sourceSequence) else { return nil }
                return (sequence, lsn, DurabilitySimulation.digest(actor.state))
            }
            guard let (sequence, lsn, digest) = written else { return }
            pending.append(Write(tenant: tenant, sequence: sequence, lsn: lsn, digest: digest))
            note("\(tenant) copied in: piece at sequence \(sequence), LSN \(lsn)")
            result.movePieces += 1
            first = false
            cursor = next
        }
        // The changes a fenced move copies on top, continuing a sequence that may have moved on.
        guard moveRandom.chance(1, in: 2) else { return }
        let changes = DurabilitySimulation.changesPiece(of: source, as: tenant, random: &moveRandom)
        let continued = sourceSequence + UInt64(moveRandom.next(below: 30))
        let written: (UInt64, UInt64, UInt64)? = actor.withExclusiveAccess { actor in
            guard let (sequence, lsn) = try? actor.adopt(changes, as: .firstOfChanges, sourceSequence: continued) else { return nil }
            return (sequence, lsn, DurabilitySimulation.digest(actor.state))
        }
        guard let (sequence, lsn, digest) = written else { return }
        pending.append(Write(tenant: tenant, sequence: sequence, lsn: lsn, digest: digest))
        note("\(tenant): changes copied in on top at sequence \(sequence), LSN \(lsn)")
        result.movePieces += 1
    }

    mutating func primaryWriterStep() {
        guard let primary, let wal = primary.wal else { return }
        wal.runWriterStep()
        primary.replicaSet.locallyCommitted(through: wal.locallyDurableLSN, nowMilliseconds: now)
        gate(primary)
    }

    /// Sets the primary's commit gate and acknowledges the writes it now lets through.
    mutating func gate(_ primary: Node) {
        guard let wal = primary.wal else { return }
        wal.setCommitGate(primary.replicaSet.commitMark)
        wal.holdSegments(after: primary.replicaSet.retentionHold(nowMilliseconds: now))
        let committed = wal.committedLSN
        acknowledgedThroughLSN = max(acknowledgedThroughLSN, committed)
        checkShownCommitted(primary, committed: committed)
        var still: [Write] = []
        for write in pending {
            if write.lsn <= committed && !wal.hasFailed(write.lsn) {
                acknowledged[write.tenant, default: [:]][write.sequence] = write.digest
                result.acknowledged += 1
            } else {
                still.append(write)
            }
        }
        pending = still
    }

    mutating func ship() {
        guard let primary, let wal = primary.wal else { return }
        for connection in orderedConnections {
            let read: (bytes: [UInt8], records: Int, batch: WALTailReader.Batch)
            do {
                read = try connection.reader.readRaw(wal.shippingTail, after: connection.startAfter, isFailed: wal.hasFailed, maximumBytes: 16 << 10)
            } catch {
                // Retention removed what the replica needs next (LOG_TRUNCATED): the stream ends.
                note("stream to \(connection.replica) ends: \(error)")
                close(connection)
                continue
            }
            // The server's session sends a frame for new records, for a commit mark that advanced, and
            // as a heartbeat when quiet.
            let commitLSN = wal.committedLSN
            acknowledgedThroughLSN = max(acknowledgedThroughLSN, commitLSN)
            if read.records > 0 || commitLSN > connection.sentCommitLSN || random.chance(300_000) {
                let inSync = primary.replicaSet.replicas[connection.replica]?.inSync ?? false
                connection.toReplica.append(Frame(records: read.bytes, inSync: inSync, commitLSN: commitLSN))
                connection.sentCommitLSN = commitLSN
                result.recordsShipped += read.records
            }
        }
    }

    mutating func deliverRecords() throws {
        guard let connection = randomConnection(), !connection.toReplica.isEmpty, let replica = node(connection.replica), let wal = replica.wal else { return }
        let frame = connection.toReplica.removeFirst()
        if random.chance(20_000) {
            connection.toReplica.insert(frame, at: 0)
            result.duplicatedFrames += 1
            note("frame to \(replica.id) duplicated")
        }
        let before = replica.applied
        // A heartbeat is acknowledged at once; records, after the replica's log commits them.
        if try apply(frame, to: replica, via: connection), replica.applied == before {
            connection.toPrimary.append((min(wal.locallyDurableLSN, replica.applied), replica.applied))
        }
    }

    /// Applies one RECORDS frame on `replica`, as its follower does: a frame it cannot take (a duplicate)
    /// ends the stream, a failing log stops the node, anything else is a failure. Returns whether it was applied.
    mutating func apply(_ frame: Frame, to replica: Node, via connection: Connection) throws -> Bool {
        let actors = replica.actors
        let (applied, error) = ReplicatedApply.apply(frame.records, after: replica.applied) { actors[$0]! }
        replica.applied = applied
        guard let error else {
            replica.wal?.setCommitGate(frame.commitLSN)
            replica.learnedCommitLSN = max(replica.learnedCommitLSN, frame.commitLSN)
            return true
        }
        note("\(replica.id) refused a frame: \(error)")
        switch error.code {
        case .badFrame: close(connection)
        case .storageUnavailable: failStop(replica)
        default: throw SimulationFailure("\(replica.id): a replicated record could not be applied: \(error)")
        }
        return false
    }

    mutating func replicaWriterStep() {
        let replicas = nodes.filter { $0.alive && $0.role == .replica }
        guard !replicas.isEmpty else { return }
        let replica = replicas[random.next(below: replicas.count)]
        guard let wal = replica.wal else { return }
        wal.runWriterStep()
        if wal.hasFailures { return failStop(replica) }
        if let connection = connections[replica.id] {
            connection.toPrimary.append((min(wal.locallyDurableLSN, replica.applied), replica.applied))
        }
    }

    mutating func deliverAck() {
        guard let connection = randomConnection(), !connection.toPrimary.isEmpty, let primary else { return }
        let ack = connection.toPrimary.removeFirst()
        primary.replicaSet.acknowledged(connection.replica, durableLSN: ack.durable, appliedLSN: ack.applied, nowMilliseconds: now)
        gate(primary)
    }

    mutating func tick() {
        guard let primary else { return }
        let removed = primary.replicaSet.tick(nowMilliseconds: now)
        if !removed.isEmpty { note("left the in-sync set: \(removed)") }
        gate(primary)
    }

    mutating func randomConnection() -> Connection? {
        let all = orderedConnections
        return all.isEmpty ? nil : all[random.next(below: all.count)]
    }

    func node(_ id: String) -> Node? { nodes.first { $0.id == id && $0.alive } }

    /// By replica: steps draw from the random stream per connection, and a seed must replay in any
    /// process (a dictionary's order changes with the process's hash seed).
    var orderedConnections: [Connection] { connections.values.sorted { $0.replica < $1.replica } }

    mutating func close(_ connection: Connection) {
        connection.reader.close()
        connections[connection.replica] = nil
        primary?.replicaSet.disconnected(connection.replica, nowMilliseconds: now)
        if let primary { gate(primary) }
    }

    /// A replica without a stream connects to the primary: where it continues, or a stale primary fenced.
    mutating func connect() throws {
        guard let primary, let wal = primary.wal else { return }
        for replica in nodes where replica.alive && replica.role == .replica && connections[replica.id] == nil && replica.partitionedUntil <= step {
            guard let replicaWAL = replica.wal else { continue }
            // Everything applied must be resolved in the replica's own log first (the follower waits).
            replicaWAL.runWriterStep()
            try deliverRollbacks()
            if !replica.alive || replicaWAL.locallyDurableLSN < replica.applied { continue }
            guard let point = primary.history.followPoint(follower: replica.history, lastLSN: replica.applied, localLastLSN: wal.locallyDurableLSN) else {
                // The replica promised a newer epoch (a promotion began): the primary is fenced.
                note("\(replica.id) fenced \(primary.id) (epoch \(primary.history.currentEpoch) < promised \(replica.history.promised))")
                primary.role = .fenced
                wal.clientWriteRefusal = LearnStoreError(.notPrimary, "fenced")
                wal.stopAcknowledging(LearnStoreError(.outcomeUnknown, "fenced"))
                for connection in orderedConnections { close(connection) }
                pending.removeAll()
                return
            }
            if point.truncate {
                // The follower refuses to go on; the node cuts its log at its next start.
                note("\(replica.id) must cut after \(point.startAfter); restarting it")
                crash(replica)
                try restart(replica)
                continue
            }
            let adopted = replica.history.adopting(primary.history)
            if replica.history != adopted {
                // A disk that refuses the history: the follower tries again later.
                guard (try? adopted.write(directory: replica.historyDirectory, replica.fs)) != nil else { continue }
                replica.history = adopted
            }
            guard let position = wal.shippingTail.position(after: point.startAfter) else {
                // Retention removed the records the replica needs next: it copies the primary.
                try catchUp(replica, from: primary, after: point.startAfter)
                continue
            }
            let reader = WALTailReader(walDirectory: primary.directory.walDirectory, fileSystem: primary.fs, position: position)
            connections[replica.id] = Connection(replica: replica.id, epoch: primary.history.currentEpoch, reader: reader, startAfter: point.startAfter)
            primary.replicaSet.connected(replica.id, lastLSN: point.startAfter, nowMilliseconds: now)
            gate(primary)
        }
    }

    mutating func breakConnection() {
        guard let connection = randomConnection() else { return }
        result.connectionBreaks += 1
        note("connection to \(connection.replica) broke")
        close(connection)
    }

    mutating func partition() {
        let replicas = nodes.filter { $0.alive && $0.role == .replica }
        guard !replicas.isEmpty else { return }
        let replica = replicas[random.next(below: replicas.count)]
        replica.partitionedUntil = step + 5 + random.next(below: 40)
        result.partitions += 1
        note("\(replica.id) partitioned until step \(replica.partitionedUntil)")
        if let connection = connections[replica.id] { close(connection) }
    }

    mutating func storageTrouble() {
        let replicas = nodes.filter { $0.alive && $0.role == .replica }
        guard !replicas.isEmpty else { return }
        let replica = replicas[random.next(below: replicas.count)]
        replica.fs.rates.writeError = 300_000
        replica.fs.rates.syncError = 200_000
        replica.failingUntil = step + 10 + random.next(below: 30)
        result.storageFaults += 1
        note("\(replica.id)'s disk fails writes until step \(replica.failingUntil)")
    }

    /// A replica whose log fails a write stops (its log has given the failed LSNs away, and its
    /// primary's records must keep their LSNs); it is restarted later and recovers what is durable.
    mutating func failStop(_ replica: Node) {
        note("\(replica.id)'s log failed: it stops")
        crash(replica)
    }

    mutating func deliverRollbacks() throws {
        for node in nodes where node.alive {
            if node.role == .replica, node.wal?.hasFailures == true {
                failStop(node)
                continue
            }
            if node.role == .primary, node.wal?.hasFailures == true {
                throw SimulationFailure("the primary's log failed a write, but the simulation injects no faults there")
            }
        }
    }

    /// With the primary down and no more nodes down than the minimum in-sync count (so the nodes up
    /// include one that holds every acknowledged write, and any later promotion sees one that knows
    /// this epoch), the most up-to-date replica (the newest epoch its log is in, then the most of the
    /// log) becomes the primary of an epoch above every epoch the nodes up know: what
    /// `learnstore cluster promote` does.
    mutating func promoteIfPrimaryDown() throws {
        guard primary == nil else { return }
        guard nodes.filter({ !$0.alive }).count <= options.minimumInSync else { return }
        // A fenced old primary holds every write it acknowledged: it is a candidate too.
        let replicas = nodes.filter { $0.alive && $0.role != .primary }
        func upToDate(_ node: Node) -> (UInt64, UInt64) {
            let last = node.wal?.locallyDurableLSN ?? 0
            return (node.history.logEpoch(through: last), last)
        }
        guard let chosen = replicas.max(by: { upToDate($0) < upToDate($1) }), let wal = chosen.wal else { return }
        // The new epoch is promised first by all but the minimum in-sync count of the nodes: any later
        // promotion hears of it, and no older primary can gather its in-sync replicas any more.
        let epoch = (nodes.filter(\.alive).map(\.history.promised).max() ?? 0) + 1
        var promises = 0
        let promotion = UUID16(high: epoch, low: UInt64(result.promotions))
        for node in nodes where node.alive {
            var history = node.history
            guard history.promise(epoch, to: promotion) != .refused else { continue }
            guard (try? history.write(directory: node.historyDirectory, node.fs)) != nil else { continue }
            node.history = history
            promises += 1
        }
        guard promises >= nodes.count - options.minimumInSync else {
            note("promotion to epoch \(epoch) abandoned: \(promises) nodes promised it")
            return
        }
        for connection in orderedConnections { close(connection) }
        // Everything it applied becomes durable first (writes that fail are undone, and it is promoted without them).
        for _ in 0..<20 where wal.locallyDurableLSN < chosen.applied {
            wal.runWriterStep()
            try deliverRollbacks()
        }
        guard chosen.alive, wal.locallyDurableLSN >= chosen.applied else { return }
        let learned = chosen.role == .fenced ? wal.committedLSN : chosen.learnedCommitLSN
        var history = chosen.history
        // Epochs it learned but holds no record of are not its past (a later follower that holds
        // records of them is cut back to where this log ends).
        history.truncate(after: wal.nextLSN - 1)
        try history.begin(epoch: epoch, firstLSN: wal.nextLSN)
        guard (try? history.write(directory: chosen.historyDirectory, chosen.fs)) != nil else { return }
        chosen.history = history
        chosen.role = .primary
        chosen.fs.rates = SimulatedFileSystem.FaultRates()
        chosen.failingUntil = 0
        chosen.replicaSet = ReplicaSetState(
            configuration: chosen.replicaSet.configuration, localDurableLSN: wal.locallyDurableLSN, learnedCommitLSN: learned)
        wal.snapshotsWaitForGate = true
        wal.restartCommitMark(at: chosen.replicaSet.commitMark)
        wal.resumeAcknowledging()
        wal.haltsOnFailure = false
        wal.clientWriteRefusal = nil
        // A dead old primary restarts as a replica; a live fenced one stays fenced until it is restarted.
        for node in nodes where node !== chosen && !node.alive && node.role != .replica { node.role = .replica }
        result.promotions += 1
        note("\(chosen.id) promoted to epoch \(chosen.history.currentEpoch) from LSN \(wal.nextLSN), its mark at LSN \(chosen.replicaSet.commitMark)")
        // What it shows as committed from now on, reads may show at once.
        gate(chosen)
        try checkHoldsAcknowledged(chosen, what: "promoted \(chosen.id)", strict: true)
    }

    // MARK: invariants

    /// Every acknowledged write is durable on every in-sync replica that is up, and no replica shows a
    /// write that was not acknowledged (a failover could take it back).
    mutating func checkInSyncHoldAcknowledged() throws {
        for node in nodes where node.alive && node.role == .replica {
            guard let shown = node.wal?.committedLSN, shown > max(node.shownAtBoot, acknowledgedThroughLSN) else { continue }
            throw SimulationFailure("replica \(node.id) shows up to LSN \(shown), but writes were acknowledged only up to \(acknowledgedThroughLSN)")
        }
        guard let primary, let wal = primary.wal else { return }
        let committed = wal.committedLSN
        for replica in primary.replicaSet.inSyncReplicas {
            guard let node = node(replica), let replicaWAL = node.wal else { continue }
            if replicaWAL.locallyDurableLSN < committed && !(replicaWAL.locallyDurableLSN..<committed).isEmpty {
                // LSNs that failed on the primary are not shipped; committed counts over them.
                let missing = (replicaWAL.locallyDurableLSN + 1)...committed
                if missing.contains(where: { !wal.hasFailed($0) }) {
                    throw SimulationFailure("in-sync replica \(replica) has durable only up to LSN \(replicaWAL.locallyDurableLSN), the primary acknowledged up to \(committed)")
                }
            }
        }
    }

    /// The records `primary` shows as committed (its log up to `committed`) are those every primary
    /// before showed at the same tenant sequences, byte for byte, where one did.
    mutating func checkShownCommitted(_ primary: Node, committed: UInt64) {
        guard let wal = primary.wal else { return }
        let key = "\(primary.id)/\(primary.history.currentEpoch)/\(primary.boots)"
        let tail = wal.tail
        let from = max(shownChecked[key] ?? 0, tail.floorLSN)
        guard committed > from, let position = tail.position(after: from) else { return }
        shownChecked[key] = committed
        let reader = WALTailReader(walDirectory: primary.directory.walDirectory, fileSystem: primary.fs, position: position)
        defer { reader.close() }
        while true {
            guard let batch = try? reader.read(tail, isFailed: wal.hasFailed, maximumRecords: 256, wants: { _, _ in true }) else { return }
            for record in batch.records where record.lsn > from && record.lsn <= committed {
                let checksum = CRC32C.checksum(record.encoded)
                let tenant = record.entry.tenantID
                let sequence = record.entry.sequence
                if let earlier = shownCommitted[tenant]?[sequence], earlier != checksum, shownReplaced == nil {
                    shownReplaced = "primary \(primary.id) (epoch \(primary.history.currentEpoch)) shows the write of tenant \(tenant) at sequence \(sequence) "
                        + "(LSN \(record.lsn)) as committed, but an earlier primary showed another write committed at that sequence"
                }
                shownCommitted[tenant, default: [:]][sequence] = checksum
            }
            if batch.caughtUp || batch.records.isEmpty { return }
        }
    }

    /// `node` holds every acknowledged write: each tenant is at or past its newest acknowledged
    /// sequence, and where it holds one, holds it as written.
    mutating func checkHoldsAcknowledged(_ node: Node, what: String, strict: Bool) throws {
        for tenant in tenantIDs {
            guard let actor = node.actors[tenant] else { continue }
            let (sequence, digest) = actor.withExclusiveAccess { ($0.state.sequence, DurabilitySimulation.digest($0.state)) }
            let acked = acknowledged[tenant] ?? [:]
            if strict, let newest = acked.keys.max(), sequence < newest {
                throw SimulationFailure("\(what): tenant \(tenant) is at sequence \(sequence), but sequence \(newest) was acknowledged")
            }
            if let expected = acked[sequence], expected != digest {
                throw SimulationFailure("\(what): tenant \(tenant) at sequence \(sequence) differs from the acknowledged write")
            }
        }
    }

    /// One round without faults: the primary's log writes, every frame reaches its replica, every
    /// replica's log writes and its acknowledgements reach the primary, which sets its gate.
    mutating func exchangeEverything(_ primary: Node) throws {
        primaryWriterStep()
        ship()
        for connection in orderedConnections {
            while !connection.toReplica.isEmpty {
                guard let replica = node(connection.replica), let replicaWAL = replica.wal else { break }
                // A frame duplicated before the faults stopped ends the stream: the follower reconnects.
                guard try apply(connection.toReplica.removeFirst(), to: replica, via: connection) else { break }
                replicaWAL.runWriterStep()
                connection.toPrimary.append((min(replicaWAL.locallyDurableLSN, replica.applied), replica.applied))
            }
        }
        // Every replica's log writes on, as its group commit would: records applied while its
        // disk was failing reach the disk only now, or the node stops and starts again.
        for replica in nodes where replica.alive && replica.role == .replica {
            guard let replicaWAL = replica.wal else { continue }
            replicaWAL.runWriterStep()
            if replicaWAL.hasFailures {
                failStop(replica)
            } else if let connection = connections[replica.id] {
                connection.toPrimary.append((min(replicaWAL.locallyDurableLSN, replica.applied), replica.applied))
            }
        }
        for connection in orderedConnections {
            while !connection.toPrimary.isEmpty {
                let ack = connection.toPrimary.removeFirst()
                primary.replicaSet.acknowledged(connection.replica, durableLSN: ack.durable, appliedLSN: ack.applied, nowMilliseconds: now)
            }
        }
        gate(primary)
    }

    /// Faults stop, every node comes back and follows; then every node holds what the primary holds.
    mutating func heal() throws {
        for node in nodes {
            node.fs.rates = SimulatedFileSystem.FaultRates()
            node.failingUntil = 0
            node.partitionedUntil = 0
        }
        for node in nodes where !node.alive {
            if primary == nil && node.role == .primary { try restart(node) }
        }
        if primary == nil { try promoteIfPrimaryDown() }
        for node in nodes where !node.alive { try restart(node) }
        healing = true
        for _ in 0..<400 {
            // A replica whose copy was cut short is down until it starts again.
            for node in nodes where !node.alive && primary != nil { try restart(node) }
            if let fenced = nodes.first(where: { $0.alive && $0.role == .fenced }), primary != nil {
                crash(fenced)
                try restart(fenced)
            }
            // A fenced primary (an abandoned promotion left a promise above its epoch) is replaced.
            if self.primary == nil { try promoteIfPrimaryDown() }
            guard let primary = self.primary, let wal = primary.wal else { throw SimulationFailure("no primary after healing") }
            try connect()
            guard self.primary === primary else { continue }
            try exchangeEverything(primary)
            clock.advance(milliseconds: 10)
            let caughtUp = nodes.allSatisfy { node in
                node === primary || (connections[node.id] != nil && node.applied >= wal.locallyDurableLSN && (node.wal?.locallyDurableLSN ?? 0) >= node.applied)
            }
            if caughtUp && pending.isEmpty { break }
        }
        if !pending.isEmpty { throw SimulationFailure("\(pending.count) writes never acknowledged after healing") }
        guard let primary = self.primary, let primaryWAL = primary.wal else { throw SimulationFailure("no primary after healing") }
        // The last commit mark reaches the replicas: each shows everything the primary acknowledged.
        ship()
        for connection in orderedConnections {
            while !connection.toReplica.isEmpty, let replica = node(connection.replica) {
                guard try apply(connection.toReplica.removeFirst(), to: replica, via: connection) else { break }
            }
            if let replica = node(connection.replica), let shown = replica.wal?.committedLSN, shown < primaryWAL.committedLSN {
                throw SimulationFailure("after healing, replica \(replica.id) shows up to LSN \(shown), the primary acknowledged up to \(primaryWAL.committedLSN)")
            }
        }
        for node in nodes where node !== primary {
            for tenant in tenantIDs {
                let mine = node.actors[tenant]!.withExclusiveAccess { DurabilitySimulation.digest($0.state) }
                let theirs = primary.actors[tenant]!.withExclusiveAccess { DurabilitySimulation.digest($0.state) }
                if mine != theirs { throw SimulationFailure("after healing, \(node.id) differs from primary \(primary.id) on tenant \(tenant)") }
            }
        }
        try checkHoldsAcknowledged(primary, what: "healed primary \(primary.id)", strict: true)
    }
}
