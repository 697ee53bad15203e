import ArgumentParser
import Foundation
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import LearnStoreServer
import NIOPosix

/// `learnstore serve`'s replication settings (docs/REPLICATION.md).
struct ReplicationOptions: ParsableArguments {
    @Option(name: .customLong("node-id"), help: "This node's name in the cluster (letters, digits, '-', '_', '.').") var nodeID: String?
    @Option(name: .customLong("replication-port"), help: "Port of the replication port on --host; setting it turns replication on.") var replicationPort: Int?
    @Option(name: .customLong("cluster-secret-file"), help: "File holding the cluster's shared secret, at least 16 bytes (env LEARNSTORE_CLUSTER_SECRET may hold it).") var clusterSecretFile: String?
    @Option(name: .customLong("replicate-from"), help: "Start as a replica: the replication ports (host:port,...) of the nodes that may be the primary.") var replicateFrom: String?
    @Option(name: .customLong("replication-mode"), help: "sync (a write is acknowledged once every in-sync replica has it durable; the default) or async.") var replicationMode: String?
    @Option(name: .customLong("replica-lag-limit"), help: "Milliseconds an in-sync replica may fall behind before it leaves the in-sync set (default 2000).") var lagLimit: Int?
    @Option(name: .customLong("min-in-sync-replicas"), help: "Under sync, no write is acknowledged while fewer replicas are in sync (default 1; 0 lets a primary acknowledge alone).") var minInSync: Int?

    func configuration(_ settings: Settings, host: String) throws -> ReplicationConfiguration? {
        guard settings.string("replication-port", replicationPort.map { String($0) }) != nil else {
            for (flag, value) in [("node-id", nodeID), ("replicate-from", replicateFrom), ("replication-mode", replicationMode)] where settings.string(flag, value) != nil {
                throw CLIError.usage("--\(flag) needs --replication-port")
            }
            return nil
        }
        let port = try settings.int("replication-port", replicationPort, default: 0)
        guard (0...65535).contains(port) else { throw CLIError.usage("--replication-port must be 0 ... 65535") }
        guard let node = settings.string("node-id", nodeID) else { throw CLIError.usage("replication needs --node-id") }
        guard NodeCredential.isValidNodeID(node) else { throw CLIError.usage("--node-id must be 1-64 letters, digits, '-', '_' or '.'") }
        var configuration = ReplicationConfiguration(nodeID: node, port: port, secret: try ClusterSecret.load(settings, clusterSecretFile))
        configuration.host = host
        if let from = settings.string("replicate-from", replicateFrom) {
            let addresses = from.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !addresses.isEmpty, addresses.count <= 64, addresses.allSatisfy({ ClusterAddress.isValid($0) }) else {
                throw CLIError.usage("--replicate-from takes host:port[,host:port...] (at most 64)")
            }
            configuration.follow = addresses
        }
        if let mode = settings.string("replication-mode", replicationMode) {
            guard let parsed = ReplicaSetState.Mode(rawValue: mode) else { throw CLIError.usage("--replication-mode must be sync or async") }
            configuration.replicaSet.mode = parsed
        }
        let lag = try settings.int("replica-lag-limit", lagLimit, default: 2_000)
        guard (1...600_000).contains(lag) else { throw CLIError.usage("--replica-lag-limit must be 1 ... 600000 ms") }
        configuration.replicaSet.lagLimitMilliseconds = Int64(lag)
        let minimum = try settings.int("min-in-sync-replicas", minInSync, default: 1)
        guard (0...64).contains(minimum) else { throw CLIError.usage("--min-in-sync-replicas must be 0 ... 64") }
        configuration.replicaSet.minimumInSync = minimum
        return configuration
    }
}

enum ClusterSecret {
    static func load(_ settings: Settings, _ file: String?) throws -> [UInt8] {
        let secret: String
        if let path = settings.string("cluster-secret-file", file) {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIError.usage("cannot read cluster secret file \(path)") }
            secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
        } else if let raw = settings.environment["LEARNSTORE_CLUSTER_SECRET"], !raw.isEmpty {
            secret = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        } else {
            throw CLIError.usage("replication needs the cluster secret: --cluster-secret-file FILE or LEARNSTORE_CLUSTER_SECRET")
        }
        guard secret.utf8.count >= NodeCredential.minimumSecretBytes else {
            throw CLIError.usage("the cluster secret must be at least \(NodeCredential.minimumSecretBytes) bytes")
        }
        return Array(secret.utf8)
    }
}

