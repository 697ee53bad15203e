import LearnStoreModel
import LearnStoreProtocol
@testable import LearnStoreServer
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// A node connecting to an address that is not a LearnStore node (or one that misbehaves) gives up
/// with a typed error, holding no more than a handshake frame's bytes of what the peer sends.
@Suite struct NodeConnectionTests {
    /// Answers the first bytes it reads with `reply`, then reads and discards everything.
    final class Answering: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let reply: [UInt8]
        let answered = Atomic<Bool>(false)
        init(reply: [UInt8]) { self.reply = reply }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !answered.exchange(true, ordering: .relaxed) else { return }
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: reply)), promise: nil)
        }
    }

    static func peer(answering reply: [UInt8]) async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Answering(reply: reply)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    static func open(_ port: Int, timeout: TimeAmount = .seconds(10)) async throws -> NodeConnection {
        try await NodeConnection.open(
            "127.0.0.1:\(port)", credential: try NodeCredential(secret: Array("a cluster secret of enough length".utf8)),
            nodeID: "n1", group: MultiThreadedEventLoopGroup.singleton, timeout: timeout)
    }

    /// A header announcing a 1 MiB answer to NODE_HELLO is refused at the header, at once.
    @Test func aLargeFrameBeforeThePeerProvesTheSecretIsRefusedAtItsHeader() async throws {
        var header = ByteWriter()
        header.writeU32(UInt32(FrameHeader.countedSize + (1 << 20)))
        header.writeU8(ReplicationOpcode.nodeHello)
        header.writeU8(0)
        header.writeU32(1)
        let listener = try await Self.peer(answering: header.bytes + [UInt8](repeating: 0x41, count: 4096))
        defer { listener.close(promise: nil) }
        let started = ContinuousClock.now
        do {
            _ = try await Self.open(try #require(listener.localAddress?.port))
            Issue.record("a peer that sent a 1 MiB frame was taken for a node")
        } catch let error as LearnStoreError {
            #expect(error.code == .frameTooLarge, "\(error)")
            #expect(error.message.hasPrefix("127.0.0.1:"), "the error names the address: \(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(5), "refused at the header, not after a timeout")
    }

    /// A peer that answers NODE_HELLO with something else is a protocol violation.
    @Test func aPeerAnsweringWithAnotherOpcodeIsRefused() async throws {
        var frame = ByteWriter()
        frame.writeFrame(FrameHeader(opcode: Opcode.ping, requestID: 1)) { $0.writeU8(0) }
        let listener = try await Self.peer(answering: frame.bytes)
        defer { listener.close(promise: nil) }
        do {
            _ = try await Self.open(try #require(listener.localAddress?.port))
            Issue.record("a peer answering PING was taken for a node")
        } catch let error as LearnStoreError {
            #expect(error.code == .protocolViolation, "\(error)")
        }
    }

    /// A peer that never answers is given up after the handshake's time limit.
    @Test func aSilentPeerIsGivenUpAfterTheTimeout() async throws {
        let listener = try await Self.peer(answering: [])
        defer { listener.close(promise: nil) }
        do {
            _ = try await Self.open(try #require(listener.localAddress?.port), timeout: .milliseconds(200))
            Issue.record("a silent peer was taken for a node")
        } catch let error as LearnStoreError {
            #expect(error.code == .timeout, "\(error)")
        }
    }
}
