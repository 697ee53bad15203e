/// One subscription's flow control as a value: credit, the read in progress, and whether it waits for
/// the next commit. The NIO handler feeds it events and carries out its actions; it never reads the
/// WAL while the client has no credit left or the socket is backed up, so a slow or stopped subscriber
/// costs the server one subscription's buffers and nothing more (FeedSessionStateTests).
struct FeedSessionState: Sendable {
    enum Action: Sendable, Equatable {
        case none
        /// Read at most this many changes and report with ``readFinished(sent:caughtUpAt:)``.
        case read(maximumChanges: Int)
        /// Everything committed is sent: call ``commitProgressed()`` once the commit mark passes this.
        case waitForCommit(UInt64)
    }

    let maximumBatchChanges: Int
    private(set) var credit: Int
    private(set) var reading = false
    private var waitingForCommit = false
    /// The commit mark the last read reached the end of (nil: there may be more to read now).
    private var caughtUpAt: UInt64?
    private(set) var closed = false

    init(credit: UInt32, maximumBatchChanges: Int) {
        self.credit = Int(credit)
        self.maximumBatchChanges = maximumBatchChanges
    }

    /// FEED_CREDIT: the client can take `more` changes; credit held at once is capped.
    mutating func creditGranted(_ more: UInt32, cap: UInt32) {
        credit = min(Int(cap), credit + Int(more))
    }

    mutating func readFinished(sent: Int, caughtUpAt: UInt64?) {
        reading = false
        credit -= sent
        self.caughtUpAt = caughtUpAt
    }

    mutating func commitProgressed() { waitingForCommit = false }

    /// Something not in the log changed what there is to send (a restore was announced).
    mutating func somethingToRead() { caughtUpAt = nil }

    mutating func close() { closed = true }

    mutating func nextAction(writable: Bool, committedLSN: UInt64) -> Action {
        guard !closed, !reading, credit > 0, writable else { return .none }
        if let caughtUpAt, committedLSN <= caughtUpAt {
            guard !waitingForCommit else { return .none }
            waitingForCommit = true
            return .waitForCommit(caughtUpAt + 1)
        }
        reading = true
        return .read(maximumChanges: min(credit, maximumBatchChanges))
    }
}
