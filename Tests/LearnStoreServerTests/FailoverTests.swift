import Foundation
import LearnStoreModel
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

    /// The same with the etcd control plane: nobody promotes by hand; the controller notices the dead
    /// primary and promotes a replica. `scripts/failover-test.sh 20 --etcd` runs more cycles.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary), "needs the learnstore binary (swift build)"))
    func theControllerPromotesAReplicaWhenThePrimaryIsKilled() async throws {
        let report = try await Self.runWithEtcd(cycles: 2, pauseMilliseconds: nil)
        #expect(report.cycles == 2)
        #expect(report.lost == 0, "\(report.failures)")
        #expect(report.digestMismatches == 0, "\(report.failures)")
        // A bound on liveness, not the target: the suite runs other process-heavy tests on the same
        // two cores, and one cycle there once took 14 s. The target (a median of 2 s or less) is
        // measured by `learnstore failover-test --etcd` on a quiet machine (docs/PERFORMANCE.md).
        #expect(report.failoverMilliseconds.allSatisfy { $0 < 30_000 }, "\(report.failoverMilliseconds)")
    }

    /// A primary stopped (SIGSTOP) past its lease is replaced; when it runs again it must not have
    /// acknowledged anything the new primary lacks.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary), "needs the learnstore binary (swift build)"))
    func aPrimaryPausedPastItsLeaseAcknowledgesNothingTheNewPrimaryLacks() async throws {
        let report = try await Self.runWithEtcd(cycles: 1, pauseMilliseconds: 4_000)
        #expect(report.cycles == 1)
        #expect(report.lost == 0, "\(report.failures)")
        #expect(report.digestMismatches == 0, "\(report.failures)")
    }

    /// etcd's leader killed under writes (and started again 4 s later), then the node holding the
    /// controller key: writes go on through both and nothing acknowledged is lost. Whether the primary
    /// kept its role is the long run's figure (`learnstore failover-test --etcd --fault etcd-leader
    /// controller`), not asserted here: the suite shares two cores with other process-heavy tests.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary), "needs the learnstore binary (swift build)"))
    func killingEtcdsLeaderOrTheControllerLosesNoAcknowledgedWrite() async throws {
        let report = try await Self.runWithEtcd(cycles: 2, pauseMilliseconds: nil, members: 3, faults: [.etcdLeader, .controller])
        #expect(report.cycles == 2)
        #expect(report.faults[.etcdLeader] == 1)
        #expect(report.acknowledgedWrites >= 100)
        #expect(report.lost == 0, "\(report.failures)")
        #expect(report.digestMismatches == 0, "\(report.failures)")
    }

    /// Four nodes, a replication factor of 3: a member replica is removed under writes as
    /// `cluster remove-node` does it (the spare joins for it) and readmitted; a member replica killed
    /// with SIGKILL is replaced by the spare (and returns as one); then the primary is killed. Writes go
    /// on and every node, spares included, ends with the same records.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary), "needs the learnstore binary (swift build)"))
    func aSpareTakesThePlaceOfAMemberRemovedOrKilledUnderWrites() async throws {
        let report = try await Self.runWithEtcd(cycles: 3, pauseMilliseconds: nil, faults: [.remove, .member, .primary], spares: 1)
        #expect(report.cycles == 3)
        #expect(report.removalMilliseconds.count == 1)
        #expect(report.replacementMilliseconds.count == 1)
        #expect(report.acknowledgedWrites >= 100)
        #expect(report.lost == 0, "\(report.failures)")
        #expect(report.digestMismatches == 0, "\(report.failures)")
    }

    /// `members` etcd processes and three nodes (and `spares`) with the control plane.
    static func runWithEtcd(
        cycles: Int, pauseMilliseconds: Int?, members: Int = 1, faults: [FailoverTester.Fault] = [.primary], spares: Int = 0
    ) async throws -> FailoverTester.Report {
        let scratch = TemporaryDirectory(prefix: "learnstore-failover-etcd-")
        let etcdBinary = try #require(EtcdProcess.binary(), "etcd is installed by scripts/ensure-deps.sh")
        let etcd = try await EtcdProcess.startCluster(members: members, workDirectory: scratch.path, binary: etcdBinary)
        defer { for member in etcd { member.process.signal(SIGKILL) } }
        var tester = FailoverTester(binary: CrashTests.binary, workDirectory: scratch.path, cycles: cycles)
        tester.etcdEndpoints = etcd.map(\.clientURL)
        tester.etcdMembers = etcd
        tester.faults = faults
        tester.pauseMilliseconds = pauseMilliseconds
        tester.spares = spares
        do {
            return try await tester.run()
        } catch {
            // The nodes' and etcd's logs say why: keep them for whoever reads the failure.
            scratch.keepsContents = true
            throw LearnStoreError(.internalError, "\(error) (logs kept in \(scratch.path))")
        }
    }
}
