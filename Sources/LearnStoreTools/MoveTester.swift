import CanvasOutcomes
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

/// Moves partitions back and forth between two groups of real node processes while writers write
/// to every tenant through `ClusterClient`, optionally killing a group's primary with SIGKILL while a
/// move copies, and checks at the end that every acknowledged write is in the group that holds its
/// tenant (docs/CLUSTER.md, "Moving a partition").
public struct MoveTester: Sendable {
    public enum Fault: String, CaseIterable, Sendable, Hashable {
        /// Only the move.
        case none
        /// SIGKILL the primary of the group the partition leaves during the copy, then start it again.
        case source
        /// SIGKILL the primary of the group the partition goes to during the copy, then start it again.
        case target
        /// As `source` and `target`, but once etcd's map shows the move fenced (the partition's writes
        /// stopped), so the next attempt finds it fenced.
        case sourceFenced = "source-fenced"
        case targetFenced = "target-fenced"

        var killsSource: Bool { self == .source || self == .sourceFenced }
        var afterFence: Bool { self == .sourceFenced || self == .targetFenced }
    }

    public struct Report: Sendable, CustomStringConvertible {
        public var cycles = 0
        public var acknowledgedWrites = 0
        public var lost = 0
        public var unacknowledged = 0
        public var unacknowledgedErrors: [String: Int] = [:]
        /// Milliseconds from a move's start until the map named the new group, per cycle.
        public var moveMilliseconds: [Int] = []
        /// Per cycle: the longest time between two acknowledged writes of the moving partition's
        /// tenants, from the move's start until it completed.
        public var pauseMilliseconds: [Int] = []
        public var faults: [Fault: Int] = [:]
        public var failures: [String] = []
        /// With the balancer: each group's total by its measure, as the groups last published them (-1:
        /// not all measured yet), and the milliseconds from turning it on to the end of its last move.
        public var groupTotals: [String: Int]?
        public var lastMoveEndedMilliseconds: Int?

        public var description: String {
            func median(_ values: [Int]) -> Int { values.isEmpty ? 0 : values.sorted()[values.count / 2] }
            return "cycles=\(cycles) acked_writes=\(acknowledgedWrites) lost=\(lost) unacknowledged=\(unacknowledged)"
                + FailoverTester.Report.codes(unacknowledgedErrors)
                + " move_ms_median=\(median(moveMilliseconds)) move_ms_max=\(moveMilliseconds.max() ?? 0)"
                + " write_pause_ms_median=\(median(pauseMilliseconds)) write_pause_ms_max=\(pauseMilliseconds.max() ?? 0)"
                + " faults=" + Fault.allCases.map { "\($0.rawValue):\(faults[$0] ?? 0)" }.joined(separator: ",")
                + (groupTotals.map { " group_totals=" + $0.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value < 0 ? "unmeasured" : String($0.value))" }.joined(separator: ",") } ?? "")
                + (lastMoveEndedMilliseconds.map { " last_move_ended_ms=\($0)" } ?? "")
        }
    }

    public let binary: String
    public let workDirectory: String
    public let etcdEndpoints: [String]
    public var cycles = 6
    public var nodesPerGroup = 3
    public var tenants = 8
    public var partitions = 8
    public var fsync = "always"
    public var faults: [Fault] = [.none]
    /// Records each tenant holds before the writers start (in batches of 1000): the size a move copies.
    public var preload = 0
    /// Canvas outcome results each tenant holds before the writers start; with any, every fourth
    /// write of a writer re-assesses one of them, so moves copy outcome rows that change meanwhile.
    public var outcomeResults = 0
    /// Instead of moving partitions itself: group ga starts with every partition, and the balancer,
    /// turned on with this measure (tolerance 20 %, cool-down 3 s), moves them for `balanceSeconds`.
    public var balancer: PartitionFigures.Measure?
    public var balanceSeconds = 60

    public init(binary: String, workDirectory: String, etcdEndpoints: [String]) {
        self.binary = binary
        self.workDirectory = workDirectory
        self.etcdEndpoints = etcdEndpoints
    }

    static let groups = ["ga", "gb"]
    public static let entriesWritten = ["jwt-secret", "cluster-secret"] + groups.flatMap { group in (0..<5).map { "\(group)-n\($0)" } }

