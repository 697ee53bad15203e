/// Secondary-index catch-up off the tenant's lock.
///
/// A catch-up after a write burst can be a build over the whole tenant (see `RecordIndexes.catchUp`),
/// and under the tenant's lock every other event loop with a request for the tenant waits for it. So
/// the persistence scheduler (once writes pause) and a read that would wait for a long catch-up take
/// an `IndexBuild` instead: an O(pages) copy of the records, the same copy-on-write capture a
/// snapshot takes, built on a thread of its own and installed with ``install(_:)``. The lock is held
/// only for the copy and the swap.
///
/// Appends do not spoil a build: it covers the slots that existed at its copy, and the slots
/// appended since stay in the backlog for the next catch-up (a small one). A record changed in
/// place after the copy (a patch, a delete, a purge, a restore of the tenant) does: the build is
/// dropped, and the next catch-up happens in place.
extension TenantState {
    /// Backlogs from this size are built off the lock even when a slot-by-slot catch-up would be
    /// cheaper in CPU: about 6 ms of inserts under the lock at 1.45 µs a slot.
    public static let offLockIndexBacklog = 4096

    /// A tenant smaller than this is caught up in place whatever its backlog: a build over all of it
    /// holds the lock about a millisecond at most, less than a thread of its own costs (the scheduler's
    /// catch-up after a bulk load of 10,000 small tenants started 10,000 threads).
    public static let offLockBulkSlots = 1024

    /// A read builds off the lock when catching up in place would hold the lock at least this long.
    /// Below it, a thread hand-off and the wait for it cost the reader more than the catch-up.
    public static let offLockReadMicroseconds = 1000.0

    public struct IndexBuild: Sendable {
        let store: RecordStore
        /// The live indexes at the copy (copy-on-write: the build's changes never reach the tenant).
        let indexes: RecordIndexes
        let storeRevision: UInt64

        /// The secondary indexes over the copied records, caught up as ``RecordIndexes/catchUp(_:limit:)``
        /// would (a build over the tenant or a merge of the backlog). Run it off the tenant's lock.
        public func run() -> BuiltIndexes {
            var built = indexes
            built.catchUp(store)
            return BuiltIndexes(indexes: built, slots: store.records.count, storeRevision: storeRevision)
        }
    }

    public struct BuiltIndexes: Sendable {
        let indexes: RecordIndexes
        /// The slots the build covers: the tenant's slot count at the copy.
        let slots: Int
        let storeRevision: UInt64
    }

    /// A build worth running off the lock: the backlog is one a catch-up would build in bulk (a
    /// quarter of the tenant or more) in a tenant of at least `minimumSlots`, or at least
    /// `minimumBacklog` slots. Nil otherwise, and during
    /// recovery's bulk load (it builds the indexes itself at its end).
    public func indexBuild(minimumBacklog: Int = offLockIndexBacklog, minimumSlots: Int = offLockBulkSlots) -> IndexBuild? {
        guard !indexes.secondaryDeferred else { return nil }
        let backlog = indexes.backlog(in: store)
        let bulk = backlog * 4 >= store.slotCount && store.slotCount >= minimumSlots
        guard backlog > 0, bulk || backlog >= minimumBacklog else { return nil }
        return IndexBuild(store: store, indexes: indexes, storeRevision: storeRevision)
    }

    /// A build the scheduler runs while writes go on: a tenant past `minimumSlots` whose backlog
    /// is at least `minimumBacklog` and an eighth of the tenant catches it up off the lock (a build
    /// or a merge, see ``RecordIndexes``), so that its writes stay below the bound where they index
    /// the backlog themselves, record by record. Smaller tenants wait for a pause or a read.
    ///
    /// The eighth: a catch-up off the lock also copies the tenant's indexes and passes over every
    /// chunk of its range indexes, about 15 ms for 500,000 records; over a smaller backlog that
    /// costs more than the writes would spend indexing it themselves.
    public func indexBuildDuringWrites(minimumBacklog: Int = offLockIndexBacklog, minimumSlots: Int = lazyIndexSlots) -> IndexBuild? {
        guard !indexes.secondaryDeferred, store.slotCount > minimumSlots,
              indexes.backlog(in: store) >= max(minimumBacklog, store.slotCount / 8)
        else { return nil }
        return IndexBuild(store: store, indexes: indexes, storeRevision: storeRevision)
    }

    /// The build a read should wait for instead of catching up under the lock: one whose in-place
    /// catch-up would take at least ``offLockReadMicroseconds``. Nil when the read may catch up itself.
    public func indexBuildForRead() -> IndexBuild? {
        guard !indexes.secondaryDeferred else { return nil }
        let cost = RecordIndexes.catchUpMicroseconds(backlog: indexes.backlog(in: store), slots: store.slotCount)
        guard cost >= Self.offLockReadMicroseconds else { return nil }
        return IndexBuild(store: store, indexes: indexes, storeRevision: storeRevision)
    }

    /// Takes indexes built off the lock if no record changed in place since their copy and they
    /// cover more than the live indexes do; records appended since stay in the backlog. Returns
    /// whether it took them.
    public mutating func install(_ built: BuiltIndexes) -> Bool {
        guard built.storeRevision == storeRevision, store.slotCount >= built.slots, !indexes.secondaryDeferred,
              indexes.backlog(in: store) > store.slotCount - built.slots
        else { return false }
        indexes.adoptSecondary(built.indexes, through: built.slots)
        return true
    }
}
