import ArgumentParser
import Foundation
import LearnStorePersistence

struct SimulateReplicationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate-replication",
        abstract: "Run the deterministic replication simulation over many seeds.",
        discussion: """
            Each seed runs a primary and replicas, each with its own simulated disk, the real tenant actors, \
            write-ahead log, recovery, in-sync set and epoch history, joined by simulated connections that \
            break, stall, duplicate a frame or are partitioned, with machine crashes and restarts of any node, \
            replica disks failing writes for a while, promotion of the replica holding the most of the log when \
            the primary is down, and the old primary rejoining by cutting what it wrote alone. It checks after \
            every step that each acknowledged write is durable on every in-sync replica and on any promoted \
            one, and at the end, with faults healed, that every node holds the same tenants. A failing seed is \
            printed with its last steps and replays exactly with --first SEED --seeds 1. Exits 1 if any seed failed.
            """)

    @Option(help: "Seeds to run.") var seeds = 500
    @Option(help: "The first seed.") var first: UInt64 = 1
    @Option(help: "Steps per seed.") var steps = 500
    @Option(help: "Nodes per seed (2 ... 5).") var nodes = 3
    @Option(name: .customLong("min-in-sync"), help: "Minimum in-sync replicas (a promotion waits until no more nodes than this are down).") var minimumInSync = 1
    @Flag(help: "Stop at the first failing seed.") var stopAtFirstFailure = false

    func run() async throws {
        DeterministicHashing.ensure()
        try await runCLI {
            guard seeds >= 1, steps >= 1, (2...5).contains(nodes), (1..<nodes).contains(minimumInSync) else {
                throw CLIError.usage("--seeds and --steps must be at least 1, --nodes 2 ... 5, --min-in-sync 1 ... nodes - 1")
            }
            guard first <= UInt64.max - UInt64(seeds) else { throw CLIError.usage("--first is too large for that many seeds") }
            var options = ReplicationSimulation.Options()
            options.steps = steps
            options.nodes = nodes
            options.minimumInSync = minimumInSync
            var totals = ReplicationSimulation.Result(seed: 0)
            var failures = 0
            let started = ContinuousClock.now
            for seed in first..<(first + UInt64(seeds)) {
                var simulation = ReplicationSimulation(seed: seed, options: options)
                let result = simulation.run()
                totals.steps += result.steps
                totals.acknowledged += result.acknowledged
                totals.crashes += result.crashes
                totals.promotions += result.promotions
                totals.logCuts += result.logCuts
                totals.connectionBreaks += result.connectionBreaks
                totals.partitions += result.partitions
                totals.duplicatedFrames += result.duplicatedFrames
                totals.storageFaults += result.storageFaults
                totals.recordsShipped += result.recordsShipped
                totals.snapshots += result.snapshots
                totals.catchUps += result.catchUps
                totals.catchUpsInterrupted += result.catchUpsInterrupted
                totals.movePieces += result.movePieces
                totals.releases += result.releases
                if let failure = result.failure {
                    failures += 1
                    print("FAILED seed \(seed): \(failure)")
                    for line in result.trace { print("  \(line)") }
                    if stopAtFirstFailure { break }
                }
            }
            let seconds = Double((ContinuousClock.now - started).components.seconds)
            print("seeds=\(seeds) steps=\(totals.steps) acknowledged_writes=\(totals.acknowledged) records_shipped=\(totals.recordsShipped) "
                + "crashes=\(totals.crashes) promotions=\(totals.promotions) log_cuts=\(totals.logCuts) connection_breaks=\(totals.connectionBreaks) "
                + "partitions=\(totals.partitions) duplicated_frames=\(totals.duplicatedFrames) storage_fault_periods=\(totals.storageFaults) "
                + "snapshots=\(totals.snapshots) catch_up_copies=\(totals.catchUps) catch_ups_interrupted=\(totals.catchUpsInterrupted) "
                + "move_pieces=\(totals.movePieces) releases=\(totals.releases) "
                + "failures=\(failures) seconds=\(Int(seconds))")
            if failures > 0 { throw ExitCode(1) }
        }
    }
}
