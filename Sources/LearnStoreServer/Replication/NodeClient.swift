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
        let connection = try await NodeConnection.open(address, credential: credential, nodeID: nodeID, group: group, timeout: timeout)
        defer { connection.close() }
        var answer = Answer(peerNodeID: connection.peerNodeID, auth: connection.auth, reply: nil)
        if let opcode {
            connection.send(opcode: opcode, requestID: 3, payload: payload)
            answer.reply = try await connection.next(timeout: timeout)
        }
        return answer
    }
}

/// An authenticated connection to another node's replication port. Frames are read only when
/// `next` asks for one, so a node streaming to it (a catch-up copy) is held back by TCP rather than
/// buffered here.
final class NodeConnection: Sendable {
    let address: String
    let peerNodeID: String
    let auth: NodeAuthReply
    private let channel: any Channel
    private let inbox: FrameInbox

    private init(address: String, peerNodeID: String, auth: NodeAuthReply, channel: any Channel, inbox: FrameInbox) {
        self.address = address
        self.peerNodeID = peerNodeID
        self.auth = auth
        self.channel = channel
        self.inbox = inbox
    }

    static func open(
        _ address: String, credential: NodeCredential, nodeID: String, group: any EventLoopGroup, timeout: TimeAmount = .seconds(10)
    ) async throws(LearnStoreError) -> NodeConnection {
        guard let (host, port) = HostPort.split(address) else {
            throw LearnStoreError(.validation, "'\(address)' is not host:port")
        }
        let loop = group.next()
        let handshake = loop.makePromise(of: (String, NodeAuthReply).self)
        let inbox = FrameInbox(address: address, handshake: NodeHandshakeClient(credential: credential, nodeID: nodeID), authenticated: handshake, timeout: timeout)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: loop)
                .connectTimeout(.seconds(2))
                .channelOption(.autoRead, value: false)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(inbox) }
                }
                .connect(hostOrAddress: host, port: port).get()
        } catch {
            handshake.fail(error)
            throw LearnStoreError(.connectionFailed, "cannot connect to \(address): \(error)")
        }
        do {
            let (peer, auth) = try await handshake.futureResult.get()
            return NodeConnection(address: address, peerNodeID: peer, auth: auth, channel: channel, inbox: inbox)
        } catch let error as LearnStoreError {
            channel.close(promise: nil)
            throw LearnStoreError(error.code, "\(address): \(error.message)")
        } catch {
            channel.close(promise: nil)
            throw LearnStoreError(.connectionFailed, "\(address): the connection closed during the node handshake")
        }
    }

    func send(opcode: UInt8, requestID: UInt32, payload: [UInt8]) {
        Self.send(channel, opcode: opcode, requestID: requestID) { $0.writeBytes(payload) }
    }

    /// The next frame; an error frame is thrown as its error. Fails after `timeout` of silence.
    func next(timeout: TimeAmount) async throws(LearnStoreError) -> Frame {
        try await inbox.next(on: channel, timeout: timeout)
    }

    func close() {
        channel.close(promise: nil)
    }

    private static func send(_ channel: any Channel, opcode: UInt8, requestID: UInt32, _ payload: (inout ByteWriter) -> Void) {
        var writer = ByteWriter(capacity: 96)
        writer.writeFrame(FrameHeader(opcode: opcode, requestID: requestID), payload: payload)
        channel.writeAndFlush(channel.allocator.buffer(bytes: writer.bytes), promise: nil)
    }
}

