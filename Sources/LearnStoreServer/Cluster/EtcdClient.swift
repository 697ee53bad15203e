import Foundation
import LearnStoreModel
import NIOCore
import NIOHTTP1
import NIOPosix

/// A client of etcd v3's JSON gateway (`POST /v3/kv/range|put|txn`, `/v3/lease/grant|keepalive`):
/// keys and values travel as base64, 64-bit integers as strings. Each call tries the endpoints in
/// turn, one HTTP/1.1 request per connection, and fails after `timeout`. A member that cannot answer
/// (unreachable, or HTTP 5xx: no leader for now) passes the call to the next; when none answers the
/// call fails with `CONNECTION_FAILED`, which callers retry. Any other refusal is etcd's answer.
public final class EtcdClient: Sendable {
    public struct KeyValue: Sendable, Equatable {
        public var key: String
        public var value: [UInt8]
        public var createRevision: Int64
        public var modRevision: Int64
        public var lease: Int64
    }

    public let endpoints: [(host: String, port: Int)]
    let group: any EventLoopGroup
    /// Where the calls sent to every member at once run (nil: Swift's shared pool).
    let executor: (any TaskExecutor)?
    let timeout: TimeAmount
    /// The largest answer read (a range of the cluster's keys is a few KiB).
    static let maximumResponseBytes = 4 << 20

    /// `endpoints` are `http://host:port` (or `host:port`).
    public init(
        endpoints: [String], group: any EventLoopGroup, executor: (any TaskExecutor)? = nil, timeout: TimeAmount = .milliseconds(500)
    ) throws(LearnStoreError) {
        var parsed: [(String, Int)] = []
        for endpoint in endpoints {
            let bare = endpoint.hasPrefix("http://") ? String(endpoint.dropFirst(7)) : endpoint
            guard let (host, port) = HostPort.split(bare.hasSuffix("/") ? String(bare.dropLast()) : bare) else {
                throw LearnStoreError(.validation, "etcd endpoint '\(endpoint)' is not http://host:port")
            }
            parsed.append((host, port))
        }
        guard !parsed.isEmpty else { throw LearnStoreError(.validation, "no etcd endpoint") }
        self.endpoints = parsed
        self.group = group
        self.executor = executor
        self.timeout = timeout
    }

    // MARK: calls

    public func grantLease(ttlSeconds: Int) async throws(LearnStoreError) -> (id: Int64, ttlSeconds: Int) {
        let answer = try await call("/v3/lease/grant", .object([("TTL", .string(String(ttlSeconds)))]))
        guard let id = Self.int64(answer["ID"]), id != 0 else { throw Self.malformed("lease grant") }
        return (id, Int(Self.int64(answer["TTL"]) ?? Int64(ttlSeconds)))
    }

    /// Renews a lease; returns its TTL in seconds, 0 when it has expired. Asks every member at once (the
    /// first answer wins): a renewal is the call whose delay can fence a primary, and waiting for members
    /// in turn (one killed, one cut off, one in an election) would spend the margin.
    public func keepAlive(lease: Int64) async throws(LearnStoreError) -> Int {
        let answer = try await callEvery("/v3/lease/keepalive", .object([("ID", .string(String(lease)))]), answerWithin: timeout)
        return Int(Self.int64(answer["result"]?["TTL"]) ?? 0)
    }

    /// The answering member's id and its leader's (`/v3/maintenance/status`; ids are decimal strings).
    public func memberStatus() async throws(LearnStoreError) -> (memberID: String, leaderID: String) {
        let answer = try await call("/v3/maintenance/status", .object([]))
        guard let member = answer["header"]?["member_id"]?.stringValue, let leader = answer["leader"]?.stringValue else {
            throw Self.malformed("maintenance status")
        }
        return (member, leader)
    }

    public func revoke(lease: Int64) async throws(LearnStoreError) {
        _ = try await call("/v3/lease/revoke", .object([("ID", .string(String(lease)))]))
    }

    public func put(_ key: String, _ value: [UInt8], lease: Int64 = 0) async throws(LearnStoreError) {
        _ = try await call("/v3/kv/put", Self.putRequest(key, value, lease: lease))
    }

    /// The keys starting with `prefix` (or exactly `key`), and the store's revision.
    public func range(prefix: String) async throws(LearnStoreError) -> (revision: Int64, kvs: [KeyValue]) {
        let answer = try await call("/v3/kv/range", .object([("key", Self.base64(prefix)), ("range_end", Self.base64(Self.prefixEnd(prefix)))]))
        return (Self.int64(answer["header"]?["revision"]) ?? 0, try Self.keyValues(answer["kvs"]))
    }

    public func get(_ key: String) async throws(LearnStoreError) -> KeyValue? {
        let answer = try await call("/v3/kv/range", .object([("key", Self.base64(key))]))
        return try Self.keyValues(answer["kvs"]).first
    }

