import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import LearnStoreServer
import NIOCore
import NIOPosix
import LearnStoreTestSupport
import Testing

/// The Prometheus endpoint of a real server (built by `LearnStoreApplication`, with persistence),
/// scraped over HTTP: the series an operator needs exist with the values the requests made, there
/// is no series for an opcode the protocol does not define, and the endpoint stops with the server.
@Suite struct MetricsEndpointTests {
    static func start(_ directory: String) async throws -> (TestServer, metricsPort: Int) {
        let server = try await TestServer.start(configure: { $0.metricsPort = 0 }, persistence: .forTests(directory))
        return (server, try #require(server.metricsPort))
    }

    @Test func aScrapeShowsTheSeriesWithTheirValuesAndTheEndpointStopsWithTheServer() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-metrics-")
        let directory = scratch.path

        let (server, metricsPort) = try await Self.start(directory)
        let client = try await server.client(tenant: "tenant_a", connections: 1)
        var ids: [RecordID] = []
        for n in 1...5 { ids.append(try await client.performance.learningRecords.create(sampleBody(title: "course \(n)")).value.id) }
        for id in ids + ids { _ = try await client.performance.learningRecords.get(id) }
        do {
            _ = try await client.request(opcode: 0x7E) { _ in }
            Issue.record("an undefined opcode was answered")
        } catch {
            #expect(error.code == .unknownOpcode)
        }
        let snapshot = try await client.admin.snapshot()
        #expect(snapshot.written)

        let scrape = try await Scrape.get(port: metricsPort)
        #expect(scrape.status == 200)
        #expect(!scrape.body.contains("op_0x"), "no series for opcodes the protocol does not define")
        for label in Set(ServerMetrics.opcodeLabels) {
            #expect(scrape[#"learnstore_requests_total{opcode="\#(label)"}"#] != nil, "requests of \(label)")
            #expect(scrape[#"learnstore_request_duration_seconds_count{opcode="\#(label)"}"#] != nil, "latencies of \(label)")
        }
        #expect(scrape[#"learnstore_requests_total{opcode="create"}"#] == 5)
        #expect(scrape[#"learnstore_requests_total{opcode="get"}"#] == 10)
        #expect(scrape[#"learnstore_request_duration_seconds_count{opcode="get"}"#] == 10)
        #expect(scrape[#"learnstore_request_duration_seconds_bucket{opcode="get",le="+Inf"}"#] == 10)
        #expect(scrape[#"learnstore_request_duration_seconds_bucket{opcode="get",le="10.0"}"#] == 10)
        #expect((scrape[#"learnstore_request_duration_seconds_sum{opcode="get"}"#] ?? 0) > 0)
        #expect(scrape[#"learnstore_errors_total{opcode="other",code="\#(LearnStoreError.Code.unknownOpcode.name)"}"#] == 1)

        // Every create is one WAL record, written and (fsync always) synced before its answer.
        #expect(scrape["learnstore_wal_write_records_sum"] == 5)
        #expect((scrape["learnstore_wal_write_seconds_count"] ?? 0) >= 1)
        #expect((scrape["learnstore_wal_write_bytes_sum"] ?? 0) > 5 * 50)
        #expect((scrape["learnstore_wal_fsync_seconds_count"] ?? 0) >= 1)
        #expect(scrape["learnstore_wal_fsync_seconds_count"] == scrape[#"learnstore_wal_fsync_seconds_bucket{le="+Inf"}"#])

        #expect(scrape["learnstore_snapshot_duration_seconds_count"] == 1)
        #expect(scrape[#"learnstore_snapshot_bytes{tenant="tenant_a"}"#] == Double(snapshot.bytes))
        #expect(scrape["learnstore_snapshot_failures_total"] == 0)

        #expect(scrape["learnstore_tenants"] == 1)
        #expect(scrape["learnstore_feed_subscriptions"] == 0)
        #expect(scrape["learnstore_records"] == 5)
        #expect(scrape["learnstore_loading"] == 0)
        #expect(scrape["learnstore_connections"] == 1)
        #expect((scrape["learnstore_resident_memory_bytes"] ?? 0) > Double(1 << 20))
        // A fresh data directory: nothing to recover.
        #expect(scrape["learnstore_recovery_tenants"] == 0)
        #expect(scrape["learnstore_recovery_wal_segments"] == 0)

        // Only /metrics is served.
        #expect(try await Scrape.get(port: metricsPort, path: "/other").status == 404)

        await client.shutdown()
        try await server.stop()
        await #expect(throws: (any Error).self, "the endpoint stopped with the server") {
            _ = try await Scrape.get(port: metricsPort)
        }

        // A restart recovers the tenant from its shutdown snapshot and replays the WAL's segments.
        let (restarted, restartedPort) = try await Self.start(directory)
        let recovered = try await Scrape.get(port: restartedPort)
        #expect(recovered["learnstore_recovery_tenants"] == 1)
        #expect(recovered["learnstore_recovery_tenants_loaded"] == 1)
        let segments = try #require(recovered["learnstore_recovery_wal_segments"])
        #expect(segments >= 1 && recovered["learnstore_recovery_wal_segments_replayed"] == segments)
        #expect(recovered["learnstore_records"] == 5)
        #expect(recovered["learnstore_loading"] == 0)
        #expect(recovered[#"learnstore_requests_total{opcode="create"}"#] == 0)
        try await restarted.stop()
    }

    @Test func feedSubscriptionsAndTheChangesSentAreCounted() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-metrics-")
        let (server, metricsPort) = try await Self.start(scratch.path)
        let client = try await server.client(tenant: "tenant_a", connections: 1)
        for _ in 0..<3 { _ = try await client.performance.learningRecords.create(sampleBody()) }
        var changes = client.feed.subscribe(from: .after(0)).makeAsyncIterator()
        for expected in UInt64(1)...3 { #expect(try await changes.next()?.sequence == expected) }
        let scrape = try await Scrape.get(port: metricsPort)
        #expect(scrape["learnstore_feed_subscriptions"] == 1)
        #expect(scrape["learnstore_feed_changes_total"] == 3)
        try await server.stop()
    }

    @Test func loadingIsOneUntilTheServerServesData() async throws {
        let server = try await TestServer.start(configure: { $0.metricsPort = 0 }, stayLoading: true)
        let port = try #require(server.metricsPort)
        #expect(try await Scrape.get(port: port)["learnstore_loading"] == 1)
        server.server.context.runtime.finishLoading()
        #expect(try await Scrape.get(port: port)["learnstore_loading"] == 0)
        try await server.stop()
    }
}

/// One `GET` over a new connection; HTTP/1.0, so the endpoint answers and closes.
struct Scrape {
    var status: Int
    var body: String
    /// Sample values by series (`name{labels}` as the endpoint writes it).
    var samples: [String: Double]

    subscript(series: String) -> Double? { samples[series] }

    static func get(port: Int, path: String = "/metrics") async throws -> Scrape {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        var response = ByteBuffer()
        try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: "GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"))
            for try await var chunk in inbound { response.writeBuffer(&chunk) }
        }
        let text = String(buffer: response)
        guard let split = text.range(of: "\r\n\r\n") else { throw LearnStoreError(.badFrame, "not an HTTP response: \(text)") }
        let statusLine = text[..<split.lowerBound].split(separator: "\r\n").first ?? ""
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        let body = String(text[split.upperBound...])
        return Scrape(status: status, body: body, samples: parse(body))
    }

    /// The Prometheus text format's sample lines: `series value`, comments skipped.
    static func parse(_ body: String) -> [String: Double] {
        var samples: [String: Double] = [:]
        for line in body.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }
}
