import LearnStoreModel

/// The LearningRecord data set of the comparison benchmarks: 10 tenants by default, persons with 10
/// records each, 12 titles, 8 providers, 50 authors and 200 cohorts per tenant, 80 % scored, 70 %
/// expiring, half with an app, generated deterministically from a seed, so every run measures the
/// same data. Records are split evenly over the tenants (the last one takes the remainder).
public struct PeerDataset: Sendable {
    public static let titles = [
        "AWS Certified Solutions Architect - Associate", "Google Cloud Professional Data Engineer",
        "Microsoft Azure Fundamentals (AZ-900)", "Certified Kubernetes Administrator (CKA)",
        "Machine Learning Specialization - Stanford", "Project Management Professional (PMP) Prep",
        "Introduction to Data Science in Python", "Leadership Essentials for New Managers",
        "Secure Coding Practices for Developers", "Agile Scrum Master Certification Course",
        "GDPR Data Protection Awareness Training", "Advanced SQL for Data Analysts and BI",
    ]
    public static let providers = ["Coursera", "AWS", "LinkedIn Learning", "Udemy", "Pluralsight", "Google", "Microsoft", "edX"]
    static let base32 = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    static let base32Bytes = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
    public static let baseMilliseconds: Int64 = 1_704_067_200_000
    static let dayMilliseconds: Int64 = 86_400_000

    public let records: Int
    public let tenants: Int
    public let recordsPerPerson: Int
    public let seed: UInt64

    /// `records` must be at least `tenants`: every tenant gets a record.
    public init(records: Int = 1_000_000, tenants: Int = 10, recordsPerPerson: Int = 10, seed: UInt64 = 42) {
        precondition(records >= tenants && tenants > 0 && recordsPerPerson > 0)
        self.records = records
        self.tenants = tenants
        self.recordsPerPerson = recordsPerPerson
        self.seed = seed
    }

    public var recordsPerTenant: Int { records / tenants }

    /// The records of tenant `t`: an even share, the last tenant's with the remainder.
    public func records(ofTenant t: Int) -> Range<Int> {
        (t * recordsPerTenant)..<(t == tenants - 1 ? records : (t + 1) * recordsPerTenant)
    }

    /// Author `k` (of 50) and cohort `k` (of 200) of tenant `t`, derived rather than stored, so a
    /// data set of 100,000 tenants costs no memory up front.
    func author(tenant t: Int, _ k: Int) -> UUID16 { Self.derivedUUID(seed, t, k) }
    func cohort(tenant t: Int, _ k: Int) -> UUID16 { Self.derivedUUID(seed &+ 0x5DEE_CE66, t, k) }

    static func derivedUUID(_ seed: UInt64, _ t: Int, _ k: Int) -> UUID16 {
        var rng = SplitMix64(seed: seed ^ (UInt64(t) &* 0xD6E8_FEB8_6659_FD93) ^ (UInt64(k) &* 0x9E37_79B9_7F4A_7C15))
        return UUID16.random(using: &rng)
    }
    public var persons: Int { records / recordsPerPerson }

    public static func tenantID(_ index: Int) -> String {
        "tenant_" + String(repeating: "0", count: max(0, 5 - String(index).count)) + String(index)
    }

    /// Persons are named `5f0c1e2a-7b3d-4c9e-9a1b-%012d` (their index in decimal digits).
    public static func personID(_ index: Int) -> UUID16 {
        var low: UInt64 = 0x9a1b << 48
        var digits = index
        for position in 0..<12 {
            low |= UInt64(digits % 10) << UInt64(4 * position)
            digits /= 10
        }
        return UUID16(high: 0x5f0c_1e2a_7b3d_4c9e, low: low)
    }

    public func tenantIndex(ofRecord i: Int) -> Int { min(tenants - 1, i / recordsPerTenant) }
    public func personIndex(ofRecord i: Int) -> Int { i / recordsPerPerson }

