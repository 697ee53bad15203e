import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreTestSupport
import LearnStoreTokens
@testable import LearnStoreServer
import LearnStoreTools
import NIOPosix
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

        /// Writes member `name`'s config file (with `more` lines) and returns its path.
        func member(_ name: String, dataDirectory: String? = nil, _ more: String = "") throws -> String {
            let text = """
                port = 0
                port-file = \(root.path)/\(name).port
                data-dir = \(dataDirectory ?? root.path + "/" + name)
                metrics-port = 0
                snapshot-interval = 0
                \(more)
                """
            let path = root.path + "/\(name).conf"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        func port(_ name: String) -> Int? {
            (try? String(contentsOfFile: root.path + "/\(name).port", encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }

        var log: String { log("serve") }

        func log(_ name: String) -> String { (try? String(contentsOfFile: root.path + "/\(name).log", encoding: .utf8)) ?? "" }

        /// `learnstore serve` with `members`, the test's key unless `withKey` is false, and `more`.
        func serve(_ members: [String], log: String = "serve", withKey: Bool = true, _ more: [String] = []) throws -> ChildProcess {
            try ChildProcess.spawn(
                CrashTests.binary, ["serve", "--log-level", "notice", "--event-loops", "2"] + (withKey ? ["--jwt-secret-file", root.path + "/secret"] : []) + more
                    + members.flatMap { ["--member", $0] } + more,
                standardOutput: root.path + "/\(log).log", standardError: root.path + "/\(log).log")
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

    /// With `--dev` and no key, the members share the first one's generated key: a token one prints
    /// works on the other.
    @Test(.enabled(if: hasBinary, "needs the learnstore binary (swift build)"))
    func developmentMembersShareOneKey() async throws {
        let scratch = try Scratch()
        let process = try scratch.serve([try scratch.member("a"), try scratch.member("b")], withKey: false, ["--dev"])
        defer { process.signal(SIGKILL) }
        let ready = await eventually(within: 60) { scratch.port("a") != nil && scratch.port("b") != nil && scratch.log.contains("eyJ") }
        try #require(ready, "\(scratch.log)")
        let lines = scratch.log.split(separator: "\n")
        let token = String(try #require(lines.first { $0.hasPrefix("eyJ") }))
        for port in [scratch.port("a")!, scratch.port("b")!] {
            let client = try await LearnStoreClient(ClientConfiguration(host: "127.0.0.1", port: port, token: token, connections: 1))
            var made: LearningRecord?
            _ = await eventually(within: 60) { () async -> Bool in
                made = try? await client.performance.learningRecords.create(RecordBody(personID: UUID16(high: 1, low: 2), title: "dev")).value
                return made != nil
            }
            #expect(made != nil, "the token works on the member on port \(port)\n\(scratch.log)")
            await client.shutdown()
        }
        process.signal(SIGTERM)
        #expect(await process.exited(within: .seconds(60)) == 0)
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

    /// Two processes, each a member of two groups with etcd (process one: a0 and b0, the groups'
    /// first primaries; process two: a1 and b1). Group ga's primary is handed over to a1: a0 starts
    /// again in place, inside process one, and follows a1, while b0 in the same process stays
    /// gb's primary throughout.
    @Test(.enabled(if: hasBinary && EtcdProcess.binary() != nil, "needs the learnstore binary (swift build) and etcd"))
    func aMemberReplacedByAHandoverStartsAgainInItsProcess() async throws {
        let scratch = try Scratch()
        try String(decoding: ReplicationServerTests.secret, as: UTF8.self).write(toFile: scratch.root.path + "/cluster-secret", atomically: true, encoding: .utf8)
        let etcd = try await EtcdProcess.startCluster(members: 1, workDirectory: scratch.root.path, binary: EtcdProcess.binary()!)
        defer { for member in etcd { member.process.signal(SIGKILL) } }
        let endpoints = etcd.map(\.clientURL)
        var replication: [String: Int] = [:]
        func member(_ id: String) throws -> String {
            replication[id] = try FailoverTester.freePort()
            return try scratch.member(id, "node-id = \(id)\nreplication-port = \(replication[id]!)\ncluster-name = g\(id.prefix(1))")
        }
        // Two members per group: one synchronous replica is followed but not required (three would be).
        let shared = ["--cluster-secret-file", scratch.root.path + "/cluster-secret", "--etcd-endpoints", endpoints.joined(separator: ","), "--min-in-sync-replicas", "0"]
        func status(_ id: String) async -> JSONValue? { try? await ReplicationServerTests.status("127.0.0.1:\(replication[id]!)") }
        func role(_ id: String) async -> JSONValue? { await status(id)?["role"] }

        let first = try scratch.serve([try member("a0"), try member("b0")], log: "one", shared + ["--machine", "m1"])
        defer { first.signal(SIGKILL) }
        #expect(await eventually(within: 60) { () async -> Bool in
            let (a, b) = (await role("a0"), await role("b0"))
            return a == .string("primary") && b == .string("primary")
        }, "\(scratch.log("one"))")
        let second = try scratch.serve([try member("a1"), try member("b1")], log: "two", shared + ["--machine", "m2"])
        defer { second.signal(SIGKILL) }
        #expect(await eventually(within: 60) { () async -> Bool in
            let (a, b) = (await status("a0"), await status("b0"))
            return a?["in_sync"] == .array([.string("a1")]) && b?["in_sync"] == .array([.string("b1")])
        }, "\(scratch.log("one"))\n\(scratch.log("two"))")

        var ga = ClusterConfiguration(endpoints: endpoints)
        ga.name = "ga"
        let placement = try await ClusterHandover.request("a1", configuration: ga, group: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(30))
        #expect(placement.primary == "a1")
        #expect(await eventually(within: 60) { () async -> Bool in
            let a = await status("a0")
            return a?["role"] == .string("replica") && a?["primary"] == .string("a1")
        },
                "a0 follows a1\n\(scratch.log("one"))")
        #expect(first.isRunning, "process one went on")
        #expect(scratch.log("one").contains("starting the member again"))
        #expect(await role("b0") == .string("primary"), "gb's primary in the same process was not touched")
        #expect(await status("b0")?["epoch"] == .number("1"))
        first.signal(SIGTERM)
        second.signal(SIGTERM)
        #expect(await first.exited(within: .seconds(60)) == 0, "\(scratch.log("one"))")
        #expect(await second.exited(within: .seconds(60)) == 0, "\(scratch.log("two"))")
    }
}
