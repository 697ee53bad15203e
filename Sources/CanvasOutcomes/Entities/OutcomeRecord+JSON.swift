import LearnStoreModel

/// The JSON form of a stored outcome row, as `learnstore export` writes it and `import` (and the admin
/// IMPORT opcode) reads it:
///
/// ```
/// {"kind":"learning_outcome","entity":{…the entity JSON of docs/PROTOCOL.md B.3…}}
/// {"kind":"learning_outcome","tombstone":{"key":"12","record_time":"…","event_time":"…","digest":"<hex>:<hex>"}}
/// ```
///
/// A tombstone (what remains of a deleted entity) has no body, only what orders it against other
/// versions, so it is written with its version, digest included, and read back exactly.
extension OutcomeRecord {
    public var exportJSON: JSONValue {
        switch self {
        case .entity(let entity):
            return .object([("kind", .string(entity.kind.description)), ("entity", entity.json)])
        case .tombstone(let tombstone):
            func time(_ value: Timestamp?) -> JSONValue { value.map { .string($0.rfc3339) } ?? .null }
            return .object([
                ("kind", .string(tombstone.kind.description)),
                ("tombstone", .object([
                    ("key", .string(tombstone.key)),
                    ("record_time", time(tombstone.version.stamp.recordTime)),
                    ("event_time", time(tombstone.version.stamp.eventTime)),
                    ("digest", .string(Self.hex(tombstone.version.digest.high) + ":" + Self.hex(tombstone.version.digest.low))),
                ])),
            ])
        }
    }

    /// True when a JSON object is an outcome row (it has `kind` and `entity` or `tombstone`), not a record.
    public static func isExportRow(_ json: JSONValue) -> Bool {
        json["kind"] != nil && (json["entity"] != nil || json["tombstone"] != nil)
    }

    /// Reads a row written by ``exportJSON``; errors name the offending member.
    public init(exportJSON json: JSONValue) throws(LearnStoreError) {
        guard let name = json["kind"]?.stringValue else { throw .validation("an outcome row needs a kind", field: "kind") }
        guard let kind = OutcomeEntityKind.allCases.first(where: { $0.description == name }) else {
            throw .validation("unknown outcome kind '\(name)'", field: "kind")
        }
        if let entity = json["entity"] {
            do {
                let parsed = try OutcomeEntity.parse(kind: kind, json: entity)
                self = OutcomeRecord(storing: parsed)
            } catch {
                throw error.learnStoreError
            }
            return
        }
        guard let tombstone = json["tombstone"], case .object = tombstone else {
            throw .validation("an outcome row needs an entity or a tombstone object", field: "entity")
        }
        guard let key = tombstone["key"]?.stringValue, !key.isEmpty, key.utf8.count <= OutcomeCodec.maxStringBytes else {
            throw .validation("a tombstone needs a key", field: "tombstone.key")
        }
        func time(_ member: String) throws(LearnStoreError) -> Timestamp? {
            guard let value = tombstone[member], !value.isNull else { return nil }
            guard let text = value.stringValue else {
                throw .validation("\(member) must be an RFC 3339 time or null", field: "tombstone.\(member)")
            }
            do {
                return try Timestamp(validatingISO8601: text)
            } catch {
                throw .validation("\(member) \(error.reason)", field: "tombstone.\(member)")
            }
        }
        let parts = tombstone["digest"]?.stringValue?.split(separator: ":", omittingEmptySubsequences: false) ?? []
        guard parts.count == 2, let high = UInt64(parts[0], radix: 16), let low = UInt64(parts[1], radix: 16) else {
            throw .validation("digest must be two hexadecimal numbers joined by ':'", field: "tombstone.digest")
        }
        let stamp = VersionStamp(recordTime: try time("record_time"), eventTime: try time("event_time"))
        self = .tombstone(OutcomeTombstone(kind: kind, key: key, version: EntityVersion(stamp: stamp, digest: ContentDigest(high: high, low: low))))
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
