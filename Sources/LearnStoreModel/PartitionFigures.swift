/// What each partition a group holds weighs, as the group's primary last measured it: its records
/// (live and deleted) and the client requests its tenants were served per second. `cluster
/// rebalance` and the balancer even the groups out by one or the other (docs/CLUSTER.md, "Balancing").
/// etcd holds one per group, under `/learnstore/<group>/partition-figures`.
public struct PartitionFigures: Sendable, Equatable {
    public var records: [Int: Int]
    /// Requests per second over the last minute, for each partition the primary has measured for a
    /// whole minute (one that arrived since, or a primary that started since, is left out).
    public var requestsPerSecond: [Int: Int]
    /// When they were measured (ms since the epoch).
    public var at: Int64

    public init(records: [Int: Int], requestsPerSecond: [Int: Int] = [:], at: Int64) {
        self.records = records
        self.requestsPerSecond = requestsPerSecond
        self.at = at
    }

    /// What the balancer can weigh partitions by.
    public enum Measure: String, Sendable, CaseIterable {
        case records
        case load
    }

    /// Each partition's weight by `measure`.
    public func weights(by measure: Measure) -> [Int: Int] {
        switch measure {
        case .records: records
        case .load: requestsPerSecond
        }
    }

    public var json: JSONValue {
        func table(_ values: [Int: Int]) -> JSONValue {
            .object(values.sorted { $0.key < $1.key }.map { (String($0.key), .number(String($0.value))) })
        }
        return .object([("records", table(records)), ("requests_per_second", table(requestsPerSecond)), ("at", .number(String(at)))])
    }

    public var encoded: [UInt8] { Array(json.serialized.utf8) }

    /// Reads what ``encoded`` wrote (from etcd: outside input, checked whole). A document without
    /// `requests_per_second` has no load measured.
    public static func decode(_ bytes: [UInt8]) throws(LearnStoreError) -> PartitionFigures {
        guard bytes.count <= 1 << 20, let value = try? JSONValue.parse(bytes), case .object(let records)? = value["records"],
            let at = value["at"]?.int64Value
        else { throw LearnStoreError(.protocolViolation, "partition figures are not {records: {partition: count}, requests_per_second, at} of at most 1 MiB") }
        var requests: [(String, JSONValue)] = []
        switch value["requests_per_second"] {
        case nil: break
        case .object(let members)?: requests = members
        default: throw LearnStoreError(.protocolViolation, "partition figures' requests_per_second is not {partition: rate}")
        }
        return PartitionFigures(records: try table(records, of: "records"), requestsPerSecond: try table(requests, of: "requests_per_second"), at: at)
    }

    private static func table(_ members: [(String, JSONValue)], of name: String) throws(LearnStoreError) -> [Int: Int] {
        guard members.count <= PartitionMap.maximumPartitions else {
            throw LearnStoreError(.protocolViolation, "partition figures' \(name) lists more than \(PartitionMap.maximumPartitions) partitions")
        }
        var values: [Int: Int] = [:]
        for (key, count) in members {
            guard let partition = Int(key), (0..<PartitionMap.maximumPartitions).contains(partition), let count = count.int64Value,
                (0...Int64(PartitionMap.maximumVersion)).contains(count), values[partition] == nil
            else { throw LearnStoreError(.protocolViolation, "partition figures' \(name) hold '\(key)', not a partition number with a count") }
            values[partition] = Int(count)
        }
        return values
    }
}
