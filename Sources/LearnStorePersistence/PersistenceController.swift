import Dispatch
import Foundation
import LearnStoreEngine
import LearnStoreModel
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Settings of the WAL and snapshots.
public struct PersistenceConfiguration: Sendable {
    public var dataDirectory: String
    public var fsync: FsyncPolicy = .always
    public var segmentBytes = 64 << 20
    public var snapshotLevel = 1
    /// Snapshots kept per tenant (older ones are removed once a newer one is durable).
    public var snapshotsKept = 2
    /// Take a snapshot round this often (nil: never by time).
    public var snapshotIntervalSeconds: Double? = 3600
    /// Take a snapshot round when this many WAL bytes were written since the last one (nil: never).
    public var snapshotWALBytes: Int? = 512 << 20
    public var forceRecovery = false
    public var fileSystem: any FileSystem = PosixFileSystem()
    /// See `WALConfiguration.appendersWriteNow`.
    public var appendersWriteNow = false
    /// Told about WAL writes and syncs, snapshots and recovery progress (the server's metrics).
    public var observer: any PersistenceObserver = UnobservedPersistence()
    /// WAL kept for change-feed subscribers beyond what the snapshots need.
    public var feedRetention = FeedRetention.none

    public init(dataDirectory: String) { self.dataDirectory = dataDirectory }
}

/// Owns the WAL and the snapshots of a running server: recovery at start, snapshot rounds
/// (periodic, on demand, at shutdown) and retention of snapshots and WAL segments.
public final class PersistenceController: Sendable {
    public let configuration: PersistenceConfiguration
    public let wal: WriteAheadLog
    public let directory: DataDirectory
    let logger: Logger
    let clock: any EngineClock
    private let lockDescriptor: Int32
    private let lockHeld = Mutex(true)
    private let kept: Mutex<[String: [SnapshotHeader]]>
    private let roundInProgress = Mutex(false)
    private let lastRound: Mutex<(at: ContinuousClock.Instant, walBytes: UInt64)>
    private let snapshotQueue = DispatchQueue(label: "learnstore-snapshots", attributes: .concurrent)

    public struct SnapshotResult: Sendable {
        public var tenantID: String
        public var sequence: UInt64
        public var path: String
        public var bytes: Int
        public var records: Int
        public var seconds: Double
        public var skipped: Bool
        public var error: String?
    }

    /// Locks the data directory, recovers every tenant and opens the WAL for appending.
    public static func open(
        configuration: PersistenceConfiguration, limits: EngineLimits, clock: any EngineClock = SystemClock(),
        logger: Logger = Logger(label: "learnstore.persistence"), progress: @escaping @Sendable (String) -> Void = { _ in }
    ) throws -> (PersistenceController, Recovery.Outcome) {
        let directory = DataDirectory(configuration.dataDirectory)
        let fd = try directory.lock()
        var options = Recovery.Options(directory: directory)
        options.forceRecovery = configuration.forceRecovery
        options.fileSystem = configuration.fileSystem
        options.limits = limits
        options.observer = configuration.observer
        let outcome: Recovery.Outcome
        let wal: WriteAheadLog
        var kept: [String: [SnapshotHeader]] = [:]
        do {
            outcome = try Recovery(options: options, logger: logger, progress: progress).run()
            kept = try keptSnapshots(directory, configuration.fileSystem)
            let walConfiguration = WALConfiguration(
                directory: directory.walDirectory, policy: configuration.fsync, segmentBytes: configuration.segmentBytes,
                fileSystem: configuration.fileSystem, appendersWriteNow: configuration.appendersWriteNow, observer: configuration.observer,
                feedRetention: configuration.feedRetention)
            wal = try WriteAheadLog(
                configuration: walConfiguration, resume: outcome.resume,
                startLSN: outcome.firstFreeLSN,
                segments: outcome.segments, snapshotCoverage: kept.compactMapValues { $0.map(\.lsn).min() },
                clock: clock, logger: logger)
        } catch {
            DataDirectory.unlock(fd)
            throw error
        }
        let controller = PersistenceController(configuration: configuration, wal: wal, directory: directory, logger: logger,
                                               clock: clock, lockDescriptor: fd, kept: kept)
        return (controller, outcome)
    }

