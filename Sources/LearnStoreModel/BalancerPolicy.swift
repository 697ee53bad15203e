/// The operator's terms for moving partitions without being asked (`learnstore cluster balancer`;
/// docs/CLUSTER.md, "Balancing"): what to even out, how far a group may stray from the mean, how long
/// to wait between moves, and the smallest mean worth a move. etcd holds it beside the partition map,
/// with the last move the balancer started, which its cool-down counts from on whichever node runs it.
public struct BalancerPolicy: Sendable, Equatable {
    public var measure: PartitionFigures.Measure
    /// How far a group's total may stray above or below the groups' mean, in percent of the mean.
    public var tolerancePercent: Int
    /// How long after the balancer started a move it starts the next.
    public var cooldownSeconds: Int
    /// A mean per group below this (records, or requests per second) is not worth moving for.
    public var minimumMean: Int
    /// The last move the balancer started.
    public var lastMove: LastMove?

    public struct LastMove: Sendable, Equatable {
        public var partition: Int
        public var to: String
        /// When it was started (ms since the epoch).
        public var at: Int64

        public init(partition: Int, to: String, at: Int64) {
            self.partition = partition
            self.to = to
            self.at = at
        }
    }

    public static let tolerancePercentRange = 1...1000
    public static let cooldownSecondsRange = 1...86_400
    public static let minimumMeanRange = 0...(1 << 40)

    public init(measure: PartitionFigures.Measure, tolerancePercent: Int = 20, cooldownSeconds: Int = 300, minimumMean: Int? = nil, lastMove: LastMove? = nil)
        throws(LearnStoreError)
    {
        guard Self.tolerancePercentRange.contains(tolerancePercent) else {
            throw LearnStoreError(.validation, "the balancer's tolerance is 1 to 1000 percent, not \(tolerancePercent)")
        }
        guard Self.cooldownSecondsRange.contains(cooldownSeconds) else {
            throw LearnStoreError(.validation, "the balancer's cool-down is 1 to 86400 seconds, not \(cooldownSeconds)")
        }
        let minimumMean = minimumMean ?? Self.defaultMinimumMean(measure)
        guard Self.minimumMeanRange.contains(minimumMean) else {
            throw LearnStoreError(.validation, "the balancer's minimum mean is 0 to 2^40, not \(minimumMean)")
        }
        self.measure = measure
        self.tolerancePercent = tolerancePercent
        self.cooldownSeconds = cooldownSeconds
        self.minimumMean = minimumMean
        self.lastMove = lastMove
    }

    /// Below 1,000 records or 50 requests per second a group, a move costs more than the spread.
    public static func defaultMinimumMean(_ measure: PartitionFigures.Measure) -> Int {
        switch measure {
        case .records: 1000
        case .load: 50
        }
    }

    public var json: JSONValue {
        var fields: [(String, JSONValue)] = [
            ("by", .string(measure.rawValue)), ("tolerance_percent", .number(String(tolerancePercent))),
            ("cooldown_seconds", .number(String(cooldownSeconds))), ("minimum_mean", .number(String(minimumMean))),
        ]
        if let lastMove {
            fields.append(("last_move", .object([
                ("partition", .number(String(lastMove.partition))), ("to", .string(lastMove.to)), ("at", .number(String(lastMove.at))),
            ])))
        }
        return .object(fields)
    }

    public var encoded: [UInt8] { Array(json.serialized.utf8) }

    /// Reads what ``encoded`` wrote (from etcd: outside input, checked whole).
    public static func decode(_ bytes: [UInt8]) throws(LearnStoreError) -> BalancerPolicy {
        guard bytes.count <= 4096, let value = try? JSONValue.parse(bytes), let by = value["by"]?.stringValue,
            let measure = PartitionFigures.Measure(rawValue: by), let tolerance = value["tolerance_percent"]?.int64Value,
            let cooldown = value["cooldown_seconds"]?.int64Value, let minimum = value["minimum_mean"]?.int64Value,
            let tolerance = Int(exactly: tolerance), let cooldown = Int(exactly: cooldown), let minimum = Int(exactly: minimum)
        else {
            throw LearnStoreError(.protocolViolation, "the balancer's policy is not {by: records|load, tolerance_percent, cooldown_seconds, minimum_mean} of at most 4 KiB")
        }
        var lastMove: LastMove?
        if let last = value["last_move"] {
            guard let partition = last["partition"]?.int64Value, (0..<Int64(PartitionMap.maximumPartitions)).contains(partition),
                let to = last["to"]?.stringValue, PartitionMap.isValidGroupName(to), let at = last["at"]?.int64Value
            else { throw LearnStoreError(.protocolViolation, "the balancer's last_move is not {partition, to, at}") }
            lastMove = LastMove(partition: Int(partition), to: to, at: at)
        }
        do {
            return try BalancerPolicy(measure: measure, tolerancePercent: tolerance, cooldownSeconds: cooldown, minimumMean: minimum, lastMove: lastMove)
        } catch {
            throw LearnStoreError(.protocolViolation, "the balancer's policy is out of range: \(error.message)")
        }
    }
}
