import CanvasOutcomes
import LearnStoreModel
import LearnStoreProtocol

/// What one ingest batch did: the tenant's sequence after it and one outcome per event, in order.
public struct OutcomeIngestReport: Sendable, Hashable {
    /// Unchanged from before the batch when nothing applied.
    public var sequence: UInt64
    public var outcomes: [EventOutcome]

    public var applied: Int { outcomes.count { if case .applied = $0 { true } else { false } } }
    public var duplicates: Int { outcomes.count { if case .duplicate = $0 { true } else { false } } }
    public var stale: Int { outcomes.count { if case .stale = $0 { true } else { false } } }
    /// The refused events with their index in the batch.
    public var rejected: [(index: Int, rejection: EventRejection)] {
        outcomes.enumerated().compactMap { index, outcome in
            if case .rejected(let rejection) = outcome { (index, rejection) } else { nil }
        }
    }
}

/// `client.outcomes`: Canvas learning-outcome data (needs a server announcing HELLO feature bit 1).
/// Writes need the `outcomes:write` scope, everything else `outcomes:read`; errors are `LearnStoreError`s
/// (`FORBIDDEN`, `NOT_FOUND`, `VALIDATION` naming the field, ...).
public struct OutcomesClient: Sendable {
    let client: LearnStoreClient

    // MARK: ingest

    /// Sends one batch of live events (each the event's JSON as Canvas emitted it, 1 to 1000 per batch).
    /// A malformed event is reported in its outcome and the rest of the batch still applies.
    public func ingest(_ events: [[UInt8]]) async throws(LearnStoreError) -> OutcomeIngestReport {
        let frame = try await client.request(opcode: Opcode.outcomeIngest) { OutcomeMessages.encodeIngest(events, into: &$0) }
        let (sequence, outcomes) = try ClientConnection.decode(frame) { (r) throws(DecodeError) in
            try OutcomeMessages.decodeIngestResponse(from: &r)
        }
        guard outcomes.count == events.count else {
            throw LearnStoreError(.protocolViolation, "the server answered \(outcomes.count) outcomes for \(events.count) events")
        }
        return OutcomeIngestReport(sequence: sequence, outcomes: outcomes)
    }

    /// `ingest` for events given as JSON text.
    public func ingest(jsonEvents events: [String]) async throws(LearnStoreError) -> OutcomeIngestReport {
        try await ingest(events.map { Array($0.utf8) })
    }

    // MARK: by id

    /// A live entity by kind and key (a result's key may be synthetic); throws `NOT_FOUND` when absent or deleted.
    public func entity(_ kind: OutcomeEntityKind, key: String) async throws(LearnStoreError) -> OutcomeEntity {
        let frame = try await client.request(opcode: Opcode.outcomeGet) { OutcomeMessages.encodeGet(kind, key: key, into: &$0) }
        return try ClientConnection.decode(frame) { (r) throws(DecodeError) in try OutcomeMessages.decodeGetResponse(kind, from: &r) }
    }

    public func outcome(id: String) async throws(LearnStoreError) -> LearningOutcome {
        guard case .outcome(let value) = try await entity(.outcome, key: id) else { throw Self.wrongKind(.outcome) }
        return value
    }

    public func group(id: String) async throws(LearnStoreError) -> OutcomeGroup {
        guard case .group(let value) = try await entity(.group, key: id) else { throw Self.wrongKind(.group) }
        return value
    }

    public func link(id: String) async throws(LearnStoreError) -> OutcomeLink {
        guard case .link(let value) = try await entity(.link, key: id) else { throw Self.wrongKind(.link) }
        return value
    }

    public func proficiency(id: String) async throws(LearnStoreError) -> OutcomeProficiency {
        guard case .proficiency(let value) = try await entity(.proficiency, key: id) else { throw Self.wrongKind(.proficiency) }
        return value
    }

    /// A result by ``OutcomeResult/key``.
    public func result(key: String) async throws(LearnStoreError) -> OutcomeResult {
        guard case .result(let value) = try await entity(.result, key: key) else { throw Self.wrongKind(.result) }
        return value
    }

    static func wrongKind(_ kind: OutcomeEntityKind) -> LearnStoreError {
        LearnStoreError(.protocolViolation, "the server answered another kind of entity than \(kind)")
    }

    // MARK: the outcome tree

    /// The entities a tree query selects (not paged).
    public func entities(_ query: OutcomeTreeQuery) async throws(LearnStoreError) -> [OutcomeEntity] {
        let frame = try await client.request(opcode: Opcode.outcomeTree) { OutcomeMessages.encodeTree(query, into: &$0) }
        return try ClientConnection.decode(frame) { (r) throws(DecodeError) in try OutcomeMessages.decodeEntities(from: &r) }
    }

    /// Outcomes whose own context is `context`, by id.
    public func outcomes(in context: ContextRef) async throws(LearnStoreError) -> [LearningOutcome] {
        try await entities(.contextOutcomes(context)).compactMap { if case .outcome(let e) = $0 { e } else { nil } }
    }

    public func groups(in context: ContextRef) async throws(LearnStoreError) -> [OutcomeGroup] {
        try await entities(.contextGroups(context)).compactMap { if case .group(let e) = $0 { e } else { nil } }
    }

    public func links(in context: ContextRef) async throws(LearnStoreError) -> [OutcomeLink] {
        try await entities(.contextLinks(context)).compactMap { if case .link(let e) = $0 { e } else { nil } }
    }

    public func links(inGroup groupID: String) async throws(LearnStoreError) -> [OutcomeLink] {
        try await entities(.groupLinks(groupID: groupID)).compactMap { if case .link(let e) = $0 { e } else { nil } }
    }

