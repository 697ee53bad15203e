import LearnStoreModel

/// Which primary wrote which LSNs: each epoch with the first LSN written in it, ascending. A primary
/// starts a new epoch when it is promoted; every node keeps the history it has seen, so that a node
/// that wrote in an epoch the cluster later left behind drops exactly the records written after that
/// epoch ended elsewhere (the leader-epoch scheme of Kafka's KIP-101), and never an acknowledged one.
public struct EpochHistory: Sendable, Hashable {
    /// Ascending by epoch and by first LSN; never empty.
    public private(set) var starts: [(epoch: UInt64, firstLSN: UInt64)]
    /// The highest epoch this node has promised exists (a promotion asked it before it began):
    /// promotions never reuse an epoch number, because each asks enough nodes that the next one
    /// hears of it, and one picks an epoch above every promise it hears of.
    public private(set) var promised: UInt64
    /// The promotion `promised` was promised to; nil when it came from an epoch this node learned or
    /// began. Two promotions that picked the same epoch concurrently cannot both be promised it.
    public private(set) var promisedTo: UUID16?

    public static func == (lhs: EpochHistory, rhs: EpochHistory) -> Bool {
        lhs.promised == rhs.promised && lhs.promisedTo == rhs.promisedTo
            && lhs.starts.elementsEqual(rhs.starts) { $0.epoch == $1.epoch && $0.firstLSN == $1.firstLSN }
    }

    public func hash(into hasher: inout Hasher) {
        for start in starts {
            hasher.combine(start.epoch)
            hasher.combine(start.firstLSN)
        }
        hasher.combine(promised)
        hasher.combine(promisedTo)
    }

    /// A node that never saw a promotion: epoch 1 from the first LSN.
    public init() {
        starts = [(1, 1)]
        promised = 1
    }

    public init(starts: [(epoch: UInt64, firstLSN: UInt64)], promised: UInt64 = 0, promisedTo: UUID16? = nil) throws(Invalid) {
        guard let first = starts.first else { throw Invalid(description: "an epoch history holds at least one epoch") }
        var previous = first
        for start in starts.dropFirst() {
            guard start.epoch > previous.epoch, start.firstLSN >= previous.firstLSN else {
                throw Invalid(description: "epoch \(start.epoch) from LSN \(start.firstLSN) does not follow epoch \(previous.epoch) from LSN \(previous.firstLSN)")
            }
            previous = start
        }
        self.starts = starts
        let current = starts[starts.count - 1].epoch
        self.promised = max(promised, current)
        self.promisedTo = promised > current ? promisedTo : nil
    }

    public enum PromiseAnswer: Sendable, Equatable {
        /// Promised; `raised` when the promise is new (it must be made durable before the answer).
        case granted(raised: Bool)
        /// This node promised `epoch` or a higher one to another promotion.
        case refused
    }

    /// Promises `promotion` that `epoch` may begin (a promotion is under way). Granted when `epoch` is
    /// above every epoch promised, or repeats this node's promise of `epoch` to the same promotion (a
    /// retry); refused otherwise. A promotion needs promises from more than half of the nodes, so of
    /// two that picked the same epoch at most one gets them.
    public mutating func promise(_ epoch: UInt64, to promotion: UUID16) -> PromiseAnswer {
        Self.promise(epoch, to: promotion, promised: &promised, promisedTo: &promisedTo)
    }

    /// The rule of ``promise(_:to:)`` on a promise kept elsewhere (the control plane's simulated nodes).
    public static func promise(_ epoch: UInt64, to promotion: UUID16, promised: inout UInt64, promisedTo: inout UUID16?) -> PromiseAnswer {
        if epoch > promised {
            promised = epoch
            promisedTo = promotion
            return .granted(raised: true)
        }
        return epoch == promised && promisedTo == promotion ? .granted(raised: false) : .refused
    }