    /// The headers of every tenant's snapshots on disk, oldest first.
    static func keptSnapshots(_ directory: DataDirectory, _ fileSystem: any FileSystem) throws -> [String: [SnapshotHeader]] {
        var kept: [String: [SnapshotHeader]] = [:]
        for tenant in try directory.tenants(fileSystem) {
            for sequence in try directory.snapshots(of: tenant, fileSystem) {
                if let header = try? SnapshotFile.readHeader(directory.snapshotPath(tenant, sequence: sequence), fileSystem: fileSystem) {
                    kept[tenant, default: []].append(header)
                }
            }
        }
        return kept
    }

    init(configuration: PersistenceConfiguration, wal: WriteAheadLog, directory: DataDirectory, logger: Logger,
         clock: any EngineClock, lockDescriptor: Int32, kept: [String: [SnapshotHeader]]) {
        self.configuration = configuration
        self.wal = wal
        self.directory = directory
        self.logger = logger
        self.clock = clock
        self.lockDescriptor = lockDescriptor
        self.kept = Mutex(kept)
        self.lastRound = Mutex((ContinuousClock.now, 0))
    }

    public func start() { wal.start() }

    // MARK: snapshots

    /// Snapshots the given tenants: each is captured on its actor (O(pages)), then serialized,
    /// compressed and written off the actors, in parallel. Tenants unchanged since their last
    /// snapshot are skipped unless `force`.
    /// `background`: a scheduled round, written one tenant at a time on a low-priority thread so
    /// the event loops keep the CPU (on two cores a parallel round takes one from them). Rounds at
    /// shutdown and on demand use every core and finish sooner.
    /// `resolveTimeout`: how long the round waits for the captured writes to be acknowledged; a tenant
    /// whose writes are not by then is left out (the WAL still holds them).
    public func snapshot(
        _ tenants: [TenantActor], force: Bool = false, background: Bool = false, resolveTimeout: Duration = .seconds(30)
    ) async -> [SnapshotResult] {
        let alreadyRunning = roundInProgress.withLock { running in
            defer { running = true }
            return running
        }
        if alreadyRunning {
            return tenants.map { SnapshotResult(tenantID: $0.tenantID, sequence: 0, path: "", bytes: 0, records: 0, seconds: 0, skipped: true, error: "a snapshot round is already running") }
        }
        defer { roundInProgress.withLock { $0 = false } }
        var captured: [SnapshotCapture] = []
        for actor in tenants {
            let (capture, lsn, unresolved) = await actor.captureForSnapshot()
            captured.append(SnapshotCapture(capture: capture, lsn: lsn, unresolved: unresolved))
        }
        let (captures, results) = selectForRound(captured, force: force)
        lastRound.withLock { $0 = (ContinuousClock.now, wal.stats.bytesWritten) }
        guard !captures.isEmpty else { return results }
        let work = captures
        let written = await withCheckedContinuation { (continuation: CheckedContinuation<[SnapshotResult], Never>) in
            if background {
                let thread = Thread {
                    LowPriority.applyToCurrentThread()
                    continuation.resume(returning: self.writeSnapshots(work, parallel: false, resolveTimeout: resolveTimeout))
                }
                thread.name = "learnstore-snapshot"
                thread.start()
            } else {
                snapshotQueue.async { continuation.resume(returning: self.writeSnapshots(work, parallel: true, resolveTimeout: resolveTimeout)) }
            }
        }
        return results + written
    }

    /// Brings each tenant's secondary indexes up to its records (and drops the undo of its durable
    /// writes). A large backlog is built from a copy off the tenant's lock and swapped in
    /// (`TenantState+IndexBuild`), so requests for the tenant never wait for a build over the whole
    /// tenant; a small one is added in place. A build made stale by a write meanwhile is dropped: the
    /// writes' own pause brings the next attempt. Builds go through `builds`, the queue reads use: a
    /// read arriving meanwhile waits for the same build instead of starting a second one.
    static func catchUpIndexes(_ tenants: [TenantActor], builds: IndexBuildQueue) async {
        for tenant in tenants {
            await tenant.releaseCommittedUndo()
            guard let build = await tenant.indexBuild() else {
                await tenant.catchUpIndexes()
                continue
            }
            await builds.build(build, for: tenant)
        }
    }

    /// Merges the backlogs of large tenants while writes go on (`TenantState.indexBuildDuringWrites`):
    /// one pass each second instead of a record-by-record insert per write.
    static func catchUpLargeBacklogs(_ tenants: [TenantActor], builds: IndexBuildQueue) async {
        for tenant in tenants where tenant.outgrewLazyIndexing {
            guard let build = await tenant.indexBuildDuringWrites() else { continue }
            await builds.build(build, for: tenant)
        }
    }

