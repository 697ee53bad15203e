import LearnStoreEngine
import LearnStoreModel
import Synchronization

/// WAIT_SEQUENCE's waiters: requests waiting until their tenant has applied a sequence. A replica
/// applies its primary's writes as they arrive; a client that wrote to the primary (and was told the
/// write's sequence) waits here before reading its own write on a replica. Every commit of the log
/// checks the waiters, so none polls.
final class SequenceWatch: Sendable {
    private struct Waiter {
        var tenant: TenantActor
        var sequence: UInt64
        var continuation: CheckedContinuation<UInt64?, Never>
    }

    private let waiters = Mutex<(next: UInt64, all: [UInt64: Waiter])>((0, [:]))
    private let count = Atomic<Int>(0)

    /// The tenant's sequence once it is at least `sequence`, or nil after `timeout`.
    func wait(for sequence: UInt64, tenant: TenantActor, timeout: Duration) async -> UInt64? {
        let now = tenant.withExclusiveAccess { $0.state.sequence }
        if now >= sequence { return now }
        let id = waiters.withLock { state -> UInt64 in
            state.next += 1
            return state.next
        }
        let expiry = Task {
            try? await Task.sleep(for: timeout)
            self.resume(id, with: nil)
        }
        let answer = await withCheckedContinuation { (continuation: CheckedContinuation<UInt64?, Never>) in
            let ready: UInt64? = waiters.withLock { state in
                // Checked under the lock: a commit between the first check and here is not missed.
                let current = tenant.withExclusiveAccess { $0.state.sequence }
                if current >= sequence { return current }
                state.all[id] = Waiter(tenant: tenant, sequence: sequence, continuation: continuation)
                count.wrappingAdd(1, ordering: .relaxed)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
        expiry.cancel()
        return answer
    }

    /// The log committed: waiters whose tenant has reached their sequence are answered.
    func committed() {
        guard count.load(ordering: .relaxed) > 0 else { return }
        let ready: [(CheckedContinuation<UInt64?, Never>, UInt64)] = waiters.withLock { state in
            var ready: [(CheckedContinuation<UInt64?, Never>, UInt64)] = []
            for (id, waiter) in state.all {
                let current = waiter.tenant.withExclusiveAccess { $0.state.sequence }
                guard current >= waiter.sequence else { continue }
                state.all[id] = nil
                count.wrappingSubtract(1, ordering: .relaxed)
                ready.append((waiter.continuation, current))
            }
            return ready
        }
        for (continuation, sequence) in ready { continuation.resume(returning: sequence) }
    }

    private func resume(_ id: UInt64, with value: UInt64?) {
        let waiter = waiters.withLock { state -> Waiter? in
            guard let waiter = state.all.removeValue(forKey: id) else { return nil }
            count.wrappingSubtract(1, ordering: .relaxed)
            return waiter
        }
        waiter?.continuation.resume(returning: value)
    }
}
