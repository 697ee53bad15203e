import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreProtocol
import LearnStoreTokens
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Kills a real server with SIGKILL while clients write to several tenants, restarts it, and checks
/// that every acknowledged write survived and that no batch was half-applied; a change-feed
/// subscriber per tenant follows through the kills.
public struct CrashTester: Sendable {
    public struct Report: Sendable, CustomStringConvertible {
        public var cycles = 0
        public var acknowledgedWrites = 0
        public var lost = 0
        public var corrupt = 0
        public var unacknowledged = 0
        /// Changes a change-feed subscriber was given over all cycles, and what was wrong with them.
        public var feedChanges = 0
        public var feedMismatches = 0
        public var failures: [String] = []

        public var description: String {
            "cycles=\(cycles) acked_writes=\(acknowledgedWrites) lost=\(lost) corrupt=\(corrupt) unacknowledged=\(unacknowledged) "
                + "feed_changes=\(feedChanges) feed_mismatches=\(feedMismatches)"
        }
    }

    public var binary: String
    public var workDirectory: String
    public var cycles: Int
    public var writers = 8
    /// Tenants written (writer w writes to tenant w mod tenants), each followed by one subscriber.
    public var tenants = 3
    public var fsync = "always"
    public var extraArguments: [String] = []
    /// A subscriber follows the tenant's change feed through every kill and restart.
    public var followFeed = true

    public init(binary: String, workDirectory: String, cycles: Int) {
        self.binary = binary
        self.workDirectory = workDirectory
        self.cycles = cycles
    }

