import ArgumentParser
import Foundation
import LearnStoreTools

extension MoveTester.Fault: ExpressibleByArgument {}

struct MoveTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "move-test",
        abstract: "Move partitions between two groups of real nodes under writes, and check that no acknowledged write was lost.",
        discussion: """
            Starts a local etcd (the `etcd` binary from PATH) and two groups, ga and gb, of --nodes-per-group nodes each \
            (synchronous replication, the etcd control plane) sharing a partition map of --partitions partitions. One writer \
            per tenant writes without pause through a ClusterClient seeded with every node. Each cycle moves a partition that \
            holds some of the tenants to the other group (as `learnstore cluster move-partition` does) and waits until etcd's \
            map names the new group; --fault source|target also kills the primary of the group the partition leaves, or goes \
            to, with SIGKILL during the copy and starts it again (source-fenced|target-fenced: once the move is fenced). At the end every acknowledged write is read back through \
            the group that holds its tenant. Prints: cycles, acknowledged writes, lost, unacknowledged attempts by error, the \
            time each move took (median, max) and the longest pause between acknowledged writes of the moving tenants. \
            With --balancer records|load, group ga starts with every partition and the test does not move any: it turns \
            the balancer on (tolerance 20 %, cool-down 3 s) and follows the moves the cluster starts by itself for \
            --balance-seconds (--fault applies to them in turn), then prints each group's total as the groups last published it. Exits 1 if anything was lost.
            """)

    @Option(help: "Moves.") var cycles = 6
    @Option(help: "Tenants written, one writer each (1 ... 64).") var tenants = 8
    @Option(help: "Partitions of the map (2 ... 256).") var partitions = 8
    @Option(name: .customLong("nodes-per-group"), help: "Nodes of each group (1 ... 5; a group of one acknowledges alone).") var nodesPerGroup = 3
    @Option(name: .customLong("fault"), parsing: .upToNextOption, help: "Per cycle in turn: none, source (kill -9 the source group's primary during the copy), target (the target group's), source-fenced, target-fenced (the same once the move is fenced).") var fault: [MoveTester.Fault] = [.none]
    @Option(help: "Records each tenant holds before the writes and moves start (0 ... 10000000): what a move copies.") var preload = 0
    @Option(help: "fsync policy of the nodes.") var fsync = "always"
    @Option(name: .customLong("outcome-results"), help: "Canvas outcome results each tenant holds before the moves (0 ... 1000000); with any, every fourth write re-assesses one.") var outcomeResults = 0
    @Option(help: "Let the balancer move the partitions, evening out records or load, instead of the test's cycles.") var balancer: BalancerMeasure?
    @Option(name: .customLong("balance-seconds"), help: "With --balancer: how long to follow its moves (1 ... 3600).") var balanceSeconds = 60

    enum BalancerMeasure: String, ExpressibleByArgument, CaseIterable {
        case records
        case load
    }
    @Option(help: "The learnstore binary to test (default: this one).") var binary: String?
    @Option(name: .customLong("work-dir"), help: "Scratch directory: new or empty (default: a new one under /tmp). Removed on success if this command created it; otherwise only the files it wrote are.") var workDir: String?

    func run() async throws {
        try await runCLI {
            let executable = RealProcessTest.executable(binary)
            guard (1...64).contains(tenants), cycles >= 1, (2...256).contains(partitions), (1...5).contains(nodesPerGroup), !fault.isEmpty else {
                throw CLIError.usage("--tenants must be 1 ... 64, --cycles at least 1, --partitions 2 ... 256, --nodes-per-group 1 ... 5")
            }
            guard let etcdBinary = EtcdProcess.binary() else { throw CLIError.usage("move-test needs the etcd binary on PATH (apt-get install etcd-server)") }
            let scratch = try RealProcessTest.scratch(workDir, prefix: "learnstore-moves-")
            let etcd = try await EtcdProcess.startCluster(members: 1, workDirectory: scratch.path, binary: etcdBinary)
            defer { for member in etcd { member.process.signal(SIGKILL) } }
            var tester = MoveTester(binary: executable, workDirectory: scratch.path, etcdEndpoints: etcd.map(\.clientURL))
            tester.cycles = cycles
            tester.tenants = tenants
            tester.partitions = partitions
            tester.nodesPerGroup = nodesPerGroup
            tester.faults = fault
            tester.fsync = fsync
            guard (0...10_000_000).contains(preload) else { throw CLIError.usage("--preload takes 0 to 10000000 records per tenant") }
            tester.preload = preload
            guard (0...1_000_000).contains(outcomeResults) else { throw CLIError.usage("--outcome-results takes 0 to 1000000") }
            tester.outcomeResults = outcomeResults
            guard (1...3600).contains(balanceSeconds) else { throw CLIError.usage("--balance-seconds takes 1 to 3600") }
            tester.balancer = balancer.map { $0 == .records ? .records : .load }
            tester.balanceSeconds = balanceSeconds
            try await RealProcessTest.report(failures: \.failures, failed: { $0.lost > 0 }) { try await tester.run(progress: $0) }
            for member in etcd { await member.stop(signal: SIGTERM) }
            scratch.clean(entries: MoveTester.entriesWritten + RealProcessTest.logs(in: scratch) { $0.hasPrefix("ga-") || $0.hasPrefix("gb-") })
        }
    }
}
