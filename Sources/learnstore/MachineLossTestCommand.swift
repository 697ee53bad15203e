import ArgumentParser
import Foundation
import LearnStoreTools
#if canImport(Glibc)
import Glibc
#endif

struct MachineLossTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "machine-loss-test",
        abstract: "Kill whole machines of a partitioned cluster (one process per machine) under writes, and check that no acknowledged write was lost.",
        discussion: """
            Starts a local etcd (the `etcd` binary from PATH) and three groups of three nodes sharing a partition map of 12 \
            partitions, on three machines: each machine is one `learnstore serve --member` process holding one node of each \
            group, so it runs one group's primary and replicas of the other two. One writer per tenant writes without pause \
            through a ClusterClient seeded with every node. Each cycle kills the next machine's process with SIGKILL, waits \
            until every tenant's writes are acknowledged again, starts the process again and waits until each of its members \
            is a primary or an in-sync replica. At the end every acknowledged write is read back from its tenant's group. \
            Prints: cycles, acknowledged writes, lost, unacknowledged attempts by error, the longest pause of any tenant's \
            writes after each kill (median, max) and the time until the restarted machine's members followed again. Exits 1 \
            if anything was lost.
            """)

    @Option(help: "Machines killed, in turn.") var cycles = 3
    @Option(help: "Tenants written, one writer each (3 ... 64).") var tenants = 9
    @Option(help: "fsync policy of the nodes.") var fsync = "always"
    @Option(help: "The learnstore binary to test (default: this one).") var binary: String?
    @Option(name: .customLong("work-dir"), help: "Scratch directory: new or empty (default: a new one under /tmp). Removed on success if this command created it; otherwise only the files it wrote are.") var workDir: String?

    func run() async throws {
        try await runCLI {
            let executable = RealProcessTest.executable(binary)
            guard (3...64).contains(tenants), (1...1000).contains(cycles) else { throw CLIError.usage("--tenants must be 3 ... 64, --cycles 1 ... 1000") }
            guard ["always", "everysec", "off"].contains(fsync) else { throw CLIError.usage("--fsync must be always, everysec or off") }
            guard let etcdBinary = EtcdProcess.binary() else { throw CLIError.usage("machine-loss-test needs the etcd binary on PATH (apt-get install etcd-server)") }
            let scratch = try RealProcessTest.scratch(workDir, prefix: "learnstore-machines-")
            let etcd = try await EtcdProcess.startCluster(members: 1, workDirectory: scratch.path, binary: etcdBinary)
            defer { for member in etcd { member.process.signal(SIGKILL) } }
            var tester = MachineLossTester(binary: executable, workDirectory: scratch.path, etcdEndpoints: etcd.map(\.clientURL))
            tester.cycles = cycles
            tester.tenants = tenants
            tester.fsync = fsync
            try await RealProcessTest.report(failures: \.failures, failed: { $0.lost > 0 }) { try await tester.run(progress: $0) }
            for member in etcd { await member.stop(signal: SIGTERM) }
            scratch.clean(entries: MachineLossTester.entriesWritten + RealProcessTest.logs(in: scratch) { $0.hasPrefix("m") })
        }
    }
}