    /// The parts of record `i` a client sends, plus the identity that creates it (author, app).
    public struct Item: Sendable {
        public var tenantID: String
        public var appID: String?
        public var author: UUID16
        public var body: RecordBody
        public var createdAt: Timestamp
    }

    /// A new credential reference in the data set's format (`CRED-` + provider code + 21 base32
    /// characters), keeping the provider code of `reference`.
    public static func freshCertificationRef<G: RandomNumberGenerator>(like reference: String?, using rng: inout G) -> String {
        var bytes = Array((reference ?? "CRED-XXX-").utf8.prefix(9))
        var bits = rng.next()
        for index in 0..<21 {
            if index == 12 { bits = rng.next() }
            bytes.append(base32Bytes[Int(bits & 31)])
            bits >>= 5
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func item(_ i: Int) -> Item {
        var rng = SplitMix64(seed: seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
        let t = tenantIndex(ofRecord: i)
        let created = Self.baseMilliseconds + Int64(i) * 17 + Int64(rng.next() % 1000)
        let completed = created - Int64(rng.next() % 90) * Self.dayMilliseconds - Int64(rng.next() % UInt64(Self.dayMilliseconds))
        let score: Double? = rng.unit() < 0.8 ? Double(rng.next() % 101) : nil
        let providerIndex = Int(rng.next() % UInt64(Self.providers.count))
        let author = author(tenant: t, Int(rng.next() % 50))
        let app: String? = rng.unit() < 0.5 ? "app_" + Self.padded(Int(rng.next() % 100), 8) : nil
        let provider = Self.providers[providerIndex]
        var cert = "CRED-" + provider.prefix(3).uppercased() + "-"
        for _ in 0..<21 { cert.append(Self.base32[Int(rng.next() % 32)]) }
        let passed: Bool? = rng.unit() < 0.9 ? score.map { $0 >= 50 } : nil
        let body = RecordBody(
            personID: Self.personID(personIndex(ofRecord: i)), title: Self.titles[Int(rng.next() % UInt64(Self.titles.count))],
            provider: provider, completedAt: Timestamp(milliseconds: completed),
            expiresAt: rng.unit() < 0.7 ? Timestamp(milliseconds: completed + 730 * Self.dayMilliseconds) : nil,
            score: score, passed: passed, certificationRef: cert,
            linkedCohortID: cohort(tenant: t, Int(rng.next() % 200)), linkedAssessmentID: UUID16.random(using: &rng))
        return Item(tenantID: Self.tenantID(t), appID: app, author: author, body: body, createdAt: Timestamp(milliseconds: created))
    }

    /// Record `i` as stored after a create: ids and stamps filled in (for bulk import and memory tests).
    public func record(_ i: Int) -> LearningRecord {
        let item = item(i)
        var random = SplitMix64(seed: UInt64(i) &+ 1)
        let id = RecordID(milliseconds: UInt64(item.createdAt.milliseconds), randomHigh: UInt16(truncatingIfNeeded: random.next()) & 0x7FFF, randomLow: random.next())
        var record = LearningRecord(
            id: id, tenantID: item.tenantID, appID: item.appID, createdAt: item.createdAt, updatedAt: item.createdAt,
            createdBy: item.author, updatedBy: item.author, personID: .zero)
        RecordValidatorShim.apply(item.body, to: &record)
        return record
    }

    static func padded(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}

enum RecordValidatorShim {
    static func apply(_ body: RecordBody, to record: inout LearningRecord) {
        if case .value(let v) = body.personID { record.personID = v }
        record.title = body.title.valueOrNil
        record.provider = body.provider.valueOrNil
        record.completedAt = body.completedAt.valueOrNil
        record.expiresAt = body.expiresAt.valueOrNil
        record.score = body.score.valueOrNil
        record.passed = body.passed.valueOrNil
        record.certificationRef = body.certificationRef.valueOrNil
        record.linkedCohortID = body.linkedCohortID.valueOrNil
        record.linkedAssessmentID = body.linkedAssessmentID.valueOrNil
    }
}
