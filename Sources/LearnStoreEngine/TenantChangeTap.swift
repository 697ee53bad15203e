/// Sees each of one tenant's writes as the log takes it, in LSN order, on the tenant's executor: the
/// change feed keeps the newest ones in memory so a subscriber that is caught up never reads the log's
/// files. It must not block.
public protocol TenantChangeTap: AnyObject, Sendable {
    /// The tap is attached to a tenant at `sequence`: every write with a higher sequence will reach it.
    func attached(atSequence sequence: UInt64)
    /// `entry` was appended to the log at `lsn` (not yet durable). Returns false once the tap wants no
    /// more writes; the tenant then lets it go.
    func appended(_ entry: LogEntry, lsn: UInt64) -> Bool
}
