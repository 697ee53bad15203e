import CanvasOutcomes
import LearnStoreModel

/// Payloads of the Canvas outcome opcodes `0x40`–`0x44` (docs/PROTOCOL.md, appendix B). Entities travel
/// as their JSON text; the rollup opcodes are in ``RollupMessages``.
public enum OutcomeMessages {
    /// Keys and ids in requests (a result's synthetic key can be several KiB).
    public static let maximumKeyBytes = 8192
    /// `context_type`, `context_id`, `user_uuid`, asset type and id.
    public static let maximumNameBytes = 1024
    public static let maximumCursorBytes = 16384
    /// One event's JSON.
    public static let maximumEventBytes = 4 << 20
    /// Entities or results in one response, as a decoder's allocation guard.
    static let maximumListCount = 1 << 20

    // MARK: shared encodings

    public static func writeContext(_ context: ContextRef, into writer: inout ByteWriter) {
        writer.writeString(context.type)
        writer.writeString(context.id)
    }

    public static func readContext(_ reader: inout ByteReader) throws(DecodeError) -> ContextRef {
        let type = try reader.readString(limit: maximumNameBytes)
        return ContextRef(type: type, id: try reader.readString(limit: maximumNameBytes))
    }

    static func readKind(_ reader: inout ByteReader) throws(DecodeError) -> OutcomeEntityKind {
        let raw = try reader.readU8()
        guard let kind = OutcomeEntityKind(rawValue: raw) else {
            throw DecodeError(offset: reader.offset - 1, reason: "unknown entity kind \(raw)")
        }
        return kind
    }

    static func readBool(_ reader: inout ByteReader) throws(DecodeError) -> Bool {
        try RecordMessages.readBool(&reader)
    }

    /// An entity: its JSON text (the event body's fields plus `metadata`).
    public static func writeEntity(_ entity: OutcomeEntity, into writer: inout ByteWriter) {
        var json: [UInt8] = []
        json.reserveCapacity(512)
        entity.json.write(to: &json)
        writer.writeLengthPrefixed(json)
    }

    public static func readEntity(_ kind: OutcomeEntityKind, _ reader: inout ByteReader) throws(DecodeError) -> OutcomeEntity {
        let start = reader.offset
        let length = try reader.readLength(limit: maximumEventBytes)
        let bytes = Array(try reader.readBytes(length))
        do {
            return try OutcomeEntity.parse(kind: kind, json: try JSONValue.parse(bytes))
        } catch {
            throw DecodeError(offset: start, reason: "\(kind) JSON: \(error)")
        }
    }

    // MARK: OUTCOME_INGEST 0x40

    public static func encodeIngest(_ events: [[UInt8]], into writer: inout ByteWriter) {
        writer.writeVarint(UInt64(events.count))
        for event in events { writer.writeLengthPrefixed(event) }
    }

    public static func decodeIngest(from reader: inout ByteReader, maximumCount: Int) throws(DecodeError) -> [[UInt8]] {
        let count = try reader.readCount(limit: maximumCount, minimumElementBytes: 1)
        var events: [[UInt8]] = []
        events.reserveCapacity(count)
        for _ in 0..<count {
            let length = try reader.readLength(limit: maximumEventBytes)
            events.append(Array(try reader.readBytes(length)))
        }
        try reader.expectEnd()
        return events
    }

    public enum IngestStatus: UInt8 {
        case applied = 0, duplicate = 1, stale = 2, rejected = 3
    }

    public static func encodeIngestResponse(sequence: UInt64, _ outcomes: [EventOutcome], into writer: inout ByteWriter) {
        writer.writeU64(sequence)
        writer.writeVarint(UInt64(outcomes.count))
        for outcome in outcomes {
            switch outcome {
            case .applied(let kind, let key), .duplicate(let kind, let key), .stale(let kind, let key):
                let status: IngestStatus = switch outcome {
                case .applied: .applied
                case .duplicate: .duplicate
                default: .stale
                }
                writer.writeU8(status.rawValue)
                writer.writeU8(kind.rawValue)
                writer.writeString(key)
            case .rejected(let rejection):
                writer.writeU8(IngestStatus.rejected.rawValue)
                ErrorBody.encode(rejection.error, into: &writer)
                writer.writeString(rejection.reason.name)
            }
        }
    }

    public static func decodeIngestResponse(from reader: inout ByteReader) throws(DecodeError) -> (sequence: UInt64, outcomes: [EventOutcome]) {
        let sequence = try reader.readU64()
        let count = try reader.readLength(limit: maximumListCount)
        var outcomes: [EventOutcome] = []
        outcomes.reserveCapacity(min(count, 4096))
        for _ in 0..<count {
            let raw = try reader.readU8()
            guard let status = IngestStatus(rawValue: raw) else {
                throw DecodeError(offset: reader.offset - 1, reason: "unknown ingest status \(raw)")
            }
            switch status {
            case .applied, .duplicate, .stale:
                let kind = try readKind(&reader)
                let key = try reader.readString(limit: maximumKeyBytes)
                outcomes.append(status == .applied ? .applied(kind, key: key)
                                : status == .duplicate ? .duplicate(kind, key: key) : .stale(kind, key: key))
            case .rejected:
                let error = try ErrorBody.decode(from: &reader)
                let reason = try reader.readString(limit: 256)
                outcomes.append(.rejected(EventRejection(reason: OutcomeEventError.Reason(reason), error: error)))
            }
        }
        try reader.expectEnd()
        return (sequence, outcomes)
    }

