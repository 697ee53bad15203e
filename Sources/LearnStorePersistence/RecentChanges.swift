import LearnStoreEngine
import Synchronization

/// The shell around one tenant's ``RecentChangesBuffer``: the tenant appends to it (as its
/// ``TenantChangeTap``), the tenant's subscriptions read from it on their event loops and wait for the
/// log's next commit. The tenant appends right after the log took the write, so a fast commit can pass
/// a write before it is held: an append of a write already committed wakes the subscriptions that
/// read everything, or they would wait for a commit that may never come. The buffer releases what
/// every subscription reading it has passed.
public final class RecentChanges: TenantChangeTap, Sendable {
    public enum Read: Sendable {
        /// The subscription is behind what is held: read the log.
        case behind
        /// The held writes after the reader's position up to the commit mark; every write of the
        /// tenant up to `readThroughLSN` has now been given; what to do next.
        case records([WALRecord], readThroughLSN: UInt64, then: Then)
    }

    public enum Then: Sendable, Equatable {
        /// The read stopped at its maximum: read again.
        case readMore
        /// Everything committed is read: wait until this LSN is committed (or the reader's wake).
        case waitForCommit(UInt64)
        /// Everything held is read and committed: the reader's wake comes with the tenant's next write.
        /// (Waiting for the log's next commit instead would wake the reader at every other tenant's.)
        case waitForWrite
    }

    /// What a read does with a held write at or below the commit mark.
    public enum Resolution: Sendable {
        case take
        /// It failed and will never be durable: pass over it.
        case skip
        /// It failed but may still come back after a crash until it is wiped: stop before it.
        case stop
    }

    private struct Reader {
        var passedLSN: UInt64
        var wake: (@Sendable (UInt64?) -> Void)?
        /// Any append wakes it, not only one the commit mark has passed.
        var wakesOnAnyWrite = false
    }

    private struct State {
        var buffer: RecentChangesBuffer
        var readers: [ObjectIdentifier: Reader] = [:]
        var closed = false
    }

    private let state: Mutex<State>
    public let tenantID: String
    private let committedLSN: @Sendable () -> UInt64

    /// A few thousand records per tenant: a caught-up subscriber needs only what the last commits
    /// added; one that falls further behind reads the log, as a new one does.
    public static let defaultMaximumRecords = 4096

    public init(tenantID: String, maximumRecords: Int = RecentChanges.defaultMaximumRecords, committedLSN: @escaping @Sendable () -> UInt64) {
        self.tenantID = tenantID
        self.committedLSN = committedLSN
        self.state = Mutex(State(buffer: RecentChangesBuffer(maximumRecords: maximumRecords)))
    }

    public func appended(_ entry: LogEntry, lsn: UInt64) -> Bool {
        let woken: (wakes: [@Sendable (UInt64?) -> Void], passedByCommit: Bool)? = state.withLock { state in
            guard !state.closed else { return nil }
            state.buffer.append(WALRecord(lsn: lsn, entry: entry))
            var wakes: [@Sendable (UInt64?) -> Void] = []
            let passedByCommit = lsn <= committedLSN()
            for key in state.readers.keys {
                if let wake = state.readers[key]!.wake, passedByCommit || state.readers[key]!.wakesOnAnyWrite {
                    wakes.append(wake)
                    state.readers[key]!.wake = nil
                }
            }
            return (wakes, passedByCommit)
        }
        guard let woken else { return false }
        for wake in woken.wakes { wake(woken.passedByCommit ? nil : lsn) }
        return true
    }

    /// The tenant stood at `sequence` when the buffer was attached to it.
    public func attached(atSequence sequence: UInt64) {
        state.withLock { $0.buffer.start(afterSequence: sequence) }
    }

    /// Starts reading for `reader`, which has seen every change up to `sequence` and every record of
    /// the log up to `passedLSN`; false when the buffer does not hold everything after `sequence`.
    public func join(_ reader: ObjectIdentifier, throughSequence sequence: UInt64, passedLSN: UInt64) -> Bool {
        state.withLock { state in
            guard !state.closed, state.buffer.holdsEverything(after: sequence) else { return false }
            state.readers[reader] = Reader(passedLSN: passedLSN)
            return true
        }
    }

    /// Reads on for `reader` (which has joined). When it took everything committed that is held, `wake`
    /// is called once if a write at or below the commit mark is appended (with nil: read now), or, when
    /// nothing uncommitted is held either (``Then/waitForWrite``), once any write is: with its LSN if
    /// it is not committed yet (read once it is). Records the reader passed earlier are released once no reader
    /// needs them. `resolve` is asked only about writes that may have failed (`checkFailures`).
    public func read(_ reader: ObjectIdentifier, throughSequence sequence: UInt64, committed: UInt64, maximum: Int, checkFailures: Bool,
              resolve: (UInt64) -> Resolution, wake: @escaping @Sendable (UInt64?) -> Void) -> Read {
        state.withLock { state in
            guard !state.closed, var me = state.readers[reader], state.buffer.holdsEverything(after: sequence) else {
                state.readers[reader] = nil
                return .behind
            }
            let slice = state.buffer.read(afterLSN: me.passedLSN, through: committed, maximum: maximum)
            var records: [WALRecord] = []
            records.reserveCapacity(slice.records.count)
            var then: Then = slice.more ? .readMore : slice.firstUncommittedLSN.map { .waitForCommit($0) } ?? .waitForWrite
            var stopped = false
            for record in slice.records {
                let resolution = checkFailures ? resolve(record.lsn) : .take
                if resolution == .stop {
                    then = .waitForCommit(committed + 1)
                    stopped = true
                    break
                }
                if resolution == .take { records.append(record) }
                me.passedLSN = record.lsn
            }
            me.wake = slice.more ? nil : wake
            me.wakesOnAnyWrite = then == .waitForWrite
            state.readers[reader] = me
            if let oldest = state.readers.values.lazy.map(\.passedLSN).min() { state.buffer.release(through: oldest) }
            return .records(records, readThroughLSN: stopped || then == .readMore ? me.passedLSN : committed, then: then)
        }
    }

    /// ``read(_:throughSequence:committed:maximum:checkFailures:resolve:wake:)`` against `wal`: its
    /// commit mark, and its failed writes passed over, or stopped at while a crash could bring them back.
    public func read(_ reader: ObjectIdentifier, throughSequence sequence: UInt64, maximum: Int, wal: WriteAheadLog,
                     wake: @escaping @Sendable (UInt64?) -> Void) -> Read {
        read(reader, throughSequence: sequence, committed: wal.committedLSN, maximum: maximum, checkFailures: wal.hasFailures,
             resolve: { lsn in !wal.hasFailed(lsn) ? .take : wal.failedWriteMayReturn(lsn) ? .stop : .skip }, wake: wake)
    }

    /// Stops reading for `reader` (it reads the log again, or its subscription ended).
    public func leave(_ reader: ObjectIdentifier) {
        state.withLock { _ = $0.readers.removeValue(forKey: reader) }
    }

    /// No subscription of the tenant is left: hold nothing, and have the tenant stop appending.
    public func close() {
        state.withLock { state in
            state.closed = true
            state.readers.removeAll()
            state.buffer = RecentChangesBuffer(maximumRecords: state.buffer.maximumRecords)
        }
    }

    public var heldRecords: Int { state.withLock { $0.buffer.heldRecords } }
}
