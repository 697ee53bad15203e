/// A completion record of a learning artifact, as callers see it (seed: learning-record-schema.txt).
public struct LearningRecord: Sendable, Hashable {
    public static let currentSchemaVersion = 1
    public static let defaultSource = "edm"

    public var id: RecordID
    public var tenantID: String
    public var appID: String?
    public var createdAt: Timestamp
    public var updatedAt: Timestamp
    public var createdBy: UUID16?
    public var updatedBy: UUID16?
    public var source: String
    public var sourceType: SourceType
    public var isDeleted: Bool
    public var deletedAt: Timestamp?
    public var deletedBy: UUID16?
    public var schemaVersion: Int
    public var personID: UUID16
    public var title: String?
    public var provider: String?
    public var completedAt: Timestamp?
    public var expiresAt: Timestamp?
    public var score: Double?
    public var passed: Bool?
    public var certificationRef: String?
    public var linkedCohortID: UUID16?
    public var linkedAssessmentID: UUID16?

    public init(
        id: RecordID, tenantID: String, appID: String? = nil, createdAt: Timestamp, updatedAt: Timestamp,
        createdBy: UUID16? = nil, updatedBy: UUID16? = nil, source: String = LearningRecord.defaultSource,
        sourceType: SourceType = .api, isDeleted: Bool = false, deletedAt: Timestamp? = nil, deletedBy: UUID16? = nil,
        schemaVersion: Int = LearningRecord.currentSchemaVersion, personID: UUID16, title: String? = nil,
        provider: String? = nil, completedAt: Timestamp? = nil, expiresAt: Timestamp? = nil, score: Double? = nil,
        passed: Bool? = nil, certificationRef: String? = nil, linkedCohortID: UUID16? = nil,
        linkedAssessmentID: UUID16? = nil
    ) {
        self.id = id
        self.tenantID = tenantID
        self.appID = appID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.createdBy = createdBy
        self.updatedBy = updatedBy
        self.source = source
        self.sourceType = sourceType
        self.isDeleted = isDeleted
        self.deletedAt = deletedAt
        self.deletedBy = deletedBy
        self.schemaVersion = schemaVersion
        self.personID = personID
        self.title = title
        self.provider = provider
        self.completedAt = completedAt
        self.expiresAt = expiresAt
        self.score = score
        self.passed = passed
        self.certificationRef = certificationRef
        self.linkedCohortID = linkedCohortID
        self.linkedAssessmentID = linkedAssessmentID
    }
}

/// One field of a create or patch body: not sent, sent as null, or sent with a value.
/// In a patch, `.absent` leaves the field unchanged and `.null` clears it.
public enum FieldUpdate<Value: Sendable & Hashable>: Sendable, Hashable {
    case absent
    case null
    case value(Value)

    public var valueOrNil: Value? { if case .value(let v) = self { return v } else { return nil } }
    public var isAbsent: Bool { if case .absent = self { return true } else { return false } }
}

/// The client-settable fields of a LearningRecord, as sent in a create or patch body.
public struct RecordBody: Sendable, Hashable {
    public var personID: FieldUpdate<UUID16> = .absent
    public var title: FieldUpdate<String> = .absent
    public var provider: FieldUpdate<String> = .absent
    public var completedAt: FieldUpdate<Timestamp> = .absent
    public var expiresAt: FieldUpdate<Timestamp> = .absent
    public var score: FieldUpdate<Double> = .absent
    public var passed: FieldUpdate<Bool> = .absent
    public var certificationRef: FieldUpdate<String> = .absent
    public var linkedCohortID: FieldUpdate<UUID16> = .absent
    public var linkedAssessmentID: FieldUpdate<UUID16> = .absent
    public var source: FieldUpdate<String> = .absent
    public var sourceType: FieldUpdate<SourceType> = .absent
    /// Server-stamped fields the body tried to set. Decoders record them here instead of failing, so
    /// the engine can answer with one typed error that names the first of them.
    public var stampedFieldsSent: [RecordField] = []

    public init() {}

    public init(
        personID: UUID16? = nil, title: String? = nil, provider: String? = nil, completedAt: Timestamp? = nil,
        expiresAt: Timestamp? = nil, score: Double? = nil, passed: Bool? = nil, certificationRef: String? = nil,
        linkedCohortID: UUID16? = nil, linkedAssessmentID: UUID16? = nil, source: String? = nil,
        sourceType: SourceType? = nil
    ) {
        func wrap<T>(_ value: T?) -> FieldUpdate<T> { value.map { .value($0) } ?? .absent }
        self.personID = wrap(personID)
        self.title = wrap(title)
        self.provider = wrap(provider)
        self.completedAt = wrap(completedAt)
        self.expiresAt = wrap(expiresAt)
        self.score = wrap(score)
        self.passed = wrap(passed)
        self.certificationRef = wrap(certificationRef)
        self.linkedCohortID = wrap(linkedCohortID)
        self.linkedAssessmentID = wrap(linkedAssessmentID)
        self.source = wrap(source)
        self.sourceType = wrap(sourceType)
    }
}
