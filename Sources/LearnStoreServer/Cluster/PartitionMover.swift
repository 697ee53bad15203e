import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import Logging
import NIOCore
import ServiceLifecycle

/// A group's part in partition moves, on its primary (docs/CLUSTER.md, "Moving a partition"). For
/// each move into the group the map lists, one ``PartitionCopy``: copy the partition's tenants from
/// the source group's primary (PARTITION_EXPORT) into this group's log as writes its replicas follow
/// while they still take writes there, fence the move, copy what changed, and complete the move in
/// etcd. A failed or interrupted copy starts again from the beginning (the first write of each
/// tenant empties it); whichever node is the primary then resumes it, since the move's state lives
/// in etcd. And once the map gives a partition to another
/// group, it empties the partition's tenants here with one write each (``TenantActor/release()``),
/// which frees their memory and ends their change-feed subscriptions.
public final class PartitionMover: Service, Sendable {
    let configuration: ClusterConfiguration
    let node: ReplicationNode
    let topology: TopologyBoard
    let registry: TenantRegistry
    let etcd: EtcdClient
    let wal: @Sendable () -> WriteAheadLog?
    let logger: Logger
    /// Where its work and its timers run: a thread of its own, not Swift's shared pool, where work
    /// queued by others would hold a move (and the release after it) for seconds.
    let thread: ControlPlaneThread
    let metrics: PartitionMoveMetrics?

    init(
        configuration: ClusterConfiguration, node: ReplicationNode, topology: TopologyBoard, registry: TenantRegistry, thread: ControlPlaneThread,
        logger: Logger, metrics: PartitionMoveMetrics? = nil, wal: @escaping @Sendable () -> WriteAheadLog?
    ) throws(LearnStoreError) {
        self.metrics = metrics
        self.configuration = configuration
        self.node = node
        self.topology = topology
        self.registry = registry
        self.thread = thread
        self.logger = logger
        self.wal = wal
        etcd = try EtcdClient(endpoints: configuration.endpoints, group: thread.group, executor: thread.executor)
    }

    /// The copy's ports: etcd, the source's replication port, this node's log.
    var copier: PartitionCopy {
        let (node, wal, thread, topology, group) = (node, wal, thread, topology, configuration.name)
        return PartitionCopy(
            group: group, nodeID: node.nodeID, mapKey: ClusterConfiguration.partitionMapKey(configuration.partitionMapName ?? ""),
            standing: { (node.role, node.epoch) }, etcd: etcd,
            open: { address throws(LearnStoreError) in
                NodeExportChannel(connection: try await NodeConnection.open(address, credential: node.credential, nodeID: node.nodeID, group: thread.group))
            },
            registry: registry,
            acknowledged: Self.acknowledgement(in: wal),
            pause: { [self] duration in await self.pause(duration) }, logger: logger,
            completed: { map in topology.partition(by: map, group: group) })
    }

    /// Waits, off the event loops, until this node's log has acknowledged a write (false: it will not).
    static func acknowledgement(in wal: @escaping @Sendable () -> WriteAheadLog?) -> @Sendable (UInt64) async throws(LearnStoreError) -> Bool {
        { lsn throws(LearnStoreError) in
            guard let wal = wal() else { throw LearnStoreError(.loading, "the node is recovering its data") }
            return try await offload { () throws(LearnStoreError) in wal.waitUntilCommitted(lsn) }
        }
    }

    /// Waits on the mover's own thread.
    func pause(_ duration: Duration) async {
        let (seconds, attoseconds) = duration.components
        let delay = TimeAmount.nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        try? await thread.loop.scheduleTask(in: delay) {}.futureResult.get()
    }

    /// How often the map this node holds is looked at for moves into its group.
    static let pollInterval: Duration = .milliseconds(50)
    /// A copy that failed is tried again after this.
    static let retryInterval: Duration = .seconds(1)
    /// How often a primary publishes its partitions' figures (``PartitionFigures``), and the balancer
    /// decides.
    static let figuresInterval: Duration = .seconds(5)

    public func run() async throws {
        await withTaskExecutorPreference(thread.executor) { await runMoves() }
    }

