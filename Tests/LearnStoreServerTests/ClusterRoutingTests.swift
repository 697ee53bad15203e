import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreServer
import LearnStoreTestSupport
import LearnStoreTools
import NIOPosix
import Testing

/// The control plane end to end with a real etcd and three in-process nodes: TOPOLOGY, MOVED, and a
/// `ClusterClient` that follows the primary across a failover.
@Suite struct ClusterRoutingTests {
    static func node(
        _ id: String, port: Int, etcd: [String], cluster: String, replicationFactor: Int? = nil, machine: String? = nil
    ) -> (inout ServerConfiguration) -> Void {
        { configuration in
            var replication = ReplicationConfiguration(nodeID: id, port: port, secret: ReplicationServerTests.secret)
            var control = ClusterConfiguration(endpoints: etcd)
            control.name = cluster
            control.replicationFactor = replicationFactor
            control.machine = machine
            control.replaceAfterMilliseconds = 1_000
            // These nodes stop gracefully (revoking their lease: the failover starts at once), so a
            // long lease costs no time; a short one can lapse while the suite's other tests starve
            // the machine, and each unplanned failover it causes costs the test a node restart.
            control.leaseSeconds = 10
            replication.cluster = control
            configuration.replication = replication
        }
    }

    /// A one-member etcd and `nodes` nodes n0 (the primary), n1, ..., each on a data directory of its own.
    struct Cluster {
        let scratch: TemporaryDirectory
        let etcd: [EtcdProcess]
        let directories: [TemporaryDirectory]
        var servers: [TestServer]
        var addresses: [String] { servers.map { "127.0.0.1:\($0.port)" } }

        /// `machines`: each node's `--machine`, by index.
        static func start(name: String, nodes: Int = 3, replicationFactor: Int? = nil, machines: [String]? = nil) async throws -> Cluster {
            let scratch = TemporaryDirectory(prefix: "learnstore-\(name)-")
            let etcd = try await EtcdProcess.startCluster(members: 1, workDirectory: scratch.path, binary: EtcdProcess.binary()!)
            let directories = (0..<nodes).map { _ in TemporaryDirectory() }
            var servers: [TestServer] = []
            do {
                for index in 0..<nodes {
                    let port = try FailoverTester.freePort()
                    servers.append(try await TestServer.start(
                        configure: ClusterRoutingTests.node(
                            "n\(index)", port: port, etcd: etcd.map(\.clientURL), cluster: name, replicationFactor: replicationFactor, machine: machines?[index]),
                        persistence: .forTests(directories[index].path), restartsInPlace: true))
                }
            } catch {
                for member in etcd { member.process.signal(SIGKILL) }
                throw error
            }
            return Cluster(scratch: scratch, etcd: etcd, directories: directories, servers: servers)
        }

        func killEtcd() { for member in etcd { member.process.signal(SIGKILL) } }
    }

