import LearnStoreEngine
import LearnStoreModel

/// Change-feed subscribers in the simulation: each tenant that writes has one, which reads the tenant's
/// committed records from the WAL files as the server's feed does (``WALTail/start(tenant:after:tenantSequence:)``
/// to find its place, ``WALTailReader`` to read) and, once caught up, from the tenant's
/// ``RecentChanges`` in memory until it falls behind them; it drops its reader at every crash and
/// resumes after the last sequence it was given, and re-bootstraps (as a subscriber would, from an export) when told its
/// changes are gone. Checked: it gets each change once, in order, with only restores in a gap; never a
/// write that was not committed, was rolled back, or is lost at a later start (under `always`, and under
/// the relaxed policies unless a machine crash lost the page cache, which they document); and at the
/// end it has followed every tenant to its last write.
///
/// Its decisions come from a random stream of its own and reading changes nothing, so a seed runs the
/// same storage steps with or without followers.
struct FeedFollower {
    final class Identity: Sendable {}

    let identity = Identity()
    var lastSequence: UInt64 = 0
    var reader: WALTailReader?
    /// Reading the tenant's recent changes in memory rather than the log.
    var readingMemory = false
    /// Every change given to it since its last re-bootstrap: sequence and LSN.
    var delivered: [(sequence: UInt64, lsn: UInt64)] = []
    /// Under a relaxed policy a machine crash can lose log records a snapshot already holds: their
    /// sequences, up to here, may be missing from the log (the server shows the gap as a restore).
    var gapsAllowedThrough: UInt64 = 0
}

extension DurabilitySimulation {
    /// The newest sequence of the tenant a subscriber can know committed: its last acknowledged write
    /// or restore.
    func acknowledgedSequence(_ tenant: String) -> UInt64 {
        history[tenant]?.last(where: \.acknowledged)?.sequence ?? 0
    }

    /// Gives every tenant's actor new recent changes (a start builds new actors), held for 1 to 24
    /// records, so that followers often fall behind them.
    mutating func attachRecentChanges() {
        recentChanges = [:]
        guard options.feedFollowers else { return }
        let wal: WriteAheadLog = self.wal
        for tenant in tenantIDs {
            let recent = RecentChanges(tenantID: tenant, maximumRecords: 1 + feedRandom.next(below: 24)) { wal.committedLSN }
            _ = actors[tenant]!.withExclusiveAccess { $0.attachChangeTap(recent) }
            recentChanges[tenant] = recent
        }
    }

    mutating func follow() throws {
        guard options.feedFollowers, feedRandom.next(below: 100) < 12 else { return }
        let tenant = tenantIDs[feedRandom.next(below: tenantIDs.count)]
        var follower = followers[tenant] ?? FeedFollower()
        defer { followers[tenant] = follower }
        if follower.readingMemory {
            try followFromMemory(&follower, tenant, maximum: 1 + feedRandom.next(below: 20))
            return
        }
        if follower.reader == nil {
            let tail = wal.tail
            switch tail.start(tenant: tenant, after: follower.lastSequence, tenantSequence: max(follower.lastSequence, acknowledgedSequence(tenant))) {
            case .segment(let first), .live(let first):
                follower.reader = WALTailReader(walDirectory: directory.walDirectory, fileSystem: fs, position: .init(segmentFirstLSN: first))
            case .truncated(let oldest):
                try rebootstrap(&follower, tenant, because: "its changes after \(follower.lastSequence) are gone (oldest start \(oldest))")
                return
            }
        }
        let maximum = 1 + feedRandom.next(below: 20)
        let committed = wal.committedLSN
        let batch: WALTailReader.Batch
        do {
            let filter = TenantFilter(tenant)
            batch = try follower.reader!.read(wal.tail, isFailed: wal.hasFailed, maximumRecords: maximum) { candidate, sequence in
                filter.matches(candidate) && sequence > follower.lastSequence
            }
        } catch .segmentGone(let first) {
            try rebootstrap(&follower, tenant, because: "the segment at LSN \(first) it was reading was removed")
            return
        } catch .storage(let reason) {
            throw SimulationFailure("tenant \(tenant): the feed could not read the WAL: \(reason)")
        }
        try deliver(batch.records, to: &follower, tenant, committed: committed)
        if batch.caughtUp, let stalled = batch.stalled, !wal.hasFailures {
            throw SimulationFailure("tenant \(tenant): the feed stalled on a healthy log: \(stalled)")
        }
        if batch.caughtUp, batch.stalled == nil, let recent = recentChanges[tenant],
           recent.join(ObjectIdentifier(follower.identity), throughSequence: follower.lastSequence, passedLSN: follower.reader!.position.lastLSN) {
            follower.readingMemory = true
            follower.reader = nil
        }
    }