    private func runMoves() async {
        var lastFailure: String?
        var releasedThrough: UInt64 = 0
        var figuresPublished: ContinuousClock.Instant?
        var meter = PartitionLoadMeter()
        var balancer = BalancerRunState()
        var figuresProblem: String?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if figuresPublished.map({ ContinuousClock.now - $0 >= Self.figuresInterval }) ?? true {
                figuresPublished = .now
                do throws(LearnStoreError) {
                    if try await publishFigures(&meter) { try await balanceIfRunner(&balancer) }
                    figuresProblem = nil
                } catch {
                    // Said once until it changes (etcd unreachable, a policy written by hand that does not read).
                    if error.message != figuresProblem { logger.warning("partition figures or balancer: \(error.message)") }
                    figuresProblem = error.message
                }
            }
            if let version = topology.partitioning?.map.version { metrics?.mapVersion.record(Int64(clamping: version)) }
            if let version = releaseDue(after: releasedThrough) {
                do throws(LearnStoreError) {
                    try await releaseMovedAway()
                    releasedThrough = version
                } catch {
                    logger.warning("partition move: releasing the tenants of partitions moved away failed; trying again", metadata: ["error": "\(error.message)"])
                    await pause(Self.retryInterval)
                }
            } else if let (partition, move, map) = nextMove() {
                do throws(LearnStoreError) {
                    try await adopt(partition, move, map)
                    metrics?.movesCompleted.increment()
                    lastFailure = nil
                } catch {
                    metrics?.copiesFailed.increment()
                    if error.message != lastFailure {
                        logger.warning("partition move: copy failed; trying again", metadata: ["partition": "\(partition)", "move": "\(move.id)", "error": "\(error.message)"])
                    }
                    lastFailure = error.message
                    await pause(Self.retryInterval)
                }
            }
            await pause(Self.pollInterval)
        }
    }

    /// Counts the records of the partitions this group holds and measures their load, and puts them
    /// in etcd, while this node is its primary and has recovered its data; false when it is not.
    func publishFigures(_ meter: inout PartitionLoadMeter) async throws(LearnStoreError) -> Bool {
        guard node.role == .primary, wal() != nil, let (map, group) = topology.partitioning else {
            meter = PartitionLoadMeter()
            return false
        }
        var records: [Int: Int] = [:]
        for partition in 0..<map.partitions where map.holder(of: partition) == group { records[partition] = 0 }
        var counters: [(tenant: String, partition: Int, served: UInt64)] = []
        for tenantID in registry.tenantIDs {
            let partition = map.partition(of: tenantID)
            guard records[partition] != nil, let tenant = registry.existingTenant(tenantID) else { continue }
            records[partition, default: 0] += await tenant.recordCount
            counters.append((tenantID, partition, await tenant.requestsServed))
        }
        let load = meter.sample(counters, held: Set(records.keys), at: ContinuousClock.now - Self.meterOrigin)
        let figures = PartitionFigures(records: records, requestsPerSecond: load, at: SystemClock().now().milliseconds)
        try await etcd.put(ClusterConfiguration.partitionFiguresKey(ofGroup: group), figures.encoded)
        return true
    }

    /// The load meter's clock counts from here.
    static let meterOrigin = ContinuousClock.now

    /// The lowest partition moving into this group, while this node is its primary and has recovered
    /// its data.
    func nextMove() -> (Int, PartitionMove, PartitionMap)? {
        guard node.role == .primary, wal() != nil, let (map, group) = topology.partitioning, let target = map.groups.firstIndex(of: group) else { return nil }
        guard let (partition, move) = map.moves.filter({ $0.value.to == target }).min(by: { $0.key < $1.key }) else { return nil }
        return (partition, move, map)
    }

    /// The map's version when this primary has not yet released the tenants of the partitions it
    /// moved away under it.
    func releaseDue(after released: UInt64) -> UInt64? {
        // Only by a map read in this epoch: a node promoted with an older one would release tenants
        // that have moved back here since.
        // And only once its data is recovered: the tenants it would pass over are not all there yet.
        guard node.role == .primary, wal() != nil, topology.writeGate.mapIsCurrent, let (map, _) = topology.partitioning, map.version > released else {
            return nil
        }
        return map.version
    }

    /// Empties the tenants here whose partition another group holds, unless it is moving back here
    /// (the copy in will empty them first).
    func releaseMovedAway() async throws(LearnStoreError) {
        guard let (map, group) = topology.partitioning else { return }
        let (released, lastLSN) = try await Self.releaseMovedAway(map: map, group: group, registry: registry)
        guard released > 0 else { return }
        metrics?.tenantsReleased.increment(by: released)
        if let wal = wal() {
            let last = lastLSN
            _ = try await offload { () throws(LearnStoreError) in wal.waitUntilCommitted(last) }
        }
        logger.notice("partition move: released the tenants of partitions moved away", metadata: ["tenants": "\(released)", "map_version": "\(map.version)"])
    }

    /// Releases the tenants of `registry` whose partition `map` gives to a group other than `group`
    /// and is not moving back to it, and stops tracking changes for a copy in those `group` holds
    /// with no move under way; returns how many it released, and the LSN of the last release.
    static func releaseMovedAway(map: PartitionMap, group: String, registry: TenantRegistry) async throws(LearnStoreError) -> (released: Int, lastLSN: UInt64) {
        guard let here = map.groups.firstIndex(of: group) else { return (0, 0) }
        var released = 0
        var lastLSN: UInt64 = 0
        for tenantID in registry.tenantIDs {
            let partition = map.partition(of: tenantID)
            guard let tenant = registry.existingTenant(tenantID) else { continue }
            if map.holder(of: partition) == group && map.moves[partition] == nil {
                // A move called off leaves its tracking of what the tenant's writes touch behind.
                await tenant.stopTrackingChanges()
                continue
            }
            guard map.holder(of: partition) != group, map.moves[partition]?.to != here else { continue }
            if let lsn = try await tenant.release() {
                released += 1
                lastLSN = max(lastLSN, lsn)
            }
        }
        return (released, lastLSN)
    }

    /// One whole attempt: copy, wait for acknowledgement, complete the move.
    func adopt(_ partition: Int, _ move: PartitionMove, _ map: PartitionMap) async throws(LearnStoreError) {
        let started = ContinuousClock.now
        let copied = try await copier.run(partition, move, map)
        metrics?.piecesCopied.increment(by: copied.pieces)
        func milliseconds(_ duration: Duration) -> Int64 { duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000 }
        logger.notice("partition move: done", metadata: [
            "partition": "\(partition)", "move": "\(move.id)", "from": "\(map.holder(of: partition))", "tenants": "\(copied.tenants)", "pieces": "\(copied.pieces)",
            "changed_pieces": "\(copied.changedPieces)", "milliseconds": "\(milliseconds(ContinuousClock.now - started))",
            "first_copy_ms": "\(milliseconds(copied.firstCopy))", "rounds": "\(copied.roundRecords.map(String.init).joined(separator: ","))",
            "rounds_ms": "\(milliseconds(copied.roundTime))", "writes_paused_ms": "\(milliseconds(copied.paused))",
            "copying_ms": "\(milliseconds(copied.copying))", "acknowledging_ms": "\(milliseconds(copied.acknowledging))",
        ])
    }
}
