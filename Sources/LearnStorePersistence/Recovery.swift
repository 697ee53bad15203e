import Foundation
import Dispatch
import LearnStoreEngine
import LearnStoreModel
import Logging
import Synchronization

/// Rebuilds every tenant from the newest valid snapshot plus the WAL after it.
///
/// Per tenant: the newest snapshot whose checksums verify (falling back to older ones), then every
/// WAL record of that tenant with a higher sequence number. A torn tail (the last write interrupted)
/// is truncated and logged. Damage followed by completed writes stops recovery with the segment,
/// offset and reason, unless `forceRecovery` is set, which skips the damaged region and logs it.
public struct Recovery: Sendable {
    public struct Options: Sendable {
        public var directory: DataDirectory
        public var forceRecovery = false
        public var fileSystem: any FileSystem = PosixFileSystem()
        public var limits = EngineLimits()
        /// Stop replaying at this tenant sequence or time (point-in-time restore); nil = everything.
        public var stopAtSequence: [String: UInt64] = [:]
        public var stopAtTime: Timestamp?
        /// Only these tenants (nil = all).
        public var tenants: Set<String>?
        /// Load this snapshot sequence for a tenant instead of the newest.
        public var snapshotChoice: [String: UInt64] = [:]
        /// Change nothing on disk: a torn tail is reported and replay stops there, but it is not
        /// truncated (operator tools, and restores that read a live server's WAL while it appends).
        public var readOnly = false
        /// Told how many tenants and WAL segments are done, as recovery goes.
        public var observer: any PersistenceObserver = UnobservedPersistence()
        /// Load tenants' snapshots on all cores. A simulation turns it off: its disk draws faults from
        /// one seeded stream, so the order of the tenants' directory syncs must not depend on threads.
        public var loadsTenantsInParallel = true

        public init(directory: DataDirectory) { self.directory = directory }
    }

