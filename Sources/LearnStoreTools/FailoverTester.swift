import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreServer
import LearnStoreTokens
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A primary and two replicas as real processes on loopback: clients write to several tenants through
/// the primary, the primary is killed with SIGKILL, the most up-to-date replica is promoted as the
/// operator's tool does it, every acknowledged write is checked on the new primary, and the old
/// primary is restarted as a replica and must end up holding exactly what the new primary holds.
public struct FailoverTester: Sendable {
    public struct Report: Sendable, CustomStringConvertible {
        public var cycles = 0
        public var acknowledgedWrites = 0
        public var lost = 0
        public var digestMismatches = 0
        public var unacknowledged = 0
        /// Milliseconds from the kill until a write succeeded on the promoted replica, per cycle.
        public var failoverMilliseconds: [Int] = []
        public var failures: [String] = []

        public var description: String {
            let sorted = failoverMilliseconds.sorted()
            let median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
            return "cycles=\(cycles) acked_writes=\(acknowledgedWrites) lost=\(lost) digest_mismatches=\(digestMismatches) "
                + "unacknowledged=\(unacknowledged) failover_ms_median=\(median) failover_ms_max=\(sorted.last ?? 0)"
        }
    }

    public var binary: String
    public var workDirectory: String
    public var cycles: Int
    public var writers = 6
    public var tenants = 3
    public var fsync = "always"
    /// With etcd's client URLs: the nodes run the control plane, and the test waits for the controller
    /// to promote a replica instead of promoting one itself.
    public var etcdEndpoints: [String]?
    /// With etcd: instead of killing the primary, stop it (SIGSTOP) for this long (past its lease), then
    /// resume it: it must fence itself and start again in place as a replica of the new primary, and
    /// whatever it acknowledged must be on the new primary.
    public var pauseMilliseconds: Int?

    public init(binary: String, workDirectory: String, cycles: Int) {
        self.binary = binary
        self.workDirectory = workDirectory
        self.cycles = cycles
    }

    /// What `run` writes in the work directory besides the node logs (`n<i>-<start>.log` and their `.port` files).
    public static let entriesWritten = ["jwt-secret", "cluster-secret", "n0", "n1", "n2"]

    struct Acknowledged: Sendable {
        var tenant: Int
        var id: RecordID
        var title: String
    }

