/// How many records each partition a group holds has (live and deleted), as the group's primary last
/// counted them: `cluster rebalance --by records` evens the groups out by these (docs/CLUSTER.md,
/// "Moving a partition"). etcd holds one per group, under `/learnstore/<group>/partition-sizes`.
public struct PartitionSizes: Sendable, Equatable {
    public var records: [Int: Int]
    /// When they were counted (ms since the epoch).
    public var at: Int64

    public init(records: [Int: Int], at: Int64) {
        self.records = records
        self.at = at
    }

    public var json: JSONValue {
        .object([
            ("records", .object(records.sorted { $0.key < $1.key }.map { (String($0.key), .number(String($0.value))) })),
            ("at", .number(String(at))),
        ])
    }

    public var encoded: [UInt8] { Array(json.serialized.utf8) }

    /// Reads what ``encoded`` wrote (from etcd: outside input, checked whole).
    public static func decode(_ bytes: [UInt8]) throws(LearnStoreError) -> PartitionSizes {
        guard bytes.count <= 1 << 20, let value = try? JSONValue.parse(bytes), case .object(let members)? = value["records"],
            members.count <= PartitionMap.maximumPartitions, let at = value["at"]?.int64Value
        else { throw LearnStoreError(.protocolViolation, "partition sizes are not {records: {partition: count}, at} of at most 1 MiB") }
        var records: [Int: Int] = [:]
        for (key, count) in members {
            guard let partition = Int(key), (0..<PartitionMap.maximumPartitions).contains(partition), let count = count.int64Value,
                (0...Int64(PartitionMap.maximumVersion)).contains(count)
            else { throw LearnStoreError(.protocolViolation, "partition sizes hold '\(key)', not a partition number with a count of records") }
            records[partition] = Int(count)
        }
        return PartitionSizes(records: records, at: at)
    }
}
