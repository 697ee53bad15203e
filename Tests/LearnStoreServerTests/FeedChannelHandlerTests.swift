@testable import LearnStoreClient
import LearnStoreModel
import LearnStoreProtocol
import NIOCore
import NIOEmbedded
import Testing

/// The client's watchdog of a subscribed connection, on an `EmbeddedChannel` whose clock only moves
/// when the test says so.
@Suite struct FeedChannelHandlerTests {
    struct Harness {
        let channel = EmbeddedChannel()
        let frames: AsyncThrowingStream<ReceivedFrame, any Error>

        init(silence: Duration, answer: Duration) throws {
            let (stream, continuation) = AsyncThrowingStream<ReceivedFrame, any Error>.makeStream()
            frames = stream
            try channel.pipeline.syncOperations.addHandler(
                FeedChannelHandler(maximumFrameBytes: 1 << 20, silenceLimit: silence, answerLimit: answer, continuation: continuation))
        }

        func receive(opcode: UInt8) throws {
            var writer = ByteWriter(capacity: 64)
            writer.writeFrame(FrameHeader(opcode: opcode, requestID: 1)) { _ in }
            try channel.writeInbound(channel.allocator.buffer(bytes: writer.bytes))
        }

        func advance(milliseconds: Int64) { channel.embeddedEventLoop.advanceTime(by: .milliseconds(milliseconds)) }
        var isOpen: Bool { channel.isActive }
    }

    /// A server slow to answer SUBSCRIBE (it first waits for the tenant's last write to be durable) is
    /// given the answer limit, not the silence limit: closing at the silence limit would make a
    /// subscription from "now" start again from a later "now" and miss the changes in between.
    @Test func theSubscribeAnswerIsAwaitedForItsOwnLimitThenSilenceCounts() async throws {
        let harness = try Harness(silence: .milliseconds(300), answer: .seconds(3))
        try harness.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        harness.advance(milliseconds: 2_900)
        #expect(harness.isOpen, "no answer yet, but within the answer limit")
        try harness.receive(opcode: Opcode.subscribe)
        harness.advance(milliseconds: 250)
        #expect(harness.isOpen)
        try harness.receive(opcode: Opcode.feedEvents)
        harness.advance(milliseconds: 250)
        #expect(harness.isOpen, "each frame restarts the silence limit")
        harness.advance(milliseconds: 200)
        #expect(!harness.isOpen, "silent past the limit after the answer")
        var iterator = harness.frames.makeAsyncIterator()
        #expect(try await iterator.next()?.frame.header.opcode == Opcode.subscribe)
        #expect(try await iterator.next()?.frame.header.opcode == Opcode.feedEvents)
        await #expect(throws: LearnStoreError.self) { try await iterator.next() }
    }

    @Test func aSubscribeNeverAnsweredIsGivenUpAtTheAnswerLimit() async throws {
        let harness = try Harness(silence: .milliseconds(300), answer: .seconds(2))
        try harness.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        harness.advance(milliseconds: 1_900)
        #expect(harness.isOpen)
        harness.advance(milliseconds: 200)
        #expect(!harness.isOpen)
        var iterator = harness.frames.makeAsyncIterator()
        do {
            _ = try await iterator.next()
            Issue.record("the stream should end with an error")
        } catch let error as LearnStoreError {
            #expect(error.code == .connectionFailed)
            #expect(error.message.contains("did not answer SUBSCRIBE"))
        }
    }
}
