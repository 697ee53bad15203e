import LearnStoreEngine
import LearnStoreModel
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The TCP server as a swift-service-lifecycle `Service`: it listens until a graceful shutdown, then
/// stops accepting, answers the requests it has read, and closes every connection.
public final class LearnStoreServer: Service {
    public let context: ServerContext
    private let group: any EventLoopGroup
    private let listening: EventLoopPromise<SocketAddress>
    /// Whether `listening` was completed (see ``abandon()``).
    private let listeningCompleted = LockedBox(false)
    /// Runs after connections are drained and before `run` returns (flush the WAL, snapshot).
    private let afterDrain: @Sendable () async -> Void

    public init(context: ServerContext, group: any EventLoopGroup, afterDrain: @escaping @Sendable () async -> Void = {}) {
        self.context = context
        self.group = group
        self.listening = group.next().makePromise(of: SocketAddress.self)
        self.afterDrain = afterDrain
    }

    /// The server will never run (its application failed to start): nobody may wait for its address.
    func abandon() {
        guard !listeningCompleted.value else { return }
        listeningCompleted.value = true
        listening.fail(ChannelError.ioOnClosedChannel)
    }

    /// The address the server is listening on (use port 0 for an ephemeral port in tests).
    public var localAddress: SocketAddress {
        get async throws { try await listening.futureResult.get() }
    }

    public func run() async throws {
        let server = context
        let channel: any Channel
        let (host, port) = (context.configuration.host, context.configuration.port)
        do {
            channel = try await ListenFailure.naming("clients (--host, --port)", host: host, port: port) {
                try await ServerBootstrap(group: group)
                    .serverChannelOption(.backlog, value: 1024)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                    .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
                    .childChannelOption(.maxMessagesPerRead, value: 16)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(ConnectionHandler(server: server))
                        }
                    }
                    .bind(host: host, port: port).get()
            }
        } catch {
            listeningCompleted.value = true
            listening.fail(error)
            throw error
        }
        listeningCompleted.value = true
        listening.succeed(channel.localAddress!)
        context.logger.info("listening", metadata: ["address": "\(channel.localAddress!)"])
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            server.runtime.beginShutdown()
            channel.close(promise: nil)
        }
        server.runtime.beginShutdown()
        await drainConnections()
        await afterDrain()
        context.logger.info("stopped")
    }

    /// Asks every connection to finish what it has read, then waits for them to close (at most 10 s;
    /// 1 s on a node that stops to start again as a replica).
    private func drainConnections() async {
        let channels = context.connections.all
        for channel in channels {
            channel.pipeline.fireUserInboundEventTriggered(ShutdownRequest())
        }
        let deadline = ContinuousClock.now + .seconds(context.runtime.isReplaced ? 1 : 10)
        for channel in channels {
            let closed = channel.closeFuture
            while ContinuousClock.now < deadline {
                if (try? await closed.timeout(after: .milliseconds(100), on: channel.eventLoop)) != nil { break }
            }
            if ContinuousClock.now >= deadline { channel.close(promise: nil) }
        }
    }
}

extension EventLoopFuture where Value: Sendable {
    /// Completes with this future's value, or fails after `delay`.
    func timeout(after delay: TimeAmount, on loop: any EventLoop) async throws -> Value {
        let promise = loop.makePromise(of: Value.self)
        let scheduled = loop.scheduleTask(in: delay) { promise.fail(ChannelError.operationUnsupported) }
        self.cascade(to: promise)
        defer { scheduled.cancel() }
        return try await promise.futureResult.get()
    }
}
