import Foundation
import LearnStoreEngine
import LearnStoreModel
import Logging
import Synchronization

/// Where and how the WAL is written.
public struct WALConfiguration: Sendable {
    public var directory: String
    public var policy: FsyncPolicy
    /// Segment size; segments are preallocated with zeros (in place `pwrite` + `fdatasync` measured
    /// about twice as fast here as appending) and rotated when full.
    public var segmentBytes: Int
    public var fileSystem: any FileSystem
    /// Set when every append is followed by a `writeNow()` from the appending thread (the server's
    /// connections call it after each request batch). Under `everysec` and `off` an append then
    /// leaves the writer thread asleep: woken per batch, it raced the event loop for the same bytes
    /// (measured under create load: three `pwrite`s and about eight futex calls per request batch).
    /// Under `always` the writer thread is woken at once, as it must sync.
    public var appendersWriteNow: Bool
    /// Whether the next segment is zero-filled in advance on a background thread (off in the
    /// deterministic simulation, which runs every step on one thread).
    public var prepareSegmentsInBackground: Bool
    /// Told the duration and size of every write and sync (the server's metrics).
    public var observer: any PersistenceObserver
    /// Segments kept for the change feed beyond what snapshots need.
    public var feedRetention: FeedRetention
    /// The largest record body an append takes: what recovery, the change feed's reader and a
    /// replica accept (``WALRecord/maximumBodyBytes``). A write above it is refused, not logged.
    public var maximumRecordBodyBytes = WALRecord.maximumBodyBytes

    public init(directory: String, policy: FsyncPolicy = .always, segmentBytes: Int = 64 << 20,
                fileSystem: any FileSystem = PosixFileSystem(), appendersWriteNow: Bool = false,
                prepareSegmentsInBackground: Bool = true, observer: any PersistenceObserver = UnobservedPersistence(),
                feedRetention: FeedRetention = .none) {
        self.directory = directory
        self.policy = policy
        // A floor only against absurd values: the server's flag requires 1 MiB; the deterministic
        // simulation uses 8 KiB so that a short run rotates segments and retention removes them.
        self.segmentBytes = max(segmentBytes, 4 << 10)
        self.fileSystem = fileSystem
        self.appendersWriteNow = appendersWriteNow
        self.prepareSegmentsInBackground = prepareSegmentsInBackground
        self.observer = observer
        self.feedRetention = feedRetention
    }
}

/// Where appending resumes after recovery.
public struct WALResumePoint: Sendable {
    public var segmentPath: String
    public var segmentFirstLSN: UInt64
    public var offset: Int
    public var nextLSN: UInt64

    public init(segmentPath: String, segmentFirstLSN: UInt64, offset: Int, nextLSN: UInt64) {
        self.segmentPath = segmentPath
        self.segmentFirstLSN = segmentFirstLSN
        self.offset = offset
        self.nextLSN = nextLSN
    }
}

/// The write-ahead log: every tenant's writes, in one sequence, with group commit.
///
/// Tenant actors call `append` (it encodes and queues, never blocks on I/O); one writer thread
/// writes everything queued with one `pwrite` and one `fdatasync` (policy `always`), then publishes
/// the committed LSN. A failed write or sync fails everything not yet committed: those writes are
/// undone by their tenants, answered with STORAGE_UNAVAILABLE, their bytes are wiped from the
/// segment, and writing resumes once the disk accepts a write and a sync again.
public final class WriteAheadLog: MutationLog, @unchecked Sendable {
    public let configuration: WALConfiguration
    let logger: Logger
    let clock: any EngineClock

    // Guarded by `condition`.
    private let condition = NSCondition()
    /// Held while writing to, syncing or wiping the segment file (writer thread or `writeNow`).
    private let ioLock = NSLock()
    private var pending: [UInt8] = []
    private var pendingFirstLSN: UInt64 = 0
    private var pendingLastLSN: UInt64 = 0
    /// LSNs, commit and failure, rollback barriers, segment contents and retention.
    private var ledger: DurabilityLedger
    private var stopping = false
    private var flushRequested = false
    /// Guarded by `condition`: see ``haltsOnFailure``.
    private var failuresAreFinal = false

    /// Mirrors of the ledger for readers on every request, without the lock. `committed` is what
    /// may be acknowledged (held at the replication gate), `locallyDurable` what this node's own log
    /// has made durable (what a primary ships to its replicas).
    private let committed = Atomic<UInt64>(0)
    private let locallyDurable = Atomic<UInt64>(0)
    /// Guarded by `condition`: the newest LSN replication lets this log acknowledge (`.max`: no gate).
    private var commitGate: UInt64 = .max
    /// Guarded by `condition`: records queued in `pending`.
    private var pendingRecords = 0
    private let anyFailure = Atomic<Bool>(false)
    private let failedRanges = Mutex<[ClosedRange<UInt64>]>([])
    private var thread: Thread?
    private let stopped = NSCondition()
    private var isStopped = false

