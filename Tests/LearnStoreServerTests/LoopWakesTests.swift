import NIOEmbedded
import NIOPosix
import Synchronization
import Testing

@testable import LearnStoreServer

/// Commit wakes posted to an event loop run once each: after a connection's read once the oldest
/// has waited the batching age, else in the task the first post scheduled.
struct LoopWakesTests {
    final class Counts: Sendable {
        let ran = Atomic<Int>(0)
        let offLoop = Atomic<Int>(0)
    }

    final class Clock: Sendable {
        let nanoseconds = Atomic<UInt64>(1_000)
        func advance(_ by: UInt64) { nanoseconds.add(by, ordering: .relaxed) }
    }

    @Test func postedWorkRunsOnceAfterItsAgeOrAtTheEndOfTheTurn() {
        let loop = EmbeddedEventLoop()
        let clock = Clock()
        let wakes = LoopWakes(batchingAge: 500, now: { clock.nanoseconds.load(ordering: .relaxed) })
        let inbox = wakes.inbox(for: loop)
        #expect(wakes.inbox(for: loop) === inbox, "one inbox per loop")
        let ran = Mutex<[Int]>([])
        func piece(_ id: Int) -> @Sendable () -> Void { { ran.withLock { $0.append(id) } } }

        inbox.post([piece(1)])
        clock.advance(200)
        inbox.post([piece(2), piece(3)])
        inbox.runPosted()
        #expect(ran.withLock { $0 }.isEmpty, "the oldest has waited 200 of 500 ns")
        clock.advance(300)
        inbox.runPosted()
        #expect(ran.withLock { $0 } == [1, 2, 3], "in the order posted")
        loop.run()
        #expect(ran.withLock { $0 } == [1, 2, 3], "the turn's task finds nothing left")

        inbox.post([piece(4)])
        clock.advance(100)
        inbox.runPosted()
        loop.run()
        #expect(ran.withLock { $0 } == [1, 2, 3, 4], "what no read ran, the end of the turn runs")
        inbox.runPosted()
        clock.advance(1_000)
        inbox.runPosted()
        #expect(ran.withLock { $0 } == [1, 2, 3, 4], "once")
        inbox.post([])
        loop.run()
        #expect(ran.withLock { $0 } == [1, 2, 3, 4])
    }

    @Test func postsFromOtherThreadsAllRunOnTheLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let inbox = LoopWakes(batchingAge: 0).inbox(for: loop)
        let counts = Counts()
        await withTaskGroup(of: Void.self) { tasks in
            for _ in 0..<4 {
                tasks.addTask {
                    for _ in 0..<250 {
                        inbox.post([{
                            if !loop.inEventLoop { counts.offLoop.add(1, ordering: .relaxed) }
                            counts.ran.add(1, ordering: .relaxed)
                        }])
                    }
                }
            }
        }
        // Tasks run in order: the last post's task, if it scheduled one, ran before this one.
        try await loop.submit {}.get()
        #expect(counts.ran.load(ordering: .relaxed) == 1_000)
        #expect(counts.offLoop.load(ordering: .relaxed) == 0)
        try await group.shutdownGracefully()
    }
}
