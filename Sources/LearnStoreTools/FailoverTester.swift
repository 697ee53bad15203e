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
/// primary is restarted as a replica and must end up holding exactly what the new primary holds. With
/// etcd, `faults` can also kill the controller or etcd's leader: writes must go on through those.
public struct FailoverTester: Sendable {
    public struct Report: Sendable, CustomStringConvertible {
        public var cycles = 0
        public var acknowledgedWrites = 0
        public var lost = 0
        public var digestMismatches = 0
        public var unacknowledged = 0
        /// The errors the unacknowledged writes got, by code.
        public var unacknowledgedErrors: [String: Int] = [:]
        /// Milliseconds from the kill until a write succeeded on the promoted replica, per cycle that
        /// killed (or paused) the primary.
        public var failoverMilliseconds: [Int] = []
        /// Cycles per fault injected (a controller that was the primary counts as `primary`).
        public var faults: [Fault: Int] = [:]
        /// Per cycle that killed the controller or the etcd leader: the longest time between two
        /// acknowledged writes from the fault until the writers stopped.
        public var stallMilliseconds: [Int] = []
        /// Cycles that killed the controller or the etcd leader and ended with another primary, or the
        /// same one in a new epoch.
        public var unplannedFailovers = 0
        /// Per cycle that killed a member replica with spares running: milliseconds from the kill until
        /// etcd's placement had a spare in its place.
        public var replacementMilliseconds: [Int] = []
        /// Per cycle that removed a member with `learnstore cluster remove-node`'s procedure: how long it took.
        public var removalMilliseconds: [Int] = []
        /// Per handover cycle: how long `learnstore cluster handover` took, request to the new placement.
        public var handoverMilliseconds: [Int] = []
        public var failures: [String] = []

        public var description: String {
            let sorted = failoverMilliseconds.sorted()
            let median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
            var text = "cycles=\(cycles) acked_writes=\(acknowledgedWrites) lost=\(lost) digest_mismatches=\(digestMismatches) "
                + "unacknowledged=\(unacknowledged)\(Self.codes(unacknowledgedErrors)) failover_ms_median=\(median) failover_ms_max=\(sorted.last ?? 0)"
            if faults.keys.contains(where: { $0 != .primary }) {
                let stalls = stallMilliseconds.sorted()
                text += " faults=" + Fault.allCases.map { "\($0.rawValue):\(faults[$0] ?? 0)" }.joined(separator: ",")
                text += " stall_ms_median=\(stalls.isEmpty ? 0 : stalls[stalls.count / 2]) stall_ms_max=\(stalls.last ?? 0)"
                text += " unplanned_failovers=\(unplannedFailovers)"
            }
            if !replacementMilliseconds.isEmpty {
                let replacements = replacementMilliseconds.sorted()
                text += " replacement_ms_median=\(replacements[replacements.count / 2]) replacement_ms_max=\(replacements.last ?? 0)"
            }
            if !handoverMilliseconds.isEmpty {
                let handovers = handoverMilliseconds.sorted()
                text += " handover_ms_median=\(handovers[handovers.count / 2]) handover_ms_max=\(handovers.last ?? 0)"
            }
            if !removalMilliseconds.isEmpty {
                let removals = removalMilliseconds.sorted()
                text += " removal_ms_median=\(removals[removals.count / 2]) removal_ms_max=\(removals.last ?? 0)"
            }
            return text
        }

        static func codes(_ counts: [String: Int]) -> String {
            counts.isEmpty ? "" : "(" + counts.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",") + ")"
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
    /// With etcd: the faults, one per cycle in turn. `controller` kills the node holding the
    /// controller key (the primary's cycle when that is the primary); `etcdLeader` kills etcd's
    /// leader (`etcdMembers`) for `etcdOutage` and starts it again. Writes must go on through both.
    public var faults: [Fault] = [.primary]
    public var etcdMembers: [EtcdProcess] = []
    public var etcdOutage: Duration = .seconds(4)
    /// With etcd: nodes beyond the three members, run with `--replication-factor 3` and
    /// `--replace-after 1`; the `member` fault kills a member replica for good until a spare has taken
    /// its place, then starts it again (it returns as a spare); the `remove` fault removes a member
    /// replica that runs on as the operator's command does, then readmits it (it stays a spare).
    public var spares = 0
    var nodeCount: Int { 3 + spares }

    public enum Fault: String, CaseIterable, Sendable, Hashable {
        case primary
        case controller
        case etcdLeader = "etcd-leader"
        case member
        case remove
        /// `learnstore cluster handover` to a member replica under writes, which follow it.
        case handover
    }

