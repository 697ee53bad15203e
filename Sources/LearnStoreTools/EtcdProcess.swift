import Foundation
import LearnStoreModel
import LearnStoreServer
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// A local etcd cluster of real `etcd` processes on loopback, for the cluster's tests and scripts.
public final class EtcdProcess: @unchecked Sendable {
    public let process: ChildProcess
    public let name: String
    public let clientURL: String
    public let logPath: String
    let binary: String
    let arguments: [String]

    init(process: ChildProcess, name: String, clientURL: String, logPath: String, binary: String, arguments: [String]) {
        self.process = process
        self.name = name
        self.clientURL = clientURL
        self.logPath = logPath
        self.binary = binary
        self.arguments = arguments
    }

    /// The same member started again on its data directory (after it was stopped), once it answers.
    public func restarted(timeout: Double = 60) async throws -> EtcdProcess {
        let process = try ChildProcess.spawn(binary, arguments, standardOutput: logPath, standardError: logPath)
        let member = EtcdProcess(process: process, name: name, clientURL: clientURL, logPath: logPath, binary: binary, arguments: arguments)
        try await member.waitUntilAnswering(deadline: Date(timeIntervalSinceNow: timeout))
        return member
    }

    /// Whether this member is its cluster's leader now (false when it does not answer).
    public func isLeader() async -> Bool {
        guard let client = try? EtcdClient(endpoints: [clientURL], group: MultiThreadedEventLoopGroup.singleton),
              let status = try? await client.memberStatus() else { return false }
        return status.memberID == status.leaderID
    }

    /// The `etcd` binary on PATH (Debian's `etcd-server` package), or nil.
    public static func binary() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/bin", "/usr/local/bin"] {
            let candidate = "\(directory)/etcd"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Starts `members` etcd processes forming one cluster, each with its data in `workDirectory/etcd-<i>`,
    /// and waits until every one answers.
    public static func startCluster(members: Int, workDirectory: String, binary: String, timeout: Double = 60) async throws -> [EtcdProcess] {
        // A port found free can be taken by another process before etcd binds it (tests running in
        // parallel open connections all the time): then start again on other ports.
        var attempt = 1
        while true {
            do {
                return try await startClusterOnce(members: members, workDirectory: workDirectory, binary: binary, timeout: timeout)
            } catch let error as LearnStoreError where attempt < 5 && error.message.contains("address already in use") {
                for index in 0..<members { try? FileManager.default.removeItem(atPath: workDirectory + "/etcd-\(index)") }
                attempt += 1
            }
        }
    }

    private static func startClusterOnce(members: Int, workDirectory: String, binary: String, timeout: Double) async throws -> [EtcdProcess] {
        let ports = try (0..<members).map { _ in (client: try FailoverTester.freePort(), peer: try FailoverTester.freePort()) }
        let initial = ports.enumerated().map { "etcd-\($0.offset)=http://127.0.0.1:\($0.element.peer)" }.joined(separator: ",")
        var started: [EtcdProcess] = []
        do {
            for (index, port) in ports.enumerated() {
                let name = "etcd-\(index)"
                let logPath = workDirectory + "/\(name).log"
                guard FileManager.default.createFile(atPath: logPath, contents: nil) else { throw LearnStoreError(.internalError, "cannot create \(logPath)") }
                let clientURL = "http://127.0.0.1:\(port.client)"
                let arguments = [
                    "--name", name, "--data-dir", workDirectory + "/\(name)",
                    "--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
                    "--listen-peer-urls", "http://127.0.0.1:\(port.peer)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(port.peer)",
                    "--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", "learnstore-\(ports[0].peer)",
                    // A member that comes back with a higher term would otherwise depose a working leader.
                    "--pre-vote",
                    // An election (1 to 2 election timeouts) must end well within the nodes' lease margin
                    // (docs/CLUSTER.md); on loopback 50 ms heartbeats are plenty.
                    "--heartbeat-interval", "50", "--election-timeout", "500",
                ]
                let process = try ChildProcess.spawn(binary, arguments, standardOutput: logPath, standardError: logPath)
                started.append(EtcdProcess(process: process, name: name, clientURL: clientURL, logPath: logPath, binary: binary, arguments: arguments))
            }
            let deadline = Date(timeIntervalSinceNow: timeout)
            for member in started { try await member.waitUntilAnswering(deadline: deadline) }
        } catch {
            for member in started { await member.stop(signal: SIGKILL) }
            throw error
        }
        return started
    }

    func waitUntilAnswering(deadline: Date) async throws {
        let client = try EtcdClient(endpoints: [clientURL], group: MultiThreadedEventLoopGroup.singleton)
        var last: (any Error)?
        while Date() < deadline {
            do {
                _ = try await client.range(prefix: "/learnstore/")
                return
            } catch {
                last = error
                if !process.isRunning { throw LearnStoreError(.connectionFailed, "etcd exited: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")") }
            }
            await pause(milliseconds: 50)
        }
        throw LearnStoreError(.timeout, "etcd \(name) did not answer: \(last.map { "\($0)" } ?? "")")
    }

    /// Sends `signal` and waits for the process to exit.
    public func stop(signal: Int32) async {
        await stopProcess(process, signal: signal)
    }
}