    /// Reads on from the tenant's recent changes, as a caught-up subscription of the server does; back
    /// to the log (from the segment of its next change) when memory no longer holds all it needs.
    mutating func followFromMemory(_ follower: inout FeedFollower, _ tenant: String, maximum: Int) throws {
        let read = recentChanges[tenant]!.read(ObjectIdentifier(follower.identity), throughSequence: follower.lastSequence, maximum: maximum, wal: wal) { _ in }
        // Read after: every record given is at or below the mark the read used, which only grows.
        let committed = wal.committedLSN
        switch read {
        case .behind:
            follower.readingMemory = false
            result.feedFellBehindMemory += 1
        case .records(let records, _, _):
            let before = result.feedChanges
            try deliver(records.filter { $0.entry.sequence > follower.lastSequence }, to: &follower, tenant, committed: committed)
            result.feedChangesFromMemory += result.feedChanges - before
        }
    }

    /// Checks and takes the changes a read gave: committed, in the tenant's history, in order, with only
    /// restores (or what a documented loss allows) in a gap.
    mutating func deliver(_ records: [WALRecord], to follower: inout FeedFollower, _ tenant: String, committed: UInt64) throws {
        let applied = history[tenant] ?? []
        for record in records {
            let sequence = record.entry.sequence
            guard record.lsn <= committed, !wal.hasFailed(record.lsn) else {
                throw SimulationFailure("tenant \(tenant): the feed gave LSN \(record.lsn), which is not committed (mark \(committed)) or failed")
            }
            guard applied.contains(where: { !$0.isRestore && $0.lsn == record.lsn && $0.sequence == sequence }) else {
                throw SimulationFailure("tenant \(tenant): the feed gave sequence \(sequence) at LSN \(record.lsn), which is no write in the tenant's history")
            }
            // A tenant copied in by a partition move starts with a reset at a higher sequence: the
            // ones it skips were never this tenant's here.
            if sequence > follower.lastSequence + 1 && !record.entry.mutations.continuesAnotherGroupsSequence {
                let restores = Set(applied.filter(\.isRestore).map(\.sequence))
                let skipped = (follower.lastSequence + 1)..<sequence
                guard skipped.allSatisfy({ restores.contains($0) || $0 <= follower.gapsAllowedThrough }) else {
                    throw SimulationFailure("tenant \(tenant): the feed jumped from sequence \(follower.lastSequence) to \(sequence) over writes")
                }
            }
            follower.lastSequence = sequence
            follower.delivered.append((sequence, record.lsn))
            result.feedChanges += 1
        }
    }

    /// What a subscriber does after FEED_TRUNCATED: re-reads the tenant (an export at its committed
    /// sequence) and follows from there.
    mutating func rebootstrap(_ follower: inout FeedFollower, _ tenant: String, because reason: String) throws {
        follower.reader = nil
        follower.readingMemory = false
        follower.lastSequence = max(follower.lastSequence, acknowledgedSequence(tenant))
        follower.delivered.removeAll()
        result.feedTruncations += 1
        note("\(tenant) feed truncated (\(reason)); re-read at sequence \(follower.lastSequence)")
    }

    /// At a crash the followers' connections drop; they resume after their last sequence.
    mutating func dropFollowers() {
        for tenant in followers.keys {
            followers[tenant]!.reader = nil
            followers[tenant]!.readingMemory = false
        }
    }

