import Foundation
import LearnStoreEngine
import LearnStoreModel
import Logging

/// A deterministic simulation of the storage path: the real tenant actors, WAL (its writer rounds
/// driven one at a time), ledger, snapshots, retention and recovery run over a ``SimulatedFileSystem``
/// and a simulated clock, all chosen by one seed. Clients write to many tenants while faults strike
/// (failed and short writes, failed and slow syncs and preallocations, disk-full periods, killed
/// processes and machine crashes that lose unsynced bytes, bits flipped in files) and tenants ingest
/// Canvas outcome events, are restored online from their snapshots, or fall quiet; after every step and
/// every restart the invariants are checked. The same seed replays the same run.
public struct DurabilitySimulation {
    public struct Options: Sendable {
        public var steps = 400
        public var tenants = 4
        public var policy: FsyncPolicy = .always
        /// 1 MiB: a run of 400 steps stays in its first segment. With 8 KiB every run rotates and
        /// retention removes segments; that mode still finds open failures (a crash around a segment
        /// rotation: a resumed log whose records do not follow the previous segment's).
        public var segmentBytes = 1 << 20
        /// The first tenant writes only in this first part of the run (per cent of the steps), then
        /// falls quiet while the others fill segments that retention removes (with 3 tenants or more).
        public var quietTenantWritesUntilPercent = 15
        /// Chance per crash that one bit of a WAL segment or snapshot flips, per million.
        public var bitFlipPerCrash = 40_000
        /// Chance per file or directory sync that it takes up to 3 s of simulated time, per million.
        public var slowSyncPerMillion = 20_000
        /// Change-feed subscribers follow every tenant (they read only, from a random stream of their own).
        public var feedFollowers = true
        /// The writes of partition moves: a tenant copied in, in pieces, from another tenant's state
        /// (the first piece empties it and jumps its sequence), or released (emptied).
        public var moves = true
        /// WAL kept for the feed beyond what snapshots need.
        public var feedRetention = FeedRetention.none
        public init() {}
    }

    public struct Result: Sendable {
        public var seed: UInt64
        public var steps = 0
        public var faults = 0
        public var crashes = 0
        public var acknowledged = 0
        public var failedWrites = 0
        public var snapshots = 0
        public var segmentsRemoved = 0
        public var slowSyncs = 0
        public var bitFlips = 0
        public var outcomeIngests = 0
        public var restores = 0
        /// Of those, restores logged as one write (as with replication on).
        public var restoresAsWrites = 0
        /// Partition-move writes acknowledged: pieces of tenants copied in, and releases.
        public var movePieces = 0
        public var releases = 0
        /// Restores whose snapshot was renamed into place before the directory sync failed (the
        /// controller removes it again, or the restore ends uncertain).
        public var restoresTakenBack = 0
        /// Changes the feed followers were given, and the times they were told theirs were gone.
        public var feedChanges = 0
        public var feedTruncations = 0
        /// Of `feedChanges`, those read from the tenants' recent changes in memory, and the times a
        /// follower reading there fell behind them and went back to the log.
        public var feedChangesFromMemory = 0
        public var feedFellBehindMemory = 0
        /// Starts at which the quiet tenant's snapshot lay below the oldest WAL segment (the retention
        /// case of docs/STORAGE-FORMAT.md, recovery step 7).
        public var startsWithQuietTenantBelowOldestSegment = 0
        /// Recovery refused to start because of a flipped bit and named the damage: the run ends there.
        /// Not a failure (the documented behaviour), counted apart.
        public var detectedCorruption: String?
        /// The first invariant broken, with the steps that led to it; nil when the run passed.
        public var failure: String?
        public var trace: [String] = []
    }

    /// One applied write of a tenant: its sequence, LSN and the tenant's digest after it.
    struct Applied {
        var sequence: UInt64
        var lsn: UInt64
        var digest: UInt64
        var acknowledged = false
        /// An online restore: durable when acknowledged (a synced snapshot), whatever the WAL loses.
        var isRestore = false
    }