    /// A write the test made: the records it expects, and whether the server acknowledged it.
    struct Attempt: Sendable {
        var tenant: Int
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
        var tokens: [String] = []
        for tenant in 0..<max(1, tenants) {
            tokens.append(try await TokenMinter(secret: secret).mint(
                tenantID: "crash\(tenant)", person: UUID16.random(), scopes: [.recordsRead, .recordsWrite, .admin],
                issuedAt: Timestamp(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)), lifetimeSeconds: 86_400 * 7))
        }
        let arguments = ["--data-dir", dataDirectory, "--jwt-secret-file", secretPath, "--metrics-port", "0", "--fsync", fsync,
                         "--snapshot-interval", "0", "--wal-segment-bytes", "1048576", "--log-level", "warning"] + extraArguments
        var report = Report()
        var history: [Attempt] = []
        var generator = SystemRandomNumberGenerator()
        let feeds = tokens.map { _ in FeedLog() }
        for cycle in 0..<cycles {
            let server = try await ServerProcess.start(binary: binary, arguments: arguments, logPath: workDirectory + "/server-\(cycle % 2).log")
            var connected: [LearnStoreClient] = []
            for token in tokens { connected.append(try await server.waitUntilReady(token: token)) }
            let clients = connected
            // Verify everything so far, then write until a random moment, then kill.
            try await verify(history, clients: clients, report: &report)
            let shared = CycleState()
            let attempts = shared
            let stopAfter = Int.random(in: 20...400, using: &generator)
            let followers = followFeed ? zip(feeds, clients).map { feed, client in Task { await feed.follow(client) } } : []
            await withTaskGroup(of: Void.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        var n = 0
                        let tenant = writer % clients.count
                        let client = clients[tenant]
                        while !shared.killed.load(ordering: .relaxed) {
                            let person = UUID16.random()
                            let batch = (writer + n) % 3 == 0
                            let titles = (0..<(batch ? 3 : 1)).map { "c\(cycle)-w\(writer)-n\(n)-\($0)" }
                            let index = attempts.list.withLock { list in
                                list.append(Attempt(tenant: tenant, person: person, titles: titles, acknowledged: nil))
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
            for follower in followers { follower.cancel() }
            for follower in followers { await follower.value }
            for client in clients { await client.shutdown() }
            history += attempts.list.withLock { $0 }
            report.cycles += 1
            report.feedChanges = feeds.reduce(0) { $0 + $1.changes.withLock { $0.count } }
            progress(report)
        }
        // A last restart verifies the final cycle's writes.
        let server = try await ServerProcess.start(binary: binary, arguments: arguments, logPath: workDirectory + "/server-final.log")
        var clients: [LearnStoreClient] = []
        for token in tokens { clients.append(try await server.waitUntilReady(token: token)) }
        try await verify(history, clients: clients, report: &report)
        if followFeed {
            var changes = 0
            var problems: [String] = []
            for (tenant, feed) in feeds.enumerated() {
                let (count, found) = try await verifyFeed(feed, history.filter { $0.tenant == tenant }, client: clients[tenant])
                changes += count
                problems += found.map { "tenant crash\(tenant): \($0)" }
            }
            report.feedChanges = changes
            report.feedMismatches = problems.count
            report.failures += problems.prefix(20)
        }
        for client in clients { await client.shutdown() }
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
    func verify(_ history: [Attempt], clients: [LearnStoreClient], report: inout Report) async throws {
        let lanes = 64
        let failures = try await withThrowingTaskGroup(of: (lost: [String], corrupt: [String]).self) { group in
            for lane in 0..<lanes {
                group.addTask {
                    var lost: [String] = []
                    var corrupt: [String] = []
                    for index in stride(from: lane, to: history.count, by: lanes) {
                        let attempt = history[index]
                        let found = try await clients[attempt.tenant].performance.learningRecords.page(
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

    /// The subscriber's record: every change it was given, in order, across restarts.
    final class FeedLog: Sendable {
        let changes = Mutex<[FeedChange]>([])

        var position: UInt64 { changes.withLock { $0.last?.sequence ?? 0 } }

        /// Follows from the last change received until the task is cancelled or the server dies.
        func follow(_ client: LearnStoreClient, until sequence: UInt64 = .max) async {
            do {
                for try await change in client.feed.subscribe(from: .after(position), credit: 256) {
                    changes.withLock { $0.append(change) }
                    if change.sequence >= sequence { return }
                }
            } catch {
                return  // the server was killed under it: the next cycle resumes after its last change
            }
        }
    }

    /// After the last restart: the subscriber, resumed once more, has been given every change of the
    /// tenant exactly once and in order (sequences 1, 2, 3, ... with no gap), every acknowledged write,
    /// and nothing the server no longer holds (an unacknowledged write it was given survived whole).
    func verifyFeed(_ feed: FeedLog, _ history: [Attempt], client: LearnStoreClient) async throws -> (changes: Int, problems: [String]) {
        let marker = try await client.performance.learningRecords.create(RecordBody(personID: UUID16.random(), title: "feed-end", score: 1))
        let catchUp = Task { await feed.follow(client, until: marker.sequence) }
        await catchUp.value
        let changes = feed.changes.withLock { $0 }
        var problems: [String] = []
        let sequences = changes.map(\.sequence)
        if sequences != Array(1...max(1, marker.sequence)) {
            let firstBad = zip(sequences, 1...).first { $0.0 != UInt64($0.1) }
            problems.append("the feed's sequences are not 1...\(marker.sequence) (\(sequences.count) changes; first out of place: \(String(describing: firstBad)))")
        }
        var given: [String: RecordID] = [:]
        for change in changes {
            for case .records(_, let records) in change.parts {
                for record in records {
                    guard let title = record.title else { continue }
                    if given.updateValue(record.id, forKey: title) != nil { problems.append("the feed gave \(title) twice") }
                }
            }
        }
        for attempt in history {
            let seen = attempt.titles.filter { given[$0] != nil }
            if let ids = attempt.acknowledged, Set(attempt.titles.compactMap { given[$0] }) != Set(ids) {
                problems.append("acknowledged write \(attempt.titles) is not in the feed as acknowledged")
            } else if attempt.acknowledged == nil, !seen.isEmpty {
                // Given to the subscriber without an answer to the writer: it must have survived whole.
                let found = try await client.performance.learningRecords.page(ListQuery(personID: attempt.person, includeDeleted: true, limit: 10)).records
                if seen.count != attempt.titles.count || Set(found.compactMap(\.title)) != Set(attempt.titles) {
                    problems.append("the feed gave \(seen) of an unacknowledged write the server does not hold whole")
                }
            }
        }
        return (changes.count, problems)
    }
}
