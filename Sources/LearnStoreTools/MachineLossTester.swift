import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreProtocol
import LearnStoreServer
import LearnStoreTokens
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// Three groups of a partitioned cluster on three machines, each machine one real process whose
/// members are one node of every group (`learnstore serve --member`), so each machine runs one
/// group's primary and replicas of the others. Writers write to every tenant through `ClusterClient`;
/// each cycle kills one machine's process with SIGKILL (a primary and two replicas lost at once),
/// measures how long until every tenant's writes are acknowledged again, starts the process again and
/// waits until each of its members is a primary or an in-sync replica once more. At the end every
/// acknowledged write is read back from its tenant's group (docs/CLUSTER.md, "One process per machine").
public struct MachineLossTester: Sendable {
    public struct Report: Sendable, CustomStringConvertible {
        public var cycles = 0
        public var acknowledgedWrites = 0
        public var lost = 0
        public var unacknowledged = 0
        public var unacknowledgedErrors: [String: Int] = [:]
        /// Per cycle: from the kill until every tenant had a write acknowledged again (the longest
        /// pause of any tenant).
        public var resumeMilliseconds: [Int] = []
        /// Per cycle: from the process's new start until all its members followed (or led) again.
        public var rejoinMilliseconds: [Int] = []
        public var failures: [String] = []

        public var description: String {
            func median(_ values: [Int]) -> Int { values.isEmpty ? 0 : values.sorted()[values.count / 2] }
            return "cycles=\(cycles) acked_writes=\(acknowledgedWrites) lost=\(lost) unacknowledged=\(unacknowledged)"
                + FailoverTester.Report.codes(unacknowledgedErrors)
                + " resume_ms_median=\(median(resumeMilliseconds)) resume_ms_max=\(resumeMilliseconds.max() ?? 0)"
                + " rejoin_ms_median=\(median(rejoinMilliseconds)) rejoin_ms_max=\(rejoinMilliseconds.max() ?? 0)"
        }
    }

    public let binary: String
    public let workDirectory: String
    public let etcdEndpoints: [String]
    public var cycles = 3
    public var tenants = 9
    public var fsync = "always"

    public init(binary: String, workDirectory: String, etcdEndpoints: [String]) {
        self.binary = binary
        self.workDirectory = workDirectory
        self.etcdEndpoints = etcdEndpoints
    }

    static let machines = 3
    /// Node `i` of group `j` runs on machine (i + j) mod 3: machine m holds node 0 of group m.
    static func node(of group: Int, on machine: Int) -> Int { (machine - group + machines) % machines }
    public static let entriesWritten = ["jwt-secret", "cluster-secret"]
        + (0..<machines).flatMap { j in (0..<machines).flatMap { i in ["g\(j)n\(i)", "g\(j)n\(i).conf", "g\(j)n\(i).port"] } }

    struct Node {
        var group: String
        var id: String
        var clientPort: Int
        var replicationPort: Int
    }

