/// One subscription's flow control as a value: credit, the read in progress, and what it waits for
/// once it has read everything committed. The NIO handler feeds it events and carries out its actions;
/// it never reads while the client has no credit left or the socket is backed up, so a slow or stopped
/// subscriber costs the server one subscription's buffers and nothing more (FeedSessionStateTests).
struct FeedSessionState: Sendable {
    enum Action: Sendable, Equatable {
        case none
        /// Read at most this many changes and report with ``readFinished(sent:wait:)``.
        case read(maximumChanges: Int)
        /// Everything committed is sent: call ``commitProgressed()`` once the commit mark reaches this.
        case waitForCommit(UInt64)
    }

    /// What a read that took everything there is says to wait for.
    enum Wait: Sendable, Equatable {
        /// The commit of this LSN.
        case commit(UInt64)
        /// The tenant's next write, which calls ``somethingToRead()``.
        case write
    }

    let maximumBatchChanges: Int
    private(set) var credit: Int
    private(set) var reading = false
    private var waitingForCommit = false
    /// Set by a read that reached the end: what is worth reading again for (nil: read now).
    private var waitingFor: Wait?
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

    mutating func readFinished(sent: Int, wait: Wait?) {
        reading = false
        credit -= sent
        waitingFor = announcedDuringRead ? nil : wait
        announcedDuringRead = false
    }

    mutating func commitProgressed() { waitingForCommit = false }

    /// Something the commit mark does not show changed what there is to send: a restore (not in the
    /// log), a write held in memory after the commit passed it, or the write ``Wait/write`` waits for.
    mutating func somethingToRead() {
        waitingFor = nil
        if reading { announcedDuringRead = true }
    }

    mutating func close() { closed = true }

    mutating func nextAction(writable: Bool, committedLSN: UInt64) -> Action {
        guard !closed, !reading, credit > 0, writable else { return .none }
        switch waitingFor {
        case .write?:
            return .none
        case .commit(let lsn)? where committedLSN < lsn:
            guard !waitingForCommit else { return .none }
            waitingForCommit = true
            return .waitForCommit(lsn)
        case .commit?, nil:
            break
        }
        reading = true
        return .read(maximumChanges: min(credit, maximumBatchChanges))
    }
}
