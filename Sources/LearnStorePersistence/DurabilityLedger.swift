import LearnStoreModel

/// The durability bookkeeping of the write-ahead log as one pure state machine: no files, no threads,
/// no clock. The WAL (its writer thread and the event loops that write inline), the commit tracker, the
/// tenants' rollbacks and snapshot retention are shells that feed it events and carry out its answers.
///
/// It owns:
/// - LSN assignment, and for every LSN not yet resolved the tenant that wrote it;
/// - commit and failure as exact LSN ranges: an LSN is durable only if it is at or below the resolved
///   mark and in no failed range, so a commit after a failure never makes a failed write look durable;
/// - the rollback barrier: a tenant whose writes failed gets no new LSN until its rollback is
///   confirmed, so no tenant sequence number is reused and no later write is undone by a stale rollback;
/// - which tenants have records in which WAL segment (with each one's newest LSN there), and each
///   tenant's snapshot coverage; from those two, which segments retention may delete. A tenant with no
///   record in a segment never holds it, and nothing is deleted on a guess;
/// - the change feed's window: the newest segments (by bytes and by age) stay for subscribers whatever
///   the snapshots cover, and ``feedFloorLSN`` says from where the kept segments hold every record.
public struct DurabilityLedger: Sendable {
    public enum WriteState: Sendable, Equatable {
        case pending, durable, failed
    }

    /// Why an LSN could not be given.
    public enum Refusal: Error, Sendable, Equatable {
        case storageFailing(String)
        case rollingBack(tenant: String)
        /// A replicated write's LSN is not above the last one given.
        case outOfOrder(lsn: UInt64, next: UInt64)
    }

    /// What the shells must do after a failure.
    public struct Rollback: Sendable, Equatable {
        public var tenant: String
        public var lsns: ClosedRange<UInt64>

        public init(tenant: String, lsns: ClosedRange<UInt64>) {
            self.tenant = tenant
            self.lsns = lsns
        }
    }

    public private(set) var nextLSN: UInt64
    /// Every LSN at or below this is resolved: durable, or in `failedRanges`.
    public private(set) var resolvedThrough: UInt64
    /// Failed LSNs, exact, ascending and disjoint.
    public private(set) var failedRanges: [ClosedRange<UInt64>] = []
    /// Appends are refused while the storage is failing (until it accepts a write and a sync again).
    public private(set) var storageFailure: String?
    /// Failed LSNs whose bytes were written before their sync failed: until the storage recovers (and
    /// the log has wiped and synced them away), a crash may bring them back.
    public private(set) var uncertainFailures: [ClosedRange<UInt64>] = []
    /// Tenants with failed writes whose undo has not been confirmed, with the span of those LSNs.
    public private(set) var awaitingRollback: [String: ClosedRange<UInt64>] = [:]
    /// Unresolved LSNs, their tenants and the tenant sequences they carry, oldest first.
    private var unresolved: [(lsn: UInt64, tenant: String, sequence: UInt64)] = []
    private var unresolvedStart = 0
    /// WAL segments by first LSN, ascending, each with its tenants' newest LSN in it.
    public private(set) var segments: [Segment] = []
    /// Per tenant, the LSN its oldest kept snapshot covers: none of its records up to there is needed.
    public private(set) var snapshotCoverage: [String: UInt64] = [:]

    /// How much WAL the change feed keeps whatever the snapshots cover.
    public let feedRetention: FeedRetention

    /// Segments holding a record above this LSN are kept: a connected replica has not yet made them
    /// durable (``ReplicaSetState/retentionHold(nowMilliseconds:)``). `.max`: no hold.
    public var replicaHoldLSN: UInt64 = .max

    public struct Segment: Sendable, Equatable {
        public var firstLSN: UInt64
        public var newestLSNByTenant: [String: UInt64]
        /// Per tenant, the lowest and highest sequence of its records here (the change feed's index).
        public var sequencesByTenant: [String: ClosedRange<UInt64>]
        /// Bytes from the start of the file through the end of the last write (the header's, for none).
        public var writtenBytes: Int
        /// The newest LSN written to it (0: none yet).
        public var lastLSN: UInt64
        /// Its size on disk (preallocated: the segment size, or more for an oversized write).
        public var bytes: Int
        /// When it was created (its header's time): the end of the previous segment's writes.
        public var openedAtMilliseconds: Int64

