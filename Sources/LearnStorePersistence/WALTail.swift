/// What a reader of the WAL's files may read at one moment: each kept segment's written extent, the
/// commit mark and the feed's floor. Taken under the log's lock, used without it.
public struct WALTail: Sendable {
    public struct Segment: Sendable, Equatable {
        public var firstLSN: UInt64
        public var writtenBytes: Int
        public var sequencesByTenant: [String: ClosedRange<UInt64>]
    }

    /// Kept segments, ascending, from the oldest of the newest unbroken run (``DurabilityLedger/feedFloorLSN``).
    public var segments: [Segment]
    /// Records up to this LSN are resolved (durable, unless failed).
    public var committedLSN: UInt64
    /// Every record above this LSN is in `segments`.
    public var floorLSN: UInt64

    public init(segments: [Segment], committedLSN: UInt64, floorLSN: UInt64) {
        self.segments = segments
        self.committedLSN = committedLSN
        self.floorLSN = floorLSN
    }

    init(ledger: DurabilityLedger, committedLSN: UInt64) {
        let floor = ledger.feedFloorLSN
        self.segments = ledger.segments.filter { $0.firstLSN > floor }.map {
            Segment(firstLSN: $0.firstLSN, writtenBytes: $0.writtenBytes, sequencesByTenant: $0.sequencesByTenant)
        }
        self.committedLSN = committedLSN
        self.floorLSN = floor
    }

    /// Where a reader of `tenant`'s changes after `sequence` starts, or why it cannot.
    public enum Start: Sendable, Equatable {
        /// Read from the start of this segment. The tenant's kept records reach back to `sequence + 1`
        /// or before, so a gap after `sequence` can only be restores (which log no record).
        case segment(firstLSN: UInt64)
        /// No kept record of the tenant comes after `sequence`: follow from the newest segment.
        case live(firstLSN: UInt64)
        /// Changes after `sequence` are no longer kept; a subscription can start after `oldest`.
        case truncated(oldest: UInt64)
    }

    /// Finds where to read `tenant`'s changes after `sequence`, given its newest committed sequence.
    public func start(tenant: String, after sequence: UInt64, tenantSequence: UInt64) -> Start {
        guard let newest = segments.last else { return .truncated(oldest: tenantSequence) }
        let holding = segments.filter { $0.sequencesByTenant[tenant] != nil }
        guard let first = holding.first, let firstRange = first.sequencesByTenant[tenant] else {
            // Nothing of the tenant is kept: only a subscriber that has seen everything can follow.
            return sequence >= tenantSequence ? .live(firstLSN: newest.firstLSN) : .truncated(oldest: tenantSequence)
        }
        if sequence + 1 < firstRange.lowerBound { return .truncated(oldest: firstRange.lowerBound - 1) }
        // The first segment with a change after `sequence`; the one before it (if any) ends at or below it.
        guard let index = holding.firstIndex(where: { $0.sequencesByTenant[tenant]!.upperBound > sequence }) else {
            return .live(firstLSN: newest.firstLSN)
        }
        return .segment(firstLSN: holding[index].firstLSN)
    }

    /// The oldest sequence a subscription of `tenant` can start after.
    public func oldestSequence(tenant: String, tenantSequence: UInt64) -> UInt64 {
        guard let range = segments.lazy.compactMap({ $0.sequencesByTenant[tenant] }).first else { return tenantSequence }
        return range.lowerBound - 1
    }

    /// Where a reader starts to read every record above `lsn`: the segment holding the record after
    /// it. nil when that record is in a removed segment.
    public func position(after lsn: UInt64) -> WALTailReader.Position? {
        guard lsn >= floorLSN, let segment = segments.last(where: { $0.firstLSN <= lsn + 1 }) ?? segments.first else { return nil }
        return WALTailReader.Position(segmentFirstLSN: segment.firstLSN)
    }
}