    /// The captures a round writes: tenants with writes that changed since their newest kept snapshot
    /// (any with writes when `force`). The others are returned as skipped results.
    func selectForRound(_ captured: [SnapshotCapture], force: Bool) -> (write: [SnapshotCapture], skipped: [SnapshotResult]) {
        let newest = kept.withLock { $0.mapValues { $0.last?.sequence ?? 0 } }
        var write: [SnapshotCapture] = []
        var skipped: [SnapshotResult] = []
        for entry in captured {
            let capture = entry.capture
            if capture.sequence == 0 || (!force && newest[capture.tenantID] == capture.sequence) {
                skipped.append(SnapshotResult(tenantID: capture.tenantID, sequence: capture.sequence, path: "", bytes: 0, records: 0, seconds: 0, skipped: true, error: nil))
            } else {
                write.append(entry)
            }
        }
        return (write, skipped)
    }

    /// A tenant captured for a snapshot, with the writes in it not yet known durable.
    struct SnapshotCapture: Sendable {
        var capture: TenantCapture
        var lsn: UInt64
        var unresolved: [UInt64]
    }

    /// Read once: Foundation reads the cgroup's CPU files each time it is asked.
    static let cores = ProcessInfo.processInfo.activeProcessorCount

    /// The blocking part of a round (runs on the snapshot queue, never on an actor or event loop).
    /// A capture holding a write that failed is not written: that write is being undone. Nor is one
    /// at the LSN of a failed write still in the log (see ``FailedWriteNotYetWiped``).
    /// `compressors` overrides how many blocks of a tenant are compressed at once (the simulation's
    /// rounds run on one thread, tenant after tenant, yet exercise the pipeline).
    func writeSnapshots(_ all: [SnapshotCapture], parallel: Bool, compressors: Int? = nil, resolveTimeout: Duration = .seconds(30)) -> [SnapshotResult] {
        let maxLSN = all.flatMap(\.unresolved).max() ?? 0
        _ = wal.waitUntilResolvedForSnapshot(maxLSN, timeout: resolveTimeout)
        var results: [SnapshotResult] = []
        var captures: [(TenantCapture, UInt64)] = []
        for entry in all {
            let refusal: String? =
                if entry.unresolved.contains(where: { wal.snapshotResolvedLSN < $0 || wal.hasFailed($0) }) {
                    "writes in the capture could not be made durable"
                } else if wal.failedWriteMayReturn(entry.lsn) {
                    "\(FailedWriteNotYetWiped(tenantID: entry.capture.tenantID, lsn: entry.lsn))"
                } else {
                    nil
                }
            if let refusal {
                results.append(SnapshotResult(tenantID: entry.capture.tenantID, sequence: entry.capture.sequence, path: "", bytes: 0, records: 0,
                                              seconds: 0, skipped: false, error: refusal))
            } else {
                captures.append((entry.capture, entry.lsn))
            }
        }
        let written = writeCaptures(captures, parallel: parallel, compressors: compressors)
        return results + written
    }

    private func writeCaptures(_ captures: [(TenantCapture, UInt64)], parallel: Bool, compressors: Int?) -> [SnapshotResult] {
        let results = Mutex<[SnapshotResult]>([])
        let fs = configuration.fileSystem
        let now = clock.now()
        // A round that may use every core compresses each tenant's blocks on all of them too (a
        // SNAPSHOT request writes one tenant); a background round leaves the other core to serving.
        let compressors = compressors ?? (parallel ? Self.cores : 1)
        @Sendable func writeOne(_ index: Int) {
            let (capture, lsn) = captures[index]
            let start = ContinuousClock.now
            do {
                let written = try SnapshotFile.write(
                    capture, lsn: lsn, createdAt: now, directory: directory.tenantDirectory(capture.tenantID),
                    level: configuration.snapshotLevel, compressors: compressors, fileSystem: fs)
                let header = SnapshotHeader(tenantID: capture.tenantID, sequence: capture.sequence, lsn: lsn, createdAt: now,
                                            records: UInt64(capture.liveRecords + capture.deletedRecords),
                                            outcomeRecords: UInt64(capture.outcomes.recordCount),
                                            idempotencyKeys: UInt64(capture.idempotency.count))
                recordKept(header)
                configuration.observer.snapshotWritten(tenantID: capture.tenantID, bytes: written.bytes, duration: ContinuousClock.now - start)
                results.withLock {
                    $0.append(SnapshotResult(tenantID: capture.tenantID, sequence: capture.sequence, path: written.path, bytes: written.bytes,
                                             records: capture.liveRecords + capture.deletedRecords,
                                             seconds: Recovery.seconds(ContinuousClock.now - start), skipped: false, error: nil))
                }
            } catch {
                logger.error("snapshot failed", metadata: ["tenant": "\(capture.tenantID)", "error": "\(error)"])
                configuration.observer.snapshotFailed(tenantID: capture.tenantID)
                results.withLock {
                    $0.append(SnapshotResult(tenantID: capture.tenantID, sequence: capture.sequence, path: "", bytes: 0, records: 0,
                                             seconds: 0, skipped: false, error: "\(error)"))
                }
            }
        }
        if parallel {
            DispatchQueue.concurrentPerform(iterations: captures.count, execute: writeOne)
        } else {
            for index in captures.indices { writeOne(index) }
        }
        applyRetention()
        return results.withLock { $0 }
    }

