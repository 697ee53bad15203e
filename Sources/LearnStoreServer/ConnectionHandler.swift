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
    /// Before AUTH succeeds frames are small (a HELLO, an AUTH), so an unauthenticated client cannot
    /// make the server buffer a large frame.
    private let handshakeDecoder: FrameDecoder
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
    /// After a graceful shutdown closed the sending side: input is read and dropped until the client closes.
    @exclusivity(unchecked) private var discardingInput = false
    /// An AUTH or admin request waiting for every earlier request to be answered.
    @exclusivity(unchecked) private var deferred: DeferredRequest?

    // Memory this connection holds, bounded by configuration (docs/OPERATIONS.md, "Limits").
    /// Responses written since the last flush, sent together with one write.
    @exclusivity(unchecked) private var outbound: ByteBuffer?
    /// Response bytes flushed to the channel that the kernel has not taken yet.
    @exclusivity(unchecked) private var unsentBytes = 0
    /// Response bytes held until the writes they observed are committed.
    @exclusivity(unchecked) private var heldBytes = 0
    /// Bytes of parsed frames waiting in `batch` (their storage stays alive until they run).
    @exclusivity(unchecked) private var batchBytes = 0
    /// Bytes taken from the server-wide input budget.
    @exclusivity(unchecked) private var inputReserved = 0

    private enum DeferredRequest {
        case authenticate(Frame)
        case admin(Frame, Session)
    }

    init(server: ServerContext) {
        self.server = server
        self.decoder = FrameDecoder(maximumFrameBytes: server.configuration.maximumFrameBytes)
        self.handshakeDecoder = FrameDecoder(
            maximumFrameBytes: min(server.configuration.maximumHandshakeFrameBytes, server.configuration.maximumFrameBytes))
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
        heldBytes = 0
        batch.removeAll()
        batchBytes = 0
        cumulation = nil
        outbound = nil
        deferred = nil
        updateInputReservation()
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
        flushOutput(context: context)
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
            resumeReadingIfPossible()
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

    /// A graceful shutdown ends a connection without losing an answer: reading stops, every request
    /// already received is answered (those not yet run with SHUTTING_DOWN), a last SHUTTING_DOWN with
    /// request id 0 says why, and the server closes only its sending side. It then reads and discards
    /// until the client closes (or the server's drain deadline), because closing a socket with unread
    /// input makes the kernel send a reset that destroys replies the client has not read yet.
    private func closeIfDrained() {
        guard draining, !closing, let context, inFlight == 0, batch.isEmpty, deferred == nil, !outputBlocked else { return }
        var writer = ByteWriter()
        writer.writeErrorFrame(opcode: 0, requestID: 0, LearnStoreError(.shuttingDown, "the server is shutting down; requests sent after the ones answered were not read"))
        writeLocal(writer.bytes, count: 0, context: context)
        flushOutput(context: context)
        closing = true
        discardingInput = true
        cumulation = nil
        updateInputReservation()
        let channel = context.channel
        context.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
        context.read()
    }

    // MARK: reading

    /// Whether requests already parsed may run: not while the client leaves its responses unread.
    private var mayRun: Bool {
        !closing && !outputBlocked
    }

    private var mayParse: Bool {
        mayRun && pendingFailure == nil && !authenticating && !runningAdmin && inFlight < server.configuration.maximumInFlight
    }

    private var pendingOutputBytes: Int { unsentBytes + heldBytes + (outbound?.readableBytes ?? 0) }

    /// While the server-wide budget is exhausted, a connection runs nothing more until the kernel has
    /// taken all its responses; each connection's own write completions wake it, so nothing polls.
    private var outputBlocked: Bool {
        let pending = pendingOutputBytes
        return pending >= server.configuration.connectionOutputSoftLimitBytes || (pending > 0 && server.outputBudget.isExhausted)
    }

    private var mayRead: Bool {
        mayParse && !draining && (context?.channel.isWritable ?? false)
    }

    func read(context: ChannelHandlerContext) {
        if discardingInput {
            context.read()
        } else if mayRead {
            context.read()
        } else {
            readPending = true
        }
    }

    private func resumeReadingIfPossible() {
        guard let context else { return }
        // Frames already buffered come first, round after round: they may be all the client has sent
        // (it waits for their answers), so waiting for more bytes from the socket would wait forever.
        while mayRun {
            let buffered = cumulation?.readableBytes ?? 0
            let queued = batch.count
            if mayParse { parseBuffered(context: context) }
            dispatchBatch(context: context)
            startDeferredIfIdle(context: context)
            flushOutput(context: context)
            if (cumulation?.readableBytes ?? 0) == buffered && batch.count == queued { break }  // no progress
        }
        if readPending && mayRead {
            readPending = false
            context.read()
        }
        failIfDrained(context: context)
        closeIfDrained()
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
        if mayParse { parseBuffered(context: context) }
        updateInputReservation()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if mayRun { dispatchBatch(context: context) }
        startDeferredIfIdle(context: context)
        flushOutput(context: context)
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
                let decoder = machine.session == nil ? handshakeDecoder : decoder
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
                authenticating = true
                deferred = .authenticate(frame)
                dispatchBatch(context: context)
                startDeferredIfIdle(context: context)
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
                runningAdmin = true
                deferred = .admin(frame, session)
                dispatchBatch(context: context)
                startDeferredIfIdle(context: context)
            case .dispatch:
                batch.append(frame)
                batchBytes += frame.payload.readableBytes + FrameHeader.size
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

    /// Starts the AUTH or admin request that waits for every earlier request to be answered, so
    /// its response keeps request order. Called whenever a batch runs or held responses are released.
    private func startDeferredIfIdle(context: ChannelHandlerContext) {
        guard let request = deferred, batch.isEmpty, held.isEmpty, !closing else { return }
        deferred = nil
        switch request {
        case .authenticate(let frame): authenticate(frame, context: context)
        case .admin(let frame, let session): runAdmin(frame, session: session, context: context)
        }
    }

    private func authenticate(_ frame: Frame, context: ChannelHandlerContext) {
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
        let promise = context.eventLoop.makePromise(of: Result<VerifiedToken, LearnStoreError>.self)
        Task(executorPreference: EventLoopTaskExecutor(loop: context.eventLoop)) {
            do throws(LearnStoreError) {
                promise.succeed(.success(try await verifier.verify(token, now: now)))
            } catch {
                promise.succeed(.failure(error))
            }
        }
        promise.futureResult.whenSuccess { result in
            let (handler, frame) = loopBound.value
            guard let context = handler.context else { return }
            handler.finishAuthentication(frame, result: result, context: context)
        }
    }

    private func finishAuthentication(_ frame: Frame, result: Result<VerifiedToken, LearnStoreError>, context: ChannelHandlerContext) {
        authenticating = false
        let action: ConnectionStateMachine.AuthAction
        switch result {
        case .success(let token): action = machine.authenticationSucceeded(token)
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
        flushOutput(context: context)
        resumeReadingIfPossible()
    }

    // MARK: admin requests

    /// Runs an admin request (every earlier response is written, see `startDeferredIfIdle`) as a
    /// task off the event loop; the tenant and other connections keep being served.
    private func runAdmin(_ frame: Frame, session: Session, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, frame), eventLoop: context.eventLoop)
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
            handler.flushOutput(context: context)
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
        batchBytes = 0
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
        // A batch stops once its responses fill what this connection may still have waiting; the
        // frames it did not run wait until the client reads.
        let outputRoom = max(1, server.configuration.connectionOutputSoftLimitBytes - pendingOutputBytes)
        // Parsing that needs no tenant state happens before the lock, so other loops' requests for
        // this tenant do not wait on it.
        let prepared = RequestPreparation.prepare(frames, limits: environment.limits, features: environment.features)
        // This loop runs the batch itself, under the tenant's lock (see TenantExecutor).
        let result = tenant.withExclusiveAccess { tenant in
            RequestExecutor.execute(frames, prepared: prepared, session: session, tenant: tenant, environment: environment, outputBudget: outputRoom)
        }
        if result.responses.count < frames.count {
            batch = Array(frames[result.responses.count...])
            batchBytes = batch.reduce(0) { $0 + $1.payload.readableBytes + FrameHeader.size }
        }
        if result.maximumLSN > commits.committedLSN { commits.writeQueued() }
        deliver(result, started: started, context: context)
        updateInputReservation()
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
                let info = server.environment.info(machine.session?.identity.scopes.contains(.admin) ?? false)
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
        let commits = server.commits
        if held.isEmpty && result.maximumLSN <= commits.committedLSN && !commits.hasFailures {
            writeLocal(result.bytes, count: result.responses.count, context: context)
        } else {
            held.append(result)
            heldBytes += result.bytes.count
            releaseHeld(context: context)
        }
        enforceOutputHardLimit(context: context)
    }

    /// A batch stops at the soft limit, so only responses larger than the gap between the two
    /// limits get here; the client is not reading them fast enough to be worth the memory.
    private func enforceOutputHardLimit(context: ChannelHandlerContext) {
        let limit = server.configuration.connectionOutputHardLimitBytes
        let pending = pendingOutputBytes
        guard pending > limit else { return }
        server.logger.warning(
            "closing a connection whose unread responses exceed the hard limit",
            metadata: ["bytes": "\(pending)", "limit": "\(limit)", "remote": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")"])
        outbound = nil
        fail(LearnStoreError(.overloaded, "\(pending) bytes of responses are waiting for this client, above the limit of \(limit)"), context: context)
    }

    /// Writes held batches whose writes are resolved, in order: a response that observed a write that
    /// failed (its exact LSN, not merely one above the commit mark) is replaced by an error.
    private func releaseHeld(context: ChannelHandlerContext) {
        let commits = server.commits
        while let first = held.first {
            let committed = commits.committedLSN
            if first.responses.contains(where: { $0.lsn > committed }) { break }
            held.removeFirst()
            heldBytes -= first.bytes.count
            if commits.hasFailures && first.responses.contains(where: { commits.hasFailed($0.lsn) }) {
                var writer = ByteWriter(capacity: first.bytes.count)
                for meta in first.responses {
                    if commits.hasFailed(meta.lsn) {
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
                handler.flushOutput(context: context)
                handler.resumeReadingIfPossible()
                handler.closeIfDrained()
                handler.failIfDrained(context: context)
            }
        }
    }

    /// Queues responses; `flushOutput` sends everything queued with one write.
    private func writeLocal(_ bytes: [UInt8], count: Int, context: ChannelHandlerContext) {
        inFlight -= count
        guard !bytes.isEmpty, !closing else { return }
        if outbound == nil {
            outbound = context.channel.allocator.buffer(capacity: bytes.count)
        }
        outbound!.writeBytes(bytes)
    }

    /// Sends the queued responses and counts them as unsent until the kernel has taken them.
    private func flushOutput(context: ChannelHandlerContext) {
        guard let buffer = outbound, buffer.readableBytes > 0 else {
            context.flush()
            return
        }
        outbound = nil
        let bytes = buffer.readableBytes
        unsentBytes += bytes
        let budget = server.outputBudget
        budget.charge(bytes)
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.assumeIsolated().whenComplete { [self] _ in
            let wasBlocked = outputBlocked
            unsentBytes -= bytes
            budget.release(bytes)
            if wasBlocked && !outputBlocked { resumeReadingIfPossible() }
        }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: promise)
    }

    /// Keeps this connection's share of the server-wide input budget equal to what it buffers beyond
    /// its allowance: the unparsed bytes, the rest of a frame whose header announced more, and parsed
    /// frames not yet run. Closes with `OVERLOADED` when the budget cannot cover it.
    private func updateInputReservation() {
        var buffered = batchBytes
        if let cumulation {
            buffered += cumulation.readableBytes
            if cumulation.readableBytes >= 4,
                let length = cumulation.getInteger(at: cumulation.readerIndex, endianness: .little, as: UInt32.self),
                Int(length) + 4 > cumulation.readableBytes
            {
                // Judged by the decoder already: at most the frame limit.
                buffered += Int(length) + 4 - cumulation.readableBytes
            }
        }
        let needed = closing ? 0 : max(0, buffered - server.configuration.connectionInputAllowanceBytes)
        if needed < inputReserved {
            server.inputBudget.release(inputReserved - needed)
            inputReserved = needed
        } else if needed > inputReserved {
            guard server.inputBudget.tryReserve(needed - inputReserved) else {
                guard let context else { return }
                server.logger.warning(
                    "closing a connection: the server-wide budget for buffered requests is exhausted",
                    metadata: ["needed": "\(needed)", "budget": "\(server.inputBudget.limit)"])
                cumulation = nil
                fail(LearnStoreError(.overloaded, "the server cannot buffer \(needed) more request bytes now (server-wide limit \(server.inputBudget.limit)); retry later"), context: context)
                updateInputReservation()
                return
            }
            inputReserved = needed
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        server.logger.debug("connection error", metadata: ["error": "\(error)"])
        closing = true
        context.close(promise: nil)
    }
}