    public func run(progress: @Sendable (Report) -> Void = { _ in }) async throws -> Report {
        try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
        let jwtSecret = (0..<4).map { _ in UUID().uuidString }.joined()
        let clusterSecret = (0..<2).map { _ in UUID().uuidString }.joined()
        try jwtSecret.write(toFile: workDirectory + "/jwt-secret", atomically: true, encoding: .utf8)
        try clusterSecret.write(toFile: workDirectory + "/cluster-secret", atomically: true, encoding: .utf8)
        let credential = try NodeCredential(secret: Array(clusterSecret.utf8))
        var tokens: [String] = []
        for tenant in 0..<tenants {
            tokens.append(try await TokenMinter(secret: jwtSecret).mint(
                tenantID: "failover\(tenant)", person: UUID16.random(), scopes: [.recordsRead, .recordsWrite],
                issuedAt: Timestamp(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)), lifetimeSeconds: 86_400))
        }
        let ports = try (0..<3).map { _ in try Self.freePort() }
        let addresses = ports.map { "127.0.0.1:\($0)" }
        let clusterName = "failover-\(ports[0])"
        var starts = [0, 0, 0]
        func start(_ index: Int, follow: Bool) async throws -> ServerProcess {
            var arguments = [
                "--data-dir", workDirectory + "/n\(index)", "--jwt-secret-file", workDirectory + "/jwt-secret", "--metrics-port", "0",
                "--fsync", fsync, "--snapshot-interval", "0", "--log-level", "warning", "--node-id", "n\(index)",
                "--replication-port", "\(ports[index])", "--cluster-secret-file", workDirectory + "/cluster-secret",
            ]
            if let etcd = etcdEndpoints {
                arguments += ["--etcd-endpoints", etcd.joined(separator: ","), "--cluster-name", clusterName]
            } else if follow {
                arguments += ["--replicate-from", addresses.enumerated().filter { $0.offset != index }.map(\.element).joined(separator: ",")]
            }
            starts[index] += 1
            return try await ServerProcess.start(binary: binary, arguments: arguments, logPath: workDirectory + "/n\(index)-\(starts[index]).log")
        }
        var nodes: [ServerProcess?] = [try await start(0, follow: false), try await start(1, follow: true), try await start(2, follow: true)]
        defer { for node in nodes { if let node { kill(node.pid, SIGKILL) } } }
        var primary = 0
        var report = Report()
        var acknowledged: [Acknowledged] = []
        for cycle in 0..<cycles {
            guard let server = nodes[primary] else { throw LearnStoreError(.internalError, "no primary process") }
            var clients: [LearnStoreClient] = []
            for token in tokens { clients.append(try await server.waitUntilReady(token: token)) }
            let shared = Burst()
            let stopAfter = Int.random(in: 50...300)
            let writerClients = clients
            let writerCount = writers
            let failure = pauseMilliseconds == nil ? SIGKILL : SIGSTOP
            let writing = Task { await withTaskGroup(of: Void.self) { group in
                for writer in 0..<writerCount {
                    group.addTask {
                        var n = 0
                        while !shared.stop.load(ordering: .relaxed) {
                            let tenant = (writer + n) % writerClients.count
                            let title = "c\(cycle)-w\(writer)-n\(n)"
                            n += 1
                            do {
                                let record = try await writerClients[tenant].performance.learningRecords.create(
                                    RecordBody(personID: UUID16.random(), title: title, score: 50)).value
                                let count = shared.written.withLock { list in
                                    list.append(Acknowledged(tenant: tenant, id: record.id, title: title))
                                    return list.count
                                }
                                if count == stopAfter, !shared.stop.exchange(true, ordering: .relaxed) { kill(server.pid, failure) }
                            } catch {
                                shared.unacknowledged.wrappingAdd(1, ordering: .relaxed)
                                if !shared.stop.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(5)) }
                            }
                        }
                    }
                }
            } }
            while !shared.stop.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(1)) }
            let killedAt = ContinuousClock.now
            let promotedAddress: String
            var promotedAfter: Duration?
            var rejoined: ServerProcess?
            if let pause = pauseMilliseconds, etcdEndpoints != nil {
                promotedAddress = try await waitForNewPrimary(addresses, killed: addresses[primary], credential: credential, nodes: nodes)
                promotedAfter = ContinuousClock.now - killedAt
                try await Task.sleep(until: killedAt + .milliseconds(pause))
                kill(server.pid, SIGCONT)
                // It fences itself, sees it was replaced, and starts again in place as a replica (its
                // writers' connections close then): whatever it acknowledged is checked below.
                rejoined = try await waitUntilRestartedAsReplica(server, replication: addresses[primary], credential: credential)
                await writing.value
            } else {
                await writing.value
                await server.stop(signal: SIGKILL)
                if etcdEndpoints != nil {
                    promotedAddress = try await waitForNewPrimary(addresses, killed: addresses[primary], credential: credential, nodes: nodes)
                } else {
                    promotedAddress = try await promote(addresses, credential: credential, nodes: nodes).address
                }
            }
            for client in clients { await client.shutdown() }
            nodes[primary] = rejoined
            acknowledged += shared.written.withLock { $0 }
            report.unacknowledged += shared.unacknowledged.load(ordering: .relaxed)

            guard let promoted = addresses.firstIndex(of: promotedAddress), let next = nodes[promoted] else {
                throw LearnStoreError(.internalError, "promoted \(promotedAddress), which is not a running node")
            }
            var newClients: [LearnStoreClient] = []
            for token in tokens { newClients.append(try await next.waitUntilReady(token: token)) }
            // The first write after the failover: it needs the other replica in sync with the new primary.
            _ = try await newClients[0].performance.learningRecords.create(RecordBody(personID: UUID16.random(), title: "after-failover-\(cycle)", score: 1))
            // Paused: the new primary took over while the old one was stopped; writes to it could resume then.
            report.failoverMilliseconds.append(Int((promotedAfter ?? (ContinuousClock.now - killedAt)) / .milliseconds(1)))
            for write in acknowledged {
                let found = try? await newClients[write.tenant].performance.learningRecords.get(write.id)
                if found?.title != write.title {
                    report.lost += 1
                    if report.failures.count < 20 { report.failures.append("cycle \(cycle): acknowledged \(write.title) (\(write.id)) missing on the new primary") }
                }
            }
            for client in newClients { await client.shutdown() }

            let old = primary
            primary = promoted
            if nodes[old] == nil { nodes[old] = try await start(old, follow: true) }
            try await waitUntilFollowing(addresses, primary: promoted, credential: credential)
            report.digestMismatches += try await compare(nodes.compactMap { $0 }, primary: next, tokens: tokens, cycle: cycle, report: &report)
            report.cycles = cycle + 1
            report.acknowledgedWrites = acknowledged.count
            progress(report)
        }
        return report
    }

    /// What the writers of one cycle share.
    final class Burst: Sendable {
        let written = Mutex<[Acknowledged]>([])
        let unacknowledged = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
    }

    /// The operator's promotion, retried for a while as an operator would (a loaded machine may answer
    /// slowly); a failure names the nodes that did not answer and ends with their logs' last lines.
    func promote(_ addresses: [String], credential: NodeCredential, nodes: [ServerProcess?], timeout: Double = 60) async throws -> ClusterPromotion.Outcome {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while true {
            do {
                return try await ClusterPromotion.promote(addresses, credential: credential, minimumInSync: 1, group: MultiThreadedEventLoopGroup.singleton)
            } catch {
                guard Date() < deadline else {
                    let logs = nodes.compactMap { $0 }.map { node in
                        let text = (try? String(contentsOfFile: node.logPath, encoding: .utf8)) ?? ""
                        return "\(node.logPath) (running: \(node.process.isRunning)):\n" + text.split(separator: "\n").suffix(15).joined(separator: "\n")
                    }
                    throw LearnStoreError(error.code, "\(error.message)\n" + logs.joined(separator: "\n"))
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// A paused old primary, resumed: waits until the same process has started again (a new client
    /// port in its port file) and reports itself a replica.
    func waitUntilRestartedAsReplica(_ server: ServerProcess, replication: String, credential: NodeCredential, timeout: Double = 60) async throws -> ServerProcess {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            if server.process.isRunning,
                let text = try? String(contentsOfFile: server.logPath + ".port", encoding: .utf8),
                let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), port != server.port,
                let status = await ClusterPromotion.statuses([replication], credential: credential, group: MultiThreadedEventLoopGroup.singleton,
                                                             timeout: .milliseconds(500)).first?.status,
                status["role"]?.stringValue == "replica"
            {
                return ServerProcess(process: server.process, port: port, logPath: server.logPath)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw LearnStoreError(.timeout, "the resumed old primary did not start again as a replica within \(Int(timeout)) s (running: \(server.process.isRunning))\n"
            + ((try? String(contentsOfFile: server.logPath, encoding: .utf8)) ?? "").split(separator: "\n").suffix(15).joined(separator: "\n"))
    }

    /// With the control plane: polls until a node other than the killed one is a primary.
    func waitForNewPrimary(_ addresses: [String], killed: String, credential: NodeCredential, nodes: [ServerProcess?], timeout: Double = 60) async throws -> String {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            let statuses = await ClusterPromotion.statuses(
                addresses.filter { $0 != killed }, credential: credential, group: MultiThreadedEventLoopGroup.singleton, timeout: .milliseconds(500))
            if let primary = statuses.first(where: { $0.status?["role"]?.stringValue == "primary" }) { return primary.address }
            try await Task.sleep(for: .milliseconds(10))
        }
        let logs = nodes.compactMap { $0 }.map { node in
            "\(node.logPath):\n" + ((try? String(contentsOfFile: node.logPath, encoding: .utf8)) ?? "").split(separator: "\n").suffix(15).joined(separator: "\n")
        }
        throw LearnStoreError(.timeout, "no replica was promoted within \(Int(timeout)) s\n" + logs.joined(separator: "\n"))
    }

    /// Polls until every other node reports applying everything the primary has made durable.
    func waitUntilFollowing(_ addresses: [String], primary: Int, credential: NodeCredential, timeout: Double = 120) async throws {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            let statuses = await ClusterPromotion.statuses(addresses, credential: credential, group: MultiThreadedEventLoopGroup.singleton)
            let target = statuses[primary].status?["durable_lsn"]?.int64Value ?? -1
            let caughtUp = statuses.enumerated().allSatisfy { index, node in
                index == primary || (node.status?["role"]?.stringValue == "replica" && (node.status?["applied_lsn"]?.int64Value ?? -2) >= target)
            }
            if target >= 0 && caughtUp { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw LearnStoreError(.timeout, "the replicas did not catch up with the new primary within \(Int(timeout)) s")
    }

    /// Lists every tenant on every node and counts the nodes whose records differ from the primary's.
    func compare(_ nodes: [ServerProcess], primary: ServerProcess, tokens: [String], cycle: Int, report: inout Report) async throws -> Int {
        var mismatches = 0
        for (tenant, token) in tokens.enumerated() {
            var contents: [[String]] = []
            for node in nodes {
                let client = try await node.waitUntilReady(token: token)
                var lines: [String] = []
                for try await record in client.performance.learningRecords.list(ListQuery(includeDeleted: true, limit: 1000)) {
                    lines.append("\(record.id) \(record.title ?? "") \(record.updatedAt.milliseconds)")
                }
                await client.shutdown()
                contents.append(lines.sorted())
            }
            let reference = contents[nodes.firstIndex { $0 === primary }!]
            for (index, other) in contents.enumerated() where other != reference {
                mismatches += 1
                if report.failures.count < 20 {
                    report.failures.append("cycle \(cycle): tenant \(tenant) on port \(nodes[index].port) holds \(other.count) records, the primary \(reference.count)")
                }
            }
        }
        return mismatches
    }

    /// A TCP port nothing listens on now, below the kernel's range for ephemeral ports: other servers
    /// that bind port 0 meanwhile (the test suite runs many) never take it before the node binds it.
    public static func freePort() throws -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 20_000..<32_000)
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard socket >= 0 else { throw LearnStoreError(.internalError, "socket: errno \(errno)") }
            defer { close(socket) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if bound == 0 { return port }
        }
        throw LearnStoreError(.internalError, "no free port found in 20000-31999")
    }
}
