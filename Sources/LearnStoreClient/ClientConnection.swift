import LearnStoreModel
import LearnStoreProtocol
import NIOCore
import NIOPosix
import Synchronization

/// One request on the wire: its encoded frame and the promise its response completes.
struct OutboundRequest {
    var frame: ByteBuffer
    var requestID: UInt32
    var promise: EventLoopPromise<Frame>
}

/// Matches responses to requests. Responses come in request order (docs/PROTOCOL.md, section 2), so
/// the pending table is a FIFO; the request id is checked as well.
///
/// A request unanswered after `requestTimeout` fails with TIMEOUT, and so does every request behind it
/// on the connection, which is closed: answers come in order, so once one is overdue the connection
/// cannot be trusted to answer the others, and a server that stopped answering never leaves a caller
/// waiting for ever.
final class ClientChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = OutboundRequest
    typealias OutboundOut = ByteBuffer

    private var pending = CircularBuffer<(id: UInt32, promise: EventLoopPromise<Frame>, deadline: NIODeadline)>(initialCapacity: 64)
    private var cumulation: ByteBuffer?
    private let decoder: FrameDecoder
    private let requestTimeout: TimeAmount
    /// Armed while requests are pending, for the oldest one's deadline.
    private var timeoutCheck: Scheduled<Void>?

    init(maximumFrameBytes: Int, requestTimeout: TimeAmount) {
        decoder = FrameDecoder(maximumFrameBytes: maximumFrameBytes)
        self.requestTimeout = requestTimeout
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard context.channel.isActive else {
            request.promise.fail(LearnStoreError(.connectionFailed, "the connection is closed"))
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        pending.append((request.requestID, request.promise, .now() + requestTimeout))
        if timeoutCheck == nil { armTimeoutCheck(context: context) }
        context.write(wrapOutboundOut(request.frame), promise: promise)
    }

    private func armTimeoutCheck(context: ChannelHandlerContext) {
        guard let oldest = pending.first else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timeoutCheck = context.eventLoop.scheduleTask(deadline: oldest.deadline) {
            let (handler, context) = loopBound.value
            handler.timeoutCheck = nil
            handler.checkTimeouts(context: context)
        }
    }

    private func checkTimeouts(context: ChannelHandlerContext) {
        guard let oldest = pending.first else { return }
        guard oldest.deadline <= .now() else { return armTimeoutCheck(context: context) }
        let seconds = Double(requestTimeout.nanoseconds) / 1e9
        failAll(LearnStoreError(.timeout, "no answer from the server within \(seconds) s (the connection is closed; requests on it fail)"))
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if cumulation == nil { cumulation = incoming } else { cumulation!.writeBuffer(&incoming) }
        guard var buffer = cumulation else { return }
        cumulation = nil
        while true {
            let frame: Frame?
            do {
                frame = try decoder.next(from: &buffer)
            } catch {
                failAll(LearnStoreError(.protocolViolation, "server frame: \(error.message)"))
                context.close(promise: nil)
                return
            }
            guard let frame else { break }
            guard let (id, promise, _) = pending.popFirst() else {
                // An unsolicited error (e.g. TOO_MANY_CONNECTIONS, TIMEOUT) before any request.
                continue
            }
            if frame.header.requestID != id && frame.header.requestID != 0 {
                promise.fail(LearnStoreError(.protocolViolation, "response id \(frame.header.requestID) does not match request \(id)"))
                failAll(LearnStoreError(.protocolViolation, "responses out of order"))
                context.close(promise: nil)
                return
            }
            promise.succeed(frame)
        }
        if buffer.readableBytes > 0 { cumulation = buffer }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeoutCheck?.cancel()
        timeoutCheck = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeoutCheck?.cancel()
        timeoutCheck = nil
        failAll(LearnStoreError(.connectionFailed, "the connection was closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(LearnStoreError(.connectionFailed, "connection error: \(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: LearnStoreError) {
        while let (_, promise, _) = pending.popFirst() { promise.fail(error) }
    }
}

/// One authenticated connection to a LearnStore server, safe to use from many tasks at once:
/// concurrent requests are pipelined.
public final class ClientConnection: Sendable {
    public let channel: any Channel
    public let hello: HelloResponse
    private let nextID: Mutex<UInt32>
    private let session: Mutex<AuthResponse?>

    init(channel: any Channel, hello: HelloResponse) {
        self.channel = channel
        self.hello = hello
        self.nextID = Mutex(1)
        self.session = Mutex<AuthResponse?>(nil)
    }

    public var isActive: Bool { channel.isActive }
    public var identity: AuthResponse? { session.withLock { $0 } }

    /// Connects and sends HELLO; with `token`, AUTH right behind it, without waiting for HELLO's
    /// answer (docs/PROTOCOL.md, section 3: what is pipelined behind HELLO and AUTH runs under their
    /// outcome), so the connection is authenticated after one round trip instead of two. A refused
    /// HELLO is the error thrown, whatever became of the AUTH behind it.
    public static func connect(
        host: String, port: Int, group: any EventLoopGroup, clientName: String = "learnstore-swift",
        connectTimeout: TimeAmount = .seconds(5), maximumFrameBytes: Int = 64 << 20, requestTimeout: TimeAmount = .seconds(120),
        token: String? = nil
    ) async throws(LearnStoreError) -> ClientConnection {
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ClientChannelHandler(maximumFrameBytes: maximumFrameBytes, requestTimeout: requestTimeout))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw LearnStoreError(.connectionFailed, "cannot connect to \(host):\(port): \(error)")
        }
        let provisional = ClientConnection(channel: channel, hello: HelloResponse(version: 0, serverVersion: "", maximumFrameBytes: 0, maximumInFlight: 0, features: []))
        do {
            let helloAnswer = provisional.start(opcode: Opcode.hello) { HelloRequest(clientName: clientName).encode(into: &$0) }
            let authAnswer = token.map { token in provisional.start(opcode: Opcode.auth) { AuthRequest(token: token).encode(into: &$0) } }
            let frame = try await helloAnswer.response()
            let hello = try ClientConnection.decode(frame) { (r) throws(DecodeError) in try HelloResponse.decode(from: &r) }
            let connection = ClientConnection(channel: channel, hello: hello)
            if let authAnswer {
                let identity = try Self.decode(try await authAnswer.response()) { (r) throws(DecodeError) in try AuthResponse.decode(from: &r) }
                connection.session.withLock { $0 = identity }
            }
            return connection
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// Sends AUTH; on success the connection acts as the token's identity.
    @discardableResult
    public func authenticate(token: String) async throws(LearnStoreError) -> AuthResponse {
        let frame = try await send(opcode: Opcode.auth) { AuthRequest(token: token).encode(into: &$0) }
        let response = try Self.decode(frame) { (r) throws(DecodeError) in try AuthResponse.decode(from: &r) }
        session.withLock { $0 = response }
        return response
    }

    /// Sends one request and waits for its response payload; an error response throws.
    public func send(opcode: UInt8, payload: (inout ByteWriter) -> Void) async throws(LearnStoreError) -> Frame {
        try await start(opcode: opcode, payload: payload).response()
    }

    /// A request sent whose response has not been awaited yet.
    public struct PendingResponse: Sendable {
        let future: EventLoopFuture<Frame>

        /// The response payload; an error response throws.
        public func response() async throws(LearnStoreError) -> Frame {
            let frame: Frame
            do {
                frame = try await future.get()
            } catch let error as LearnStoreError {
                throw error
            } catch {
                throw LearnStoreError(.connectionFailed, "\(error)")
            }
            if frame.header.isError {
                throw (try? frame.readPayload { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) })
                    ?? LearnStoreError(.protocolViolation, "malformed error response")
            }
            return frame
        }
    }

    /// Sends one request without waiting for its response. Requests started by one task leave in
    /// the order of the calls, so a caller may pipeline them (an AUTH, then the requests it allows):
    /// the server answers in order (docs/PROTOCOL.md 3.1), and the caller must keep reading.
    public func start(opcode: UInt8, payload: (inout ByteWriter) -> Void) -> PendingResponse {
        var writer = ByteWriter(capacity: 128)
        let requestID = nextID.withLock { value in
            defer { value = value &+ 1 == 0 ? 1 : value &+ 1 }
            return value
        }
        writer.writeFrame(FrameHeader(opcode: opcode, requestID: requestID), payload: payload)
        let promise = channel.eventLoop.makePromise(of: Frame.self)
        let request = OutboundRequest(frame: channel.allocator.buffer(bytes: writer.bytes), requestID: requestID, promise: promise)
        let channel = self.channel
        // On the channel's loop, an active channel's pipeline is intact, so the request reaches the
        // handler's pending table (and is failed if the connection later drops); a closed channel
        // fails the request at once instead of leaving it unanswered.
        channel.eventLoop.execute {
            guard channel.isActive else {
                promise.fail(LearnStoreError(.connectionFailed, "the connection is closed"))
                return
            }
            channel.writeAndFlush(request, promise: nil)
        }
        return PendingResponse(future: promise.futureResult)
    }

    public func close() async {
        try? await channel.close()
    }

    static func decode<T>(_ frame: Frame, _ body: (inout ByteReader) throws(DecodeError) -> T) throws(LearnStoreError) -> T {
        do {
            return try frame.readPayload(body)
        } catch {
            throw LearnStoreError(.protocolViolation, "cannot parse the \(Opcode.name(frame.header.opcode)) response: \(error)")
        }
    }
}
