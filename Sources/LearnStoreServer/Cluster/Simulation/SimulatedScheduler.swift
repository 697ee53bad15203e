import Synchronization

/// Runs the nodes' rounds one operation at a time: each call a round makes to another node (a check,
/// a promise, a promotion) first waits here for its turn, and the simulation grants turns one by one
/// in a random order, some in later ticks than others (a slow answer). So the rounds of different
/// nodes interleave at those calls, a round can see the cluster change between two of them, and a
/// stopped node's round resumes with what it read before it stopped. The calls of an endpoint of the
/// simulated etcd wait for turns too, unless the run answers them at once.
///
/// Rounds are tasks on the scheduler's ``RoundExecutor``, which runs their jobs only on the
/// simulation's thread, inside ``start(_:)`` and ``grant(at:proceed:)``, until none is left: then the
/// round let go has parked in ``turn(_:)`` or ended. Nothing waits for a round to say so, so nothing
/// can wait for ever: a round that suspended anywhere else (on something outside the simulation)
/// is found at once and reported as a ``StrayRound``.
final class SimulatedScheduler: Sendable {
    private struct Waiting {
        let node: String
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var waiting: [Waiting] = []
        /// Rounds let go that have neither parked nor ended.
        var running = 0
        /// Who was let go last, for the report of a stray round.
        var lastLetGo = ""
    }

    /// A round suspended outside ``turn(_:)``: the simulation no longer knows when it runs.
    struct StrayRound: Error, CustomStringConvertible {
        let node: String
        var description: String {
            "the round let go last (\(node)) suspended outside its turns, on something the simulation does not drive"
        }
    }

    private let state = Mutex(State())
    let executor = RoundExecutor()

    /// A round's call waits for its turn: true to go on, false when its node went down meanwhile.
    func turn(_ node: String) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            state.withLock { state in
                state.waiting.append(Waiting(node: node, continuation: continuation))
                state.running -= 1
            }
        }
    }

    /// The nodes of the calls waiting for a turn, in the order they came.
    var waitingNodes: [String] { state.withLock { $0.waiting.map(\.node) } }

    /// Starts a round through `spawn`, which runs the operation it is given as a task preferring
    /// ``executor``, and returns once the round waits for its first turn or has ended. The round calls
    /// ``roundEnded()`` last.
    func start(_ spawn: (RoundExecutor) -> Void) throws(StrayRound) {
        state.withLock {
            $0.running += 1
            $0.lastLetGo = "a new round"
        }
        spawn(executor)
        try runUntilParked()
    }

    /// Grants the turn of the waiting call at `index` (or tells it its node is down), and returns once
    /// its task waits again or its round ended.
    func grant(at index: Int, proceed: Bool) throws(StrayRound) {
        let waiting = state.withLock { state in
            state.running += 1
            state.lastLetGo = state.waiting[index].node
            return state.waiting.remove(at: index)
        }
        waiting.continuation.resume(returning: proceed)
        try runUntilParked()
    }

    func roundEnded() {
        state.withLock { $0.running -= 1 }
    }

    /// Fails every waiting call (each round then ends), and from then on runs whatever is left of the
    /// rounds wherever it is scheduled, so that their task group can end.
    func finish() {
        while !waitingNodes.isEmpty { try? grant(at: 0, proceed: false) }
        executor.runFreely()
    }

    private func runUntilParked() throws(StrayRound) {
        executor.runUntilIdle()
        let (running, node) = state.withLock { ($0.running, $0.lastLetGo) }
        if running != 0 { throw StrayRound(node: node) }
    }
}

/// The executor of the simulation's rounds: it queues their jobs and runs them when the simulation
/// lends it its thread (``runUntilIdle()``), so the rounds run one at a time, between the
/// simulation's own steps, in an order the seed decides.
final class RoundExecutor: TaskExecutor {
    private struct State {
        var jobs: [UnownedJob] = []
        var free = false
    }

    private let state = Mutex(State())

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let runNow = state.withLock { state in
            if !state.free { state.jobs.append(job) }
            return state.free
        }
        if runNow { job.runSynchronously(on: asUnownedTaskExecutor()) }
    }

    /// Runs queued jobs, and those they queue, until none is left.
    func runUntilIdle() {
        while let job = state.withLock({ $0.jobs.isEmpty ? nil : $0.jobs.removeFirst() }) {
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    /// Runs what is queued, and every later job at once on the thread that queues it.
    func runFreely() {
        state.withLock { $0.free = true }
        runUntilIdle()
    }
}
