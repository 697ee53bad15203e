import LearnStoreEngine
import LearnStoreModel
import LearnStoreProtocol
import Logging
import Synchronization

/// Partition moves between two groups, deterministic from a seed, with the code the nodes run: the
/// target's ``PartitionCopy`` (its etcd reads, export requests, acknowledgement waits and the
/// completing transaction), the source's ``PartitionExporter``, ``PartitionWriteGate``, the tenants'
/// adopt and release, and ``PartitionMover/releaseMovedAway(map:group:registry:)``, over the
/// simulation's etcd, logs and connections. Each group is its primary: a log whose writes are
/// acknowledged when the simulation commits them, and a map the node has last observed (nodes see a
/// change late). Around the moves: clients write to either group (a node takes a tenant's write only
/// when its map routes the tenant there, and its gate lets it through), a group's primary fails over
/// (its uncommitted writes are lost, a new incarnation starts from the committed ones with a newer
/// epoch, and a map its group observed at some point, maybe an old one) or restarts in place (same
/// epoch; etcd's placement does not change), a new incarnation recovers its data only at a later
/// step, and calls interleave one at a time in a random order.
///
/// Clients create, patch, delete and purge records and ingest outcome results while moves copy them. The operator starts moves
/// of random partitions, or, with ``Options/balancer``, also the moves the balancer decides on.
///
/// With ``Options/controlPlane`` each group is instead several nodes under their control plane
/// (``ControlledGroup``): their real agents renew leases, elect controllers, read the partition map
/// into each node's topology board and promote replicas, under the control-plane simulation's faults;
/// a node the control plane makes the primary serves the group's data from its replicated log
/// (``MoveWorld/syncPrimaries()``), and acknowledges what its replication step lets it.
///
/// Checked: no group acknowledges a write of a tenant whose partition etcd gives to the other group
/// with no move in progress; when a move completes, each of its tenants in the new group holds what
/// it holds in the old one (records, outcome rows, idempotency keys); and at the end (faults stopped,
/// every move completed) every acknowledged create not purged since is in the group that holds its
/// tenant.
public struct MoveSimulation {
    public struct Options: Sendable {
        public var steps = 300
        public var tenants = 6
        public var partitions = 4
        /// Half the moves started are the balancer's choice on the groups' records
        /// (``PartitionBalancer``), the rest random; off, every move is random.
        public var balancer = false
        /// A quarter of the clients' writes ingest outcome results; off, only records are written.
        public var outcomes = true
        /// Items per export piece; nil: 2 to 8, chosen by the seed, so that a copy takes many pieces
        /// and writes land between them.
        public var pieceItems: Int?
        /// Each group is three nodes under its control plane (``ControlledGroup``): their real agents
        /// elect controllers and promote replicas over the simulation's etcd while the faults of the
        /// control-plane simulation hit them, instead of the simulation failing primaries over itself.
        /// Runs `faultSeconds` of simulated time with faults, then heals; `steps` is not used.
        public var controlPlane = false
        public var nodesPerGroup = 3
        /// The members in sync a primary needs to acknowledge (*m*, docs/REPLICATION.md).
        public var minimumInSync = 1
        public var faultSeconds: Int64 = 20
        public var settleSeconds: Int64 = 10
        /// The chance per 10 ms tick of each kind of fault starting in each group.
        public var faultRate = 0.002
        /// Under a control plane: the operator asks for a handover of each group's primary to one of its
        /// in-sync members every 1 to 4 simulated seconds of the faults, as `learnstore cluster handover` does.
        public var handsOver = false
        public init() {}
    }

    public struct Result: Sendable {
        public var seed: UInt64
        public var steps = 0
        public var acknowledged = 0
        public var movesStarted = 0
        /// Of those, the moves the balancer's rule chose (``PartitionBalancer``).
        public var balancerMoves = 0
        public var movesCompleted = 0
        public var copiesFailed = 0
        /// Under a control plane: the promotions its controllers carried out.
        public var failovers = 0
        /// Primaries killed and started again in place (same epoch, no failover); under a control
        /// plane, any node started again after a crash or a restart it asked for.
        public var restarts = 0
        /// Under a control plane: crashes, pauses, cuts from etcd and between nodes, and etcd outages.
        public var faults = 0
        /// Under a control plane with ``Options/handsOver``: handovers asked for, and those whose node
        /// became the primary.
        public var handoversAsked = 0
        public var handoversCompleted = 0
        public var releases = 0
        /// Completed moves whose copy was compared, tenant by tenant, with its source.
        public var copiesCompared = 0
        /// Outcome rows among what those comparisons compared, and outcome results ingested.
        public var outcomeRowsCompared = 0
        public var outcomeIngests = 0
        /// Moves completed by the attempt that copied while the tenants took writes, then fenced
        /// (the rest found the move fenced and copied the tenants whole), and the pieces of changes
        /// they copied after the fence.
        public var completedAfterFirstCopy = 0
        public var changedPieces = 0
        /// Rounds before the fence in the moves completed.
        public var rounds = 0
        public var failure: String?
        public var trace: [String] = []
        public init(seed: UInt64) { self.seed = seed }
    }

