import Foundation
import LearnStoreTestSupport
import LearnStoreTools
import Testing

/// The real-process machine-loss test, short: three groups on three `serve --member` processes and
/// etcd, a writer per tenant, one machine killed with SIGKILL and started again.
/// `learnstore machine-loss-test` runs more cycles (docs/CLUSTER.md, "One process per machine").
@Suite struct MachineLossTesterTests {
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary) && EtcdProcess.binary() != nil,
                   "needs the learnstore binary (swift build) and etcd (scripts/ensure-deps.sh installs it)"))
    func aLostMachineLosesNoAcknowledgedWrite() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-machines-")
        let etcd = try await EtcdProcess.startCluster(members: 1, workDirectory: scratch.path, binary: EtcdProcess.binary()!)
        defer { for member in etcd { member.process.signal(SIGKILL) } }
        var tester = MachineLossTester(binary: CrashTests.binary, workDirectory: scratch.path, etcdEndpoints: etcd.map(\.clientURL))
        tester.cycles = 1
        tester.tenants = 6
        let report = try await tester.run()
        #expect(report.cycles == 1)
        #expect(report.acknowledgedWrites >= 100)
        #expect(report.lost == 0, "\(report.failures)")
    }
}
