import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreTokens
import LearnStoreTools
import LearnStoreTestSupport
import Testing

/// INFO of the real `learnstore serve`: recovery state and the write-ahead log's figures.
@Suite struct ServerBinaryInfoTests {
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary), "needs the learnstore binary (swift build)"))
    func infoReportsTheWriteAheadLog() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-info-")
        let directory = scratch.path
        let secret = (0..<4).map { _ in UUID().uuidString }.joined()
        try secret.write(toFile: directory + "/secret", atomically: true, encoding: .utf8)
        let minter = TokenMinter(secret: secret)
        let now = Timestamp(milliseconds: Int64(Date().timeIntervalSince1970 * 1000))
        let token = try await minter.mint(
            tenantID: "info", person: UUID16.random(), scopes: [.recordsRead, .recordsWrite, .admin], issuedAt: now, lifetimeSeconds: 3600)
        let tenantToken = try await minter.mint(
            tenantID: "other", person: UUID16.random(), scopes: [.recordsRead, .recordsWrite], issuedAt: now, lifetimeSeconds: 3600)
        let server = try await ServerProcess.start(
            binary: CrashTests.binary,
            arguments: ["--data-dir", directory + "/data", "--jwt-secret-file", directory + "/secret", "--metrics-port", "0",
                        "--wal-segment-bytes", "1048576", "--log-level", "warning"],
            logPath: directory + "/server.log")
        let client = try await server.waitUntilReady(token: token)
        _ = try await client.performance.learningRecords.create(RecordBody(personID: UUID16.random(), title: "T"))
        let info = try await client.info()
        #expect(info["loading"] == .bool(false))
        let storage = try #require(info["storage"])
        #expect(storage["fsync_policy"] == .string("always"))
        #expect(storage["committed_lsn"] == .number("1"))
        #expect(storage["wal_syncs"] != .number("0"))
        #expect(info["tenants"] == .number("1"))
        // Without the admin scope: the server's identity and state (its storage included), nothing
        // about other tenants.
        let tenantClient = try await LearnStoreClient(ClientConfiguration(host: "127.0.0.1", port: server.port, token: tenantToken))
        let tenantView = try await tenantClient.info()
        #expect(tenantView["server_wide"] == .bool(false))
        #expect(tenantView["loading"] == .bool(false))
        for member in ["tenants", "requests", "errors", "connections", "connections_opened"] {
            #expect(tenantView[member] == nil, "\(member) is server-wide")
        }
        #expect(tenantView["storage"]?["fsync_policy"] == .string("always"), "the storage state is the server's, shown to every caller")
        await tenantClient.shutdown()
        await client.shutdown()
        await server.stop(signal: SIGTERM)
    }
}
