import ArgumentParser
import LearnStoreEngine
import LearnStoreModel
import LearnStoreServer
import NIOPosix

extension ClusterCommand {
    struct CreatePartitionMap: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create-partition-map",
            abstract: "Write a partition map to etcd: which group (a cluster name) holds each partition of tenants.",
            discussion: """
                A tenant's partition is FNV-1a (64-bit) of its id modulo --partitions, unless an --override names it; \
                partition p belongs to group p mod (number of groups). Each group is a cluster of its own (its nodes \
                started with --cluster-name GROUP --partition-map NAME): its own primary, replicas and failover. \
                The command refuses to replace an existing map: a map changes only by `cluster add-group`, \
                `cluster move-partition` and `cluster cancel-move`.
                """)
        @Option(name: .customLong("etcd-endpoints"), help: "etcd client URLs (http://host:port,...).") var etcdEndpoints: String
        @Option(help: "The map's name (the nodes' --partition-map).") var name: String
        @Option(help: "Number of partitions, 1 ... \(PartitionMap.maximumPartitions).") var partitions = 256
        @Option(help: "The groups' names (their nodes' --cluster-name), comma-separated, 1 ... \(PartitionMap.maximumGroups).") var groups: String
        @Option(name: .customLong("override"), help: "TENANT=PARTITION: place a tenant in a partition of your choosing (repeatable).") var overrides: [String] = []

        func run() async throws {
            try await runCLI {
                guard PartitionMap.isValidGroupName(name) else { throw CLIError.usage("--name must be 1-64 letters, digits, '-', '_' or '.'") }
                var placed: [String: Int] = [:]
                for entry in overrides {
                    let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                    guard parts.count == 2, let partition = Int(parts[1]) else { throw CLIError.usage("--override takes TENANT=PARTITION, not '\(entry)'") }
                    placed[parts[0]] = partition
                }
                let map = try PartitionMap(partitions: partitions, groups: groups.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) },
                                           overrides: placed)
                let etcd = try EtcdClient(endpoints: etcdEndpoints.split(separator: ",").map(String.init), group: MultiThreadedEventLoopGroup.singleton)
                let key = ClusterConfiguration.partitionMapKey(name)
                guard try await etcd.transaction(if: [.createRevision(key, 0)], put: [(key, map.encoded, 0)]) else {
                    throw LearnStoreError(.conflict, "etcd already holds a partition map '\(name)'; change it with cluster add-group, move-partition or cancel-move")
                }
                printJSON(.object([("name", .string(name)), ("map", map.json)]))
            }
        }
    }

    struct ShowPartitionMap: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show-partition-map", abstract: "Print a partition map, or the partition and group of given tenants.",
            discussion: """
                With the map it prints each group's partitions, records and load (requests per second over the \
                last minute, of the partitions measured that long), as the group's primary last published them, \
                and how old those figures are.
                """)
        @Option(name: .customLong("etcd-endpoints"), help: "etcd client URLs (http://host:port,...).") var etcdEndpoints: String
        @Option(help: "The map's name.") var name: String
        @Option(help: "Tenant ids, comma-separated: print each one's partition and group instead of the map.") var tenants: String?

        func run() async throws {
            try await runCLI {
                let etcd = try EtcdClient(endpoints: etcdEndpoints.split(separator: ",").map(String.init), group: MultiThreadedEventLoopGroup.singleton)
                guard let stored = try await etcd.get(ClusterConfiguration.partitionMapKey(name)) else {
                    throw LearnStoreError(.notFound, "etcd holds no partition map '\(name)'")
                }
                let map = try PartitionMap.decode(stored.value)
                guard let tenants else {
                    let figures = try await Rebalance.publishedFigures(of: map, from: etcd)
                    printJSON(.object([("name", .string(name)), ("map", map.json), ("groups", Self.groups(of: map, figures))]))
                    return
                }
                for tenant in tenants.split(separator: ",").map(String.init) {
                    printJSON(.object([("tenant", .string(tenant)), ("partition", .number(String(map.partition(of: tenant)))), ("group", .string(map.group(of: tenant)))]))
                }
            }
        }

        /// Each group's partitions, and its totals by the figures its primary published.
        static func groups(of map: PartitionMap, _ figures: [String: PartitionFigures]) -> JSONValue {
            let now = SystemClock().now().milliseconds
            func number(_ value: Int) -> JSONValue { .number(String(value)) }
            return .object(map.groups.map { group in
                let held = (0..<map.partitions).filter { map.holder(of: $0) == group }
                var fields: [(String, JSONValue)] = [("partitions", number(held.count))]
                if let published = figures[group] {
                    let measured = held.filter { published.requestsPerSecond[$0] != nil }
                    fields += [
                        ("records", number(held.map { published.records[$0] ?? 0 }.reduce(0, +))),
                        ("requests_per_second", number(measured.map { published.requestsPerSecond[$0]! }.reduce(0, +))),
                        ("partitions_with_load_measured", number(measured.count)),
                        ("figures_age_ms", .number(String(now - published.at))),
                    ]
                }
                return (group, .object(fields))
            })
        }
    }
}
