import LearnStoreModel
import LearnStoreProtocol
import NIOCore

/// The NIO shell of a connection after its SUBSCRIBE succeeded: it sends FEED_EVENTS as the
/// ``FeedSessionState`` allows, reads FEED_CREDIT and PING, sends a heartbeat when the tenant is quiet,
/// ends the subscription when the token expires or the server shuts down. A backlog in the log's files
/// is read on the subscription's own queue; the recent changes in memory, and what a commit adds for a
/// subscriber already at the end of the files, are read here.
final class FeedConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// FEED_CREDIT and PING are the only frames a client sends now; both are small.
    static let maximumFrameBytes = 1024

    private let server: ServerContext
    private let session: Session
    private let source: FeedSource
    private let requestID: UInt32
    private var state: FeedSessionState
    private let decoder = FrameDecoder(maximumFrameBytes: FeedConnectionHandler.maximumFrameBytes)
    private var cumulation: ByteBuffer?
    private var context: ChannelHandlerContext?
    private var timer: RepeatedTask?
    private var lastSentAt = NIODeadline.now()
    private var lastThrough: UInt64
    private var finished = false
    /// The last read reached the end of what was committed, or the next takes the recent changes in
    /// memory: the next one is small.
    private var nextReadIsSmall = false


    init(server: ServerContext, session: Session, source: FeedSource, credit: UInt32, requestID: UInt32, leftover: ByteBuffer?) {
        self.server = server
        self.session = session
        self.source = source
        self.requestID = requestID
        self.state = FeedSessionState(credit: credit, maximumBatchChanges: Int(FeedMessages.maximumBatchChanges))
        self.cumulation = leftover
        self.lastThrough = source.throughSequence
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let wakes = server.loopWakes.inbox(for: context.eventLoop)
        let readAgain: @Sendable () -> Void = {
            let handler = loopBound.value
            handler.state.somethingToRead()
            handler.pump()
        }
        let commits = server.commits
        source.onWake { [loop = context.eventLoop] commitOf in
            // The write the subscriber waits for is woken by its commit, without a turn of the loop in
            // between: a tenant's writes then cost its subscribers one wake per commit.
            if let lsn = commitOf { commits.subscribe(loop: loop, waitingFor: lsn, readAgain) } else { wakes.post([readAgain]) }
        }
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) { _ in
            loopBound.value.tick()
        }
        parse()
        pump()
    }

    /// The server reads on demand (auto-read is off): a subscriber's frames are few and small, so its
    /// connection always reads.
    func channelReadComplete(context: ChannelHandlerContext) {
        if !finished { context.read() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        release()
    }

    func channelInactive(context: ChannelHandlerContext) {
        release()
        server.connectionEnded(context.channel)
        context.fireChannelInactive()
    }

    private func release() {
        guard !finished else { return }
        finished = true
        state.close()
        timer?.cancel()
        timer = nil
        server.feed.unregister(source)
        source.close()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        var incoming = unwrapInboundIn(data)
        if cumulation == nil { cumulation = incoming } else { cumulation!.writeBuffer(&incoming) }
        parse()
        pump()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pump()
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ShutdownRequest {
            end(FeedFailure(LearnStoreError(.shuttingDown, "the server is shutting down; resume the subscription on another connection")), opcode: 0, requestID: 0)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func parse() {
        guard var buffer = cumulation else { return }
        cumulation = nil
        while !finished {
            let frame: Frame
            do {
                guard let next = try decoder.next(from: &buffer) else { break }
                frame = next
            } catch {
                end(FeedFailure(LearnStoreError(error.code, error.message)), opcode: 0, requestID: 0)
                return
            }
            let header = frame.header
            guard header.flags == 0 else {
                end(FeedFailure(LearnStoreError(.badFrame, "request flags must be 0")), opcode: header.opcode, requestID: header.requestID)
                return
            }
            switch header.opcode {
            case Opcode.feedCredit:
                do {
                    let credit = try frame.readPayload { (r) throws(DecodeError) in try FeedMessages.decodeCredit(from: &r) }
                    state.creditGranted(credit, cap: FeedMessages.maximumCredit)
                } catch {
                    end(FeedFailure(LearnStoreError(.badFrame, "feed_credit payload: \(error)")), opcode: header.opcode, requestID: header.requestID)
                    return
                }
            case Opcode.ping where frame.payload.readableBytes <= 64:
                var writer = ByteWriter()
                writer.writeFrame(FrameHeader(opcode: header.opcode, requestID: header.requestID)) { $0.writeBytes(frame.payload.readableBytesView) }
                send(writer.bytes)
            default:
                end(FeedFailure(LearnStoreError(
                    .badFrame, "a subscribed connection accepts only FEED_CREDIT and PING; open another connection for \(Opcode.name(header.opcode))")),
                    opcode: header.opcode, requestID: header.requestID)
                return
            }
        }
        if buffer.readableBytes > 0 { cumulation = buffer }
    }

    private func pump() {
        guard let context, !finished else { return }
        while true {
            switch state.nextAction(writable: context.channel.isWritable, committedLSN: server.commits.committedLSN) {
            case .none:
                return
            case .waitForCommit(let lsn):
                let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
                server.commits.subscribe(loop: context.eventLoop, waitingFor: lsn) {
                    let handler = loopBound.value
                    handler.state.commitProgressed()
                    handler.pump()
                }
            case .read(let maximumChanges):
                if nextReadIsSmall {
                    // Changes in memory, or what a commit just added to a log this subscriber had read
                    // to its end (a few records from the page cache): read here rather than paying two
                    // thread hand-offs.
                    readFinished(Self.readNow(source, maximumChanges: maximumChanges, maximumBytes: Self.inlineReadBytes))
                    return
                }
                let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
                let source = self.source
                source.queue.async {
                    let result = Self.readNow(source, maximumChanges: maximumChanges, maximumBytes: 4 << 20)
                    loopBound.eventLoop.execute { loopBound.value.readFinished(result) }
                }
                return
            }
        }
    }

    /// At most this much of the log is read on the event loop; a subscriber further behind reads on its queue.
    static let inlineReadBytes = 64 << 10

    private static func readNow(_ source: FeedSource, maximumChanges: Int, maximumBytes: Int) -> Result<FeedSource.Read, FeedFailure> {
        do throws(FeedFailure) {
            return .success(try source.next(maximumChanges: maximumChanges, maximumBytes: maximumBytes))
        } catch {
            return .failure(error)
        }
    }

    private func readFinished(_ result: Result<FeedSource.Read, FeedFailure>) {
        guard !finished else { return }
        switch result {
        case .failure(let failure):
            end(failure)
        case .success(let read):
            nextReadIsSmall = read.wait != nil || read.fromMemory
            state.readFinished(sent: read.batch.changes.count, wait: read.wait)
            if !read.batch.changes.isEmpty || read.batch.throughSequence > lastThrough {
                sendBatch(read.batch)
            }
            pump()
        }
    }

    private func sendBatch(_ batch: FeedBatch) {
        var writer = ByteWriter(capacity: 256 + batch.changes.count * 256)
        writer.writeFrame(FrameHeader(opcode: Opcode.feedEvents, requestID: requestID)) { FeedMessages.encodeBatch(batch, into: &$0) }
        lastThrough = batch.throughSequence
        server.metrics.recordFeedChanges(batch.changes.count)
        send(writer.bytes)
    }

    private func send(_ bytes: [UInt8]) {
        guard let context else { return }
        lastSentAt = .now()
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
    }

    /// The token's expiry ends the subscription; a quiet one gets a heartbeat.
    private func tick() {
        guard !finished else { return }
        if server.clock.now() >= session.acceptedUntil {
            end(FeedFailure(LearnStoreError(.tokenExpired, "the token expired at \(session.expiresAt); resume the subscription with a new token")))
            return
        }
        let heartbeat = TimeAmount.nanoseconds(Int64(server.configuration.feedHeartbeatSeconds * 1e9))
        if !state.reading, NIODeadline.now() - lastSentAt >= heartbeat {
            sendBatch(FeedBatch(throughSequence: lastThrough, changes: []))
        }
    }

    /// Sends the error (by default as the answer to the SUBSCRIBE) and closes the connection.
    private func end(_ failure: FeedFailure, opcode: UInt8 = Opcode.subscribe, requestID: UInt32? = nil) {
        guard let context, !finished else { return }
        release()
        server.metrics.recordError(opcode: opcode, code: failure.error.code)
        let channel = context.channel
        context.writeAndFlush(NIOAny(channel.allocator.buffer(bytes: failure.frame(opcode: opcode, requestID: requestID ?? self.requestID)))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}
