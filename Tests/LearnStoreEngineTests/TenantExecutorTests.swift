import Dispatch
import LearnStoreModel
import Synchronization
import Testing
@testable import LearnStoreEngine

/// Any thread enters a tenant synchronously under its lock; asynchronous calls run under the same
/// lock; so synchronous and asynchronous work on one tenant never overlap and nothing is lost.
@Suite struct TenantExecutorTests {
    /// Runs enqueued jobs on a private serial queue, as the server runs them on the tenant's home loop.
    static func makeActor() -> TenantActor {
        let queue = DispatchQueue(label: "tenant-home")
        return TenantActor(state: TenantState(tenantID: tenantA), log: RecordingLog(),
                           executor: TenantExecutor { job in queue.async(execute: job) })
    }

    @Test func concurrentSynchronousAndAsynchronousWritesAreAllApplied() async throws {
        let actor = Self.makeActor()
        let threads = 4
        let perThread = 250
        // Four threads enter synchronously while this task also awaits the actor.
        async let asynchronous: Int = {
            var created = 0
            for n in 0..<perThread {
                _ = try await actor.create(body(person: person(UInt64(10_000 + n))), caller: caller())
                created += 1
            }
            return created
        }()
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for n in 0..<perThread {
                _ = try! actor.withExclusiveAccess { tenant in
                    try tenant.create(body(person: person(UInt64(t * perThread + n))), caller: caller()).result.id
                }
            }
        }
        #expect(try await asynchronous == perThread)
        let count = await actor.state.store.liveCount
        #expect(count == (threads + 1) * perThread)
        // Every write got its own sequence number: none ran concurrently with another.
        #expect(await actor.state.sequence == UInt64((threads + 1) * perThread))
    }

    @Test func theLockIsReentrantAndIsolationChecksFollowIt() {
        let actor = Self.makeActor()
        let executor = TenantExecutor { $0() }
        #expect(executor.isIsolatingCurrentContext() == false)
        executor.withLock {
            #expect(executor.isIsolatingCurrentContext() == true)
            // Entering again on the same thread does not deadlock.
            executor.withLock { #expect(executor.isHeldByCurrentThread) }
            #expect(executor.isHeldByCurrentThread)
        }
        #expect(!executor.isHeldByCurrentThread)
        let count = actor.withExclusiveAccess { _ in
            actor.withExclusiveAccess { inner in inner.state.store.liveCount }
        }
        #expect(count == 0)
    }

    @Test func anotherThreadWaitsForTheHolder() {
        let executor = TenantExecutor { $0() }
        let inside = Atomic<Int>(0)
        let overlaps = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<2_000 {
                executor.withLock {
                    if inside.wrappingAdd(1, ordering: .relaxed).newValue > 1 { overlaps.wrappingAdd(1, ordering: .relaxed) }
                    inside.wrappingSubtract(1, ordering: .relaxed)
                }
            }
        }
        #expect(overlaps.load(ordering: .relaxed) == 0)
    }
}
