import Synchronization
import Testing

@testable import LearnStoreServer

/// The simulations' scheduler runs a round only inside the call that lets it go, and knows when it
/// parked, ended, or suspended somewhere it does not drive.
@Suite struct SimulatedSchedulerTests {
    /// A continuation the test holds, outside the scheduler.
    final class Elsewhere: Sendable {
        let continuation = Mutex<CheckedContinuation<Void, Never>?>(nil)
        func wait() async { await withCheckedContinuation { c in continuation.withLock { $0 = c } } }
        func release() { continuation.withLock { $0.take() }?.resume() }
    }

    final class Steps: Sendable {
        private let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }

    @Test func aRoundRunsOnlyInsideTheCallsThatLetItGo() async throws {
        let scheduler = SimulatedScheduler()
        let steps = Steps()
        await withTaskGroup(of: Void.self) { group in
            try? scheduler.start { executor in
                group.addTask(executorPreference: executor) {
                    steps.append("began")
                    let first = await scheduler.turn("n1")
                    steps.append("first turn \(first)")
                    let second = await scheduler.turn("n1")
                    steps.append("second turn \(second)")
                    scheduler.roundEnded()
                }
            }
            #expect(steps.all == ["began"], "start returns once the round waits for its first turn")
            #expect(scheduler.waitingNodes == ["n1"])
            try? scheduler.grant(at: 0, proceed: true)
            #expect(steps.all == ["began", "first turn true"])
            try? scheduler.grant(at: 0, proceed: false)
            #expect(steps.all == ["began", "first turn true", "second turn false"])
            #expect(scheduler.waitingNodes.isEmpty)
            scheduler.finish()
        }
    }

    @Test func aRoundThatSuspendsOutsideItsTurnsIsReported() async {
        let scheduler = SimulatedScheduler()
        let elsewhere = Elsewhere()
        await withTaskGroup(of: Void.self) { group in
            #expect(throws: SimulatedScheduler.StrayRound.self) {
                try scheduler.start { executor in
                    group.addTask(executorPreference: executor) {
                        await elsewhere.wait()
                        scheduler.roundEnded()
                    }
                }
            }
            scheduler.finish()
            // The round parked its continuation before `start` returned; once finished, the scheduler
            // runs it wherever it is resumed, so the group can end.
            elsewhere.release()
        }
    }
}