    // Guarded by `ioLock`.
    private var file: (any StorageFile)?
    private var segmentFirstLSN: UInt64 = 0
    private var offset = 0
    /// When the last sync ended, by the injected clock (the `everysec` timer).
    private var lastSyncMilliseconds: Int64 = 0
    private var unsyncedBytes = 0

    /// Called on the writer thread after each commit with the new committed LSN.
    public var onCommit: (@Sendable (UInt64) -> Void)?
    /// Called after each local commit with the new locally durable LSN, gate or not (replication
    /// ships from it).
    public var onLocalCommit: (@Sendable (UInt64) -> Void)?
    /// Called when writes fail, with each affected tenant's failed LSNs: the tenant must undo them and
    /// then call `rollbackDone`; until then its appends are refused.
    public var onFailure: (@Sendable ([DurabilityLedger.Rollback]) -> Void)?

    public struct Statistics: Sendable {
        public var bytesWritten: UInt64 = 0
        public var writes: UInt64 = 0
        public var syncs: UInt64 = 0
        public var failures: UInt64 = 0
        public var segmentsCreated: UInt64 = 0
        /// Segments that rotation found zero-filled in advance (the rest were reserved on the spot).
        public var segmentsPrepared: UInt64 = 0
        public var lastSyncNanoseconds: UInt64 = 0
    }
    private let statistics = Mutex(Statistics())
    public var stats: Statistics { statistics.withLock { $0 } }

    /// Opens the log for appending at `resume` (from recovery), or creates a first segment starting at
    /// `startLSN`.
    /// `segments` are the existing segments with the tenants recovery found in each, `snapshotCoverage`
    /// each tenant's oldest kept snapshot LSN (for retention).
    public init(configuration: WALConfiguration, resume: WALResumePoint?, startLSN: UInt64 = 1,
                segments: [DurabilityLedger.Segment] = [], snapshotCoverage: [String: UInt64] = [:],
                clock: any EngineClock = SystemClock(), logger: Logger = Logger(label: "learnstore.wal")) throws(StorageError) {
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        let fs = configuration.fileSystem
        try fs.createDurableDirectory(configuration.directory)
        try? fs.remove(Self.preparedPath(configuration.directory))
        try? fs.remove(Self.newSegmentPath(configuration.directory))
        preparer = WALSegmentPreparer(fileSystem: fs, path: Self.preparedPath(configuration.directory), logger: logger)
        let next = max(resume?.nextLSN ?? startLSN, startLSN)
        ledger = DurabilityLedger(nextLSN: next, segments: segments, snapshotCoverage: snapshotCoverage, feedRetention: configuration.feedRetention)
        committed.store(next - 1, ordering: .releasing)
        locallyDurable.store(next - 1, ordering: .releasing)
        if let resume {
            // The segment may have been renamed into place by a run whose directory sync then failed:
            // its name is made durable before a write to it is acknowledged.
            try fs.syncDirectory(configuration.directory)
            let opened = try fs.openForWriting(resume.segmentPath, create: false)
            file = opened
            segmentFirstLSN = resume.segmentFirstLSN
            offset = resume.offset
            capacity = try opened.size()
            if ledger.segments.last?.firstLSN != resume.segmentFirstLSN {
                ledger.segmentOpened(firstLSN: resume.segmentFirstLSN, bytes: capacity, openedAtMilliseconds: clock.now().milliseconds)
            }
        } else {
            try openNewSegment(firstLSN: next)
        }
    }

    public func start() {
        let thread = Thread { [self] in self.writerLoop() }
        thread.name = "learnstore-wal"
        self.thread = thread
        thread.start()
    }

    /// Every LSN up to this is resolved: durable, unless `hasFailed` says it failed.
    public var committedLSN: UInt64 { committed.load(ordering: .acquiring) }

    /// Whether any write ever failed (until then `hasFailed` is false for every LSN).
    public var hasFailures: Bool { anyFailure.load(ordering: .acquiring) }

    public func hasFailed(_ lsn: UInt64) -> Bool {
        guard hasFailures else { return false }
        return failedRanges.withLock { ranges in ranges.contains { $0.contains(lsn) } }
    }

    /// Whether `lsn` failed after its bytes reached the file and they are not yet wiped away: a crash
    /// now may bring the write back (see ``DurabilityLedger/uncertainFailures``).
    public func failedWriteMayReturn(_ lsn: UInt64) -> Bool {
        guard hasFailures else { return false }
        condition.lock()
        defer { condition.unlock() }
        return ledger.uncertainFailures.contains { $0.contains(lsn) }
    }

    public var segmentFirstLSNs: [UInt64] {
        condition.lock()
        defer { condition.unlock() }
        return ledger.segments.map(\.firstLSN)
    }

    /// What a reader of the log's files may read now (the change feed).
    public var tail: WALTail {
        condition.lock()
        defer { condition.unlock() }
        return WALTail(ledger: ledger, committedLSN: committed.load(ordering: .acquiring))
    }

    /// What a replica of this log may be sent now: the same view, up to what is locally durable.
    public var shippingTail: WALTail {
        condition.lock()
        defer { condition.unlock() }
        return WALTail(ledger: ledger, committedLSN: locallyDurable.load(ordering: .acquiring))
    }

