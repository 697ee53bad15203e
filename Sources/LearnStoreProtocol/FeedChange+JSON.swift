import CanvasOutcomes
import LearnStoreModel

extension FeedChange {
    /// One JSON object per change, as `learnstore feed` prints it: `sequence`, `timestamp` and `parts`,
    /// each part `{"kind": "create", "records": […]}` (records under the JSON names of section 4.5),
    /// `{"kind": "purge", "ids": […]}`, `{"kind": "outcomes", "rows": […]}` (as `learnstore export`
    /// writes rows) or `{"kind": "tenant_restore"}`.
    public var json: JSONValue {
        .object([
            ("sequence", .number(String(sequence))),
            ("timestamp", .string(timestamp.rfc3339)),
            ("parts", .array(parts.map(\.json))),
        ])
    }
}

extension FeedChange.Part {
    public var json: JSONValue {
        switch self {
        case .records(let kind, let records):
            .object([("kind", .string(kind.name)), ("records", .array(records.map(\.json)))])
        case .purge(let ids):
            .object([("kind", .string("purge")), ("ids", .array(ids.map { .string($0.description) }))])
        case .outcomes(let rows):
            .object([("kind", .string("outcomes")), ("rows", .array(rows.map(\.exportJSON)))])
        case .tenantRestore:
            .object([("kind", .string("tenant_restore"))])
        }
    }
}