    public func links(forOutcome outcomeID: String) async throws(LearnStoreError) -> [OutcomeLink] {
        try await entities(.outcomeLinks(outcomeID: outcomeID)).compactMap { if case .link(let e) = $0 { e } else { nil } }
    }

    /// A group's child groups and links, each by id.
    public func children(of groupID: String) async throws(LearnStoreError) -> (groups: [OutcomeGroup], links: [OutcomeLink]) {
        let entities = try await entities(.groupChildren(groupID: groupID))
        return (entities.compactMap { if case .group(let e) = $0 { e } else { nil } },
                entities.compactMap { if case .link(let e) = $0 { e } else { nil } })
    }

    /// The group, its parent, and so on up to the root.
    public func groupPath(toRootFrom groupID: String) async throws(LearnStoreError) -> [OutcomeGroup] {
        try await entities(.groupPath(groupID: groupID)).compactMap { if case .group(let e) = $0 { e } else { nil } }
    }

    /// The proficiency in force for a context, or nil when it has none.
    public func proficiency(inForce context: ContextRef) async throws(LearnStoreError) -> OutcomeProficiency? {
        let frame = try await client.request(opcode: Opcode.outcomeProficiency) { OutcomeMessages.writeContext(context, into: &$0) }
        return try ClientConnection.decode(frame) { (r) throws(DecodeError) in try OutcomeMessages.decodeProficiencyResponse(from: &r) }
    }

    // MARK: results

    /// One page of results in (`assessed_at`, id) order, after `cursor`; `limit` 1 to 1000, 0 for the default (100).
    public func resultsPage(_ scope: ResultScope, after cursor: ResultCursor? = nil, limit: Int = 0) async throws(LearnStoreError) -> ResultPage {
        let frame = try await client.request(opcode: Opcode.outcomeResults) {
            OutcomeMessages.encodeResults(scope, after: cursor, limit: limit, into: &$0)
        }
        return try ClientConnection.decode(frame) { (r) throws(DecodeError) in try OutcomeMessages.decodeResultPage(from: &r) }
    }

    /// Every result of `scope`, fetching page after page (keyset cursors) as the sequence is iterated.
    public func results(_ scope: ResultScope, pageSize: Int = 0, after cursor: ResultCursor? = nil) -> OutcomeResultList {
        OutcomeResultList(client: self, scope: scope, pageSize: pageSize, start: cursor)
    }

    // MARK: rollups

    /// One student's rollup for one outcome in a context; nil when there is none.
    public func studentRollup(userUUID: String, outcomeID: String, context: ContextRef,
                              options: RollupOptions = RollupOptions()) async throws(LearnStoreError) -> StudentOutcomeRollup? {
        let frame = try await client.request(opcode: Opcode.outcomeRollup) {
            RollupMessages.encodeRollup(userUUID: userUUID, outcomeID: outcomeID, context: context, options: options, into: &$0)
        }
        return try ClientConnection.decode(frame) { (r) throws(DecodeError) in
            try RollupMessages.decodeRollupResponse(from: &r, userUUID: userUUID, context: context)
        }
    }

    /// One student's rollups across a context's outcomes, by outcome id.
    public func studentRollups(userUUID: String, context: ContextRef,
                               options: RollupOptions = RollupOptions()) async throws(LearnStoreError) -> [StudentOutcomeRollup] {
        let frame = try await client.request(opcode: Opcode.outcomeStudentRollups) {
            RollupMessages.encodeStudentRollups(userUUID: userUUID, context: context, options: options, into: &$0)
        }
        return try ClientConnection.decode(frame) { (r) throws(DecodeError) in
            try RollupMessages.decodeRollupsResponse(from: &r, userUUID: userUUID, context: context)
        }
    }

    /// Per outcome, the mean and median of the students' rollups in a context, by outcome id.
    public func contextAggregates(context: ContextRef,
                                  options: RollupOptions = RollupOptions()) async throws(LearnStoreError) -> [ContextOutcomeAggregate] {
        let frame = try await client.request(opcode: Opcode.outcomeAggregates) {
            RollupMessages.encodeAggregates(context: context, options: options, into: &$0)
        }
        return try ClientConnection.decode(frame) { (r) throws(DecodeError) in
            try RollupMessages.decodeAggregatesResponse(from: &r, context: context)
        }
    }
}

extension LearnStoreClient {
    /// Canvas learning-outcome data.
    public var outcomes: OutcomesClient { OutcomesClient(client: self) }
}

/// An `AsyncSequence` of results that fetches the next page when the current one is used up.
public struct OutcomeResultList: AsyncSequence, Sendable {
    public typealias Element = OutcomeResult
    let client: OutcomesClient
    let scope: ResultScope
    let pageSize: Int
    let start: ResultCursor?

    public struct AsyncIterator: AsyncIteratorProtocol {
        let client: OutcomesClient
        let scope: ResultScope
        let pageSize: Int
        var cursor: ResultCursor?
        var buffer: [OutcomeResult] = []
        var index = 0
        var finished = false

        public mutating func next() async throws(LearnStoreError) -> OutcomeResult? {
            while index == buffer.count {
                if finished { return nil }
                let page = try await client.resultsPage(scope, after: cursor, limit: pageSize)
                buffer = page.results
                index = 0
                if let next = page.next { cursor = next } else { finished = true }
            }
            defer { index += 1 }
            return buffer[index]
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(client: client, scope: scope, pageSize: pageSize, cursor: start)
    }
}