    /// A copy of the bookkeeping (tests, the simulator, INFO).
    public var ledgerSnapshot: DurabilityLedger {
        condition.lock()
        defer { condition.unlock() }
        return ledger
    }

    // MARK: appending (any thread)

    public func append(_ entry: LogEntry) throws(LearnStoreError) -> UInt64 {
        if refusing.load(ordering: .acquiring), let refused = clientWriteRefusal { throw refused }
        var record = WALRecord.encodeUnsequenced(entry)
        // Logged and acknowledged, a larger record would be taken for damage by the next start.
        let body = record.count - WALRecord.headerSize
        guard body <= configuration.maximumRecordBodyBytes else {
            throw LearnStoreError(.validation, "the write takes \(body) bytes in the log, above the \(configuration.maximumRecordBodyBytes) one log record may hold; "
                + "send fewer or smaller records per request")
        }
        condition.lock()
        defer { condition.unlock() }
        if stopping { throw LearnStoreError(.shuttingDown, "the WAL is closing") }
        let lsn: UInt64
        switch ledger.append(tenant: entry.tenantID, sequence: entry.sequence) {
        case .success(let assigned): lsn = assigned
        case .failure(let refusal): throw refusal.error
        }
        WALRecord.seal(&record, lsn: lsn)
        queueLocked(record, lsn: lsn)
        return lsn
    }

    /// Adds a sealed record to the next write. Called with `condition` held.
    private func queueLocked(_ record: [UInt8], lsn: UInt64) {
        let wasEmpty = pending.isEmpty
        if wasEmpty { pendingFirstLSN = lsn }
        pending.append(contentsOf: record)
        pendingLastLSN = lsn
        pendingRecords += 1
        // Only the first append of a batch wakes the writer; it takes everything queued meanwhile.
        if wasEmpty && (configuration.policy == .always || !configuration.appendersWriteNow) { condition.signal() }
    }

    /// Queues a record a primary sealed, at its LSN (a replica's log keeps its primary's numbering).
    /// `sealed` is the whole record as the primary's log holds it; its checksum was verified.
    public func appendReplicated(_ sealed: [UInt8], lsn: UInt64, tenant: String, sequence: UInt64) throws(LearnStoreError) {
        condition.lock()
        defer { condition.unlock() }
        if stopping { throw LearnStoreError(.shuttingDown, "the WAL is closing") }
        if case .failure(let refusal) = ledger.append(tenant: tenant, sequence: sequence, at: lsn) { throw refusal.error }
        queueLocked(sealed, lsn: lsn)
    }

    /// Set while the node follows a primary: after a failed write the log writes nothing more (no
    /// recovery probe, every append refused) until the process stops. A replica's records keep their
    /// primary's LSNs, so a record made durable after a failed one would leave a hole that its next
    /// start could not tell from one of the primary's own gaps: it would follow on from past the hole
    /// and never hold the records that failed.
    public var haltsOnFailure: Bool {
        get {
            condition.lock()
            defer { condition.unlock() }
            return failuresAreFinal
        }
        set {
            condition.lock()
            failuresAreFinal = newValue
            condition.signal()
            condition.unlock()
        }
    }

    /// The error client writes get, when they are refused (a replica takes writes only from its
    /// primary; a fenced primary from no one). nil: accepted.
    public var clientWriteRefusal: LearnStoreError? {
        get { refusal.withLock { $0 } }
        set {
            refusal.withLock { $0 = newValue }
            refusing.store(newValue != nil, ordering: .releasing)
        }
    }
    private let refusal = Mutex<LearnStoreError?>(nil)
    private let refusing = Atomic<Bool>(false)

    /// Set while the commit gate will not move again in this role (a primary fenced by a newer
    /// epoch): nothing above the gate will be acknowledged, and the callers waiting on such writes
    /// get `error` (``onAcknowledgementsStopped`` wakes them). nil again once the node is promoted.
    public var acknowledgementsStopped: StoppedAcknowledgements? {
        condition.lock()
        defer { condition.unlock() }
        return acknowledgementRefusal.map { StoppedAcknowledgements(above: commitGate, error: $0) }
    }

    public func stopAcknowledging(_ error: LearnStoreError) {
        condition.lock()
        acknowledgementRefusal = error
        condition.unlock()
        onAcknowledgementsStopped?()
    }

    public func resumeAcknowledging() {
        condition.lock()
        acknowledgementRefusal = nil
        condition.unlock()
    }

    /// Guarded by `condition`.
    private var acknowledgementRefusal: LearnStoreError?
    /// Wakes the callers waiting on writes above the commit mark (set before the log is used).
    public var onAcknowledgementsStopped: (@Sendable () -> Void)?

