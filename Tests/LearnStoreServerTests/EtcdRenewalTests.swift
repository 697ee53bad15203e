import Foundation
import Glibc
@testable import LearnStoreServer
import LearnStoreTestSupport
import LearnStoreTools
import NIOPosix
import Testing

/// A lease renewal is the etcd call whose delay can fence a primary: it asks every member at once, so
/// a member that holds it (cut off, or in an election) costs nothing when another answers.
@Suite struct EtcdRenewalTests {
    /// A TCP port that accepts connections (the kernel completes them) but never answers a request.
    final class SilentEndpoint {
        let socket: Int32
        let port: Int

        init() throws {
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            self.socket = socket
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    bind(socket, pointer, length) == 0 && listen(socket, 16) == 0 && getsockname(socket, pointer, &length) == 0
                }
            }
            guard socket >= 0, bound else { throw POSIXError(.EADDRNOTAVAIL) }
            port = Int(UInt16(bigEndian: address.sin_port))
        }

        deinit { close(socket) }
    }

    @Test(.enabled(if: EtcdProcess.binary() != nil, "needs etcd (scripts/ensure-deps.sh installs it)"))
    func aRenewalDoesNotWaitForAMemberThatHoldsIt() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-renewal-")
        let etcd = try await EtcdProcess.startCluster(members: 1, workDirectory: scratch.path, binary: EtcdProcess.binary()!)
        defer { for member in etcd { member.process.signal(SIGKILL) } }
        let silent = try SilentEndpoint()
        let lease = try await EtcdClient(endpoints: etcd.map(\.clientURL), group: MultiThreadedEventLoopGroup.singleton)
            .grantLease(ttlSeconds: 30)
        // Each member may take 60 s: asked in turn, the silent one first, the renewal would take that long.
        let client = try EtcdClient(endpoints: ["127.0.0.1:\(silent.port)"] + etcd.map(\.clientURL), group: MultiThreadedEventLoopGroup.singleton,
                                    timeout: .seconds(60))
        let started = ContinuousClock.now
        #expect(try await client.keepAlive(lease: lease.id) > 0)
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    /// Admin requests and other tasks run on Swift's shared pool, one thread per core. A node's
    /// renewals run on a thread of their own, so a pool kept busy for twice the fence limit neither
    /// fences a healthy primary nor lets its lease lapse.
    @Test(.enabled(if: EtcdProcess.binary() != nil, "needs etcd (scripts/ensure-deps.sh installs it)"))
    func aPrimaryRenewsItsLeaseWhileTheSharedPoolIsBusy() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-busy-pool-")
        let etcd = try await EtcdProcess.startCluster(members: 1, workDirectory: scratch.path, binary: EtcdProcess.binary()!)
        defer { for member in etcd { member.process.signal(SIGKILL) } }
        let directory = TemporaryDirectory()
        let replicationPort = try FailoverTester.freePort()
        let leaseSeconds = 2
        let server = try await TestServer.start(configure: { configuration in
            var replication = ReplicationConfiguration(nodeID: "n0", port: replicationPort, secret: ReplicationServerTests.secret)
            var control = ClusterConfiguration(endpoints: etcd.map(\.clientURL))
            control.name = "busy-pool"
            control.leaseSeconds = leaseSeconds
            replication.cluster = control
            configuration.replication = replication
        }, persistence: .forTests(directory.path))
        let agent = try #require(server.application.clusterAgent)
        let node = try #require(server.application.replication)
        #expect(await eventually(within: 30) { agent.lastRenewal != nil && node.role == .primary })

        let limit = ControllerRules.leaseFenceAfter(ttlSeconds: leaseSeconds)
        let started = ContinuousClock.now
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<ProcessInfo.processInfo.activeProcessorCount {
                group.addTask {
                    let end = ContinuousClock.now + limit * 2
                    while ContinuousClock.now < end {}
                }
            }
        }
        #expect(ContinuousClock.now - started >= limit * 2)
        #expect(node.role == .primary)
        #expect(agent.lastRenewal.map { $0 > started + limit } == true)
        try await server.stop()
    }
}
