import LearnStoreModel
import LearnStoreProtocol
import NIOCore
import NIOPosix

/// One request to another node's replication port, after the node handshake: what the operator
/// commands (`learnstore cluster status|promote`) and a returning node's check of where its log
/// diverges send.
public enum NodeClient {
    public struct Answer: Sendable {
        public var peerNodeID: String
        public var auth: NodeAuthReply
        /// The answer to the request (nil when none was sent).
        public var reply: Frame?
    }

    public static func request(
        _ address: String, credential: NodeCredential, nodeID: String, opcode: UInt8?, payload: [UInt8] = [],
        group: any EventLoopGroup, timeout: TimeAmount = .seconds(10)
    ) async throws(LearnStoreError) -> Answer {
        guard let (host, port) = ReplicaFollower.split(address) else {
            throw LearnStoreError(.validation, "'\(address)' is not host:port")
        }
        let handler = NodeRequestHandler()
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(2))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw LearnStoreError(.connectionFailed, "cannot connect to \(address): \(error)")
        }
        defer { channel.close(promise: nil) }
        let deadline = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        defer { deadline.cancel() }
        let clientNonce = NodeCredential.nonce()
        var writer = ByteWriter(capacity: 96)
        writer.writeFrame(FrameHeader(opcode: ReplicationOpcode.nodeHello, requestID: 1)) {
            ReplicationMessages.encode(NodeHello(nodeID: nodeID, nonce: clientNonce), into: &$0)
        }
        let hello = try await exchange(writer.bytes, on: channel, handler: handler, address: address)
        let helloReply: NodeHelloReply
        do { helloReply = try hello.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodeHelloReply(from: &r) } } catch {
            throw LearnStoreError(.protocolViolation, "\(address): NODE_HELLO reply: \(error)")
        }
        let proof = credential.proof(.client, clientNonce: clientNonce, serverNonce: helloReply.nonce, nodeID: nodeID)
        writer = ByteWriter(capacity: 64)
        writer.writeFrame(FrameHeader(opcode: ReplicationOpcode.nodeAuth, requestID: 2)) { ReplicationMessages.encodeAuth(proof: proof, into: &$0) }
        let authFrame = try await exchange(writer.bytes, on: channel, handler: handler, address: address)
        let auth: NodeAuthReply
        do { auth = try authFrame.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodeAuthReply(from: &r) } } catch {
            throw LearnStoreError(.protocolViolation, "\(address): NODE_AUTH reply: \(error)")
        }
        guard credential.verify(auth.proof, .server, clientNonce: clientNonce, serverNonce: helloReply.nonce, nodeID: helloReply.nodeID) else {
            throw LearnStoreError(.unauthenticated, "\(address) (node \(helloReply.nodeID)) did not prove the cluster secret")
        }
        var answer = Answer(peerNodeID: helloReply.nodeID, auth: auth, reply: nil)
        if let opcode {
            writer = ByteWriter(capacity: payload.count + 16)
            writer.writeFrame(FrameHeader(opcode: opcode, requestID: 3), payload: { $0.writeBytes(payload) })
            answer.reply = try await exchange(writer.bytes, on: channel, handler: handler, address: address)
        }
        return answer
    }

    private static func exchange(_ bytes: [UInt8], on channel: any Channel, handler: NodeRequestHandler, address: String) async throws(LearnStoreError) -> Frame {
        let promise = channel.eventLoop.makePromise(of: Frame.self)
        channel.eventLoop.execute {
            handler.expect(promise)
            channel.writeAndFlush(channel.allocator.buffer(bytes: bytes), promise: nil)
        }
        let frame: Frame
        do { frame = try await promise.futureResult.get() } catch {
            throw LearnStoreError(.connectionFailed, "\(address): the connection closed before an answer")
        }
        if frame.header.isError {
            let error = try? frame.readPayload { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) }
            throw error ?? LearnStoreError(.protocolViolation, "\(address): an undecodable error")
        }
        return frame
    }
}

/// Completes one promise per frame received, in order.
final class NodeRequestHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    private var waiting: [EventLoopPromise<Frame>] = []
    private var frames = FrameAccumulator(maximumFrameBytes: 16 << 20)

    func expect(_ promise: EventLoopPromise<Frame>) { waiting.append(promise) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let received = try? frames.add(unwrapInboundIn(data)) else {
            context.close(promise: nil)
            return
        }
        for frame in received where !waiting.isEmpty {
            waiting.removeFirst().succeed(frame)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        for promise in waiting { promise.fail(ChannelError.ioOnClosedChannel) }
        waiting.removeAll()
        context.fireChannelInactive()
    }
}
