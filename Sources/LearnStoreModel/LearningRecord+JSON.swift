/// JSON views of records and bodies, under the snake_case names of docs/PROTOCOL.md 4.5. Timestamps are RFC 3339 UTC
/// strings, ids and UUIDs strings; every field of a record is shown, null when unset.
extension LearningRecord {
    public var json: JSONValue {
        func string(_ v: String?) -> JSONValue { v.map(JSONValue.string) ?? .null }
        func uuid(_ v: UUID16?) -> JSONValue { v.map { .string($0.description) } ?? .null }
        func time(_ v: Timestamp?) -> JSONValue { v.map { .string($0.rfc3339) } ?? .null }
        return .object([
            ("id", .string(id.description)),
            ("tenant_id", .string(tenantID)),
            ("app_id", string(appID)),
            ("created_at", time(createdAt)),
            ("updated_at", time(updatedAt)),
            ("created_by", uuid(createdBy)),
            ("updated_by", uuid(updatedBy)),
            ("source", .string(source)),
            ("source_type", .string(sourceType.name)),
            ("is_deleted", .bool(isDeleted)),
            ("deleted_at", time(deletedAt)),
            ("deleted_by", uuid(deletedBy)),
            ("schema_version", .number(String(schemaVersion))),
            ("person_id", .string(personID.description)),
            ("title", string(title)),
            ("provider", string(provider)),
            ("completed_at", time(completedAt)),
            ("expires_at", time(expiresAt)),
            ("score", score.map(JSONValue.number) ?? .null),
            ("passed", passed.map(JSONValue.bool) ?? .null),
            ("certification_ref", string(certificationRef)),
            ("linked_cohort_id", uuid(linkedCohortID)),
            ("linked_assessment_id", uuid(linkedAssessmentID)),
        ])
    }

    /// Reads a whole record (as written by `json`), e.g. from an export file.
    public init(json: JSONValue) throws(LearnStoreError) {
        guard case .object(let members) = json else { throw .validation("a record must be a JSON object") }
        var fields = JSONFields(members: members)
        guard let id = RecordID(try fields.requiredString("id")) else {
            throw .validation("id must be lr_ followed by 26 Crockford base32 characters", field: "id")
        }
        self.init(
            id: id, tenantID: try fields.requiredString("tenant_id"), createdAt: try fields.requiredTime("created_at"),
            updatedAt: try fields.requiredTime("updated_at"), personID: try fields.requiredUUID("person_id"))
        appID = try fields.string("app_id").valueOrNil
        createdBy = try fields.uuid("created_by").valueOrNil
        updatedBy = try fields.uuid("updated_by").valueOrNil
        source = try fields.string("source").valueOrNil ?? LearningRecord.defaultSource
        sourceType = try fields.sourceType("source_type").valueOrNil ?? .api
        isDeleted = try fields.bool("is_deleted").valueOrNil ?? false
        deletedAt = try fields.time("deleted_at").valueOrNil
        deletedBy = try fields.uuid("deleted_by").valueOrNil
        if let version = try fields.number("schema_version").valueOrNil {
            guard version >= 0, version <= Double(UInt16.max), version == version.rounded() else {
                throw .validation("schema_version must be a small whole number", field: "schema_version")
            }
            schemaVersion = Int(version)
        }
        title = try fields.string("title").valueOrNil
        provider = try fields.string("provider").valueOrNil
        completedAt = try fields.time("completed_at").valueOrNil
        expiresAt = try fields.time("expires_at").valueOrNil
        score = try fields.number("score").valueOrNil
        passed = try fields.bool("passed").valueOrNil
        certificationRef = try fields.string("certification_ref").valueOrNil
        linkedCohortID = try fields.uuid("linked_cohort_id").valueOrNil
        linkedAssessmentID = try fields.uuid("linked_assessment_id").valueOrNil
        try fields.rejectUnknown()
    }
}

extension RecordBody {
    /// Reads a create or patch body. A key that is absent stays `.absent`; `null` becomes `.null`.
    /// Server-stamped fields are recorded in `stampedFieldsSent`; unknown keys are a validation error.
    public init(json: JSONValue) throws(LearnStoreError) {
        guard case .object(let members) = json else { throw .validation("the body must be a JSON object") }
        var fields = JSONFields(members: members)
        self.init()
        for field in RecordField.allCases where field.isServerStamped && fields.take(field.name) != nil {
            stampedFieldsSent.append(field)
        }
        personID = try fields.uuid("person_id")
        title = try fields.string("title")
        provider = try fields.string("provider")
        completedAt = try fields.time("completed_at")
        expiresAt = try fields.time("expires_at")
        score = try fields.number("score")
        passed = try fields.bool("passed")
        certificationRef = try fields.string("certification_ref")
        linkedCohortID = try fields.uuid("linked_cohort_id")
        linkedAssessmentID = try fields.uuid("linked_assessment_id")
        source = try fields.string("source")
        sourceType = try fields.sourceType("source_type")
        try fields.rejectUnknown()
    }

