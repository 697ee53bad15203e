import Dispatch
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import Synchronization

/// One subscription's reading side: the translator, fed from the tenant's recent changes in memory
/// once the subscriber has caught up, and from the WAL's files before that (or after it fell behind
/// what memory holds), on the subscription's own serial queue: large file reads never run on an event
/// loop. It holds at most one read's worth of changes the subscriber has no credit for yet.
final class FeedSource: @unchecked Sendable {
    struct Read: Sendable {
        var batch: FeedBatch
        /// Set when everything there is was read: what is worth reading again for.
        var wait: FeedSessionState.Wait?
        /// The next read takes the recent changes in memory (cheap enough for an event loop).
        var fromMemory: Bool
    }

    let tenantID: String
    private let filter: TenantFilter
    let queue: DispatchQueue
    private let wal: WriteAheadLog
    private let reader: WALTailReader
    private var translator: FeedTranslator
    let recent: RecentChanges
    private let statistics: FeedStatistics
    private var readingRecent = false
    private var pending: [FeedChange] = []
    private let announcedRestores = Mutex<[(sequence: UInt64, afterLSN: UInt64, at: Timestamp)]>([])
    private var stalledSince: ContinuousClock.Instant?
    /// How long the log may stay unreadable at one place, with writes committed after it, before the
    /// subscription fails (a failed write is normally wiped within a second or two).
    static let stallLimit: Duration = .seconds(30)

    init(tenantID: String, wal: WriteAheadLog, walDirectory: String, fileSystem: any FileSystem,
         start: WALTailReader.Position, translator: FeedTranslator, recent: RecentChanges,
         statistics: FeedStatistics) {
        self.tenantID = tenantID
        self.filter = TenantFilter(tenantID)
        self.queue = DispatchQueue(label: "learnstore-feed-\(tenantID)")
        self.wal = wal
        self.reader = WALTailReader(walDirectory: walDirectory, fileSystem: fileSystem, position: start)
        self.translator = translator
        self.recent = recent
        self.statistics = statistics
    }

    var throughSequence: UInt64 { translator.throughSequence }

    /// Called from any thread: the restore becomes a change once the writes before it are read.
    func restored(sequence: UInt64, afterLSN: UInt64, at time: Timestamp) {
        announcedRestores.withLock { $0.append((sequence, afterLSN, time)) }
        wake()
    }

    private func wake(commitOf lsn: UInt64? = nil) { wakeHandler.withLock { $0 }?.wake(lsn) }

    /// Held in a struct: a bare closure taking an argument, read `inout` through the generic
    /// `Mutex`, would be wrapped in two more reabstraction thunks at every read.
    private struct WakeHandler: Sendable { let wake: @Sendable (_ commitOf: UInt64?) -> Void }

    /// Told when the subscription has more to read: at once (nil: a restore, which the WAL does not
    /// show, or a write the commit mark had passed) or once the commit mark passes an LSN (the write a
    /// subscriber that had everything waited for).
    private let wakeHandler = Mutex<WakeHandler?>(nil)
    func onWake(_ wake: @escaping @Sendable (_ commitOf: UInt64?) -> Void) { wakeHandler.withLock { $0 = WakeHandler(wake: wake) } }

    /// Reads on and returns at most `maximumChanges` changes, reading about `maximumBytes` of the log.
    /// Blocking when it reads the log: call on `queue`, or (recent changes in memory, or a small read of
    /// what was just committed) on the event loop; never two at once.
    func next(maximumChanges: Int, maximumBytes: Int = 4 << 20) throws(FeedFailure) -> Read {
        for restore in announcedRestores.withLock({ list in defer { list.removeAll() }; return list }) {
            translator.restored(sequence: restore.sequence, afterLSN: restore.afterLSN, at: restore.at)
        }
        var wait: FeedSessionState.Wait?
        while pending.count < maximumChanges && wait == nil && translator.releasedAfter == nil {
            if readingRecent {
                wait = readRecent(maximumChanges: maximumChanges - pending.count)
            } else {
                wait = try readLog(maximumChanges: maximumChanges - pending.count, maximumBytes: maximumBytes).map { .commit($0) }
                if wait != nil, readingRecent { wait = nil }
            }
        }
        if pending.isEmpty, let released = translator.releasedAfter {
            throw FeedFailure(LearnStoreError(
                .notPrimary, "tenant \(tenantID)'s partition moved to another group after sequence \(released); subscribe again from there through any node (AUTH answers MOVED)"))
        }
        let sent = Array(pending.prefix(maximumChanges))
        pending.removeFirst(sent.count)
        let through = pending.isEmpty ? translator.throughSequence : sent.last?.sequence ?? translator.throughSequence
        return Read(batch: FeedBatch(throughSequence: through, changes: sent), wait: pending.isEmpty ? wait : nil, fromMemory: readingRecent)
    }