/// Frames of a connection whose reads are asked for (auto-read off): first the node handshake, run
/// here on the connection's event loop as its frames arrive; then `next` reads until a frame is
/// complete.
final class FrameInbox: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let address: String
    /// Until the peer proves the secret, its frames are the handshake's few dozen bytes: a peer that
    /// is not a node cannot make this one buffer more.
    private var frames = FrameAccumulator(maximumFrameBytes: ReplicationServerHandler.handshakeFrameBytes)
    private var received: [Frame] = []
    private var waiting: EventLoopPromise<Frame>?
    private var closed = false
    private var context: ChannelHandlerContext?
    private var handshake: NodeHandshakeClient?
    private var authenticated: EventLoopPromise<(String, NodeAuthReply)>?
    private let handshakeTimeout: TimeAmount
    private var handshakeDeadline: Scheduled<Void>?

    init(address: String, handshake: NodeHandshakeClient, authenticated: EventLoopPromise<(String, NodeAuthReply)>, timeout: TimeAmount) {
        self.address = address
        self.handshake = handshake
        self.authenticated = authenticated
        handshakeTimeout = timeout
    }

    func channelActive(context: ChannelHandlerContext) {
        if let handshake {
            perform(handshake.hello(), context: context)
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            handshakeDeadline = context.eventLoop.scheduleTask(in: handshakeTimeout) { [self] in
                endHandshake(.failure(LearnStoreError(.timeout, "no node handshake within \(handshakeTimeout.nanoseconds / 1_000_000) ms")), context: loopBound.value)
            }
            context.read()
        }
        context.fireChannelActive()
    }

    private func perform(_ step: NodeHandshakeClient.Step, context: ChannelHandlerContext) {
        switch step {
        case .send(let opcode, let payload):
            var writer = ByteWriter(capacity: payload.count + 16)
            writer.writeFrame(FrameHeader(opcode: opcode, requestID: opcode == ReplicationOpcode.nodeHello ? 1 : 2)) { $0.writeBytes(payload) }
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: writer.bytes)), promise: nil)
        case .authenticated(let peer, let reply):
            frames.raiseLimit(to: 16 << 20)
            endHandshake(.success((peer, reply)), context: context)
        }
    }

    private func endHandshake(_ result: Result<(String, NodeAuthReply), LearnStoreError>, context: ChannelHandlerContext) {
        handshake = nil
        handshakeDeadline?.cancel()
        guard let promise = authenticated else { return }
        authenticated = nil
        switch result {
        case .success(let value): promise.succeed(value)
        case .failure(let error):
            promise.fail(error)
            context.close(promise: nil)
        }
    }

    func next(on channel: any Channel, timeout: TimeAmount) async throws(LearnStoreError) -> Frame {
        let future: EventLoopFuture<Frame> = channel.eventLoop.flatSubmit {
            let promise = channel.eventLoop.makePromise(of: Frame.self)
            if !self.received.isEmpty {
                promise.succeed(self.received.removeFirst())
            } else if self.closed {
                promise.fail(ChannelError.ioOnClosedChannel)
            } else {
                self.waiting = promise
                let silence = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
                promise.futureResult.whenComplete { _ in silence.cancel() }
                self.context?.read()
            }
            return promise.futureResult
        }
        let frame: Frame
        do { frame = try await future.get() } catch {
            throw LearnStoreError(.connectionFailed, "\(address): the connection closed before an answer")
        }
        if frame.header.isError {
            let error = try? frame.readPayload { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) }
            throw error ?? LearnStoreError(.protocolViolation, "\(address): an undecodable error")
        }
        return frame
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            received += try frames.add(unwrapInboundIn(data))
        } catch {
            endHandshake(.failure(LearnStoreError(error.code, error.message)), context: context)
            context.close(promise: nil)
            return
        }
        while var machine = handshake, !received.isEmpty {
            let frame = received.removeFirst()
            do throws(LearnStoreError) {
                let step = try machine.receive(frame)
                handshake = machine
                perform(step, context: context)
            } catch {
                endHandshake(.failure(error), context: context)
                return
            }
        }
        if let promise = waiting, !received.isEmpty {
            waiting = nil
            promise.succeed(received.removeFirst())
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if waiting != nil || handshake != nil { context.read() }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        if authenticated != nil {
            endHandshake(.failure(LearnStoreError(.connectionFailed, "the connection closed during the node handshake")), context: context)
        }
        waiting?.fail(ChannelError.ioOnClosedChannel)
        waiting = nil
        context.fireChannelInactive()
    }
}
