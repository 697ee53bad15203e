import NIOCore
import Synchronization

/// Wakes a waiting loop early: `wait(upTo:)` returns after the duration, or as soon as `ring()` is
/// called (a ring while nobody waits ends the next wait at once).
public final class Wakeup: Sendable {
    private let state = Mutex<(rung: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    /// Where a wait's timer runs; nil: `Task.sleep`, which Swift's shared pool wakes (a waiter kept
    /// off the pool keeps its timer off it too).
    private let timers: (any EventLoop)?

    public init(timers: (any EventLoop)? = nil) {
        self.timers = timers
    }

    public func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.rung = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    public func wait(upTo duration: Duration) async {
        let cancelTimer: @Sendable () -> Void
        if let timers {
            let timer = timers.scheduleTask(in: TimeAmount(duration)) { [weak self] in self?.ringIfWaiting() }
            cancelTimer = { timer.cancel() }
        } else {
            let timer = Task { [weak self] in
                guard (try? await Task.sleep(for: duration)) != nil else { return }
                self?.ringIfWaiting()
            }
            cancelTimer = { timer.cancel() }
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                if state.rung {
                    state.rung = false
                    return true
                }
                state.waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
        cancelTimer()
    }

    /// The timer's ring: only a wait in progress ends (a timer that fires as a ring ended its wait may
    /// end the next one early: one more round of the loop, no harm).
    private func ringIfWaiting() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }
}