    /// Remembers a durable snapshot and removes the ones beyond `snapshotsKept`.
    private func recordKept(_ header: SnapshotHeader) {
        let removable: [SnapshotHeader] = kept.withLock { map in
            var list = map[header.tenantID, default: []].filter { $0.sequence != header.sequence }
            list.append(header)
            list.sort { $0.sequence < $1.sequence }
            let excess = max(0, list.count - configuration.snapshotsKept)
            let removed = Array(list.prefix(excess))
            map[header.tenantID] = Array(list.dropFirst(excess))
            return removed
        }
        for old in removable {
            try? configuration.fileSystem.remove(directory.snapshotPath(old.tenantID, sequence: old.sequence))
        }
        if !removable.isEmpty { try? configuration.fileSystem.syncDirectory(directory.tenantDirectory(header.tenantID)) }
        if let oldest = kept.withLock({ $0[header.tenantID]?.map(\.lsn).min() }) {
            wal.snapshotsKept(tenant: header.tenantID, oldestKeptLSN: oldest)
        }
    }

    /// Removes the WAL segments no tenant needs: the WAL knows which tenants have records in each.
    func applyRetention() {
        let removed = wal.removeUnneededSegments()
        if !removed.isEmpty { logger.info("removed WAL segments covered by snapshots", metadata: ["count": "\(removed.count)"]) }
    }

