import LearnStoreModel
import Synchronization

/// Finds or lazily creates the actor of each tenant. Nothing here assumes that all tenants live in
/// one process: each tenant is created, captured and replaced on its own.
public final class TenantRegistry: Sendable {
    public typealias Factory = @Sendable (String) -> TenantActor

    private let tenants = Mutex<[String: TenantActor]>([:])
    private let factory: Factory

    public init(factory: @escaping Factory) { self.factory = factory }

    /// A registry whose tenants keep their data only in memory.
    public convenience init(limits: EngineLimits = EngineLimits(), clock: any EngineClock = SystemClock(), log: any MutationLog = DiscardingLog()) {
        self.init { tenantID in
            TenantActor(state: TenantState(tenantID: tenantID, limits: limits), log: log, clock: clock)
        }
    }

    /// The tenant's actor, created on first use.
    public func tenant(_ tenantID: String) -> TenantActor {
        tenants.withLock { map in
            if let existing = map[tenantID] { return existing }
            let created = factory(tenantID)
            map[tenantID] = created
            return created
        }
    }

    /// The tenant's actor if it exists (reads of an unknown tenant need not create it).
    public func existingTenant(_ tenantID: String) -> TenantActor? {
        tenants.withLock { $0[tenantID] }
    }

    /// Installs an actor (recovery builds tenants before the server opens).
    public func install(_ actor: TenantActor) {
        tenants.withLock { $0[actor.tenantID] = actor }
    }

    public var all: [TenantActor] { tenants.withLock { Array($0.values) } }
    public var tenantIDs: [String] { tenants.withLock { $0.keys.sorted() } }
}