    struct Acknowledged: Sendable {
        var tenant: Int
        var id: RecordID
        var title: String
        var at: ContinuousClock.Instant
    }

    final class Writes: Sendable {
        let stop = Atomic<Bool>(false)
        let acknowledged = Mutex<[Acknowledged]>([])
        let errors = Mutex<[String: Int]>([:])
    }

    public func run(progress: @Sendable (Report) -> Void = { _ in }) async throws -> Report {
        try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
        let jwtSecret = (0..<4).map { _ in UUID().uuidString }.joined()
        let clusterSecret = (0..<2).map { _ in UUID().uuidString }.joined()
        try jwtSecret.write(toFile: workDirectory + "/jwt-secret", atomically: true, encoding: .utf8)
        try clusterSecret.write(toFile: workDirectory + "/cluster-secret", atomically: true, encoding: .utf8)
        let etcd = try EtcdClient(endpoints: etcdEndpoints, group: MultiThreadedEventLoopGroup.singleton)
        let mapName = "moves-\(UInt32.random(in: 0...UInt32.max))"
        let mapKey = ClusterConfiguration.partitionMapKey(mapName)
        let initial = balancer == nil
            ? try PartitionMap(partitions: partitions, groups: Self.groups)
            : try PartitionMap(partitions: partitions, groups: Self.groups, assignment: Array(repeating: 0, count: partitions), overrides: [:])
        guard try await etcd.transaction(if: [.createRevision(mapKey, 0)], put: [(mapKey, initial.encoded, 0)]) else {
            throw LearnStoreError(.conflict, "etcd already holds the partition map \(mapName)")
        }
        let tenantIDs = (0..<tenants).map { "mover\($0)" }
        var tokens: [String] = []
        for tenant in tenantIDs {
            tokens.append(try await TokenMinter(secret: jwtSecret).mint(
                tenantID: tenant, person: UUID16.random(), scopes: [.recordsRead, .recordsWrite, .outcomesRead, .outcomesWrite],
                issuedAt: Timestamp(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)), lifetimeSeconds: 86_400))
        }

        // Nodes: group g's node i is process g * nodesPerGroup + i.
        let ports = try (0..<(Self.groups.count * nodesPerGroup)).map { _ in try FailoverTester.freePort() }
        var starts = Array(repeating: 0, count: ports.count)
        func name(_ index: Int) -> String { "\(Self.groups[index / nodesPerGroup])-n\(index % nodesPerGroup)" }
        func start(_ index: Int) async throws -> ServerProcess {
            let arguments = [
                "--data-dir", workDirectory + "/" + name(index), "--jwt-secret-file", workDirectory + "/jwt-secret", "--metrics-port", "0",
                "--fsync", fsync, "--snapshot-interval", "0", "--log-level", "notice", "--node-id", name(index),
                "--replication-port", "\(ports[index])", "--cluster-secret-file", workDirectory + "/cluster-secret",
                "--etcd-endpoints", etcdEndpoints.joined(separator: ","), "--cluster-name", Self.groups[index / nodesPerGroup],
                "--partition-map", mapName,
            ] + (nodesPerGroup == 1 ? ["--min-in-sync-replicas", "0"] : [])
            starts[index] += 1
            return try await ServerProcess.start(binary: binary, arguments: arguments, logPath: workDirectory + "/\(name(index))-\(starts[index]).log")
        }
        var nodes: [ServerProcess?] = []
        for index in ports.indices { nodes.append(try await start(index)) }
        defer { for node in nodes { if let node { kill(node.pid, SIGKILL) } } }
        let seeds = nodes.compactMap { $0.map { "127.0.0.1:\($0.port)" } }

