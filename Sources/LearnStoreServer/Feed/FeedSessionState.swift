/// One subscription's flow control as a value: credit, the read in progress, and what it waits for
/// once it has read everything committed. The NIO handler feeds it events and carries out its actions;
/// it never reads while the client has no credit left or the socket is backed up, so a slow or stopped
/// subscriber costs the server one subscription's buffers and nothing more (FeedSessionStateTests).
struct FeedSessionState: Sendable {
    enum Action: Sendable, Equatable {
        case none
        /// Read at most this many changes and report with ``readFinished(sent:waitForCommit:)``.
        case read(maximumChanges: Int)
        /// Everything committed is sent: call ``commitProgressed()`` once the commit mark reaches this.
        case waitForCommit(UInt64)
    }

    let maximumBatchChanges: Int
    private(set) var credit: Int
    private(set) var reading = false
    private var waitingForCommit = false
    /// Set by a read that reached the end: the commit worth reading again for (nil: read now).
    private var waitingFor: UInt64?
    /// Something to read was announced while a read was in progress: that read may have looked
    /// before it, so its "wait for a commit" must not stand.
    private var announcedDuringRead = false
    private(set) var closed = false

    init(credit: UInt32, maximumBatchChanges: Int) {
        self.credit = Int(credit)
        self.maximumBatchChanges = maximumBatchChanges
    }

    /// FEED_CREDIT: the client can take `more` changes; credit held at once is capped.
    mutating func creditGranted(_ more: UInt32, cap: UInt32) {
        credit = min(Int(cap), credit + Int(more))
    }

    mutating func readFinished(sent: Int, waitForCommit lsn: UInt64?) {
        reading = false
        credit -= sent
        waitingFor = announcedDuringRead ? nil : lsn
        announcedDuringRead = false
    }

    mutating func commitProgressed() { waitingForCommit = false }

    /// Something the commit mark does not show changed what there is to send: a restore (not in the
    /// log), or a write held in memory after the commit passed it.
    mutating func somethingToRead() {
        waitingFor = nil
        if reading { announcedDuringRead = true }
    }

    mutating func close() { closed = true }

    mutating func nextAction(writable: Bool, committedLSN: UInt64) -> Action {
        guard !closed, !reading, credit > 0, writable else { return .none }
        if let waitingFor, committedLSN < waitingFor {
            guard !waitingForCommit else { return .none }
            waitingForCommit = true
            return .waitForCommit(waitingFor)
        }
        reading = true
        return .read(maximumChanges: min(credit, maximumBatchChanges))
    }
}
