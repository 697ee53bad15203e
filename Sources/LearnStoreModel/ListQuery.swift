/// A half-open time range `from ..< to`; either end may be open.
public struct TimeRange: Sendable, Hashable {
    public var from: Timestamp?
    public var to: Timestamp?
    public init(from: Timestamp? = nil, to: Timestamp? = nil) {
        self.from = from
        self.to = to
    }
}

public enum SortOrder: UInt8, Sendable, Hashable {
    case ascending = 0, descending = 1
}

/// Filters, order and paging of a list of LearningRecords. Every filter is served by an index;
/// results are ordered by (created_at, id).
public struct ListQuery: Sendable, Hashable {
    public static let defaultLimit = 50
    public static let maximumLimit = 1000

    public var personID: UUID16?
    public var certificationRef: String?
    public var linkedCohortID: UUID16?
    public var linkedAssessmentID: UUID16?
    public var provider: String?
    public var passed: Bool?
    public var completedAt: TimeRange?
    public var expiresAt: TimeRange?
    /// Records with updated_at >= this instant.
    public var updatedSince: Timestamp?
    public var includeDeleted = false
    public var order: SortOrder = .descending
    public var limit = ListQuery.defaultLimit
    public var cursor: ListCursor?

    public init(
        personID: UUID16? = nil, certificationRef: String? = nil, linkedCohortID: UUID16? = nil,
        linkedAssessmentID: UUID16? = nil, provider: String? = nil, passed: Bool? = nil,
        completedAt: TimeRange? = nil, expiresAt: TimeRange? = nil, updatedSince: Timestamp? = nil,
        includeDeleted: Bool = false, order: SortOrder = .descending, limit: Int = ListQuery.defaultLimit,
        cursor: ListCursor? = nil
    ) {
        self.personID = personID
        self.certificationRef = certificationRef
        self.linkedCohortID = linkedCohortID
        self.linkedAssessmentID = linkedAssessmentID
        self.provider = provider
        self.passed = passed
        self.completedAt = completedAt
        self.expiresAt = expiresAt
        self.updatedSince = updatedSince
        self.includeDeleted = includeDeleted
        self.order = order
        self.limit = limit
        self.cursor = cursor
    }

    /// A stable hash of everything but limit and cursor, so a cursor cannot be replayed against
    /// another query. FNV-1a over a canonical encoding: the same across processes and restarts.
    public var fingerprint: UInt64 {
        var writer = ByteWriter(capacity: 128)
        func uuid(_ value: UUID16?) { if let value { writer.writeU8(1); writer.writeUUID(value) } else { writer.writeU8(0) } }
        func string(_ value: String?) { if let value { writer.writeU8(1); writer.writeString(value) } else { writer.writeU8(0) } }
        func time(_ value: Timestamp?) { if let value { writer.writeU8(1); writer.writeI64(value.milliseconds) } else { writer.writeU8(0) } }
        uuid(personID)
        string(certificationRef)
        uuid(linkedCohortID)
        uuid(linkedAssessmentID)
        string(provider)
        writer.writeU8(passed.map { $0 ? 2 : 1 } ?? 0)
        time(completedAt?.from); time(completedAt?.to)
        time(expiresAt?.from); time(expiresAt?.to)
        time(updatedSince)
        writer.writeU8(includeDeleted ? 1 : 0)
        writer.writeU8(order.rawValue)
        return FNV1a.hash(writer.bytes)
    }

    public func validated() throws(LearnStoreError) -> ListQuery {
        guard (1...Self.maximumLimit).contains(limit) else {
            throw .validation("limit must be between 1 and \(Self.maximumLimit)", field: "limit")
        }
        for (name, range) in [("completed_at", completedAt), ("expires_at", expiresAt)] {
            if let from = range?.from, let to = range?.to, from > to {
                throw .validation("\(name) range starts after it ends", field: name)
            }
        }
        if let cursor, cursor.fingerprint != fingerprint {
            throw .validation("the cursor belongs to a different query (filters or order changed)", field: "cursor")
        }
        return self
    }
}

/// An opaque keyset cursor: the (created_at, id) of the last record returned, plus the query's
/// fingerprint. Encoded as 34 bytes: version (1), order (1), created_at (8, LE), id (16), fingerprint (8, LE).
public struct ListCursor: Sendable, Hashable {
    public static let version: UInt8 = 1
    public static let encodedLength = 34

    public var createdAt: Int64
    public var id: RecordID
    public var fingerprint: UInt64
    public var order: SortOrder

    public init(createdAt: Int64, id: RecordID, fingerprint: UInt64, order: SortOrder) {
        self.createdAt = createdAt
        self.id = id
        self.fingerprint = fingerprint
        self.order = order
    }

    public var bytes: [UInt8] {
        var writer = ByteWriter(capacity: Self.encodedLength)
        writer.writeU8(Self.version)
        writer.writeU8(order.rawValue)
        writer.writeI64(createdAt)
        writer.writeRecordID(id)
        writer.writeU64(fingerprint)
        return writer.bytes
    }

    public init(bytes: [UInt8]) throws(LearnStoreError) {
        guard bytes.count == Self.encodedLength, bytes[0] == Self.version, let order = SortOrder(rawValue: bytes[1]) else {
            throw .validation("the cursor is not one this server issued", field: "cursor")
        }
        let decoded: (Int64, RecordID, UInt64)
        do {
            decoded = try bytes.withByteReader { (reader) throws(DecodeError) in
                try reader.skip(2)
                return (try reader.readTimestamp().milliseconds, try reader.readRecordID(), try reader.readU64())
            }
        } catch {
            throw .validation("the cursor is not one this server issued", field: "cursor")
        }
        self.init(createdAt: decoded.0, id: decoded.1, fingerprint: decoded.2, order: order)
    }

    /// URL-safe base64 without padding, for JSON and the CLI.
    public var text: String { Base64URL.encode(bytes) }

    public init(text: String) throws(LearnStoreError) {
        guard let bytes = Base64URL.decode(text) else { throw .validation("the cursor is not valid base64url", field: "cursor") }
        try self.init(bytes: bytes)
    }
}
