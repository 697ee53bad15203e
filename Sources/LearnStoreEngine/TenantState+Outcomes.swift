import CanvasOutcomes
import LearnStoreModel

/// Canvas outcome data: ingestion of live events and the queries and rollups over it. The tenant is
/// always the caller's; `metadata.root_account_*` is stored with each entity and never used for scoping.
/// Outcome data has no application: an app-scoped token sees the tenant's outcome data like any other.
extension TenantState {
    /// The most results one page returns, and the default.
    public static let maximumOutcomePage = OutcomeStore.maximumPageSize
    public static let defaultOutcomePage = 100

    /// Ingests a batch of live events (each the event's JSON as sent). Every event gets its own result:
    /// applied, duplicate, stale, or rejected with a typed error naming the field. A rejected event
    /// changes nothing and the rest of the batch still applies. The applied ones are one write (one
    /// sequence number, one log entry, undone together); when none applied there is no write at all.
    public mutating func ingest(_ events: [[UInt8]], caller: CallerIdentity) throws(LearnStoreError) -> TenantWrite<[EventOutcome]> {
        try ingest(parsed: events.map(Self.parseEvent), caller: caller)
    }

    /// One event's JSON parsed, or why it is rejected: no tenant state is needed, so the server does
    /// this before it takes the tenant's lock.
    public static func parseEvent(_ bytes: [UInt8]) -> Result<OutcomeEvent, OutcomeEventError> {
        do throws(OutcomeEventError) { return .success(try OutcomeEvent.parse(bytes: bytes)) } catch { return .failure(error) }
    }

    public mutating func ingest(parsed events: [Result<OutcomeEvent, OutcomeEventError>], caller: CallerIdentity) throws(LearnStoreError) -> TenantWrite<[EventOutcome]> {
        try caller.require(.outcomesWrite)
        guard !events.isEmpty else { throw .validation("a batch needs at least one event", field: "events") }
        guard events.count <= limits.maximumBatch else {
            throw .validation("a batch holds at most \(limits.maximumBatch) events, got \(events.count)", field: "events")
        }
        var results: [EventOutcome] = []
        results.reserveCapacity(events.count)
        var applied: [OutcomeRecord] = []
        // Rows this batch will have written, so an event is judged against an earlier one of the same
        // batch exactly as `apply` will judge it (the store itself is changed only by `apply`).
        var written: [TombstoneKey: OutcomeRecord] = [:]
        for parsed in events {
            let event: OutcomeEvent
            switch parsed {
            case .success(let parsedEvent): event = parsedEvent
            case .failure(let error):
                results.append(.rejected(EventRejection(error)))
                continue
            }
            let record = OutcomeRecord(storing: event.entity)
            let key = TombstoneKey(kind: record.kind, key: record.key)
            let verdict = record.verdict(over: written[key] ?? outcomes.record(kind: record.kind, key: record.key))
            if verdict == .applied {
                applied.append(record)
                written[key] = record
            }
            results.append(EventOutcome(verdict, kind: record.kind, key: record.key))
        }
        guard !applied.isEmpty else { return TenantWrite(result: results, mutations: [], sequence: sequence) }
        let newSequence = sequence + 1
        let mutations: [TenantMutation] = [.outcomes(applied)]
        let undo = apply(mutations, sequence: newSequence)
        return TenantWrite(result: results, mutations: mutations, sequence: newSequence, undo: undo)
    }

    /// A live outcome, group, link, result (by key) or proficiency; NOT_FOUND when absent or deleted.
    public func outcomeEntity(_ kind: OutcomeEntityKind, key: String, caller: CallerIdentity) throws(LearnStoreError) -> OutcomeEntity {
        try caller.require(.outcomesRead)
        guard let entity = outcomes.entity(kind, key: key) else { throw .notFound("no \(kind) \(key)") }
        return entity
    }

    /// Outcomes, groups or links selected by a tree query.
    public func outcomeTree(_ query: OutcomeTreeQuery, caller: CallerIdentity) throws(LearnStoreError) -> [OutcomeEntity] {
        try caller.require(.outcomesRead)
        return outcomes.entities(query)
    }

    /// One page of results, after `cursor`; `limit` is 1 to 1000.
    public func outcomeResults(_ scope: ResultScope, after cursor: ResultCursor?, limit: Int = defaultOutcomePage,
                               caller: CallerIdentity) throws(LearnStoreError) -> ResultPage {
        try caller.require(.outcomesRead)
        guard (1...Self.maximumOutcomePage).contains(limit) else {
            throw .validation("limit must be 1 to \(Self.maximumOutcomePage), got \(limit)", field: "limit")
        }
        if case .assessedBetween(let from, let to) = scope, to < from {
            throw .validation("the time range ends before it starts", field: "to")
        }
        return outcomes.results(scope, after: cursor, limit: limit)
    }

    /// The proficiency in force for a context, or nil.
    public func proficiency(inForce context: ContextRef, caller: CallerIdentity) throws(LearnStoreError) -> OutcomeProficiency? {
        try caller.require(.outcomesRead)
        return outcomes.proficiency(inForce: context)
    }

    public func studentRollup(userUUID: String, outcomeID: String, context: ContextRef, options: RollupOptions = RollupOptions(),
                              caller: CallerIdentity) throws(LearnStoreError) -> StudentOutcomeRollup? {
        try caller.require(.outcomesRead)
        try Self.checkOverride(options)
        return outcomes.studentRollup(userUUID: userUUID, outcomeID: outcomeID, context: context, options: options)
    }

    public func studentRollups(userUUID: String, context: ContextRef, options: RollupOptions = RollupOptions(),
                               caller: CallerIdentity) throws(LearnStoreError) -> [StudentOutcomeRollup] {
        try caller.require(.outcomesRead)
        try Self.checkOverride(options)
        return outcomes.studentRollups(userUUID: userUUID, context: context, options: options)
    }

    public func contextAggregates(context: ContextRef, options: RollupOptions = RollupOptions(),
                                  caller: CallerIdentity) throws(LearnStoreError) -> [ContextOutcomeAggregate] {
        try caller.require(.outcomesRead)
        try Self.checkOverride(options)
        return outcomes.contextAggregates(context: context, options: options)
    }

    /// A method named by the request must be one this server computes: an outcome's own unknown method
    /// yields no rollup, as in Canvas, but a caller's typo should not look like "no rollup".
    static func checkOverride(_ options: RollupOptions) throws(LearnStoreError) {
        if let method = options.calculationOverride?.method, case .unknown(let name) = method {
            throw .validation(
                "calculation_method \(name.utf8.count <= 64 ? name : "(a long name)") is not one of \(CalculationMethod.known.map(\.rawValue).joined(separator: ", "))",
                field: "calculation_method")
        }
    }
}
