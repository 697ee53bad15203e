import ArgumentParser
import LearnStoreEngine
import LearnStoreModel
import LearnStoreServer
import NIOPosix

extension ClusterCommand {
    struct Balancer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "balancer",
            abstract: "Show, turn on, change or turn off the balancer that moves a partition map's partitions by itself.",
            discussion: """
                Without --by or --off it prints the policy and what the balancer would do now. With --by \
                records or --by load it turns the balancer on, or replaces its terms (options not given take their \
                defaults): every 5 s the primary of the \
                map's first group weighs each group by the figures the groups' primaries publish, and when a \
                group's total strays from the mean by more than --tolerance percent, the mean is at least \
                --minimum-mean and no move is under way, it starts the one move that narrows the spread the \
                most, then waits --cooldown seconds before the next. --off deletes the policy. Moves it starts \
                are ordinary moves: `cluster cancel-move` calls one off (docs/CLUSTER.md, "Balancing").
                """)
        @Option(name: .customLong("etcd-endpoints"), help: "etcd client URLs (http://host:port,...).") var etcdEndpoints: String
        @Option(help: "The map's name.") var name: String
        @Option(help: "Turn the balancer on, evening out records or load (requests per second).") var by: Measure?
        @Option(help: "How far a group may stray from the mean before a move, in percent (1 ... 1000).") var tolerance = 20
        @Option(help: "Seconds between two moves the balancer starts (1 ... 86400).") var cooldown = 300
        @Option(name: .customLong("minimum-mean"), help: "The smallest mean per group worth a move (default 1000 records or 50 requests/s).")
        var minimumMean: Int?
        @Flag(help: "Turn the balancer off.") var off = false

        enum Measure: String, ExpressibleByArgument, CaseIterable {
            case records
            case load
        }

        func validate() throws {
            if off && by != nil { throw ValidationError("--off and --by exclude each other") }
        }

        func run() async throws {
            try await runCLI {
                let etcd = try EtcdClient(endpoints: etcdEndpoints.split(separator: ",").map(String.init), group: MultiThreadedEventLoopGroup.singleton)
                let key = ClusterConfiguration.balancerKey(name)
                guard let storedMap = try await etcd.get(ClusterConfiguration.partitionMapKey(name)) else {
                    throw LearnStoreError(.notFound, "etcd holds no partition map '\(name)'")
                }
                let map = try PartitionMap.decode(storedMap.value)
                if off {
                    _ = try await etcd.transaction(if: [], put: [], delete: [key])
                    printJSON(.object([("name", .string(name)), ("policy", .null)]))
                    return
                }
                var policy = try await etcd.get(key).map { try BalancerPolicy.decode($0.value) }
                if let by {
                    let measure: PartitionFigures.Measure = by == .records ? .records : .load
                    // The last move stays: the cool-down holds across a change of terms.
                    policy = try BalancerPolicy(measure: measure, tolerancePercent: tolerance, cooldownSeconds: cooldown, minimumMean: minimumMean,
                                                lastMove: policy?.lastMove)
                    try await etcd.put(key, policy!.encoded)
                }
                var fields: [(String, JSONValue)] = [("name", .string(name)), ("policy", policy?.json ?? .null)]
                if let policy {
                    let figures = try await Rebalance.publishedFigures(of: map, from: etcd)
                    fields.append(("now", Self.json(PartitionBalancer.decide(map: map, figures: figures, policy: policy, now: SystemClock().now().milliseconds))))
                }
                printJSON(.object(fields))
            }
        }

        static func json(_ decision: PartitionBalancer.Decision) -> JSONValue {
            func totals(_ values: [String: Int]) -> JSONValue { .object(values.sorted { $0.key < $1.key }.map { ($0.key, .number(String($0.value))) }) }
            switch decision {
            case .wait(let reason): return .object([("waits", .string(reason))])
            case .move(let partition, let to, let before, let after):
                return .object([("moves", .object([("partition", .number(String(partition))), ("to", .string(to))])), ("before", totals(before)), ("after", totals(after))])
            }
        }
    }
}