    let seed: UInt64
    let options: Options

    public init(seed: UInt64, options: Options = Options()) {
        self.seed = seed
        self.options = options
    }

    static let groups = ["ga", "gb"]
    /// A few idempotency keys per tenant: their tables fill up, and each new key pushes the oldest
    /// out, as a busy tenant's does.
    static let limits = EngineLimits(idempotencyKeys: 4)
    static let mapKey = ClusterConfiguration.partitionMapKey("simulated")

    public func run() async -> Result {
        var result = Result(seed: seed)
        let world = MoveWorld(seed: seed, options: options)
        do {
            try await world.run(&result)
        } catch let failure as MoveSimulationFailure {
            result.failure = failure.message
        } catch {
            result.failure = "unexpected error: \(error)"
        }
        result.trace = world.trace.withLock { Array($0.suffix(options.controlPlane ? 400 : 120)) }
        if result.failure != nil {
            // What each group's control plane did last (crashes, promotions, placements), stamped in
            // simulated milliseconds.
            for group in MoveSimulation.groups {
                guard let control = world.controlled[group] else { continue }
                result.trace.append("group \(group)'s control plane, last events:")
                result.trace += control.cluster.trace.suffix(150).map { "  \($0)" }
            }
        }
        return result
    }
}

struct MoveSimulationFailure: Error {
    let message: String
}

/// A group's primary, one incarnation: when it fails over or restarts, a new one takes its place.
/// Under a control plane (``MoveSimulation/Options/controlPlane``) it is one simulated node's time as
/// the primary of one epoch within one start of its process.
final class MoveNode: Sendable {
    /// Its node id, as etcd's placement names it (kept by a restart in place).
    let name: String
    /// How many times this node id restarted in place before this incarnation.
    let incarnation: Int
    /// Names this incarnation to the scheduler: a dead one's pending calls never proceed as the
    /// live one's.
    var turnName: String { incarnation == 0 ? name : "\(name)#\(incarnation)" }
    let group: String
    let epoch: UInt64
    /// Its replication address, as etcd's placement lists it.
    let address: String
    let log: MoveLog
    let topology: TopologyBoard
    let registry: TenantRegistry
    let alive = Atomic<Bool>(true)
    let copying = Atomic<Bool>(false)
    let releasedThrough = Mutex<UInt64>(0)
    /// Under a control plane: the node whose primary this is, the start of its process this belongs
    /// to, and whether that process runs (not stopped by a pause).
    let controlled: SimulatedClusterNode?
    let processStart: Int
    private let running: @Sendable () -> Bool
    /// What the node recovers (the committed writes of its log), installed by ``finishRecovery()``;
    /// nil once it has: until then its registry lacks its tenants, as a real node's does while it
    /// recovers.
    private let recoveredStates: Mutex<[String: TenantState]?>

    /// Without `topology`, the node starts with a board of its own holding `map`, its writes waiting
    /// for a read of the map in `epoch`; with one (a control plane's node), that board as it is.
    init(name: String, group: String, epoch: UInt64, log: MoveLog, map: PartitionMap, states: [String: TenantState], address: String,
         incarnation: Int = 0, topology: TopologyBoard? = nil, controlled: SimulatedClusterNode? = nil, processStart: Int = 0,
         running: @escaping @Sendable () -> Bool = { true }) {
        self.name = name
        self.incarnation = incarnation
        self.address = address
        self.group = group
        self.epoch = epoch
        self.log = log
        self.controlled = controlled
        self.processStart = processStart
        self.running = running
        let board = topology ?? TopologyBoard()
        self.topology = board
        let gate = board.writeGate
        let clock = FixedClock()
        registry = TenantRegistry { tenantID in
            TenantActor(state: TenantState(tenantID: tenantID, limits: MoveSimulation.limits), log: log, clock: clock, executor: TenantExecutor { $0() }, writeGate: gate)
        }
        recoveredStates = Mutex(states)
        if topology == nil {
            board.partition(by: map, group: group)
            // As a node does: writes wait until it has read the map in its epoch.
            board.writeGate.follow(startingEpoch: epoch)
        }
    }

