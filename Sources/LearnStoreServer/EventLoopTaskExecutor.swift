import NIOCore

/// A task executor that runs its jobs on one event loop.
///
/// Work a connection starts as a Swift task (token verification, whose library is async) runs on the
/// connection's own event loop rather than on Swift's cooperative pool: the pool is shared with
/// everything else in the process, and a connection's handshake must not wait until it has a free
/// thread (the handshake timeout would close the connection first).
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