    /// Recovery cannot proceed without losing data; the operator must decide.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public struct Report: Sendable {
        public var tenants: [String: TenantReport] = [:]
        public var walSegments = 0
        public var walRecords = 0
        public var walRecordsApplied = 0
        public var tornTail: String?
        public var skippedCorruption: [String] = []
        public var snapshotSeconds = 0.0
        public var walSeconds = 0.0
        public var lastLSN: UInt64 = 0
    }

    public struct TenantReport: Sendable {
        public var snapshotSequence: UInt64?
        public var snapshotLSN: UInt64 = 0
        public var rejectedSnapshots: [String] = []
        /// The sequence of the newest snapshot rejected as damaged: its writes were durable once.
        public var damagedSnapshotSequence: UInt64?
        public var sequence: UInt64 = 0
        public var records = 0
        public var walRecordsApplied = 0
    }

    public struct Outcome: Sendable {
        public var states: [String: TenantState]
        /// Per tenant, the LSN of its last write (snapshot or WAL): what the WAL must keep.
        public var lastLSN: [String: UInt64]
        public var report: Report
        public var resume: WALResumePoint?
        /// The WAL's segments with each tenant's newest LSN in them (what retention must know).
        public var segments: [DurabilityLedger.Segment]
        /// The newest LSN of any snapshot loaded: the WAL must go on above it, even if its own end is
        /// lower (a WAL cut back, or lost with its tail), so no LSN is given twice.
        public var newestSnapshotLSN: UInt64

        /// The first LSN the log may give: above both its own end and every loaded snapshot.
        public var firstFreeLSN: UInt64 { max(report.lastLSN, newestSnapshotLSN) + 1 }
    }

    let options: Options
    let logger: Logger
    let progress: @Sendable (String) -> Void

    public init(options: Options, logger: Logger = Logger(label: "learnstore.recovery"), progress: @escaping @Sendable (String) -> Void = { _ in }) {
        self.options = options
        self.logger = logger
        self.progress = progress
    }

    public func run() throws -> Outcome {
        let fs = options.fileSystem
        let directory = options.directory
        var report = Report()
        let start = ContinuousClock.now

        // 1. Snapshots, in parallel across tenants.
        var tenantIDs = try directory.tenants(fs)
        if let only = options.tenants { tenantIDs = tenantIDs.filter(only.contains) }
        progress("loading snapshots of \(tenantIDs.count) tenants")
        let progressReport = RecoveryProgressReport(observer: options.observer)
        let tenantCount = tenantIDs.count
        progressReport.advance { $0.tenants = tenantCount }
        let loaded = Mutex<[String: (TenantState, TenantReport)]>([:])
        let errors = Mutex<[String]>([])
        let diskErrors = Mutex<[StorageError]>([])
        let tenantList = tenantIDs
        let recoverTenant: @Sendable (Int) -> Void = { index in
            let tenant = tenantList[index]
            if !options.readOnly {
                // A snapshot's name may not be durable yet (its writer's directory sync failed after
                // the rename). The WAL records it lets recovery skip would be lost with it at a
                // machine crash, so its directory is synced before it is used.
                do throws(StorageError) { try fs.syncDirectory(directory.tenantDirectory(tenant)) } catch {
                    diskErrors.withLock { $0.append(error) }
                    return
                }
            }
            do {
                let result = try loadTenant(tenant)
                loaded.withLock { $0[tenant] = result }
            } catch {
                errors.withLock { $0.append("\(tenant): \(error)") }
            }
            progressReport.advance { $0.tenantsLoaded += 1 }
        }
        if options.loadsTenantsInParallel {
            DispatchQueue.concurrentPerform(iterations: tenantList.count, execute: recoverTenant)
        } else {
            for index in tenantList.indices { recoverTenant(index) }
        }
        if let disk = diskErrors.withLock({ $0.first }) { throw disk }
        if let first = errors.withLock({ $0.first }) { throw Failure(description: first) }
        // A tenant that never wrote a snapshot has no directory, so the loop above never saw it.
        for (tenant, chosen) in options.snapshotChoice.sorted(by: { $0.key < $1.key }) where loaded.withLock({ $0[tenant] == nil }) {
            throw Failure(description: "tenant \(tenant) has no snapshot with sequence \(chosen)")
        }
        var states: [String: TenantState] = [:]
        var lastLSN: [String: UInt64] = [:]
        for (tenant, (state, tenantReport)) in loaded.withLock({ $0 }) {
            states[tenant] = state
            report.tenants[tenant] = tenantReport
            lastLSN[tenant] = tenantReport.snapshotLSN
        }
        report.snapshotSeconds = Self.seconds(ContinuousClock.now - start)

        // 2. The WAL.
        let walStart = ContinuousClock.now
        let segments = try directory.segments(fs)
        report.walSegments = segments.count
        let segmentCount = segments.count
        progressReport.advance { $0.walSegments = segmentCount }
        // Records retention removed must be in the tenants' snapshots. The removed-segments file says
        // what each tenant had in removed segments; without one (a directory of an older version, or
        // segments deleted by hand) a snapshot below the oldest segment may have lost records.
        let removed: [String: UInt64]
        do { removed = try RemovedSegmentsFile.read(walDirectory: directory.walDirectory, fs) } catch {
            throw Failure(description: "\(directory.walDirectory)/\(RemovedSegmentsFile.name) cannot be read: \(error)")
        }
        let hasRemovedFile = fs.exists(directory.walDirectory + "/" + RemovedSegmentsFile.name)
        if let firstSegment = segments.first {
            var tenantsToCheck = Set(report.tenants.keys)
            if let only = options.tenants { tenantsToCheck.formUnion(removed.keys.filter(only.contains)) } else { tenantsToCheck.formUnion(removed.keys) }
            for tenant in tenantsToCheck.sorted() {
                let tenantReport = report.tenants[tenant] ?? TenantReport()
                // A restore to exactly a snapshot's sequence needs no WAL record of the tenant.
                if let stop = options.stopAtSequence[tenant], stop == tenantReport.snapshotSequence { continue }
                let missing: String?
                if let newestRemoved = removed[tenant] {
                    missing = tenantReport.snapshotLSN < newestRemoved
                        ? "tenant \(tenant): removed WAL segments held its records up to LSN \(newestRemoved) but its snapshot covers only LSN \(tenantReport.snapshotLSN); records in between are missing"
                        : nil
                } else if !hasRemovedFile && tenantReport.snapshotLSN + 1 < firstSegment {
                    missing = "tenant \(tenant): its snapshot covers LSN \(tenantReport.snapshotLSN) but the WAL starts at LSN \(firstSegment) and no \(RemovedSegmentsFile.name) file says what the missing segments held; records in between may be missing"
                } else {
                    missing = nil
                }
                guard var message = missing else { continue }
                // A newer snapshot rejected as damaged is the likely cause: name it.
                if !tenantReport.rejectedSnapshots.isEmpty { message += "; snapshots rejected as damaged: " + tenantReport.rejectedSnapshots.joined(separator: "; ") }
                guard options.forceRecovery else { throw Failure(description: message + " (use --force-recovery to start anyway)") }
                report.skippedCorruption.append(message)
                logger.error("\(message); continuing because of --force-recovery")
            }
        }
        var previousLSN: UInt64 = 0
        var resume: WALResumePoint?
        var ledgerSegments: [DurabilityLedger.Segment] = []
        for (index, first) in segments.enumerated() {
            let path = directory.segmentPath(first)
            progress("replaying WAL segment \(index + 1) of \(segments.count)")
            let bytes = try fs.readWholeFile(path)
            // The file may hold bytes the previous process wrote but never synced (it was killed, or
            // its sync failed): they are about to become tenant state that readers see and later
            // writes build on, so they are made durable first, as PostgreSQL syncs its data directory
            // after a crash. A segment that is already durable costs one cheap fdatasync.
            if !options.readOnly {
                let file = try fs.openForWriting(path, create: false)
                defer { file.close() }
                try file.sync(dataOnly: true)
            }
            let isLast = index == segments.count - 1
            let covered = states.mapValues(\.sequence)
            // A snapshot covers every record of its tenant up to its LSN, by LSN as well as by
            // sequence: a write that failed and was rolled back may still be in the file (its wipe
            // not yet durable) with a sequence the snapshot does not reach, and must not be replayed
            // over it (an online restore's snapshot is taken at the LSN of such a write).
            let coveredLSN = report.tenants.mapValues(\.snapshotLSN)
            let only = options.tenants
            // Verify the segment and route each wanted record to its tenant, then decode and apply each
            // tenant's records in order, tenants in parallel.
            var queues: [String: [(lsn: UInt64, body: Range<Int>)]] = [:]
            var recordsInSegment: [(tenant: String, lsn: UInt64, sequence: UInt64)] = []
            var newestInSegment: [String: UInt64] = [:]
            var sequencesInSegment: [String: ClosedRange<UInt64>] = [:]
            let scan = try bytes.withUnsafeBytes { raw in
                let scan: WALSegmentScanner.Result
                do {
                    scan = try WALSegmentScanner.scan(
                    raw, previousLSN: previousLSN, skipCorruption: options.forceRecovery,
                    wants: { tenant, sequence, lsn in
                        recordsInSegment.append((tenant, lsn, sequence))
                        return (only?.contains(tenant) ?? true) && sequence > (covered[tenant] ?? 0) && lsn > (coveredLSN[tenant] ?? 0)
                    },
                    collect: { tenant, _, lsn, body in queues[tenant, default: []].append((lsn, body)) }
                    ) { _, _ in }
                } catch let error as DecodeError {
                    // A damaged segment header: the operator must be told which file.
                    throw Failure(description: "WAL segment \(path) cannot be read: \(error)")
                }
                report.walRecords += scan.records
                // Records after the last commit marker are not replayed (see WALSegmentScanner.scan).
                let replayedThrough = scan.lastLSN ?? previousLSN
                queues = queues.mapValues { $0.filter { $0.lsn <= replayedThrough } }.filter { !$0.value.isEmpty }
                for (tenant, lsn, sequence) in recordsInSegment where lsn <= replayedThrough {
                    newestInSegment[tenant] = lsn
                    let known = sequencesInSegment[tenant]
                    sequencesInSegment[tenant] = min(known?.lowerBound ?? sequence, sequence)...max(known?.upperBound ?? sequence, sequence)
                }
                let tenantsInSegment = Array(queues.keys)
                for tenant in tenantsInSegment where states[tenant] == nil {
                    var fresh = TenantState(tenantID: tenant, limits: options.limits)
                    fresh.beginBulkLoad()
                    states[tenant] = fresh
                }
                let shared = LockedStates(states)
                let outcomes = Mutex<[String: (applied: Int, lastLSN: UInt64?, error: String?)]>([:])
                let work = queues
                let segmentBytes = SegmentBytes(raw: raw)
                DispatchQueue.concurrentPerform(iterations: tenantsInSegment.count) { index in
                    let tenant = tenantsInSegment[index]
                    var applied = 0
                    var last: UInt64?
                    var failure: String?
                    shared.update(tenant) { state in
                        for (lsn, body) in work[tenant] ?? [] {
                            do {
                                let record = try WALRecord.decodeBody(UnsafeRawBufferPointer(rebasing: segmentBytes.raw[body]))
                                if try replay(record, into: &state) {
                                    applied += 1
                                    last = lsn
                                }
                            } catch let error as Failure {
                                failure = error.description
                                return
                            } catch {
                                failure = "WAL record LSN \(lsn): \(error)"
                                return
                            }
                        }
                    }
                    outcomes.withLock { $0[tenant] = (applied, last, failure) }
                }
                states = shared.all
                for (tenant, outcome) in outcomes.withLock({ $0 }) {
                    if let failure = outcome.error {
                        // A gap in the tenant's sequences usually means a newer snapshot (one an online
                        // restore wrote, with no WAL record behind it) was rejected: name it.
                        let rejected = report.tenants[tenant]?.rejectedSnapshots ?? []
                        throw Failure(description: failure + (rejected.isEmpty ? "" : "; snapshots rejected as damaged: " + rejected.joined(separator: "; ")))
                    }
                    report.walRecordsApplied += outcome.applied
                    report.tenants[tenant, default: TenantReport()].walRecordsApplied += outcome.applied
                    if let last = outcome.lastLSN { lastLSN[tenant] = last }
                }
                return scan
            }
            if let last = scan.lastLSN { previousLSN = last }
            let openedAt = (try? bytes.withUnsafeBytes { raw throws(DecodeError) in try WALSegmentHeader.decode(raw) })?.createdAt.milliseconds ?? 0
            ledgerSegments.append(DurabilityLedger.Segment(
                firstLSN: first, newestLSNByTenant: newestInSegment, sequencesByTenant: sequencesInSegment, lastLSN: scan.lastLSN ?? 0,
                writtenBytes: scan.validEnd, bytes: bytes.count, openedAtMilliseconds: openedAt))
            switch scan.stop {
            case .end:
                break
            case .tornTail(let offset, let reason):
                let laterHaveData = try segments[(index + 1)...].contains { try segmentHasRecords(directory.segmentPath($0)) }
                if laterHaveData {
                    let message = "WAL segment \(path) is damaged at byte \(offset) (\(reason)) and later segments hold records"
                    guard options.forceRecovery else { throw Failure(description: message + "; use --force-recovery to skip the damage") }
                    report.skippedCorruption.append(message)
                } else if options.readOnly {
                    report.tornTail = "\(path) at byte \(offset): \(reason)"
                } else {
                    report.tornTail = "\(path) at byte \(offset): \(reason)"
                    logger.warning("truncating a torn WAL tail", metadata: ["segment": "\(path)", "offset": "\(offset)", "reason": "\(reason)"])
                    let file = try fs.openForWriting(path, create: false)
                    let end = max(scan.dataEnd, offset)
                    if end > offset { try file.write([UInt8](repeating: 0, count: end - offset), at: offset) }
                    try file.sync(dataOnly: true)
                    file.close()
                }
            case .corruption(let offset, let reason, let resumeAt):
                let message = "WAL segment \(path) is corrupt at byte \(offset): \(reason); completed writes follow at byte \(resumeAt)"
                guard options.forceRecovery else { throw Failure(description: message + " (use --force-recovery to skip it)") }
                report.skippedCorruption.append(message)
                logger.error("\(message); skipped because of --force-recovery")
            }
            if isLast || scan.lastLSN != nil {
                // A last segment left without a record (its only write failed, or was torn and zeroed)
                // is named above the previous segment's end: its records must still start at its name.
                resume = WALResumePoint(segmentPath: path, segmentFirstLSN: first, offset: scan.validEnd, nextLSN: max(previousLSN + 1, first))
            }
            progressReport.advance { $0.walSegmentsReplayed += 1 }
            if case .tornTail = scan.stop { break }
        }
        if let last = segments.last, resume?.segmentFirstLSN != last {
            // Newer segments exist but hold nothing: append into the newest one from its start.
            resume = WALResumePoint(segmentPath: directory.segmentPath(last), segmentFirstLSN: last,
                                    offset: WALSegmentHeader.size, nextLSN: max(previousLSN + 1, last))
        }
        report.lastLSN = previousLSN
        // Tenants rebuilt from the WAL alone get their secondary indexes now, in bulk and in parallel.
        let names = Array(states.keys)
        let finished = LockedStates(states)
        DispatchQueue.concurrentPerform(iterations: names.count) { index in
            finished.update(names[index]) { $0.endBulkLoad() }
        }
        states = finished.all
        report.walSeconds = Self.seconds(ContinuousClock.now - walStart)
        for (tenant, state) in states {
            report.tenants[tenant, default: TenantReport()].sequence = state.sequence
            report.tenants[tenant, default: TenantReport()].records = state.store.liveCount + state.store.deletedCount
        }
        try checkNothingBelowDamagedSnapshots(states, &report)
        let newestSnapshotLSN = report.tenants.values.map(\.snapshotLSN).max() ?? 0
        // Segments after a torn tail were not scanned; they hold nothing (checked above).
        for first in segments where !ledgerSegments.contains(where: { $0.firstLSN == first }) {
            ledgerSegments.append(DurabilityLedger.Segment(firstLSN: first))
        }
        return Outcome(states: states, lastLSN: lastLSN, report: report, resume: resume, segments: ledgerSegments,
                       newestSnapshotLSN: newestSnapshotLSN)
    }

    /// A snapshot is written only of durable writes, so a tenant that recovers to a sequence below a
    /// snapshot rejected as damaged has lost acknowledged writes (the WAL no longer holds them: a
    /// machine crash under a relaxed policy took records the snapshot had covered). Recovery refuses to
    /// start rather than serve the older state, unless forced; a point-in-time restore is exempt.
    func checkNothingBelowDamagedSnapshots(_ states: [String: TenantState], _ report: inout Report) throws {
        guard options.stopAtTime == nil else { return }
        for (tenant, tenantReport) in report.tenants.sorted(by: { $0.key < $1.key }) where options.stopAtSequence[tenant] == nil {
            guard let damaged = tenantReport.damagedSnapshotSequence else { continue }
            let recovered = states[tenant]?.sequence ?? 0
            guard recovered < damaged else { continue }
            let message = "tenant \(tenant): its snapshot at sequence \(damaged) is damaged and the WAL holds its writes only up to sequence \(recovered); "
                + "writes \(recovered + 1)…\(damaged) would be lost; snapshots rejected as damaged: " + tenantReport.rejectedSnapshots.joined(separator: "; ")
            guard options.forceRecovery else { throw Failure(description: message + " (restore the snapshot from a backup, or use --force-recovery to start without those writes)") }
            report.skippedCorruption.append(message)
            logger.error("\(message); continuing because of --force-recovery")
        }
    }

    /// Applies one WAL record to its tenant's state if it is newer. Returns whether it was applied.
    func replay(_ record: WALRecord, into state: inout TenantState) throws -> Bool {
        let tenant = record.entry.tenantID
        if let only = options.tenants, !only.contains(tenant) { return false }
        if let stop = options.stopAtSequence[tenant], record.entry.sequence > stop { return false }
        if let time = options.stopAtTime, record.entry.timestamp > time { return false }
        guard record.entry.sequence > state.sequence else { return false }
        if record.entry.sequence != state.sequence + 1 && !record.entry.mutations.continuesAnotherGroupsSequence {
            let message = "tenant \(tenant): WAL record LSN \(record.lsn) has sequence \(record.entry.sequence), expected \(state.sequence + 1)"
            guard options.forceRecovery else { throw Failure(description: message + " (use --force-recovery to continue)") }
            logger.error("\(message); continuing because of --force-recovery")
        }
        state.apply(record.entry.mutations, sequence: record.entry.sequence)
        return true
    }

    func segmentHasRecords(_ path: String) throws -> Bool {
        let bytes = try options.fileSystem.readWholeFile(path)
        return bytes.withUnsafeBytes { raw in
            WALSegmentScanner.lastNonZero(raw, from: WALSegmentHeader.size) > WALSegmentHeader.size
        }
    }

    /// The newest verifiable snapshot of a tenant (or the chosen one), as a state with indexes built.
    func loadTenant(_ tenant: String) throws -> (TenantState, TenantReport) {
        var report = TenantReport()
        var candidates = try options.directory.snapshots(of: tenant, options.fileSystem).reversed().map { $0 }
        if let chosen = options.snapshotChoice[tenant] {
            guard candidates.contains(chosen) else { throw Failure(description: "tenant \(tenant) has no snapshot with sequence \(chosen)") }
            candidates = [chosen]
        }
        if let stop = options.stopAtSequence[tenant] { candidates = candidates.filter { $0 <= stop } }
        for sequence in candidates {
            let path = options.directory.snapshotPath(tenant, sequence: sequence)
            do {
                let loaded = try SnapshotFile.read(path, fileSystem: options.fileSystem)
                if let time = options.stopAtTime, loaded.header.createdAt > time {
                    report.rejectedSnapshots.append("\(path): newer than the requested time")
                    continue
                }
                var state = TenantState(tenantID: tenant, limits: options.limits)
                state.load(store: loaded.contents.store, idempotency: loaded.contents.idempotency, outcomes: loaded.contents.outcomes,
                           sequence: loaded.header.sequence)
                report.snapshotSequence = sequence
                report.snapshotLSN = loaded.header.lsn
                return (state, report)
            } catch {
                // The chosen snapshot (a restore's source) has no fallback: rebuilding from an older
                // one, or from nothing, would give another state than the one asked for.
                if options.snapshotChoice[tenant] != nil { throw Failure(description: "tenant \(tenant): snapshot \(error)") }
                report.rejectedSnapshots.append("\(error)")
                report.damagedSnapshotSequence = max(report.damagedSnapshotSequence ?? 0, sequence)
                logger.error("snapshot rejected; trying an older one", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
        return (TenantState(tenantID: tenant, limits: options.limits), report)
    }

    /// Tenant states updated from several threads, each tenant by one thread.
    final class LockedStates: @unchecked Sendable {
        private var states: [String: TenantState]
        private let lock = NSLock()
        init(_ states: [String: TenantState]) { self.states = states }
        func update(_ tenant: String, _ body: (inout TenantState) -> Void) {
            lock.lock()
            guard var state = states.removeValue(forKey: tenant) else { lock.unlock(); return }
            lock.unlock()
            body(&state)
            lock.lock()
            states[tenant] = state
            lock.unlock()
        }
        var all: [String: TenantState] { lock.lock(); defer { lock.unlock() }; return states }
    }

    public static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// Recovery's progress, advanced by concurrent workers and reported under the lock, so an older
/// count is never reported after a newer one.
private final class RecoveryProgressReport: Sendable {
    private let progress = Mutex(RecoveryProgress())
    private let observer: any PersistenceObserver

    init(observer: any PersistenceObserver) { self.observer = observer }

    func advance(_ change: (inout RecoveryProgress) -> Void) {
        progress.withLock { progress in
            change(&progress)
            observer.recoveryProgressed(progress)
        }
    }
}

/// The segment's bytes, read-only and alive for the whole parallel replay, shared by the workers.
private struct SegmentBytes: @unchecked Sendable {
    let raw: UnsafeRawBufferPointer
}