    /// The LSN the next write will get (a replicated write may take a later one).
    public var nextLSN: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return ledger.nextLSN
    }

    /// The newest LSN this node's log has made durable, whatever replication has acknowledged.
    public var locallyDurableLSN: UInt64 { locallyDurable.load(ordering: .acquiring) }

    /// Sets the gate to exactly `lsn`, lower or not: a replica promoted to primary starts its own
    /// mark, whatever its old primary's mark was.
    public func resetCommitGate(_ lsn: UInt64) {
        condition.lock()
        commitGate = lsn
        let shown = publishLocked(ledger.visibleThrough)
        condition.unlock()
        if let shown { onCommit?(shown) }
    }

    /// A node becoming the primary of a new epoch: the gate goes to `lsn`, the mark it learned, and
    /// what the log shows as committed drops back to it if it was above (a replica shows what it
    /// recovered at its start, which no primary may have acknowledged). Records above count only
    /// once the new primary's replicas hold them, and reads of them wait until then.
    public func restartCommitMark(at lsn: UInt64) {
        condition.lock()
        commitGate = lsn
        if committed.load(ordering: .acquiring) > lsn { committed.store(lsn, ordering: .releasing) }
        let shown = publishLocked(ledger.visibleThrough)
        condition.unlock()
        if let shown { onCommit?(shown) }
    }

    /// Whether snapshots wait for the gate too. A primary's gate is its replicas' acknowledgements,
    /// and its snapshots wait for them; a replica's gate is its primary's commit mark, which only
    /// decides what reads and the change feed may show: its snapshots need only its own log (a
    /// replica whose primary is gone must still be able to snapshot and stop).
    public var snapshotsWaitForGate: Bool {
        get { gateHoldsSnapshots.load(ordering: .acquiring) }
        set { gateHoldsSnapshots.store(newValue, ordering: .releasing) }
    }
    private let gateHoldsSnapshots = Atomic<Bool>(true)

    /// Every LSN up to this is resolved for a snapshot: durable, unless `hasFailed` says it failed.
    public var snapshotResolvedLSN: UInt64 { snapshotsWaitForGate ? committedLSN : locallyDurableLSN }

    /// Waits until `lsn` is resolved for a snapshot (see `snapshotsWaitForGate`), at most `timeout`.
    public func waitUntilResolvedForSnapshot(_ lsn: UInt64, timeout: Duration = .seconds(30)) -> Bool {
        snapshotsWaitForGate ? waitUntilCommitted(lsn, timeout: timeout) : waitUntilLocallyResolved(lsn, timeout: timeout)
    }

    /// Waits until this node's own log has resolved `lsn`, whatever the gate; true if it is durable.
    public func waitUntilLocallyResolved(_ lsn: UInt64, timeout: Duration = .seconds(30)) -> Bool {
        waitForLocalLog(lsn, timeout: timeout, givingUpOnAnyFailure: false) && !hasFailed(lsn)
    }

    /// Lets the log acknowledge writes up to `lsn` (replication: every in-sync replica has them).
    /// `.max` lifts the gate. The gate only holds acknowledgements back; it never makes a write durable.
    public func setCommitGate(_ lsn: UInt64) {
        condition.lock()
        // The mark replication computes only grows; a late caller with an older mark changes nothing.
        commitGate = commitGate == .max ? lsn : max(commitGate, lsn)
        let shown = publishLocked(ledger.visibleThrough)
        condition.unlock()
        if let shown { onCommit?(shown) }
    }

    /// Stores the ledger's visible mark and the acknowledgeable one (held at the gate, except over
    /// writes that failed: nothing will replicate them, and their callers need their error). Returns
    /// the acknowledgeable mark if it advanced. Called with `condition` held.
    private func publishLocked(_ visible: UInt64) -> UInt64? {
        locallyDurable.store(visible, ordering: .releasing)
        var shown = visible
        if commitGate < visible {
            shown = commitGate
            if let failed = ledger.failedRanges.last(where: { $0.contains(commitGate + 1) }), failed.upperBound >= visible { shown = visible }
        }
        guard shown > committed.load(ordering: .acquiring) else { return nil }
        committed.store(shown, ordering: .releasing)
        return shown
    }

    /// Forces a sync of everything written (used at shutdown and before snapshots under relaxed policies).
    public func flush() {
        condition.lock()
        flushRequested = true
        condition.signal()
        condition.unlock()
    }

    /// Waits until everything appended so far is committed (or failed), at most `timeout`.
    public func waitUntilCommitted(_ lsn: UInt64, timeout: Duration = .seconds(30)) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if committedLSN >= lsn { return !hasFailed(lsn) }
            if let stopped = acknowledgementsStopped, lsn > stopped.above { return false }
            flush()
            usleepWhileWaiting()
        }
        return committedLSN >= lsn && !hasFailed(lsn)
    }

    private func usleepWhileWaiting() {
        stopped.lock()
        _ = stopped.wait(until: Date(timeIntervalSinceNow: 0.002))
        stopped.unlock()
    }

    /// Writes and syncs what is queued, stops the writer thread and closes the segment.
    public func close() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
        stopped.lock()
        while thread != nil && !isStopped { stopped.wait() }
        stopped.unlock()
        preparer.discard()
    }

    // MARK: the writer thread

    private func writerLoop() {
        while runWriterStep(wait: true) {}
        ioLock.lock()
        try? file?.sync(dataOnly: true)
        ioLock.unlock()
        stopped.lock()
        isStopped = true
        stopped.broadcast()
        stopped.unlock()
    }

    /// One round of the writer: write what is queued, sync as the policy says, publish the commit, or
    /// recover from a failure. With `wait`, sleeps first until there is work (the writer thread);
    /// without, returns at once (a caller driving the log step by step, as the simulator does).
    /// Returns false once the log is stopping and everything is written.
    @discardableResult
    public func runWriterStep(wait: Bool = false) -> Bool {
        condition.lock()
        while wait && pending.isEmpty && !stopping && !flushRequested && ledger.storageFailure == nil {
            if configuration.policy == .everysec {
                if !condition.wait(until: Date(timeIntervalSinceNow: 1)) { break }
            } else {
                condition.wait()
            }
        }
        if ledger.storageFailure != nil && !stopping && failuresAreFinal {
            // Nothing more is written: the writer sleeps until the log closes (or the node is
            // promoted, which ends the halt).
            if wait { condition.wait() }
            condition.unlock()
            return true
        }
        if ledger.storageFailure != nil && !stopping {
            condition.unlock()
            ioLock.lock()
            recoverFromFailure(wait: wait)
            ioLock.unlock()
            return true
        }
        condition.unlock()
        // File I/O happens under `ioLock`, and the batch is taken after it is held, so records
        // reach the file in LSN order even when event loops write too (`writeNow`).
        ioLock.lock()
        condition.lock()
        let batch = pending
        let first = pendingFirstLSN
        let last = pendingLastLSN
        let records = pendingRecords
        let flush = flushRequested || stopping
        let exiting = stopping
        pending.removeAll(keepingCapacity: true)
        pendingRecords = 0
        flushRequested = false
        condition.unlock()

        var holdsIOLock = true
        var batchWritten = false
        // Under the relaxed policies a write counts once its bytes are written, as on the inline
        // path: a sync failing afterwards refuses new writes but does not take this batch back
        // (its bytes stay in the file, so failing it would let a crash bring it back).
        let commitOnWrite = configuration.policy != .always
        do throws(StorageError) {
            if !batch.isEmpty {
                try write(batch, firstLSN: first, lastLSN: last, records: records)
                batchWritten = true
                if commitOnWrite { publishCommit(through: last) }
            }
            let timeToSync = configuration.policy == .everysec && clock.now().milliseconds - lastSyncMilliseconds >= 1000
            if unsyncedBytes > 0 && (configuration.policy == .always || flush || timeToSync) {
                if configuration.policy == .always {
                    try sync()
                } else {
                    holdsIOLock = false
                    try syncReleasingIOLock()
                }
            }
            if holdsIOLock { ioLock.unlock() }
            if !batch.isEmpty && !commitOnWrite { publishCommit(through: last) }
        } catch {
            // A failed pwrite may have put part (or, with matching bytes already there, all) of the
            // batch in the file: until the wipe is synced, a crash may bring it back.
            let bytesMayPersist = batchWritten || wipeRange != nil
            if holdsIOLock { ioLock.unlock() }
            if !batch.isEmpty && !(commitOnWrite && batchWritten) {
                fail(from: first, error: error, bytesWritten: bytesMayPersist)
            } else {
                // A periodic sync failed: acknowledged writes may not be durable; refuse new ones.
                markFailed("\(error)")
            }
        }
        return !(exiting && batch.isEmpty)
    }

    private func publishCommit(through last: UInt64) {
        condition.lock()
        ledger.committed(through: last)
        let visible = ledger.visibleThrough
        // Stored under the lock: the marks only grow, whichever thread publishes them.
        let shown = publishLocked(visible)
        condition.unlock()
        onLocalCommit?(visible)
        if let shown { onCommit?(shown) }
    }

    /// Under `everysec` and `off`, writes what is queued right away on the calling thread (an event
    /// loop at the end of a request batch, as Redis writes its AOF before replying), so a reply never
    /// waits for a thread hand-off. A batch that needs a new segment is left to the writer thread.
    /// `ioLock` is held here only for a `pwrite`: the writer thread syncs without it under these
    /// policies; only a rotation (once per segment) makes an event loop wait, for the sync of the full
    /// segment.
    public func writeNow() {
        guard configuration.policy != .always else { return }
        ioLock.lock()
        condition.lock()
        guard ledger.storageFailure == nil, !stopping, !pending.isEmpty,
            offset + pending.count + WALCommitMarker.size <= capacity
        else {
            if !pending.isEmpty { condition.signal() }
            condition.unlock()
            ioLock.unlock()
            return
        }
        let batch = pending
        let first = pendingFirstLSN
        let last = pendingLastLSN
        let records = pendingRecords
        pending.removeAll(keepingCapacity: true)
        pendingRecords = 0
        condition.unlock()
        do throws(StorageError) {
            try write(batch, firstLSN: first, lastLSN: last, records: records)
            ioLock.unlock()
            publishCommit(through: last)
        } catch {
            let bytesMayPersist = wipeRange != nil
            ioLock.unlock()
            fail(from: first, error: error, bytesWritten: bytesMayPersist)
        }
    }

    private func write(_ bytes: [UInt8], firstLSN: UInt64, lastLSN: UInt64, records: Int) throws(StorageError) {
        let batch = bytes + WALCommitMarker(lastLSN: lastLSN, records: UInt32(records)).encoded
        if offset + batch.count > capacity {
            try rotate(firstLSN: firstLSN, needed: batch.count)
        }
        let started = ContinuousClock.now
        do {
            try file!.write(batch, at: offset)
        } catch {
            // Whatever part of the batch reached the file is wiped before writing resumes.
            wipeRange = offset..<(offset + batch.count)
            throw error
        }
        offset += batch.count
        unsyncedBytes += batch.count
        condition.lock()
        ledger.written(through: lastLSN, writtenBytes: offset)
        condition.unlock()
        if !nextSegmentRequested && offset > capacity / 2 {
            nextSegmentRequested = true
            if configuration.prepareSegmentsInBackground { preparer.prepare(size: configuration.segmentBytes) }
        }
        statistics.withLock {
            $0.bytesWritten += UInt64(batch.count)
            $0.writes += 1
        }
        configuration.observer.walWritten(records: records, bytes: batch.count, duration: ContinuousClock.now - started)
    }

    private var capacity = 0
    let preparer: WALSegmentPreparer
    /// Whether the next segment is being prepared (asked for once the current one is half full).
    private var nextSegmentRequested = false
    /// Bytes of failed writes to zero before the log accepts writes again.
    private var wipeRange: Range<Int>?

    private func sync() throws(StorageError) {
        let start = ContinuousClock.now
        do {
            try file!.sync(dataOnly: true)
        } catch {
            // Under `always` the unsynced writes were never acknowledged: wipe them. Under the relaxed
            // policies they were, and stay; the sync is retried.
            if configuration.policy == .always { wipeRange = (offset - unsyncedBytes)..<offset }
            throw error
        }
        let end = ContinuousClock.now
        lastSyncMilliseconds = clock.now().milliseconds
        unsyncedBytes = 0
        countSync(start, end)
    }

    private func countSync(_ start: ContinuousClock.Instant, _ end: ContinuousClock.Instant) {
        let elapsed = (end - start).components
        let nanoseconds = UInt64(elapsed.seconds) * 1_000_000_000 + UInt64(elapsed.attoseconds / 1_000_000_000)
        statistics.withLock {
            $0.syncs += 1
            $0.lastSyncNanoseconds = nanoseconds
        }
        configuration.observer.walSynced(duration: end - start)
    }

    /// The sync of the relaxed policies, taken with `ioLock` held and returning with it released: the
    /// file is synced without the lock, so event loops appending meanwhile (`writeNow`) never wait for
    /// the disk. Only the writer thread rotates or closes the file, so it stays open throughout.
    private func syncReleasingIOLock() throws(StorageError) {
        let target = file!
        let covered = unsyncedBytes
        ioLock.unlock()
        let start = ContinuousClock.now
        try target.sync(dataOnly: true)
        let end = ContinuousClock.now
        ioLock.lock()
        lastSyncMilliseconds = clock.now().milliseconds
        unsyncedBytes -= covered
        ioLock.unlock()
        countSync(start, end)
    }

    /// Everything from `first` on failed: refuse appends, fail what is queued, have tenants undo theirs.
    private func fail(from first: UInt64, error: StorageError, bytesWritten: Bool = false) {
        condition.lock()
        pending.removeAll(keepingCapacity: true)
        pendingRecords = 0
        let rollbacks = ledger.writeFailed(from: first, reason: "\(error)", bytesWritten: bytesWritten)
        let ranges = ledger.failedRanges
        let resolved = ledger.resolvedThrough
        let visible = ledger.visibleThrough
        failedRanges.withLock { $0 = ranges }
        anyFailure.store(true, ordering: .releasing)
        let shown = publishLocked(visible)
        condition.unlock()
        statistics.withLock { $0.failures += 1 }
        logger.error("WAL write failed; writes undone and refused until the disk recovers", metadata: [
            "error": "\(error)", "first_lsn": "\(first)", "last_lsn": "\(resolved)",
        ])
        onFailure?(rollbacks)
        onLocalCommit?(visible)
        // Every waiter is woken after a failure, so that responses holding a failed write get their error.
        onCommit?(shown ?? committed.load(ordering: .acquiring))
    }

    /// A tenant has undone its failed writes (see `onFailure`): it may write again, and once no tenant
    /// holds failed writes any more, the failure becomes visible (see `DurabilityLedger.visibleThrough`).
    public func rollbackDone(tenant: String) {
        condition.lock()
        ledger.rollbackDone(tenant: tenant)
        let shown = publishLocked(ledger.visibleThrough)
        condition.unlock()
        if let shown { onCommit?(shown) }
    }

    private func markFailed(_ reason: String) {
        condition.lock()
        ledger.syncFailed(reason: reason)
        condition.unlock()
        statistics.withLock { $0.failures += 1 }
        logger.error("WAL sync failed", metadata: ["error": "\(reason)"])
    }

    /// Wipes the failed region and checks that the disk takes a write and a sync again, at most once
    /// a second (when `wait`, it waits for that second): a probe that passes in the current segment
    /// says nothing of a new one, so a disk too full to rotate onto would otherwise fail a batch and
    /// recover again at once, as fast as writes arrive.
    private func recoverFromFailure(wait: Bool) {
        let now = clock.now().milliseconds
        if let last = lastRecoveryAttemptMilliseconds, now - last < 1000 {
            guard wait else { return }
            condition.lock()
            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(1000 - (now - last)) / 1000))
            condition.unlock()
            return
        }
        lastRecoveryAttemptMilliseconds = now
        do throws(StorageError) {
            if let range = wipeRange {
                // From the end backwards: a wipe cut short leaves the start of the failed write
                // without its commit marker (a torn tail), never a marker after zeroed records.
                var end = min(capacity, range.upperBound)
                // The commit marker ends the failed write: zero it a byte at a time, so even a
                // short write of zeros leaves it unreadable.
                let markerStart = max(range.lowerBound, end - WALCommitMarker.size)
                while end > markerStart {
                    try file!.write([0], at: end - 1)
                    end -= 1
                }
                while end > range.lowerBound {
                    let start = max(range.lowerBound, end - 512)
                    try file!.write([UInt8](repeating: 0, count: end - start), at: start)
                    end = start
                }
                offset = range.lowerBound
            }
            try file!.sync(dataOnly: true)
            wipeRange = nil
            unsyncedBytes = 0
            condition.lock()
            ledger.failedBytesWiped(writtenBytes: offset)
            ledger.storageRecovered()
            condition.unlock()
            logger.notice("WAL recovered; accepting writes again")
        } catch {
            logger.warning("WAL still failing; writes stay refused", metadata: ["error": "\(error)"])
        }
    }

    /// When the last failure was probed (under `ioLock`); nil before the first failure.
    private var lastRecoveryAttemptMilliseconds: Int64?

    // MARK: segments

    /// Not named like a segment (`wal-…`), so nothing mistakes it for one.
    static func preparedPath(_ directory: String) -> String { directory + "/prepared-segment.tmp" }
    /// A segment being created at rotation or at start (when no prepared one is ready).
    static func newSegmentPath(_ directory: String) -> String { directory + "/new-segment.tmp" }

    /// The full segment is synced before any record goes to the next one, under every policy:
    /// records of a newer segment that survive a crash behind a torn older one would make recovery
    /// refuse to start. Under the relaxed policies that sync covers at most a second of writes, once
    /// per segment; if it fails, the batch that needed the new segment fails and is undone.
    private func rotate(firstLSN: UInt64, needed: Int) throws(StorageError) {
        if unsyncedBytes > 0 { try sync() }
        try openNewSegment(firstLSN: firstLSN, minimumCapacity: needed + WALSegmentHeader.size, rotating: true)
    }

    /// Moves to a new segment: the one zero-filled in the background if it is ready and big enough;
    /// else, at rotation, one reserved with `fallocate` (no waiting on the write path), and for the
    /// log's first segment one zero-filled here. Its header is written and synced under a temporary
    /// name, then it is renamed into place and the directory synced, so a segment name never holds a
    /// half-made file.
    private func openNewSegment(firstLSN: UInt64, minimumCapacity: Int = 0, rotating: Bool = false) throws(StorageError) {
        let fs = configuration.fileSystem
        let final = configuration.directory + "/" + WALSegmentHeader.fileName(firstLSN: firstLSN)
        let header = WALSegmentHeader(firstLSN: firstLSN, createdAt: clock.now()).encoded
        let size: Int
        let temporary: String
        if let prepared = preparer.take(minimumSize: minimumCapacity) {
            size = prepared.size
            temporary = Self.preparedPath(configuration.directory)
            statistics.withLock { $0.segmentsPrepared += 1 }
            defer { prepared.file.close() }
            try prepared.file.write(header, at: 0)
            try prepared.file.sync(dataOnly: true)
        } else {
            size = max(configuration.segmentBytes, minimumCapacity)
            temporary = Self.newSegmentPath(configuration.directory)
            let newFile = try fs.openForWriting(temporary, create: true)
            defer { newFile.close() }
            do throws(StorageError) {
                if rotating {
                    try newFile.truncate(to: 0)
                    try newFile.allocate(size: size)
                } else {
                    try WALSegmentPreparer.zeroFill(newFile, size: size)
                }
                try newFile.write(header, at: 0)
                try newFile.sync(dataOnly: false)
            } catch {
                // A segment the disk could not hold would keep what it got of the space.
                try? fs.remove(temporary)
                throw error
            }
        }
        try fs.rename(temporary, to: final)
        try fs.syncDirectory(configuration.directory)
        file?.close()
        file = try fs.openForWriting(final, create: false)
        segmentFirstLSN = firstLSN
        offset = WALSegmentHeader.size
        capacity = size
        unsyncedBytes = 0
        condition.lock()
        ledger.segmentOpened(firstLSN: firstLSN, bytes: size, openedAtMilliseconds: clock.now().milliseconds)
        condition.unlock()
        statistics.withLock { $0.segmentsCreated += 1 }
        if rotating {
            // A log that has filled a segment is busy: prepare the next one now.
            nextSegmentRequested = true
            if configuration.prepareSegmentsInBackground { preparer.prepare(size: configuration.segmentBytes) }
        } else {
            nextSegmentRequested = false
        }
    }

    /// The segment files as they stand between two writes, for a replica's copy: each kept segment
    /// opened for reading with its written extent, the `removed-segments` file, and the last LSN
    /// written. Taken under the I/O lock, so no write, rotation or removal is half done; the open
    /// files stay readable if retention removes them afterwards.
    public func captureSegments() throws(StorageError) -> WALSegmentCapture {
        ioLock.lock()
        defer { ioLock.unlock() }
        condition.lock()
        let segments = ledger.segments
        condition.unlock()
        var capture = WALSegmentCapture()
        let removedPath = configuration.directory + "/" + RemovedSegmentsFile.name
        if configuration.fileSystem.exists(removedPath) { capture.removedSegments = try configuration.fileSystem.readWholeFile(removedPath) }
        do throws(StorageError) {
            for segment in segments {
                let file = try configuration.fileSystem.openForReading(configuration.directory + "/" + WALSegmentHeader.fileName(firstLSN: segment.firstLSN))
                capture.segments.append(.init(firstLSN: segment.firstLSN, writtenBytes: segment.writtenBytes, size: try file.size(), file: file))
                // A segment begins at the LSN after every record before it (a newest one may hold none yet).
                capture.lastLSN = max(capture.lastLSN, segment.lastLSN, segment.firstLSN - 1)
            }
        } catch {
            capture.close()
            throw error
        }
        return capture
    }

    /// Waits until this node's log has made `lsn` durable, whatever replication has acknowledged.
    public func waitUntilLocallyDurable(_ lsn: UInt64, timeout: Duration = .seconds(30)) -> Bool {
        waitForLocalLog(lsn, timeout: timeout, givingUpOnAnyFailure: true) && !hasFailures
    }

    /// Whether this node's log reached `lsn` within `timeout` (flushing meanwhile).
    private func waitForLocalLog(_ lsn: UInt64, timeout: Duration, givingUpOnAnyFailure: Bool) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while locallyDurableLSN < lsn, ContinuousClock.now < deadline, !(givingUpOnAnyFailure && hasFailures) {
            flush()
            usleepWhileWaiting()
        }
        return locallyDurableLSN >= lsn
    }

    /// Keeps the segments holding records above `lsn` whatever the snapshots cover (replicas that still
    /// need them); `.max` lifts the hold.
    public func holdSegments(after lsn: UInt64) {
        condition.lock()
        ledger.replicaHoldLSN = lsn
        condition.unlock()
    }

    /// A tenant's snapshots are durable; its oldest kept one covers its writes up to `oldestKeptLSN`.
    public func snapshotsKept(tenant: String, oldestKeptLSN: UInt64) {
        condition.lock()
        ledger.snapshotsKept(tenant: tenant, oldestKeptLSN: oldestKeptLSN)
        condition.unlock()
    }

    /// Removes the segments no tenant needs (see ``DurabilityLedger/removableSegments()``). Returns the
    /// removed files.
    @discardableResult
    public func removeUnneededSegments() -> [String] {
        ioLock.lock()
        defer { ioLock.unlock() }
        condition.lock()
        let removable = ledger.removableSegments(nowMilliseconds: clock.now().milliseconds).filter { $0 != segmentFirstLSN }
        let taken = ledger.newestLSNs(inSegments: removable)
        condition.unlock()
        guard !removable.isEmpty else { return [] }
        // What the segments held is recorded durably before any is deleted, so recovery can tell a
        // tenant whose snapshot covers its records there from one whose records are gone.
        do {
            var recorded = try RemovedSegmentsFile.read(walDirectory: configuration.directory, configuration.fileSystem)
            for (tenant, lsn) in taken { recorded[tenant] = max(recorded[tenant] ?? 0, lsn) }
            try RemovedSegmentsFile.write(recorded, walDirectory: configuration.directory, configuration.fileSystem)
        } catch {
            logger.warning("kept WAL segments no tenant needs: could not record their removal", metadata: ["error": "\(error)"])
            return []
        }
        var removed: [String] = []
        var removedLSNs: [UInt64] = []
        for first in removable {
            let path = configuration.directory + "/" + WALSegmentHeader.fileName(firstLSN: first)
            do {
                try configuration.fileSystem.remove(path)
                removed.append(path)
                removedLSNs.append(first)
            } catch {
                logger.warning("could not remove a WAL segment no tenant needs", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
        condition.lock()
        ledger.segmentsRemoved(removedLSNs)
        condition.unlock()
        if !removed.isEmpty { try? configuration.fileSystem.syncDirectory(configuration.directory) }
        return removed
    }
}

/// A log that acknowledges nothing above `above` any more, and the error for those who wait on it.
public struct StoppedAcknowledgements: Sendable, Equatable {
    public var above: UInt64
    public var error: LearnStoreError

    public init(above: UInt64, error: LearnStoreError) {
        self.above = above
        self.error = error
    }
}
