import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import LearnStoreTestSupport
import LearnStoreTokens
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import Synchronization
import Testing
@testable import LearnStoreServer

/// The NIO shell around ``ConnectionStateMachine`` on a test channel, with a commit tracker the test
/// moves by hand: replies wait for their writes to be committed, and an AUTH behind a write waits
/// for that write's reply, woken by the commit and not by polling.
@Suite struct ConnectionHandlerTests {
    /// Commits only when the test says so; counts subscriptions so a test can tell waiting from spinning.
    final class ManualCommits: CommitTracker {
        private let state = Mutex<(committed: UInt64, waiters: [(lsn: UInt64, loop: any EventLoop, wake: @Sendable () -> Void)], subscriptions: Int)>((0, [], 0))

        var committedLSN: UInt64 { state.withLock { $0.committed } }
        func hasFailed(_ lsn: UInt64) -> Bool { false }
        var hasFailures: Bool { false }
        var acknowledgementsStopped: StoppedAcknowledgements? { nil }
        var subscriptions: Int { state.withLock { $0.subscriptions } }

        func subscribe(loop: any EventLoop, waitingFor lsn: UInt64, _ wake: @escaping @Sendable () -> Void) {
            state.withLock {
                $0.subscriptions += 1
                $0.waiters.append((lsn, loop, wake))
            }
        }

        func commit(upTo lsn: UInt64) {
            let ready = state.withLock { state in
                state.committed = lsn
                let ready = state.waiters.filter { $0.lsn <= lsn }
                state.waiters.removeAll { $0.lsn <= lsn }
                return ready
            }
            for waiter in ready { waiter.loop.execute(waiter.wake) }
        }
    }

    static let secret = "handler-test-secret-0123456789abcdef"

    static func context(commits: ManualCommits, group: any EventLoopGroup) async throws -> ServerContext {
        var configuration = ServerConfiguration()
        configuration.authentication.hmacSecrets = [secret]
        let clock = SystemClock()
        let placement = TenantPlacement(group: group)
        let registry = placement.makeRegistry(limits: EngineLimits(), clock: clock, log: DiscardingLog())
        return ServerContext(
            configuration: configuration, registry: registry, verifier: try await TokenVerifier(configuration: configuration.authentication),
            metrics: ServerMetrics(), commits: commits, runtime: ServerRuntimeState(loading: false), clock: clock,
            logger: Logger(label: "handler-test"), placement: placement, info: { _ in "{}" })
    }

    static func frame(_ opcode: UInt8, id: UInt32, _ payload: (inout ByteWriter) -> Void = { _ in }) -> ByteBuffer {
        var writer = ByteWriter()
        writer.writeFrame(FrameHeader(opcode: opcode, requestID: id), payload: payload)
        return ByteBuffer(bytes: writer.bytes)
    }

    /// The frames written so far, as (opcode, request id, is error).
    static func replies(_ channel: NIOAsyncTestingChannel) async throws -> [(UInt8, UInt32, Bool)] {
        var replies: [(UInt8, UInt32, Bool)] = []
        while var buffer = try await channel.readOutbound(as: ByteBuffer.self) {
            while let length = buffer.readInteger(endianness: .little, as: UInt32.self),
                let opcode = buffer.readInteger(as: UInt8.self), let flags = buffer.readInteger(as: UInt8.self),
                let id = buffer.readInteger(endianness: .little, as: UInt32.self)
            {
                buffer.moveReaderIndex(forwardBy: Int(length) - FrameHeader.countedSize)
                replies.append((opcode, id, flags & FrameHeader.errorFlag != 0))
            }
        }
        return replies
    }

    @Test func aWritesReplyAndTheAuthBehindItWaitForTheCommit() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let commits = ManualCommits()
        let context = try await Self.context(commits: commits, group: group)
        let channel = NIOAsyncTestingChannel()
        try await channel.pipeline.addHandler(ConnectionHandler(server: context))
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
        let token = try await TokenMinter(secret: Self.secret).mint(
            tenantID: "acme", person: UUID16(high: 1, low: 1), appID: nil, scopes: [.recordsRead, .recordsWrite],
            issuedAt: SystemClock().now(), lifetimeSeconds: 600, notBefore: nil)
        func auth(_ id: UInt32) -> ByteBuffer { Self.frame(Opcode.auth, id: id) { AuthRequest(token: token).encode(into: &$0) } }

        try await channel.writeInbound(Self.frame(Opcode.hello, id: 1) { HelloRequest(clientName: "test").encode(into: &$0) })
        try await channel.writeInbound(auth(2))
        var seen: [(UInt8, UInt32, Bool)] = []
        let handshakeAnswered = await eventually(within: 30) {
            await channel.testingEventLoop.run()
            seen += (try? await Self.replies(channel)) ?? []
            return seen.count == 2
        }
        #expect(handshakeAnswered)
        #expect(seen.map(\.1) == [1, 2] && !seen.contains { $0.2 }, "HELLO and AUTH answered")

        // A CREATE, then a re-AUTH pipelined behind it, in one read.
        var pipelined = Self.frame(Opcode.create, id: 3) {
            RecordMessages.encodeCreate(RecordBody(personID: UUID16(high: 1, low: 1), title: "t", provider: "edX", score: 1), idempotencyKey: nil, into: &$0)
        }
        var second = auth(4)
        pipelined.writeBuffer(&second)
        try await channel.writeInbound(pipelined)
        await channel.testingEventLoop.run()
        #expect(try await Self.replies(channel).isEmpty, "the CREATE's reply went out before its write was committed")
        #expect(commits.subscriptions == 1, "the connection asks once to be woken and then waits")

        commits.commit(upTo: 1)
        seen = []
        let bothAnswered = await eventually(within: 30) {
            await channel.testingEventLoop.run()
            seen += (try? await Self.replies(channel)) ?? []
            return seen.count == 2
        }
        #expect(bothAnswered)
        #expect(seen.map(\.1) == [3, 4] && !seen.contains { $0.2 }, "the CREATE's reply, then the AUTH's, in order")
        #expect(commits.subscriptions == 1)
        _ = try? await channel.finish()
        try await group.shutdownGracefully()
    }
}
