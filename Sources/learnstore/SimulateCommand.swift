import ArgumentParser
import Foundation
import LearnStorePersistence

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the deterministic storage simulation over many seeds.",
        discussion: """
            Each seed runs the real tenant actors, write-ahead log, snapshots, retention and recovery over a \
            simulated disk and clock, with failed and short writes, failed and slow syncs, disk-full periods, \
            killed processes, machine crashes and bits flipped in files, outcome ingests, online restores and a \
            tenant that falls quiet, and change-feed subscribers following every tenant across crashes (odd \
            seeds keep a feed window of four segments and 30 s of WAL, even seeds none), and checks after \
            every step and restart that no acknowledged write is lost, nothing that failed is visible, the \
            log stays bounded, and each subscriber gets every committed change once, in order, and none a \
            crash or rollback takes back. A start refused because of a \
            flipped bit, naming the damaged file, ends its seed as detected corruption (not a failure). A \
            failing seed is printed with its last steps and replays exactly with --first SEED --seeds 1. \
            Prints the totals; exits 1 if any seed failed.
            """)

    @Option(help: "Seeds to run.") var seeds = 1000
    @Option(help: "The first seed.") var first: UInt64 = 1
    @Option(help: "fsync policy simulated: always, everysec or both.") var policy = "both"
    @Option(help: "Steps per seed.") var steps = 400
    @Option(help: "Tenants per seed (the last one only reads).") var tenants = 4
    @Option(help: "WAL segment size in bytes (4096 or more); 8192 makes every run rotate and remove segments.")
    var segmentBytes = 1 << 20
    @Flag(help: "Stop at the first failing seed.") var stopAtFirstFailure = false

    func run() async throws {
        DeterministicHashing.ensure()
        try await runCLI {
            let policies: [FsyncPolicy]
            switch policy {
            case "both": policies = [.always, .everysec]
            default:
                guard let one = FsyncPolicy(rawValue: policy) else { throw CLIError.usage("--policy must be always, everysec, off or both") }
                policies = [one]
            }
            guard seeds >= 1, steps >= 1, (2...64).contains(tenants) else { throw CLIError.usage("--seeds and --steps must be at least 1, --tenants 2 ... 64") }
            guard (4 << 10 ... 1 << 30).contains(segmentBytes) else { throw CLIError.usage("--segment-bytes must be 4096 ... 1073741824") }
            guard first <= UInt64.max - UInt64(seeds) else { throw CLIError.usage("--first is too large for that many seeds") }
            var options = DurabilitySimulation.Options()
            options.steps = steps
            options.tenants = tenants
            options.segmentBytes = segmentBytes
            var totals = (seeds: 0, steps: 0, faults: 0, crashes: 0, acknowledged: 0, failedWrites: 0, snapshots: 0, failures: 0,
                          segmentsRemoved: 0, seedsRemovingSegments: 0, slowSyncs: 0, bitFlips: 0, detectedCorruptions: 0, outcomeIngests: 0, restores: 0, restoresAsWrites: 0, restoresTakenBack: 0,
                          feedChanges: 0, feedTruncations: 0, feedChangesFromMemory: 0, feedFellBehindMemory: 0, movePieces: 0, releases: 0)
            let started = ContinuousClock.now
            runs: for policy in policies {
                options.policy = policy
                for seed in first..<(first + UInt64(seeds)) {
                    options.feedRetention = seed % 2 == 1 ? FeedRetention(bytes: 4 * segmentBytes, milliseconds: 30_000) : .none
                    var simulation = DurabilitySimulation(seed: seed, options: options)
                    let result = simulation.run()
                    totals.seeds += 1
                    totals.steps += result.steps
                    totals.faults += result.faults
                    totals.crashes += result.crashes
                    totals.acknowledged += result.acknowledged
                    totals.failedWrites += result.failedWrites
                    totals.snapshots += result.snapshots
                    totals.segmentsRemoved += result.segmentsRemoved
                    if result.segmentsRemoved > 0 { totals.seedsRemovingSegments += 1 }
                    totals.slowSyncs += result.slowSyncs
                    totals.bitFlips += result.bitFlips
                    totals.outcomeIngests += result.outcomeIngests
                    totals.restores += result.restores
                    totals.restoresAsWrites += result.restoresAsWrites
                    totals.restoresTakenBack += result.restoresTakenBack
                    totals.feedChanges += result.feedChanges
                    totals.feedTruncations += result.feedTruncations
                    totals.feedChangesFromMemory += result.feedChangesFromMemory
                    totals.feedFellBehindMemory += result.feedFellBehindMemory
                    totals.movePieces += result.movePieces
                    totals.releases += result.releases
                    if result.detectedCorruption != nil { totals.detectedCorruptions += 1 }
                    if let failure = result.failure {
                        totals.failures += 1
                        print("FAILED seed \(seed) (fsync \(policy.rawValue)): \(failure)")
                        for line in result.trace { print("  \(line)") }
                        if stopAtFirstFailure { break runs }
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
                + "segments_removed=\(totals.segmentsRemoved) seeds_removing_segments=\(totals.seedsRemovingSegments) slow_syncs=\(totals.slowSyncs) bit_flips=\(totals.bitFlips) "
                + "detected_corruptions=\(totals.detectedCorruptions) outcome_ingests=\(totals.outcomeIngests) restores=\(totals.restores) restores_as_writes=\(totals.restoresAsWrites) restores_taken_back=\(totals.restoresTakenBack) "
                + "feed_changes=\(totals.feedChanges) feed_truncations=\(totals.feedTruncations) "
                + "feed_changes_from_memory=\(totals.feedChangesFromMemory) feed_fell_behind_memory=\(totals.feedFellBehindMemory) "
                + "move_pieces=\(totals.movePieces) releases=\(totals.releases) failures=\(totals.failures) seconds=\(Int(seconds))")
            if totals.failures > 0 { throw ExitCode(1) }
        }
    }
}