    /// Keeps `other`'s promise where it is the higher: a promise made while this history replaced it.
    public mutating func keepPromise(of other: EpochHistory) {
        guard other.promised >= promised else { return }
        if other.promised > promised || promisedTo == nil { promisedTo = other.promisedTo }
        promised = other.promised
    }

    /// The primary's epochs with the higher of both promises: what a follower keeps of its primary's.
    public func adopting(_ primary: EpochHistory) -> EpochHistory {
        var adopted = primary
        adopted.keepPromise(of: self)
        return adopted
    }

    public struct Invalid: Error, Sendable, CustomStringConvertible, Equatable {
        public var description: String
    }

    public var currentEpoch: UInt64 { starts[starts.count - 1].epoch }

    /// The epoch in which `lsn` was written: the newest epoch begun at or before it.
    public func epoch(of lsn: UInt64) -> UInt64 {
        starts.last { $0.firstLSN <= lsn }?.epoch ?? starts[0].epoch
    }

    /// The epoch a log holding every record up to `lastLSN` is in: the newest epoch whose first LSN
    /// it reaches. With the last LSN it ranks logs for a promotion (newest epoch first, then length),
    /// as Raft compares logs. A node that holds every record before an epoch's first LSN holds the log
    /// that epoch's primary started with: it learned the epoch only from that primary (or became it),
    /// after checking its log agreed with the primary's. So it ranks in that epoch before any record
    /// of it exists, which is what lets a new primary commit its inherited tail once its in-sync
    /// replicas hold it (``ReplicaSetState``); a node holding less ranks in the epoch before.
    public func logEpoch(through lastLSN: UInt64) -> UInt64 {
        epoch(of: lastLSN &+ 1)
    }

    /// The last LSN of `epoch` in this history: the LSN before the next epoch began (`lastLSN` for the
    /// current one). nil if this history never had `epoch` and none before it either.
    public func lastLSN(ofEpoch epoch: UInt64, lastLSN: UInt64) -> UInt64? {
        guard epoch >= starts[0].epoch else { return nil }
        guard let next = starts.first(where: { $0.epoch > epoch }) else { return lastLSN }
        return next.firstLSN - 1
    }

    /// Where a follower with history `follower`, holding records up to `lastLSN`, continues this
    /// history, whose own log holds records up to `localLastLSN`. An epoch is identified by its number
    /// and its first LSN together, so two promotions that picked the same number never pass for one
    /// history. The two histories agree up to their last common epoch; the follower's records are this
    /// log's up to where that epoch ends in either history. It continues after its `lastLSN`, or after
    /// that end, cutting what follows (`truncate`). nil when the follower knows (or has promised) a newer
    /// epoch than this history's current one: this node is the stale one.
    public func followPoint(follower: EpochHistory, lastLSN: UInt64, localLastLSN: UInt64) -> (startAfter: UInt64, truncate: Bool)? {
        guard follower.currentEpoch <= currentEpoch, follower.promised <= currentEpoch else { return nil }
        var common = -1
        while common + 1 < starts.count, common + 1 < follower.starts.count,
            starts[common + 1].epoch == follower.starts[common + 1].epoch, starts[common + 1].firstLSN == follower.starts[common + 1].firstLSN
        {
            common += 1
        }
        guard common >= 0 else { return (0, lastLSN > 0) }
        let endHere = common + 1 < starts.count ? starts[common + 1].firstLSN - 1 : localLastLSN
        let endThere = common + 1 < follower.starts.count ? follower.starts[common + 1].firstLSN - 1 : lastLSN
        let shared = min(endHere, endThere, lastLSN)
        return (shared, lastLSN > shared)
    }