    // MARK: OUTCOME_GET 0x41

    public static func encodeGet(_ kind: OutcomeEntityKind, key: String, into writer: inout ByteWriter) {
        writer.writeU8(kind.rawValue)
        writer.writeString(key)
    }

    public static func decodeGet(from reader: inout ByteReader) throws(DecodeError) -> (OutcomeEntityKind, String) {
        let kind = try readKind(&reader)
        let key = try reader.readString(limit: maximumKeyBytes)
        try reader.expectEnd()
        return (kind, key)
    }

    /// The GET response: the entity's JSON.
    public static func decodeGetResponse(_ kind: OutcomeEntityKind, from reader: inout ByteReader) throws(DecodeError) -> OutcomeEntity {
        let entity = try readEntity(kind, &reader)
        try reader.expectEnd()
        return entity
    }

    // MARK: OUTCOME_TREE 0x42

    public enum TreeSelector: UInt8 {
        case contextOutcomes = 0, contextGroups, contextLinks, groupLinks, outcomeLinks, groupChildren, groupPath
    }

    public static func encodeTree(_ query: OutcomeTreeQuery, into writer: inout ByteWriter) {
        switch query {
        case .contextOutcomes(let context): writer.writeU8(TreeSelector.contextOutcomes.rawValue); writeContext(context, into: &writer)
        case .contextGroups(let context): writer.writeU8(TreeSelector.contextGroups.rawValue); writeContext(context, into: &writer)
        case .contextLinks(let context): writer.writeU8(TreeSelector.contextLinks.rawValue); writeContext(context, into: &writer)
        case .groupLinks(let id): writer.writeU8(TreeSelector.groupLinks.rawValue); writer.writeString(id)
        case .outcomeLinks(let id): writer.writeU8(TreeSelector.outcomeLinks.rawValue); writer.writeString(id)
        case .groupChildren(let id): writer.writeU8(TreeSelector.groupChildren.rawValue); writer.writeString(id)
        case .groupPath(let id): writer.writeU8(TreeSelector.groupPath.rawValue); writer.writeString(id)
        }
    }

    public static func decodeTree(from reader: inout ByteReader) throws(DecodeError) -> OutcomeTreeQuery {
        let raw = try reader.readU8()
        guard let selector = TreeSelector(rawValue: raw) else {
            throw DecodeError(offset: reader.offset - 1, reason: "unknown tree query \(raw)")
        }
        let query: OutcomeTreeQuery
        switch selector {
        case .contextOutcomes: query = .contextOutcomes(try readContext(&reader))
        case .contextGroups: query = .contextGroups(try readContext(&reader))
        case .contextLinks: query = .contextLinks(try readContext(&reader))
        case .groupLinks: query = .groupLinks(groupID: try reader.readString(limit: maximumKeyBytes))
        case .outcomeLinks: query = .outcomeLinks(outcomeID: try reader.readString(limit: maximumKeyBytes))
        case .groupChildren: query = .groupChildren(groupID: try reader.readString(limit: maximumKeyBytes))
        case .groupPath: query = .groupPath(groupID: try reader.readString(limit: maximumKeyBytes))
        }
        try reader.expectEnd()
        return query
    }

    /// `varint count`, then (`u8 kind`, entity JSON) per entity.
    public static func encodeEntities(_ entities: [OutcomeEntity], into writer: inout ByteWriter) {
        writer.writeVarint(UInt64(entities.count))
        for entity in entities {
            writer.writeU8(entity.kind.rawValue)
            writeEntity(entity, into: &writer)
        }
    }

    public static func decodeEntities(from reader: inout ByteReader) throws(DecodeError) -> [OutcomeEntity] {
        let count = try reader.readLength(limit: maximumListCount)
        var entities: [OutcomeEntity] = []
        entities.reserveCapacity(min(count, 4096))
        for _ in 0..<count {
            let kind = try readKind(&reader)
            entities.append(try readEntity(kind, &reader))
        }
        try reader.expectEnd()
        return entities
    }

    // MARK: OUTCOME_RESULTS 0x43

    public enum ScopeSelector: UInt8 {
        case student = 0, outcome, context, asset, assessedBetween
    }

