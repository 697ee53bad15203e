import ArgumentParser
import Foundation
import LearnStoreTools

extension FailoverTester.Fault: ExpressibleByArgument {}

struct FailoverTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover-test",
        abstract: "Kill a real primary with SIGKILL under writes, promote a replica, and check that no acknowledged write was lost.",
        discussion: """
            Starts a primary and two replicas (synchronous replication, at least one replica in sync) on loopback. Each cycle, \
            writers spread over --tenants tenants write through the primary until it is killed with SIGKILL; the most up-to-date \
            replica is promoted as `learnstore cluster promote` does it; every write acknowledged so far is read back from the new \
            primary; the killed node is restarted as a replica, and once every replica has applied all the new primary holds, each \
            tenant's records are compared on all three nodes. Prints: cycles, acknowledged writes, lost, digest mismatches, and the \
            time from the kill to the first write acknowledged by the new primary (median, max). Exits 1 if anything was lost or differs.

            With --etcd, the tool starts a local etcd cluster (--etcd-members, the `etcd` binary from PATH) and the nodes run the \
            control plane: nobody promotes by hand; the time measured includes the controller noticing the dead primary. \
            --fault turns the cycles through other faults, under which writes must go on: the node holding the controller key, \
            or etcd's leader, killed with SIGKILL and started again; the report then adds the longest pause between acknowledged \
            writes, unplanned failovers (another primary, or the same one in a new epoch) and the error codes of unacknowledged writes.

            With --spares K the tool starts K more nodes, and every node runs with --replication-factor 3 and --replace-after 1: \
            the spares follow the primary without counting. The fault `member` kills a member replica with SIGKILL under writes, \
            waits until etcd's placement has a spare in its place, and starts the killed node again (it returns as a spare); the \
            report adds the time from the kill to the replacement. The fault `remove` removes a member replica that runs on, as \
            `learnstore cluster remove-node` does, and readmits it (it stays a spare); the report adds how long the removal took. \
            The fault `handover` moves the primary to a member replica with `learnstore cluster handover` while the writers go on \
            through one ClusterClient per tenant (following the primary, each write with an idempotency key); the report adds how \
            long each handover took, and a cycle whose primary is not the target one epoch on counts as an unplanned failover. \
            Every node, spares included, is compared at the end of a cycle.
            """)

    @Option(help: "Kill/promote cycles.") var cycles = 10
    @Option(help: "Concurrent writers.") var writers = 6
    @Option(help: "Tenants written (1 ... 64).") var tenants = 3
    @Option(help: "fsync policy of the nodes.") var fsync = "always"
    @Option(help: "The learnstore binary to test (default: this one).") var binary: String?
    @Flag(help: "Run the nodes with the etcd control plane (automatic failover).") var etcd = false
    @Option(name: .customLong("etcd-members"), help: "With --etcd: etcd processes to start (1 ... 5).") var etcdMembers = 3
    @Option(name: .customLong("pause-ms"), help: "With --etcd: stop the primary with SIGSTOP for this many milliseconds (past its 3 s lease) instead of killing it, then resume it: it must fence itself and start again in place as a replica, and must not have acknowledged a write the new primary lacks. The failover time is then until a replica is the primary.") var pauseMilliseconds: Int?
    @Option(name: .customLong("fault"), parsing: .upToNextOption, help: "With --etcd: the faults, one per cycle in turn: primary (kill -9 the primary), controller (kill -9 the node holding the controller key, then start it again; the primary's cycle when it is the primary), etcd-leader (kill -9 etcd's leader for 4 s, then start it again; needs 3 etcd members), member (kill -9 a member replica until a spare replaced it; needs --spares), remove (remove a member replica with the operator's procedure while it runs, then readmit it; needs --spares), handover (move the primary to a member replica with learnstore cluster handover). Writes must go on through all but the first; the report adds their longest pause between acknowledged writes.") var fault: [FailoverTester.Fault] = [.primary]
    @Option(help: "With --etcd: nodes beyond the three members, waiting as spares (0 ... 3).") var spares = 0
    @Option(name: .customLong("work-dir"), help: "Scratch directory: new or empty (default: a new one under /tmp). Removed on success if this command created it; otherwise only the files it wrote are.") var workDir: String?

    func run() async throws {
        try await runCLI {
            let executable = RealProcessTest.executable(binary)
            guard (1...64).contains(tenants), writers >= 1, cycles >= 1 else { throw CLIError.usage("--tenants must be 1 ... 64, --writers and --cycles at least 1") }
            let scratch = try RealProcessTest.scratch(workDir, prefix: "learnstore-failover-")
            var tester = FailoverTester(binary: executable, workDirectory: scratch.path, cycles: cycles)
            var etcdProcesses: [EtcdProcess] = []
            if etcd {
                guard (1...5).contains(etcdMembers) else { throw CLIError.usage("--etcd-members must be 1 ... 5") }
                guard let etcdBinary = EtcdProcess.binary() else { throw CLIError.usage("--etcd needs the etcd binary on PATH (apt-get install etcd-server)") }
                etcdProcesses = try await EtcdProcess.startCluster(members: etcdMembers, workDirectory: scratch.path, binary: etcdBinary)
                tester.etcdEndpoints = etcdProcesses.map(\.clientURL)
            }
            if let pauseMilliseconds {
                guard etcd, (1...60_000).contains(pauseMilliseconds) else { throw CLIError.usage("--pause-ms needs --etcd and must be 1 ... 60000") }
                tester.pauseMilliseconds = pauseMilliseconds
            }
            if fault != [.primary] {
                guard etcd, pauseMilliseconds == nil else { throw CLIError.usage("--fault needs --etcd and excludes --pause-ms") }
                guard !fault.contains(.etcdLeader) || etcdMembers >= 3 else { throw CLIError.usage("--fault etcd-leader needs --etcd-members 3 or more") }
                guard !fault.contains(.member) && !fault.contains(.remove) || spares >= 1 else {
                    throw CLIError.usage("--fault member and --fault remove need --spares 1 or more")
                }
                tester.faults = fault
                tester.etcdMembers = etcdProcesses
            }
            guard (0...3).contains(spares), spares == 0 || etcd else { throw CLIError.usage("--spares needs --etcd and must be 0 ... 3") }
            tester.spares = spares
            defer { for member in etcdProcesses { member.process.signal(SIGKILL) } }
            tester.writers = writers
            tester.tenants = tenants
            tester.fsync = fsync
            let tested = tester
            try await RealProcessTest.report(failures: \.failures, failed: { $0.lost > 0 || $0.digestMismatches > 0 }) { try await tested.run(progress: $0) }
            for member in etcdProcesses { await member.stop(signal: SIGTERM) }
            scratch.clean(entries: FailoverTester.entriesWritten + RealProcessTest.logs(in: scratch) { $0.hasPrefix("n") })
        }
    }
}
