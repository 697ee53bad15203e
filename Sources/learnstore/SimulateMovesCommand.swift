import ArgumentParser
import Foundation
import LearnStoreServer

struct SimulateMovesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate-moves",
        abstract: "Run the deterministic simulation of partition moves between two groups over many seeds.",
        discussion: """
            Each seed runs the nodes' own move code (the target's copy and completing transaction, the source's \
            export, the write gate, adopt and release) over a simulated etcd, logs and connections, with calls \
            interleaved one at a time in a random order. Meanwhile clients write records and outcome results to either group, the operator \
            starts and calls off moves (with --balancer, half of them the balancer's choice), and either group's primary fails over (losing its uncommitted writes; the \
            new one starts with a map its group saw at some point, maybe an old one). Checked: no group acknowledges a write of a tenant \
            whose partition etcd gives to the other group with no move in progress, and once faults stop and every \
            move has completed, every acknowledged write is in the group that holds its tenant. \
            With --control-plane each group is instead --nodes-per-group nodes (three by default) running their real cluster \
            agents (leases, controller election, guarded promotions, the partition map read from etcd) under the faults of \
            simulate-cluster (crashes, pauses, cuts from etcd and between nodes, etcd outages; with --hand-over the operator's \
            handovers too) for --fault-seconds of simulated time instead of --steps; the checks of simulate-cluster hold in \
            each group as well, and every group must settle once the faults stop. A failing seed replays exactly with --first SEED --seeds 1. \
            Exits 1 if any seed failed.
            """)

    @Option(help: "Seeds to run.") var seeds = 100
    @Option(help: "The first seed.") var first: UInt64 = 1
    @Option(help: "Steps per seed (without --control-plane).") var steps = 300
    @Option(help: "Tenants (1 ... 64).") var tenants = 6
    @Option(help: "Partitions of the map (2 ... 64).") var partitions = 4
    @Flag(help: "Stop at the first failing seed.") var stopAtFirstFailure = false
    @Flag(help: "Have the balancer's rule choose half the moves (on the groups' records) instead of a random partition.") var balancer = false
    @Flag(name: .customLong("records-only"), help: "Write records only, no outcome results (with --piece-items 2000: the regression seeds' setting).") var recordsOnly = false
    @Option(name: .customLong("piece-items"), help: "Items per export piece, 1 to 2000 (default: 2 to 8, chosen by the seed).") var pieceItems: Int?
    @Flag(name: .customLong("control-plane"), help: "Run each group as nodes under their control plane, with its faults, instead of simulated failovers.")
    var controlPlane = false
    @Flag(name: .customLong("hand-over"), help: "With --control-plane: the operator also asks for a handover of each group's primary every 1 to 4 simulated seconds of the faults.")
    var handOver = false
    @Option(name: .customLong("nodes-per-group"), help: "With --control-plane: nodes in each group (3 ... 5, as simulate-cluster).") var nodesPerGroup = 3
    @Option(name: .customLong("min-in-sync"), help: "With --control-plane: replicas in sync a primary needs to acknowledge (1 ... (nodes per group - 1) / 2, as simulate-cluster).")
    var minimumInSync = 1
    @Option(name: .customLong("fault-seconds"), help: "With --control-plane: simulated seconds of faults before the run heals (1 ... 600).") var faultSeconds: Int64 = 20

    func run() async throws {
        DeterministicHashing.ensure()
        try await runCLI {
            guard seeds >= 1, steps >= 1, (1...64).contains(tenants), (2...64).contains(partitions) else {
                throw CLIError.usage("--seeds and --steps at least 1, --tenants 1 ... 64, --partitions 2 ... 64")
            }
            guard first <= UInt64.max - UInt64(seeds) else { throw CLIError.usage("--first is too large for that many seeds") }
            guard (3...5).contains(nodesPerGroup), minimumInSync >= 1, nodesPerGroup > 2 * minimumInSync, (1...600).contains(faultSeconds) else {
                throw CLIError.usage("--nodes-per-group takes 3 ... 5, --min-in-sync 1 ... (nodes per group - 1) / 2, --fault-seconds 1 ... 600")
            }
            var options = MoveSimulation.Options()
            guard controlPlane || !handOver else { throw CLIError.usage("--hand-over needs --control-plane") }
            options.controlPlane = controlPlane
            options.handsOver = handOver
            options.nodesPerGroup = nodesPerGroup
            options.minimumInSync = minimumInSync
            options.faultSeconds = faultSeconds
            options.steps = steps
            options.tenants = tenants
            options.partitions = partitions
            options.balancer = balancer
            options.outcomes = !recordsOnly
            if let pieceItems {
                guard (1...2000).contains(pieceItems) else { throw CLIError.usage("--piece-items takes 1 to 2000") }
                options.pieceItems = pieceItems
            }
            var totals = MoveSimulation.Result(seed: 0)
            var failures = 0
            let started = ContinuousClock.now
            for seed in first..<(first + UInt64(seeds)) {
                let result = await MoveSimulation(seed: seed, options: options).run()
                totals.steps += result.steps
                totals.acknowledged += result.acknowledged
                totals.movesStarted += result.movesStarted
                totals.balancerMoves += result.balancerMoves
                totals.movesCompleted += result.movesCompleted
                totals.copiesFailed += result.copiesFailed
                totals.failovers += result.failovers
                totals.restarts += result.restarts
                totals.faults += result.faults
                totals.handoversAsked += result.handoversAsked
                totals.handoversCompleted += result.handoversCompleted
                totals.releases += result.releases
                totals.copiesCompared += result.copiesCompared
                totals.outcomeRowsCompared += result.outcomeRowsCompared
                totals.outcomeIngests += result.outcomeIngests
                totals.completedAfterFirstCopy += result.completedAfterFirstCopy
                totals.changedPieces += result.changedPieces
                totals.rounds += result.rounds
                if let failure = result.failure {
                    failures += 1
                    print("FAILED seed \(seed): \(failure)")
                    for line in result.trace { print("  \(line)") }
                    if stopAtFirstFailure { break }
                }
            }
            let seconds = (ContinuousClock.now - started).components.seconds
            print("seeds=\(seeds) steps=\(totals.steps) acknowledged_writes=\(totals.acknowledged) moves_started=\(totals.movesStarted) balancer_moves=\(totals.balancerMoves) "
                + "moves_completed=\(totals.movesCompleted) copies_failed=\(totals.copiesFailed) failovers=\(totals.failovers) restarts=\(totals.restarts) faults=\(totals.faults) handovers_asked=\(totals.handoversAsked) handovers_completed=\(totals.handoversCompleted) "
                + "tenants_released=\(totals.releases) copies_compared=\(totals.copiesCompared) outcome_ingests=\(totals.outcomeIngests) outcome_rows_compared=\(totals.outcomeRowsCompared) "
                + "completed_after_first_copy=\(totals.completedAfterFirstCopy) changed_pieces=\(totals.changedPieces) rounds=\(totals.rounds) failures=\(failures) seconds=\(seconds)")
            if failures > 0 { throw ExitCode(1) }
        }
    }
}