    /// After a start: every change a follower was given is still in its tenant's history (a machine
    /// crash under a relaxed policy may take acknowledged writes, and their changes, as documented).
    /// `mayLoseAcknowledged`: a machine crash under a relaxed policy; `tailLossAbove`: a flipped bit in
    /// the newest write of the log, which recovery takes for a torn tail (writes above it may go).
    mutating func checkFollowersAfterStart(mayLoseAcknowledged: Bool, tailLossAbove: UInt64?) throws {
        guard options.feedFollowers else { return }
        for tenant in tenantIDs {
            var follower = followers[tenant] ?? FeedFollower()
            let applied = history[tenant] ?? []
            if mayLoseAcknowledged || tailLossAbove != nil { follower.gapsAllowedThrough = applied.last?.sequence ?? 0 }
            let lost = follower.delivered.filter { change in !applied.contains { $0.sequence == change.sequence && $0.lsn == change.lsn } }
            if let first = lost.first {
                guard mayLoseAcknowledged || lost.allSatisfy({ change in tailLossAbove.map { change.lsn > $0 } ?? false }) else {
                    throw SimulationFailure("tenant \(tenant): the feed gave sequence \(first.sequence) (LSN \(first.lsn)), which this start does not have")
                }
                try rebootstrap(&follower, tenant, because: "a machine crash took changes it was given")
            }
            followers[tenant] = follower
        }
    }

    /// At the end, on a healthy disk: each follower reads until it is caught up and has reached its
    /// tenant's last write.
    mutating func finishFollowers() throws {
        guard options.feedFollowers else { return }
        for tenant in tenantIDs {
            var follower = followers[tenant] ?? FeedFollower()
            // A follower reading memory must reach the end there: nothing it needs may be missing.
            while follower.readingMemory {
                let before = follower.lastSequence
                try followFromMemory(&follower, tenant, maximum: 1000)
                if follower.readingMemory && follower.lastSequence == before { break }
            }
            var rounds = 0
            while !follower.readingMemory {
                rounds += 1
                if rounds > 10_000 { throw SimulationFailure("tenant \(tenant): the feed never caught up") }
                if follower.reader == nil {
                    switch wal.tail.start(tenant: tenant, after: follower.lastSequence, tenantSequence: max(follower.lastSequence, acknowledgedSequence(tenant))) {
                    case .segment(let first), .live(let first):
                        follower.reader = WALTailReader(walDirectory: directory.walDirectory, fileSystem: fs, position: .init(segmentFirstLSN: first))
                    case .truncated:
                        try rebootstrap(&follower, tenant, because: "at the end")
                        continue
                    }
                }
                let lastSequence = follower.lastSequence
                let filter = TenantFilter(tenant)
                let batch: WALTailReader.Batch
                do {
                    batch = try follower.reader!.read(wal.tail, isFailed: wal.hasFailed, maximumRecords: 1000) { filter.matches($0) && $1 > lastSequence }
                } catch {
                    throw SimulationFailure("tenant \(tenant): the feed could not finish: \(error)")
                }
                for record in batch.records {
                    follower.lastSequence = record.entry.sequence
                    result.feedChanges += 1
                }
                if batch.caughtUp { break }
            }
            let last = history[tenant]?.last(where: { !$0.isRestore })?.sequence ?? 0
            let restores = Set((history[tenant] ?? []).filter(\.isRestore).map(\.sequence))
            // Sequences a restore took, or records a relaxed policy's machine crash (or a flipped bit)
            // took from the log while a snapshot kept them, are not in the log to be read.
            let unreadable = follower.lastSequence >= last ? [] : ((follower.lastSequence + 1)...last).filter {
                !restores.contains($0) && $0 > follower.gapsAllowedThrough
            }
            guard unreadable.isEmpty else {
                throw SimulationFailure("tenant \(tenant): at the end the feed reached sequence \(follower.lastSequence), the tenant's last write is \(last)")
            }
            followers[tenant] = follower
        }
    }
}
