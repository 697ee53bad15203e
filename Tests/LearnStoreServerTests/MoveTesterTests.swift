import Foundation
import LearnStoreTestSupport
import LearnStoreTools
import Testing

/// The real-process move test, short: two groups of two nodes and etcd, a writer per tenant, four
/// moves (one plain, one killing the source group's primary during it, one the target's, and one
/// the target's once the move is fenced, so that the next attempt unfences it).
/// `learnstore move-test` runs more and larger moves (docs/PERFORMANCE.md, "Reliability runs").
@Suite struct MoveTesterTests {
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary) && EtcdProcess.binary() != nil,
                   "needs the learnstore binary (swift build) and etcd (scripts/ensure-deps.sh installs it)"))
    func movesUnderWritesAndKillsLoseNoAcknowledgedWrite() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-moves-")
        let etcd = try await EtcdProcess.startCluster(members: 1, workDirectory: scratch.path, binary: EtcdProcess.binary()!)
        defer { for member in etcd { member.process.signal(SIGKILL) } }
        var tester = MoveTester(binary: CrashTests.binary, workDirectory: scratch.path, etcdEndpoints: etcd.map(\.clientURL))
        tester.cycles = 4
        tester.nodesPerGroup = 2
        tester.tenants = 4
        tester.partitions = 4
        tester.preload = 2000
        tester.faults = [.none, .source, .target, .targetFenced]
        let report = try await tester.run()
        #expect(report.cycles == 4)
        #expect(report.acknowledgedWrites >= 100)
        #expect(report.lost == 0, "\(report.failures)")
    }
}
