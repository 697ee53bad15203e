import Foundation
import LearnStoreTools
import LearnStoreTestSupport
import Testing

/// A real primary and two replicas as processes: the primary is killed with SIGKILL under writes, a
/// replica is promoted, no acknowledged write is lost, and the old primary rejoins holding exactly what
/// the new one holds. `scripts/failover-test.sh 20` runs more cycles.
@Suite struct FailoverTests {
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary), "needs the learnstore binary (swift build)"))
    func noAcknowledgedWriteIsLostWhenThePrimaryIsKilledAndAReplicaPromoted() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-failover-")
        let tester = FailoverTester(binary: CrashTests.binary, workDirectory: scratch.path, cycles: 2)
        let report = try await tester.run()
        #expect(report.cycles == 2)
        #expect(report.acknowledgedWrites >= 100)
        #expect(report.lost == 0, "\(report.failures)")
        #expect(report.digestMismatches == 0, "\(report.failures)")
    }
}
