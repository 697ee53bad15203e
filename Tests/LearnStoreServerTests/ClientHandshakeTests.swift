import LearnStoreClient
import LearnStoreModel
import LearnStoreProtocol
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// The Swift client authenticates a new connection in one round trip: AUTH follows HELLO without
/// waiting for its answer.
@Suite struct ClientHandshakeTests {
    /// Answers nothing until both HELLO and AUTH have arrived: a client that waits for HELLO's
    /// answer before sending AUTH never gets one.
    final class AnswersOnlyBoth: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        private var buffer: ByteBuffer?
        private var received: [Frame] = []
        private let decoder = FrameDecoder()

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = unwrapInboundIn(data)
            if buffer == nil { buffer = incoming } else { buffer!.writeBuffer(&incoming) }
            while let frame = try? decoder.next(from: &buffer!) { received.append(frame) }
            guard received.count == 2 else { return }
            let (hello, auth) = (received[0].header, received[1].header)
            guard hello.opcode == Opcode.hello, auth.opcode == Opcode.auth else { return context.close(promise: nil) }
            var writer = ByteWriter()
            writer.writeFrame(FrameHeader(opcode: Opcode.hello, requestID: hello.requestID)) {
                HelloResponse(version: ProtocolVersion.supported.upperBound, serverVersion: "test", maximumFrameBytes: 1 << 20, maximumInFlight: 16, features: [.records])
                    .encode(into: &$0)
            }
            writer.writeFrame(FrameHeader(opcode: Opcode.auth, requestID: auth.requestID)) {
                AuthResponse(identity: CallerIdentity(tenantID: "pipelined", personID: UUID16(high: 1, low: 2), scopes: [.recordsRead]),
                             expiresAt: Timestamp(milliseconds: 4_000_000_000_000)).encode(into: &$0)
            }
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: writer.bytes)), promise: nil)
        }
    }

    @Test func aConnectionWithATokenSendsAuthWithoutWaitingForHello() async throws {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AnswersOnlyBoth()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let port = try #require(listener.localAddress?.port)
        let connection = try await ClientConnection.connect(
            host: "127.0.0.1", port: port, group: MultiThreadedEventLoopGroup.singleton, requestTimeout: .seconds(5), token: "a token")
        #expect(connection.hello.serverVersion == "test")
        #expect(connection.identity?.identity.tenantID == "pipelined")
        await connection.close()
    }

    /// Against the real server: a refused token fails the connection with the AUTH's error, and a
    /// good one leaves it authenticated.
    @Test func theRealServerTakesAuthPipelinedBehindHello() async throws {
        let server = try await TestServer.start()
        let refused = await #expect(throws: LearnStoreError.self) {
            _ = try await ClientConnection.connect(host: "127.0.0.1", port: server.port, group: MultiThreadedEventLoopGroup.singleton, token: "not.a.token")
        }
        #expect(refused?.code == .unauthenticated, "\(String(describing: refused))")
        let connection = try await ClientConnection.connect(
            host: "127.0.0.1", port: server.port, group: MultiThreadedEventLoopGroup.singleton, token: try await server.token())
        #expect(connection.identity != nil)
        let answer = try await connection.send(opcode: Opcode.ping) { _ in }
        #expect(!answer.header.isError)
        await connection.close()
        try await server.stop()
    }

    /// An AUTH behind a HELLO the server refuses is never handled: the refusal closes the connection
    /// (docs/PROTOCOL.md, section 3, step 3).
    @Test func anAuthBehindARefusedHelloIsNotHandled() async throws {
        let server = try await TestServer.start()
        let raw = try RawConnection(port: server.port)
        let unsupported = ProtocolVersion.supported.upperBound + 1
        let token = try await server.token()
        #expect(raw.send(
            RawConnection.frame(Opcode.hello, id: 1) { HelloRequest(minimumVersion: unsupported, maximumVersion: unsupported, clientName: "future").encode(into: &$0) }
                + RawConnection.frame(Opcode.auth, id: 2) { AuthRequest(token: token).encode(into: &$0) }))
        let reply = try #require(await raw.receiveFrame())
        #expect(reply.header.requestID == 1)
        #expect(raw.error(of: reply)?.code == .unsupportedVersion)
        #expect(await raw.isClosedByPeer(), "closed, with no answer to the AUTH")
        try await server.stop()
    }
}
