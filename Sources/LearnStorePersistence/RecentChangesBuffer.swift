import LearnStoreEngine

/// One tenant's newest writes, in LSN order, as the log took them: what a caught-up subscriber reads
/// instead of the log's files. Pure bookkeeping (RecentChangesBufferTests): it holds at most
/// `maximumRecords` records, and says from which sequence on it holds every write, so a reader knows
/// whether it can rely on it or must read the log.
struct RecentChangesBuffer: Sendable {
    /// Every write of the tenant with a higher sequence is held; nil until the tenant first said
    /// where it stands (``start(afterSequence:)``).
    private(set) var completeAfterSequence: UInt64?
    let maximumRecords: Int
    private var entries: [WALRecord] = []
    /// `entries[head...]` are held; the prefix is dropped storage, compacted now and then.
    private var head = 0
    private(set) var heldRecords = 0

    init(maximumRecords: Int) {
        self.maximumRecords = maximumRecords
    }

    var count: Int { entries.count - head }

    /// The tenant is at `sequence`: every later write will be appended.
    mutating func start(afterSequence sequence: UInt64) {
        if completeAfterSequence == nil { completeAfterSequence = sequence }
    }

    /// Whether every write after `sequence` is held (or was released after every reader passed it:
    /// a reader at `sequence` has seen those).
    func holdsEverything(after sequence: UInt64) -> Bool {
        guard let completeAfterSequence else { return false }
        return sequence >= completeAfterSequence
    }

    mutating func append(_ record: WALRecord) {
        let records = Self.recordCount(record.entry)
        if records > maximumRecords {
            // Too large to hold: readers at or before it read the log.
            drop(upTo: entries.count)
            raiseCompleteAfter(record.entry.sequence)
            return
        }
        entries.append(record)
        heldRecords += records
        while heldRecords > maximumRecords { drop(upTo: head + 1) }
    }

    /// Drops every write up to `lsn` (each reader has passed it).
    mutating func release(through lsn: UInt64) {
        var end = head
        while end < entries.count, entries[end].lsn <= lsn { end += 1 }
        drop(upTo: end)
    }

    struct Slice {
        /// The held writes above the reader's position up to the commit mark, at most the maximum.
        var records: ArraySlice<WALRecord>
        /// The maximum stopped the read: more committed writes are held.
        var more: Bool
        /// The first held write above the commit mark (its commit is the next one worth waiting for).
        var firstUncommittedLSN: UInt64?
    }

    /// What a reader that has passed `afterLSN` can take, with the commit mark at `committed`.
    func read(afterLSN: UInt64, through committed: UInt64, maximum: Int) -> Slice {
        var start = head
        var upper = entries.count
        while start < upper {
            let middle = (start + upper) / 2
            if entries[middle].lsn <= afterLSN { start = middle + 1 } else { upper = middle }
        }
        var end = start
        while end < entries.count, end - start < maximum, entries[end].lsn <= committed { end += 1 }
        let following = end < entries.count ? entries[end].lsn : nil
        return Slice(records: entries[start..<end], more: following.map { $0 <= committed } ?? false,
                     firstUncommittedLSN: following.flatMap { $0 > committed ? $0 : nil })
    }

    private mutating func drop(upTo end: Int) {
        guard end > head else { return }
        for index in head..<end {
            heldRecords -= Self.recordCount(entries[index].entry)
            raiseCompleteAfter(entries[index].entry.sequence)
        }
        head = end
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 && head * 2 >= entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }

    private mutating func raiseCompleteAfter(_ sequence: UInt64) {
        completeAfterSequence = max(completeAfterSequence ?? 0, sequence)
    }

    /// An entry's weight against the bound: its records (a bulk import holds many), at least one.
    static func recordCount(_ entry: LogEntry) -> Int {
        var count = 0
        for mutation in entry.mutations {
            switch mutation {
            case .putRecords(let records): count += records.count
            case .purgeRecords(let ids): count += ids.count / 16
            case .outcomes(let rows): count += rows.count
            default: break
            }
        }
        return max(1, count)
    }
}
