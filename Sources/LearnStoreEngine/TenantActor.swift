import CanvasOutcomes
import LearnStoreModel
import Synchronization

/// The one owner of a tenant's state: every operation on the tenant runs here, one at a time.
///
/// It is a thin shell around ``TenantState``: it reads the clock, runs the command, sends the
/// mutations to the log and remembers how to undo writes until the log commits them. Its executor
/// can be injected: the server gives each tenant a ``TenantExecutor``, which any event loop enters
/// synchronously (`withExclusiveAccess`) instead of hopping, about 3× faster than a hop per request.
public actor TenantActor {
    // The mutable state skips Swift's dynamic exclusivity checks (a runtime call per access, 1-2 % of
    // the server's CPU on pipelined gets): the actor's isolation already serializes every access, and
    // no method passes a property `inout` to code that reaches back into the actor.
    @exclusivity(unchecked) public internal(set) var state: TenantState
    let log: any MutationLog
    let clock: any EngineClock
    private let executorSource: ExecutorSource
    /// Writes appended to the log but not yet committed, oldest first, with their undo.
    @exclusivity(unchecked) private var pending: [(lsn: UInt64, undo: TenantUndo)] = []
    /// The LSN of this tenant's newest write in its state (what a snapshot of it covers).
    @exclusivity(unchecked) public private(set) var lastWriteLSN: UInt64 = 0
    /// The newest write a read may observe that is not yet known durable (0: none): a read's answer is
    /// held until it is committed, and replaced by an error if it failed.
    public var observedLSN: UInt64 { pending.last?.lsn ?? 0 }

    /// The newest write not yet known durable that a read of record `id` alone observes: one that
    /// created, changed or removed it (0: none). A GET need not wait for the tenant's other writes
    /// (their outcome changes nothing in its answer); past a few dozen undo steps to look through it
    /// answers ``observedLSN``.
    public func observedLSN(ofRecord id: RecordID) -> UInt64 {
        guard let newest = pending.last?.lsn else { return 0 }
        // The commit mark stays below a failed write until its rollback has removed it from `pending`.
        let committed = log.committedLSN
        if newest <= committed { return newest }
        var examined = 0
        for entry in pending.reversed() {
            if entry.lsn <= committed { return 0 }
            examined += entry.undo.steps.count
            if examined > 64 { return newest }
            if entry.undo.touches(id) { return entry.lsn }
        }
        return 0
    }
    /// Given every write after it is appended (the change feed's recent changes), until it declines.
    @exclusivity(unchecked) private var changeTap: (any TenantChangeTap)?
    /// Set by the first write that finds the tenant past `TenantState.lazyIndexSlots`, never cleared:
    /// the scheduler's catch-up during writes passes over the other tenants without entering each.
    public nonisolated var outgrewLazyIndexing: Bool { outgrew.load(ordering: .relaxed) }
    private nonisolated let outgrew = Atomic<Bool>(false)
    /// What the writes touched since a partition move began copying this tenant (nil: no copy under way).
    @exclusivity(unchecked) public private(set) var changesSinceCopy: TenantChangeSet?
    @exclusivity(unchecked) private var servedRequests: UInt64 = 0
    /// Set while the tenant is being replaced (restore); data requests get LOADING.
    @exclusivity(unchecked) public private(set) var isLoading = false

    enum ExecutorSource: Sendable {
        case custom(any SerialExecutor)
        case shared(DefaultExecutorHolder)
    }

    actor DefaultExecutorHolder {}

    /// Asked, under this tenant's isolation, before each client write is logged.
    let writeGate: (any TenantWriteGate)?

    public init(state: TenantState, log: any MutationLog, clock: any EngineClock = SystemClock(), executor: (any SerialExecutor)? = nil,
                writeGate: (any TenantWriteGate)? = nil) {
        self.state = state
        self.writeGate = writeGate
        self.tenantID = state.tenantID
        self.log = log
        self.clock = clock
        self.executorSource = executor.map { .custom($0) } ?? .shared(DefaultExecutorHolder())
        self.lockingExecutor = executor as? TenantExecutor
    }

    /// The executor again, already cast: `withExclusiveAccess` runs once per request batch.
    private nonisolated let lockingExecutor: TenantExecutor?

    /// Runs `body` on this tenant synchronously from the calling thread, holding the tenant's lock.
    /// Only for actors created with a ``TenantExecutor``.
    @inline(__always)
    public nonisolated func withExclusiveAccess<R: Sendable>(_ body: (isolated TenantActor) throws -> R) rethrows -> R {
        guard let lockingExecutor else { preconditionFailure("tenant \(tenantID) has no TenantExecutor to enter synchronously") }
        return try lockingExecutor.withLock { try assumeIsolated(body) }
    }

    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        switch executorSource {
        case .custom(let executor): executor.asUnownedSerialExecutor()
        case .shared(let holder): holder.unownedExecutor
        }
    }

    public nonisolated let tenantID: String

    // MARK: writes

    private func commit<R>(_ write: TenantWrite<R>, gated: Bool = true) throws(LearnStoreError) -> TenantWrite<R> {
        guard !write.mutations.isEmpty, let undo = write.undo else { return write }
        if gated, let writeGate, let refusal = writeGate.refusal(tenantID: tenantID) {
            state.undo(undo)
            throw refusal
        }
        trimCommitted()
        let entry = LogEntry(tenantID: state.tenantID, sequence: write.sequence, timestamp: clock.now(), mutations: write.mutations)
        let lsn: UInt64
        do {
            lsn = try log.append(entry)
        } catch {
            state.undo(undo)
            throw error
        }
        pending.append((lsn, undo))
        lastWriteLSN = lsn
        changesSinceCopy?.note(write.mutations)
        tap(entry, lsn: lsn)
        noteSize()
        var result = write
        result.lsn = lsn
        return result
    }

    /// Applies a write its primary logged at `lsn` (`sealed`: the record as the primary's log holds
    /// it) and queues it in this node's log at the same LSN. A replica's tenants change only this way.
    public func applyReplicated(_ entry: LogEntry, lsn: UInt64, sealed: [UInt8]) throws(LearnStoreError) {
        guard entry.sequence == state.sequence + 1 || (entry.mutations.continuesAnotherGroupsSequence && entry.sequence > state.sequence) else {
            throw LearnStoreError(
                .internalError,
                "tenant \(tenantID): the replicated write at LSN \(lsn) has sequence \(entry.sequence), but the replica holds sequence \(state.sequence)")
        }
        trimCommitted()
        let undo = state.apply(entry.mutations, sequence: entry.sequence)
        do {
            try log.appendReplicated(sealed, lsn: lsn, tenant: tenantID, sequence: entry.sequence)
        } catch {
            state.undo(undo)
            throw error
        }
        pending.append((lsn, undo))
        lastWriteLSN = lsn
        tap(entry, lsn: lsn)
        noteSize()
    }

    @inline(__always)
    private func noteSize() {
        guard !outgrew.load(ordering: .relaxed), state.store.slotCount > TenantState.lazyIndexSlots else { return }
        outgrew.store(true, ordering: .relaxed)
    }

    @inline(__always)
    private func tap(_ entry: LogEntry, lsn: UInt64) {
        if let changeTap, !changeTap.appended(entry, lsn: lsn) { self.changeTap = nil }
    }

    func checkReadable() throws(LearnStoreError) { try checkReady() }

    private func checkReady() throws(LearnStoreError) {
        if isLoading { throw LearnStoreError(.loading, "tenant \(state.tenantID) is being restored; retry shortly") }
    }

    public func create(_ body: RecordBody, caller: CallerIdentity, idempotencyKey: String? = nil) throws(LearnStoreError) -> TenantWrite<LearningRecord> {
        try checkReady()
        return try commit(try state.create(body, caller: caller, idempotencyKey: idempotencyKey, now: clock.now()))
    }

    public func createBatch(_ bodies: [RecordBody], caller: CallerIdentity, idempotencyKey: String? = nil) throws(LearnStoreError) -> TenantWrite<[LearningRecord]> {
        try checkReady()
        return try commit(try state.createBatch(bodies, caller: caller, idempotencyKey: idempotencyKey, now: clock.now()))
    }

    public func patch(_ id: RecordID, _ body: RecordBody, expectedUpdatedAt: Timestamp? = nil, caller: CallerIdentity) throws(LearnStoreError) -> TenantWrite<LearningRecord> {
        try checkReady()
        return try commit(try state.patch(id, body, expectedUpdatedAt: expectedUpdatedAt, caller: caller, now: clock.now()))
    }

    public func delete(_ id: RecordID, caller: CallerIdentity) throws(LearnStoreError) -> TenantWrite<LearningRecord> {
        try checkReady()
        return try commit(try state.delete(id, caller: caller, now: clock.now()))
    }

    public func restore(_ id: RecordID, caller: CallerIdentity) throws(LearnStoreError) -> TenantWrite<LearningRecord> {
        try checkReady()
        return try commit(try state.restore(id, caller: caller, now: clock.now()))
    }

    public func purgePerson(_ personID: UUID16, dryRun: Bool, caller: CallerIdentity) throws(LearnStoreError) -> TenantWrite<Int> {
        try checkReady()
        return try commit(try state.purgePerson(personID, dryRun: dryRun, caller: caller))
    }

    public func importRecords(_ records: [LearningRecord], caller: CallerIdentity) throws(LearnStoreError) -> TenantWrite<Int> {
        try checkReady()
        return try commit(try state.importRecords(records, caller: caller))
    }

    /// Imports records and outcome rows as one write (admin; see ``TenantState/importBatch(records:outcomes:caller:)``).
    public func importBatch(records: [LearningRecord], outcomes: [OutcomeRecord], caller: CallerIdentity) throws(LearnStoreError) -> TenantWrite<ImportResult> {
        try checkReady()
        return try commit(try state.importBatch(records: records, outcomes: outcomes, caller: caller))
    }

    /// Commits an import prepared on a copy off the lock (`TenantState+PreparedImport`) if the tenant
    /// took no write since the copy; nil otherwise, and the caller imports in place.
    public func commitPrepared(_ prepared: TenantState.PreparedImport) throws(LearnStoreError) -> TenantWrite<ImportResult>? {
        try checkReady()
        guard let write = state.takePrepared(prepared) else { return nil }
        return try commit(write)
    }

    /// Ingests a batch of Canvas outcome live events (JSON each); one result per event.
    public func ingestOutcomes(_ events: [[UInt8]], caller: CallerIdentity) throws(LearnStoreError) -> TenantWrite<[EventOutcome]> {
        try checkReady()
        return try commit(try state.ingest(events, caller: caller))
    }

    /// Ingests events parsed beforehand (``TenantState/parseEvent(_:)``), outside the tenant's lock.
    public func ingestOutcomes(parsed events: [Result<OutcomeEvent, OutcomeEventError>], caller: CallerIdentity) throws(LearnStoreError) -> TenantWrite<[EventOutcome]> {
        try checkReady()
        return try commit(try state.ingest(parsed: events, caller: caller))
    }

    // MARK: reads

    public func get(_ id: RecordID, caller: CallerIdentity) throws(LearnStoreError) -> LearningRecord {
        try checkReady()
        return try state.get(id, caller: caller)
    }

    public func list(_ query: ListQuery, caller: CallerIdentity) throws(LearnStoreError) -> (records: [LearningRecord], next: ListCursor?) {
        try checkReady()
        return try state.listRecords(query, caller: caller)
    }

    /// Adds the records written since the last read to the secondary indexes, so that the next read
    /// does not wait for that (the persistence scheduler calls this once writes pause).
    public func catchUpIndexes() {
        if !isLoading { state.catchUpIndexes() }
    }

    /// A secondary-index build to run off this tenant (see `TenantState+IndexBuild`), if one is due.
    public func indexBuild() -> TenantState.IndexBuild? {
        isLoading ? nil : state.indexBuild()
    }

    /// A backlog merge to run off this tenant while writes go on (see `TenantState+IndexBuild`).
    public func indexBuildDuringWrites() -> TenantState.IndexBuild? {
        isLoading ? nil : state.indexBuildDuringWrites()
    }

    /// The build a read should wait for rather than catch up under the lock (see `TenantState+IndexBuild`).
    public func indexBuildForRead() -> TenantState.IndexBuild? {
        isLoading ? nil : state.indexBuildForRead()
    }

    /// Swaps in indexes built off the tenant; false if a record changed meanwhile (they are dropped).
    public func install(_ built: TenantState.BuiltIndexes) -> Bool {
        !isLoading && state.install(built)
    }

    /// ``install(_:)`` from a thread outside the actor: under the tenant's lock at once when the actor
    /// has a ``TenantExecutor``, else as a task. `then` runs afterwards.
    public nonisolated func install(fromAnyThread built: TenantState.BuiltIndexes, then: @escaping @Sendable () -> Void) {
        if lockingExecutor != nil {
            withExclusiveAccess { tenant in _ = tenant.install(built) }
            then()
        } else {
            Task {
                _ = await self.install(built)
                then()
            }
        }
    }

    public func stats(caller: CallerIdentity) throws(LearnStoreError) -> TenantStats {
        try state.stats(caller: caller)
    }

    // MARK: durability

    /// The log failed the writes `lsns` of this tenant: they are taken back, newest first, and the log
    /// is told, so the tenant may write again. The log refuses this tenant's appends until then, so
    /// they are its newest writes and no later write is undone. Returns how many writes were undone.
    @discardableResult
    public func rollBack(_ lsns: ClosedRange<UInt64>) -> Int {
        var undone = 0
        while let last = pending.last, lsns.contains(last.lsn) {
            state.undo(last.undo)
            pending.removeLast()
            undone += 1
        }
        // A copy may have read what is taken back, and no mutation says what it was before.
        if undone > 0 { changesSinceCopy?.loseTrack() }
        // The failed LSNs hold nothing of this tenant: a snapshot taken now covers them too.
        lastWriteLSN = max(pending.last?.lsn ?? 0, lsns.upperBound)
        log.rollbackDone(tenant: tenantID)
        return undone
    }

    public var pendingWrites: Int { pending.count }

    /// Drops the undo of writes the log has made durable, which is otherwise kept until the tenant's
    /// next write (a bulk import's last batch: a step per record). For a pause after writes.
    public func releaseCommittedUndo() { trimCommitted() }

    /// Drops undo information of writes the log has made durable; a failed one stays until its
    /// rollback, however far the commit mark has moved past it.
    private func trimCommitted() {
        let committed = log.committedLSN
        var drop = 0
        while drop < pending.count, pending[drop].lsn <= committed, !log.hasFailed(pending[drop].lsn) { drop += 1 }
        if drop > 0 { pending.removeFirst(drop) }
    }

    // MARK: whole-tenant operations

    /// Where a piece a partition move copies into this node falls in the tenant's copy.
    public enum AdoptedPiece: Sendable {
        /// The first piece of the whole tenant: it empties the tenant first.
        case firstOfCopy
        /// The first piece of what changed since the copy began (``TenantChangeSet``): it goes on top.
        case firstOfChanges
        case later
    }

    /// Logs one piece of this tenant as another group's node exported it for a partition move
    /// (``TenantState/exportPiece(from:maximumItems:changes:)``). A first piece continues the sequence
    /// the tenant had there (`sourceSequence`), or this node's if that is higher: a tenant's sequence
    /// never goes back on a node. Client writes stay refused meanwhile (the partition is not this
    /// group's yet); this path passes the write gate. Nil when the piece changes nothing (an empty
    /// later piece, or empty changes of a tenant whose sequence did not move): no write is logged.
    public func adopt(_ piece: [TenantMutation], as position: AdoptedPiece, sourceSequence: UInt64) throws(LearnStoreError)
        -> (sequence: UInt64, lsn: UInt64)?
    {
        try checkReady()
        let mutations: [TenantMutation]
        let sequence: UInt64
        switch position {
        case .firstOfCopy:
            mutations = [.resetTenant] + piece
            sequence = max(sourceSequence, state.sequence) + 1
        case .firstOfChanges:
            guard !piece.isEmpty || sourceSequence > state.sequence else { return nil }
            mutations = [.continueTenant] + piece
            sequence = max(sourceSequence, state.sequence) + 1
        case .later:
            guard !piece.isEmpty else { return nil }
            mutations = piece
            sequence = state.sequence + 1
        }
        let undo = state.apply(mutations, sequence: sequence)
        let write = try commit(TenantWrite(result: (), mutations: mutations, sequence: sequence, undo: undo), gated: false)
        return (sequence, write.lsn)
    }

    /// Logs an online restore as a write (``TenantState/restoringWrite(of:)``) at `sequence`, above the
    /// tenant's: the way a restore reaches replicas, the change feed and a failover like any other
    /// write. Only while the tenant is held LOADING for that restore, so no client write comes between
    /// its rebuild and this. The write gate applies as to a client's write: a tenant whose partition a
    /// move has fenced refuses it, so the move's last copy cannot miss it.
    public func logRestore(_ mutations: [TenantMutation], sequence: UInt64) throws(LearnStoreError) -> UInt64 {
        guard isLoading, mutations.first == .resetTenant, sequence > state.sequence else {
            throw LearnStoreError(.internalError, "tenant \(tenantID): a restore is logged only while it holds the tenant, above sequence \(state.sequence)")
        }
        let undo = state.apply(mutations, sequence: sequence)
        return try commit(TenantWrite(result: (), mutations: mutations, sequence: sequence, undo: undo)).lsn
    }

    /// Empties this tenant, whose partition another group holds now: the last write it takes in this
    /// group (``TenantMutation/releaseTenant``). Nil when there was nothing to release.
    public func release() throws(LearnStoreError) -> UInt64? {
        try checkReady()
        changesSinceCopy = nil
        guard state.sequence > 0, !state.isEmpty else { return nil }
        let sequence = state.sequence + 1
        let undo = state.apply([.releaseTenant], sequence: sequence)
        return try commit(TenantWrite(result: (), mutations: [.releaseTenant], sequence: sequence, undo: undo), gated: false).lsn
    }

    /// A piece of this tenant for a partition move (``TenantState/exportPiece(from:maximumItems:changes:)``).
    /// A first piece with a `tracking` token starts tracking what later writes touch, for that copy
    /// (replacing any earlier copy's tracking), in the same step as it reads the piece.
    public func exportPiece(from cursor: TenantExportCursor, maximumItems: Int, tracking token: UInt64? = nil)
        -> (mutations: [TenantMutation], next: TenantExportCursor?)
    {
        if let token, cursor == .start {
            changesSinceCopy = TenantChangeSet(token: token, layoutRevision: state.layoutRevision, outcomes: state.outcomes.tables)
        }
        // A tracked copy reads the outcome rows as they were when it began (its changes say the rest).
        let outcomesAtStart = token != nil && changesSinceCopy?.token == token ? changesSinceCopy?.outcomesAtStart : nil
        return state.exportPiece(from: cursor, maximumItems: maximumItems, outcomeTables: outcomesAtStart)
    }

    /// A piece of what changed since the copy `token` began (``TenantChangeSet``), once the tenant
    /// takes no client writes; nil when that copy's changes are not known exactly here (not tracked
    /// for it, or ``TenantChangeSet/needsWholeCopy(of:)``): the whole tenant must be copied instead.
    public func exportChanges(from cursor: TenantExportCursor, maximumItems: Int, token: UInt64)
        -> (mutations: [TenantMutation], next: TenantExportCursor?)?
    {
        guard let changes = changesSinceCopy, changes.token == token, !changes.needsWholeCopy(of: state),
            let items = changesSinceCopy?.changedItems()
        else { return nil }
        return state.exportPiece(from: cursor, maximumItems: maximumItems, changes: items)
    }

    /// A piece of a round of the copy `token` (``TenantChangeSet/startRound()``); `starting` starts the
    /// round, in the same step as it reads the piece (once per round: starting it again would drop
    /// what the first start took). Nil when no changes are tracked for that copy here, or they were
    /// lost (the fenced part copies the tenant whole then).
    public func exportRound(from cursor: TenantExportCursor, maximumItems: Int, token: UInt64, starting: Bool)
        -> (mutations: [TenantMutation], next: TenantExportCursor?)?
    {
        guard changesSinceCopy?.token == token, changesSinceCopy?.lostTrack == false else { return nil }
        if starting { changesSinceCopy?.startRound() }
        guard let round = changesSinceCopy?.roundItems else { return nil }
        return state.exportPiece(from: cursor, maximumItems: maximumItems, changes: round)
    }

    /// Why the changes since the copy `token` cannot be exported (``exportChanges(from:maximumItems:token:)``
    /// gives nil), for the log.
    public func changesUnknownReason(token: UInt64) -> String {
        guard let changes = changesSinceCopy else { return "no copy of it is tracked here (this node started since, or the first copy did not see it)" }
        guard changes.token == token else { return "it is tracked for another copy" }
        return changes.wholeCopyReason(of: state) ?? "they are known"
    }

    /// The tenant's records, live and deleted (what a partition's size counts).
    public var recordCount: Int { state.store.liveCount + state.store.deletedCount }

    /// Client requests answered without an error since the tenant was opened on this node (what a
    /// partition's load counts).
    public var requestsServed: UInt64 { servedRequests }

    public func countRequests(_ count: Int) { servedRequests &+= UInt64(max(0, count)) }

    /// Stops tracking changes for a copy (it ended, or the tenant left).
    public func stopTrackingChanges() { changesSinceCopy = nil }

    /// An O(pages) capture for a snapshot, the LSN of the newest write it contains, and the LSNs of
    /// the writes in it not yet known durable: the snapshot may only be written once they are
    /// committed, and not at all if one failed. Serializing happens elsewhere.
    public func captureForSnapshot() -> (capture: TenantCapture, lsn: UInt64, unresolved: [UInt64]) {
        trimCommitted()
        return (state.capture(), lastWriteLSN, pending.map(\.lsn))
    }

    /// Replaces the tenant's state wholesale (snapshot restore into a running server).
    public func replace(with newState: TenantState, lsn: UInt64) {
        changesSinceCopy?.loseTrack()
        let randomness = state.idRandomness
        state = newState
        state.idRandomness = randomness
        pending.removeAll()
        lastWriteLSN = max(lastWriteLSN, lsn)
    }

    /// New record ids draw their random bits from `generator` (a simulation replaying a seed).
    public func drawRecordIDs(from generator: SplitMix64) { state.idRandomness = generator }

    /// Sets the state recovered at start, with the LSN of its newest write.
    public func recovered(_ newState: TenantState, lsn: UInt64) {
        state = newState
        lastWriteLSN = lsn
    }

    public func setLoading(_ loading: Bool) { isLoading = loading }

    /// ``TenantState/releasedToAnotherGroup``, read here: from another module, `state.releasedToAnotherGroup`
    /// copies the whole state first (a retain and a release of each of its buffers), on every request.
    public var releasedToAnotherGroup: Bool { state.releasedToAnotherGroup }
}

extension TenantActor {
    /// The tenant's sequence and the LSN of the write that reached it, read together (the change feed
    /// waits for that LSN to commit before it takes the sequence as committed).
    public var sequenceAndLastWrite: (sequence: UInt64, lsn: UInt64) { (state.sequence, lastWriteLSN) }

    /// Gives `tap` every write from now on (replacing any earlier tap) and returns, read at the same
    /// moment, the tenant's sequence and the LSN of the write that reached it: every write with a
    /// higher sequence reaches the tap.
    public func attachChangeTap(_ tap: any TenantChangeTap) -> (sequence: UInt64, lsn: UInt64) {
        changeTap = tap
        tap.attached(atSequence: state.sequence)
        return (state.sequence, lastWriteLSN)
    }
}
