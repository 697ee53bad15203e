import ArgumentParser
import Foundation
import LearnStorePersistence

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the deterministic storage simulation over many seeds.",
        discussion: """
            Each seed runs the real tenant actors, write-ahead log, snapshots, retention and recovery over a \
            simulated disk and clock, with failed and short writes, failed syncs, disk-full periods, killed \
            processes and machine crashes, and checks after every step and restart that no acknowledged write \
            is lost, nothing that failed is visible, and the log stays bounded. A failing seed is printed with \
            its last steps and replays exactly with --first SEED --seeds 1. Prints seeds run, steps, faults \
            injected, crashes, acknowledged writes and failures; exits 1 if any seed failed.
            """)

    @Option(help: "Seeds to run.") var seeds = 1000
    @Option(help: "The first seed.") var first: UInt64 = 1
    @Option(help: "fsync policy simulated: always, everysec or both.") var policy = "both"
    @Option(help: "Steps per seed.") var steps = 400
    @Option(help: "Tenants per seed (the last one only reads).") var tenants = 4

    func run() async throws {
        try await runCLI {
            let policies: [FsyncPolicy]
            switch policy {
            case "both": policies = [.always, .everysec]
            default:
                guard let one = FsyncPolicy(rawValue: policy) else { throw CLIError.usage("--policy must be always, everysec, off or both") }
                policies = [one]
            }
            guard seeds >= 1, steps >= 1, (2...64).contains(tenants) else { throw CLIError.usage("--seeds and --steps must be at least 1, --tenants 2 ... 64") }
            guard first <= UInt64.max - UInt64(seeds) else { throw CLIError.usage("--first is too large for that many seeds") }
            var options = DurabilitySimulation.Options()
            options.steps = steps
            options.tenants = tenants
            var totals = (seeds: 0, steps: 0, faults: 0, crashes: 0, acknowledged: 0, failedWrites: 0, snapshots: 0, failures: 0)
            let started = ContinuousClock.now
            for policy in policies {
                options.policy = policy
                for seed in first..<(first + UInt64(seeds)) {
                    var simulation = DurabilitySimulation(seed: seed, options: options)
                    let result = simulation.run()
                    totals.seeds += 1
                    totals.steps += result.steps
                    totals.faults += result.faults
                    totals.crashes += result.crashes
                    totals.acknowledged += result.acknowledged
                    totals.failedWrites += result.failedWrites
                    totals.snapshots += result.snapshots
                    if let failure = result.failure {
                        totals.failures += 1
                        print("FAILED seed \(seed) (fsync \(policy.rawValue)): \(failure)")
                        for line in result.trace { print("  \(line)") }
                    }
                    if totals.seeds % 100 == 0 {
                        FileHandle.standardError.write(Data("\r\(totals.seeds) seeds, \(totals.failures) failed".utf8))
                    }
                }
            }
            FileHandle.standardError.write(Data("\n".utf8))
            let seconds = Double((ContinuousClock.now - started).components.seconds)
            print("seeds=\(totals.seeds) steps=\(totals.steps) faults=\(totals.faults) crashes=\(totals.crashes) "
                + "acknowledged_writes=\(totals.acknowledged) failed_writes=\(totals.failedWrites) snapshots=\(totals.snapshots) "
                + "failures=\(totals.failures) seconds=\(Int(seconds))")
            if totals.failures > 0 { throw ExitCode(1) }
        }
    }
}