    /// One read of the recent changes; what to wait for when it took everything there is.
    private func readRecent(maximumChanges: Int) -> FeedSessionState.Wait? {
        let read = recent.read(ObjectIdentifier(self), throughSequence: translator.throughSequence, maximum: maximumChanges, wal: wal) {
            [weak self] lsn in self?.wake(commitOf: lsn)
        }
        switch read {
        case .behind:
            readLogAgain()
            return nil
        case .records(let records, let readThrough, let then):
            let changes = translator.translate(records, readThroughLSN: readThrough)
            statistics.tookFromMemory(changes.count)
            pending += changes
            switch then {
            case .readMore: return nil
            case .waitForCommit(let lsn): return .commit(lsn)
            case .waitForWrite: return .write
            }
        }
    }

    /// Memory no longer holds every change after the subscriber's position: read the log from the
    /// segment that holds its next change (or on from where the log was left, if none is known).
    private func readLogAgain() {
        statistics.fellBehind()
        readingRecent = false
        recent.leave(ObjectIdentifier(self))
        if case .segment(let first) = wal.tail.start(tenant: tenantID, after: translator.throughSequence, tenantSequence: .max),
           first > reader.position.segmentFirstLSN {
            reader.move(to: WALTailReader.Position(segmentFirstLSN: first))
        }
    }

    /// One read of the log's files; what to wait for when it reached the commit mark (and the recent
    /// changes in memory cannot take over).
    private func readLog(maximumChanges: Int, maximumBytes: Int) throws(FeedFailure) -> UInt64? {
        let tail = wal.tail
        let translatorNow = translator
        let batch: WALTailReader.Batch
        do {
            batch = try reader.read(
                tail, isFailed: { [wal] in wal.hasFailed($0) }, maximumRecords: maximumChanges, maximumBytes: maximumBytes
            ) {
                tenant, sequence in filter.matches(tenant) && translatorNow.wants(sequence)
            }
        } catch {
            switch error {
            case .segmentGone(let first):
                let oldest = wal.tail.oldestSequence(tenant: tenantID, tenantSequence: translator.throughSequence)
                throw .truncated(
                    "the WAL segment starting at LSN \(first) that this subscription was reading was removed: the changes after sequence \(translator.throughSequence) are no longer kept",
                    oldest: oldest)
            case .storage(let reason):
                throw FeedFailure(LearnStoreError(.storageUnavailable, "the change feed cannot read the WAL: \(reason)"))
            }
        }
        // Caught up, every record up to the commit mark has been read, whether or not the log still
        // holds one at the mark (a start after a crash resumes above the newest snapshot's LSN).
        let readThrough = batch.caughtUp && batch.stalled == nil ? max(reader.position.lastLSN, tail.committedLSN) : reader.position.lastLSN
        pending += translator.translate(batch.records, readThroughLSN: readThrough)
        if let stalled = batch.stalled {
            let now = ContinuousClock.now
            if let since = stalledSince, now - since > Self.stallLimit {
                throw FeedFailure(LearnStoreError(.storageUnavailable, "the change feed cannot read the WAL: \(stalled)"))
            }
            stalledSince = stalledSince ?? now
        } else {
            stalledSince = nil
        }
        guard batch.caughtUp else { return nil }
        if batch.stalled == nil, recent.join(ObjectIdentifier(self), throughSequence: translator.throughSequence, passedLSN: reader.position.lastLSN) {
            readingRecent = true
            reader.close()
        }
        return tail.committedLSN + 1
    }

    func close() {
        recent.leave(ObjectIdentifier(self))
        queue.async { [reader] in reader.close() }
    }
}
