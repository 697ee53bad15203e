import LearnStoreClient
import LearnStoreModel
import NIOCore
import NIOPosix
import Testing

/// A server that accepts connections and never answers must not leave a client's callers waiting for
/// ever: each request fails with TIMEOUT after the configured time.
@Suite struct ClientRequestTimeoutTests {
    /// Reads and discards everything.
    final class Silent: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    }

    @Test func aServerThatNeverAnswersFailsTheRequestWithTimeout() async throws {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Silent()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let port = try #require(listener.localAddress?.port)

        let clock = ContinuousClock()
        let started = clock.now
        let refused = await #expect(throws: LearnStoreError.self) {
            _ = try await ClientConnection.connect(
                host: "127.0.0.1", port: port, group: MultiThreadedEventLoopGroup.singleton, requestTimeout: .milliseconds(300))
        }
        #expect(refused?.code == .timeout, "\(String(describing: refused))")
        #expect(refused?.message.contains("no answer from the server") == true)
        #expect(clock.now - started >= .milliseconds(300))

        var configuration = ClientConfiguration(port: port, connections: 1, reconnectAttempts: 0, token: { "unused" })
        configuration.requestTimeout = .milliseconds(300)
        let pooled = await #expect(throws: LearnStoreError.self) {
            let client = try await LearnStoreClient(configuration)
            await client.shutdown()
        }
        #expect(pooled?.code == .timeout, "\(String(describing: pooled))")
    }
}
