import Dispatch

/// Runs async work to completion from a synchronous libFuzzer callback. The harness thread waits on
/// a semaphore while a detached task runs on the cooperative pool.
public func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task.detached {
        box.value = await body()
        done.signal()
    }
    done.wait()
    return box.value!
}

/// Written once by the task, read once after the semaphore: the semaphore orders the two.
private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