    public init(binary: String, workDirectory: String, cycles: Int) {
        self.binary = binary
        self.workDirectory = workDirectory
        self.cycles = cycles
    }

    /// What `run` writes in the work directory besides the node logs (`n<i>-<start>.log` and their `.port` files).
    public static let entriesWritten = ["jwt-secret", "cluster-secret"] + (0..<6).map { "n\($0)" }

    struct Acknowledged: Sendable {
        var tenant: Int
        var id: RecordID
        var title: String
        var at: ContinuousClock.Instant
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
        let ports = try (0..<nodeCount).map { _ in try Self.freePort() }
        let addresses = ports.map { "127.0.0.1:\($0)" }
        let clusterName = "failover-\(ports[0])"
        var starts = Array(repeating: 0, count: nodeCount)
        func start(_ index: Int, follow: Bool) async throws -> ServerProcess {
            var arguments = [
                "--data-dir", workDirectory + "/n\(index)", "--jwt-secret-file", workDirectory + "/jwt-secret", "--metrics-port", "0",
                "--fsync", fsync, "--snapshot-interval", "0", "--log-level", "warning", "--node-id", "n\(index)",
                "--replication-port", "\(ports[index])", "--cluster-secret-file", workDirectory + "/cluster-secret",
            ]
            if let etcd = etcdEndpoints {
                arguments += ["--etcd-endpoints", etcd.joined(separator: ","), "--cluster-name", clusterName]
                if spares > 0 { arguments += ["--replication-factor", "3", "--replace-after", "1"] }
            } else if follow {
                arguments += ["--replicate-from", addresses.enumerated().filter { $0.offset != index }.map(\.element).joined(separator: ",")]
            }
            starts[index] += 1
            return try await ServerProcess.start(binary: binary, arguments: arguments, logPath: workDirectory + "/n\(index)-\(starts[index]).log")
        }
        var nodes: [ServerProcess?] = [try await start(0, follow: false)]
        for index in 1..<nodeCount { nodes.append(try await start(index, follow: true)) }
        defer { for node in nodes { if let node { kill(node.pid, SIGKILL) } } }
        var primary = 0
        var report = Report()
        var acknowledged: [Acknowledged] = []
        var etcd = etcdMembers
        var restartedEtcd: [EtcdProcess] = []
        defer { for member in restartedEtcd { member.process.signal(SIGKILL) } }
        for cycle in 0..<cycles {
            guard let server = nodes[primary] else { throw LearnStoreError(.internalError, "no primary process") }
            var clients: [LearnStoreClient] = []
            for token in tokens { clients.append(try await server.waitUntilReady(token: token)) }
            let shared = Burst()
            let stopAfter = Int.random(in: 50...300)
            var fault = faults[cycle % faults.count]
            var controllerNode: Int?
            if fault == .controller {
                controllerNode = try await controller(clusterName: clusterName)
                if controllerNode == primary { fault = .primary }
            }
            if fault == .remove {
                // The removal refuses to leave two members unless a spare is registered to join: a
                // spare that has just (re)started registers at its first round.
                var cluster = ClusterConfiguration(endpoints: etcdEndpoints ?? [])
                cluster.name = clusterName
                try await waitForSpare(cluster)
            }
            report.faults[fault, default: 0] += 1
            if fault != .primary, pauseMilliseconds == nil, etcdEndpoints != nil {
                let epochBefore = await epoch(of: addresses[primary], credential: credential)
                // Writes go on through the fault; it strikes once `stopAfter` of them are acknowledged. Through
                // a handover they follow the primary (with idempotency keys, as a service would).
                var followers: [ClusterClient] = []
                if fault == .handover {
                    let seeds = nodes.compactMap { $0.map { "127.0.0.1:\($0.port)" } }
                    followers = tokens.map { ClusterClient(seeds: seeds, configuration: ClientConfiguration(token: $0), attempts: 40) }
                }
                let writing = startWriters(clients, following: followers, cycle: cycle, burst: shared) { count in
                    if count == stopAfter { shared.faultDue.store(true, ordering: .relaxed) }
                }
                while !shared.faultDue.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(1)) }
                let faultAt = ContinuousClock.now
                var handoverTarget: Int?
                if let victim = controllerNode {
                    await nodes[victim]?.stop(signal: SIGKILL)
                    nodes[victim] = nil
                    _ = try await controller(clusterName: clusterName, other: victim)
                    nodes[victim] = try await start(victim, follow: true)
                } else if fault == .member {
                    let victim = try await memberReplica(clusterName: clusterName, primary: primary)
                    await nodes[victim]?.stop(signal: SIGKILL)
                    nodes[victim] = nil
                    try await waitUntilReplaced(victim, clusterName: clusterName)
                    report.replacementMilliseconds.append(Int((ContinuousClock.now - faultAt) / .milliseconds(1)))
                    nodes[victim] = try await start(victim, follow: true)
                } else if fault == .handover {
                    handoverTarget = try await memberReplica(clusterName: clusterName, primary: primary)
                    var cluster = ClusterConfiguration(endpoints: etcdEndpoints ?? [])
                    cluster.name = clusterName
                    _ = try await ClusterHandover.request("n\(handoverTarget!)", configuration: cluster, group: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(30))
                    report.handoverMilliseconds.append(Int((ContinuousClock.now - faultAt) / .milliseconds(1)))
                    // The old primary starts again in place as a replica, on a new client port.
                    nodes[primary] = try await waitUntilRestartedAsReplica(server, replication: addresses[primary], credential: credential)
                } else if fault == .remove {
                    let victim = try await memberReplica(clusterName: clusterName, primary: primary)
                    var cluster = ClusterConfiguration(endpoints: etcdEndpoints ?? [])
                    cluster.name = clusterName
                    try await ClusterMembership.remove(
                        "n\(victim)", configuration: cluster, credential: credential, group: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(60),
                        progress: { _ in })
                    report.removalMilliseconds.append(Int((ContinuousClock.now - faultAt) / .milliseconds(1)))
                    guard try await ClusterMembership.readmit("n\(victim)", configuration: cluster, group: MultiThreadedEventLoopGroup.singleton) else {
                        throw LearnStoreError(.internalError, "n\(victim) was not listed as removed")
                    }
                } else {
                    let (index, restarted) = try await killAndRestartEtcdLeader(etcd)
                    etcd[index] = restarted
                    restartedEtcd.append(restarted)
                }
                // Writes must go on after it: as many again as before the fault.
                let resumeDeadline = ContinuousClock.now + .seconds(30)
                let target = shared.written.withLock { $0.count } + stopAfter
                while shared.written.withLock({ $0.count }) < target, ContinuousClock.now < resumeDeadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
                shared.stop.store(true, ordering: .relaxed)
                await writing.value
                for client in clients { await client.shutdown() }
                for follower in followers { await follower.shutdown() }
                let written = shared.written.withLock { $0 }
                if written.count < target, report.failures.count < 20 {
                    report.failures.append("cycle \(cycle): writes did not go on after \(fault.rawValue) was killed (\(written.count - stopAfter) of \(stopAfter) within 30 s)")
                }
                report.stallMilliseconds.append(Self.longestGap(in: written.map(\.at), from: faultAt))
                acknowledged += written
                shared.addUnacknowledged(to: &report)
                // A primary that fenced itself starts again in place as a replica, on a new client port.
                nodes = nodes.map { $0?.atCurrentPort() }
                let now = try await waitForNewPrimary(addresses, killed: "", credential: credential, nodes: nodes)
                guard let current = addresses.firstIndex(of: now), let currentServer = nodes[current] else {
                    throw LearnStoreError(.internalError, "the primary \(now) is not a running node")
                }
                // A fenced primary may be promoted again (it is the most up-to-date node): a new epoch all the same.
                let epochAfter = await epoch(of: now, credential: credential)
                if let handoverTarget {
                    if current != handoverTarget || epochAfter != epochBefore.map { $0 + 1 } { report.unplannedFailovers += 1 }
                } else if current != primary || epochAfter != epochBefore {
                    report.unplannedFailovers += 1
                }
                primary = current
                try await checkAcknowledged(acknowledged, on: currentServer, tokens: tokens, cycle: cycle, report: &report)
                try await waitUntilFollowing(addresses, primary: primary, credential: credential)
                report.digestMismatches += try await compare(nodes.compactMap { $0 }, primary: currentServer, tokens: tokens, cycle: cycle, report: &report)
                report.cycles = cycle + 1
                report.acknowledgedWrites = acknowledged.count
                progress(report)
                continue
            }
            let failure = pauseMilliseconds == nil ? SIGKILL : SIGSTOP
            let writing = startWriters(clients, cycle: cycle, burst: shared) { count in
                if count == stopAfter, !shared.stop.exchange(true, ordering: .relaxed) { kill(server.pid, failure) }
            }
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
            shared.addUnacknowledged(to: &report)