enum ClusterAddress {
    static func isValid(_ address: String) -> Bool {
        guard let colon = address.lastIndex(of: ":"), colon != address.startIndex, let port = Int(address[address.index(after: colon)...]) else { return false }
        return (1...65535).contains(port)
    }
}

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Inspect and promote replication nodes through their replication ports.",
        subcommands: [Status.self, Promote.self])

    struct NodeOptions: ParsableArguments {
        @Option(help: "Replication ports of the nodes (host:port,...).") var nodes: String
        @Option(name: .customLong("cluster-secret-file"), help: "File holding the cluster's shared secret (env LEARNSTORE_CLUSTER_SECRET may hold it).") var clusterSecretFile: String?

        var addresses: [String] {
            get throws {
                let list = nodes.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                guard !list.isEmpty, list.allSatisfy({ ClusterAddress.isValid($0) }) else { throw CLIError.usage("--nodes takes host:port[,host:port...]") }
                return list
            }
        }

        func credential() throws -> NodeCredential {
            try NodeCredential(secret: ClusterSecret.load(try Settings(configFile: nil), clusterSecretFile))
        }
    }

    /// Each node's STATUS document, or why it did not answer.
    static func statuses(_ options: NodeOptions) async throws -> [(address: String, status: JSONValue?, error: String?)] {
        let credential = try options.credential()
        var results: [(String, JSONValue?, String?)] = []
        for address in try options.addresses {
            do {
                let answer = try await NodeClient.request(
                    address, credential: credential, nodeID: "operator", opcode: ReplicationOpcode.status, group: MultiThreadedEventLoopGroup.singleton)
                let text = try answer.reply!.readPayload { (r) throws(DecodeError) in try r.readString() }
                results.append((address, try JSONValue.parse(text), nil))
            } catch {
                results.append((address, nil, "\(error)"))
            }
        }
        return results
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print each node's role, epoch, LSNs, in-sync set and replica lag (JSON Lines, one node per line).")
        @OptionGroup var options: NodeOptions

        func run() async throws {
            try await runCLI {
                for result in try await ClusterCommand.statuses(options) {
                    printJSON(.object([("address", .string(result.address)), ("status", result.status ?? .null), ("error", result.error.map { .string($0) } ?? .null)]))
                }
            }
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a replica the primary of a new epoch.",
            discussion: """
                Asks every node in --nodes for its status and promotes the replica holding the most of the log (the \
                highest durable LSN: it holds every acknowledged write while at most one node is lost under \
                --min-in-sync-replicas 1), or --node if given and no reachable replica holds more. Refuses while a \
                reachable node is still a primary, unless --force: stop or fence the old primary first.
                """)
        @OptionGroup var options: NodeOptions
        @Option(help: "The replica to promote (host:port, one of --nodes).") var node: String?
        @Flag(help: "Promote even though a reachable node is a primary or a replica holds more of the log.") var force = false

        func run() async throws {
            try await runCLI {
                let statuses = try await ClusterCommand.statuses(options)
                func field(_ status: JSONValue?, _ name: String) -> JSONValue? { status?[name] }
                let primaries = statuses.filter { field($0.status, "role")?.stringValue == "primary" }
                if !primaries.isEmpty && !force {
                    throw CLIError.usage("\(primaries.map(\.address).joined(separator: ", ")) is still a primary; stop it first or pass --force")
                }
                let replicas = statuses.filter { field($0.status, "role")?.stringValue == "replica" }
                    .map { (address: $0.address, durable: field($0.status, "durable_lsn")?.int64Value ?? 0) }
                guard let best = replicas.max(by: { $0.durable < $1.durable }) else { throw CLIError.failed("no reachable replica to promote") }
                var chosen = best.address
                if let node {
                    guard let asked = replicas.first(where: { $0.address == node }) else { throw CLIError.usage("\(node) is not a reachable replica in --nodes") }
                    if asked.durable < best.durable && !force {
                        throw CLIError.usage("\(best.address) holds more of the log (LSN \(best.durable) against \(asked.durable)); promote it, or pass --force")
                    }
                    chosen = node
                }
                let answer = try await NodeClient.request(
                    chosen, credential: try options.credential(), nodeID: "operator", opcode: ReplicationOpcode.promote,
                    group: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(60))
                let reply = try answer.reply!.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodePromoteReply(from: &r) }
                printJSON(.object([
                    ("promoted", .string(chosen)), ("node_id", .string(answer.peerNodeID)),
                    ("epoch", .number(String(reply.epoch))), ("first_lsn", .number(String(reply.firstLSN))),
                ]))
            }
        }
    }
}
