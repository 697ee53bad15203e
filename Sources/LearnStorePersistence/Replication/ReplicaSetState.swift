import DequeModule

/// A primary's view of its replicas as one pure state machine: no sockets, no clock of its own.
///
/// It decides two things from the events the shells feed it (a replica connected, acknowledged,
/// went away; the local log committed; time passed):
/// - the **in-sync set**. A replica that disconnects leaves it at once. A replica's lag is how long ago the oldest write it has not made durable
///   was committed on the primary. A replica whose lag is under a tenth of the lag limit is
///   *joining*: the commit mark waits for it, and once it holds everything acknowledged so far it is
///   in sync. An in-sync (or joining) replica whose lag reaches the limit leaves the set. With a
///   control plane only the cluster's members may be in it (`eligible`): promotions reach members
///   only, so a write acknowledged by a node that is not one could be missed by all of them.
/// - the **commit mark** clients may be acknowledged up to: under `sync`, the lowest LSN every
///   in-sync or joining replica has durable (and the primary's own), never moving while fewer than
///   `minimumInSync` replicas are in sync; under `async`, the primary's own commit.
///
/// The mark only grows. A replica joins only once it holds every write acknowledged so far, and a
/// write is acknowledged without an in-sync replica only after that replica left the set: so a
/// replica in the set holds every acknowledged write (the promotion rule of docs/REPLICATION.md).
///
/// A new primary's log may end in records no primary acknowledged (its **inherited tail**, above the
/// mark it learned). They count only together, once every in-sync replica has acknowledged the whole
/// tail in this primary's epoch: such a replica adopted the epoch's history before it acknowledged, so
/// a later promotion ranks it as holding this epoch's start and prefers it over any node that holds
/// records of an epoch in between (Raft's rule that a leader commits an older term's entries only
/// through one of its own; docs/REPLICATION.md, "A new primary's inherited tail"). A replica's position counts for the mark
/// only once it has acknowledged on its current stream: before, it may not have recorded the epoch yet.
public struct ReplicaSetState: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        case sync, async
    }

    public struct Configuration: Sendable, Equatable {
        public var mode: Mode
        /// How long an in-sync replica may stay behind the primary's commit before it leaves the set.
        public var lagLimitMilliseconds: Int64
        /// Under `sync`, no write is acknowledged while fewer replicas than this are in sync.
        public var minimumInSync: Int

        public init(mode: Mode = .sync, lagLimitMilliseconds: Int64 = 2_000, minimumInSync: Int = 0) {
            self.mode = mode
            self.lagLimitMilliseconds = lagLimitMilliseconds
            self.minimumInSync = minimumInSync
        }
    }

    public struct Replica: Sendable, Equatable {
        public var nodeID: String
        public var connected: Bool
        /// Every record up to here is durable on the replica.
        public var durableLSN: UInt64
        public var appliedLSN: UInt64
        public var inSync: Bool
        /// Close enough that the commit mark waits for it; in sync once it holds the mark.
        public var joining: Bool
        public var lastHeardMilliseconds: Int64
        /// It acknowledged on its current stream (which it opened after recording this primary's epoch).
        public var acknowledgedOnStream = false
    }

    public let configuration: Configuration
    public private(set) var replicas: [String: Replica] = [:]
    public private(set) var localDurableLSN: UInt64
    public private(set) var commitMark: UInt64
    /// The end of the log this primary started with: above `commitMark`, its inherited tail.
    public let inheritedThroughLSN: UInt64
    /// When the primary committed its recent LSNs: per millisecond, the newest LSN committed in it,
    /// oldest first. A replica's lag is measured from the first entry above its durable LSN.
    private var commitTimes: Deque<(lsn: UInt64, milliseconds: Int64)> = []
    static let commitTimesKept = 65_536

    /// The replicas that may be in sync (nil: every one).
    public private(set) var eligible: Set<String>?

    /// `learnedCommitLSN`: the newest mark this node knows was committed (a replica's primary's mark, a
    /// fenced primary's own; 0 after a start, when it knows none); nil counts the whole log as
    /// committed (no inherited tail).
    public init(configuration: Configuration, localDurableLSN: UInt64, learnedCommitLSN: UInt64? = nil, eligible: Set<String>? = nil) {
        self.configuration = configuration
        self.localDurableLSN = localDurableLSN
        self.eligible = eligible
        inheritedThroughLSN = localDurableLSN
        commitMark = min(learnedCommitLSN ?? localDurableLSN, localDurableLSN)
        advance()
    }

    public var inSyncReplicas: [String] { replicas.values.filter(\.inSync).map(\.nodeID).sorted() }

    // MARK: events

    /// `nodeID` connected holding every record up to `lastLSN`.
    public mutating func connected(_ nodeID: String, lastLSN: UInt64, nowMilliseconds: Int64) {
        var replica = replicas[nodeID] ?? Replica(
            nodeID: nodeID, connected: true, durableLSN: lastLSN, appliedLSN: lastLSN, inSync: false, joining: false,
            lastHeardMilliseconds: nowMilliseconds)
        replica.connected = true
        replica.acknowledgedOnStream = false
        replica.durableLSN = lastLSN
        replica.appliedLSN = min(replica.appliedLSN, lastLSN)
        replica.lastHeardMilliseconds = nowMilliseconds
        replicas[nodeID] = replica
        update(nodeID, nowMilliseconds: nowMilliseconds)
        advance()
    }

    public mutating func acknowledged(_ nodeID: String, durableLSN: UInt64, appliedLSN: UInt64, nowMilliseconds: Int64) {
        guard var replica = replicas[nodeID], replica.connected else { return }
        replica.durableLSN = max(replica.durableLSN, min(durableLSN, localDurableLSN))
        replica.appliedLSN = max(replica.appliedLSN, min(appliedLSN, replica.durableLSN))
        replica.lastHeardMilliseconds = nowMilliseconds
        replica.acknowledgedOnStream = true
        replicas[nodeID] = replica
        update(nodeID, nowMilliseconds: nowMilliseconds)
        advance()
    }

    public mutating func disconnected(_ nodeID: String, nowMilliseconds: Int64) {
        guard var replica = replicas[nodeID] else { return }
        replica.connected = false
        replicas[nodeID] = replica
        update(nodeID, nowMilliseconds: nowMilliseconds)
        advance()
    }

    public mutating func locallyCommitted(through lsn: UInt64, nowMilliseconds: Int64) {
        guard lsn > localDurableLSN else { return }
        localDurableLSN = lsn
        if let last = commitTimes.last, last.milliseconds >= nowMilliseconds {
            commitTimes[commitTimes.count - 1].lsn = lsn
        } else {
            commitTimes.append((lsn, nowMilliseconds))
            if commitTimes.count > Self.commitTimesKept { commitTimes.removeFirst() }
        }
        for nodeID in replicas.keys { update(nodeID, nowMilliseconds: nowMilliseconds) }
        advance()
    }

    /// The cluster's members changed: a replica that is no longer one leaves the in-sync set at once
    /// (returned), one that became one may join.
    @discardableResult
    public mutating func setEligible(_ nodeIDs: Set<String>?, nowMilliseconds: Int64) -> [String] {
        eligible = nodeIDs
        let removed = updateAll(nowMilliseconds: nowMilliseconds)
        advance()
        return removed
    }

    /// The primary keeps the WAL segments a connected replica heard from within the last
    /// `retentionHoldMilliseconds` has not made durable, so retention never takes a record from under
    /// a live stream (such a replica would have to copy the primary). A silent or disconnected replica
    /// holds nothing: it copies the primary if it comes back too late. `.max`: no hold.
    public func retentionHold(nowMilliseconds: Int64) -> UInt64 {
        replicas.values.filter { $0.connected && nowMilliseconds - $0.lastHeardMilliseconds <= Self.retentionHoldMilliseconds }
            .map(\.durableLSN).min() ?? .max
    }

    public static let retentionHoldMilliseconds: Int64 = 10_000

    /// Time passed: replicas behind for longer than the lag limit leave the in-sync set. Returns them.
    @discardableResult
    public mutating func tick(nowMilliseconds: Int64) -> [String] {
        let removed = updateAll(nowMilliseconds: nowMilliseconds)
        trimCommitTimes()
        advance()
        return removed
    }

    /// Applies the rules to every replica; returns those that left the in-sync set.
    private mutating func updateAll(nowMilliseconds: Int64) -> [String] {
        var removed: [String] = []
        for nodeID in replicas.keys {
            let wasInSync = replicas[nodeID]!.inSync
            update(nodeID, nowMilliseconds: nowMilliseconds)
            if wasInSync && !replicas[nodeID]!.inSync { removed.append(nodeID) }
        }
        return removed.sorted()
    }

    // MARK: rules

    /// How long ago the oldest write `durableLSN` lacks was committed (0: it lacks none).
    public func lagMilliseconds(durableLSN: UInt64, nowMilliseconds: Int64) -> Int64 {
        guard durableLSN < localDurableLSN else { return 0 }
        // Entries are few past the lag limit; search from the oldest kept.
        guard let first = commitTimes.first(where: { $0.lsn > durableLSN }) else { return 0 }
        if durableLSN < (commitTimes.first?.lsn ?? 0), commitTimes.count == Self.commitTimesKept {
            // Older than anything kept: at least as old as the oldest entry.
            return max(0, nowMilliseconds - commitTimes[0].milliseconds)
        }
        return max(0, nowMilliseconds - first.milliseconds)
    }

    private mutating func update(_ nodeID: String, nowMilliseconds: Int64) {
        guard var replica = replicas[nodeID] else { return }
        let lag = lagMilliseconds(durableLSN: replica.durableLSN, nowMilliseconds: nowMilliseconds)
        let eligible = self.eligible?.contains(nodeID) ?? true
        if !replica.connected || !eligible || lag >= configuration.lagLimitMilliseconds {
            replica.inSync = false
            replica.joining = false
        } else if !replica.inSync {
            if replica.durableLSN >= commitMark {
                replica.inSync = true
                replica.joining = false
            } else {
                replica.joining = lag * 10 < configuration.lagLimitMilliseconds
            }
        }
        replicas[nodeID] = replica
    }

    private mutating func trimCommitTimes() {
        let oldestNeeded = replicas.values.map(\.durableLSN).min() ?? localDurableLSN
        while commitTimes.count > 1, commitTimes[0].lsn <= oldestNeeded { commitTimes.removeFirst() }
    }

    private mutating func advance() {
        let candidate: UInt64
        switch configuration.mode {
        case .async:
            candidate = localDurableLSN
        case .sync:
            let inSync = replicas.values.filter(\.inSync)
            guard inSync.count >= configuration.minimumInSync else { return }
            candidate = replicas.values.filter { $0.inSync || $0.joining }
                .map { $0.acknowledgedOnStream ? $0.durableLSN : min($0.durableLSN, commitMark) }
                .reduce(localDurableLSN, min)
        }
        // The inherited tail is committed whole or not at all.
        if candidate >= inheritedThroughLSN || commitMark >= inheritedThroughLSN { commitMark = max(commitMark, candidate) }
        // A joining replica that now holds the mark is in sync.
        for (nodeID, replica) in replicas where replica.joining && replica.durableLSN >= commitMark {
            replicas[nodeID]?.joining = false
            replicas[nodeID]?.inSync = true
        }
    }
}