        public init(firstLSN: UInt64, newestLSNByTenant: [String: UInt64] = [:], sequencesByTenant: [String: ClosedRange<UInt64>] = [:],
                    lastLSN: UInt64? = nil, writtenBytes: Int = WALSegmentHeader.size, bytes: Int = 0, openedAtMilliseconds: Int64 = 0) {
            self.firstLSN = firstLSN
            self.newestLSNByTenant = newestLSNByTenant
            self.sequencesByTenant = sequencesByTenant
            self.writtenBytes = writtenBytes
            self.lastLSN = lastLSN ?? newestLSNByTenant.values.max() ?? 0
            self.bytes = bytes
            self.openedAtMilliseconds = openedAtMilliseconds
        }
    }

    /// A ledger resuming after recovery: `nextLSN` is the first free LSN (everything below is durable),
    /// `segments` what recovery found in the WAL, `snapshotCoverage` each tenant's oldest kept snapshot.
    public init(nextLSN: UInt64, segments: [Segment] = [], snapshotCoverage: [String: UInt64] = [:],
                feedRetention: FeedRetention = .none) {
        precondition(nextLSN >= 1)
        self.nextLSN = nextLSN
        self.resolvedThrough = nextLSN - 1
        self.segments = segments
        self.snapshotCoverage = snapshotCoverage
        self.feedRetention = feedRetention
    }

    // MARK: appending

    /// Gives the next LSN to a write of `tenant` (its `sequence`-th change), or says why it cannot be
    /// written now.
    public mutating func append(tenant: String, sequence: UInt64 = 0) -> Result<UInt64, Refusal> {
        if let storageFailure { return .failure(.storageFailing(storageFailure)) }
        if awaitingRollback[tenant] != nil { return .failure(.rollingBack(tenant: tenant)) }
        let lsn = nextLSN
        nextLSN += 1
        unresolved.append((lsn, tenant, sequence))
        return .success(lsn)
    }

    /// Gives `lsn`, chosen by a primary, to a replicated write of `tenant`. LSNs only grow: a replica
    /// keeps its primary's numbering, gaps included (the primary's failed writes), so a position in
    /// one node's log is the same position in every other's.
    public mutating func append(tenant: String, sequence: UInt64, at lsn: UInt64) -> Result<UInt64, Refusal> {
        guard lsn >= nextLSN else { return .failure(.outOfOrder(lsn: lsn, next: nextLSN)) }
        if let storageFailure { return .failure(.storageFailing(storageFailure)) }
        if awaitingRollback[tenant] != nil { return .failure(.rollingBack(tenant: tenant)) }
        // LSNs skipped here hold nothing; the commit of `lsn` resolves them with it.
        nextLSN = lsn
        return append(tenant: tenant, sequence: sequence)
    }

    /// A new segment of `bytes` starts at `firstLSN`, created at `openedAtMilliseconds`; writes from
    /// now on go to it.
    public mutating func segmentOpened(firstLSN: UInt64, bytes: Int = 0, openedAtMilliseconds: Int64 = 0) {
        if let last = segments.last, last.firstLSN == firstLSN { return }
        segments.append(Segment(firstLSN: firstLSN, bytes: bytes, openedAtMilliseconds: openedAtMilliseconds))
    }

    /// The records up to `last` reached the segment being written (not yet durable), which now has
    /// `writtenBytes` bytes: it holds records of their tenants. Called before their commit, while they
    /// are still unresolved.
    public mutating func written(through last: UInt64, writtenBytes: Int? = nil) {
        guard !segments.isEmpty else { return }
        let current = segments.count - 1
        var index = unresolvedStart
        while index < unresolved.count, unresolved[index].lsn <= last {
            let entry = unresolved[index]
            if entry.lsn > attributedThrough {
                segments[current].newestLSNByTenant[entry.tenant] = entry.lsn
                let known = segments[current].sequencesByTenant[entry.tenant]
                segments[current].sequencesByTenant[entry.tenant] =
                    min(known?.lowerBound ?? entry.sequence, entry.sequence)...max(known?.upperBound ?? entry.sequence, entry.sequence)
            }
            index += 1
        }
        segments[current].lastLSN = max(segments[current].lastLSN, last)
        if let writtenBytes { segments[current].writtenBytes = writtenBytes }
        attributedThrough = max(attributedThrough, last)
    }