    /// Whether this incarnation is still the primary of its epoch: not failed over, and under a
    /// control plane its node neither crashed, nor fenced, nor moved to another epoch.
    var isAlive: Bool {
        guard alive.load(ordering: .relaxed) else { return false }
        guard let controlled else { return true }
        return controlled.state.withLock { $0.alive && $0.role == .primary && $0.epoch == epoch }
    }

    /// Whether it answers now (alive and not paused).
    var isRunning: Bool { isAlive && running() }
    var isRecovered: Bool { recoveredStates.withLock { $0 == nil } }

    func finishRecovery() {
        guard let states = recoveredStates.withLock({ states in defer { states = nil }; return states }) else { return }
        let gate = topology.writeGate
        for state in states.values {
            registry.install(TenantActor(state: state, log: log, clock: FixedClock(), executor: TenantExecutor { $0() }, writeGate: gate))
        }
    }
    var standing: (role: NodeRole, epoch: UInt64) { (isAlive ? .primary : .fenced, epoch) }
}

/// The clock of the simulation's tenants: one instant, so records differ only by their ids.
struct FixedClock: EngineClock {
    func now() -> Timestamp { Timestamp(milliseconds: 1_700_000_000_000) }
}

/// A group's log: a write is acknowledged once the simulation commits through it; a stopped log
/// (its node failed over) takes no more writes and commits nothing more. Under a control plane each
/// write is first offered to the node's replicated log (`accept`), which refuses it unless the node is
/// the running primary of the log's epoch.
final class MoveLog: MutationLog {
    struct State {
        var entries: [(lsn: UInt64, entry: LogEntry)] = []
        var nextLSN: UInt64 = 1
        var committed: UInt64 = 0
        var stopped = false
    }

    let state: Mutex<State>
    private let accept: (@Sendable (LogEntry, UInt64) -> Bool)?

    init(_ initial: State = State(), accept: (@Sendable (_ entry: LogEntry, _ lsn: UInt64) -> Bool)? = nil) {
        state = Mutex(initial)
        self.accept = accept
    }

    func append(_ entry: LogEntry) throws(LearnStoreError) -> UInt64 {
        try state.withLock { (state: inout State) throws(LearnStoreError) -> UInt64 in
            if state.stopped { throw LearnStoreError(.notPrimary, "the node failed over (simulated)") }
            let lsn = state.nextLSN
            if let accept, !accept(entry, lsn) { throw LearnStoreError(.notPrimary, "the node is not the running primary of its epoch (simulated)") }
            state.nextLSN += 1
            state.entries.append((lsn, entry))
            return lsn
        }
    }

    var committedLSN: UInt64 { state.withLock { $0.committed } }

    /// Commits through `lsn` (at most the last written).
    func commit(through lsn: UInt64) {
        state.withLock { state in
            guard !state.stopped else { return }
            state.committed = max(state.committed, min(lsn, state.nextLSN - 1))
        }
    }
}

/// The export channel of the simulation: a request to the node that had `address`, taking a turn.
struct MoveExportChannel: PartitionExportChannel {
    let source: MoveNode
    let caller: String
    let scheduler: SimulatedScheduler
    let exporter: PartitionExporter
    let world: MoveWorld

    func piece(_ request: PartitionExportRequest) async throws(LearnStoreError) -> PartitionExportPiece {
        guard await scheduler.turn(caller), source.isRunning else { throw LearnStoreError(.connectionFailed, "the connection broke (simulated)") }
        let piece = try await exporter.piece(request)
        world.note("\(source.name) exported to \(caller) for move \(request.moveID): \(piece.end ? "the end" : "\(piece.tenant) at sequence \(piece.sequence), \(piece.mutationCount) mutations")")
        return piece
    }

    func close() {}
}

struct Pending {
    var node: MoveNode
    var lsn: UInt64
    var tenant: String
    var id: RecordID
}
