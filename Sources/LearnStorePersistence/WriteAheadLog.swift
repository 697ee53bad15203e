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

    public init(directory: String, policy: FsyncPolicy = .always, segmentBytes: Int = 64 << 20,
                fileSystem: any FileSystem = PosixFileSystem(), appendersWriteNow: Bool = false) {
        self.directory = directory
        self.policy = policy
        self.segmentBytes = max(segmentBytes, 64 << 10)
        self.fileSystem = fileSystem
        self.appendersWriteNow = appendersWriteNow
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
    private var pendingTenants = Set<String>()
    private var nextLSN: UInt64
    private var failure: String?
    private var stopping = false
    private var flushRequested = false

    private let committed = Atomic<UInt64>(0)
    private let failedRanges = Mutex<[ClosedRange<UInt64>]>([])
    private let segments = Mutex<[UInt64]>([])  // first LSNs of existing segments, ascending
    private var thread: Thread?
    private let stopped = NSCondition()
    private var isStopped = false

    // Guarded by `ioLock`.
    private var file: (any StorageFile)?
    private var segmentFirstLSN: UInt64 = 0
    private var offset = 0
    private var lastSync = ContinuousClock.now
    private var unsyncedBytes = 0

    /// Called on the writer thread after each commit with the new committed LSN.
    public var onCommit: (@Sendable (UInt64) -> Void)?
    /// Called on the writer thread when writes fail: the failed LSN range and the tenants it touched.
    public var onFailure: (@Sendable (ClosedRange<UInt64>, Set<String>) -> Void)?

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
    public init(configuration: WALConfiguration, resume: WALResumePoint?, startLSN: UInt64 = 1, existingSegments: [UInt64] = [],
                clock: any EngineClock = SystemClock(), logger: Logger = Logger(label: "learnstore.wal")) throws(StorageError) {
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        let fs = configuration.fileSystem
        try fs.createDirectory(configuration.directory)
        try? fs.remove(Self.preparedPath(configuration.directory))
        try? fs.remove(Self.newSegmentPath(configuration.directory))
        preparer = WALSegmentPreparer(fileSystem: fs, path: Self.preparedPath(configuration.directory), logger: logger)
        if let resume {
            nextLSN = resume.nextLSN
            committed.store(resume.nextLSN - 1, ordering: .releasing)
            let opened = try fs.openForWriting(resume.segmentPath, create: false)
            file = opened
            segmentFirstLSN = resume.segmentFirstLSN
            offset = resume.offset
            capacity = try opened.size()
            segments.withLock { $0 = existingSegments }
        } else {
            nextLSN = startLSN
            committed.store(startLSN - 1, ordering: .releasing)
            segments.withLock { $0 = existingSegments }
            try openNewSegment(firstLSN: startLSN)
        }
    }

    public func start() {
        let thread = Thread { [self] in self.writerLoop() }
        thread.name = "learnstore-wal"
        self.thread = thread
        thread.start()
    }

    public var committedLSN: UInt64 { committed.load(ordering: .acquiring) }

    public func hasFailed(_ lsn: UInt64) -> Bool {
        failedRanges.withLock { ranges in ranges.contains { $0.contains(lsn) } }
    }

    /// The LSN the next append will get.
    public var upcomingLSN: UInt64 {
        condition.lock()
        defer { condition.unlock() }
        return nextLSN
    }

    public var segmentFirstLSNs: [UInt64] { segments.withLock { $0 } }

    // MARK: appending (any thread)

    public func append(_ entry: LogEntry) throws(LearnStoreError) -> UInt64 {
        var record = WALRecord.encodeUnsequenced(entry)
        condition.lock()
        defer { condition.unlock() }
        if let failure { throw LearnStoreError(.storageUnavailable, "the WAL is failing (\(failure)); writes are refused until the disk recovers") }
        if stopping { throw LearnStoreError(.shuttingDown, "the WAL is closing") }
        let lsn = nextLSN
        nextLSN += 1
        WALRecord.seal(&record, lsn: lsn)
        let wasEmpty = pending.isEmpty
        if wasEmpty { pendingFirstLSN = lsn }
        pending.append(contentsOf: record)
        pendingLastLSN = lsn
        pendingTenants.insert(entry.tenantID)
        // Only the first append of a batch wakes the writer; it takes everything queued meanwhile.
        if wasEmpty && (configuration.policy == .always || !configuration.appendersWriteNow) { condition.signal() }
        return lsn
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
            if committedLSN >= lsn || hasFailed(lsn) { return committedLSN >= lsn }
            flush()
            usleepWhileWaiting()
        }
        return committedLSN >= lsn
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
        while true {
            condition.lock()
            while pending.isEmpty && !stopping && !flushRequested && failure == nil {
                if configuration.policy == .everysec {
                    if !condition.wait(until: Date(timeIntervalSinceNow: 1)) { break }
                } else {
                    condition.wait()
                }
            }
            if failure != nil && !stopping {
                condition.unlock()
                ioLock.lock()
                recoverFromFailure()
                ioLock.unlock()
                continue
            }
            condition.unlock()
            // File I/O happens under `ioLock`, and the batch is taken after it is held, so records
            // reach the file in LSN order even when event loops write too (`writeNow`).
            ioLock.lock()
            condition.lock()
            let batch = pending
            let first = pendingFirstLSN
            let last = pendingLastLSN
            let tenants = pendingTenants
            let flush = flushRequested || stopping
            let exiting = stopping
            pending.removeAll(keepingCapacity: true)
            pendingTenants.removeAll(keepingCapacity: true)
            flushRequested = false
            condition.unlock()

            var holdsIOLock = true
            do throws(StorageError) {
                if !batch.isEmpty { try write(batch, firstLSN: first, lastLSN: last) }
                let timeToSync = configuration.policy == .everysec && ContinuousClock.now - lastSync >= .seconds(1)
                if unsyncedBytes > 0 && (configuration.policy == .always || flush || timeToSync) {
                    if configuration.policy == .always {
                        try sync()
                    } else {
                        holdsIOLock = false
                        try syncReleasingIOLock()
                    }
                }
                if holdsIOLock { ioLock.unlock() }
                if !batch.isEmpty {
                    committed.store(last, ordering: .releasing)
                    onCommit?(last)
                }
            } catch {
                if holdsIOLock { ioLock.unlock() }
                if !batch.isEmpty {
                    fail(first...max(last, first), tenants: tenants, error: error)
                } else {
                    // A periodic sync failed: acknowledged writes may not be durable; refuse new ones.
                    markFailed("\(error)")
                }
            }
            syncRetiredSegment()
            if exiting && batch.isEmpty { break }
        }
        ioLock.lock()
        try? file?.sync(dataOnly: true)
        ioLock.unlock()
        stopped.lock()
        isStopped = true
        stopped.broadcast()
        stopped.unlock()
    }

    /// Under `everysec` and `off`, writes what is queued right away on the calling thread (an event
    /// loop at the end of a request batch, as Redis writes its AOF before replying), so a reply never
    /// waits for a thread hand-off. A batch that needs a new segment is left to the writer thread.
    /// `ioLock` is held here only for a `pwrite`: the writer thread syncs without it under these
    /// policies and rotates to a segment prepared in advance, so an event loop never waits for a sync.
    public func writeNow() {
        guard configuration.policy != .always else { return }
        ioLock.lock()
        condition.lock()
        guard failure == nil, !stopping, !pending.isEmpty,
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
        let tenants = pendingTenants
        pending.removeAll(keepingCapacity: true)
        pendingTenants.removeAll(keepingCapacity: true)
        condition.unlock()
        do throws(StorageError) {
            try write(batch, firstLSN: first, lastLSN: last)
            ioLock.unlock()
            committed.store(last, ordering: .releasing)
            onCommit?(last)
        } catch {
            ioLock.unlock()
            fail(first...max(last, first), tenants: tenants, error: error)
        }
    }

    private func write(_ records: [UInt8], firstLSN: UInt64, lastLSN: UInt64) throws(StorageError) {
        let batch = records + WALCommitMarker(lastLSN: lastLSN, records: UInt32(lastLSN - firstLSN + 1)).encoded
        if offset + batch.count > capacity {
            try rotate(firstLSN: firstLSN, needed: batch.count)
        }
        do {
            try file!.write(batch, at: offset)
        } catch {
            // Whatever part of the batch reached the file is wiped before writing resumes.
            wipeRange = offset..<(offset + batch.count)
            throw error
        }
        offset += batch.count
        unsyncedBytes += batch.count
        if !nextSegmentRequested && offset > capacity / 2 {
            nextSegmentRequested = true
            preparer.prepare(size: configuration.segmentBytes)
        }
        statistics.withLock {
            $0.bytesWritten += UInt64(batch.count)
            $0.writes += 1
        }
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
        lastSync = ContinuousClock.now
        unsyncedBytes = 0
        countSync(start, lastSync)
    }

    private func countSync(_ start: ContinuousClock.Instant, _ end: ContinuousClock.Instant) {
        let elapsed = (end - start).components
        let nanoseconds = UInt64(elapsed.seconds) * 1_000_000_000 + UInt64(elapsed.attoseconds / 1_000_000_000)
        statistics.withLock {
            $0.syncs += 1
            $0.lastSyncNanoseconds = nanoseconds
        }
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
        lastSync = end
        unsyncedBytes -= covered
        ioLock.unlock()
        countSync(start, end)
    }

    /// Everything from `range.lowerBound` on failed: refuse appends, fail what is queued, tell tenants.
    private func fail(_ range: ClosedRange<UInt64>, tenants: Set<String>, error: StorageError) {
        condition.lock()
        let queuedLast = pending.isEmpty ? range.upperBound : pendingLastLSN
        var allTenants = tenants
        allTenants.formUnion(pendingTenants)
        pending.removeAll(keepingCapacity: true)
        pendingTenants.removeAll()
        failure = "\(error)"
        condition.unlock()
        let failedRange = range.lowerBound...max(range.upperBound, queuedLast)
        failedRanges.withLock { $0.append(failedRange) }
        statistics.withLock { $0.failures += 1 }
        logger.error("WAL write failed; writes undone and refused until the disk recovers", metadata: [
            "error": "\(error)", "first_lsn": "\(failedRange.lowerBound)", "last_lsn": "\(failedRange.upperBound)",
        ])
        onFailure?(failedRange, allTenants)
        onCommit?(committedLSN)
    }

    private func markFailed(_ reason: String) {
        condition.lock()
        failure = reason
        condition.unlock()
        statistics.withLock { $0.failures += 1 }
        logger.error("WAL sync failed", metadata: ["error": "\(reason)"])
    }

    /// Wipes the failed region and checks that the disk takes a write and a sync again; retried once
    /// a second until it works.
    private func recoverFromFailure() {
        do throws(StorageError) {
            if let range = wipeRange {
                let end = min(capacity, range.upperBound)
                if end > range.lowerBound { try file!.write([UInt8](repeating: 0, count: end - range.lowerBound), at: range.lowerBound) }
                offset = range.lowerBound
            }
            try file!.sync(dataOnly: true)
            wipeRange = nil
            unsyncedBytes = 0
            condition.lock()
            failure = nil
            condition.unlock()
            logger.notice("WAL recovered; accepting writes again")
        } catch {
            condition.lock()
            _ = condition.wait(until: Date(timeIntervalSinceNow: 1))
            condition.unlock()
        }
    }

    // MARK: segments

    /// Not named like a segment (`wal-…`), so nothing mistakes it for one.
    static func preparedPath(_ directory: String) -> String { directory + "/prepared-segment.tmp" }
    /// A segment being created at rotation or at start (when no prepared one is ready).
    static func newSegmentPath(_ directory: String) -> String { directory + "/new-segment.tmp" }

    /// Under `always` the full segment is already synced. Under the relaxed policies it may hold up to
    /// a segment of unsynced writes, whose sync takes up to a second on a busy disk: it is left to
    /// `syncRetiredSegment`, after the I/O lock is released, so event loops do not wait for it.
    private func rotate(firstLSN: UInt64, needed: Int) throws(StorageError) {
        if unsyncedBytes > 0 {
            if configuration.policy == .always {
                try sync()
            } else {
                retiredSegment = file
                file = nil
            }
        }
        do {
            try openNewSegment(firstLSN: firstLSN, minimumCapacity: needed + WALSegmentHeader.size, rotating: true)
        } catch {
            if let retired = retiredSegment, file == nil {
                file = retired
                retiredSegment = nil
            }
            throw error
        }
    }

    /// A full segment left unsynced by rotation under a relaxed policy (guarded by `ioLock`).
    private var retiredSegment: (any StorageFile)?

    /// Syncs and closes the segment rotation retired, on the writer thread, without the I/O lock.
    private func syncRetiredSegment() {
        ioLock.lock()
        let retired = retiredSegment
        retiredSegment = nil
        ioLock.unlock()
        guard let retired else { return }
        do throws(StorageError) {
            try retired.sync(dataOnly: true)
            statistics.withLock { $0.syncs += 1 }
        } catch {
            // Acknowledged writes of that segment may not be durable: refuse new writes until the disk recovers.
            markFailed("\(error)")
        }
        retired.close()
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
            if rotating {
                try newFile.truncate(to: 0)
                try newFile.allocate(size: size)
            } else {
                try WALSegmentPreparer.zeroFill(newFile, size: size)
            }
            try newFile.write(header, at: 0)
            try newFile.sync(dataOnly: false)
        }
        try fs.rename(temporary, to: final)
        try fs.syncDirectory(configuration.directory)
        file?.close()
        file = try fs.openForWriting(final, create: false)
        segmentFirstLSN = firstLSN
        offset = WALSegmentHeader.size
        capacity = size
        unsyncedBytes = 0
        segments.withLock { $0.append(firstLSN) }
        statistics.withLock { $0.segmentsCreated += 1 }
        if rotating {
            // A log that has filled a segment is busy: prepare the next one now.
            nextSegmentRequested = true
            preparer.prepare(size: configuration.segmentBytes)
        } else {
            nextSegmentRequested = false
        }
    }

    /// Removes segments whose every record has an LSN below `lsn` (they are covered by snapshots).
    /// Returns the removed files.
    @discardableResult
    public func removeSegments(coveredBelow lsn: UInt64) -> [String] {
        let removable: [UInt64] = segments.withLock { list in
            var out: [UInt64] = []
            for (index, first) in list.enumerated() where index + 1 < list.count && list[index + 1] <= lsn {
                out.append(first)
            }
            list.removeAll { out.contains($0) }
            return out
        }
        var removed: [String] = []
        for first in removable where first != segmentFirstLSN {
            let path = configuration.directory + "/" + WALSegmentHeader.fileName(firstLSN: first)
            if (try? configuration.fileSystem.remove(path)) != nil { removed.append(path) }
        }
        if !removed.isEmpty { try? configuration.fileSystem.syncDirectory(configuration.directory) }
        return removed
    }
}
