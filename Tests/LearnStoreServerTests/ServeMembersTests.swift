import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreTestSupport
import LearnStoreTokens
import LearnStoreTools
import Testing

/// `learnstore serve --member A --member B`: two servers in one process, each with its own port and
/// data, stopped together by one SIGTERM.
@Suite struct ServeMembersTests {
    static var hasBinary: Bool { FileManager.default.isExecutableFile(atPath: CrashTests.binary) }

    struct Scratch {
        let root = TemporaryDirectory(prefix: "learnstore-members-")
        let secret = (0..<4).map { _ in UUID().uuidString }.joined()

        init() throws {
            try secret.write(toFile: root.path + "/secret", atomically: true, encoding: .utf8)
        }

        /// Writes member `name`'s config file and returns its path.
        func member(_ name: String, dataDirectory: String? = nil) throws -> String {
            let text = """
                port = 0
                port-file = \(root.path)/\(name).port
                data-dir = \(dataDirectory ?? root.path + "/" + name)
                metrics-port = 0
                snapshot-interval = 0
                """
            let path = root.path + "/\(name).conf"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        func port(_ name: String) -> Int? {
            (try? String(contentsOfFile: root.path + "/\(name).port", encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }

        var log: String { (try? String(contentsOfFile: root.path + "/serve.log", encoding: .utf8)) ?? "" }

        func serve(_ members: [String]) throws -> ChildProcess {
            try ChildProcess.spawn(
                CrashTests.binary, ["serve", "--jwt-secret-file", root.path + "/secret", "--log-level", "warning", "--event-loops", "2"]
                    + members.flatMap { ["--member", $0] },
                standardOutput: root.path + "/serve.log", standardError: root.path + "/serve.log")
        }
    }

    @Test(.enabled(if: hasBinary, "needs the learnstore binary (swift build)"))
    func twoMembersServeTheirOwnDataAndStopTogether() async throws {
        let scratch = try Scratch()
        let process = try scratch.serve([try scratch.member("a"), try scratch.member("b")])
        let listening = await eventually(within: 60) { scratch.port("a") != nil && scratch.port("b") != nil }
        try #require(listening, "both members listen\n\(scratch.log)")
        let ports = [scratch.port("a")!, scratch.port("b")!]
        #expect(ports[0] != ports[1])
        let token = try await TokenMinter(secret: scratch.secret).mint(
            tenantID: "district", person: UUID16.random(), scopes: [.recordsRead, .recordsWrite],
            issuedAt: Timestamp(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)), lifetimeSeconds: 3600)
        var created: [RecordID] = []
        for port in ports {
            let client = try await LearnStoreClient(ClientConfiguration(host: "127.0.0.1", port: port, token: token, connections: 1))
            var record: LearningRecord?
            // The member answers LOADING until its recovery is done: poll with a deadline.
            _ = await eventually(within: 60) { () async -> Bool in
                record = try? await client.performance.learningRecords.create(RecordBody(personID: UUID16(high: 1, low: 1), title: "on \(port)")).value
                return record != nil
            }
            let made = try #require(record, "member on port \(port) takes a write\n\(scratch.log)")
            created.append(made.id)
            await client.shutdown()
        }
        // Each member holds only its own record: their tenants are separate stores.
        for (index, port) in ports.enumerated() {
            let client = try await LearnStoreClient(ClientConfiguration(host: "127.0.0.1", port: port, token: token, connections: 1))
            #expect(try await client.performance.learningRecords.get(created[index]).title == "on \(port)")
            await #expect(throws: LearnStoreError.self) { try await client.performance.learningRecords.get(created[1 - index]) }
            await client.shutdown()
        }
        process.signal(SIGTERM)
        let status = await process.exited(within: .seconds(60))
        #expect(status == 0, "one SIGTERM stops both members gracefully\n\(scratch.log)")
    }

    @Test(.enabled(if: hasBinary, "needs the learnstore binary (swift build)"))
    func membersSharingADataDirectoryAreRefusedByName() async throws {
        let scratch = try Scratch()
        let shared = scratch.root.path + "/shared"
        let first = try scratch.member("a", dataDirectory: shared)
        let second = try scratch.member("b", dataDirectory: shared + "/")
        let process = try scratch.serve([first, second])
        let status = await process.exited(within: .seconds(60))
        #expect(status != nil && status != 0)
        #expect(scratch.log.contains("members \(first) and \(second) have the same data-dir"), "\(scratch.log)")
    }
}
