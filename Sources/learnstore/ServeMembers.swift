import Foundation
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreServer
import Logging
import NIOPosix
import Synchronization
import UnixSignals

/// Several servers in one process (`learnstore serve --member A --member B ...`): typically the nodes a
/// machine runs of different groups of a partitioned cluster, the primary of one and replicas of
/// others, so one process per machine serves every partition placed on it. They share the process's
/// event loops (instead of each bringing its own, which on a small machine contend for the same
/// cores); each keeps its own ports, data directory, write-ahead log, replication and control plane.
///
/// A member that asks to start again (a fenced primary rejoining, a replica that must copy its
/// primary) is built again in place while the others go on. A member that fails stops the process
/// (each other member shuts down gracefully) and the command exits 1, as `serve` does for one server:
/// its supervisor starts it again.
struct ServeMembers {
    struct Member {
        /// Its config file, naming it in messages.
        var file: String
        var setup: ServerSetup
    }

    let members: [Member]
    let eventLoops: Int
    let logger: Logger

    init(_ members: [Member], eventLoops: Int, logger: Logger) throws {
        try Self.checkDistinct(members)
        self.members = members
        self.eventLoops = eventLoops
        self.logger = logger
    }

    /// Two members on one port or one data directory would fail only once running (the second
    /// cannot bind or lock); say which two at once.
    static func checkDistinct(_ members: [Member]) throws {
        func clash(_ what: String, _ value: (Member) -> String?) throws {
            var seen: [String: String] = [:]
            for member in members {
                guard let key = value(member) else { continue }
                if let other = seen[key] {
                    throw CLIError.usage("members \(other) and \(member.file) have the same \(what) (\(key)): give each member its own")
                }
                seen[key] = member.file
            }
        }
        try clash("data-dir") { URL(fileURLWithPath: $0.setup.persistence.dataDirectory).standardizedFileURL.path }
        try clash("port") { $0.setup.configuration.port == 0 ? nil : "\($0.setup.configuration.host):\($0.setup.configuration.port)" }
        try clash("metrics-port") { $0.setup.configuration.metricsPort.map { "\($0)" } }
        try clash("replication-port") { member in member.setup.configuration.replication.flatMap { $0.port == 0 ? nil : "\($0.port)" } }
        try clash("node-id") { member in
            member.setup.configuration.replication.map { "\($0.cluster?.name ?? "")/\($0.nodeID)" }
        }
    }

    func run() async throws {
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: eventLoops)
        let running = RunningMembers()
        // Each running member stops on SIGTERM and SIGINT by itself; one between two of its starts
        // (starting again in place) must not start once more.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let stopsOnSignal = Task {
            for await _ in signals { _ = running.stopAll() }
        }
        defer { stopsOnSignal.cancel() }
        let failure = await withTaskGroup(of: (String, (any Error)?).self) { group -> (String, any Error)? in
            for (index, member) in members.enumerated() {
                group.addTask {
                    do {
                        try await runMember(member, at: index, on: loops, running: running)
                        return (member.file, nil)
                    } catch {
                        return (member.file, error)
                    }
                }
            }
            var first: (String, any Error)?
            for await (file, error) in group {
                guard let error, first == nil else { continue }
                first = (file, error)
                logger.critical("a member stopped with an error; stopping the others", metadata: ["member": "\(file)", "error": "\(error)"])
                for application in running.stopAll() { await application.triggerGracefulShutdown() }
            }
            return first
        }
        try? await loops.shutdownGracefully()
        if let (file, error) = failure { throw CLIError.failed("member \(file): \(error)") }
    }

    /// Runs one member until it stops, building it again each time it asks to start again.
    private func runMember(_ member: Member, at index: Int, on loops: MultiThreadedEventLoopGroup, running: RunningMembers) async throws {
        var logger = self.logger
        logger[metadataKey: "member"] = "\(member.setup.configuration.replication?.nodeID ?? member.file)"
        let clock = SystemClock()
        while true {
            let application = try await LearnStoreApplication(
                configuration: member.setup.configuration, persistence: member.setup.persistence, clock: clock, logger: logger,
                stopsOnSignals: true, sharedEventLoops: loops)
            // Another member failed while this one was being built: the process is stopping.
            guard running.add(application, at: index) else { return }
            try await member.setup.announce(application, clock: clock)
            do {
                try await application.run()
                running.remove(at: index)
                return
            } catch let restart as NodeRestartRequested {
                running.remove(at: index)
                logger.notice("starting the member again", metadata: ["reason": "\(restart.reason)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}

/// The members' servers while they run, to stop them all when one fails.
final class RunningMembers: Sendable {
    private struct State {
        var applications: [Int: LearnStoreApplication] = [:]
        var stopping = false
    }

    private let state = Mutex(State())

    /// False once the process is stopping: the member must not start.
    func add(_ application: LearnStoreApplication, at index: Int) -> Bool {
        state.withLock { state in
            guard !state.stopping else { return false }
            state.applications[index] = application
            return true
        }
    }

    func remove(at index: Int) {
        state.withLock { _ = $0.applications.removeValue(forKey: index) }
    }

    /// The members running now; none starts after this.
    func stopAll() -> [LearnStoreApplication] {
        state.withLock { state in
            state.stopping = true
            return Array(state.applications.values)
        }
    }
}
