import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStorePersistence
import LearnStoreTestSupport
import Testing

/// The operator commands of the `learnstore` binary: online against a persistent in-process server,
/// offline against its data directory once it has stopped.
@Suite struct OperatorCommandLineTests {
    static func json(_ text: String) throws -> JSONValue { try JSONValue.parse(text.trimmingCharacters(in: .whitespacesAndNewlines)) }

    @Test func onlineAndOfflineToolsOnOneDataDirectory() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CommandLineRun.binary.path), "build the learnstore binary first")
        let scratch = TemporaryDirectory(prefix: "learnstore-ops-cli-")
        let work = URL(fileURLWithPath: scratch.path)
        let data = work.appendingPathComponent("data").path
        let dataDir = ["--data-dir", data]
        func run(_ arguments: [String]) async throws -> CommandLineRun { try await CommandLineRun.run(arguments, in: work) }

        let server = try await PersistentTestServer.start(dataDirectory: data)
        let client = try await server.client(tenant: "tenant_a")
        for n in 1...5 { _ = try await client.performance.learningRecords.create(RecordBody(personID: UUID16(high: 1, low: UInt64(n)), title: "R\(n)")) }
        let online = ["--online", "--port", String(server.port), "--token", try await server.token(tenant: "tenant_a")]

        let locked = try await run(["restore", "--tenant", "tenant_a", "--sequence", "1"] + dataDir)
        #expect(locked.status == 1 && locked.stderr.contains("in use by another LearnStore process"), "\(locked.stderr)")
        let restored = try await run(["restore", "--sequence", "3"] + online)
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try Self.json(restored.stdout)["restored"]?["records"] == .number("3"))
        let unchanged = try await run(["snapshot", "create"] + online)
        #expect(try Self.json(unchanged.stdout)["written"] == .bool(false), "the restore wrote the tenant's snapshot")
        _ = try await client.performance.learningRecords.create(RecordBody(personID: UUID16(high: 1, low: 6), title: "R6"))
        let snapshot = try await run(["snapshot", "create"] + online)
        #expect(try snapshot.status == 0 && Self.json(snapshot.stdout)["written"] == .bool(true), "\(snapshot.stderr)")
        await client.shutdown()
        try await server.stop()

        let check = try await run(["wal", "check"] + dataDir)
        #expect(try check.status == 0 && Self.json(check.stdout)["status"] == .string("ok"), "\(check.stderr)")
        let cat = try await run(["wal", "cat", "--tenant", "tenant_a", "--from-lsn", "2"] + dataDir)
        #expect(cat.stdout.split(separator: "\n").count == 5, "LSNs 2 to 6: the WAL keeps the replaced history")
        let list = try await run(["snapshot", "list"] + dataDir)
        #expect(list.status == 0 && list.stdout.split(separator: "\n").count >= 2, "\(list.stderr)")
        let verify = try await run(["snapshot", "verify"] + dataDir)
        #expect(verify.status == 0 && verify.stderr.contains("0 damaged"), "\(verify.stderr)")

        let file = work.appendingPathComponent("a.jsonl").path
        let export = try await run(["export", "--tenant", "tenant_a", "-o", file] + dataDir)
        #expect(export.status == 0, "\(export.stderr)")
        #expect(try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").count == 4)
        let imported = try await run(["import", file, "--tenant", "copy"] + dataDir)
        #expect(try imported.status == 0 && Self.json(imported.stdout)["records"] == .number("4"), "\(imported.stderr)")

        let before = try SnapshotCatalog.list(DataDirectory(data)).map(\.path)
        let dryRun = try await run(["restore", "--tenant", "tenant_a", "--sequence", "1", "--dry-run"] + dataDir)
        #expect(try dryRun.status == 0 && Self.json(dryRun.stdout)["restored"]?["records"] == .number("1"), "\(dryRun.stderr)")
        #expect(try SnapshotCatalog.list(DataDirectory(data)).map(\.path) == before)
        let unconfirmed = try await run(["wal", "truncate", "--at-lsn", "2"] + dataDir)
        #expect(try unconfirmed.status == 2 && Self.json(unconfirmed.stdout)["truncated"] == .bool(false))
        let usage = try await run(["restore", "--all", "--sequence", "1"] + dataDir)
        #expect(usage.status == 2)

        let victim = try #require(before.first)
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: victim)))
        bytes[bytes.count - 40] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: victim))
        let damaged = try await run(["snapshot", "verify", victim])
        #expect(damaged.status == 6 && damaged.stdout.contains("\"ok\":false"))
        let missing = try await run(["wal", "check", "--data-dir", data + "-typo"])
        #expect(missing.status == 1 && missing.stderr.contains("no data directory"))
    }

    @Test func feedPrintsChangesAsJSONLinesAndSaysWhenTheyAreGone() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CommandLineRun.binary.path), "build the learnstore binary first")
        let scratch = TemporaryDirectory(prefix: "learnstore-feed-cli-")
        let work = URL(fileURLWithPath: scratch.path)
        let server = try await PersistentTestServer.start(dataDirectory: work.appendingPathComponent("data").path)
        let client = try await server.client(tenant: "tenant_a")
        for n in 1...3 { _ = try await client.performance.learningRecords.create(RecordBody(personID: UUID16(high: 1, low: UInt64(n)), title: "R\(n)")) }
        let connect = ["--port", String(server.port), "--token", try await server.token(tenant: "tenant_a")]
        let two = try await CommandLineRun.run(["feed", "--from", "1", "--count", "2"] + connect, in: work)
        #expect(two.status == 0, "\(two.stderr)")
        let lines = two.stdout.split(separator: "\n").map { try? Self.json(String($0)) }
        #expect(lines.map { $0?["sequence"] } == [.number("2"), .number("3")])
        #expect(lines.first??["parts"]?.arrayValue?.first?["kind"] == .string("create"))
        let ahead = try await CommandLineRun.run(["feed", "--from", "9"] + connect, in: work)
        #expect(ahead.status == 1 && ahead.stderr.contains("VALIDATION"), "\(ahead.stderr)")
        let neither = try await CommandLineRun.run(["feed"] + connect, in: work)
        #expect(neither.status == 2)
        await client.shutdown()
        try await server.stop()
    }
}