    let seed: UInt64
    let options: Options
    var random: SplitMix64
    let fs: SimulatedFileSystem
    let clock = SimulatedClock()
    let directory = DataDirectory("/sim/data")
    var logger: Logger
    var result: Result

    // One process life.
    var wal: WriteAheadLog!
    var controller: PersistenceController!
    var actors: [String: TenantActor] = [:]
    let rollbacks = RollbackQueue()

    var history: [String: [Applied]] = [:]
    /// Rolled-back writes whose bytes reached the log before their sync failed: until the storage
    /// recovers, a crash may bring them back (the documented outcome of a failed sync).
    var uncertain: [String: [Applied]] = [:]
    var diskFull = 0
    /// Tenants whose online restore ended uncertain: LOADING until the next start.
    var loadingUntilRestart = Set<String>()
    /// Those restores: the next start may find them done (checked by `checkRecovered`).
    var uncertainRestores: [String: Applied] = [:]
    /// Change-feed subscribers per tenant, and their own random stream.
    var followers: [String: FeedFollower] = [:]
    /// Each tenant's recent changes in memory, attached at every start as the server attaches them
    /// for its subscribers (held for a few records only, so followers fall behind them often).
    var recentChanges: [String: RecentChanges] = [:]
    var feedRandom: SplitMix64
    /// The partition-move writes' own stream, so that they leave the other steps' draws as they were.
    var moveRandom: SplitMix64