    public enum Compare: Sendable {
        /// The key's last change was at this revision (0: the key does not exist).
        case modRevision(String, Int64)
        /// The key was created at this revision (0: it does not exist).
        case createRevision(String, Int64)
    }

    /// Puts `puts` and deletes `deletes` if every comparison holds, atomically. Returns whether it did.
    public func transaction(
        if compares: [Compare], put puts: [(key: String, value: [UInt8], lease: Int64)], delete deletes: [String] = []
    ) async throws(LearnStoreError) -> Bool {
        let compare: [JSONValue] = compares.map { comparison in
            switch comparison {
            case .modRevision(let key, let revision):
                return .object([("key", Self.base64(key)), ("target", .string("MOD")), ("result", .string("EQUAL")), ("mod_revision", .string(String(revision)))])
            case .createRevision(let key, let revision):
                return .object([("key", Self.base64(key)), ("target", .string("CREATE")), ("result", .string("EQUAL")), ("create_revision", .string(String(revision)))])
            }
        }
        let success: [JSONValue] = puts.map { .object([("request_put", Self.putRequest($0.key, $0.value, lease: $0.lease))]) }
            + deletes.map { .object([("request_delete_range", .object([("key", Self.base64($0))]))]) }
        let answer = try await call("/v3/kv/txn", .object([("compare", .array(compare)), ("success", .array(success))]))
        return answer["succeeded"]?.boolValue ?? false
    }

    /// One JSON call: the first endpoint that answers, each tried in turn.
    func call(_ path: String, _ body: JSONValue) async throws(LearnStoreError) -> JSONValue {
        var failures: [String] = []
        for endpoint in endpoints {
            let attempt: Result<(Int, [UInt8]), LearnStoreError>
            do { attempt = .success(try await post(path, Array(body.serialized.utf8), to: endpoint, answerWithin: timeout)) } catch { attempt = .failure(error) }
            if let answer = try Self.answer(path, attempt, from: endpoint, failures: &failures) { return answer }
        }
        throw LearnStoreError(.connectionFailed, "no etcd endpoint answered \(path): \(failures.joined(separator: "; "))")
    }

    /// One JSON call sent to every endpoint at once, each given `answerWithin`: the first answer wins,
    /// so neither a member cut off from the others nor one holding the call until an election ends
    /// makes the call wait for the next in turn. The others finish by their own deadline.
    func callEvery(_ path: String, _ body: JSONValue, answerWithin: TimeAmount) async throws(LearnStoreError) -> JSONValue {
        let payload = Array(body.serialized.utf8)
        typealias Attempt = (endpoint: (host: String, port: Int), result: Result<(Int, [UInt8]), LearnStoreError>)
        let (attempts, continuation) = AsyncStream<Attempt>.makeStream()
        for endpoint in endpoints {
            Task(executorPreference: executor) { [self] in
                do throws(LearnStoreError) {
                    continuation.yield((endpoint, .success(try await post(path, payload, to: endpoint, answerWithin: answerWithin))))
                } catch {
                    continuation.yield((endpoint, .failure(error)))
                }
            }
        }
        defer { continuation.finish() }
        var failures: [String] = []
        var remaining = endpoints.count
        for await attempt in attempts {
            if let answer = try Self.answer(path, attempt.result, from: attempt.endpoint, failures: &failures) { return answer }
            remaining -= 1
            if remaining == 0 { break }
        }
        throw LearnStoreError(.connectionFailed, "no etcd endpoint answered \(path): \(failures.joined(separator: "; "))")
    }

    /// An endpoint's answer to a call: the parsed body when it succeeded, nil (its reason noted) when
    /// another member or a later attempt may answer, an error when etcd refused.
    private static func answer(
        _ path: String, _ attempt: Result<(Int, [UInt8]), LearnStoreError>, from endpoint: (host: String, port: Int), failures: inout [String]
    ) throws(LearnStoreError) -> JSONValue? {
        let status: Int
        let bytes: [UInt8]
        switch attempt {
        case .success(let answer): (status, bytes) = answer
        case .failure(let error):
            failures.append("\(endpoint.host):\(endpoint.port): \(error.message)")
            return nil
        }
        let answer: JSONValue
        do { answer = try JSONValue.parse(bytes) } catch { throw Self.malformed("\(path): \(error)") }
        guard status != 200 else { return answer }
        let reason = "HTTP \(status): \(answer["message"]?.stringValue ?? answer["error"]?.stringValue ?? "")"
        if status >= 500 {
            // The member is without a leader for now (an election, a lost quorum: "leader changed",
            // "no leader"): another member, or a later attempt, may answer.
            failures.append("\(endpoint.host):\(endpoint.port): \(reason)")
            return nil
        }
        // A refusal (an expired lease, a bad request) is etcd's answer: another endpoint would give the same.
        throw LearnStoreError(.validation, "etcd \(path): \(reason)")
    }

