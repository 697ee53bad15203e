import LearnStoreModel

/// A LearningRecord as the engine keeps it: 112 bytes, no references, so a page of them copies with
/// one memcpy. Repeated strings and UUIDs are 4-byte references into the tenant's tables; the
/// certification reference points into a byte arena; fields few records set are ``SparseFields``
/// beside it. Nulls use sentinels or flag bits.
public struct StoredRecord: Sendable, Equatable {
    public static let nullTime = Int64.min

    public var idHigh: UInt64
    public var idLow: UInt64
    public var createdAt: Int64
    public var updatedAt: Int64
    public var completedAt: Int64 = nullTime
    public var expiresAt: Int64 = nullTime
    /// NaN means null (a stored score is always finite).
    public var score: Double = .nan
    public var assessmentHigh: UInt64 = 0
    public var assessmentLow: UInt64 = 0
    /// Reference into the person table (never 0 for a live record).
    public var person: UInt32 = 0
    public var createdBy: UInt32 = 0
    public var updatedBy: UInt32 = 0
    public var cohort: UInt32 = 0
    public var title: UInt32 = 0
    public var provider: UInt32 = 0
    public var source: UInt32 = 0
    public var app: UInt32 = 0
    public var certLocation: UInt32 = 0
    public var certLength: UInt16 = 0
    public var flags: Flags = []

    public struct Flags: OptionSet, Sendable, Equatable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let deleted = Flags(rawValue: 1 << 0)
        public static let passedKnown = Flags(rawValue: 1 << 1)
        public static let passed = Flags(rawValue: 1 << 2)
        public static let hasAssessment = Flags(rawValue: 1 << 3)
        public static let hasCertificationRef = Flags(rawValue: 1 << 4)
        /// Hard-deleted (purged): only the id and created_at remain, to keep slot order searchable.
        public static let purged = Flags(rawValue: 1 << 5)
        /// The record's ``SparseFields`` differ from the defaults: its store holds them.
        public static let hasSparseFields = Flags(rawValue: 1 << 6)
        static let sourceTypeShift: UInt16 = 8
    }

    public init(id: RecordID, createdAt: Int64, updatedAt: Int64) {
        idHigh = id.high
        idLow = id.low
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    @inline(__always) public var id: RecordID { RecordID(high: idHigh, low: idLow) }
    @inline(__always) public var isDeleted: Bool { flags.contains(.deleted) }
    @inline(__always) public var isPurged: Bool { flags.contains(.purged) }

    public var sourceType: SourceType {
        get { SourceType(rawValue: UInt8(truncatingIfNeeded: flags.rawValue >> Flags.sourceTypeShift)) ?? .api }
        set {
            flags = Flags(rawValue: (flags.rawValue & 0x00FF) | UInt16(newValue.rawValue) << Flags.sourceTypeShift)
        }
    }

    public var passed: Bool? {
        get { flags.contains(.passedKnown) ? flags.contains(.passed) : nil }
        set {
            flags.remove([.passedKnown, .passed])
            if let newValue { flags.insert(newValue ? [.passedKnown, .passed] : .passedKnown) }
        }
    }

    public var assessment: UUID16? {
        get { flags.contains(.hasAssessment) ? UUID16(high: assessmentHigh, low: assessmentLow) : nil }
        set {
            if let newValue {
                assessmentHigh = newValue.high
                assessmentLow = newValue.low
                flags.insert(.hasAssessment)
            } else {
                assessmentHigh = 0
                assessmentLow = 0
                flags.remove(.hasAssessment)
            }
        }
    }

    @inline(__always) static func time(_ value: Int64) -> Timestamp? {
        value == nullTime ? nil : Timestamp(milliseconds: value)
    }

    /// The order of records in every list: (created_at, id).
    @inline(__always)
    public func sortsBefore(createdAt otherCreated: Int64, idHigh otherHigh: UInt64, idLow otherLow: UInt64) -> Bool {
        (createdAt, idHigh, idLow) < (otherCreated, otherHigh, otherLow)
    }
}