            guard let promoted = addresses.firstIndex(of: promotedAddress), let next = nodes[promoted] else {
                throw LearnStoreError(.internalError, "promoted \(promotedAddress), which is not a running node")
            }
            let firstWriter = try await next.waitUntilReady(token: tokens[0])
            // The first write after the failover: it needs the other replica in sync with the new primary.
            _ = try await firstWriter.performance.learningRecords.create(RecordBody(personID: UUID16.random(), title: "after-failover-\(cycle)", score: 1))
            await firstWriter.shutdown()
            // Paused: the new primary took over while the old one was stopped; writes to it could resume then.
            report.failoverMilliseconds.append(Int((promotedAfter ?? (ContinuousClock.now - killedAt)) / .milliseconds(1)))
            try await checkAcknowledged(acknowledged, on: next, tokens: tokens, cycle: cycle, report: &report)

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
        let stop = Atomic<Bool>(false)
        let faultDue = Atomic<Bool>(false)
        /// The writes that failed, by error code.
        let errors = Mutex<[String: Int]>([:])

        func addUnacknowledged(to report: inout Report) {
            let errors = errors.withLock { $0 }
            report.unacknowledged += errors.values.reduce(0, +)
            report.unacknowledgedErrors.merge(errors, uniquingKeysWith: +)
        }
    }

