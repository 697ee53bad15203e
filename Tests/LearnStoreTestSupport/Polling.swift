import Foundation
import NIOPosix

// Tests never sleep to wait for a state: they poll the state itself until a deadline, which is
// generous because the whole suite shares two cores.

/// Polls `condition` until it holds or `seconds` pass.
public func eventually(within seconds: Double = 5, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        await pollInterval()
    }
    return try await condition()
}

/// `eventually` for conditions that need no `await`.
public func eventually(within seconds: Double = 5, _ condition: () throws -> Bool) async rethrows -> Bool {
    try await eventually(within: seconds) { () async throws -> Bool in try condition() }
}

/// The pause between two polls of a condition (a poll interval, not a wait for the condition).
public func pollInterval() async {
    let loop = MultiThreadedEventLoopGroup.singleton.next()
    try? await loop.scheduleTask(in: .milliseconds(10)) {}.futureResult.get()
}

/// `eventually` for synchronous tests (the write-ahead log's own threads do the work): blocks the
/// calling thread between polls.
public func waitFor(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while Date() < deadline {
        if condition() { return true }
        let lock = NSCondition()
        lock.lock()
        _ = lock.wait(until: Date(timeIntervalSinceNow: 0.005))
        lock.unlock()
    }
    return condition()
}
