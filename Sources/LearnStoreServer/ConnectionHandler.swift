import LearnStoreEngine
import LearnStoreModel
import LearnStoreProtocol
import NIOCore

/// The NIO shell of one client connection: it splits bytes into frames, feeds the
/// ``ConnectionStateMachine`` events and carries out the actions it returns (run a batch on the
/// tenant under its lock, verify a token, run an admin request, write, read, close). Every rule of
/// order, holding and back-pressure lives in the state machine; this file owns only the socket, the
/// input buffer and the server-wide budgets.
///
/// Its state skips Swift's dynamic exclusivity checks (each access costs a call into the runtime,
/// together about 1-2 % of the server's CPU on pipelined gets): a handler runs only on its channel's
/// event loop, and no property is passed `inout` to code that reaches back into the handler.
final class ConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = Never
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: ServerContext
    /// The server's shared objects every request reads, held by the connection itself: reached
    /// through `server`, each was retained and released on every request, the same objects on
    /// every event loop (their reference counts passed between cores).
    private let outputBudget: BufferBudget
    private let commits: any CommitTracker
    private let environment: ExecutionEnvironment
    private let decoder: FrameDecoder
    /// Before AUTH succeeds frames are small (a HELLO, an AUTH), so an unauthenticated client cannot
    /// make the server buffer a large frame.
    private let handshakeDecoder: FrameDecoder
    @exclusivity(unchecked) private var machine: ConnectionStateMachine
    @exclusivity(unchecked) private var cumulation: ByteBuffer?
    @exclusivity(unchecked) private var tenant: TenantActor?
    /// Where this connection's batches are counted: its event loop's shard, found on the first batch.
    @exclusivity(unchecked) private var metricsShard: RequestMetricsShard?
    /// The commit wakes of this connection's loop, run after each of its reads (``LoopWakes``).
    @exclusivity(unchecked) private var loopWakes: LoopWakeInbox?
    @exclusivity(unchecked) private var context: ChannelHandlerContext?
    /// Responses queued since the last flush, sent together with one write.
    @exclusivity(unchecked) private var outbound: ByteBuffer?
    /// Bytes taken from the server-wide input budget.
    @exclusivity(unchecked) private var inputReserved = 0
    @exclusivity(unchecked) private var admitted = false
    /// Bytes of the server-wide output budget charged for what the channel has not sent yet.
    @exclusivity(unchecked) private var unsentCharged = 0
    /// An empty write with a promise waits behind the unsent bytes.
    @exclusivity(unchecked) private var watchingDrain = false
    /// Re-entry guard: an event raised while actions run (a write completing inside a flush, a
    /// commit already resolved) sets `pumpAgain`, and the running loop asks the machine once more.
    @exclusivity(unchecked) private var pumping = false
    @exclusivity(unchecked) private var pumpAgain = false
    private var timer: RepeatedTask?
    /// The next batch runs without waiting off the lock: it already waited once.
    @exclusivity(unchecked) private var waitedOffLock = false
    /// Payloads for the first `frames` of the next batch, left by its off-lock wait.
    @exclusivity(unchecked) private var preparedAhead: (frames: Int, payloads: [Int: PreparedPayload]?)?

    init(server: ServerContext) {
        self.server = server
        outputBudget = server.outputBudget
        commits = server.commits
        environment = server.environment
        let configuration = server.configuration
        self.decoder = FrameDecoder(maximumFrameBytes: configuration.maximumFrameBytes)
        self.handshakeDecoder = FrameDecoder(
            maximumFrameBytes: min(configuration.maximumHandshakeFrameBytes, configuration.maximumFrameBytes))
        var alone = [Opcode.adminSnapshot, Opcode.adminRestoreTenant].filter { AdminExecutor.handles($0, features: configuration.features) }
        if configuration.features.contains(.feed) { alone.append(Opcode.subscribe) }
        alone.append(Opcode.waitSequence)
        self.machine = ConnectionStateMachine(
            limits: .init(
                maximumInFlight: configuration.maximumInFlight,
                outputSoftLimitBytes: configuration.connectionOutputSoftLimitBytes,
                outputHardLimitBytes: configuration.connectionOutputHardLimitBytes,
                handshakeTimeoutSeconds: configuration.handshakeTimeoutSeconds,
                idleTimeoutSeconds: configuration.idleTimeoutSeconds, aloneOpcodes: alone,
                acknowledgementTimeoutSeconds: configuration.acknowledgementTimeoutSeconds),
            now: .now())
    }

    // MARK: lifecycle

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        guard server.runtime.admitConnection(limit: server.configuration.maximumConnections) else {
            var writer = ByteWriter()
            writer.writeErrorFrame(opcode: 0, requestID: 0, LearnStoreError(.tooManyConnections, "the server is at its limit of \(server.configuration.maximumConnections) connections"))
            machine.close()
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
            let handler = loopBound.value
            guard let context = handler.context else { return }
            let now = NIODeadline.now()
            if let error = handler.machine.timeoutExpired(now: now) { return handler.fail(error, context: context) }
            if handler.machine.acknowledgementCheck(now: now) { handler.pump(context: context) }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if admitted {
            admitted = false
            server.connectionEnded(context.channel)
        }
        machine.channelClosed()
        cumulation = nil
        outbound = nil
        updateInputReservation()
        self.context = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ShutdownRequest {
            machine.shutdownRequested()
            pump(context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        server.logger.debug("connection error", metadata: ["error": "\(error)"])
        machine.close()
        context.close(promise: nil)
    }

    /// Sends `error` and closes.
    private func fail(_ error: LearnStoreError, context: ChannelHandlerContext, opcode: UInt8 = 0, requestID: UInt32 = 0) {
        flushOutput(context: context)
        machine.close()
        var writer = ByteWriter()
        writer.writeErrorFrame(opcode: opcode, requestID: requestID, error)
        server.metrics.recordError(opcode: opcode, code: error.code)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: writer.bytes))).whenComplete { [channel = context.channel] _ in
            channel.close(promise: nil)
        }
    }

    /// Reads the state machine in place. A non-mutating call on the stored `machine` copies the whole
    /// machine first (a retain and a release of every buffer it holds), several times per request.
    @inline(__always)
    private func inspect<R>(_ body: (inout ConnectionStateMachine) -> R) -> R { body(&machine) }

    // MARK: reading

    func read(context: ChannelHandlerContext) {
        if machine.readRequested(budget: outputBudget, writable: context.channel.isWritable) {
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After a framing error the stream has no frame boundaries left: what follows is dropped.
        guard inspect({ !$0.closing && !$0.inputUnparseable }) else { return }
        var incoming = unwrapInboundIn(data)
        if cumulation == nil {
            cumulation = incoming
        } else {
            cumulation!.writeBuffer(&incoming)
        }
        // The idle timeout needs when frames last arrived: one clock read per read, not per request.
        machine.bytesArrived(now: .now())
        parseBuffered(context: context)
        updateInputReservation()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        pump(context: context)
        let wakes = loopWakes ?? server.loopWakes.inbox(for: context.eventLoop)
        loopWakes = wakes
        wakes.runPosted()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pump(context: context)
        context.fireChannelWritabilityChanged()
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
        let budget = outputBudget
        while inspect({ $0.mayParse(budget) }) {
            let frame: Frame
            do {
                let decoder = inspect({ $0.isAuthenticated }) ? decoder : handshakeDecoder
                guard let next = try decoder.next(from: &buffer) else { return }
                frame = next
            } catch {
                buffer.moveReaderIndex(to: buffer.writerIndex)
                machine.framingFailed(LearnStoreError(error.code, error.message))
                return
            }
            switch machine.frameReceived(frame) {
            case .queued, .ignore:
                break
            case .hello(let frame):
                answerHello(frame, context: context)
            case .answerPing(let frame):
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
                answer(writer.bytes, count: 1, context: context)
            case .reject(let error, let close):
                if close {
                    fail(error, context: context, opcode: frame.header.opcode, requestID: frame.header.requestID)
                    return
                }
                var writer = ByteWriter()
                writer.writeErrorFrame(opcode: frame.header.opcode, requestID: frame.header.requestID, error)
                server.metrics.recordError(opcode: frame.header.opcode, code: error.code)
                answer(writer.bytes, count: 1, context: context)
            }
        }
    }

    // MARK: carrying out the state machine's actions

    /// Runs the state machine's actions until it has none. Frames already buffered come first, round
    /// after round: they may be all the client has sent (it waits for their answers), so waiting for
    /// more bytes from the socket would wait forever.
    private func pump(context: ChannelHandlerContext) {
        if pumping {
            pumpAgain = true
            return
        }
        pumping = true
        defer { pumping = false }
        while true {
            if cumulation != nil { parseBuffered(context: context) }
            switch machine.nextAction(commits: commits, outputBudget: outputBudget, writable: context.channel.isWritable) {
            case .none:
                pumpAgain = false
                flushOutput(context: context)
                updateInputReservation()
                if pumpAgain, !machine.closing { continue }
                return
            case .run(let frames, let session, let outputRoom):
                run(frames, session: session, outputRoom: outputRoom, context: context)
            case .write(let bytes, let storageFailures):
                for opcode in storageFailures { server.metrics.recordError(opcode: opcode, code: .storageUnavailable) }
                queue(bytes, context: context)
            case .waitForCommit(let lsn):
                let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
                server.commits.subscribe(loop: context.eventLoop, waitingFor: lsn) {
                    let handler = loopBound.value
                    handler.machine.commitProgressed()
                    guard let context = handler.context else { return }
                    handler.pump(context: context)
                }
            case .authenticate(let frame):
                authenticate(frame, context: context)
            case .runAdmin(let frame, let session) where frame.header.opcode == Opcode.subscribe:
                subscribe(frame, session: session, context: context)
            case .runAdmin(let frame, let session):
                runAdmin(frame, session: session, context: context)
            case .fail(let error, let opcode, let requestID):
                fail(error, context: context, opcode: opcode, requestID: requestID)
            case .closeOverloaded(let pending, let limit):
                server.logger.warning(
                    "closing a connection whose unread responses exceed the hard limit",
                    metadata: ["bytes": "\(pending)", "limit": "\(limit)", "remote": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")"])
                outbound = nil
                fail(LearnStoreError(.overloaded, "\(pending) bytes of responses are waiting for this client, above the limit of \(limit)"), context: context)
            case .finishDrain:
                finishDrain(context: context)
            case .read:
                context.read()
            }
        }
    }

    /// A graceful shutdown ends a connection without losing an answer: every request already
    /// received is answered (those not yet run with SHUTTING_DOWN), a last SHUTTING_DOWN with request
    /// id 0 says why, and the server closes only its sending side. It then reads and discards until
    /// the client closes (or the server's drain deadline), because closing a socket with unread input
    /// makes the kernel send a reset that destroys replies the client has not read yet.
    private func finishDrain(context: ChannelHandlerContext) {
        var writer = ByteWriter()
        writer.writeErrorFrame(opcode: 0, requestID: 0, LearnStoreError(.shuttingDown, "the server is shutting down; requests sent after the ones answered were not read"))
        if outbound == nil { outbound = context.channel.allocator.buffer(capacity: writer.count) }
        outbound!.writeBytes(writer.bytes)
        flushOutput(context: context)
        cumulation = nil
        updateInputReservation()
        let channel = context.channel
        context.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
        context.read()
    }

    private func run(_ frames: [Frame], session: Session, outputRoom: Int, context: ChannelHandlerContext) {
        let started = NIODeadline.now()
        if server.runtime.isLoading {
            answerWhileLoading(frames, context: context)
            return
        }
        if tenant == nil {
            // Bound on first use after recovery, so a connection never holds a pre-recovery actor.
            tenant = server.registry.tenant(session.identity.tenantID)
        }
        guard let tenant else { return }
        // Parsing that needs no tenant state happens before the lock, so other loops' requests for
        // this tenant do not wait on it.
        let prepared = payloads(for: frames)
        if waitOffLock(frames, prepared: prepared, session: session, tenant: tenant, context: context) { return }
        // This loop runs the batch itself, under the tenant's lock (see TenantExecutor).
        let environment = environment  // the closure runs isolated to the tenant: it may not capture the handler
        let result = tenant.withExclusiveAccess { tenant in
            RequestExecutor.execute(frames, prepared: prepared, session: session, tenant: tenant, environment: environment, outputBudget: outputRoom)
        }
        if result.maximumLSN > commits.committedLSN { commits.writeQueued() }
        let shard = metricsShard ?? server.metrics.requestShard(for: context.eventLoop)
        metricsShard = shard
        shard.record(result.counts, nanoseconds: (NIODeadline.now() - started).nanoseconds)
        for (opcode, code) in result.errors { server.metrics.recordError(opcode: opcode, code: code) }
        if let bytes = machine.batchExecuted(result, frames: frames, commits: commits) {
            queue(bytes, context: context)
        }
    }

    /// Payloads parsed before the lock: those an off-lock wait left for this batch's first frames
    /// (an import already run on a copy among them), the rest parsed now.
    private func payloads(for frames: [Frame]) -> [Int: PreparedPayload]? {
        guard let ahead = preparedAhead else { return RequestPreparation.prepare(frames, limits: environment.limits, features: environment.features) }
        preparedAhead = nil
        var merged = ahead.payloads ?? [:]
        if frames.count > ahead.frames {
            let later = RequestPreparation.prepare(Array(frames[ahead.frames...]), limits: environment.limits, features: environment.features)
            for (index, payload) in later ?? [:] { merged[ahead.frames + index] = payload }
        }
        return merged.isEmpty ? nil : merged
    }

    /// Starts the work the batch must wait for off the tenant's lock (``OffLockWork``), if any, and
    /// parks the batch in the state machine until it is done. A batch waits at most once.
    private func waitOffLock(
        _ frames: [Frame], prepared: [Int: PreparedPayload]?, session: Session, tenant: TenantActor, context: ChannelHandlerContext
    ) -> Bool {
        if waitedOffLock {
            waitedOffLock = false
            return false
        }
        guard let work = OffLockWork.needed(by: frames, prepared: prepared, session: session, tenant: tenant) else { return false }
        machine.batchWaitsOffLock(frames)
        switch work {
        case .indexBuild: server.metrics.recordReadIndexBuild()
        case .importOnCopy: server.metrics.recordImportRebuild()
        }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let loop = context.eventLoop
        let count = frames.count
        work.start(tenant: tenant, builds: server.indexBuilds, prepared: prepared) { payloads in
            loop.execute {
                let handler = loopBound.value
                handler.machine.offLockWorkDone()
                handler.waitedOffLock = true
                handler.preparedAhead = (count, payloads)
                guard let context = handler.context else { return }
                handler.pump(context: context)
            }
        }
        return true
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
            case Opcode.topology where frame.payload.readableBytes == 0 && frame.header.flags == 0:
                writer.writeFrame(header) { $0.writeBytes(Array(server.environment.topology.json().serialized.utf8)) }
            case Opcode.ping, Opcode.info, Opcode.topology:
                let error = LearnStoreError(.badFrame, "malformed \(Opcode.name(frame.header.opcode)) request")
                writer.writeErrorFrame(opcode: frame.header.opcode, requestID: frame.header.requestID, error)
                server.metrics.recordError(opcode: frame.header.opcode, code: error.code)
            default:
                let error = LearnStoreError(.loading, "the server is recovering its data (\(server.runtime.recoveryProgress)); retry shortly")
                writer.writeErrorFrame(opcode: frame.header.opcode, requestID: frame.header.requestID, error)
                server.metrics.recordError(opcode: frame.header.opcode, code: .loading)
            }
        }
        answer(writer.bytes, count: frames.count, context: context)
    }

    // MARK: handshake and admin requests

    private func answerHello(_ frame: Frame, context: ChannelHandlerContext) {
        let requestID = frame.header.requestID
        guard frame.header.flags == 0 else {
            fail(LearnStoreError(.badFrame, "HELLO: request flags must be 0"), context: context, opcode: Opcode.hello, requestID: requestID)
            return
        }
        let request: HelloRequest
        do {
            request = try frame.readPayload { (r) throws(DecodeError) in try HelloRequest.decode(from: &r) }
        } catch {
            fail(LearnStoreError(.badFrame, "HELLO payload: \(error)"), context: context, opcode: Opcode.hello, requestID: requestID)
            return
        }
        switch machine.helloReceived(request) {
        case .failure(let error):
            fail(error, context: context, opcode: Opcode.hello, requestID: requestID)
        case .success(let version):
            var features: ProtocolFeatures = [.records]
            features.formUnion(server.configuration.features)
            let response = HelloResponse(
                version: version, serverVersion: server.configuration.serverVersion,
                maximumFrameBytes: UInt32(server.configuration.maximumFrameBytes),
                maximumInFlight: UInt32(server.configuration.maximumInFlight), features: features)
            var writer = ByteWriter()
            writer.writeFrame(FrameHeader(opcode: Opcode.hello, requestID: requestID)) { response.encode(into: &$0) }
            answer(writer.bytes, count: 1, context: context)
        }
    }

    /// Verifies the token: an HS256 one at once, in this pass; one for a public key through jwt-kit
    /// (asynchronous), as a task on this connection's event loop that answers when it finishes.
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
        if let result = verifier.verifyNow(token, now: now) {
            finishAuthentication(frame, result: result, context: context)
            return
        }
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
            handler.pump(context: context)
        }
    }

    private func finishAuthentication(_ frame: Frame, result: Result<VerifiedToken, LearnStoreError>, context: ChannelHandlerContext) {
        let requestID = frame.header.requestID
        var writer = ByteWriter()
        var result = result
        // In a partitioned cluster a tenant of another group's partition is served there, not here.
        var elsewhere: TopologyBoard.Elsewhere?
        if case .success(let token) = result {
            switch server.environment.topology.route(tenant: token.identity.tenantID) {
            case .here:
                break
            case .elsewhere(let other):
                elsewhere = other
                let message = "tenant \(token.identity.tenantID) is in partition \(other.partition), held by group \(other.group)"
                result = .failure(other.primary?.address == nil
                    ? LearnStoreError(.notPrimary, "\(message), whose primary this node does not know yet; ask TOPOLOGY again")
                    : LearnStoreError(.moved, message))
            case .refused(let reason):
                result = .failure(LearnStoreError(.notPrimary, reason))
            }
        }
        switch machine.authenticationFinished(result) {
        case .accept(let session):
            writer.writeFrame(FrameHeader(opcode: Opcode.auth, requestID: requestID)) {
                AuthResponse(identity: session.identity, expiresAt: session.expiresAt).encode(into: &$0)
            }
        case .reject(let error, let close):
            if close {
                fail(error, context: context, opcode: Opcode.auth, requestID: requestID)
                return
            }
            server.metrics.recordError(opcode: Opcode.auth, code: error.code)
            if error.code == .moved, let elsewhere, let primary = elsewhere.primary, let address = primary.address {
                writer.writeFrame(FrameHeader(opcode: Opcode.auth, flags: 1, requestID: requestID)) {
                    ErrorBody.encodeMoved("\(error.message); its primary is at \(address)", partition: UInt32(elsewhere.partition), epoch: primary.epoch,
                                          address: address, into: &$0)
                }
            } else {
                writer.writeErrorFrame(opcode: Opcode.auth, requestID: requestID, error)
            }
        }
        answer(writer.bytes, count: 1, context: context)
    }

    /// Runs an admin request (every earlier response is queued) as a task off the event loop; the
    /// tenant and other connections keep being served.
    private func runAdmin(_ frame: Frame, session: Session, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, frame), eventLoop: context.eventLoop)
        let server = self.server
        let started = NIODeadline.now()
        let promise = context.eventLoop.makePromise(of: AdminResponse.self)
        promise.completeWithTask {
            let (bytes, error) = frame.header.opcode == Opcode.waitSequence
                ? await SequenceWait.execute(frame, session: session, server: server)
                : await AdminExecutor.execute(frame, session: session, server: server)
            return AdminResponse(bytes: bytes, error: error)
        }
        promise.futureResult.whenSuccess { response in
            let (handler, frame) = loopBound.value
            handler.server.metrics.recordBatch(counts: [frame.header.opcode: 1], nanoseconds: (NIODeadline.now() - started).nanoseconds)
            if let code = response.error { handler.server.metrics.recordError(opcode: frame.header.opcode, code: code) }
            handler.machine.adminFinished(bytes: response.bytes.count)
            guard let context = handler.context else { return }
            handler.queue(response.bytes, context: context)
            handler.pump(context: context)
        }
    }

    /// Runs a SUBSCRIBE off the event loop (every earlier response is queued). If it succeeds, the
    /// connection is handed to a ``FeedConnectionHandler`` with whatever the client sent after it.
    private func subscribe(_ frame: Frame, session: Session, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, frame), eventLoop: context.eventLoop)
        let server = self.server
        let promise = context.eventLoop.makePromise(of: Result<FeedSubscribe.Opened, FeedFailure>.self)
        promise.completeWithTask { await FeedSubscribe.open(frame, session: session, server: server) }
        promise.futureResult.whenSuccess { result in
            let (handler, frame) = loopBound.value
            switch result {
            case .failure(let failure) where failure.error.code == .overloaded:
                // As every OVERLOADED: answered, then the connection is closed (docs/PROTOCOL.md 6.2).
                guard let context = handler.context else { return }
                handler.fail(failure.error, context: context, opcode: frame.header.opcode, requestID: frame.header.requestID)
            case .failure(let failure):
                handler.server.metrics.recordError(opcode: frame.header.opcode, code: failure.error.code)
                let bytes = failure.frame(opcode: frame.header.opcode, requestID: frame.header.requestID)
                handler.machine.adminFinished(bytes: bytes.count)
                guard let context = handler.context else { return }
                handler.queue(bytes, context: context)
                handler.pump(context: context)
            case .success(let opened):
                guard let context = handler.context, !handler.machine.closing else {
                    server.feed.unregister(opened.source)
                    opened.source.close()
                    return
                }
                handler.handOver(to: opened, session: session, requestID: frame.header.requestID, context: context)
            }
        }
    }

    private func handOver(to opened: FeedSubscribe.Opened, session: Session, requestID: UInt32, context: ChannelHandlerContext) {
        machine.adminFinished(bytes: opened.response.count)
        queue(opened.response, context: context)
        flushOutput(context: context)
        timer?.cancel()
        timer = nil
        let leftover = cumulation
        cumulation = nil
        machine.close()
        updateInputReservation()
        // The feed handler now answers for the connection's admission.
        admitted = false
        let feed = FeedConnectionHandler(server: server, session: session, source: opened.source, credit: opened.credit, requestID: requestID, leftover: leftover)
        do {
            let channel = context.channel
            try context.pipeline.syncOperations.addHandler(feed, position: .after(self))
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            // Reads are on demand; this handler held them back while the SUBSCRIBE ran.
            channel.read()
        } catch {
            server.feed.unregister(opened.source)
            opened.source.close()
            server.connectionEnded(context.channel)
            context.close(promise: nil)
        }
    }

    private struct AdminResponse: Sendable {
        var bytes: [UInt8]
        var error: LearnStoreError.Code?
    }

    // MARK: output

    /// Counts responses the handler produced itself as answered and queues them.
    private func answer(_ bytes: [UInt8], count: Int, context: ChannelHandlerContext) {
        machine.answered(count: count, bytes: bytes.count)
        queue(bytes, context: context)
    }

    /// Queues response bytes the state machine has counted; `flushOutput` sends them with one write.
    private func queue(_ bytes: [UInt8], context: ChannelHandlerContext) {
        guard !bytes.isEmpty, !machine.closing else { return }
        if outbound == nil {
            outbound = context.channel.allocator.buffer(capacity: max(bytes.count, 1024))
        } else if outbound!.readableBytes == 0 {
            // Flushed: reused if the channel has let go of it, else `clear` gives it new storage.
            outbound!.clear()
        }
        outbound!.writeBytes(bytes)
    }

    /// The largest response buffer a connection keeps between flushes (10,000 connections: 80 MiB).
    static let keptOutputCapacity = 8 << 10

    /// Sends the queued responses. Most writes reach the kernel inside the flush, so a promise per
    /// write (an allocation, a callback and a dozen reference counts on every request) would only
    /// report what the channel's count of buffered bytes already says right after it.
    private func flushOutput(context: ChannelHandlerContext) {
        guard let buffer = outbound, buffer.readableBytes > 0 else {
            context.flush()
            return
        }
        machine.outputFlushed(bytes: buffer.readableBytes)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        // The buffer is kept for the next responses (small ones only: it stays while the connection
        // lives): most writes finish inside the flush, which leaves its storage to this handler alone.
        if buffer.capacity <= Self.keptOutputCapacity {
            outbound!.moveReaderIndex(to: outbound!.writerIndex)
        } else {
            outbound = nil
        }
        settleUnsent(channel: context.channel)
    }

    /// Counts what the channel still buffers as this connection's unsent output, in the state machine
    /// and in the server-wide budget; while bytes wait, one empty write after them reports when the
    /// kernel has taken them all (the channel completes writes in order), and the count is taken again.
    private func settleUnsent(channel: any Channel) {
        let unsent = (try? channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        let budget = outputBudget
        let wasBlocked = inspect { $0.outputBlocked(budget) }
        machine.outputUnsent(bytes: unsent)
        if unsent > unsentCharged {
            budget.charge(unsent - unsentCharged)
        } else if unsent < unsentCharged {
            budget.release(unsentCharged - unsent)
        }
        unsentCharged = unsent
        if unsent > 0, !watchingDrain {
            watchingDrain = true
            let promise = channel.eventLoop.makePromise(of: Void.self)
            promise.futureResult.assumeIsolated().whenComplete { [self] _ in
                watchingDrain = false
                settleUnsent(channel: channel)
            }
            channel.writeAndFlush(ByteBuffer(), promise: promise)
        }
        if wasBlocked && !inspect({ $0.outputBlocked(budget) }), let context { pump(context: context) }
    }

    /// Keeps this connection's share of the server-wide input budget equal to what it buffers beyond
    /// its allowance: the unparsed bytes, the rest of a frame whose header announced more, and parsed
    /// frames not yet run. Closes with `OVERLOADED` when the budget cannot cover it.
    private func updateInputReservation() {
        var buffered = machine.batchBytes
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
        let needed = machine.closing ? 0 : max(0, buffered - server.configuration.connectionInputAllowanceBytes)
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
}
