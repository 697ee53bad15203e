import Foundation
import LearnStoreClient
import LearnStoreModel
@testable import LearnStoreServer
import LearnStoreTestSupport
import LearnStoreTools
import NIOPosix
import Synchronization
import Testing

/// `learnstore cluster handover` end to end: a real etcd and three in-process nodes.
@Suite struct ClusterHandoverTests {
    /// A writer goes on through a `ClusterClient` while the primary is handed to n1 (once the writer has
    /// 20 of its 200 writes acknowledged: under the whole suite a write may take a second): every write it had
    /// acknowledged is on n1, none was answered `OUTCOME_UNKNOWN`, and the old primary starts again as a
    /// replica. A handover to the primary itself or to a node that is no member is refused up front.
    @Test(.enabled(if: EtcdProcess.binary() != nil, "needs etcd (scripts/ensure-deps.sh installs it)"))
    func thePrimaryIsHandedOverWithoutLosingOrDoubtingAWrite() async throws {
        let cluster = try await ClusterRoutingTests.Cluster.start(name: "handover")
        defer { cluster.killEtcd() }
        let (servers, addresses) = (cluster.servers, cluster.addresses)
        var configuration = ClusterConfiguration(endpoints: cluster.etcd.map(\.clientURL))
        configuration.name = "handover"
        let primaryPort = try await ReplicationServerTests.replicationAddress(servers[0])
        #expect(await eventually(within: 30) {
            (try? await ReplicationServerTests.status(primaryPort))?["in_sync"] == .array([.string("n1"), .string("n2")])
        })
        for (target, message) in [("n0", "already the primary"), ("n7", "not a member")] {
            let refused = await #expect(throws: LearnStoreError.self) {
                _ = try await ClusterHandover.request(target, configuration: configuration, group: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(5))
            }
            #expect(refused?.code == .validation && refused?.message.contains(message) == true, "\(String(describing: refused))")
        }

        let token = try await servers[1].token()
        let writer = ClusterClient(seeds: addresses, configuration: ClientConfiguration(token: token), attempts: 40)
        let acknowledged = Mutex<[RecordID]>([])
        let doubted = Mutex<[String]>([])
        let writing = Task {
            for index in 0..<200 {
                do {
                    let record = try await writer.run { (client) throws(LearnStoreError) in
                        try await client.performance.learningRecords.create(sampleBody(title: "w\(index)"), idempotencyKey: "w\(index)").value
                    }
                    acknowledged.withLock { $0.append(record.id) }
                } catch {
                    doubted.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(await eventually(within: 180) { acknowledged.withLock { $0.count } >= 20 })
        let placement = try await ClusterHandover.request("n1", configuration: configuration, group: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(30))
        #expect(placement.primary == "n1" && placement.epoch >= 2)
        await writing.value
        #expect(doubted.withLock { $0 }.isEmpty, "\(doubted.withLock { $0 })")
        let ids = acknowledged.withLock { $0 }
        #expect(ids.count == 200)
        let reader = try await servers[1].client()
        for id in ids { _ = try await reader.performance.learningRecords.get(id) }
        await reader.shutdown()
        await writer.shutdown()
        // The old primary starts again in place as a replica of n1.
        let oldPrimary = try await ReplicationServerTests.replicationAddress(servers[0])
        #expect(await eventually(within: 30) { (try? await ReplicationServerTests.status(oldPrimary))?["role"] == .string("replica") })
        let view = try await ClusterView.read(configuration, group: MultiThreadedEventLoopGroup.singleton)
        #expect(view.placement?.primary == "n1")
        #expect(try await EtcdClient(endpoints: configuration.endpoints, group: MultiThreadedEventLoopGroup.singleton).get(configuration.handoverKey) == nil,
                "the request is removed once carried out")
        for server in servers {
            do { try await server.stop() } catch is NodeRestartRequested {}
        }
    }

    /// Two groups whose primaries start on one machine: the controller of the group with the greater
    /// name hands its primary to the member on a machine that runs none, by itself.
    @Test(.enabled(if: EtcdProcess.binary() != nil, "needs etcd (scripts/ensure-deps.sh installs it)"))
    func aGroupMovesItsPrimaryOffAMachineThatRunsAnother() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-spread-")
        let etcd = try await EtcdProcess.startCluster(members: 1, workDirectory: scratch.path, binary: EtcdProcess.binary()!)
        defer { for member in etcd { member.process.signal(SIGKILL) } }
        let endpoints = etcd.map(\.clientURL)
        let store = try EtcdClient(endpoints: endpoints, group: MultiThreadedEventLoopGroup.singleton)
        let map = try PartitionMap(partitions: 8, groups: ["ga", "gb"])
        let key = ClusterConfiguration.partitionMapKey("spread")
        #expect(try await store.transaction(if: [.createRevision(key, 0)], put: [(key, map.encoded, 0)]))
        func node(_ id: String, group: String, machine: String, alone: Bool) -> (inout ServerConfiguration) -> Void {
            { configuration in
                PartitionedClusterTests.node(id, group: group, port: (try? FailoverTester.freePort()) ?? 0, etcd: endpoints, mapName: "spread")(&configuration)
                configuration.replication?.replicaSet.minimumInSync = alone ? 0 : 1
                configuration.replication?.cluster?.machine = machine
            }
        }
        let directories = (0..<4).map { _ in TemporaryDirectory() }
        var servers = [try await TestServer.start(configure: node("a0", group: "ga", machine: "m1", alone: true), persistence: .forTests(directories[0].path))]
        for (index, machine) in ["m1", "m2", "m3"].enumerated() {
            servers.append(try await TestServer.start(
                configure: node("b\(index)", group: "gb", machine: machine, alone: false), persistence: .forTests(directories[index + 1].path),
                restartsInPlace: true))
        }
        var gb = ClusterConfiguration(endpoints: endpoints)
        gb.name = "gb"
        #expect(await eventually(within: 60) {
            (try? await ClusterView.read(gb, group: MultiThreadedEventLoopGroup.singleton))?.placement?.primary == "b1"
        }, "gb's primary leaves m1, which runs ga's, for m2")
        let view = try await ClusterView.read(gb, group: MultiThreadedEventLoopGroup.singleton)
        #expect(view.placement?.epoch == 2, "one handover, no failover")
        for server in servers {
            do { try await server.stop() } catch is NodeRestartRequested {}
        }
    }
}
