import LearnStoreEngine
import LearnStoreModel
import NIOCore

/// Gives each tenant a home event loop, where its asynchronously enqueued jobs run (snapshots,
/// admin requests). Requests do not hop there: any loop enters a tenant under its lock
/// (``TenantExecutor``).
public struct TenantPlacement: Sendable {
    public let loops: [any EventLoop]

    public init(group: any EventLoopGroup) {
        loops = Array(group.makeIterator())
    }

    /// A stable choice (FNV-1a of the tenant id), the same in every process with the same loop count.
    public func loop(for tenantID: String) -> any EventLoop {
        loops[Int(FNV1a.hash(tenantID.utf8) % UInt64(loops.count))]
    }

    /// A registry whose tenants run on their placed loops and log to `log`.
    /// `writeGate` is asked before each client write (a partition being moved elsewhere refuses them).
    public func makeRegistry(limits: EngineLimits, clock: any EngineClock, log: any MutationLog, writeGate: (any TenantWriteGate)? = nil) -> TenantRegistry {
        TenantRegistry { tenantID in
            let home = loop(for: tenantID)
            return TenantActor(state: TenantState(tenantID: tenantID, limits: limits), log: log, clock: clock,
                               executor: TenantExecutor { home.execute($0) }, writeGate: writeGate)
        }
    }
}