    @Test(.enabled(if: EtcdProcess.binary() != nil, "needs etcd (scripts/ensure-deps.sh installs it)"))
    func clientsFindThePrimaryAndFollowItAcrossAFailover() async throws {
        let cluster = try await Cluster.start(name: "routing")
        defer { cluster.killEtcd() }
        let (servers, addresses) = (cluster.servers, cluster.addresses)

        // A replica knows the primary once the control plane has published it; a write there is MOVED.
        let replica = try await servers[1].client()
        #expect(await eventually(within: 30) {
            let topology = try? await replica.topology()
            return topology?["primary"] == .string("n0")
                && topology?["nodes"]?.arrayValue?.contains { $0["node_id"] == .string("n0") && $0["address"] == .string(addresses[0]) } == true
        })
        // The primary counts as in sync only the members etcd lists (all three, once the controller added them).
        let primaryPort = try await ReplicationServerTests.replicationAddress(servers[0])
        #expect(await eventually(within: 30) {
            (try? await ReplicationServerTests.status(primaryPort))?["members"] == .array(["n0", "n1", "n2"].map { .string($0) })
        })
        let moved = await #expect(throws: LearnStoreError.self) { _ = try await replica.performance.learningRecords.create(sampleBody()) }
        #expect(moved?.code == .moved)
        #expect(moved?.primaryAddress == addresses[0])
        await replica.shutdown()

        let token = try await servers[1].token()
        let following = ClusterClient(seeds: [addresses[1], addresses[2]], configuration: ClientConfiguration(token: token), attempts: 40)
        let first = try await following.run { (client) throws(LearnStoreError) in
            try await client.performance.learningRecords.create(sampleBody(title: "before"), idempotencyKey: "before").value
        }
        // The primary stops (its lease revoked): the controller promotes a replica; the client follows.
        // On a loaded machine its lease may have lapsed first and the controller replaced it already:
        // the same failover, which the client must follow too.
        do { try await servers[0].stop() } catch is NodeRestartRequested {}
        let second = try await following.run { (client) throws(LearnStoreError) in
            try await client.performance.learningRecords.create(sampleBody(title: "after"), idempotencyKey: "after").value
        }
        let both = try await following.run { (client) throws(LearnStoreError) in
            [try await client.performance.learningRecords.get(first.id), try await client.performance.learningRecords.get(second.id)]
        }
        #expect(both == [first, second])
        await following.shutdown()
        for server in servers.dropFirst() { try await server.stop() }
    }

    /// `learnstore bench --seeds`: the primary stops during the run; every connection is replaced by
    /// one to the promoted node, and the run goes on writing there.
    @Test(.enabled(if: EtcdProcess.binary() != nil, "needs etcd (scripts/ensure-deps.sh installs it)"))
    func theLoadToolFollowsAFailoverDuringItsRun() async throws {
        let cluster = try await Cluster.start(name: "bench")
        defer { cluster.killEtcd() }
        let (servers, addresses) = (cluster.servers, cluster.addresses)
        let replica = try await servers[1].client()
        #expect(await eventually(within: 30) {
            let topology = try? await replica.topology()
            return topology?["nodes"]?.arrayValue?.contains { $0["node_id"] == .string("n0") && $0["address"] == .string(addresses[0]) } == true
        })
        await replica.shutdown()

        var configuration = BenchConfiguration(credentials: .token(try await servers[1].token()))
        configuration.port = servers[0].port
        configuration.seeds = [addresses[1], addresses[2]]
        configuration.connections = 4
        configuration.pipeline = 2
        configuration.tenants = 1
        configuration.mix = [(.create, 1)]
        // Long enough for a failover on a loaded machine (about 0.4 s when idle; seconds under the suite).
        configuration.durationSeconds = 15
        configuration.warmupSeconds = 0
        let (lines, said) = AsyncStream.makeStream(of: String.self)
        let runner = BenchRunner(configuration: configuration) { said.yield($0) }
        let run = Task { try await runner.run() }
        for await line in lines where line.hasPrefix("running") { break }
        try await servers[0].stop()
        let report = try await run.value
        said.finish()

        #expect(report.reconnects >= configuration.connections)
        // Writes went on on the promoted node.
        #expect(report.successesAfterReconnect > 0)
        #expect(report.longestPauseTenths > 0 && report.longestPauseTenths < Int(report.seconds * 10))
        #expect(report.text.contains("connections replaced"))

        // The command line with the stopped node first among its seeds: it finds the promoted primary.
        try #require(FileManager.default.isExecutableFile(atPath: CommandLineRun.binary.path), "build the learnstore binary first")
        let work = URL(fileURLWithPath: cluster.scratch.path)
        let file = try RecordsCommandLineTests.input(1200, in: work)
        let seeds = ["--seeds", addresses.joined(separator: ","), "--token", try await servers[1].token()]
        let created = try await CommandLineRun.run(["records", "create", file] + seeds, in: work)
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.split(separator: "\n").count == 1200)
        let listed = try await CommandLineRun.run(["records", "list", "--all", "--limit", "1000"] + seeds, in: work)
        #expect(listed.status == 0, "\(listed.stderr)")
        // Every acknowledged create is there; unanswered ones may be too (their outcome is unknown), and
        // so may those still in flight when the run stopped.
        let acknowledged = report.total - report.errors.reduce(0) { $0 + $1.count }
        let stored = listed.stdout.split(separator: "\n").count - 1200
        #expect(stored >= acknowledged)
        #expect(stored <= acknowledged + report.unanswered + configuration.connections * configuration.pipeline)
        for server in servers.dropFirst() { try await server.stop() }
    }
}