    /// `writers` tasks creating records in turn on the tenants of `clients` until `burst.stop`; each
    /// acknowledged write is noted, and `acknowledged` gets how many there are now.
    /// With `following` (a `ClusterClient` per tenant), writes go through those, each with its title as
    /// idempotency key, and follow the primary.
    func startWriters(
        _ clients: [LearnStoreClient], following: [ClusterClient] = [], cycle: Int, burst shared: Burst, acknowledged: @escaping @Sendable (Int) -> Void
    ) -> Task<Void, Never> {
        let writerCount = writers
        return Task { await withTaskGroup(of: Void.self) { group in
            for writer in 0..<writerCount {
                group.addTask {
                    var n = 0
                    while !shared.stop.load(ordering: .relaxed) {
                        let tenant = (writer + n) % clients.count
                        let title = "c\(cycle)-w\(writer)-n\(n)"
                        n += 1
                        do {
                            let body = RecordBody(personID: UUID16.random(), title: title, score: 50)
                            let record = following.isEmpty
                                ? try await clients[tenant].performance.learningRecords.create(body).value
                                : try await following[tenant].run { (client) throws(LearnStoreError) in
                                    try await client.performance.learningRecords.create(body, idempotencyKey: title).value
                                }
                            let count = shared.written.withLock { list in
                                list.append(Acknowledged(tenant: tenant, id: record.id, title: title, at: .now))
                                return list.count
                            }
                            acknowledged(count)
                        } catch {
                            let code = (error as? LearnStoreError)?.code.name ?? "\(type(of: error))"
                            shared.errors.withLock { $0[code, default: 0] += 1 }
                            if !shared.stop.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(5)) }
                        }
                    }
                }
            }
        } }
    }

    /// The node holding the controller key, other than `excluded` (polled until one does).
    func controller(clusterName: String, other excluded: Int? = nil, timeout: Duration = .seconds(30)) async throws -> Int {
        let client = try EtcdClient(endpoints: etcdEndpoints ?? [], group: MultiThreadedEventLoopGroup.singleton)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let value = try? await client.get("/learnstore/\(clusterName)/controller")?.value,
               let node = Int(String(decoding: value, as: UTF8.self).dropFirst()), node != excluded {
                return node
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw LearnStoreError(.timeout, "no node other than \(excluded.map { "n\($0)" } ?? "none") became the controller within \(timeout)")
    }

    /// The placement in etcd (polled until it reads).
    func placement(clusterName: String) async throws -> ClusterPlacement {
        let client = try EtcdClient(endpoints: etcdEndpoints ?? [], group: MultiThreadedEventLoopGroup.singleton)
        for _ in 0..<500 {
            if let value = try? await client.get("/learnstore/\(clusterName)/placement")?.value, let placement = try? ClusterPlacement.decode(value) {
                return placement
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw LearnStoreError(.timeout, "etcd's placement did not read within 10 s")
    }

    /// A member of the placement other than the primary, at random.
    func memberReplica(clusterName: String, primary: Int) async throws -> Int {
        let members = try await placement(clusterName: clusterName).members.keys.compactMap { Int($0.dropFirst()) }.filter { $0 != primary }
        guard let victim = members.randomElement() else { throw LearnStoreError(.internalError, "the placement lists no member besides the primary") }
        return victim
    }

    /// Polls until a node that is not a member is registered in etcd (a spare that can join).
    func waitForSpare(_ cluster: ClusterConfiguration, timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastSeen = "etcd not read"
        while ContinuousClock.now < deadline {
            do throws(LearnStoreError) {
                let view = try await ClusterView.read(cluster, group: MultiThreadedEventLoopGroup.singleton)
                if let placement = view.placement, view.nodes.contains(where: { placement.members[$0.id] == nil && !placement.removed.contains($0.id) }) {
                    return
                }
                lastSeen = "registered \(view.nodes.map(\.id).sorted()), members \(view.placement.map { $0.members.keys.sorted() } ?? []), "
                    + "removed \(view.placement.map { $0.removed.sorted() } ?? []), leaving \(view.placement.map { $0.leaving.sorted() } ?? [])"
            } catch {
                lastSeen = "etcd: \(error.message)"
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        // What etcd showed last, and where the nodes' logs are, to tell a slow start from a spare made a member.
        throw LearnStoreError(.timeout, "no spare registered in etcd within \(timeout) (last seen: \(lastSeen); logs in \(workDirectory))")
    }

    /// Polls until etcd's placement no longer lists node `victim` and holds three members again.
    func waitUntilReplaced(_ victim: Int, clusterName: String, timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let placement = try await placement(clusterName: clusterName)
            if placement.members["n\(victim)"] == nil && placement.members.count == 3 && placement.replacing.isEmpty { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw LearnStoreError(.timeout, "no spare took the place of n\(victim) within \(timeout)")
    }

    /// Kills etcd's leader with SIGKILL, lets the writes go on without it for `etcdOutage` (past a
    /// node's lease), and starts it again; returns its index and the new process.
    func killAndRestartEtcdLeader(_ members: [EtcdProcess]) async throws -> (index: Int, restarted: EtcdProcess) {
        guard members.count >= 3 else { throw LearnStoreError(.validation, "killing etcd's leader needs 3 members or more (a quorum must remain)") }
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            for (index, member) in members.enumerated() {
                guard await member.isLeader() else { continue }
                await member.stop(signal: SIGKILL)
                try await Task.sleep(for: etcdOutage)
                return (index, try await member.restarted())
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw LearnStoreError(.timeout, "no etcd member reported itself the leader within 10 s")
    }

    /// The epoch a node reports (nil when it does not answer).
    func epoch(of address: String, credential: NodeCredential) async -> Int64? {
        await ClusterPromotion.statuses([address], credential: credential, group: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(2))
            .first?.status?["epoch"]?.int64Value
    }

    /// Reads every acknowledged write back from `server`; one missing or different is lost.
    func checkAcknowledged(_ acknowledged: [Acknowledged], on server: ServerProcess, tokens: [String], cycle: Int, report: inout Report) async throws {
        var clients: [LearnStoreClient] = []
        for token in tokens { clients.append(try await server.waitUntilReady(token: token)) }
        for write in acknowledged {
            let found = try? await clients[write.tenant].performance.learningRecords.get(write.id)
            if found?.title != write.title {
                report.lost += 1
                if report.failures.count < 20 { report.failures.append("cycle \(cycle): acknowledged \(write.title) (\(write.id)) missing on the primary") }
            }
        }
        for client in clients { await client.shutdown() }
    }

    /// The longest time between two of `times` at or after `start` (from `start` to the first).
    static func longestGap(in times: [ContinuousClock.Instant], from start: ContinuousClock.Instant) -> Int {
        var previous = start
        var longest = Duration.zero
        for time in times.sorted() where time >= start {
            longest = max(longest, time - previous)
            previous = time
        }
        return Int(longest / .milliseconds(1))
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

    /// Ports this process has handed out. A port is never handed out twice: a node killed by a test
    /// leaves its port free until it is restarted there, and another test running meanwhile must not
    /// take it (nor may two tests draw the same port before either binds it).
    private static let handedOut = Mutex<Set<Int>>([])

    /// A TCP port nothing listens on now, below the kernel's range for ephemeral ports: other servers
    /// that bind port 0 meanwhile (the test suite runs many) never take it before the node binds it.
    public static func freePort() throws -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 20_000..<32_000)
            guard handedOut.withLock({ $0.insert(port).inserted }) else { continue }
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
