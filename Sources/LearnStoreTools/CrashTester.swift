import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreServer
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Kills a real server with SIGKILL while clients write, restarts it, and checks that every
/// acknowledged write survived and that no batch was half-applied.
public struct CrashTester: Sendable {
    public struct Report: Sendable, CustomStringConvertible {
        public var cycles = 0
        public var acknowledgedWrites = 0
        public var lost = 0
        public var corrupt = 0
        public var unacknowledged = 0
        public var failures: [String] = []

        public var description: String {
            "cycles=\(cycles) acked_writes=\(acknowledgedWrites) lost=\(lost) corrupt=\(corrupt) unacknowledged=\(unacknowledged)"
        }
    }

    public var binary: String
    public var workDirectory: String
    public var cycles: Int
    public var writers = 8
    public var fsync = "always"
    public var extraArguments: [String] = []

    public init(binary: String, workDirectory: String, cycles: Int) {
        self.binary = binary
        self.workDirectory = workDirectory
        self.cycles = cycles
    }

    /// A write the test made: the records it expects, and whether the server acknowledged it.
    struct Attempt: Sendable {
        var person: UUID16
        var titles: [String]
        var acknowledged: [RecordID]?
    }

    public func run(progress: @Sendable (Report) -> Void = { _ in }) async throws -> Report {
        let dataDirectory = workDirectory + "/data"
        try? FileManager.default.removeItem(atPath: dataDirectory)
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        let secret = (0..<4).map { _ in UUID().uuidString }.joined()
        let secretPath = workDirectory + "/secret"
        try secret.write(toFile: secretPath, atomically: true, encoding: .utf8)
        let token = try await TokenMinter(secret: secret).mint(
            tenantID: "crash", person: UUID16.random(), scopes: [.recordsRead, .recordsWrite, .admin],
            issuedAt: Timestamp(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)), lifetimeSeconds: 86_400 * 7)
        let arguments = ["--data-dir", dataDirectory, "--jwt-secret-file", secretPath, "--metrics-port", "0", "--fsync", fsync,
                         "--snapshot-interval", "0", "--wal-segment-bytes", "1048576", "--log-level", "warning"] + extraArguments
        var report = Report()
        var history: [Attempt] = []
        var generator = SystemRandomNumberGenerator()
        for cycle in 0..<cycles {
            let server = try await ServerProcess.start(binary: binary, arguments: arguments, logPath: workDirectory + "/server-\(cycle % 2).log")
            let client = try await server.waitUntilReady(token: token)
            // Verify everything so far, then write until a random moment, then kill.
            try await verify(history, client: client, report: &report)
            let shared = CycleState()
            let attempts = shared
            let stopAfter = Int.random(in: 20...400, using: &generator)
            await withTaskGroup(of: Void.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        var n = 0
                        while !shared.killed.load(ordering: .relaxed) {
                            let person = UUID16.random()
                            let batch = (writer + n) % 3 == 0
                            let titles = (0..<(batch ? 3 : 1)).map { "c\(cycle)-w\(writer)-n\(n)-\($0)" }
                            let index = attempts.list.withLock { list in
                                list.append(Attempt(person: person, titles: titles, acknowledged: nil))
                                return list.count - 1
                            }
                            let bodies = titles.map { RecordBody(personID: person, title: $0, score: 50) }
                            do {
                                let ids: [RecordID]
                                if batch {
                                    ids = try await client.performance.learningRecords.createBatch(bodies).value.map(\.id)
                                } else {
                                    ids = [try await client.performance.learningRecords.create(bodies[0]).value.id]
                                }
                                attempts.list.withLock { $0[index].acknowledged = ids }
                                if shared.acknowledged.wrappingAdd(1, ordering: .relaxed).newValue == stopAfter {
                                    shared.killed.store(true, ordering: .relaxed)
                                    kill(server.pid, SIGKILL)
                                }
                            } catch {
                                return  // the server died under us: unacknowledged
                            }
                            n += 1
                        }
                    }
                }
            }
            await server.stop(signal: SIGKILL)
            await client.shutdown()
            history += attempts.list.withLock { $0 }
            report.cycles += 1
            progress(report)
        }
        // A last restart verifies the final cycle's writes.
        let server = try await ServerProcess.start(binary: binary, arguments: arguments, logPath: workDirectory + "/server-final.log")
        let client = try await server.waitUntilReady(token: token)
        try await verify(history, client: client, report: &report)
        await client.shutdown()
        await server.stop(signal: SIGTERM)
        return report
    }

    final class CycleState: Sendable {
        let list = Mutex<[Attempt]>([])
        let acknowledged = Atomic<Int>(0)
        let killed = Atomic<Bool>(false)
    }

    /// Every acknowledged write is present in full; no write is present in part.
    func verify(_ history: [Attempt], client: LearnStoreClient, report: inout Report) async throws {
        var acknowledged = 0
        for attempt in history {
            let found = try await client.performance.learningRecords.page(ListQuery(personID: attempt.person, includeDeleted: true, limit: 10)).records
            let titles = Set(found.compactMap(\.title))
            if let ids = attempt.acknowledged {
                acknowledged += 1
                if titles != Set(attempt.titles) || Set(found.map(\.id)) != Set(ids) {
                    report.lost += 1
                    report.failures.append("acknowledged write \(attempt.titles) missing or altered (found \(titles))")
                }
            } else if !found.isEmpty {
                if titles != Set(attempt.titles) {
                    report.corrupt += 1
                    report.failures.append("unacknowledged write \(attempt.titles) half-applied (found \(titles))")
                }
            }
        }
        report.acknowledgedWrites = acknowledged
        report.unacknowledged = history.filter { $0.acknowledged == nil }.count
    }
}
