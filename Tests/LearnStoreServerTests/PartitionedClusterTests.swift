import Foundation
import LearnStoreClient
import LearnStoreModel
@testable import LearnStoreServer
import LearnStoreTestSupport
import LearnStoreTools
import NIOPosix
import Testing

/// Two groups of one partition map, each a one-node cluster of its own (no replica to wait for), with a real etcd: each node
/// serves only its group's tenants, sends the others to their group's primary, and a ClusterClient
/// given a seed of the wrong group ends up writing where the tenant lives.
@Suite struct PartitionedClusterTests {
    static let map = try! PartitionMap(partitions: 8, groups: ["ga", "gb"])

    /// A tenant id whose partition the map gives to `group`.
    static func tenant(in group: String) -> String {
        (0...).lazy.map { "tenant-\($0)" }.first { map.group(of: $0) == group }!
    }

    static func node(_ id: String, group: String, port: Int, etcd: [String], mapName: String) -> (inout ServerConfiguration) -> Void {
        { configuration in
            var replication = ReplicationConfiguration(nodeID: id, port: port, secret: ReplicationServerTests.secret)
            // A group of one node acknowledges alone.
            replication.replicaSet.minimumInSync = 0
            var control = ClusterConfiguration(endpoints: etcd)
            control.name = group
            control.partitionMapName = mapName
            // As in ClusterRoutingTests.node: a short lease can lapse under the suite's load.
            control.leaseSeconds = 10
            replication.cluster = control
            configuration.replication = replication
        }
    }

    @Test(.enabled(if: EtcdProcess.binary() != nil, "needs etcd (scripts/ensure-deps.sh installs it)"))
    func eachGroupServesItsTenantsAndSendsTheOthersToTheirGroup() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-partitions-")
        let etcd = try await EtcdProcess.startCluster(members: 1, workDirectory: scratch.path, binary: EtcdProcess.binary()!)
        defer { for member in etcd { member.process.signal(SIGKILL) } }
        let endpoints = etcd.map(\.clientURL)
        let store = try EtcdClient(endpoints: endpoints, group: MultiThreadedEventLoopGroup.singleton)
        let key = ClusterConfiguration.partitionMapKey("school-map")
        #expect(try await store.transaction(if: [.createRevision(key, 0)], put: [(key, Self.map.encoded, 0)]))

        // A node whose group the map does not name refuses to start: it would serve tenants that live elsewhere.
        let stray = TemporaryDirectory()
        let refused = await #expect(throws: LearnStoreError.self) {
            _ = try await TestServer.start(
                configure: Self.node("c0", group: "gc", port: try FailoverTester.freePort(), etcd: endpoints, mapName: "school-map"),
                persistence: .forTests(stray.path))
        }
        #expect(refused?.code == .validation && refused?.message.contains("has no group 'gc'") == true)

        let directories = [TemporaryDirectory(), TemporaryDirectory()]
        let a = try await TestServer.start(
            configure: Self.node("a0", group: "ga", port: try FailoverTester.freePort(), etcd: endpoints, mapName: "school-map"),
            persistence: .forTests(directories[0].path))
        let b = try await TestServer.start(
            configure: Self.node("b0", group: "gb", port: try FailoverTester.freePort(), etcd: endpoints, mapName: "school-map"),
            persistence: .forTests(directories[1].path))
        let (tenantA, tenantB) = (Self.tenant(in: "ga"), Self.tenant(in: "gb"))
        let addressB = "127.0.0.1:\(b.port)"

        // Group ga's node knows gb's primary once both have published themselves (it reads the other
        // groups with its own keys, every 5 s).
        let onA = try await a.client(tenant: tenantA)
        #expect(await eventually(within: 30) {
            let topology = try? await onA.topology()
            return topology?["groups"]?["gb"]?["address"] == .string(addressB)
        })
        let topology = try await onA.topology()
        #expect(topology["partitions"] == .number("8") && topology["group"] == .string("ga"))
        #expect(try PartitionMap.decode(try #require(topology["partition_map"])) == Self.map)
        let created = try await onA.performance.learningRecords.create(sampleBody(title: "in ga")).value

        // Tenant B's token on ga's node: AUTH answers MOVED, with B's partition and gb's primary.
        let moved = await #expect(throws: LearnStoreError.self) { _ = try await a.client(tenant: tenantB) }
        #expect(moved?.code == .moved && moved?.primaryAddress == addressB)
        #expect(moved?.message.contains("partition \(Self.map.partition(of: tenantB))") == true)

        // A ClusterClient with only ga's node as its seed writes tenant B's record on gb.
        let following = ClusterClient(seeds: ["127.0.0.1:\(a.port)"], configuration: ClientConfiguration(
            host: "127.0.0.1", port: a.port, token: try await a.token(tenant: tenantB), connections: 1))
        let written = try await following.run { (client) throws(LearnStoreError) in
            try await client.performance.learningRecords.create(sampleBody(title: "in gb"), idempotencyKey: "b-1").value
        }
        #expect(try await following.primaryAddress() == addressB)
        await following.shutdown()
        let onB = try await b.client(tenant: tenantB)
        #expect(try await onB.performance.learningRecords.get(written.id) == written)
        // The load tool, seeded with ga's node and tenant B's token, follows MOVED to gb and writes there.
        var bench = BenchConfiguration(credentials: .token(try await a.token(tenant: tenantB)))
        bench.port = a.port
        bench.seeds = ["127.0.0.1:\(a.port)"]
        bench.connections = 2
        bench.tenants = 1
        bench.mix = [(.create, 1)]
        bench.durationSeconds = 1
        bench.warmupSeconds = 0
        let report = try await BenchRunner(configuration: bench) { _ in }.run()
        #expect(report.total > 0 && report.errors.isEmpty)
        let recordsOnB = try await onB.performance.learningRecords.stats()["records"]?.int64Value ?? 0
        #expect(recordsOnB >= Int64(report.total))

        // Tenant A's record is on ga only: gb refuses tenant A altogether.
        let refusedOnB = await #expect(throws: LearnStoreError.self) { _ = try await b.client(tenant: tenantA) }
        #expect(refusedOnB?.code == .moved && refusedOnB?.primaryAddress == "127.0.0.1:\(a.port)")
        #expect(try await onA.performance.learningRecords.get(created.id) == created)

        // The map is rewritten in etcd behind the cluster's back (another assignment): the nodes
        // started by the old one stop serving rather than serve tenants that now belong elsewhere,
        // and serve again once it is restored.
        let swapped = try PartitionMap(partitions: 8, groups: ["gb", "ga"])
        #expect(try await store.transaction(if: [], put: [(key, swapped.encoded, 0)]))
        #expect(await eventually(within: 30) {
            do { _ = try await a.client(tenant: tenantA); return false } catch let error as LearnStoreError {
                return error.code == .notPrimary && error.message.contains("cannot follow version 1")
            } catch { return false }
        })
        #expect(try await store.transaction(if: [], put: [(key, Self.map.encoded, 0)]))
        #expect(await eventually(within: 30) {
            guard let served = try? await a.client(tenant: tenantA) else { return false }
            await served.shutdown()
            return true
        })

        for client in [onA, onB] { await client.shutdown() }
        try await a.stop()
        try await b.stop()
    }
}
