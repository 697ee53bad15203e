import LearnStoreEngine
import LearnStoreModel
import LearnStoreProtocol
import NIOCore

/// The NIO shell of one client connection. It splits bytes into frames, asks the
/// ``ConnectionStateMachine`` what to do, runs each request batch on the tenant's actor synchronously
/// under the tenant's lock, holds responses until the writes they depend on are committed, and
/// applies back-pressure.
///
/// Its per-connection state skips Swift's dynamic exclusivity checks (each access costs a call into the
/// runtime, together about 1-2 % of the server's CPU on pipelined gets): a handler runs only on its
/// channel's event loop, and no property is passed `inout` to code that reaches back into the handler.
final class ConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = Never
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: ServerContext
    private let decoder: FrameDecoder
    @exclusivity(unchecked) private var machine = ConnectionStateMachine()
    @exclusivity(unchecked) private var cumulation: ByteBuffer?
    @exclusivity(unchecked) private var batch: [Frame] = []
    @exclusivity(unchecked) private var tenant: TenantActor?
    @exclusivity(unchecked) private var context: ChannelHandlerContext?

    /// Requests read but not yet answered (written to the socket).
    @exclusivity(unchecked) private var inFlight = 0
    /// Responses waiting for their writes to be committed, in order.
    @exclusivity(unchecked) private var held: [BatchResult] = []
    @exclusivity(unchecked) private var subscribed = false
    @exclusivity(unchecked) private var authenticating = false
    /// An admin request (SNAPSHOT, RESTORE_TENANT) is running; later frames wait so responses keep order.
    @exclusivity(unchecked) private var runningAdmin = false
    @exclusivity(unchecked) private var readPending = false
    @exclusivity(unchecked) private var draining = false
    @exclusivity(unchecked) private var closing = false
    @exclusivity(unchecked) private var lastFrameAt: NIODeadline = .now()
    private let connectedAt: NIODeadline = .now()
    private var timer: RepeatedTask?
    /// A framing error to report (then close) once the requests read before it are answered.
    @exclusivity(unchecked) private var pendingFailure: LearnStoreError?
    @exclusivity(unchecked) private var admitted = false

    init(server: ServerContext) {
        self.server = server
        self.decoder = FrameDecoder(maximumFrameBytes: server.configuration.maximumFrameBytes)
    }

    // MARK: lifecycle

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        guard server.runtime.admitConnection(limit: server.configuration.maximumConnections) else {
            var writer = ByteWriter()
            writer.writeErrorFrame(opcode: 0, requestID: 0, LearnStoreError(.tooManyConnections, "the server is at its limit of \(server.configuration.maximumConnections) connections"))
            closing = true
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: writer.bytes))).whenComplete { [channel = context.channel] _ in
                channel.close(promise: nil)
            }
            return
        }
        admitted = true
        server.connections.add(context.channel)
        server.metrics.connectionOpened(current: server.runtime.connections)
        let interval = TimeAmount.milliseconds(Int64(min(1000, server.configuration.handshakeTimeoutSeconds * 250)))
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            loopBound.value.checkTimeouts()
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if admitted {
            admitted = false
            server.connections.remove(context.channel)
            server.runtime.connectionClosed()
            server.metrics.connectionClosed(current: server.runtime.connections)
        }
        machine.close()
        closing = true
        held.removeAll()
        self.context = nil
        context.fireChannelInactive()
    }

    private func checkTimeouts() {
        guard let context, !closing else { return }
        let now = NIODeadline.now()
        if machine.session == nil,
            now - connectedAt > .milliseconds(Int64(server.configuration.handshakeTimeoutSeconds * 1000))
        {
            fail(LearnStoreError(.timeout, "HELLO and AUTH were not completed within \(server.configuration.handshakeTimeoutSeconds) s"), context: context)
        } else if inFlight == 0, now - lastFrameAt > .milliseconds(Int64(server.configuration.idleTimeoutSeconds * 1000)) {
            fail(LearnStoreError(.timeout, "no request for \(server.configuration.idleTimeoutSeconds) s"), context: context)
        }
    }

    /// Sends an error with request id 0 and closes.
    private func fail(_ error: LearnStoreError, context: ChannelHandlerContext, opcode: UInt8 = 0, requestID: UInt32 = 0) {
        guard !closing else { return }
        closing = true
        machine.close()
        var writer = ByteWriter()
        writer.writeErrorFrame(opcode: opcode, requestID: requestID, error)
        server.metrics.recordError(opcode: opcode, code: error.code)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: writer.bytes))).whenComplete { [channel = context.channel] _ in
            channel.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ShutdownRequest {
            draining = true
            closeIfDrained()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func failIfDrained(context: ChannelHandlerContext) {
        guard let error = pendingFailure, inFlight == 0, held.isEmpty else { return }
        pendingFailure = nil
        fail(error, context: context)
    }

    private func closeIfDrained() {
        guard draining, !closing, let context, inFlight == 0 else { return }
        closing = true
        context.flush()
        context.close(promise: nil)
    }

    // MARK: reading

    private var mayParse: Bool {
        !closing && pendingFailure == nil && !authenticating && !runningAdmin && inFlight < server.configuration.maximumInFlight
    }

    private var mayRead: Bool {
        mayParse && !draining && (context?.channel.isWritable ?? false)
    }

    func read(context: ChannelHandlerContext) {
        if mayRead {
            context.read()
        } else {
            readPending = true
        }
    }

    private func resumeReadingIfPossible() {
        guard let context else { return }
        // Frames already buffered come first, round after round: they may be all the client has sent
        // (it waits for their answers), so waiting for more bytes from the socket would wait forever.
        while mayParse, let before = cumulation?.readableBytes {
            parseBuffered(context: context)
            dispatchBatch(context: context)
            context.flush()
            if cumulation?.readableBytes == before { break }  // only an incomplete frame is left
        }
        if readPending && mayRead {
            readPending = false
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        resumeReadingIfPossible()
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if closing { return }
        if cumulation == nil {
            cumulation = incoming
        } else {
            cumulation!.writeBuffer(&incoming)
        }
        parseBuffered(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        dispatchBatch(context: context)
        context.flush()
        // Parsing stopped at the in-flight limit; answered reads lowered the count again, and the
        // rest of the buffer must not wait for bytes the client may never send.
        resumeReadingIfPossible()
    }

    private func parseBuffered(context: ChannelHandlerContext) {
        guard var buffer = cumulation else { return }
        cumulation = nil
        defer {
            if buffer.readableBytes > 0 {
                if buffer.readerIndex > 65536 { buffer.discardReadBytes() }
                cumulation = buffer
            }
        }
        // The idle timeout needs when frames last arrived, not each frame's time: one clock read
        // per read, not per pipelined request.
        var stampedArrival = false
        while mayParse {
            let frame: Frame
            do {
                guard let next = try decoder.next(from: &buffer) else { return }
                frame = next
            } catch {
                // The stream can no longer be parsed: answer what was read before the bad frame,
                // then send the error and close.
                buffer.moveReaderIndex(to: buffer.writerIndex)
                dispatchBatch(context: context)
                pendingFailure = LearnStoreError(error.code, error.message)
                failIfDrained(context: context)
                return
            }
            if !stampedArrival {
                lastFrameAt = .now()
                stampedArrival = true
            }
            inFlight += 1
            switch machine.frameReceived(opcode: frame.header.opcode) {
            case .ignore:
                inFlight -= 1
            case .hello:
                answerHello(frame, context: context)
            case .authenticate:
                dispatchBatch(context: context)
                authenticating = true
                authenticateWhenIdle(frame, context: context)
            case .answerLocally:
                var writer = ByteWriter()
                if frame.header.flags != 0 || frame.payload.readableBytes > 64 {
                    let error = LearnStoreError(.badFrame, frame.header.flags != 0 ? "request flags must be 0" : "a PING payload is at most 64 bytes")
                    writer.writeErrorFrame(opcode: frame.header.opcode, requestID: frame.header.requestID, error)
                    server.metrics.recordError(opcode: frame.header.opcode, code: error.code)
                } else {
                    writer.writeFrame(FrameHeader(opcode: frame.header.opcode, requestID: frame.header.requestID)) { w in
                        w.writeBytes(frame.payload.readableBytesView)
                    }
                }
                writeLocal(writer.bytes, count: 1, context: context)
            case .dispatch(let session) where AdminExecutor.handles(frame.header.opcode, features: server.configuration.features):
                dispatchBatch(context: context)
                runningAdmin = true
                runAdminWhenIdle(frame, session: session, context: context)
            case .dispatch:
                batch.append(frame)
            case .reject(let error, let close):
                if close {
                    inFlight -= 1
                    fail(error, context: context, opcode: frame.header.opcode, requestID: frame.header.requestID)
                    return
                }
                var writer = ByteWriter()
                writer.writeErrorFrame(opcode: frame.header.opcode, requestID: frame.header.requestID, error)
                server.metrics.recordError(opcode: frame.header.opcode, code: error.code)
                writeLocal(writer.bytes, count: 1, context: context)
            }
        }
    }

    // MARK: handshake

    private func answerHello(_ frame: Frame, context: ChannelHandlerContext) {
        guard frame.header.flags == 0 else {
            inFlight -= 1
            machine.close()
            fail(LearnStoreError(.badFrame, "HELLO: request flags must be 0"), context: context, opcode: Opcode.hello, requestID: frame.header.requestID)
            return
        }
        let request: HelloRequest
        do {
            request = try frame.readPayload { (r) throws(DecodeError) in try HelloRequest.decode(from: &r) }
        } catch {
            inFlight -= 1
            machine.close()
            fail(LearnStoreError(.badFrame, "HELLO payload: \(error)"), context: context, opcode: Opcode.hello, requestID: frame.header.requestID)
            return
        }
        switch machine.helloReceived(request) {
        case .failure(let error):
            inFlight -= 1
            fail(error, context: context, opcode: Opcode.hello, requestID: frame.header.requestID)
        case .success(let version):
            var features: ProtocolFeatures = [.records]
            features.formUnion(server.configuration.features)
            let response = HelloResponse(
                version: version, serverVersion: server.configuration.serverVersion,
                maximumFrameBytes: UInt32(server.configuration.maximumFrameBytes),
                maximumInFlight: UInt32(server.configuration.maximumInFlight), features: features)
            var writer = ByteWriter()
            writer.writeFrame(FrameHeader(opcode: Opcode.hello, requestID: frame.header.requestID)) { response.encode(into: &$0) }
            writeLocal(writer.bytes, count: 1, context: context)
        }
    }

    /// AUTH waits for earlier batches so its response keeps request order.
    private func authenticateWhenIdle(_ frame: Frame, context: ChannelHandlerContext) {
        guard held.isEmpty else {
            let loopBound = NIOLoopBound((self, frame), eventLoop: context.eventLoop)
            context.eventLoop.execute {
                let (handler, frame) = loopBound.value
                guard let context = handler.context else { return }
                handler.authenticateWhenIdle(frame, context: context)
            }
            return
        }
        guard frame.header.flags == 0 else {
            finishAuthentication(frame, result: .failure(LearnStoreError(.badFrame, "AUTH: request flags must be 0")), context: context)
            return
        }
        let token: String
        do {
            token = try frame.readPayload { (r) throws(DecodeError) in try AuthRequest.decode(from: &r) }.token
        } catch {
            finishAuthentication(frame, result: .failure(LearnStoreError(.badFrame, "AUTH payload: \(error)")), context: context)
            return
        }
        let verifier = server.verifier
        let now = server.clock.now()
        let loopBound = NIOLoopBound((self, frame), eventLoop: context.eventLoop)
        let promise = context.eventLoop.makePromise(of: Result<(CallerIdentity, Timestamp), LearnStoreError>.self)
        promise.completeWithTask {
            do throws(LearnStoreError) {
                return .success(try await verifier.verify(token, now: now))
            } catch {
                return .failure(error)
            }
        }
        promise.futureResult.whenSuccess { result in
            let (handler, frame) = loopBound.value
            guard let context = handler.context else { return }
            handler.finishAuthentication(frame, result: result, context: context)
        }
    }

    private func finishAuthentication(_ frame: Frame, result: Result<(CallerIdentity, Timestamp), LearnStoreError>, context: ChannelHandlerContext) {
        authenticating = false
        let action: ConnectionStateMachine.AuthAction
        switch result {
        case .success(let (identity, expires)): action = machine.authenticationSucceeded(identity, expiresAt: expires)
        case .failure(let error): action = machine.authenticationFailed(error)
        }
        var writer = ByteWriter()
        switch action {
        case .accept(let session):
            _ = session
            writer.writeFrame(FrameHeader(opcode: Opcode.auth, requestID: frame.header.requestID)) {
                AuthResponse(identity: session.identity, expiresAt: session.expiresAt).encode(into: &$0)
            }
        case .reject(let error, let close):
            server.metrics.recordError(opcode: Opcode.auth, code: error.code)
            if close {
                inFlight -= 1
                fail(error, context: context, opcode: Opcode.auth, requestID: frame.header.requestID)
                return
            }
            writer.writeErrorFrame(opcode: Opcode.auth, requestID: frame.header.requestID, error)
        }
        writeLocal(writer.bytes, count: 1, context: context)
        context.flush()
        resumeReadingIfPossible()
    }

    // MARK: admin requests

    /// Runs an admin request once every earlier response is written (so responses keep request
    /// order), as a task off the event loop; the tenant and other connections keep being served.
    private func runAdminWhenIdle(_ frame: Frame, session: Session, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, frame), eventLoop: context.eventLoop)
        guard held.isEmpty else {
            // Earlier responses wait for their writes' commit (a millisecond or so): look again shortly.
            context.eventLoop.scheduleTask(in: .milliseconds(1)) {
                let (handler, frame) = loopBound.value
                guard let context = handler.context else { return }
                handler.runAdminWhenIdle(frame, session: session, context: context)
            }
            return
        }
        let server = self.server
        let started = NIODeadline.now()
        let promise = context.eventLoop.makePromise(of: AdminResponse.self)
        promise.completeWithTask {
            let (bytes, error) = await AdminExecutor.execute(frame, session: session, server: server)
            return AdminResponse(bytes: bytes, error: error)
        }
        promise.futureResult.whenSuccess { response in
            let (handler, frame) = loopBound.value
            handler.runningAdmin = false
            handler.server.metrics.recordBatch(counts: [frame.header.opcode: 1], nanoseconds: (NIODeadline.now() - started).nanoseconds)
            if let code = response.error { handler.server.metrics.recordError(opcode: frame.header.opcode, code: code) }
            guard let context = handler.context else { return }
            handler.writeLocal(response.bytes, count: 1, context: context)
            context.flush()
            handler.resumeReadingIfPossible()
            handler.closeIfDrained()
        }
    }

    private struct AdminResponse: Sendable {
        var bytes: [UInt8]
        var error: LearnStoreError.Code?
    }

    // MARK: dispatch and responses

    private func dispatchBatch(context: ChannelHandlerContext) {
        guard !batch.isEmpty else { return }
        let frames = batch
        batch.removeAll(keepingCapacity: true)
        if server.runtime.isLoading {
            answerWhileLoading(frames, context: context)
            return
        }
        if tenant == nil, let session = machine.session {
            // Bound on first use after recovery, so a connection never holds a pre-recovery actor.
            tenant = server.registry.tenant(session.identity.tenantID)
        }
        guard let tenant, let session = machine.session else {
            // Cannot happen: dispatch requires a session. Answer rather than lose requests.
            var writer = ByteWriter()
            for frame in frames {
                writer.writeErrorFrame(opcode: frame.header.opcode, requestID: frame.header.requestID, LearnStoreError(.internalError, "no tenant for this connection"))
            }
            writeLocal(writer.bytes, count: frames.count, context: context)
            return
        }
        let environment = server.environment
        let started = NIODeadline.now()
        let commits = server.commits
        // This loop runs the batch itself, under the tenant's lock (see TenantExecutor).
        let result = tenant.withExclusiveAccess { tenant in
            RequestExecutor.execute(frames, session: session, tenant: tenant, environment: environment)
        }
        if result.maximumLSN > commits.committedLSN { commits.writeQueued() }
        deliver(result, started: started, context: context)
    }

    /// While the server recovers: PING and INFO work, data requests get LOADING.
    private func answerWhileLoading(_ frames: [Frame], context: ChannelHandlerContext) {
        var writer = ByteWriter()
        for frame in frames {
            let header = FrameHeader(opcode: frame.header.opcode, requestID: frame.header.requestID)
            switch frame.header.opcode {
            case Opcode.ping where frame.payload.readableBytes <= 64 && frame.header.flags == 0:
                writer.writeFrame(header) { $0.writeBytes(frame.payload.readableBytesView) }
            case Opcode.info where frame.payload.readableBytes == 0 && frame.header.flags == 0:
                let info = server.environment.info()
                writer.writeFrame(header) { $0.writeBytes(Array(info.utf8)) }
            case Opcode.ping, Opcode.info:
                let error = LearnStoreError(.badFrame, "malformed \(Opcode.name(frame.header.opcode)) request")
                writer.writeErrorFrame(opcode: frame.header.opcode, requestID: frame.header.requestID, error)
                server.metrics.recordError(opcode: frame.header.opcode, code: error.code)
            default:
                let error = LearnStoreError(.loading, "the server is recovering its data (\(server.runtime.recoveryProgress)); retry shortly")
                writer.writeErrorFrame(opcode: frame.header.opcode, requestID: frame.header.requestID, error)
                server.metrics.recordError(opcode: frame.header.opcode, code: .loading)
            }
        }
        writeLocal(writer.bytes, count: frames.count, context: context)
    }

    private func deliver(_ result: BatchResult, started: NIODeadline, context: ChannelHandlerContext) {
        server.metrics.recordBatch(counts: result.counts, nanoseconds: (NIODeadline.now() - started).nanoseconds)
        for (opcode, code) in result.errors { server.metrics.recordError(opcode: opcode, code: code) }
        if held.isEmpty && result.maximumLSN <= server.commits.committedLSN {
            writeLocal(result.bytes, count: result.responses.count, context: context)
            return
        }
        held.append(result)
        releaseHeld(context: context)
    }

    /// Writes held batches whose writes are committed (or failed), in order.
    private func releaseHeld(context: ChannelHandlerContext) {
        let commits = server.commits
        while let first = held.first {
            let committed = commits.committedLSN
            let unresolved = first.responses.contains { $0.lsn > committed && !commits.hasFailed($0.lsn) }
            if unresolved { break }
            held.removeFirst()
            if first.responses.contains(where: { $0.lsn > committed }) {
                // Some responses observed writes that failed: replace those by errors.
                var writer = ByteWriter(capacity: first.bytes.count)
                for meta in first.responses {
                    if meta.lsn > committed {
                        writer.writeErrorFrame(opcode: meta.opcode, requestID: meta.requestID, LearnStoreError(.storageUnavailable, "the write could not be made durable and was undone"))
                        server.metrics.recordError(opcode: meta.opcode, code: .storageUnavailable)
                    } else {
                        writer.writeBytes(first.bytes[meta.range])
                    }
                }
                writeLocal(writer.bytes, count: first.responses.count, context: context)
            } else {
                writeLocal(first.bytes, count: first.responses.count, context: context)
            }
        }
        if !held.isEmpty && !subscribed {
            subscribed = true
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let waitingFor = held.first?.responses.map(\.lsn).max() ?? 0
            commits.subscribe(loop: context.eventLoop, waitingFor: waitingFor) {
                let handler = loopBound.value
                handler.subscribed = false
                guard let context = handler.context else { return }
                handler.releaseHeld(context: context)
                context.flush()
                handler.resumeReadingIfPossible()
                handler.closeIfDrained()
                handler.failIfDrained(context: context)
            }
        }
    }

    private func writeLocal(_ bytes: [UInt8], count: Int, context: ChannelHandlerContext) {
        inFlight -= count
        guard !bytes.isEmpty else { return }
        context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        server.logger.debug("connection error", metadata: ["error": "\(error)"])
        closing = true
        context.close(promise: nil)
    }
}
