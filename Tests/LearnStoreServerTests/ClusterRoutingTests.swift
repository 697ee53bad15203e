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
    static func node(_ id: String, port: Int, etcd: [String], cluster: String) -> (inout ServerConfiguration) -> Void {
        { configuration in
            var replication = ReplicationConfiguration(nodeID: id, port: port, secret: ReplicationServerTests.secret)
            var control = ClusterConfiguration(endpoints: etcd)
            control.name = cluster
            // The suite loads both cores: a 3 s lease can lapse between two renewals and fence a healthy
            // primary. The failover here follows the stopped primary's revoked lease, not its expiry.
            control.leaseSeconds = 10
            replication.cluster = control
            configuration.replication = replication
        }
    }

    @Test(.enabled(if: EtcdProcess.binary() != nil, "needs etcd (scripts/ensure-deps.sh installs it)"))
    func clientsFindThePrimaryAndFollowItAcrossAFailover() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-routing-")
        let etcd = try await EtcdProcess.startCluster(members: 1, workDirectory: scratch.path, binary: EtcdProcess.binary()!)
        defer { for member in etcd { member.process.signal(SIGKILL) } }
        let endpoints = etcd.map(\.clientURL)
        let directories = (0..<3).map { _ in TemporaryDirectory() }
        var servers: [TestServer] = []
        for index in 0..<3 {
            let port = try FailoverTester.freePort()
            servers.append(try await TestServer.start(
                configure: Self.node("n\(index)", port: port, etcd: endpoints, cluster: "routing"), persistence: .forTests(directories[index].path)))
        }
        let addresses = servers.map { "127.0.0.1:\($0.port)" }

        // A replica knows the primary once the control plane has published it; a write there is MOVED.
        let replica = try await servers[1].client()
        #expect(await eventually(within: 30) {
            let topology = try? await replica.topology()
            return topology?["primary"] == .string("n0")
                && topology?["nodes"]?.arrayValue?.contains { $0["node_id"] == .string("n0") && $0["address"] == .string(addresses[0]) } == true
        })
        let moved = await #expect(throws: LearnStoreError.self) { _ = try await replica.performance.learningRecords.create(sampleBody()) }
        #expect(moved?.code == .moved)
        #expect(moved?.primaryAddress == addresses[0])
        await replica.shutdown()

        let token = try await servers[1].token()
        let cluster = ClusterClient(seeds: [addresses[1], addresses[2]], configuration: ClientConfiguration(token: token), attempts: 40)
        let first = try await cluster.run { (client) throws(LearnStoreError) in
            try await client.performance.learningRecords.create(sampleBody(title: "before"), idempotencyKey: "before").value
        }
        // The primary stops (its lease revoked): the controller promotes a replica; the client follows.
        try await servers[0].stop()
        let second = try await cluster.run { (client) throws(LearnStoreError) in
            try await client.performance.learningRecords.create(sampleBody(title: "after"), idempotencyKey: "after").value
        }
        let both = try await cluster.run { (client) throws(LearnStoreError) in
            [try await client.performance.learningRecords.get(first.id), try await client.performance.learningRecords.get(second.id)]
        }
        #expect(both == [first, second])
        await cluster.shutdown()
        for server in servers.dropFirst() { try await server.stop() }
    }
}
