import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreTokens
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

    /// Every file and directory `run` creates in the work directory.
    public static let entriesWritten = [
        "data", "secret", "server-0.log", "server-1.log", "server-final.log",
        "server-0.log.port", "server-1.log.port", "server-final.log.port",
    ]

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

    /// Every acknowledged write is present in full; no write is present in part. The lookups run
    /// 64 at a time (pipelined over the client's connections): the history grows with every cycle and
    /// is checked in full after each restart.
    func verify(_ history: [Attempt], client: LearnStoreClient, report: inout Report) async throws {
        let lanes = 64
        let failures = try await withThrowingTaskGroup(of: (lost: [String], corrupt: [String]).self) { group in
            for lane in 0..<lanes {
                group.addTask {
                    var lost: [String] = []
                    var corrupt: [String] = []
                    for index in stride(from: lane, to: history.count, by: lanes) {
                        let attempt = history[index]
                        let found = try await client.performance.learningRecords.page(
                            ListQuery(personID: attempt.person, includeDeleted: true, limit: 10)).records
                        let titles = Set(found.compactMap(\.title))
                        if let ids = attempt.acknowledged {
                            if titles != Set(attempt.titles) || Set(found.map(\.id)) != Set(ids) {
                                lost.append("acknowledged write \(attempt.titles) missing or altered (found \(titles))")
                            }
                        } else if !found.isEmpty, titles != Set(attempt.titles) {
                            corrupt.append("unacknowledged write \(attempt.titles) half-applied (found \(titles))")
                        }
                    }
                    return (lost, corrupt)
                }
            }
            var all: (lost: [String], corrupt: [String]) = ([], [])
            for try await lane in group {
                all.lost += lane.lost
                all.corrupt += lane.corrupt
            }
            return all
        }
        // Each restart re-checks the whole history, so a write lost once is seen again every cycle:
        // the counts are of distinct writes (a lost write cannot come back).
        report.lost = max(report.lost, failures.lost.count)
        report.corrupt = max(report.corrupt, failures.corrupt.count)
        if !failures.lost.isEmpty || !failures.corrupt.isEmpty { report.failures = failures.lost + failures.corrupt }
        let acknowledged = history.count { $0.acknowledged != nil }
        report.acknowledgedWrites = acknowledged
        report.unacknowledged = history.filter { $0.acknowledged == nil }.count
    }
}
