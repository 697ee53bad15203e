import NIOCore
import Synchronization

/// Wakes a waiting loop early: `wait(upTo:)` returns after the duration, as soon as `ring()` is
/// called (a ring while nobody waits ends the next wait at once), or when the waiting task is
/// cancelled.
public final class Wakeup: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
        /// Which wait `waiter` belongs to: a timer armed for an earlier wait must not end a later one.
        var waitNumber: UInt64 = 0
    }

    private let state = Mutex(State())

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
        var cancelTimer: (@Sendable () -> Void)?
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                // The waiter is in place before its timer is armed: a timer that fired first (a short
                // duration, a waiting task held up by a busy machine) would find nobody to wake, and
                // the wait would last until the next ring, perhaps for ever.
                let number = state.withLock { state -> UInt64? in
                    if state.rung || Task.isCancelled {
                        state.rung = false
                        return nil
                    }
                    state.waitNumber &+= 1
                    state.waiter = continuation
                    return state.waitNumber
                }
                guard let number else { return continuation.resume() }
                cancelTimer = armTimer(after: duration, for: number)
            }
        } onCancel: {
            ring()
        }
        cancelTimer?()
    }

    private func armTimer(after duration: Duration, for number: UInt64) -> @Sendable () -> Void {
        if let timers {
            let timer = timers.scheduleTask(in: TimeAmount(duration)) { [weak self] in self?.end(waitNumber: number) }
            return { timer.cancel() }
        }
        let timer = Task { [weak self] in
            guard (try? await Task.sleep(for: duration)) != nil else { return }
            self?.end(waitNumber: number)
        }
        return { timer.cancel() }
    }

    /// A timer's end of the wait it was armed for, if that wait is still in progress.
    private func end(waitNumber number: UInt64) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.waitNumber == number, let waiter = state.waiter else { return nil }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }
}