    public var json: JSONValue {
        var members: [(String, JSONValue)] = []
        func add<T>(_ name: String, _ update: FieldUpdate<T>, _ encode: (T) -> JSONValue) {
            switch update {
            case .absent: break
            case .null: members.append((name, .null))
            case .value(let v): members.append((name, encode(v)))
            }
        }
        add("person_id", personID) { .string($0.description) }
        add("title", title) { .string($0) }
        add("provider", provider) { .string($0) }
        add("completed_at", completedAt) { .string($0.rfc3339) }
        add("expires_at", expiresAt) { .string($0.rfc3339) }
        add("score", score) { JSONValue.number($0) }
        add("passed", passed) { .bool($0) }
        add("certification_ref", certificationRef) { .string($0) }
        add("linked_cohort_id", linkedCohortID) { .string($0.description) }
        add("linked_assessment_id", linkedAssessmentID) { .string($0.description) }
        add("source", source) { .string($0) }
        add("source_type", sourceType) { .string($0.name) }
        return .object(members)
    }
}

/// Takes typed members out of a JSON object, one by one, with errors that name the field.
struct JSONFields {
    var members: [(String, JSONValue)]

    mutating func take(_ name: String) -> JSONValue? {
        guard let index = members.firstIndex(where: { $0.0 == name }) else { return nil }
        let value = members[index].1
        members.removeAll(where: { $0.0 == name })
        return value
    }

    func rejectUnknown() throws(LearnStoreError) {
        if let (name, _) = members.first { throw .validation("unknown field '\(name)'", field: name) }
    }

    mutating func typed<T>(_ name: String, _ expected: String, _ convert: (JSONValue) -> T?) throws(LearnStoreError) -> FieldUpdate<T> {
        guard let value = take(name) else { return .absent }
        if value.isNull { return .null }
        guard let converted = convert(value) else { throw .validation("\(name) must be \(expected)", field: name) }
        return .value(converted)
    }

    mutating func string(_ name: String) throws(LearnStoreError) -> FieldUpdate<String> {
        try typed(name, "a string") { $0.stringValue }
    }
    mutating func bool(_ name: String) throws(LearnStoreError) -> FieldUpdate<Bool> {
        try typed(name, "true, false or null") { $0.boolValue }
    }
    mutating func number(_ name: String) throws(LearnStoreError) -> FieldUpdate<Double> {
        try typed(name, "a number") { $0.doubleValue }
    }
    mutating func uuid(_ name: String) throws(LearnStoreError) -> FieldUpdate<UUID16> {
        try typed(name, "a UUID string (8-4-4-4-12 hex)") { $0.stringValue.flatMap { UUID16($0) } }
    }
    mutating func time(_ name: String) throws(LearnStoreError) -> FieldUpdate<Timestamp> {
        let text = try typed(name, "an ISO 8601 date-time with offset, e.g. 2024-05-01T12:00:00Z") { $0.stringValue }
        guard case .value(let value) = text else { return text.isAbsent ? .absent : .null }
        do {
            return .value(try Timestamp(validatingISO8601: value))
        } catch {
            throw .validation("\(name) \(error.reason)", field: name)
        }
    }
    mutating func sourceType(_ name: String) throws(LearnStoreError) -> FieldUpdate<SourceType> {
        try typed(name, "one of frontend, backend, server, system, api") { $0.stringValue.flatMap(SourceType.init(name:)) }
    }
    mutating func requiredString(_ name: String) throws(LearnStoreError) -> String {
        guard let value = try string(name).valueOrNil else { throw .validation("\(name) is required", field: name) }
        return value
    }
    mutating func requiredUUID(_ name: String) throws(LearnStoreError) -> UUID16 {
        guard let value = try uuid(name).valueOrNil else { throw .validation("\(name) is required", field: name) }
        return value
    }
    mutating func requiredTime(_ name: String) throws(LearnStoreError) -> Timestamp {
        guard let value = try time(name).valueOrNil else { throw .validation("\(name) is required", field: name) }
        return value
    }
}

extension LearningRecord: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let json = try container.decode(JSONValueCodable.self).value
        self = try LearningRecord(json: json)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(JSONValueCodable(json))
    }
}

/// Bridges ``JSONValue`` into Codable, so models can ride on any Encoder/Decoder.
public struct JSONValueCodable: Codable, Sendable {
    public var value: JSONValue
    public init(_ value: JSONValue) { self.value = value }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { value = .null; return }
        if let b = try? container.decode(Bool.self) { value = .bool(b); return }
        if let i = try? container.decode(Int64.self) { value = .number(String(i)); return }
        if let d = try? container.decode(Double.self) { value = JSONValue.number(d); return }
        if let s = try? container.decode(String.self) { value = .string(s); return }
        if let a = try? container.decode([JSONValueCodable].self) { value = .array(a.map(\.value)); return }
        if let o = try? decoder.container(keyedBy: AnyKey.self) {
            var members: [(String, JSONValue)] = []
            for key in o.allKeys { members.append((key.stringValue, try o.decode(JSONValueCodable.self, forKey: key).value)) }
            value = .object(members)
            return
        }
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a JSON value"))
    }

    public func encode(to encoder: any Encoder) throws {
        switch value {
        case .null:
            var c = encoder.singleValueContainer(); try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer(); try c.encode(b)
        case .number(let n):
            var c = encoder.singleValueContainer()
            if let i = Int64(n) { try c.encode(i) } else { try c.encode(Double(n) ?? 0) }
        case .string(let s):
            var c = encoder.singleValueContainer(); try c.encode(s)
        case .array(let a):
            var c = encoder.unkeyedContainer()
            for element in a { try c.encode(JSONValueCodable(element)) }
        case .object(let members):
            var c = encoder.container(keyedBy: AnyKey.self)
            for (key, element) in members { try c.encode(JSONValueCodable(element), forKey: AnyKey(key)) }
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
