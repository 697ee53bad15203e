import Foundation
import LearnStoreClient
import LearnStoreModel
@testable import LearnStoreServer
import LearnStoreTestSupport
import LearnStoreTools
import NIOPosix
import Testing

/// With a balancer policy in etcd, the cluster moves a partition by itself: two one-node groups and
/// a real etcd, group ga holding two partitions with records and gb none with any; the primary of ga
/// (the map's first group) starts the move that narrows the spread, records it in the policy, gb
/// copies the partition, and its tenant's records are served there.
@Suite struct BalancerTests {
    @Test(.enabled(if: EtcdProcess.binary() != nil, "needs etcd (scripts/ensure-deps.sh installs it)"))
    func theBalancerMovesAPartitionByItselfAndRecordsTheMove() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-balancer-")
        let etcd = try await EtcdProcess.startCluster(members: 1, workDirectory: scratch.path, binary: EtcdProcess.binary()!)
        defer { for member in etcd { member.process.signal(SIGKILL) } }
        let endpoints = etcd.map(\.clientURL)
        let store = try EtcdClient(endpoints: endpoints, group: MultiThreadedEventLoopGroup.singleton)
        let map = PartitionedClusterTests.map
        let mapKey = ClusterConfiguration.partitionMapKey("balanced")
        #expect(try await store.transaction(if: [.createRevision(mapKey, 0)], put: [(mapKey, map.encoded, 0)]))

        let directories = [TemporaryDirectory(), TemporaryDirectory()]
        let gaNode = PartitionedClusterTests.node("a0", group: "ga", port: try FailoverTester.freePort(), etcd: endpoints, mapName: "balanced")
        let a = try await TestServer.start(configure: { configuration in
            gaNode(&configuration)
            configuration.metricsPort = 0
        }, persistence: .forTests(directories[0].path))
        let b = try await TestServer.start(
            configure: PartitionedClusterTests.node("b0", group: "gb", port: try FailoverTester.freePort(), etcd: endpoints, mapName: "balanced"),
            persistence: .forTests(directories[1].path))

        // Two tenants of ga in different partitions: 2,000 records and 1,000.
        let inGA = (0...).lazy.map { "tenant-\($0)" }.filter { map.group(of: $0) == "ga" }
        let big = inGA.first(where: { _ in true })!
        let small = inGA.first(where: { map.partition(of: $0) != map.partition(of: big) })!
        var counts: [String: Int] = [:]
        for (tenant, batches) in [(big, 2), (small, 1)] {
            let client = try await a.client(tenant: tenant)
            for batch in 0..<batches {
                _ = try await client.performance.learningRecords.createBatch((0..<1000).map { sampleBody(title: "\(tenant) \(batch)-\($0)") })
            }
            counts[tenant] = batches * 1000
            await client.shutdown()
        }

        let policyKey = ClusterConfiguration.balancerKey("balanced")
        let policy = try BalancerPolicy(measure: .records, tolerancePercent: 20, cooldownSeconds: 3600, minimumMean: 100)
        try await store.put(policyKey, policy.encoded)

        // ga (3,000) against gb (0): one of the two partitions goes to gb, and the move is recorded.
        let moved = await eventually(within: 90) {
            guard let current = try? await store.get(mapKey), let map = try? PartitionMap.decode(current.value), map.moves.isEmpty else { return false }
            return [big, small].contains { map.group(of: $0) == "gb" }
        }
        #expect(moved)
        let final = try PartitionMap.decode(try #require(try await store.get(mapKey)).value)
        let recorded = try BalancerPolicy.decode(try #require(await store.get(policyKey)).value)
        let tenant = try #require([big, small].first { final.group(of: $0) == "gb" })
        #expect(recorded.lastMove?.partition == map.partition(of: tenant) && recorded.lastMove?.to == "gb")
        #expect([big, small].filter { final.group(of: $0) == "gb" }.count == 1, "one move, then the cool-down")
        let onB = try await b.client(tenant: tenant)
        #expect(try await onB.performance.learningRecords.stats()["records"]?.int64Value == Int64(counts[tenant]!))
        await onB.shutdown()
        let scrape = try await Scrape.get(port: try #require(a.metricsPort))
        #expect(scrape["learnstore_balancer_moves_started_total"] == 1)

        try await a.stop()
        try await b.stop()
    }
}