    /// `limit` 0 means the server's default (100).
    public static func encodeResults(_ scope: ResultScope, after cursor: ResultCursor?, limit: Int, into writer: inout ByteWriter) {
        switch scope {
        case .student(let uuid): writer.writeU8(ScopeSelector.student.rawValue); writer.writeString(uuid)
        case .outcome(let id): writer.writeU8(ScopeSelector.outcome.rawValue); writer.writeString(id)
        case .context(let context): writer.writeU8(ScopeSelector.context.rawValue); writeContext(context, into: &writer)
        case .asset(let asset):
            writer.writeU8(ScopeSelector.asset.rawValue)
            writer.writeString(asset.type)
            writer.writeString(asset.id)
        case .assessedBetween(let from, let to):
            writer.writeU8(ScopeSelector.assessedBetween.rawValue)
            writer.writeI64(from.milliseconds)
            writer.writeI64(to.milliseconds)
        }
        writer.writeU16(UInt16(clamping: limit))
        writer.writeLengthPrefixed(Array((cursor?.token ?? "").utf8))
    }

    /// The scope, the limit as sent (0 = default) and the cursor's bytes (empty = first page); the
    /// engine validates the limit and the cursor.
    public static func decodeResults(from reader: inout ByteReader) throws(DecodeError) -> (scope: ResultScope, limit: Int, cursor: [UInt8]) {
        let raw = try reader.readU8()
        guard let selector = ScopeSelector(rawValue: raw) else {
            throw DecodeError(offset: reader.offset - 1, reason: "unknown result scope \(raw)")
        }
        let scope: ResultScope
        switch selector {
        case .student: scope = .student(try reader.readString(limit: maximumNameBytes))
        case .outcome: scope = .outcome(try reader.readString(limit: maximumKeyBytes))
        case .context: scope = .context(try readContext(&reader))
        case .asset:
            let type = try reader.readString(limit: maximumNameBytes)
            scope = .asset(AssetRef(type: type, id: try reader.readString(limit: maximumNameBytes)))
        case .assessedBetween:
            let from = try reader.readTimestamp()
            scope = .assessedBetween(from: from, to: try reader.readTimestamp())
        }
        let limit = Int(try reader.readU16())
        let length = try reader.readLength(limit: maximumCursorBytes)
        let cursor = Array(try reader.readBytes(length))
        try reader.expectEnd()
        return (scope, limit, cursor)
    }

    /// `varint count`, each result's JSON, then `bytes next_cursor` (empty on the last page).
    public static func encodeResultPage(_ page: ResultPage, into writer: inout ByteWriter) {
        writer.writeVarint(UInt64(page.results.count))
        for result in page.results { writeEntity(.result(result), into: &writer) }
        writer.writeLengthPrefixed(Array((page.next?.token ?? "").utf8))
    }

    public static func decodeResultPage(from reader: inout ByteReader) throws(DecodeError) -> ResultPage {
        let count = try reader.readLength(limit: maximumListCount)
        var results: [OutcomeResult] = []
        results.reserveCapacity(min(count, 4096))
        for _ in 0..<count {
            guard case .result(let result) = try readEntity(.result, &reader) else { continue }
            results.append(result)
        }
        let start = reader.offset
        let length = try reader.readLength(limit: maximumCursorBytes)
        let bytes = Array(try reader.readBytes(length))
        try reader.expectEnd()
        guard !bytes.isEmpty else { return ResultPage(results: results, next: nil) }
        guard let token = String(validating: bytes, as: UTF8.self), let cursor = ResultCursor(token: token) else {
            throw DecodeError(offset: start, reason: "malformed next_cursor")
        }
        return ResultPage(results: results, next: cursor)
    }

    /// The engine's cursor from request bytes: nil for empty; VALIDATION (field `cursor`) when malformed.
    public static func cursor(_ bytes: [UInt8]) throws(LearnStoreError) -> ResultCursor? {
        guard !bytes.isEmpty else { return nil }
        guard let token = String(validating: bytes, as: UTF8.self), let cursor = ResultCursor(token: token) else {
            throw .validation("not a cursor from an earlier page", field: "cursor")
        }
        return cursor
    }

    // MARK: OUTCOME_PROFICIENCY 0x44

    public static func decodeContextRequest(from reader: inout ByteReader) throws(DecodeError) -> ContextRef {
        let context = try readContext(&reader)
        try reader.expectEnd()
        return context
    }

    /// `u8 present`, then the proficiency's JSON when present.
    public static func encodeProficiencyResponse(_ proficiency: OutcomeProficiency?, into writer: inout ByteWriter) {
        guard let proficiency else {
            writer.writeU8(0)
            return
        }
        writer.writeU8(1)
        writeEntity(.proficiency(proficiency), into: &writer)
    }

    public static func decodeProficiencyResponse(from reader: inout ByteReader) throws(DecodeError) -> OutcomeProficiency? {
        var proficiency: OutcomeProficiency?
        if try readBool(&reader) {
            guard case .proficiency(let value) = try readEntity(.proficiency, &reader) else { return nil }
            proficiency = value
        }
        try reader.expectEnd()
        return proficiency
    }
}
