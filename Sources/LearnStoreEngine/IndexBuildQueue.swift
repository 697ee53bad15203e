import Dispatch
import Synchronization

/// The secondary-index builds that reads wait for: each runs off every event loop and off its
/// tenant's lock (see `TenantState+IndexBuild`), and a read that finds its tenant's build running
/// waits for that one instead of starting another.
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

    /// Builds running now.
    public var running: Int { waiters.withLock { $0.count } }
}
