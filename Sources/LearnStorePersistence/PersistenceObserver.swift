/// What the WAL, snapshots and recovery report as they work, for the server's metrics. This module
/// knows no metrics backend: the server passes an observer in.
///
/// Each method is called on the thread doing the work (the WAL writer thread, an event loop writing
/// inline, a snapshot writer, recovery's workers), several at once, some with the WAL's I/O lock
/// held: an implementation must be thread-safe and cheap.
public protocol PersistenceObserver: Sendable {
    /// One `pwrite` of the WAL: a group commit of `records` records, `bytes` with its commit marker.
    func walWritten(records: Int, bytes: Int, duration: Duration)
    /// One `fdatasync` of a WAL segment that holds acknowledged or about to be acknowledged writes.
    func walSynced(duration: Duration)
    /// A tenant's snapshot is durable: `bytes` on disk, `duration` to serialize, compress, write and
    /// sync it (the capture on the tenant's actor is not included).
    func snapshotWritten(tenantID: String, bytes: Int, duration: Duration)
    /// A tenant's snapshot could not be written.
    func snapshotFailed(tenantID: String)
    /// Recovery loaded another tenant's snapshot or replayed another WAL segment.
    func recoveryProgressed(_ progress: RecoveryProgress)
}

extension PersistenceObserver {
    public func walWritten(records: Int, bytes: Int, duration: Duration) {}
    public func walSynced(duration: Duration) {}
    public func snapshotWritten(tenantID: String, bytes: Int, duration: Duration) {}
    public func snapshotFailed(tenantID: String) {}
    public func recoveryProgressed(_ progress: RecoveryProgress) {}
}

/// For the operator tools, the simulation and tests: nothing is observed.
public struct UnobservedPersistence: PersistenceObserver {
    public init() {}
}

/// How far recovery has got: tenants whose snapshot is loaded, WAL segments replayed.
public struct RecoveryProgress: Sendable, Hashable {
    public var tenantsLoaded: Int
    public var tenants: Int
    public var walSegmentsReplayed: Int
    public var walSegments: Int

    public init(tenantsLoaded: Int = 0, tenants: Int = 0, walSegmentsReplayed: Int = 0, walSegments: Int = 0) {
        self.tenantsLoaded = tenantsLoaded
        self.tenants = tenants
        self.walSegmentsReplayed = walSegmentsReplayed
        self.walSegments = walSegments
    }
}