    private func post(_ path: String, _ body: [UInt8], to endpoint: (host: String, port: Int), answerWithin: TimeAmount) async throws(LearnStoreError) -> (Int, [UInt8]) {
        let collector = HTTPResponseCollector(limit: Self.maximumResponseBytes)
        let channel = try await send(path, body, to: endpoint, reading: collector)
        defer { channel.close(promise: nil) }
        let deadline = channel.eventLoop.scheduleTask(in: answerWithin) { collector.fail(channel, "no answer within \(answerWithin.nanoseconds / 1_000_000) ms") }
        defer { deadline.cancel() }
        do { return try await collector.response.futureResult.get() } catch let error as LearnStoreError { throw error } catch {
            throw LearnStoreError(.connectionFailed, "\(error)")
        }
    }

    /// Connects to `endpoint` with `handler` reading the answer, and sends `POST path` with `body`.
    func send<Handler: ChannelInboundHandler & Sendable>(
        _ path: String, _ body: [UInt8], to endpoint: (host: String, port: Int), reading handler: Handler
    ) async throws(LearnStoreError) -> any Channel where Handler.InboundIn == HTTPClientResponsePart {
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(hostOrAddress: endpoint.host, port: endpoint.port).get()
        } catch {
            throw LearnStoreError(.connectionFailed, "cannot connect: \(error)")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(endpoint.host):\(endpoint.port)")
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.count))
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        return channel
    }

    // MARK: encoding

    static func putRequest(_ key: String, _ value: [UInt8], lease: Int64) -> JSONValue {
        var members: [(String, JSONValue)] = [("key", base64(key)), ("value", .string(Data(value).base64EncodedString()))]
        if lease != 0 { members.append(("lease", .string(String(lease)))) }
        return .object(members)
    }

    static func base64(_ text: String) -> JSONValue { .string(Data(text.utf8).base64EncodedString()) }

    /// The range end that selects every key starting with `prefix`: its last byte plus one.
    static func prefixEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        bytes[bytes.count - 1] += 1
        return String(decoding: bytes, as: UTF8.self)
    }

    static func int64(_ value: JSONValue?) -> Int64? {
        switch value {
        case .string(let text)?: return Int64(text)
        case .number(let text)?: return Int64(text)
        default: return nil
        }
    }

    static func keyValues(_ value: JSONValue?) throws(LearnStoreError) -> [KeyValue] {
        guard let list = value?.arrayValue else { return [] }
        var result: [KeyValue] = []
        for item in list {
            guard let key = item["key"]?.stringValue.flatMap({ Data(base64Encoded: $0) }) else { throw malformed("a key") }
            let value = item["value"]?.stringValue.flatMap { Data(base64Encoded: $0) } ?? Data()
            result.append(KeyValue(
                key: String(decoding: key, as: UTF8.self), value: [UInt8](value), createRevision: int64(item["create_revision"]) ?? 0,
                modRevision: int64(item["mod_revision"]) ?? 0, lease: int64(item["lease"]) ?? 0))
        }
        return result
    }

    static func malformed(_ what: String) -> LearnStoreError { LearnStoreError(.protocolViolation, "etcd answered \(what) in an unexpected form") }
}

/// Collects one HTTP response, up to `limit` bytes of body.
final class HTTPResponseCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    private let limit: Int
    private var status = 0
    private var body: [UInt8] = []
    private var done = false
    private var promise: EventLoopPromise<(Int, [UInt8])>?

    init(limit: Int) { self.limit = limit }

    var response: EventLoopPromise<(Int, [UInt8])> { promise! }

    func handlerAdded(context: ChannelHandlerContext) {
        promise = context.eventLoop.makePromise()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(let buffer):
            guard body.count + buffer.readableBytes <= limit else {
                return fail(context.channel, "an answer larger than \(limit) bytes")
            }
            body += buffer.readableBytesView
        case .end:
            finish { $0.succeed((status, body)) }
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish { $0.fail(LearnStoreError(.connectionFailed, "the connection closed before the answer ended")) }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish { $0.fail(LearnStoreError(.connectionFailed, "the connection closed before the answer ended")) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context.channel, "\(error)")
    }

    func fail(_ channel: any Channel, _ reason: String) {
        channel.eventLoop.execute {
            self.finish { $0.fail(LearnStoreError(.connectionFailed, reason)) }
            channel.close(promise: nil)
        }
    }

    private func finish(_ body: (EventLoopPromise<(Int, [UInt8])>) -> Void) {
        guard !done, let promise else { return }
        done = true
        body(promise)
    }
}
