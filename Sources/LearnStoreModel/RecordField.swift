/// The fields of a LearningRecord, numbered in the order of docs/PROTOCOL.md 4.5. The number is the bit position in
/// the binary encoding's presence bitmaps (docs/PROTOCOL.md) and never changes.
public enum RecordField: Int, CaseIterable, Sendable, Hashable {
    case id = 0, tenantID, appID, createdAt, updatedAt, createdBy, updatedBy, source, sourceType
    case isDeleted, deletedAt, deletedBy, schemaVersion, personID, title, provider, completedAt
    case expiresAt, score, passed, certificationRef, linkedCohortID, linkedAssessmentID

    @inlinable public var bit: UInt32 { 1 << UInt32(rawValue) }

    /// The snake_case name (docs/PROTOCOL.md 4.5), used in JSON and in error messages.
    public var name: String {
        switch self {
        case .id: "id"
        case .tenantID: "tenant_id"
        case .appID: "app_id"
        case .createdAt: "created_at"
        case .updatedAt: "updated_at"
        case .createdBy: "created_by"
        case .updatedBy: "updated_by"
        case .source: "source"
        case .sourceType: "source_type"
        case .isDeleted: "is_deleted"
        case .deletedAt: "deleted_at"
        case .deletedBy: "deleted_by"
        case .schemaVersion: "schema_version"
        case .personID: "person_id"
        case .title: "title"
        case .provider: "provider"
        case .completedAt: "completed_at"
        case .expiresAt: "expires_at"
        case .score: "score"
        case .passed: "passed"
        case .certificationRef: "certification_ref"
        case .linkedCohortID: "linked_cohort_id"
        case .linkedAssessmentID: "linked_assessment_id"
        }
    }

    public init?(name: String) {
        guard let field = RecordField.allCases.first(where: { $0.name == name }) else { return nil }
        self = field
    }

    /// Fields only the server sets; a create or patch body that carries one is rejected.
    public var isServerStamped: Bool {
        switch self {
        case .id, .tenantID, .appID, .createdAt, .updatedAt, .createdBy, .updatedBy, .isDeleted, .deletedAt,
            .deletedBy, .schemaVersion:
            true
        default:
            false
        }
    }

    public static let allBits: UInt32 = (1 << UInt32(RecordField.allCases.count)) - 1
    public static let stampedBits: UInt32 = allCases.filter(\.isServerStamped).reduce(0) { $0 | $1.bit }
}

/// Where a write originated (seed: `source_type`).
public enum SourceType: UInt8, CaseIterable, Sendable, Hashable, Codable {
    case frontend = 0, backend = 1, server = 2, system = 3, api = 4

    public var name: String {
        switch self {
        case .frontend: "frontend"
        case .backend: "backend"
        case .server: "server"
        case .system: "system"
        case .api: "api"
        }
    }

    public init?(name: String) {
        guard let value = SourceType.allCases.first(where: { $0.name == name }) else { return nil }
        self = value
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = SourceType(name: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown source_type \(text)"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}