    public init(seed: UInt64, options: Options = Options()) {
        self.seed = seed
        self.options = options
        self.random = SplitMix64(seed: seed)
        self.feedRandom = SplitMix64(seed: seed ^ 0xFEED_FEED)
        self.moveRandom = SplitMix64(seed: seed ^ 0x0A0B_0C0D)
        self.fs = SimulatedFileSystem(random: SplitMix64(seed: seed ^ 0xF5_F5F5))
        var logger = Logger(label: "learnstore.simulation")
        // LEARNSTORE_SIMULATION_LOG=debug shows what the log, snapshots and recovery did (to replay one seed).
        logger.logLevel = ProcessInfo.processInfo.environment["LEARNSTORE_SIMULATION_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        self.logger = logger
        self.result = Result(seed: seed)
        fs.clock = clock
        fs.slowSyncs.perMillion = options.slowSyncPerMillion
    }

    var tenantIDs: [String] { (0..<options.tenants).map { "t\($0)" } }
    /// The last tenant only reads: it must never hold back retention.
    var readOnlyTenant: String { "t\(options.tenants - 1)" }
    /// The tenant that falls quiet (none with fewer than 3 tenants: one writer must keep writing).
    var quietTenant: String? { options.tenants >= 3 ? "t0" : nil }
    var writingTenants: [String] {
        let quiet = result.steps * 100 > options.steps * options.quietTenantWritesUntilPercent
        return tenantIDs.filter { $0 != readOnlyTenant && !(quiet && $0 == quietTenant) && !loadingUntilRestart.contains($0) }
    }

    public mutating func run() -> Result {
        do {
            try boot()
            for step in 0..<options.steps {
                result.steps = step + 1
                try self.step()
                try checkLive(all: step % 25 == 0)
                try follow()
            }
            try finish()
        } catch let failure as SimulationFailure {
            result.failure = failure.message
        } catch let detected as DetectedCorruption {
            result.detectedCorruption = detected.message
        } catch {
            result.failure = "unexpected error: \(error)"
        }
        result.faults = fs.faultsInjected
        result.slowSyncs = fs.slowSyncsInjected
        return result
    }

    mutating func note(_ line: String) {
        for logged in rollbacks.takeLog() { result.trace.append("\(result.steps): \(logged)") }
        result.trace.append("\(result.steps): \(line)")
        if result.trace.count > 60 { result.trace.removeFirst(result.trace.count - 60) }
    }

    // MARK: process life

    mutating func boot() throws {
        var recoveryOptions = Recovery.Options(directory: directory)
        recoveryOptions.fileSystem = fs
        recoveryOptions.loadsTenantsInParallel = false
        let outcome: Recovery.Outcome
        do {
            outcome = try Recovery(options: recoveryOptions, logger: logger).run()
        } catch let error as StorageError {
            // The disk refused recovery's own writes (truncating a torn tail): the server does not
            // start; the operator frees space and starts it again.
            note("recovery stopped by the disk (\(error)); starting again on a healthy disk")
            fs.rates = SimulatedFileSystem.FaultRates()
            diskFull = 0
            do {
                outcome = try Recovery(options: recoveryOptions, logger: logger).run()
            } catch {
                try refusedBecauseOfFlippedBit(error)
                throw SimulationFailure("recovery refused to start: \(error)")
            }
        } catch {
            try refusedBecauseOfFlippedBit(error)
            throw SimulationFailure("recovery refused to start: \(error)")
        }
        if let quiet = quietTenant, let report = outcome.report.tenants[quiet], report.snapshotSequence != nil,
            let oldest = outcome.segments.first?.firstLSN, report.snapshotLSN + 1 < oldest
        {
            result.startsWithQuietTenantBelowOldestSegment += 1
        }
        let kept = try PersistenceController.keptSnapshots(directory, fs)
        let walConfiguration = WALConfiguration(
            directory: directory.walDirectory, policy: options.policy, segmentBytes: options.segmentBytes, fileSystem: fs,
            appendersWriteNow: options.policy != .always, prepareSegmentsInBackground: false, feedRetention: options.feedRetention)
        let savedRates = fs.rates
        fs.rates = SimulatedFileSystem.FaultRates()  // opening the log is not under test here
        defer { fs.rates = savedRates }
        wal = try WriteAheadLog(
            configuration: walConfiguration, resume: outcome.resume,
            startLSN: outcome.firstFreeLSN,
            segments: outcome.segments, snapshotCoverage: kept.compactMapValues { $0.map(\.lsn).min() },
            clock: clock, logger: logger)
        let queue = rollbacks
        let files = fs
        wal.onFailure = { rollbacks in
            queue.append(rollbacks)
            queue.log("failure after \(files.lastFault ?? "?"): \(rollbacks.map { "\($0.tenant) \($0.lsns)" })")
        }
        var persistence = PersistenceConfiguration(dataDirectory: directory.path)
        persistence.fsync = options.policy
        persistence.fileSystem = fs
        controller = PersistenceController(
            configuration: persistence, wal: wal, directory: directory, logger: logger, clock: clock, lockDescriptor: -1, kept: kept)
        actors = [:]
        for tenant in tenantIDs {
            let actor = TenantActor(state: TenantState(tenantID: tenant), log: wal, clock: clock, executor: TenantExecutor { $0() })
            if let state = outcome.states[tenant] {
                actor.withExclusiveAccess { $0.recovered(state, lsn: outcome.lastLSN[tenant] ?? 0) }
            }
            // Derived from the seed rather than drawn from the steps' stream, which the ids then leave alone.
            let idSeed = seed ^ UInt64(tenantIDs.firstIndex(of: tenant)! + 1) << 40 ^ UInt64(result.crashes) << 20
            actor.withExclusiveAccess { $0.drawRecordIDs(from: SplitMix64(seed: idSeed)) }
            actors[tenant] = actor
        }
        attachRecentChanges()
        try checkRecovered(outcome)
        try checkFollowersAfterStart(mayLoseAcknowledged: options.policy != .always && lastCrashLostPageCache, tailLossAbove: tailLossAbove)
        tailLossAbove = nil
        loadingUntilRestart.removeAll()
        uncertainRestores.removeAll()
    }

    /// After a restart: every acknowledged write is there, nothing that failed is, and each tenant is
    /// exactly as it was after some write of its history (a prefix: later unacknowledged ones may be lost).
    mutating func checkRecovered(_ outcome: Recovery.Outcome) throws {
        for tenant in tenantIDs {
            var applied = history[tenant] ?? []
            let recovered = outcome.states[tenant].map(Self.digest) ?? Self.emptyDigest(tenant)
            let sequence = outcome.states[tenant]?.sequence ?? 0
            if let lastAcknowledged = applied.last(where: \.acknowledged), sequence < lastAcknowledged.sequence {
                let lost = applied.filter { $0.acknowledged && $0.sequence > sequence }
                // Under the relaxed policies a machine crash may take the last acknowledged writes
                // (docs/OPERATIONS.md); a flipped bit in the newest write of the log makes it a torn
                // tail, which recovery discards (docs/STORAGE-FORMAT.md, recovery step 3). A restore's
                // snapshot was synced before it was acknowledged: neither may take it.
                // A restore whose own snapshot file took a flipped bit may fall back to an older one.
                let mayLoseUnsynced = options.policy != .always && lastCrashLostPageCache
                func mayLose(_ entry: Applied) -> Bool {
                    if entry.isRestore { return flippedFiles.contains(directory.snapshotPath(tenant, sequence: entry.sequence)) }
                    return mayLoseUnsynced || tailLossAbove.map { entry.lsn > $0 } ?? false
                }
                guard lost.allSatisfy(mayLose) else {
                    throw SimulationFailure("tenant \(tenant): acknowledged \(lastAcknowledged.isRestore ? "restore" : "write") with sequence \(lastAcknowledged.sequence) (LSN \(lastAcknowledged.lsn)) lost; recovered sequence \(sequence)")
                }
                applied = applied.filter { $0.sequence <= sequence }
            }
            let revivable = (uncertain[tenant] ?? []) + (uncertainRestores[tenant].map { [$0] } ?? [])
            if sequence > 0, let revived = revivable.first(where: { $0.sequence == sequence && $0.digest == recovered }) {
                // The failed writes before it in the same write came back with it: they are in the log too.
                let kept = applied.filter { $0.sequence < sequence }
                let floor = kept.last?.sequence ?? 0
                let before = revivable.filter { !$0.isRestore && $0.sequence > floor && $0.sequence < sequence && $0.lsn < revived.lsn }
                history[tenant] = kept + before.sorted { $0.sequence < $1.sequence } + [revived]
                continue
            }
            let expected = sequence == 0 ? Self.emptyDigest(tenant) : applied.first(where: { $0.sequence == sequence })?.digest
            guard let expected, expected == recovered else {
                let report = outcome.report.tenants[tenant]
                let around = applied.filter { $0.sequence + 3 >= sequence || $0.sequence > sequence }.map { "seq \($0.sequence) lsn \($0.lsn)\($0.acknowledged ? " acked" : "")" }
                throw SimulationFailure(
                    "tenant \(tenant): recovered state at sequence \(sequence) is not the state any write of its history left "
                        + "(snapshot \(report?.snapshotSequence.map(String.init) ?? "none") at LSN \(report?.snapshotLSN ?? 0), "
                        + "\(report?.walRecordsApplied ?? 0) WAL records applied, the last at LSN \(outcome.lastLSN[tenant] ?? 0); history: \(around.joined(separator: ", ")))")
            }
            history[tenant] = applied.filter { $0.sequence <= sequence }.map { var entry = $0; entry.acknowledged = true; return entry }
        }
    }

    var lastCrashLostPageCache = false
    /// Set when a flipped bit lies in the newest write of the log: recovery takes it for a torn tail,
    /// so writes above this LSN may be lost at the next start.
    var tailLossAbove: UInt64?
    /// Files the simulation flipped a bit in (a refusal must name one of them).
    var flippedFiles = Set<String>()
    /// Tenants changed in this step (their live state is checked after it).
    var touched = Set<String>()

    mutating func crash(flips: Bool = true) throws {
        let machine = random.chance(400_000)
        lastCrashLostPageCache = machine
        note(machine ? "machine crash" : "process crash")
        result.crashes += 1
        // Anything not yet resolved was never answered: it may or may not survive.
        let failed = failedLSNs()
        let ledger = wal.ledgerSnapshot
        if !failed.isEmpty { note("failed before the crash: \(failed.sorted())") }
        func mayRevive(_ lsn: UInt64) -> Bool { ledger.uncertainFailures.contains { $0.contains(lsn) } }
        for tenant in tenantIDs {
            let applied = history[tenant] ?? []
            // A restore's LSN is the tenant's last write LSN before it, which a later write (after a
            // crash lost the tail) may reuse: a restore is never taken for a failed write.
            uncertain[tenant] = (uncertain[tenant] ?? []).filter { mayRevive($0.lsn) }
                + applied.filter { !$0.isRestore && failed.contains($0.lsn) && mayRevive($0.lsn) }
            history[tenant] = applied.filter { $0.isRestore || !failed.contains($0.lsn) }
        }
        rollbacks.removeAll()
        dropFollowers()
        wal = nil
        controller = nil
        actors = [:]
        if machine { fs.machineCrash() } else { fs.processCrash() }
        if flips && random.chance(options.bitFlipPerCrash) { try flipBit() }
        try boot()
    }

    func failedLSNs() -> Set<UInt64> {
        var failed = Set<UInt64>()
        for applied in history.values.joined() where !applied.isRestore && wal.hasFailed(applied.lsn) { failed.insert(applied.lsn) }
        return failed
    }

    // MARK: steps

    mutating func step() throws {
        clock.advance(milliseconds: Int64(random.next(below: 400)))
        if wal.ledgerSnapshot.uncertainFailures.isEmpty { uncertain.removeAll() }
        if diskFull > 0 {
            diskFull -= 1
            if diskFull == 0 { fs.rates = SimulatedFileSystem.FaultRates(); note("disk has space again") }
        }
        let choice = random.next(below: 200)
        switch choice {
        case 0..<90: try write()
        case 90..<110: try read()
        case 110..<140: wal.runWriterStep(); resolveAcknowledgements()
        case 140..<156: try deliverRollback()
        case 156..<168: try snapshotRound()
        case 168..<178: startStorageTrouble()
        case 178..<182: try crash()
        case 182..<184: try restoreOnline()
        default: wal.writeNow(); resolveAcknowledgements()
        }
    }

    mutating func startStorageTrouble() {
        var rates = SimulatedFileSystem.FaultRates()
        switch random.next(below: 4) {
        case 0: rates.writeError = 300_000
        case 1: rates.shortWrite = 200_000
        case 2: rates.syncError = 300_000
        default:
            rates.writeError = 100_000
            rates.allocateError = 500_000
            rates.renameError = 200_000
        }
        fs.rates = rates
        diskFull = 5 + random.next(below: 20)
        note("storage trouble for \(diskFull) steps")
    }

    mutating func write() throws {
        let writers = writingTenants
        guard !writers.isEmpty else { return }
        let tenant = writers[random.next(below: writers.count)]
        if options.moves && moveRandom.chance(1, in: 40) { return try moveWrite(tenant) }
        let kind = random.next(below: 8)
        if kind >= 6 { return try ingestOutcomes(tenant) }
        let caller = CallerIdentity(tenantID: tenant, personID: UUID16(high: 1, low: 1), scopes: [.recordsRead, .recordsWrite, .admin])
        let body = Self.body(random.next())
        let pick = random.next()
        let bodies = (0..<(1 + random.next(below: 5))).map { _ in Self.body(random.next()) }
        let title = "patched \(random.next(below: 1000))"
        try applyWrite(tenant) { actor in
            let slots = UInt64(actor.state.store.slotCount)
            let existing = slots > 0 ? actor.state.store.record(at: UInt32(pick % slots)).id : nil
            do {
                switch kind {
                case 0, 1:
                    let write = try actor.create(body, caller: caller)
                    return (write.sequence, write.lsn)
                case 2:
                    let write = try actor.createBatch(bodies, caller: caller)
                    return (write.sequence, write.lsn)
                case 3:
                    guard let existing else { return nil }
                    var patch = RecordBody()
                    patch.title = .value(title)
                    let write = try actor.patch(existing, patch, caller: caller)
                    return (write.sequence, write.lsn)
                case 4:
                    guard let existing else { return nil }
                    let write = try actor.delete(existing, caller: caller)
                    return (write.sequence, write.lsn)
                default:
                    guard let existing else { return nil }
                    let write = try actor.restore(existing, caller: caller)
                    return (write.sequence, write.lsn)
                }
            } catch {
                return nil
            }
        }
    }

    /// Runs one write on the tenant's actor (`body` returns its sequence and LSN, or nil when refused)
    /// and records it in the tenant's history.
    mutating func applyWrite(_ tenant: String, _ body: (isolated TenantActor) -> (UInt64, UInt64)?) throws {
        let actor = actors[tenant]!
        let before = actor.withExclusiveAccess { Self.digest($0.state) }
        let outcome = actor.withExclusiveAccess(body)
        let after = actor.withExclusiveAccess { Self.digest($0.state) }
        guard let (sequence, lsn) = outcome, lsn > 0 else {
            if before != after { throw SimulationFailure("tenant \(tenant): a refused write changed its state") }
            return
        }
        history[tenant, default: []].append(Applied(sequence: sequence, lsn: lsn, digest: after))
        touched.insert(tenant)
        note("\(tenant) write seq \(sequence) lsn \(lsn)")
        if options.policy != .always && random.chance(700_000) {
            wal.writeNow()
            resolveAcknowledgements()
        }
    }

    /// A read's answer is held until the newest write it observed is resolved, and refused if that
    /// write failed: so it may observe only a write that is in the tenant's state, never one already
    /// undone (which would refuse reads of durable data).
    mutating func read() throws {
        let tenant = tenantIDs[random.next(below: tenantIDs.count)]
        let caller = CallerIdentity(tenantID: tenant, personID: UUID16(high: 1, low: 1), scopes: [.recordsRead])
        let (observed, get) = actors[tenant]!.withExclusiveAccess { actor -> (UInt64, UInt64?) in
            _ = try? actor.stats(caller: caller)
            // A GET of one of the tenant's records waits only for the writes that touched it, never
            // for more than every other read does. The record is chosen by the tenant's sequence, not
            // drawn: one more draw would change every later step.
            let slots = actor.state.store.slotCount
            let slot = slots == 0 ? nil : UInt32(actor.state.sequence % UInt64(slots))
            let get = slot.map { actor.observedLSN(ofRecord: actor.state.store[$0].id) }
            return (actor.observedLSN, get)
        }
        for lsn in [observed, get ?? 0] where lsn > 0 && !(history[tenant] ?? []).contains(where: { !$0.isRestore && $0.lsn == lsn }) {
            throw SimulationFailure("tenant \(tenant): a read depends on LSN \(lsn), which is no write in the tenant's state")
        }
        if let get, get > observed {
            throw SimulationFailure("tenant \(tenant): a GET depends on LSN \(get), above every read's \(observed)")
        }
    }

    /// Marks writes whose LSN the log resolved as durable: their replies may now be sent.
    mutating func resolveAcknowledgements() {
        let committed = wal.committedLSN
        for tenant in tenantIDs {
            guard var applied = history[tenant] else { continue }
            for index in applied.indices where !applied[index].acknowledged && !applied[index].isRestore && applied[index].lsn <= committed {
                if !wal.hasFailed(applied[index].lsn) {
                    applied[index].acknowledged = true
                    result.acknowledged += 1
                }
            }
            history[tenant] = applied
        }
    }

    mutating func deliverRollback() throws {
        guard let rollback = rollbacks.takeFirst() else { return }
        result.failedWrites += 1
        if let answered = history[rollback.tenant]?.first(where: { !$0.isRestore && $0.acknowledged && rollback.lsns.contains($0.lsn) }) {
            throw SimulationFailure("tenant \(rollback.tenant): a rollback of \(rollback.lsns) undoes the acknowledged write at LSN \(answered.lsn)")
        }
        if let given = followers[rollback.tenant]?.delivered.first(where: { rollback.lsns.contains($0.lsn) }) {
            throw SimulationFailure("tenant \(rollback.tenant): a rollback of \(rollback.lsns) undoes LSN \(given.lsn), which the feed already gave")
        }
        let undone = actors[rollback.tenant]!.withExclusiveAccess { $0.rollBack(rollback.lsns) }
        let ledger = wal.ledgerSnapshot
        let applied = history[rollback.tenant] ?? []
        uncertain[rollback.tenant, default: []] += applied.filter { entry in
            !entry.isRestore && rollback.lsns.contains(entry.lsn) && ledger.uncertainFailures.contains { $0.contains(entry.lsn) }
        }
        history[rollback.tenant] = applied.filter { $0.isRestore || !rollback.lsns.contains($0.lsn) }
        touched.insert(rollback.tenant)
        note("\(rollback.tenant) rolled back \(undone) writes in \(rollback.lsns)")
    }

    /// Runs writer rounds (at most 50) until `lsn` is committed, then resolves acknowledgements;
    /// true when it was.
    mutating func runWriterUntilCommitted(_ lsn: UInt64) -> Bool {
        var rounds = 0
        while wal.committedLSN < lsn && rounds < 50 {
            wal.flush()
            wal.runWriterStep()
            rounds += 1
        }
        resolveAcknowledgements()
        return wal.committedLSN >= lsn
    }

    mutating func snapshotRound(force: Bool = false) throws {
        let chosen = tenantIDs.filter { _ in force || random.chance(500_000) }
        let captured = chosen.map { tenant in
            let (capture, lsn, unresolved) = actors[tenant]!.withExclusiveAccess { $0.captureForSnapshot() }
            return PersistenceController.SnapshotCapture(capture: capture, lsn: lsn, unresolved: unresolved)
        }
        let captures = controller.selectForRound(captured, force: force).write
        // The writer thread runs while the round waits for the captured writes.
        if !runWriterUntilCommitted(captures.flatMap(\.unresolved).max() ?? 0) {
            note("snapshot round skipped: captured writes unresolved")
            return
        }
        let before = wal.segmentFirstLSNs.count
        // One to three blocks compressed at once, taken from the run's number (`seed % 3`) rather
        // than drawn from its generator, where one more draw would change every later step of the run.
        let written = controller.writeSnapshots(captures, parallel: false, compressors: Int(seed % 3) + 1)
        result.snapshots += written.filter { $0.error == nil && !$0.skipped }.count
        result.segmentsRemoved += max(0, before - wal.segmentFirstLSNs.count)
        note("snapshot round of \(chosen.joined(separator: ",")): \(written.filter { $0.error == nil }.count) written")
    }

    /// At the end, with a healthy disk: everything is made durable, two forced rounds leave the WAL
    /// with only the segments some kept snapshot does not cover, and a last restart finds every write.
    mutating func finish() throws {
        tailLossAbove = nil
        fs.rates = SimulatedFileSystem.FaultRates()
        diskFull = 0
        for _ in 0..<20 {
            wal.runWriterStep()
            while rollbacks.count > 0 { try deliverRollback() }
        }
        resolveAcknowledgements()
        try snapshotRound(force: true)
        try snapshotRound(force: true)
        // Retention removed every segment that the kept snapshots on disk cover: each one left, but the
        // one being written, holds a record of some tenant above its oldest kept snapshot
        // (docs/STORAGE-FORMAT.md, recovery step 6; two snapshots are kept per tenant).
        let coverage = try PersistenceController.keptSnapshots(directory, fs).compactMapValues { $0.map(\.lsn).min() }
        let ledger = wal.ledgerSnapshot
        let feedKeepsFrom = ledger.feedWindowStart(nowMilliseconds: clock.now().milliseconds)
        let unneeded = ledger.segments.prefix(feedKeepsFrom).filter { segment in
            !segment.newestLSNByTenant.contains { tenant, newest in (coverage[tenant] ?? 0) < newest }
        }
        if !unneeded.isEmpty {
            throw SimulationFailure("after two full snapshot rounds the WAL kept segments its snapshots cover: \(unneeded.map(\.firstLSN)) of \(ledger.segments)")
        }
        lastCrashLostPageCache = false
        wal.flush()
        wal.runWriterStep()
        try crash(flips: false)
        try finishFollowers()
    }

    /// While no rollback is waiting, each tenant's state is the one its last applied write left.
    mutating func checkLive(all: Bool) throws {
        defer { touched.removeAll() }
        for tenant in tenantIDs where (all || touched.contains(tenant)) && !rollbacks.contains(tenant: tenant) {
            let live = actors[tenant]!.withExclusiveAccess { Self.digest($0.state) }
            let expected = history[tenant]?.last?.digest ?? Self.emptyDigest(tenant)
            guard live == expected else {
                throw SimulationFailure("tenant \(tenant): live state differs from the state its last write left")
            }
        }
    }

    // MARK: helpers

    static func body(_ value: UInt64) -> RecordBody {
        var body = RecordBody()
        body.personID = .value(UUID16(high: 9, low: value % 17))
        // Titles of varied length, so that segments fill and rotate within a run.
        body.title = .value("course \(value % 1000) " + String(repeating: "x", count: Int(value >> 40) % 160))
        body.provider = .value(["AWS", "edX"][Int(value % 2)])
        body.score = .value(Double(value % 100))
        return body
    }

    static func emptyDigest(_ tenant: String) -> UInt64 { digest(TenantState(tenantID: tenant)) }

    static let sequenceWeight: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// A digest of everything a tenant holds that a client can read back, and its sequence.
    static func digest(_ state: TenantState) -> UInt64 { state.sequence &* sequenceWeight &+ contentDigest(state) }

    /// The records and outcome rows, independent of slot order (a sum of per-record hashes, plus the
    /// hash of the outcome tables; compared only within one run, so the hash seed does not matter).
    static func contentDigest(_ state: TenantState) -> UInt64 {
        var outcomes = Hasher()
        outcomes.combine(state.outcomes.tables)
        var total = UInt64(bitPattern: Int64(outcomes.finalize()))
        for slot in 0..<UInt32(state.store.slotCount) where !state.store[slot].isPurged {
            var hasher = Hasher()
            hasher.combine(state.store.record(at: slot))
            total &+= UInt64(bitPattern: Int64(hasher.finalize()))
        }
        return total
    }
}

struct SimulationFailure: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Recovery refused to start and named a file whose bit the simulation flipped.
struct DetectedCorruption: Error {
    let message: String
}

/// Rollbacks the log asked for, delivered to tenants at a later step (as the server posts them to
/// each tenant's event loop).
final class RollbackQueue: @unchecked Sendable {
    private var queue: [DurabilityLedger.Rollback] = []
    private let lock = NSLock()
    func append(_ items: [DurabilityLedger.Rollback]) { lock.withLock { queue.append(contentsOf: items) } }
    func takeFirst() -> DurabilityLedger.Rollback? { lock.withLock { queue.isEmpty ? nil : queue.removeFirst() } }
    func removeAll() { lock.withLock { queue.removeAll() } }
    var count: Int { lock.withLock { queue.count } }
    func contains(tenant: String) -> Bool { lock.withLock { queue.contains { $0.tenant == tenant } } }
    private var lines: [String] = []
    func log(_ line: String) { lock.withLock { lines.append(line) } }
    func takeLog() -> [String] { lock.withLock { defer { lines.removeAll() }; return lines } }
}
