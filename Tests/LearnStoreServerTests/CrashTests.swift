import Foundation
import LearnStoreTools
import LearnStoreTestSupport
import Testing

/// The real server binary, killed with SIGKILL while clients write; every acknowledged write must
/// survive the restart and no batch may be half-applied, and a change-feed subscriber per tenant,
/// resumed across the kills, has every change of its tenant exactly once. `scripts/crash-test.sh 1000` runs many more.
@Suite struct CrashTests {
    static var binary: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/learnstore").path
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary), "needs the learnstore binary (swift build)"))
    func acknowledgedWritesSurviveSIGKILL() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-crash-")
        let directory = scratch.path
        var tester = CrashTester(binary: Self.binary, workDirectory: directory, cycles: 3)
        tester.writers = 6
        let report = try await tester.run()
        #expect(report.cycles == 3)
        #expect(report.acknowledgedWrites > 0)
        #expect(report.lost == 0, "\(report.failures)")
        #expect(report.corrupt == 0, "\(report.failures)")
        #expect(report.feedChanges > report.acknowledgedWrites / 2, "the subscriber followed the writes")
        #expect(report.feedMismatches == 0, "\(report.failures)")
    }
}
