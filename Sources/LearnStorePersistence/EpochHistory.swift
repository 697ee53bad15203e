import LearnStoreModel

/// Which primary wrote which LSNs: each epoch with the first LSN written in it, ascending. A primary
/// starts a new epoch when it is promoted; every node keeps the history it has seen, so that a node
/// that wrote in an epoch the cluster later left behind drops exactly the records written after that
/// epoch ended elsewhere (the leader-epoch scheme of Kafka's KIP-101), and never an acknowledged one.
public struct EpochHistory: Sendable, Hashable {
    /// Ascending by epoch and by first LSN; never empty.
    public private(set) var starts: [(epoch: UInt64, firstLSN: UInt64)]

    public static func == (lhs: EpochHistory, rhs: EpochHistory) -> Bool {
        lhs.starts.elementsEqual(rhs.starts) { $0.epoch == $1.epoch && $0.firstLSN == $1.firstLSN }
    }

    public func hash(into hasher: inout Hasher) {
        for start in starts {
            hasher.combine(start.epoch)
            hasher.combine(start.firstLSN)
        }
    }

    /// A node that never saw a promotion: epoch 1 from the first LSN.
    public init() {
        starts = [(1, 1)]
    }

    public init(starts: [(epoch: UInt64, firstLSN: UInt64)]) throws(Invalid) {
        guard let first = starts.first else { throw Invalid(description: "an epoch history holds at least one epoch") }
        var previous = first
        for start in starts.dropFirst() {
            guard start.epoch > previous.epoch, start.firstLSN >= previous.firstLSN else {
                throw Invalid(description: "epoch \(start.epoch) from LSN \(start.firstLSN) does not follow epoch \(previous.epoch) from LSN \(previous.firstLSN)")
            }
            previous = start
        }
        self.starts = starts
    }

    public struct Invalid: Error, Sendable, CustomStringConvertible, Equatable {
        public var description: String
    }

    public var currentEpoch: UInt64 { starts[starts.count - 1].epoch }

    /// The last LSN of `epoch` in this history: the LSN before the next epoch began (`lastLSN` for the
    /// current one). nil if this history never had `epoch` and none before it either.
    public func lastLSN(ofEpoch epoch: UInt64, lastLSN: UInt64) -> UInt64? {
        guard epoch >= starts[0].epoch else { return nil }
        guard let next = starts.first(where: { $0.epoch > epoch }) else { return lastLSN }
        return next.firstLSN - 1
    }

    /// Starts `epoch` at `firstLSN` (a promotion, or an epoch learned from a primary).
    public mutating func begin(epoch: UInt64, firstLSN: UInt64) throws(Invalid) {
        let current = starts[starts.count - 1]
        guard epoch > current.epoch else { throw Invalid(description: "epoch \(epoch) is not newer than the current epoch \(current.epoch)") }
        guard firstLSN >= current.firstLSN else {
            throw Invalid(description: "epoch \(epoch) cannot start at LSN \(firstLSN), before epoch \(current.epoch) began at LSN \(current.firstLSN)")
        }
        starts.append((epoch, firstLSN))
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

    /// Text: a header line, then `<epoch> <first_lsn>` per line.
    public var encoded: [UInt8] {
        var text = Self.header + "\n"
        for start in starts { text += "\(start.epoch) \(start.firstLSN)\n" }
        return Array(text.utf8)
    }

    public static func decode(_ bytes: [UInt8]) throws(Invalid) -> EpochHistory {
        guard bytes.count <= 1 << 20 else { throw Invalid(description: "\(fileName) is larger than 1 MiB") }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.first == Substring(header), lines.last == "" else {
            throw Invalid(description: "\(fileName) does not start with '\(header)' or is cut short")
        }
        var starts: [(epoch: UInt64, firstLSN: UInt64)] = []
        for (index, line) in lines.dropFirst().dropLast().enumerated() {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let epoch = UInt64(parts[0]), let first = UInt64(parts[1]), epoch >= 1, first >= 1,
                epoch <= UInt64(Int64.max), first <= UInt64(Int64.max)
            else { throw Invalid(description: "\(fileName) line \(index + 2) is not '<epoch> <first_lsn>'") }
            starts.append((epoch, first))
        }
        return try EpochHistory(starts: starts)
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