        var clients: [ClusterClient] = []
        for (tenant, token) in tokens.enumerated() {
            let client = ClusterClient(seeds: seeds, configuration: ClientConfiguration(host: "127.0.0.1", port: 0, token: token, connections: 1), attempts: 40)
            clients.append(client)
            // The first write waits for the tenant's group to have a primary.
            _ = try await Self.retrying(for: .seconds(120)) {
                try await client.run { (c) throws(LearnStoreError) in
                    try await c.performance.learningRecords.create(RecordBody(personID: UUID16.random(), title: "warm-\(tenant)", score: 1), idempotencyKey: "warm-\(tenant)")
                }
            }
        }
        for (tenant, client) in clients.enumerated() {
            for batch in stride(from: 0, to: preload, by: 1000) {
                let bodies = (batch..<min(preload, batch + 1000)).map { RecordBody(personID: UUID16.random(), title: "pre-\(tenant)-\($0)", score: 10) }
                _ = try await client.run { (c) throws(LearnStoreError) in
                    try await c.performance.learningRecords.createBatch(bodies, idempotencyKey: "pre-\(tenant)-\(batch)")
                }
            }
        }
        for client in clients {
            for batch in stride(from: 0, to: outcomeResults, by: 1000) {
                let events = (batch..<min(outcomeResults, batch + 1000)).map { Self.resultEvent($0, version: 0) }
                _ = try await client.run { (c) throws(LearnStoreError) in try await c.outcomes.ingest(events) }
            }
        }
        let writes = Writes()
        let writing = Self.startWriters(clients, writes: writes, outcomeResults: outcomeResults)

        /// During a move's copy: SIGKILL the primary of the group it leaves or goes to, and start it again.
        func inject(_ fault: Fault, _ partition: Int, _ source: String, _ target: String) async throws {
            guard fault != .none else { return }
            if fault.afterFence {
                // Until the map shows the move fenced; a move that completes first is not hit.
                while true {
                    if let stored = try? await etcd.get(mapKey), let current = try? PartitionMap.decode(stored.value) {
                        guard let move = current.moves[partition] else { return }
                        if move.fenced { break }
                    }
                    try await Task.sleep(for: .milliseconds(2))
                }
            } else {
                try await Task.sleep(for: .milliseconds(Int.random(in: 50...400)))
            }
            let group = fault.killsSource ? source : target
            let placementValue = try await Self.retrying(for: .seconds(10)) { try await etcd.get("/learnstore/\(group)/placement")?.value }
            let placement = try ClusterPlacement.decode(placementValue ?? [])
            if let victim = ports.indices.first(where: { name($0) == placement.primary && Self.groups[$0 / nodesPerGroup] == group }) {
                await nodes[victim]?.stop(signal: SIGKILL)
                nodes[victim] = try await start(victim)
            }
        }

