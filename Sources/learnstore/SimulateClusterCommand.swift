import ArgumentParser
import LearnStoreServer

struct SimulateClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate-cluster",
        abstract: "Run the deterministic simulation of the etcd control plane over many seeds.",
        discussion: """
            Each seed runs the nodes' real cluster agents (lease, registration, watch, controller election, \
            checks of the primary, guarded promotions) against a simulated etcd and simulated nodes on \
            simulated time; the last node joins the cluster during the faults. For --fault-seconds, nodes \
            crash and restart, stop and resume past their lease, lose etcd or each other, and etcd loses its \
            leader; then every fault heals for --settle-seconds. \
            After every tick it checks that the acknowledged writes form one history (no primary acknowledges \
            without every earlier acknowledged write, no older primary after a newer one), that a promoted \
            node holds every acknowledged write, and that etcd's placement never goes back to an older epoch \
            and names only the node promoted to its epoch; at the end, that one primary, the one the placement \
            names, acknowledges writes. With --machines each node names a machine, and with --lose-a-machine the \
            controller must first spread the members over the machines, then survives the loss of one. A failing seed replays exactly with --first SEED --seeds 1. Exits 1 if \
            any seed failed.
            """)

    @Option(help: "Seeds to run.") var seeds = 100
    @Option(help: "The first seed.") var first: UInt64 = 1
    @Option(help: "Nodes per seed (3 ... 5).") var nodes = 3
    @Option(name: .customLong("min-in-sync"), help: "Minimum in-sync replicas (1 ... (nodes - 1) / 2).") var minimumInSync = 1
    @Option(name: .customLong("fault-seconds"), help: "Simulated seconds with faults.") var faultSeconds: Int64 = 30
    @Option(name: .customLong("settle-seconds"), help: "Simulated seconds without faults before the end checks.") var settleSeconds: Int64 = 15
    @Option(name: .customLong("fault-rate"), help: "The chance per 10 ms tick of each kind of fault starting, 0.0001 ... 0.05.") var faultRate = 0.002
    @Flag(help: "Stop at the first failing seed.") var stopAtFirstFailure = false
    @Flag(name: .customLong("etcd-answers-at-once"), help: "etcd answers the agents at once instead of at a scheduled turn (fewer interleavings).")
    var etcdAnswersAtOnce = false
    @Flag(name: .customLong("all-nodes-at-start"), help: "Every node runs from the start (by default the last one joins during the faults).")
    var allNodesAtStart = false
    @Flag(name: .customLong("remove-node"), help: "The operator removes a random node other than the first during the faults (needs more than 2 * min-in-sync + 1 nodes), and stops it for good half of the time.")
    var removeNode = false
    @Option(name: .customLong("replication-factor"), help: "The members the controller keeps (default: every node); the other nodes wait as spares.") var replicationFactor: Int?
    @Option(name: .customLong("replace-after-ms"), help: "With --replication-factor: how long a member may be gone before a spare replaces it.") var replaceAfter: Int64 = 2_000
    @Flag(name: .customLong("lose-a-node"), help: "A random node stops for good in the first half of the faults.") var loseANode = false
    @Option(help: "The machines the nodes run on (--machine), 2 ... nodes, each with at least one node (default: none named).") var machines: Int?
    @Flag(name: .customLong("lose-a-machine"), help: "With --machines and --replication-factor: once the faults have healed and the members are spread over the machines (a failure if not within 20 s), every node of one machine stops for good; then the run settles again.")
    var loseAMachine = false
    @Flag(name: .customLong("hand-over"), help: "The operator asks for a handover of the primary to a random member every 1 to 4 s of the faults (learnstore cluster handover).")
    var handOver = false
    @Option(name: .customLong("other-groups"), help: "With --machines: 1 ... 4 other groups of a partition map (their keys only), each a primary on a random machine that moves every 2 to 5 s of the faults; the simulated group's controller hands its primary over to spread primaries over the machines.")
    var otherGroups = 0

    func run() async throws {
        DeterministicHashing.ensure()
        try await runCLI {
            guard seeds >= 1, (3...5).contains(nodes), minimumInSync >= 1, nodes > 2 * minimumInSync,
                (1...3600).contains(faultSeconds), (5...3600).contains(settleSeconds), (0.0001...0.05).contains(faultRate)
            else {
                throw CLIError.usage(
                    "--seeds at least 1, --nodes 3 ... 5, --min-in-sync 1 ... (nodes - 1) / 2, --fault-seconds 1 ... 3600, --settle-seconds 5 ... 3600, --fault-rate 0.0001 ... 0.05")
            }
            guard first <= UInt64.max - UInt64(seeds) else { throw CLIError.usage("--first is too large for that many seeds") }
            var options = ClusterSimulation.Options()
            options.nodes = nodes
            options.minimumInSync = minimumInSync
            options.faultSeconds = faultSeconds
            options.settleSeconds = settleSeconds
            options.faultRate = faultRate
            options.interleavesEtcdCalls = !etcdAnswersAtOnce
            options.lastNodeJoinsLate = !allNodesAtStart
            options.removesANode = removeNode
            if let replicationFactor {
                guard replicationFactor > 2 * minimumInSync, replicationFactor <= nodes else {
                    throw CLIError.usage("--replication-factor must be above twice --min-in-sync and at most --nodes")
                }
                options.replicationFactor = replicationFactor
            }
            guard (100...600_000).contains(replaceAfter) else { throw CLIError.usage("--replace-after-ms must be 100 ... 600000") }
            options.replaceAfterMilliseconds = replaceAfter
            options.losesANode = loseANode
            options.handsOver = handOver
            if otherGroups != 0 {
                guard machines != nil, (1...4).contains(otherGroups) else { throw CLIError.usage("--other-groups must be 1 ... 4 and needs --machines") }
                options.otherGroups = otherGroups
            }
            if let machines {
                guard (2...nodes).contains(machines) else { throw CLIError.usage("--machines must be 2 ... --nodes") }
                options.machines = machines
            }
            if loseAMachine {
                guard let machines, let replicationFactor, machines >= replicationFactor else {
                    throw CLIError.usage("--lose-a-machine needs --machines and --replication-factor, with at least as many machines as the factor")
                }
                options.losesAMachine = true
            }
            var totals = ClusterSimulation.Result(seed: 0)
            var failures = 0
            let started = ContinuousClock.now
            for seed in first..<(first + UInt64(seeds)) {
                let result = await ClusterSimulation(seed: seed, options: options).run()
                totals.add(result)
                if let violation = result.violation {
                    failures += 1
                    print("FAILED seed \(seed): \(violation)")
                    for line in result.trace { print("  \(line)") }
                    if stopAtFirstFailure { break }
                }
            }
            let seconds = Double((ContinuousClock.now - started).components.seconds)
            print("seeds=\(seeds) acknowledged_writes=\(totals.acknowledged) crashes=\(totals.crashes) pauses=\(totals.pauses) "
                + "etcd_cut_offs=\(totals.etcdCuts) link_cuts=\(totals.linkCuts) etcd_outages=\(totals.etcdOutages) promotions=\(totals.promotions) "
                + "replaced_primaries_restarted=\(totals.restartsRequested) removals=\(totals.removals) removals_refused=\(totals.removalsRefused) removals_called_off=\(totals.removalsCalledOff) members_dropped=\(totals.membersDropped) "
                + "machines_lost=\(totals.machinesLost) nodes_lost_with_machines=\(totals.nodesLostWithMachines) "
                + "handovers_requested=\(totals.handoversRequested) handovers_completed=\(totals.handoversCompleted) handovers_given_up=\(totals.handoversGivenUp) spreading_handovers=\(totals.spreadingHandovers) failures=\(failures) seconds=\(Int(seconds))")
            if failures > 0 { throw ExitCode(1) }
        }
    }
}