    /// Starts `epoch` at `firstLSN` (a promotion, or an epoch learned from a primary).
    public mutating func begin(epoch: UInt64, firstLSN: UInt64) throws(Invalid) {
        let current = starts[starts.count - 1]
        guard epoch > current.epoch else { throw Invalid(description: "epoch \(epoch) is not newer than the current epoch \(current.epoch)") }
        guard firstLSN >= current.firstLSN else {
            throw Invalid(description: "epoch \(epoch) cannot start at LSN \(firstLSN), before epoch \(current.epoch) began at LSN \(current.firstLSN)")
        }
        starts.append((epoch, firstLSN))
        // Once the epoch has begun its promise is spent: promotions pick epochs above it.
        if epoch >= promised {
            promised = epoch
            promisedTo = nil
        }
    }

    /// Forgets the epochs that began after `lsn` (a node dropping records a newer primary never had).
    public mutating func truncate(after lsn: UInt64) {
        while starts.count > 1, starts[starts.count - 1].firstLSN > lsn { starts.removeLast() }
    }

    /// The epochs after `epoch`, for a follower that knows up to it.
    public func epochs(after epoch: UInt64) -> [(epoch: UInt64, firstLSN: UInt64)] {
        starts.filter { $0.epoch > epoch }
    }

    // MARK: the file

    public static let fileName = "epochs"
    static let header = "learnstore-epochs 1"

    /// Text: a header line, then `<epoch> <first_lsn>` per line, then `promised <epoch>`, followed by
    /// ` <promotion id>` when the promise was made to a promotion.
    public var encoded: [UInt8] {
        var text = Self.header + "\n"
        for start in starts { text += "\(start.epoch) \(start.firstLSN)\n" }
        text += "promised \(promised)" + (promisedTo.map { " \($0)" } ?? "") + "\n"
        return Array(text.utf8)
    }

    public static func decode(_ bytes: [UInt8]) throws(Invalid) -> EpochHistory {
        guard bytes.count <= 1 << 20 else { throw Invalid(description: "\(fileName) is larger than 1 MiB") }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first == Substring(header), lines.last == "" else {
            throw Invalid(description: "\(fileName) does not start with '\(header)' or is cut short")
        }
        var starts: [(epoch: UInt64, firstLSN: UInt64)] = []
        var promised: UInt64 = 0
        var promisedTo: UUID16?
        let body = Array(lines.dropFirst().dropLast())
        for (index, line) in body.enumerated() {
            let parts = line.split(separator: " ")
            if index == body.count - 1, parts.count == 2 || parts.count == 3, parts[0] == "promised" {
                guard let value = UInt64(parts[1]), value <= UInt64(Int64.max) else {
                    throw Invalid(description: "\(fileName) line \(index + 2): the promised epoch is not a number up to 2^63 - 1")
                }
                promised = value
                if parts.count == 3 {
                    guard let promotion = UUID16(parts[2]) else { throw Invalid(description: "\(fileName) line \(index + 2): '\(parts[2])' is not a promotion id") }
                    promisedTo = promotion
                }
                continue
            }
            guard parts.count == 2, let epoch = UInt64(parts[0]), let first = UInt64(parts[1]), epoch >= 1, first >= 1,
                epoch <= UInt64(Int64.max), first <= UInt64(Int64.max)
            else { throw Invalid(description: "\(fileName) line \(index + 2) is not '<epoch> <first_lsn>'") }
            starts.append((epoch, first))
        }
        return try EpochHistory(starts: starts, promised: promised, promisedTo: promisedTo)
    }

    /// The history in `directory`, or a new one when there is none yet.
    public static func read(directory: String, _ fs: any FileSystem) throws -> EpochHistory {
        let path = directory + "/" + fileName
        guard fs.exists(path) else { return EpochHistory() }
        return try decode(try fs.readWholeFile(path))
    }

    /// Replaces the file durably (a temporary file, synced, renamed, the directory synced) before any
    /// write of the new epoch may be acknowledged.
    public func write(directory: String, _ fs: any FileSystem) throws(StorageError) {
        try fs.replaceDurably(directory + "/" + Self.fileName, with: encoded, directory: directory)
    }
}