        var report = Report()
        var map = initial
        let moving = Array(Set(tenantIDs.map { map.partition(of: $0) })).sorted()
        if let balancer {
            map = try await balance(by: balancer, etcd: etcd, mapName: mapName, tenantIDs: tenantIDs, writes: writes, report: &report, inject: inject,
                                    progress: progress)
        }
        for cycle in 0..<(balancer == nil ? cycles : 0) {
            let partition = moving[cycle % moving.count]
            let fault = faults[cycle % faults.count]
            let source = map.holder(of: partition)
            let target = Self.groups.first { $0 != source }!
            let stored = try await Self.retrying(for: .seconds(30)) { try await etcd.get(mapKey) }
            guard let stored else { throw LearnStoreError(.notFound, "the partition map is gone") }
            let started = try PartitionMap.decode(stored.value).startingMove(of: partition, to: target)
            guard try await etcd.transaction(if: [.modRevision(mapKey, stored.modRevision)], put: [(mapKey, started.encoded, 0)]) else {
                throw LearnStoreError(.conflict, "the partition map changed under the tester")
            }
            let moveStart = ContinuousClock.now
            report.faults[fault, default: 0] += 1
            try await inject(fault, partition, source, target)
            // Done when etcd's map names the target.
            let deadline = ContinuousClock.now + .seconds(120)
            while true {
                if let current = try? await etcd.get(mapKey), let decoded = try? PartitionMap.decode(current.value),
                    decoded.moves[partition] == nil, decoded.holder(of: partition) == target
                {
                    map = decoded
                    break
                }
                guard ContinuousClock.now < deadline else {
                    throw LearnStoreError(.timeout, "cycle \(cycle): the move of partition \(partition) to \(target) did not complete within 120 s (see the logs in \(workDirectory))")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            let moveEnd = ContinuousClock.now
            report.moveMilliseconds.append(Int((moveEnd - moveStart) / .milliseconds(1)))
            // Writes of the moved tenants must go on in the new group: wait for one of each.
            let movedTenants = Set(tenantIDs.indices.filter { map.partition(of: tenantIDs[$0]) == partition })
            let resumeDeadline = ContinuousClock.now + .seconds(60)
            while !movedTenants.allSatisfy({ tenant in writes.acknowledged.withLock { $0.contains { $0.tenant == tenant && $0.at > moveEnd } } }) {
                guard ContinuousClock.now < resumeDeadline else { throw LearnStoreError(.timeout, "cycle \(cycle): writes of the moved tenants did not resume within 60 s") }
                try await Task.sleep(for: .milliseconds(10))
            }
            let times = writes.acknowledged.withLock { $0.filter { movedTenants.contains($0.tenant) && $0.at >= moveStart }.map(\.at) }
            report.pauseMilliseconds.append(FailoverTester.longestGap(in: times.sorted(), from: moveStart))
            report.cycles += 1
            report.acknowledgedWrites = writes.acknowledged.withLock { $0.count }
            progress(report)
        }
        let checked = await writes.stopAndCheck(writing, clients: clients) { write in
            "acknowledged \(write.title) (\(write.id)) of \(tenantIDs[write.tenant]) missing in group \(map.group(of: tenantIDs[write.tenant]))"
        }
        report.acknowledgedWrites = checked.acknowledged
        report.unacknowledgedErrors = checked.errors
        report.unacknowledged = checked.errors.values.reduce(0, +)
        report.lost = checked.lost
        report.failures += checked.failures
        for client in clients { await client.shutdown() }
        return report
    }

    /// Turns the balancer on and follows the moves it starts for `balanceSeconds` (and any under way
    /// then to its end), each a cycle of the report, injecting `faults` in turn into them; returns the
    /// map at the end.
    func balance(
        by measure: PartitionFigures.Measure, etcd: EtcdClient, mapName: String, tenantIDs: [String], writes: Writes, report: inout Report,
        inject: (Fault, Int, String, String) async throws -> Void, progress: @Sendable (Report) -> Void
    ) async throws -> PartitionMap {
        let mapKey = ClusterConfiguration.partitionMapKey(mapName)
        let policy = try BalancerPolicy(measure: measure, tolerancePercent: 20, cooldownSeconds: 3, minimumMean: measure == .load ? 1 : 100)
        try await etcd.put(ClusterConfiguration.balancerKey(mapName), policy.encoded)
        let turnedOn = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(balanceSeconds)
        var under: (partition: Int, id: UInt64, started: ContinuousClock.Instant)?
        guard let initial = try await etcd.get(mapKey) else { throw LearnStoreError(.notFound, "the partition map is gone") }
        var map = try PartitionMap.decode(initial.value)
        while ContinuousClock.now < deadline || under != nil {
            try await Task.sleep(for: .milliseconds(20))
            guard let stored = try? await etcd.get(mapKey), let current = try? PartitionMap.decode(stored.value) else { continue }
            if under == nil, let (partition, move) = current.moves.first {
                under = (partition, move.id, .now)
                let fault = faults[report.moveMilliseconds.count % faults.count]
                report.faults[fault, default: 0] += 1
                try await inject(fault, partition, current.holder(of: partition), current.groups[move.to])
            }
            if let moving = under, current.moves[moving.partition]?.id != moving.id {
                let end = ContinuousClock.now
                guard current.holder(of: moving.partition) != map.holder(of: moving.partition) else {
                    throw LearnStoreError(.conflict, "the balancer's move \(moving.id) of partition \(moving.partition) was called off")
                }
                report.moveMilliseconds.append(Int((end - moving.started) / .milliseconds(1)))
                report.lastMoveEndedMilliseconds = Int((end - turnedOn) / .milliseconds(1))
                let movedTenants = Set(tenantIDs.indices.filter { current.partition(of: tenantIDs[$0]) == moving.partition })
                let resumeDeadline = ContinuousClock.now + .seconds(60)
                while !movedTenants.allSatisfy({ tenant in writes.acknowledged.withLock { $0.contains { $0.tenant == tenant && $0.at > end } } }) {
                    guard ContinuousClock.now < resumeDeadline else { throw LearnStoreError(.timeout, "writes of the moved tenants did not resume within 60 s") }
                    try await Task.sleep(for: .milliseconds(10))
                }
                let times = writes.acknowledged.withLock { $0.filter { movedTenants.contains($0.tenant) && $0.at >= moving.started }.map(\.at) }
                report.pauseMilliseconds.append(FailoverTester.longestGap(in: times.sorted(), from: moving.started))
                report.cycles += 1
                report.acknowledgedWrites = writes.acknowledged.withLock { $0.count }
                progress(report)
                under = nil
            }
            map = current
        }
        var totals: [String: Int] = [:]
        for group in Self.groups {
            guard let stored = try await etcd.get(ClusterConfiguration.partitionFiguresKey(ofGroup: group)) else { continue }
            let weights = try PartitionFigures.decode(stored.value).weights(by: measure)
            let held = (0..<map.partitions).filter { map.holder(of: $0) == group }
            // A group whose primary has not measured a partition's load for a minute yet has no total.
            totals[group] = held.allSatisfy { weights[$0] != nil } ? held.map { weights[$0]! }.reduce(0, +) : -1
        }
        report.groupTotals = totals
        return map
    }

    /// One writer per tenant, each write with its own idempotency key (a write retried after a
    /// failover or a move is applied once).
    /// Result `index` of a tenant's course, in its `version`-th assessment (each newer).
    static func resultEvent(_ index: Int, version: Int) -> [UInt8] {
        let at = Timestamp(milliseconds: 1_700_000_000_000 + Int64(version) * 1000)
        let result = OutcomeResult(
            id: String(1_000_000 + index), learningOutcomeID: String(10 + index % 20), userUUID: "student-\(index / 20)",
            resultContextType: "Course", resultContextID: "1", score: Double((index + version) % 5), possible: 5, workflowState: "active",
            createdAt: at, updatedAt: at, assessedAt: at, metadata: EventMetadata(eventTime: at))
        return Array(OutcomeEvent(name: .learningOutcomeResultUpdated, entity: .result(result)).json.serialized.utf8)
    }

    static func startWriters(_ clients: [ClusterClient], writes: Writes, outcomeResults: Int = 0) -> Task<Void, Never> {
        Task {
            await withTaskGroup(of: Void.self) { group in
                for (tenant, client) in clients.enumerated() {
                    group.addTask {
                        var n = 0
                        while !writes.stop.load(ordering: .relaxed) {
                            if outcomeResults > 0 && n % 4 == 3 {
                                n += 1
                                let event = resultEvent(Int.random(in: 0..<outcomeResults), version: n)
                                _ = try? await client.run { (c) throws(LearnStoreError) in try await c.outcomes.ingest([event]) }
                                continue
                            }
                            let title = "t\(tenant)-n\(n)"
                            // The same body on every retry: the key makes a retry of an applied write its answer.
                            let body = RecordBody(personID: UUID16.random(), title: title, score: 50)
                            n += 1
                            do {
                                let record = try await client.run { (c) throws(LearnStoreError) in
                                    try await c.performance.learningRecords.create(body, idempotencyKey: title).value
                                }
                                writes.acknowledged.withLock { $0.append(Acknowledged(tenant: tenant, id: record.id, title: title, at: .now)) }
                            } catch {
                                let code = (error as? LearnStoreError)?.code.name ?? "\(type(of: error))"
                                writes.errors.withLock { $0[code, default: 0] += 1 }
                                if !writes.stop.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(20)) }
                            }
                        }
                    }
                }
            }
        }
    }

    static func retrying<T: Sendable>(for limit: Duration, _ body: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + limit
        while true {
            do { return try await body() } catch {
                guard ContinuousClock.now < deadline else { throw error }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}

extension MoveTester.Writes {
    struct Checked {
        var acknowledged = 0
        var errors: [String: Int] = [:]
        var lost = 0
        /// The first 20 writes lost, each as `describe` names it.
        var failures: [String] = []
    }

    /// Stops the writers and waits for them, then reads every acknowledged write back through its
    /// tenant's client: one missing, or with another title, is lost.
    func stopAndCheck(_ writing: Task<Void, Never>, clients: [ClusterClient], describe: (MoveTester.Acknowledged) -> String) async -> Checked {
        stop.store(true, ordering: .relaxed)
        await writing.value
        let written = acknowledged.withLock { $0 }
        var checked = Checked(acknowledged: written.count, errors: errors.withLock { $0 })
        for write in written {
            let found = try? await clients[write.tenant].run { (c) throws(LearnStoreError) in try await c.performance.learningRecords.get(write.id) }
            if found?.title != write.title {
                checked.lost += 1
                if checked.failures.count < 20 { checked.failures.append(describe(write)) }
            }
        }
        return checked
    }
}