    public func run(progress: @Sendable (Report) -> Void = { _ in }) async throws -> Report {
        try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
        let jwtSecret = (0..<4).map { _ in UUID().uuidString }.joined()
        let clusterSecret = (0..<2).map { _ in UUID().uuidString }.joined()
        try jwtSecret.write(toFile: workDirectory + "/jwt-secret", atomically: true, encoding: .utf8)
        try clusterSecret.write(toFile: workDirectory + "/cluster-secret", atomically: true, encoding: .utf8)
        let run = "machines\(UInt32.random(in: 0...UInt32.max))"
        let groups = (0..<Self.machines).map { "\(run)g\($0)" }
        let etcd = try EtcdClient(endpoints: etcdEndpoints, group: MultiThreadedEventLoopGroup.singleton)
        let mapKey = ClusterConfiguration.partitionMapKey(run)
        let map = try PartitionMap(partitions: 12, groups: groups)
        guard try await etcd.transaction(if: [.createRevision(mapKey, 0)], put: [(mapKey, map.encoded, 0)]) else {
            throw LearnStoreError(.conflict, "etcd already holds the partition map \(run)")
        }

        // Machine m's members, each with a config file of its own.
        var nodes: [[Node]] = Array(repeating: [], count: Self.machines)
        for machine in 0..<Self.machines {
            for group in 0..<Self.machines {
                let id = "g\(group)n\(Self.node(of: group, on: machine))"
                let node = Node(group: groups[group], id: id, clientPort: try FailoverTester.freePort(), replicationPort: try FailoverTester.freePort())
                let config = """
                    data-dir = \(workDirectory)/\(id)
                    port = \(node.clientPort)
                    port-file = \(workDirectory)/\(id).port
                    metrics-port = 0
                    node-id = \(id)
                    replication-port = \(node.replicationPort)
                    cluster-name = \(node.group)
                    """
                try config.write(toFile: "\(workDirectory)/\(id).conf", atomically: true, encoding: .utf8)
                nodes[machine].append(node)
            }
        }
        var starts = Array(repeating: 0, count: Self.machines)
        func start(_ machine: Int) throws -> ChildProcess {
            for node in nodes[machine] { try? FileManager.default.removeItem(atPath: "\(workDirectory)/\(node.id).port") }
            starts[machine] += 1
            let log = "\(workDirectory)/m\(machine)-\(starts[machine]).log"
            return try ChildProcess.spawn(
                binary,
                ["serve"] + nodes[machine].flatMap { ["--member", "\(workDirectory)/\($0.id).conf"] } + [
                    "--jwt-secret-file", workDirectory + "/jwt-secret", "--cluster-secret-file", workDirectory + "/cluster-secret",
                    "--etcd-endpoints", etcdEndpoints.joined(separator: ","), "--partition-map", run, "--machine", "m\(machine)",
                    "--fsync", fsync, "--snapshot-interval", "0", "--log-level", "notice",
                ],
                standardOutput: log, standardError: log)
        }
        func listening(_ machine: Int) -> Bool {
            nodes[machine].allSatisfy { FileManager.default.fileExists(atPath: "\(workDirectory)/\($0.id).port") }
        }
        var processes: [ChildProcess] = []
        defer { for process in processes { process.signal(SIGKILL) } }
        for machine in 0..<Self.machines {
            processes.append(try start(machine))
            // The first machine's members start their groups: each is its group's first primary, and
            // the controller hands two of them over to the other machines.
            if machine == 0 { try await Self.waitUntil("machine m0 listens", within: .seconds(120)) { listening(0) } }
        }
        let seeds = nodes.flatMap { $0.map { "127.0.0.1:\($0.clientPort)" } }

        var clients: [ClusterClient] = []
        for tenant in 0..<tenants {
            let token = try await TokenMinter(secret: jwtSecret).mint(
                tenantID: "district\(tenant)", person: UUID16.random(), scopes: [.recordsRead, .recordsWrite],
                issuedAt: Timestamp(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)), lifetimeSeconds: 86_400)
            let client = ClusterClient(seeds: seeds, configuration: ClientConfiguration(host: "127.0.0.1", port: 0, token: token, connections: 1), attempts: 40)
            clients.append(client)
            _ = try await MoveTester.retrying(for: .seconds(120)) {
                try await client.run { (c) throws(LearnStoreError) in
                    try await c.performance.learningRecords.create(RecordBody(personID: UUID16.random(), title: "warm-\(tenant)"), idempotencyKey: "warm-\(tenant)")
                }
            }
        }
        let writes = MoveTester.Writes()
        let writing = MoveTester.startWriters(clients, writes: writes)
        func allWroteSince(_ instant: ContinuousClock.Instant) -> Bool {
            let tenantsSince = writes.acknowledged.withLock { Set($0.filter { $0.at > instant }.map(\.tenant)) }
            return tenantsSince.count == tenants
        }
        let credential = try NodeCredential(secret: Array(clusterSecret.utf8))
        func following(_ node: Node) async -> Bool {
            guard let answer = try? await NodeClient.request(
                "127.0.0.1:\(node.replicationPort)", credential: credential, nodeID: "operator", opcode: ReplicationOpcode.status,
                group: MultiThreadedEventLoopGroup.singleton),
                let text = try? answer.reply?.readPayload({ (r) throws(DecodeError) in try r.readString() }),
                let status = try? JSONValue.parse(text)
            else { return false }
            return status["role"] == .string("primary") || (status["role"] == .string("replica") && status["in_sync"] == .bool(true))
        }

        var report = Report()
        for cycle in 0..<cycles {
            let machine = cycle % Self.machines
            try await Self.waitUntil("writes to every tenant before cycle \(cycle)", within: .seconds(60)) { allWroteSince(.now - .milliseconds(500)) }
            let killed = ContinuousClock.now
            processes[machine].signal(SIGKILL)
            _ = await processes[machine].exited()
            try await Self.waitUntil("every tenant's writes resuming after machine m\(machine) was lost", within: .seconds(60)) { allWroteSince(killed) }
            let times = writes.acknowledged.withLock { $0.filter { $0.at >= killed } }
            let longest = (0..<tenants).map { tenant in FailoverTester.longestGap(in: times.filter { $0.tenant == tenant }.map(\.at), from: killed) }.max() ?? 0
            report.resumeMilliseconds.append(longest)
            let restarted = ContinuousClock.now
            processes[machine] = try start(machine)
            let members = nodes[machine]
            try await Self.waitUntil("machine m\(machine)'s members following again", within: .seconds(120)) { () async -> Bool in
                for member in members where !(await following(member)) { return false }
                return true
            }
            report.rejoinMilliseconds.append(Int((ContinuousClock.now - restarted) / .milliseconds(1)))
            report.cycles += 1
            report.acknowledgedWrites = writes.acknowledged.withLock { $0.count }
            progress(report)
        }
        let checked = await writes.stopAndCheck(writing, clients: clients) { write in
            "acknowledged \(write.title) (\(write.id)) of district\(write.tenant) missing"
        }
        report.acknowledgedWrites = checked.acknowledged
        report.unacknowledgedErrors = checked.errors
        report.unacknowledged = checked.errors.values.reduce(0, +)
        report.lost = checked.lost
        report.failures = checked.failures
        for client in clients { await client.shutdown() }
        for process in processes {
            process.signal(SIGTERM)
            _ = await process.exited(within: .seconds(60))
        }
        return report
    }

    /// Polls `condition` until it holds, or fails naming `what` after `limit`.
    static func waitUntil(_ what: String, within limit: Duration, _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while !(await condition()) {
            guard ContinuousClock.now < deadline else { throw LearnStoreError(.timeout, "\(what): not within \(limit)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
