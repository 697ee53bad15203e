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
    @Option(name: .customLong("etcd-endpoints"), help: "etcd client URLs (http://host:port,...): etcd decides the node's role, finds its primary and fails over by itself (docs/CLUSTER.md).") var etcdEndpoints: String?
    @Option(name: .customLong("cluster-name"), help: "With etcd: the cluster's name; its keys live under /learnstore/<name>/ (default learnstore).") var clusterName: String?
    @Option(name: .customLong("lease-ttl"), help: "With etcd: seconds of the node's lease, 2 ... 60 (default 3); a primary that cannot renew it for that less a margin (a sixth, at least 0.5 s) stops acknowledging.") var leaseTTL: Int?
    @Option(name: .customLong("replication-factor"), help: "With etcd: the members the controller keeps, 2 ... 64 (default: every node); further nodes wait as spares. Give every node the same value.") var replicationFactor: Int?
    @Option(name: .customLong("replace-after"), help: "With etcd and --replication-factor: seconds a member may be gone before a spare takes its place, 1 ... 86400 (default 30).") var replaceAfter: Int?
    @Option(name: .customLong("machine"), help: "With etcd: the machine this node runs on (letters, digits, '-', '_', '.'; default: none, the node counts as a machine of its own). The controller keeps a group's members on different machines where spares allow, and in a partitioned cluster promotes onto, and hands primaries over to, machines running fewer other groups' primaries.") var machine: String?
    @Option(name: .customLong("partition-map"), help: "With etcd: the partition map this node's group (--cluster-name) is one of; the node serves only the tenants of its group's partitions (docs/CLUSTER.md, \"Partitions\").") var partitionMap: String?

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
        if let endpoints = settings.string("etcd-endpoints", etcdEndpoints) {
            guard configuration.follow.isEmpty else { throw CLIError.usage("--replicate-from and --etcd-endpoints exclude each other: etcd names the primary") }
            guard port != 0 else { throw CLIError.usage("--etcd-endpoints needs a fixed --replication-port (other nodes find it in etcd)") }
            let list = endpoints.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !list.isEmpty, list.count <= 16 else { throw CLIError.usage("--etcd-endpoints takes 1 ... 16 URLs") }
            var cluster = ClusterConfiguration(endpoints: list)
            if let name = settings.string("cluster-name", clusterName) {
                guard NodeCredential.isValidNodeID(name) else { throw CLIError.usage("--cluster-name must be 1-64 letters, digits, '-', '_' or '.'") }
                cluster.name = name
            }
            let ttl = try settings.int("lease-ttl", leaseTTL, default: 3)
            guard (2...60).contains(ttl) else { throw CLIError.usage("--lease-ttl must be 2 ... 60 seconds (etcd grants no less than 2)") }
            cluster.leaseSeconds = ttl
            if settings.string("replication-factor", replicationFactor.map { String($0) }) != nil {
                let factor = try settings.int("replication-factor", replicationFactor, default: 3)
                guard (2...64).contains(factor) else { throw CLIError.usage("--replication-factor must be 2 ... 64") }
                guard factor > 2 * configuration.replicaSet.minimumInSync else {
                    throw CLIError.usage("--replication-factor must be above twice --min-in-sync-replicas, or no promotion could ever succeed")
                }
                cluster.replicationFactor = factor
            }
            if cluster.replicationFactor == nil, settings.string("replace-after", replaceAfter.map { String($0) }) != nil {
                throw CLIError.usage("--replace-after needs --replication-factor (without it every node is a member and none is replaced)")
            }
            let replace = try settings.int("replace-after", replaceAfter, default: 30)
            guard (1...86_400).contains(replace) else { throw CLIError.usage("--replace-after must be 1 ... 86400 seconds") }
            cluster.replaceAfterMilliseconds = Int64(replace) * 1000
            if let machine = settings.string("machine", machine) {
                guard NodeCredential.isValidNodeID(machine) else { throw CLIError.usage("--machine must be 1-64 letters, digits, '-', '_' or '.'") }
                cluster.machine = machine
            }
            if let map = settings.string("partition-map", partitionMap) {
                guard PartitionMap.isValidGroupName(map) else { throw CLIError.usage("--partition-map must be 1-64 letters, digits, '-', '_' or '.'") }
                cluster.partitionMapName = map
            }
            _ = try EtcdClient(endpoints: list, group: MultiThreadedEventLoopGroup.singleton)
            configuration.cluster = cluster
        } else {
            for (flag, value) in [
                ("cluster-name", clusterName), ("lease-ttl", leaseTTL.map { String($0) }), ("replication-factor", replicationFactor.map { String($0) }),
                ("replace-after", replaceAfter.map { String($0) }), ("partition-map", partitionMap), ("machine", machine),
            ] where settings.string(flag, value) != nil {
                throw CLIError.usage("--\(flag) needs --etcd-endpoints")
            }
        }
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

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Inspect and promote replication nodes; remove and readmit members of a cluster with etcd; write and read partition maps.",
        subcommands: [Status.self, Promote.self, Handover.self, RemoveNode.self, ReadmitNode.self, CreatePartitionMap.self, ShowPartitionMap.self, AddGroup.self, MovePartition.self, CancelMove.self, Rebalance.self, Balancer.self])

    struct EtcdOptions: ParsableArguments {
        @Option(name: .customLong("etcd-endpoints"), help: "etcd client URLs (http://host:port,...) of the cluster's control plane.") var etcdEndpoints: String
        @Option(name: .customLong("cluster-name"), help: "The cluster's name.") var clusterName = "learnstore"

        var configuration: ClusterConfiguration {
            get throws {
                let list = etcdEndpoints.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                guard !list.isEmpty, list.count <= 16 else { throw CLIError.usage("--etcd-endpoints takes 1 ... 16 URLs") }
                guard NodeCredential.isValidNodeID(clusterName) else { throw CLIError.usage("--cluster-name must be 1-64 letters, digits, '-', '_' or '.'") }
                var configuration = ClusterConfiguration(endpoints: list)
                configuration.name = clusterName
                return configuration
            }
        }
    }

    struct NodeOptions: ParsableArguments {
        @Option(help: "Replication ports of the nodes (host:port,...).") var nodes: String?
        @Option(name: .customLong("cluster-secret-file"), help: "File holding the cluster's shared secret (env LEARNSTORE_CLUSTER_SECRET may hold it).") var clusterSecretFile: String?

        var addresses: [String] {
            get throws {
                guard let nodes else { throw CLIError.usage("--nodes is required") }
                let list = nodes.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                guard !list.isEmpty, list.allSatisfy({ ClusterAddress.isValid($0) }) else { throw CLIError.usage("--nodes takes host:port[,host:port...]") }
                return list
            }
        }

        func credential() throws -> NodeCredential {
            try NodeCredential(secret: ClusterSecret.load(try Settings(configFile: nil), clusterSecretFile))
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print each node's role, epoch, LSNs, in-sync set and replica lag (JSON Lines, one node per line).",
            discussion: """
                With --etcd-endpoints the first line is the control plane as etcd holds it: the controller, the placement \
                (epoch, primary, members) and the registered nodes with their leases; the nodes are then the placement's \
                members unless --nodes names them. With --partition-map instead of --cluster-name, the whole partitioned \
                cluster: first the map's moves, the balancer's policy and each group's partitions, records and load, then a \
                line for each group's control plane, then a line of machines (the groups whose primary runs on each, and \
                its nodes), then every group's nodes.
                """)
        @OptionGroup var options: NodeOptions
        @Option(name: .customLong("etcd-endpoints"), help: "etcd client URLs (http://host:port,...) of a cluster with a control plane.") var etcdEndpoints: String?
        @Option(name: .customLong("cluster-name"), help: "With --etcd-endpoints: the cluster's name.") var clusterName = "learnstore"
        @Option(name: .customLong("partition-map"), help: "With --etcd-endpoints: every group of this partition map.") var partitionMap: String?

        func run() async throws {
            try await runCLI {
                var addresses = options.nodes == nil ? [] : try options.addresses
                if let etcdEndpoints {
                    let endpoints = etcdEndpoints.split(separator: ",").map(String.init)
                    var groups = [clusterName]
                    if let partitionMap {
                        let etcd = try EtcdClient(endpoints: endpoints, group: MultiThreadedEventLoopGroup.singleton)
                        guard let stored = try await etcd.get(ClusterConfiguration.partitionMapKey(partitionMap)) else {
                            throw LearnStoreError(.notFound, "etcd holds no partition map '\(partitionMap)'")
                        }
                        let map = try PartitionMap.decode(stored.value)
                        let figures = try await Rebalance.publishedFigures(of: map, from: etcd)
                        let policy = try await etcd.get(ClusterConfiguration.balancerKey(partitionMap)).map { kv throws(LearnStoreError) in try BalancerPolicy.decode(kv.value) }
                        printJSON(.object([
                            ("partition_map", .string(partitionMap)), ("version", .number(String(map.version))), ("moves", map.json["moves"] ?? .null),
                            ("balancer", policy?.json ?? .null), ("groups", ShowPartitionMap.groups(of: map, figures)),
                        ]))
                        groups = map.groups
                    }
                    var views: [(group: String, view: ClusterView)] = []
                    for name in groups {
                        var cluster = ClusterConfiguration(endpoints: endpoints)
                        cluster.name = name
                        let view = try await ClusterView.read(cluster, group: MultiThreadedEventLoopGroup.singleton)
                        printJSON(.object((partitionMap == nil ? [] : [("group", .string(name))]) + [("etcd", view.json)]))
                        if options.nodes == nil { addresses += view.placement.map { $0.members.values.sorted() } ?? [] }
                        views.append((name, view))
                    }
                    if partitionMap != nil { printJSON(.object([("machines", ClusterView.machines(of: views))])) }
                }
                guard !addresses.isEmpty else { throw CLIError.usage("give --nodes or --etcd-endpoints") }
                let statuses = await ClusterPromotion.statuses(addresses, credential: try options.credential(), group: MultiThreadedEventLoopGroup.singleton)
                for result in statuses {
                    printJSON(.object([("address", .string(result.address)), ("status", result.status ?? .null), ("error", result.error.map { .string($0) } ?? .null)]))
                }
            }
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a replica the primary of a new epoch.",
            discussion: """
                --nodes must list every node of the cluster. The promotion needs all but --min-in-sync of them \
                reachable (and more than twice --min-in-sync nodes in all). It picks an epoch above every epoch the \
                reachable nodes know or have promised and has all but --min-in-sync of the nodes promise it (a \
                primary of an older epoch that promises stops taking writes; a replica that promises stops taking \
                an older primary's records). Then it reads the status of the nodes that promised again and promotes \
                the most up-to-date of them: the newest epoch its log is in, then the most of the log (or \
                --node, if none is more up to date). Every acknowledged write is on one of them, and any later \
                promotion reaches one that knows this one. Refuses while a reachable node is still a primary, \
                unless --force.
                """)
        @OptionGroup var options: NodeOptions
        @Option(help: "The replica to promote (host:port, one of --nodes).") var node: String?
        @Option(name: .customLong("min-in-sync"), help: "The cluster's --min-in-sync-replicas.") var minimumInSync = 1
        @Flag(help: "Promote even though a reachable node is a primary, too few nodes answer, or a replica is more up to date.") var force = false

        func run() async throws {
            try await runCLI {
                let outcome = try await ClusterPromotion.promote(
                    try options.addresses, credential: try options.credential(), minimumInSync: minimumInSync, node: node, force: force,
                    group: MultiThreadedEventLoopGroup.singleton)
                printJSON(.object([
                    ("promoted", .string(outcome.address)), ("node_id", .string(outcome.nodeID)),
                    ("epoch", .number(String(outcome.epoch))), ("first_lsn", .number(String(outcome.firstLSN))),
                    ("promised_by", .number(String(outcome.promisedBy))),
                ]))
            }
        }
    }

    struct Handover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move the primary to another member without a failure (before stopping its machine, or to spread primaries).",
            discussion: """
                Asks the cluster's controller (in etcd) to make --to the primary. The controller stops the primary's \
                client writes (they are answered NOT_PRIMARY and retried by clients), waits until --to holds every \
                write and each is acknowledged, lets the primary fence itself, and promotes --to (epoch + 1); the old \
                primary starts again as a replica. Refused unless --to is a registered member counted as in sync. The \
                controller gives up when --to does not catch up within 3 s (the primary takes writes again) or when a \
                promotion could not follow (fewer than all but --min-in-sync-replicas members answer). Prints the new \
                placement's {"primary", "epoch"}; exits 1 with the controller's reason when it gave up.
                """)
        @OptionGroup var etcd: EtcdOptions
        @Option(help: "The member to make the primary.") var to: String
        @Option(help: "Seconds to wait for the outcome.") var timeout = 30

        func run() async throws {
            try await runCLI {
                guard NodeCredential.isValidNodeID(to) else { throw CLIError.usage("--to must be a node id") }
                guard (1...3600).contains(timeout) else { throw CLIError.usage("--timeout must be 1 ... 3600 seconds") }
                let placement = try await ClusterHandover.request(
                    to, configuration: try etcd.configuration, group: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(timeout))
                printJSON(.object([("primary", .string(placement.primary)), ("epoch", .number(String(placement.epoch)))]))
            }
        }
    }

    struct RemoveNode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove-node", abstract: "Remove a member from a cluster for good (a machine that will not come back, or one being retired).",
            discussion: """
                Marks the node leaving in etcd's placement: it still answers promotions, but the primary no longer counts \
                it as in sync. Then waits until the primary no longer counts it and has its other in-sync replicas, and \
                all but --min-in-sync-replicas of the members answer without a promise of a newer epoch; then drops it \
                from the members and records it as removed, so that the controller does not add it back while it stays \
                registered. Refuses the primary (stop it first: the controller promotes another member) and a removal \
                that would leave 2m members or fewer (m: the primary's --min-in-sync-replicas): start a replacement \
                node first (with a spare registered under a replication factor, it marks the node and waits for the \
                spare to join instead). Prints {"removed": ID} once done; on timeout the node stays marked leaving and the command \
                can be run again, or the removal called off with readmit-node.
                """)
        @OptionGroup var etcd: EtcdOptions
        @Option(name: .customLong("cluster-secret-file"), help: "File holding the cluster's shared secret (env LEARNSTORE_CLUSTER_SECRET may hold it).") var clusterSecretFile: String?
        @Option(help: "The node id to remove.") var node: String
        @Option(help: "Seconds to wait for the conditions.") var timeout = 60

        func run() async throws {
            try await runCLI {
                guard NodeCredential.isValidNodeID(node) else { throw CLIError.usage("--node must be a node id") }
                guard (1...3600).contains(timeout) else { throw CLIError.usage("--timeout must be 1 ... 3600 seconds") }
                let credential = try NodeCredential(secret: ClusterSecret.load(try Settings(configFile: nil), clusterSecretFile))
                try await ClusterMembership.remove(
                    node, configuration: try etcd.configuration, credential: credential, group: MultiThreadedEventLoopGroup.singleton,
                    timeout: .seconds(timeout), progress: { reason in FileHandle.standardError.write(Data("waiting: \(reason)\n".utf8)) })
                printJSON(.object([("removed", .string(node))]))
            }
        }
    }

    struct ReadmitNode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "readmit-node", abstract: "Let a removed node id become a member again, or call off a removal under way.",
            discussion: """
                A removed node then joins when it registers, as a new replica would: it copies what it lacks from the primary \
                before it counts as in sync. A node still marked leaving (a remove-node that timed out) is a member again at once \
                and counts as in sync once it holds every acknowledged write.
                """)
        @OptionGroup var etcd: EtcdOptions
        @Option(help: "The removed node id.") var node: String

        func run() async throws {
            try await runCLI {
                guard NodeCredential.isValidNodeID(node) else { throw CLIError.usage("--node must be a node id") }
                guard try await ClusterMembership.readmit(node, configuration: try etcd.configuration, group: MultiThreadedEventLoopGroup.singleton) else {
                    throw CLIError.usage("\(node) is neither a removed node nor one being removed in this cluster")
                }
                printJSON(.object([("readmitted", .string(node))]))
            }
        }
    }
}
