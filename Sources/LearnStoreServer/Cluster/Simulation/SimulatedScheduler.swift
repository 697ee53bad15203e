import Synchronization

/// Runs the nodes' rounds one operation at a time: each call a round makes to another node (a check,
/// a promise, a promotion) first waits here for its turn, and the simulation grants turns one by one
/// in a random order, some in later ticks than others (a slow answer). So the rounds of different
/// nodes interleave at those calls, a round can see the cluster change between two of them, and a
/// stopped node's round resumes with what it read before it stopped. The calls of an endpoint of the
/// simulated etcd wait for turns too, unless the run answers them at once. Only one task runs at a
/// time: the simulation waits until the task it let go parks again or ends its round.
final class SimulatedScheduler: Sendable {
    private struct Waiting {
        let node: String
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var waiting: [Waiting] = []
        var simulation: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    /// A round's call waits for its turn: true to go on, false when its node went down meanwhile.
    func turn(_ node: String) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let simulation = state.withLock { state in
                state.waiting.append(Waiting(node: node, continuation: continuation))
                defer { state.simulation = nil }
                return state.simulation
            }
            simulation?.resume()
        }
    }

    /// The nodes of the calls waiting for a turn, in the order they came.
    var waitingNodes: [String] { state.withLock { $0.waiting.map(\.node) } }

    /// Starts a round through `spawn` (which runs the task it is given) and returns once the round
    /// waits for its first turn or has ended. The round calls ``roundEnded()`` last.
    func start(_ spawn: () -> Void) async {
        await withCheckedContinuation { (simulation: CheckedContinuation<Void, Never>) in
            state.withLock { $0.simulation = simulation }
            spawn()
        }
    }

    /// Grants the turn of the waiting call at `index` (or tells it its node is down), and returns once
    /// its task waits again or its round ended.
    func grant(at index: Int, proceed: Bool) async {
        await withCheckedContinuation { (simulation: CheckedContinuation<Void, Never>) in
            let waiting = state.withLock { state in
                state.simulation = simulation
                return state.waiting.remove(at: index)
            }
            waiting.continuation.resume(returning: proceed)
        }
    }

    func roundEnded() {
        let simulation = state.withLock { state in
            defer { state.simulation = nil }
            return state.simulation
        }
        simulation?.resume()
    }
}
