import ArgumentParser
import Foundation
import LearnStoreTools

struct CrashTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crash-test",
        abstract: "Kill a real server with SIGKILL while clients write, restart it, and check that no acknowledged write was lost.",
        discussion: """
            Writers spread over --tenants tenants; a change-feed subscriber follows each tenant through every kill and restart, resuming after its last change. \
            Prints: cycles, acknowledged writes, lost, corrupt (half-applied batches), feed changes and feed mismatches \
            (a gap, a repeat, an acknowledged write missing from the feed, or a change the server no longer holds). \
            Exits 1 if anything was lost or corrupt or the feed did not match.
            """)

    @Option(help: "Kill/restart cycles.") var cycles = 10
    @Option(help: "Concurrent writers.") var writers = 8
    @Option(help: "Tenants written (writer w writes to tenant w mod N), each followed by a change-feed subscriber (1 ... 64).") var tenants = 3
    @Option(help: "fsync policy of the server under test.") var fsync = "always"
    @Option(help: "The learnstore binary to test (default: this one).") var binary: String?
    @Option(name: .customLong("work-dir"), help: "Scratch directory: new or empty (default: a new one under /tmp). Removed on success if this command created it; otherwise only the files it wrote are.") var workDir: String?

    func run() async throws {
        try await runCLI {
            let executable = RealProcessTest.executable(binary)
            let scratch = try RealProcessTest.scratch(workDir, prefix: "learnstore-crash-")
            var tester = CrashTester(binary: executable, workDirectory: scratch.path, cycles: cycles)
            guard (1...64).contains(tenants), writers >= 1 else { throw CLIError.usage("--tenants must be 1 ... 64 and --writers at least 1") }
            tester.writers = writers
            tester.tenants = tenants
            tester.fsync = fsync
            let tested = tester
            try await RealProcessTest.report(failures: \.failures, failed: { $0.lost > 0 || $0.corrupt > 0 || $0.feedMismatches > 0 }) {
                try await tested.run(progress: $0)
            }
            scratch.clean(entries: CrashTester.entriesWritten)
        }
    }
}
