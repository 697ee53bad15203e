import CanvasOutcomes
import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreWorkload
import LearnStoreTestSupport
import LearnStoreTools
import Testing

/// The `learnstore` binary (built next to the test bundle), run against an in-process server.
struct CommandLineRun {
    var status: Int32
    var stdout: String
    var stderr: String

    static var binary: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("learnstore")
    }

    /// Runs without blocking a thread of the cooperative pool; output goes to files, so a full pipe can
    /// never stall the child. A command still running after `timeout` is killed, and the run fails
    /// naming it: a test never waits for ever on a child.
    static func run(_ arguments: [String], in directory: URL, timeout: Duration = .seconds(600)) async throws -> CommandLineRun {
        let out = directory.appendingPathComponent("stdout-\(UUID().uuidString)")
        let err = directory.appendingPathComponent("stderr-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        let child = try ChildProcess.spawn(binary.path, arguments, standardOutput: out.path, standardError: err.path, environment: ["PATH": "/usr/bin:/bin"])
        guard let status = await child.exited(within: timeout) else {
            child.signal(SIGKILL)
            await child.exited()
            throw LearnStoreError(.timeout, "`learnstore \(arguments.prefix(2).joined(separator: " "))` was still running after \(timeout); killed. stderr: "
                + ((try? String(contentsOf: err, encoding: .utf8)) ?? ""))
        }
        return CommandLineRun(status: status, stdout: try String(contentsOf: out, encoding: .utf8),
                              stderr: try String(contentsOf: err, encoding: .utf8))
    }
}

@Suite struct OutcomeCommandLineTests {
    @Test func ingestReportsEveryKindOfOutcomeAndQueriesPrintJSON() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CommandLineRun.binary.path), "build the learnstore binary first")
        let server = try await TestServer.start()
        let token = try await server.token()
        let connection = ["--port", String(server.port), "--token", token]
        let scratch = TemporaryDirectory(prefix: "learnstore-cli-")
        let directory = URL(fileURLWithPath: scratch.path)

        let course = CanvasCourseDataset(students: 3, outcomes: 4, resultsPerOutcome: 3, seed: 8)
        var lines = course.eventLines()
        let total = lines.count
        lines.insert(#"{"metadata":{"event_name":"learning_outcome_created"},"body":{}}"#, at: 5)
        lines.insert("", at: 7)
        lines.insert("{not json", at: 9)
        lines.append(lines[0])
        let file = directory.appendingPathComponent("events.jsonl")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: file)

        let ingest = try await CommandLineRun.run(["outcomes", "ingest", file.path, "--batch", "7"] + connection, in: directory)
        #expect(ingest.status == 5, "some events were rejected: \(ingest.stderr)")
        let summary = try JSONValue.parse(ingest.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(summary["events"] == .number(String(total + 3)))
        #expect(summary["applied"] == .number(String(total)))
        #expect(summary["duplicates"] == .number("1"))
        #expect(summary["rejected"] == .number("2"))
        #expect(summary["rejected_by_reason"] == .object([("badJSON", .number("1")), ("missingField", .number("1"))]))
        // Line 6 holds the event without an id (inserted at index 5); line 10 the bad JSON.
        #expect(ingest.stderr.contains("line 6: missingField: VALIDATION (body.learning_outcome_id)"))
        #expect(ingest.stderr.contains("line 10: badJSON"))
        #expect(ingest.stderr.contains("100% ") && ingest.stderr.contains("done: "))

        let again = try await CommandLineRun.run(["outcomes", "ingest", file.path] + connection, in: directory)
        #expect(again.status == 5)
        #expect(try JSONValue.parse(again.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["applied"] == .number("0"))

        let client = try await server.client()
        let student = course.students[1]
        let rollups = try await CommandLineRun.run(
            ["outcomes", "rollup", "--student", student, "--context-type", "Course", "--context-id", "565"] + connection, in: directory)
        #expect(rollups.status == 0)
        let expected = try await client.outcomes.studentRollups(userUUID: student, context: course.context)
        #expect(rollups.stdout == expected.map { $0.json.serialized + "\n" }.joined())
        #expect(!expected.isEmpty)

        let aggregates = try await CommandLineRun.run(
            ["outcomes", "rollup", "--aggregate", "--context-type", "Course", "--context-id", "565"] + connection, in: directory)
        #expect(aggregates.stdout == (try await client.outcomes.contextAggregates(context: course.context)).map { $0.json.serialized + "\n" }.joined())

        let get = try await CommandLineRun.run(["outcomes", "get", "outcome", "1002"] + connection, in: directory)
        #expect(get.status == 0)
        #expect(get.stdout == OutcomeEntity.outcome(course.outcomes[2]).json.serialized + "\n")
        let path = try await CommandLineRun.run(["outcomes", "list", "path", "--group", "104"] + connection, in: directory)
        #expect(path.stdout.split(separator: "\n").count == 3)
        let results = try await CommandLineRun.run(["outcomes", "results", "--student", student, "--all", "--limit", "2"] + connection,
                                                   in: directory)
        #expect(results.stdout.split(separator: "\n").count == course.results.filter {
            $0.userUUID == student && $0.workflowState != "deleted"
        }.count)
        let proficiency = try await CommandLineRun.run(["outcomes", "proficiency", "--context-type", "Course", "--context-id", "565"] + connection,
                                                       in: directory)
        #expect(proficiency.stdout == OutcomeEntity.proficiency(course.proficiency).json.serialized + "\n")
        let missing = try await CommandLineRun.run(["outcomes", "get", "group", "1"] + connection, in: directory)
        #expect(missing.status == 1 && missing.stderr.contains("NOT_FOUND"))
        let usage = try await CommandLineRun.run(["outcomes", "results"] + connection, in: directory)
        #expect(usage.status == 2)

        await client.shutdown()
        try await server.stop()
    }
}
