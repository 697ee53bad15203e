import LearnStoreModel
import LearnStoreProtocol

/// The result of a write: the record and the tenant's sequence number after it.
public struct WriteResult<Value: Sendable>: Sendable {
    public var value: Value
    public var sequence: UInt64
    /// True when an idempotency key matched an earlier create and nothing new was written.
    public var replayed: Bool
}

/// One page of a list and the cursor of the next page (nil at the end).
public struct RecordPage: Sendable {
    public var records: [LearningRecord]
    public var nextCursor: ListCursor?
}

/// `client.performance.learningRecords`: the LearningRecord operations.
public struct LearningRecordsClient: Sendable {
    let client: LearnStoreClient

    public func create(_ body: RecordBody, idempotencyKey: String? = nil) async throws(LearnStoreError) -> WriteResult<LearningRecord> {
        let frame = try await client.request(opcode: Opcode.create) { RecordMessages.encodeCreate(body, idempotencyKey: idempotencyKey, into: &$0) }
        let (sequence, replayed, record) = try ClientConnection.decode(frame) { (r) throws(DecodeError) in
            try RecordMessages.decodeWriteResponse(from: &r, hasReplayed: true)
        }
        return WriteResult(value: record, sequence: sequence, replayed: replayed)
    }

    public func createBatch(_ bodies: [RecordBody], idempotencyKey: String? = nil) async throws(LearnStoreError) -> WriteResult<[LearningRecord]> {
        let frame = try await client.request(opcode: Opcode.createBatch) { RecordMessages.encodeCreateBatch(bodies, idempotencyKey: idempotencyKey, into: &$0) }
        let (sequence, replayed, records) = try ClientConnection.decode(frame) { (r) throws(DecodeError) in
            try RecordMessages.decodeBatchResponse(from: &r)
        }
        return WriteResult(value: records, sequence: sequence, replayed: replayed)
    }

    public func get(_ id: RecordID) async throws(LearnStoreError) -> LearningRecord {
        let frame = try await client.request(opcode: Opcode.get) { $0.writeRecordID(id) }
        return try ClientConnection.decode(frame) { (r) throws(DecodeError) in
            let record = try RecordCodec.decodeRecord(from: &r)
            try r.expectEnd()
            return record
        }
    }

    public func patch(_ id: RecordID, _ body: RecordBody, expectedUpdatedAt: Timestamp? = nil) async throws(LearnStoreError) -> WriteResult<LearningRecord> {
        let frame = try await client.request(opcode: Opcode.patch) { RecordMessages.encodePatch(id, body, expectedUpdatedAt: expectedUpdatedAt, into: &$0) }
        return try Self.write(frame)
    }

    public func delete(_ id: RecordID) async throws(LearnStoreError) -> WriteResult<LearningRecord> {
        try Self.write(try await client.request(opcode: Opcode.delete) { $0.writeRecordID(id) })
    }

    public func restore(_ id: RecordID) async throws(LearnStoreError) -> WriteResult<LearningRecord> {
        try Self.write(try await client.request(opcode: Opcode.restore) { $0.writeRecordID(id) })
    }

    /// Hard-deletes every record of a person (admin scope). With `dryRun`, only counts them.
    public func purgePerson(_ personID: UUID16, dryRun: Bool) async throws(LearnStoreError) -> WriteResult<Int> {
        let frame = try await client.request(opcode: Opcode.purgePerson) { RecordMessages.encodePurge(personID, dryRun: dryRun, into: &$0) }
        let (sequence, count) = try ClientConnection.decode(frame) { (r) throws(DecodeError) in try RecordMessages.decodePurgeResponse(from: &r) }
        return WriteResult(value: count, sequence: sequence, replayed: false)
    }

    /// One page.
    public func page(_ query: ListQuery) async throws(LearnStoreError) -> RecordPage {
        let frame = try await client.request(opcode: Opcode.list) { ListQueryCodec.encode(query, into: &$0) }
        let (records, cursor) = try ClientConnection.decode(frame) { (r) throws(DecodeError) in try RecordMessages.decodeListResponse(from: &r) }
        return RecordPage(records: records, nextCursor: cursor.isEmpty ? nil : try ListCursor(bytes: cursor))
    }

    /// Every matching record, following cursors page by page as the sequence is iterated.
    public func list(_ query: ListQuery = ListQuery()) -> RecordList {
        RecordList(client: self, query: query)
    }

    /// The tenant's statistics (JSON).
    public func stats() async throws(LearnStoreError) -> JSONValue {
        try LearnStoreClient.json(try await client.request(opcode: Opcode.stats) { _ in })
    }

    static func write(_ frame: Frame) throws(LearnStoreError) -> WriteResult<LearningRecord> {
        let (sequence, _, record) = try ClientConnection.decode(frame) { (r) throws(DecodeError) in
            try RecordMessages.decodeWriteResponse(from: &r, hasReplayed: false)
        }
        return WriteResult(value: record, sequence: sequence, replayed: false)
    }
}

/// An `AsyncSequence` of LearningRecords that fetches the next page when the current one is used up.
public struct RecordList: AsyncSequence, Sendable {
    public typealias Element = LearningRecord
    let client: LearningRecordsClient
    let query: ListQuery

    public struct AsyncIterator: AsyncIteratorProtocol {
        let client: LearningRecordsClient
        var query: ListQuery
        var buffer: [LearningRecord] = []
        var index = 0
        var finished = false

        public mutating func next() async throws(LearnStoreError) -> LearningRecord? {
            while index == buffer.count {
                if finished { return nil }
                let page = try await client.page(query)
                buffer = page.records
                index = 0
                if let cursor = page.nextCursor { query.cursor = cursor } else { finished = true }
            }
            defer { index += 1 }
            return buffer[index]
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(client: client, query: query) }
}
