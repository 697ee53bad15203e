import ArgumentParser
import LearnStoreModel
import LearnStoreServer
import NIOPosix

extension ClusterCommand {
    /// Applies `change` to the map in etcd in a transaction guarded by the map's revision, again on a
    /// concurrent change (a move completing meanwhile).
    static func changePartitionMap(
        endpoints: String, name: String, _ change: (PartitionMap) throws(LearnStoreError) -> PartitionMap
    ) async throws(LearnStoreError) -> PartitionMap {
        let etcd = try EtcdClient(endpoints: endpoints.split(separator: ",").map(String.init), group: MultiThreadedEventLoopGroup.singleton)
        let key = ClusterConfiguration.partitionMapKey(name)
        for _ in 0..<20 {
            guard let stored = try await etcd.get(key) else { throw LearnStoreError(.notFound, "etcd holds no partition map '\(name)'") }
            let changed = try change(try PartitionMap.decode(stored.value))
            if try await etcd.transaction(if: [.modRevision(key, stored.modRevision)], put: [(key, changed.encoded, 0)]) { return changed }
        }
        throw LearnStoreError(.conflict, "the partition map '\(name)' kept changing under this command; run it again")
    }

    /// Polls etcd's map until move `move` of `partition` is done; returns the seconds since `started`.
    static func waitForMove(
        endpoints: String, name: String, partition: Int, move: UInt64, to: String, from: String, started: ContinuousClock.Instant, within seconds: Int
    ) async throws -> Double {
        let etcd = try EtcdClient(endpoints: endpoints.split(separator: ",").map(String.init), group: MultiThreadedEventLoopGroup.singleton)
        let deadline = started + .seconds(seconds)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            guard let stored = try? await etcd.get(ClusterConfiguration.partitionMapKey(name)), let current = try? PartitionMap.decode(stored.value) else { continue }
            guard current.moves[partition]?.id != move else { continue }
            guard current.holder(of: partition) == to else {
                throw LearnStoreError(.conflict, "move \(move) of partition \(partition) was called off; it stays in group \(from)")
            }
            let elapsed = ContinuousClock.now - started
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        }
        throw LearnStoreError(.timeout, "move \(move) of partition \(partition) has not completed within \(seconds) s; it goes on (see the log of group \(to)'s primary), or call it off with cluster cancel-move")
    }

    struct AddGroup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-group",
            abstract: "Add a group to a partition map, holding no partition yet (start its nodes after, then move partitions to it).")
        @Option(name: .customLong("etcd-endpoints"), help: "etcd client URLs (http://host:port,...).") var etcdEndpoints: String
        @Option(help: "The map's name.") var name: String
        @Option(help: "The new group's name (its nodes' --cluster-name).") var group: String

        func run() async throws {
            try await runCLI {
                let map = try await ClusterCommand.changePartitionMap(endpoints: etcdEndpoints, name: name) { (map) throws(LearnStoreError) in
                    try map.addingGroup(group)
                }
                printJSON(.object([("name", .string(name)), ("map", map.json)]))
            }
        }
    }

    struct MovePartition: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "move-partition",
            abstract: "Move a partition's tenants to another group of the map.",
            discussion: """
                Starts the move in etcd: the group holding the partition stops taking its tenants' writes \
                (they get LOADING, which clients retry), the other group's primary copies the tenants from it \
                and completes the move once its copy is acknowledged; clients then follow MOVED. Reads go on \
                in the old group until then. A move survives failovers and restarts of either group (it is \
                resumed from the start); `cluster cancel-move` calls it off. docs/CLUSTER.md, "Moving a partition".
                """)
        @Option(name: .customLong("etcd-endpoints"), help: "etcd client URLs (http://host:port,...).") var etcdEndpoints: String
        @Option(help: "The map's name.") var name: String
        @Option(help: "The partition to move.") var partition: Int
        @Option(help: "The group to move it to.") var to: String
        @Option(help: "Wait up to this many seconds for the move to complete (0: return once it has started).") var wait = 0

        func run() async throws {
            try await runCLI {
                guard (0...86_400).contains(wait) else { throw CLIError.usage("--wait takes 0 to 86400 seconds") }
                let started = ContinuousClock.now
                let map = try await ClusterCommand.changePartitionMap(endpoints: etcdEndpoints, name: name) { (map) throws(LearnStoreError) in
                    try map.startingMove(of: partition, to: to)
                }
                guard let move = map.moves[partition] else { throw LearnStoreError(.internalError, "the started move is not in the map") }
                let from = map.holder(of: partition)
                guard wait > 0 else {
                    printJSON(.object([("partition", .number(String(partition))), ("from", .string(from)), ("to", .string(to)),
                                       ("move", .number(String(move.id))), ("state", .string("started"))]))
                    return
                }
                let seconds = try await ClusterCommand.waitForMove(endpoints: etcdEndpoints, name: name, partition: partition, move: move.id, to: to, from: from,
                                                                   started: started, within: wait)
                printJSON(.object([("partition", .number(String(partition))), ("from", .string(from)), ("to", .string(to)),
                                   ("move", .number(String(move.id))), ("state", .string("done")), ("seconds", .number(String(seconds)))]))
            }
        }
    }

    struct CancelMove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cancel-move",
            abstract: "Call off a partition's move: its group takes its tenants' writes again.")
        @Option(name: .customLong("etcd-endpoints"), help: "etcd client URLs (http://host:port,...).") var etcdEndpoints: String
        @Option(help: "The map's name.") var name: String
        @Option(help: "The partition whose move to call off.") var partition: Int

        func run() async throws {
            try await runCLI {
                let map = try await ClusterCommand.changePartitionMap(endpoints: etcdEndpoints, name: name) { (map) throws(LearnStoreError) in
                    try map.cancellingMove(of: partition)
                }
                printJSON(.object([("name", .string(name)), ("map", map.json)]))
            }
        }
    }

    struct Rebalance: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rebalance",
            abstract: "Move partitions until the groups of the map hold as many partitions, records or requests as each other.",
            discussion: """
                With --by partitions (the default) it plans the fewest moves that leave each group holding the \
                number of partitions divided by the number of groups, or one more (partitions leave the groups \
                holding the most, their highest-numbered first, for the groups holding the fewest). With --by \
                records or --by load it evens out the groups' records (live and deleted) or the requests they \
                serve per second (over the last minute), as each group's primary measures and publishes \
                them every 5 s: each move gives the group holding the fewest the partition that narrows the \
                spread the most, while one does. It then runs the moves one at a time as `cluster \
                move-partition --wait` does, printing a JSON line per move. With --dry-run it prints the plan \
                only (and, by records or load, each group's total before and after). To have the cluster do \
                this by itself, see `cluster balancer`.
                """)
        @Option(name: .customLong("etcd-endpoints"), help: "etcd client URLs (http://host:port,...).") var etcdEndpoints: String
        @Option(help: "The map's name.") var name: String
        @Flag(name: .customLong("dry-run"), help: "Print the moves without starting them.") var dryRun = false
        @Option(help: "What to even out: partitions, records or load.") var by: Measure = .partitions

        enum Measure: String, ExpressibleByArgument, CaseIterable {
            case partitions
            case records
            case load
        }
        @Option(name: .customLong("wait-each"), help: "Seconds to wait for each move (1 ... 86400).") var waitEach = 120

        func run() async throws {
            try await runCLI {
                guard (1...86_400).contains(waitEach) else { throw CLIError.usage("--wait-each takes 1 to 86400 seconds") }
                let etcd = try EtcdClient(endpoints: etcdEndpoints.split(separator: ",").map(String.init), group: MultiThreadedEventLoopGroup.singleton)
                guard let stored = try await etcd.get(ClusterConfiguration.partitionMapKey(name)) else {
                    throw LearnStoreError(.notFound, "etcd holds no partition map '\(name)'")
                }
                let current = try PartitionMap.decode(stored.value)
                let plan: [(partition: Int, to: String)]
                var weights: [Int: Int] = [:]
                let measure: PartitionFigures.Measure? = switch by {
                case .partitions: nil
                case .records: .records
                case .load: .load
                }
                if let measure {
                    weights = try await Self.publishedWeights(of: current, by: measure, from: etcd)
                    plan = current.rebalancingMoves(bySize: weights)
                } else {
                    plan = current.rebalancingMoves()
                }
                if dryRun || plan.isEmpty {
                    let unit = by.rawValue == "load" ? "requests_per_second" : "records"
                    var fields: [(String, JSONValue)] = [("moves", .array(plan.map { move in
                        .object([("partition", .number(String(move.partition))), ("to", .string(move.to))]
                            + (measure != nil ? [(unit, .number(String(weights[move.partition] ?? 0)))] : []))
                    }))]
                    if measure != nil { fields += [("\(unit)_before", Self.totals(current, weights, [])), ("\(unit)_after", Self.totals(current, weights, plan))] }
                    printJSON(.object(fields))
                    return
                }
                for (partition, to) in plan {
                    let started = ContinuousClock.now
                    let map = try await ClusterCommand.changePartitionMap(endpoints: etcdEndpoints, name: name) { (map) throws(LearnStoreError) in
                        try map.startingMove(of: partition, to: to)
                    }
                    guard let move = map.moves[partition] else { throw LearnStoreError(.internalError, "the started move is not in the map") }
                    let from = map.holder(of: partition)
                    let seconds = try await ClusterCommand.waitForMove(endpoints: etcdEndpoints, name: name, partition: partition, move: move.id, to: to, from: from,
                                                                       started: started, within: waitEach)
                    printJSON(.object([("partition", .number(String(partition))), ("from", .string(from)), ("to", .string(to)),
                                       ("move", .number(String(move.id))), ("state", .string("done")), ("seconds", .number(String(seconds)))]))
                }
            }
        }

        /// Each group's published figures (nil for a group that has published none).
        static func publishedFigures(of map: PartitionMap, from etcd: EtcdClient) async throws(LearnStoreError) -> [String: PartitionFigures] {
            var figures: [String: PartitionFigures] = [:]
            for group in map.groups {
                if let stored = try await etcd.get(ClusterConfiguration.partitionFiguresKey(ofGroup: group)) {
                    figures[group] = try PartitionFigures.decode(stored.value)
                }
            }
            return figures
        }

        /// Each partition's records or load, from the figures its holder's primary published.
        static func publishedWeights(of map: PartitionMap, by measure: PartitionFigures.Measure, from etcd: EtcdClient) async throws(LearnStoreError) -> [Int: Int] {
            let figures = try await publishedFigures(of: map, from: etcd)
            var weights: [Int: Int] = [:]
            for (index, group) in map.groups.enumerated() where map.assignment.contains(index) {
                guard let published = figures[group] else {
                    throw LearnStoreError(.notFound, "group \(group) has not published its partitions' figures (its primary does every 5 s): is it running?")
                }
                let measured = published.weights(by: measure)
                if measure == .load, let unmeasured = (0..<map.partitions).first(where: { map.assignment[$0] == index && measured[$0] == nil }) {
                    throw LearnStoreError(.notFound, "group \(group) is still measuring the load of partition \(unmeasured) (for a minute after it arrived or its primary started); try again shortly")
                }
                for partition in 0..<map.partitions where map.assignment[partition] == index { weights[partition] = measured[partition] ?? 0 }
            }
            return weights
        }

        /// Each group's total, after `plan`.
        static func totals(_ map: PartitionMap, _ weights: [Int: Int], _ plan: [(partition: Int, to: String)]) -> JSONValue {
            var holder = (0..<map.partitions).map { map.groups[map.moves[$0]?.to ?? map.assignment[$0]] }
            for (partition, to) in plan { holder[partition] = to }
            return .object(map.groups.map { group in
                (group, .number(String((0..<map.partitions).filter { holder[$0] == group }.map { weights[$0] ?? 0 }.reduce(0, +))))
            })
        }
    }
}