    /// The newest LSN whose record was attributed to a segment.
    private var attributedThrough: UInt64 = 0

    // MARK: commit and failure

    /// Every LSN up to `lsn` that has not failed is durable (under the log's fsync policy).
    public mutating func committed(through lsn: UInt64) {
        guard lsn > resolvedThrough else { return }
        resolvedThrough = min(lsn, nextLSN - 1)
        dropResolved()
    }

    /// The writes `lsns` (and every later unresolved one) could not be made durable. Returns the
    /// rollbacks to run: per tenant, the span of its failed LSNs. Appends are refused until
    /// `storageRecovered`, and each tenant's until its `rollbackDone`.
    public mutating func writeFailed(from first: UInt64, reason: String, bytesWritten: Bool = false) -> [Rollback] {
        let last = nextLSN - 1
        let start = max(first, resolvedThrough + 1)
        guard start <= last else {
            storageFailure = reason
            return []
        }
        var spans: [String: ClosedRange<UInt64>] = [:]
        for entry in unresolved[unresolvedStart...] where entry.lsn >= start {
            spans[entry.tenant] = (spans[entry.tenant]?.lowerBound ?? entry.lsn)...entry.lsn
        }
        let range = start...last
        if bytesWritten { uncertainFailures.append(range) }
        if let previous = failedRanges.last, previous.upperBound + 1 == range.lowerBound {
            failedRanges[failedRanges.count - 1] = previous.lowerBound...range.upperBound
        } else {
            failedRanges.append(range)
        }
        // Writes below `start` that were still unresolved were written before the failure; they
        // resolve with the next commit.
        resolvedThrough = max(resolvedThrough, last)
        storageFailure = reason
        for (tenant, span) in spans {
            let merged = awaitingRollback[tenant].map { min($0.lowerBound, span.lowerBound)...max($0.upperBound, span.upperBound) } ?? span
            awaitingRollback[tenant] = merged
        }
        dropResolved()
        return spans.map { Rollback(tenant: $0.key, lsns: $0.value) }.sorted { $0.lsns.lowerBound < $1.lsns.lowerBound }
    }

    /// A periodic sync failed: writes already acknowledged under a relaxed policy may not be durable,
    /// so new ones are refused until the storage recovers. Nothing is rolled back.
    public mutating func syncFailed(reason: String) {
        storageFailure = reason
    }

    /// The failed writes' bytes were wiped: the segment being written ends at `writtenBytes` again.
    public mutating func failedBytesWiped(writtenBytes: Int) {
        guard !segments.isEmpty else { return }
        segments[segments.count - 1].writtenBytes = writtenBytes
    }

    /// The storage accepted a write and a sync again.
    public mutating func storageRecovered() {
        storageFailure = nil
        uncertainFailures.removeAll()
    }

    /// `tenant` has undone its failed writes; it may write again.
    public mutating func rollbackDone(tenant: String) {
        awaitingRollback[tenant] = nil
    }

    /// The commit mark the log shows its readers: the resolved mark, held below the first failed write
    /// whose tenant has not undone it yet. A failure becomes visible (its error sent, later reads
    /// released) only once the failed writes are gone from memory, so no read can observe them.
    public var visibleThrough: UInt64 {
        guard let earliest = awaitingRollback.values.map(\.lowerBound).min() else { return resolvedThrough }
        return min(resolvedThrough, earliest - 1)
    }

    public func state(of lsn: UInt64) -> WriteState {
        if lsn > resolvedThrough { return .pending }
        return isFailed(lsn) ? .failed : .durable
    }

    public func isFailed(_ lsn: UInt64) -> Bool {
        // Failed ranges are few and ascending: search from the newest.
        for range in failedRanges.reversed() {
            if range.contains(lsn) { return true }
            if range.upperBound < lsn { return false }
        }
        return false
    }

