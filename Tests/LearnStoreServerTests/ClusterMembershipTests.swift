import Foundation
import LearnStoreClient
import LearnStoreModel
@testable import LearnStoreServer
import LearnStoreTestSupport
import LearnStoreTools
import NIOPosix
import Testing

/// `learnstore cluster remove-node` and `readmit-node` against a real etcd and four in-process nodes.
@Suite struct ClusterMembershipTests {
    @Test(.enabled(if: EtcdProcess.binary() != nil, "needs etcd (scripts/ensure-deps.sh installs it)"))
    func aStoppedNodeIsRemovedAndTheOthersStillFailOver() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CommandLineRun.binary.path), "build the learnstore binary first")
        let cluster = try await ClusterRoutingTests.Cluster.start(name: "membership", nodes: 4)
        defer { cluster.killEtcd() }
        let servers = cluster.servers
        let work = URL(fileURLWithPath: cluster.scratch.path)
        let secret = work.appendingPathComponent("secret")
        try Data(ReplicationServerTests.secret).write(to: secret)
        let etcd = ["--etcd-endpoints", cluster.etcd.map(\.clientURL).joined(separator: ","), "--cluster-name", "membership"]
        let control = etcd + ["--cluster-secret-file", secret.path]
        var configuration = ClusterConfiguration(endpoints: cluster.etcd.map(\.clientURL))
        configuration.name = "membership"
        func placement() async -> ClusterPlacement? { try? await ClusterView.read(configuration, group: MultiThreadedEventLoopGroup.singleton).placement }

        let primary = try await ReplicationServerTests.replicationAddress(servers[0])
        let everyone = ["n0", "n1", "n2", "n3"].map { JSONValue.string($0) }
        #expect(await eventually(within: 30) { (try? await ReplicationServerTests.status(primary))?["members"] == .array(everyone) })

        // n3's machine is gone for good.
        try await servers[3].stop()
        let refused = try await CommandLineRun.run(["cluster", "remove-node", "--node", "n0"] + control, in: work)
        #expect(refused.status != 0 && refused.stderr.contains("is the primary"), "\(refused.stderr)")
        let removed = try await CommandLineRun.run(["cluster", "remove-node", "--node", "n3", "--timeout", "60"] + control, in: work)
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(removed.stdout == #"{"removed":"n3"}"# + "\n")
        let after = await placement()
        #expect(after.map { Set($0.members.keys) } == ["n0", "n1", "n2"] && after?.removed == ["n3"] && after?.leaving == [])
        #expect(await eventually(within: 30) {
            (try? await ReplicationServerTests.status(primary))?["members"] == .array(everyone.dropLast())
        })
        let tooFew = try await CommandLineRun.run(["cluster", "remove-node", "--node", "n2"] + control, in: work)
        #expect(tooFew.status != 0 && tooFew.stderr.contains("would leave 2 members"), "\(tooFew.stderr)")

        // Three members fail over as before: all but one answer the promotion.
        let writer = ClusterClient(
            seeds: cluster.addresses.dropFirst().dropLast().map { $0 }, configuration: ClientConfiguration(token: try await servers[1].token()), attempts: 40)
        let first = try await writer.run { (client) throws(LearnStoreError) in
            try await client.performance.learningRecords.create(sampleBody(title: "before"), idempotencyKey: "before").value
        }
        do { try await servers[0].stop() } catch is NodeRestartRequested {}
        let second = try await writer.run { (client) throws(LearnStoreError) in
            try await client.performance.learningRecords.create(sampleBody(title: "after"), idempotencyKey: "after").value
        }
        let both = try await writer.run { (client) throws(LearnStoreError) in
            [try await client.performance.learningRecords.get(first.id), try await client.performance.learningRecords.get(second.id)]
        }
        #expect(both == [first, second])
        await writer.shutdown()
        let promoted = await placement()
        #expect(promoted.map { $0.epoch > 1 && $0.primary != "n0" && $0.removed == ["n3"] } == true)

        let readmitted = try await CommandLineRun.run(["cluster", "readmit-node", "--node", "n3"] + etcd, in: work)
        #expect(readmitted.status == 0 && readmitted.stdout == #"{"readmitted":"n3"}"# + "\n", "\(readmitted.stderr)")
        #expect(await placement()?.removed == [])
        let again = try await CommandLineRun.run(["cluster", "readmit-node", "--node", "n3"] + etcd, in: work)
        #expect(again.status != 0 && again.stderr.contains("neither a removed node"), "\(again.stderr)")
        for server in servers[1...2] { try await server.stop() }
    }

    /// A replication factor of 3 on four nodes: n3 waits as a spare and takes the place of a member
    /// whose key has been gone for a second.
    @Test(.enabled(if: EtcdProcess.binary() != nil, "needs etcd (scripts/ensure-deps.sh installs it)"))
    func aSpareTakesThePlaceOfAMemberThatIsGone() async throws {
        let cluster = try await ClusterRoutingTests.Cluster.start(name: "spares", nodes: 4, replicationFactor: 3)
        defer { cluster.killEtcd() }
        let servers = cluster.servers
        var configuration = ClusterConfiguration(endpoints: cluster.etcd.map(\.clientURL))
        configuration.name = "spares"
        func placement() async -> ClusterPlacement? { try? await ClusterView.read(configuration, group: MultiThreadedEventLoopGroup.singleton).placement }
        let primary = try await ReplicationServerTests.replicationAddress(servers[0])
        // The first three nodes to register become the members (lowest ids first among those registered
        // when the controller looks); the fourth waits as a spare.
        #expect(await eventually(within: 30) {
            guard case .array(let members)? = (try? await ReplicationServerTests.status(primary))?["members"] else { return false }
            return members.count == 3
        })
        let members = try #require(await placement()).members.keys.sorted()
        let spare = try #require(["n0", "n1", "n2", "n3"].first { !members.contains($0) })
        #expect(members.count == 3 && members.contains("n0"))
        #expect(try await ClusterView.read(configuration, group: MultiThreadedEventLoopGroup.singleton).json["spares"] == .array([.string(spare)]))
        let gone = try #require(members.first { $0 != "n0" })
        let left = Set(members).subtracting([gone]).union([spare])
        try await servers[Int(gone.dropFirst())!].stop()
        #expect(await eventually(within: 30) { await placement().map { Set($0.members.keys) } == left })
        #expect(await placement().map { $0.removed.isEmpty && $0.leaving.isEmpty && $0.replacing.isEmpty } == true)
        #expect(await eventually(within: 30) {
            (try? await ReplicationServerTests.status(primary))?["in_sync"] == .array(left.subtracting(["n0"]).sorted().map { .string($0) })
        })
        let writer = try await servers[0].client()
        _ = try await writer.performance.learningRecords.create(sampleBody(title: "replicated twice"))
        await writer.shutdown()
        for id in left { try await servers[Int(id.dropFirst())!].stop() }
    }

    /// Three nodes on two machines (n0 and n1 on the same one) are the members; a fourth node starts
    /// on a third machine: it joins above the factor and the member sharing the primary's machine is
    /// replaced by the replacement's steps, and the cluster still takes writes.
    @Test(.enabled(if: EtcdProcess.binary() != nil, "needs etcd (scripts/ensure-deps.sh installs it)"))
    func membersSharingAMachineAreSpreadWhenASpareCan() async throws {
        var cluster = try await ClusterRoutingTests.Cluster.start(name: "machines", nodes: 3, replicationFactor: 3, machines: ["a", "a", "b"])
        defer { cluster.killEtcd() }
        var configuration = ClusterConfiguration(endpoints: cluster.etcd.map(\.clientURL))
        configuration.name = "machines"
        func view() async -> ClusterView? { try? await ClusterView.read(configuration, group: MultiThreadedEventLoopGroup.singleton) }
        #expect(await eventually(within: 30) { await view()?.placement?.members.count == 3 })
        let crowded = try #require(await view())
        #expect(crowded.json["members_sharing_a_machine"] == .object([("machine a", .array([.string("n0"), .string("n1")]))]))
        let directory = TemporaryDirectory()
        cluster.servers.append(try await TestServer.start(
            configure: ClusterRoutingTests.node(
                "n3", port: try FailoverTester.freePort(), etcd: cluster.etcd.map(\.clientURL), cluster: "machines", replicationFactor: 3, machine: "c"),
            persistence: .forTests(directory.path), restartsInPlace: true))
        #expect(await eventually(within: 60) {
            guard let placement = await view()?.placement else { return false }
            return Set(placement.members.keys) == ["n0", "n2", "n3"] && placement.replacing.isEmpty
        })
        let settled = try #require(await view())
        #expect(settled.json["members_sharing_a_machine"] == .object([]))
        #expect(settled.json["spares"] == .array([.string("n1")]), "n1 waits as a spare")
        #expect(settled.placement?.removed.isEmpty == true)
        let writer = try await cluster.servers[0].client()
        _ = try await writer.performance.learningRecords.create(sampleBody(title: "on three machines"))
        await writer.shutdown()
        for server in cluster.servers { try await server.stop() }
    }

    @Test func serveRefusesAReplicationFactorThatCouldNotFailOver() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CommandLineRun.binary.path), "build the learnstore binary first")
        let scratch = TemporaryDirectory(prefix: "learnstore-factor-")
        let work = URL(fileURLWithPath: scratch.path)
        let secret = work.appendingPathComponent("secret")
        try Data(ReplicationServerTests.secret).write(to: secret)
        let node = ["serve", "--data-dir", work.appendingPathComponent("data").path, "--node-id", "n0", "--replication-port", "7999",
                    "--cluster-secret-file", secret.path]
        let etcd = ["--etcd-endpoints", "http://127.0.0.1:1"]
        for (arguments, message) in [
            (node + etcd + ["--replication-factor", "2"], "above twice --min-in-sync-replicas"),
            (node + etcd + ["--replication-factor", "65"], "--replication-factor must be 2 ... 64"),
            (node + etcd + ["--replace-after", "5"], "--replace-after needs --replication-factor"),
            (node + ["--replication-factor", "3"], "--replication-factor needs --etcd-endpoints"),
            (node + etcd + ["--machine", "a/b"], "--machine must be 1-64 letters"),
            (node + ["--machine", "a"], "--machine needs --etcd-endpoints"),
        ] {
            let run = try await CommandLineRun.run(arguments, in: work)
            #expect(run.status != 0 && run.stderr.contains(message), "\(arguments): \(run.stderr)")
        }
    }
}
