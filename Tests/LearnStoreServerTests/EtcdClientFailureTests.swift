import LearnStoreModel
@testable import LearnStoreServer
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// How the etcd client takes a member's refusals: a member without a leader (HTTP 5xx) passes the call
/// to the next member and, when no member answers, the call fails as a connection failure, which the
/// node retries; any other refusal is etcd's answer.
@Suite struct EtcdClientFailureTests {
    /// An HTTP endpoint that answers every request with `status` and `body`.
    final class FixedAnswer: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let status: HTTPResponseStatus
        let body: String

        init(status: HTTPResponseStatus, body: String) {
            self.status = status
            self.body = body
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    static func endpoint(_ status: HTTPResponseStatus, _ body: String) async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(FixedAnswer(status: status, body: body))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    static func url(_ channel: any Channel) -> String { "http://127.0.0.1:\(channel.localAddress!.port!)" }

    @Test func aMemberWithoutALeaderPassesTheCallOnAndAloneFailsAsRetriable() async throws {
        let leaderless = try await Self.endpoint(.serviceUnavailable, #"{"error":"etcdserver: leader changed","code":14,"message":"etcdserver: leader changed"}"#)
        let healthy = try await Self.endpoint(.ok, #"{"header":{"revision":"7"},"kvs":[{"key":"L2svYQ==","value":"MQ==","mod_revision":"7"}]}"#)
        let refusing = try await Self.endpoint(.badRequest, #"{"error":"etcdserver: requested lease not found","code":5,"message":"etcdserver: requested lease not found"}"#)
        let group = MultiThreadedEventLoopGroup.singleton

        let passedOn = try EtcdClient(endpoints: [Self.url(leaderless), Self.url(healthy)], group: group)
        let (revision, kvs) = try await passedOn.range(prefix: "/k/")
        #expect(revision == 7 && kvs.map(\.key) == ["/k/a"])

        let alone = try EtcdClient(endpoints: [Self.url(leaderless)], group: group)
        let unavailable = await #expect(throws: LearnStoreError.self) { _ = try await alone.range(prefix: "/k/") }
        #expect(unavailable?.code == .connectionFailed)
        #expect(unavailable?.message.contains("leader changed") == true)

        let refused = try EtcdClient(endpoints: [Self.url(refusing), Self.url(healthy)], group: group)
        let answer = await #expect(throws: LearnStoreError.self) { _ = try await refused.range(prefix: "/k/") }
        #expect(answer?.code == .validation)
        for channel in [leaderless, healthy, refusing] { try await channel.close() }
    }
}
