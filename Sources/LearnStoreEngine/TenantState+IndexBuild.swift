/// Secondary-index catch-up off the tenant's lock.
///
/// A catch-up after a write burst can be a build over the whole tenant (see `RecordIndexes.catchUp`),
/// and under the tenant's lock every other event loop with a request for the tenant waits for it. So
/// once writes pause, the persistence scheduler takes an `IndexBuild` (an O(pages) copy of the
/// records, the same copy-on-write capture a snapshot takes), runs it on a thread of its own, and
/// installs the result; the lock is held only for the copy and the swap. A record that changed in
/// between makes the result stale: it is dropped, and the next pause (or the next read) catches up.
extension TenantState {
    /// Backlogs from this size are built off the lock even when a slot-by-slot catch-up would be
    /// cheaper in CPU: about 6 ms of inserts under the lock at 1.45 µs a slot.
    public static let offLockIndexBacklog = 4096

    public struct IndexBuild: Sendable {
        let store: RecordStore
        let storeRevision: UInt64

        /// Every index over the copied records: O(tenant). Run it off the tenant's lock.
        public func run() -> BuiltIndexes {
            BuiltIndexes(indexes: RecordIndexes.build(store), storeRevision: storeRevision)
        }
    }

    public struct BuiltIndexes: Sendable {
        let indexes: RecordIndexes
        let storeRevision: UInt64
    }

    /// A build worth running off the lock: the backlog is one a catch-up would build in bulk (a
    /// quarter of the tenant or more), or at least `minimumBacklog` slots. Nil otherwise, and during
    /// recovery's bulk load (it builds the indexes itself at its end).
    public func indexBuild(minimumBacklog: Int = offLockIndexBacklog) -> IndexBuild? {
        guard !indexes.secondaryDeferred else { return nil }
        let backlog = indexes.backlog(in: store)
        guard backlog > 0, backlog * 4 >= store.slotCount || backlog >= minimumBacklog else { return nil }
        return IndexBuild(store: store, storeRevision: storeRevision)
    }

    /// Swaps in indexes built off the lock if no record changed since their copy was taken. Returns
    /// whether it did.
    public mutating func install(_ built: BuiltIndexes) -> Bool {
        guard built.storeRevision == storeRevision, !indexes.secondaryDeferred else { return false }
        indexes = built.indexes
        return true
    }
}
