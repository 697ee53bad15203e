import Dispatch
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import Synchronization

/// One subscription's reading side: the WAL tail reader and the translator, run on the subscription's
/// own serial queue (file reads never run on an event loop). It holds at most one read's worth of
/// changes the subscriber has no credit for yet.
final class FeedSource: @unchecked Sendable {
    struct Read: Sendable {
        var batch: FeedBatch
        /// Set when everything committed up to this LSN has been read.
        var caughtUpAt: UInt64?
    }

    let tenantID: String
    private let filter: TenantFilter
    let queue: DispatchQueue
    private let wal: WriteAheadLog
    private let reader: WALTailReader
    private var translator: FeedTranslator
    private var pending: [FeedChange] = []
    private let announcedRestores = Mutex<[(sequence: UInt64, afterLSN: UInt64, at: Timestamp)]>([])
    private var stalledSince: ContinuousClock.Instant?
    /// How long the log may stay unreadable at one place, with writes committed after it, before the
    /// subscription fails (a failed write is normally wiped within a second or two).
    static let stallLimit: Duration = .seconds(30)

    init(tenantID: String, wal: WriteAheadLog, walDirectory: String, fileSystem: any FileSystem,
         start: WALTailReader.Position, translator: FeedTranslator) {
        self.tenantID = tenantID
        self.filter = TenantFilter(tenantID)
        self.queue = DispatchQueue(label: "learnstore-feed-\(tenantID)")
        self.wal = wal
        self.reader = WALTailReader(walDirectory: walDirectory, fileSystem: fileSystem, position: start)
        self.translator = translator
    }

    var throughSequence: UInt64 { translator.throughSequence }

    /// Called from any thread: the restore becomes a change once the writes before it are read.
    func restored(sequence: UInt64, afterLSN: UInt64, at time: Timestamp) {
        announcedRestores.withLock { $0.append((sequence, afterLSN, time)) }
        wakeHandler.withLock { $0 }?()
    }

    /// Told when something outside the WAL (a restore) gives the subscription more to read.
    private let wakeHandler = Mutex<(@Sendable () -> Void)?>(nil)
    func onWake(_ wake: @escaping @Sendable () -> Void) { wakeHandler.withLock { $0 = wake } }

    /// Reads on and returns at most `maximumChanges` changes, reading about `maximumBytes` of the log.
    /// Blocking: call on `queue`, or (a small read of what was just committed) on the event loop; never
    /// two at once.
    func next(maximumChanges: Int, maximumBytes: Int = 4 << 20) throws(FeedFailure) -> Read {
        for restore in announcedRestores.withLock({ list in defer { list.removeAll() }; return list }) {
            translator.restored(sequence: restore.sequence, afterLSN: restore.afterLSN, at: restore.at)
        }
        var caughtUpAt: UInt64?
        while pending.count < maximumChanges {
            let tail = wal.tail
            let translatorNow = translator
            let batch: WALTailReader.Batch
            do {
                batch = try reader.read(
                    tail, isFailed: { [wal] in wal.hasFailed($0) }, maximumRecords: maximumChanges - pending.count, maximumBytes: maximumBytes
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
            if batch.caughtUp {
                caughtUpAt = tail.committedLSN
                break
            }
        }
        let sent = Array(pending.prefix(maximumChanges))
        pending.removeFirst(sent.count)
        let through = pending.isEmpty ? translator.throughSequence : sent.last?.sequence ?? translator.throughSequence
        return Read(batch: FeedBatch(throughSequence: through, changes: sent), caughtUpAt: pending.isEmpty ? caughtUpAt : nil)
    }

    func close() { queue.async { [reader] in reader.close() } }
}
