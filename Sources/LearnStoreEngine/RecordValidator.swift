import LearnStoreModel

/// The validation rules for create and patch bodies. Each failure names the field.
public enum RecordValidator {
    public static let maximumTitleBytes = 512
    public static let maximumProviderBytes = 256
    public static let maximumCertificationRefBytes = 512
    public static let maximumSourceBytes = 64

    public static func rejectStampedFields(_ body: RecordBody) throws(LearnStoreError) {
        if let field = body.stampedFieldsSent.first {
            throw .validation("\(field.name) is set by the server and cannot be written", field: field.name)
        }
    }

    static func checkString(_ update: FieldUpdate<String>, _ field: RecordField, max: Int, allowNull: Bool) throws(LearnStoreError) {
        switch update {
        case .absent: return
        case .null:
            if !allowNull { throw .validation("\(field.name) cannot be null", field: field.name) }
        case .value(let value):
            let count = value.utf8.count
            if count == 0 { throw .validation("\(field.name) must not be empty (send null to clear it)", field: field.name) }
            if count > max { throw .validation("\(field.name) is \(count) bytes; the limit is \(max)", field: field.name) }
        }
    }

    static func checkTime(_ update: FieldUpdate<Timestamp>, _ field: RecordField) throws(LearnStoreError) {
        if case .value(let value) = update, value < .minimum || value > .maximum {
            throw .validation("\(field.name) is outside 0001-01-01 ... 9999-12-31", field: field.name)
        }
    }

    /// Field-level checks shared by create and patch.
    public static func checkValues(_ body: RecordBody) throws(LearnStoreError) {
        try rejectStampedFields(body)
        if case .null = body.personID { throw .validation("person_id cannot be null", field: "person_id") }
        if case .value(let person) = body.personID, person == .zero {
            throw .validation("person_id must not be the nil UUID", field: "person_id")
        }
        try checkString(body.title, .title, max: maximumTitleBytes, allowNull: false)
        try checkString(body.provider, .provider, max: maximumProviderBytes, allowNull: true)
        try checkString(body.certificationRef, .certificationRef, max: maximumCertificationRefBytes, allowNull: true)
        try checkString(body.source, .source, max: maximumSourceBytes, allowNull: false)
        if case .null = body.sourceType { throw .validation("source_type cannot be null", field: "source_type") }
        try checkTime(body.completedAt, .completedAt)
        try checkTime(body.expiresAt, .expiresAt)
        if case .value(let score) = body.score, !(score.isFinite && score >= 0 && score <= 100) {
            throw .validation("score must be a finite number from 0 to 100", field: "score")
        }
    }

    /// Rules that involve several fields, checked on the record as it would be stored.
    public static func checkRecord(_ record: LearningRecord) throws(LearnStoreError) {
        if let completed = record.completedAt, let expires = record.expiresAt, expires < completed {
            throw .validation("expires_at (\(expires)) is before completed_at (\(completed))", field: "expires_at")
        }
    }

    /// The bounds every stored record meets, checked on a whole record given as it is (an import,
    /// whose JSON or frame may carry anything): times within the documented range, so later stamps,
    /// sums and formatting never meet one outside it, and strings within the validation limits, which
    /// the engine's fixed-width fields rely on (a certification reference's length is a u16).
    public static func checkStoredBounds(_ record: LearningRecord) throws(LearnStoreError) {
        let strings: [(RecordField, String?, Int)] = [
            (.title, record.title, maximumTitleBytes), (.provider, record.provider, maximumProviderBytes),
            (.certificationRef, record.certificationRef, maximumCertificationRefBytes), (.source, record.source, maximumSourceBytes),
        ]
        for (field, value, limit) in strings {
            if let count = value?.utf8.count, count > limit {
                throw .validation("\(field.name) is \(count) bytes; the limit is \(limit)", field: field.name)
            }
            // As on CREATE and PATCH: an absent value is null, never an empty string.
            if value?.isEmpty == true { throw .validation("\(field.name) must not be empty", field: field.name) }
        }
        let times: [(RecordField, Timestamp?)] = [
            (.createdAt, record.createdAt), (.updatedAt, record.updatedAt), (.deletedAt, record.deletedAt),
            (.completedAt, record.completedAt), (.expiresAt, record.expiresAt),
        ]
        for (field, time) in times {
            if let time { try checkTime(.value(time), field) }
        }
    }

    public static func checkCreate(_ body: RecordBody) throws(LearnStoreError) {
        try checkValues(body)
        guard case .value = body.personID else { throw .validation("person_id is required", field: "person_id") }
        guard case .value = body.title else { throw .validation("title is required", field: "title") }
    }

    public static func checkPatch(_ body: RecordBody) throws(LearnStoreError) {
        try checkValues(body)
        let changes: [Bool] = [
            body.personID.isAbsent, body.title.isAbsent, body.provider.isAbsent, body.completedAt.isAbsent,
            body.expiresAt.isAbsent, body.score.isAbsent, body.passed.isAbsent, body.certificationRef.isAbsent,
            body.linkedCohortID.isAbsent, body.linkedAssessmentID.isAbsent, body.source.isAbsent, body.sourceType.isAbsent,
        ]
        if changes.allSatisfy({ $0 }) { throw .validation("the patch changes no field") }
    }

    /// Applies a (checked) body's fields to a record.
    public static func apply(_ body: RecordBody, to record: inout LearningRecord) {
        func merge<T>(_ update: FieldUpdate<T>, _ target: inout T?) {
            switch update {
            case .absent: break
            case .null: target = nil
            case .value(let v): target = v
            }
        }
        if case .value(let v) = body.personID { record.personID = v }
        merge(body.title, &record.title)
        merge(body.provider, &record.provider)
        merge(body.completedAt, &record.completedAt)
        merge(body.expiresAt, &record.expiresAt)
        merge(body.score, &record.score)
        merge(body.passed, &record.passed)
        merge(body.certificationRef, &record.certificationRef)
        merge(body.linkedCohortID, &record.linkedCohortID)
        merge(body.linkedAssessmentID, &record.linkedAssessmentID)
        if case .value(let v) = body.source { record.source = v }
        if case .value(let v) = body.sourceType { record.sourceType = v }
    }
}
