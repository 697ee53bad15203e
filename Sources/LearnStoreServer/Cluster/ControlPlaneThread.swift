import NIOCore
import NIOPosix

/// The one thread a node's control-plane work runs on: its etcd calls and watch, lease renewals,
/// the fence watchdog, the controller's rounds and its calls to other nodes.
///
/// Not the server's event loops, which a request burst keeps busy, and not Swift's shared pool, where
/// admin requests run and which has one thread per core: work queued there for seconds would hold a
/// renewal past the lease's fence limit, and a healthy primary would stop acknowledging (then, past
/// the TTL, be replaced). The thread is idle but for a few calls a second.
public final class ControlPlaneThread: Sendable {
    let group: MultiThreadedEventLoopGroup
    let loop: any EventLoop
    /// Tasks that prefer it run on `loop`. Their timers must be the loop's too: `Task.sleep` is woken
    /// by the shared pool.
    let executor: EventLoopTaskExecutor

    public init() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
        executor = EventLoopTaskExecutor(loop: loop)
    }

    public func shutdown() async {
        try? await group.shutdownGracefully()
    }
}
