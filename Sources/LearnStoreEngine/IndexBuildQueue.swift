import Dispatch
import Synchronization

/// The secondary-index builds of reads and of the persistence scheduler: each runs off every event
/// loop and off its tenant's lock (see `TenantState+IndexBuild`), and a read or a scheduler's
/// catch-up that finds its tenant's build running waits for that one instead of starting another
/// (after a write burst, the first reads of a tenant and the scheduler would otherwise build the
/// same indexes twice over, on the two cores the reads share).
public final class IndexBuildQueue: Sendable {
    private let waiters = Mutex<[ObjectIdentifier: [@Sendable () -> Void]]>([:])

    public init() {}

    /// Runs `build` for `tenant` (or joins the one running) and installs it; then calls `done` on the
    /// building thread, installed or dropped as stale alike: the caller's catch-up does the rest.
    public func build(_ build: TenantState.IndexBuild, for tenant: TenantActor, then done: @escaping @Sendable () -> Void) {
        let key = ObjectIdentifier(tenant)
        let starts = waiters.withLock { waiters -> Bool in
            if waiters[key] != nil {
                waiters[key]!.append(done)
                return false
            }
            waiters[key] = [done]
            return true
        }
        guard starts else { return }
        DispatchQueue.global(qos: .userInitiated).async {
            let built = build.run()
            tenant.install(fromAnyThread: built) {
                let waiting = self.waiters.withLock { $0.removeValue(forKey: key) ?? [] }
                for waiter in waiting { waiter() }
            }
        }
    }

    /// ``build(_:for:then:)``, returning once the build is installed or dropped.
    public func build(_ build: TenantState.IndexBuild, for tenant: TenantActor) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            self.build(build, for: tenant) { continuation.resume() }
        }
    }

    /// Builds running now.
    public var running: Int { waiters.withLock { $0.count } }
}
