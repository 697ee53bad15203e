import LearnStoreEngine
import LearnStoreModel
import LearnStoreProtocol
import NIOConcurrencyHelpers

/// What the admin opcodes SNAPSHOT and RESTORE_TENANT need from persistence. ``PersistenceService``
/// provides it once recovery has finished; a server without a data directory has none.
public protocol AdminOperations: Sendable {
    /// Writes a snapshot of the tenant (skipped when unchanged since its newest, unless `force`).
    func snapshot(_ tenant: TenantActor, force: Bool) async throws(LearnStoreError) -> SnapshotReport
    /// Restores the tenant to a point, or reports what that would change (`dryRun`).
    func restore(_ tenant: TenantActor, _ request: RestoreTenantRequest) async throws(LearnStoreError) -> RestoreTenantReport
}

/// Where the server finds its ``AdminOperations``: set once persistence is ready.
public final class AdminBinding: Sendable {
    private let lock = NIOLockedValueBox<(any AdminOperations)?>(nil)
    public init() {}
    public func set(_ operations: any AdminOperations) { lock.withLockedValue { $0 = operations } }
    public var operations: (any AdminOperations)? { lock.withLockedValue { $0 } }
}
