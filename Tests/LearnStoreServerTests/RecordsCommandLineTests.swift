import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreTestSupport
import Testing

/// `learnstore records create` with more input than one batch.
@Suite struct RecordsCommandLineTests {
    static func input(_ count: Int, in directory: URL) throws -> String {
        let lines = (0..<count).map { #"{"person_id":"5f0c1e2a-7b3d-4c9e-9a1b-000000000042","title":"R\#($0)","score":50}"# }
        let file = directory.appendingPathComponent("records.jsonl")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: file)
        return file.path
    }

    /// Each batch carries a key of its own (KEY#0, KEY#1): one key for all of them would be refused
    /// from the second batch on (the server remembers a key with its body), and the same command run
    /// again must create nothing.
    @Test func anIdempotencyKeyCoversEveryBatchAndARerunCreatesNothing() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CommandLineRun.binary.path), "build the learnstore binary first")
        let server = try await TestServer.start()
        let scratch = TemporaryDirectory(prefix: "learnstore-create-key-")
        let directory = URL(fileURLWithPath: scratch.path)
        let file = try Self.input(1500, in: directory)
        let arguments = ["records", "create", file, "--idempotency-key", "load-2026-12", "--port", String(server.port), "--token", try await server.token()]
        let first = try await CommandLineRun.run(arguments, in: directory)
        #expect(first.status == 0, "\(first.stderr)")
        let again = try await CommandLineRun.run(arguments, in: directory)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout == first.stdout, "the rerun prints the records the first run created")
        let client = try await server.client()
        #expect(try await client.performance.learningRecords.stats()["records"] == .number("1500"))
        await client.shutdown()

        let long = String(repeating: "k", count: 127)
        let refused = try await CommandLineRun.run(
            ["records", "create", file, "--idempotency-key", long, "--port", String(server.port), "--token", try await server.token()], in: directory)
        #expect(refused.status == 2 && refused.stderr.contains("#1"), "\(refused.stderr)")
        try await server.stop()
    }
}