    /// Snapshot rounds by time and WAL growth, until cancelled.
    /// `indexBuilds`: the queue of index builds the server's reads use (the scheduler's catch-ups join
    /// theirs and theirs join the scheduler's).
    public func runScheduler(indexBuilds: IndexBuildQueue = IndexBuildQueue(), tenants: @escaping @Sendable () -> [TenantActor]) async {
        var trimmedAtBytes: UInt64 = 0
        var writtenLastTick: UInt64 = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            // Give memory freed by request processing back to the system once a write burst is over
            // (glibc keeps freed heap otherwise; RSS is what operators and the memory target see).
            // Not during a burst: malloc_trim holds the allocator's locks while it walks the heap, a
            // pause every thread that allocates would feel.
            let written = wal.stats.bytesWritten
            if written == writtenLastTick && written != trimmedAtBytes {
                trimmedAtBytes = written
                // Build what the burst left out of the secondary indexes now, not in the first read.
                await Self.catchUpIndexes(tenants(), builds: indexBuilds)
                let started = ContinuousClock.now
                MemoryTrimmer.trim()
                logger.debug("returned free heap to the system", metadata: ["duration": "\(ContinuousClock.now - started)"])
            } else if written != writtenLastTick {
                await Self.catchUpLargeBacklogs(tenants(), builds: indexBuilds)
            }
            writtenLastTick = written
            let (at, bytes) = lastRound.withLock { $0 }
            let byTime = configuration.snapshotIntervalSeconds.map { ContinuousClock.now - at >= Self.interval(seconds: $0) } ?? false
            let byBytes = configuration.snapshotWALBytes.map { wal.stats.bytesWritten - bytes >= UInt64(clamping: $0) } ?? false
            if byTime || byBytes {
                let actors = tenants()
                let results = await snapshot(actors, background: true)
                let written = results.filter { !$0.skipped && $0.error == nil }
                if !written.isEmpty {
                    logger.info("snapshot round", metadata: ["tenants": "\(written.count)", "reason": "\(byBytes ? "wal growth" : "interval")"])
                }
            }
        }
    }

    /// Newest kept snapshot headers per tenant.
    public var snapshots: [String: [SnapshotHeader]] { kept.withLock { $0 } }

    /// Syncs and closes the WAL (after the last writes were answered) and releases the data directory.
    public func close() {
        wal.flush()
        wal.close()
        let release = lockHeld.withLock { held in
            defer { held = false }
            return held
        }
        if release { DataDirectory.unlock(lockDescriptor) }
    }

    // MARK: restore

    /// Writes a restored tenant's state as its newest snapshot and makes it durable (file and directory
    /// synced) before returning. `lsn` is the LSN of the tenant's last write in the history the state
    /// replaces: nothing of the tenant up to it needs replaying. Blocking: call it off the actors.
    public func writeRestoredSnapshot(_ state: TenantState, lsn: UInt64) throws -> SnapshotFile.WriteResult {
        if wal.failedWriteMayReturn(lsn) { throw FailedWriteNotYetWiped(tenantID: state.tenantID, lsn: lsn) }
        let start = ContinuousClock.now
        let capture = state.capture()
        let now = clock.now()
        let written: SnapshotFile.WriteResult
        do {
            written = try SnapshotFile.write(
                capture, lsn: lsn, createdAt: now, directory: directory.tenantDirectory(capture.tenantID),
                level: configuration.snapshotLevel, fileSystem: configuration.fileSystem)
        } catch let failed as SnapshotFile.RenamedNotSynced {
            configuration.observer.snapshotFailed(tenantID: capture.tenantID)
            // The restored snapshot lies above the tenant's sequence: left in place, a restart would load
            // it and skip the tenant's next writes, which take the same sequences. Take it back.
            do {
                try configuration.fileSystem.remove(failed.path)
                try configuration.fileSystem.syncDirectory(directory.tenantDirectory(capture.tenantID))
            } catch {
                throw RestoreOutcomeUncertain(path: failed.path, underlying: "\(failed); then \(error)")
            }
            throw failed
        } catch {
            configuration.observer.snapshotFailed(tenantID: capture.tenantID)
            throw error
        }
        configuration.observer.snapshotWritten(tenantID: capture.tenantID, bytes: written.bytes, duration: ContinuousClock.now - start)
        recordKept(SnapshotHeader(
            tenantID: capture.tenantID, sequence: capture.sequence, lsn: lsn, createdAt: now,
            records: UInt64(capture.liveRecords + capture.deletedRecords), outcomeRecords: UInt64(capture.outcomes.recordCount),
            idempotencyKeys: UInt64(capture.idempotency.count)))
        return written
    }
}

extension PersistenceController {
    /// A tenant whose newest write failed after its bytes reached the WAL gets no snapshot until the
    /// log has wiped those bytes (once the storage works again). The snapshot would cover the failed
    /// write's LSN, so a restart from it skips the write; but if the snapshot were later lost (damage
    /// found at a start, which falls back to an older snapshot), the write would be replayed from the
    /// log, long after a start had decided it was gone. Without the snapshot, a crash before the wipe
    /// lets recovery decide once, from the log alone, and what it replays it makes durable.
    public struct FailedWriteNotYetWiped: Error, Sendable, CustomStringConvertible {
        public var tenantID: String
        public var lsn: UInt64
        public var description: String {
            "tenant \(tenantID): its write at LSN \(lsn) failed and the WAL has not yet wiped it (the storage is failing); retry once the storage works again"
        }
    }

    /// An online restore's snapshot reached its final name, but neither its directory sync nor its
    /// removal could be made durable: a restart may or may not find the tenant restored. The tenant
    /// must take no write until the server restarts (its writes would reuse the restore's sequences).
    public struct RestoreOutcomeUncertain: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var underlying: String
        public var description: String { "\(path) could not be made durable nor removed: \(underlying)" }
    }

    /// A configured interval as a Duration. The value comes from a flag or a config file: NaN, an
    /// infinity or an absurd number of seconds is read as "at most every 31,700 years" and a negative
    /// one as zero, so the conversion to whole milliseconds cannot trap.
    static func interval(seconds: Double) -> Duration {
        let bounded = seconds.isNaN ? 1e12 : min(max(seconds, 0), 1e12)
        return .milliseconds(Int64(bounded * 1000))
    }
}