    private mutating func dropResolved() {
        while unresolvedStart < unresolved.count, unresolved[unresolvedStart].lsn <= resolvedThrough { unresolvedStart += 1 }
        if unresolvedStart > 1024 && unresolvedStart * 2 > unresolved.count {
            unresolved.removeFirst(unresolvedStart)
            unresolvedStart = 0
        }
    }

    // MARK: snapshots and retention

    /// A snapshot of `tenant` is durable, and its oldest kept snapshot covers its writes up to
    /// `oldestKeptLSN`.
    public mutating func snapshotsKept(tenant: String, oldestKeptLSN: UInt64) {
        snapshotCoverage[tenant] = oldestKeptLSN
    }

    /// Segments that no tenant needs any more: every tenant with records in one has a kept snapshot
    /// covering its newest record there, and it is outside the change feed's window at `nowMilliseconds`.
    /// The segment being written is never removable.
    public func removableSegments(nowMilliseconds: Int64 = 0) -> [UInt64] {
        guard segments.count > 1 else { return [] }
        let feedKeepsFrom = feedWindowStart(nowMilliseconds: nowMilliseconds)
        var removable: [UInt64] = []
        for (index, segment) in segments.dropLast().enumerated() where index < feedKeepsFrom && segment.lastLSN <= replicaHoldLSN {
            let needed = segment.newestLSNByTenant.contains { tenant, newest in (snapshotCoverage[tenant] ?? 0) < newest }
            if !needed { removable.append(segment.firstLSN) }
        }
        return removable
    }

    /// The index of the oldest segment the change feed keeps: segments from it on are no more bytes
    /// than the window allows (the current one always counts), and each was still being written
    /// within the window's age (a segment's writes end when the next one is opened).
    func feedWindowStart(nowMilliseconds: Int64) -> Int {
        guard feedRetention.bytes > 0, feedRetention.milliseconds > 0, !segments.isEmpty else { return segments.count - 1 }
        var start = segments.count - 1
        var bytes = segments[start].bytes
        let oldestAllowed = nowMilliseconds - feedRetention.milliseconds
        while start > 0 {
            let candidate = segments[start - 1]
            let endedAt = segments[start].openedAtMilliseconds
            guard bytes + candidate.bytes <= feedRetention.bytes, endedAt >= oldestAllowed else { break }
            bytes += candidate.bytes
            start -= 1
        }
        return start
    }

    /// Every record with an LSN above this is in the kept segments: the newest run of segments with no
    /// removed one between them, each starting where the previous one ended. The change feed serves
    /// from here.
    public var feedFloorLSN: UInt64 {
        guard var oldest = segments.indices.last else { return resolvedThrough }
        while oldest > 0 {
            let previous = segments[oldest - 1]
            guard previous.lastLSN > 0, previous.lastLSN + 1 == segments[oldest].firstLSN else { break }
            oldest -= 1
        }
        return segments[oldest].firstLSN - 1
    }

    /// Per tenant, its newest LSN in the segments `firstLSNs` (what removing them takes away).
    public func newestLSNs(inSegments firstLSNs: [UInt64]) -> [String: UInt64] {
        let wanted = Set(firstLSNs)
        var newest: [String: UInt64] = [:]
        for segment in segments where wanted.contains(segment.firstLSN) {
            for (tenant, lsn) in segment.newestLSNByTenant { newest[tenant] = max(newest[tenant] ?? 0, lsn) }
        }
        return newest
    }

    public mutating func segmentsRemoved(_ firstLSNs: [UInt64]) {
        let current = segments.last?.firstLSN
        let gone = Set(firstLSNs)
        segments.removeAll { gone.contains($0.firstLSN) && $0.firstLSN != current }
    }
}

extension DurabilityLedger.Refusal {
    public var error: LearnStoreError {
        switch self {
        case .storageFailing(let reason):
            LearnStoreError(.storageUnavailable, "the WAL is failing (\(reason)); writes are refused until the disk recovers")
        case .rollingBack(let tenant):
            LearnStoreError(.storageUnavailable, "tenant \(tenant) is undoing writes that could not be made durable; retry shortly")
        case .outOfOrder(let lsn, let next):
            LearnStoreError(.internalError, "a replicated write at LSN \(lsn) arrived after LSN \(next - 1) was given")
        }
    }
}
