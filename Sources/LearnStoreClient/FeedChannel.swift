import LearnStoreModel
import LearnStoreProtocol
import NIOCore
import NIOPosix

/// A frame of a subscribed connection and when the event loop read it off the socket.
struct ReceivedFrame: Sendable {
    let frame: Frame
    let receivedAt: NIODeadline
}

/// The pipeline of a subscribed connection: every frame the server sends (the SUBSCRIBE answer, then
/// FEED_EVENTS, a PING answer, a last error) goes to one stream, in order. The server sends no more
/// changes than the subscriber granted credit for, so the stream holds at most that many. A
/// connection that has no SUBSCRIBE answer after `answerLimit` (`ClientConfiguration.feedSubscribeTimeout`),
/// or is silent for longer than `silenceLimit` after it (`ClientConfiguration.feedSilenceLimit`), is
/// closed, and the subscription resumes on a new one. Time is the event loop's, so an
/// `EmbeddedEventLoop` drives it in tests.
final class FeedChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let silenceLimit: TimeAmount
    private let answerLimit: TimeAmount
    private let decoder: FrameDecoder
    private let continuation: AsyncThrowingStream<ReceivedFrame, any Error>.Continuation
    private var cumulation: ByteBuffer?
    private var answered = false
    /// When the handler was added, then when bytes last arrived.
    private var lastReadAt = NIODeadline.uptimeNanoseconds(0)
    private var watchdog: RepeatedTask?

    func handlerAdded(context: ChannelHandlerContext) {
        lastReadAt = context.eventLoop.now
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        // Checked three times per limit, so silence is noticed at most a third of the limit late.
        let period = TimeAmount.nanoseconds(max(1_000_000, min(silenceLimit, answerLimit).nanoseconds / 3))
        watchdog = context.eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { task in
            let (handler, context) = loopBound.value
            guard let reason = handler.silence(now: context.eventLoop.now) else { return }
            task.cancel()
            handler.continuation.finish(throwing: LearnStoreError(.connectionFailed, reason))
            context.close(promise: nil)
        }
    }

    /// Why the connection counts as lost at `now`, if it does.
    private func silence(now: NIODeadline) -> String? {
        guard answered else {
            // The SUBSCRIBE answer can be slow (the server first waits for the tenant's last write to
            // be durable); a subscription from "now" takes its position from it.
            guard now - lastReadAt > answerLimit else { return nil }
            return "the server did not answer SUBSCRIBE within \(Self.seconds(answerLimit)) s"
        }
        guard now - lastReadAt > silenceLimit else { return nil }
        return "the server sent nothing for \(Self.seconds(silenceLimit)) s"
    }

    private static func seconds(_ amount: TimeAmount) -> Double { Double(amount.nanoseconds) / 1e9 }

    func handlerRemoved(context: ChannelHandlerContext) {
        watchdog?.cancel()
        watchdog = nil
    }

    init(maximumFrameBytes: Int, silenceLimit: Duration, answerLimit: Duration, continuation: AsyncThrowingStream<ReceivedFrame, any Error>.Continuation) {
        self.silenceLimit = Self.timeAmount(silenceLimit)
        self.answerLimit = Self.timeAmount(answerLimit)
        self.decoder = FrameDecoder(maximumFrameBytes: maximumFrameBytes)
        self.continuation = continuation
    }

    /// At least a millisecond, at most about 30 years (a configured limit never overflows).
    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        let clamped = min(max(seconds, 0), 1_000_000_000)
        return .nanoseconds(max(1_000_000, clamped * 1_000_000_000 + attoseconds / 1_000_000_000))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        let receivedAt = context.eventLoop.now
        lastReadAt = receivedAt
        if cumulation == nil { cumulation = incoming } else { cumulation!.writeBuffer(&incoming) }
        guard var buffer = cumulation else { return }
        cumulation = nil
        while true {
            do {
                guard let frame = try decoder.next(from: &buffer) else { break }
                answered = true
                continuation.yield(ReceivedFrame(frame: frame, receivedAt: receivedAt))
            } catch {
                continuation.finish(throwing: LearnStoreError(.protocolViolation, "server frame: \(error.message)"))
                context.close(promise: nil)
                return
            }
        }
        if buffer.readableBytes > 0 { cumulation = buffer }
    }

    func channelInactive(context: ChannelHandlerContext) {
        watchdog?.cancel()
        watchdog = nil
        continuation.finish(throwing: LearnStoreError(.connectionFailed, "the connection was closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        continuation.finish(throwing: LearnStoreError(.connectionFailed, "connection error: \(error)"))
        context.close(promise: nil)
    }
}

/// One subscribed connection: HELLO and AUTH as usual, then the pipeline is switched to a
/// ``FeedChannelHandler`` and SUBSCRIBE is sent.
struct FeedChannel {
    let channel: any Channel
    var frames: AsyncThrowingStream<ReceivedFrame, any Error>.AsyncIterator
    let requestID: UInt32 = 1

    static func open(_ configuration: ClientConfiguration, token: String, request: SubscribeRequest, group: any EventLoopGroup) async throws(LearnStoreError) -> FeedChannel {
        let connection = try await ClientConnection.connect(
            host: configuration.host, port: configuration.port, group: group, clientName: configuration.clientName, token: token)
        do throws(LearnStoreError) {
            guard connection.hello.features.contains(.feed) else {
                throw LearnStoreError(.unknownOpcode, "the server does not offer the change feed (HELLO feature bit 3)")
            }
            let (stream, continuation) = AsyncThrowingStream<ReceivedFrame, any Error>.makeStream()
            let channel = connection.channel
            var writer = ByteWriter(capacity: 32)
            writer.writeFrame(FrameHeader(opcode: Opcode.subscribe, requestID: 1)) { FeedMessages.encodeSubscribe(request, into: &$0) }
            let bytes = writer.bytes
            do {
                try await channel.eventLoop.submit {
                    let pipeline = channel.pipeline.syncOperations
                    let old = try pipeline.handler(type: ClientChannelHandler.self)
                    try pipeline.addHandler(FeedChannelHandler(maximumFrameBytes: 80 << 20, silenceLimit: configuration.feedSilenceLimit, answerLimit: configuration.feedSubscribeTimeout, continuation: continuation), position: .after(old))
                    pipeline.removeHandler(old, promise: nil)
                    channel.writeAndFlush(channel.allocator.buffer(bytes: bytes), promise: nil)
                }.get()
            } catch {
                throw LearnStoreError(.connectionFailed, "cannot subscribe: \(error)")
            }
            return FeedChannel(channel: channel, frames: stream.makeAsyncIterator())
        } catch {
            await connection.close()
            throw error
        }
    }

    /// The next frame; an error when the connection ended without one.
    mutating func next() async throws(LearnStoreError) -> ReceivedFrame {
        do {
            guard let frame = try await frames.next() else { throw LearnStoreError(.connectionFailed, "the connection was closed") }
            return frame
        } catch let error as LearnStoreError {
            throw error
        } catch {
            throw LearnStoreError(.connectionFailed, "\(error)")
        }
    }

    func grant(_ credit: UInt32) {
        var writer = ByteWriter(capacity: 16)
        writer.writeFrame(FrameHeader(opcode: Opcode.feedCredit, requestID: 0)) { FeedMessages.encodeCredit(credit, into: &$0) }
        channel.writeAndFlush(channel.allocator.buffer(bytes: writer.bytes), promise: nil)
    }

    func close() async { try? await channel.close() }
}
