import CanvasOutcomes
import LearnStoreModel

/// A logical change to a tenant, as the engine applied it: stamped records, never raw requests.
/// The WAL stores these; replaying them in sequence order rebuilds the tenant exactly.
public enum TenantMutation: Sendable, Hashable {
    /// Insert or replace whole records (create, create batch, patch, delete, restore, import).
    case putRecords([LearningRecord])
    /// Hard-delete records (purge person).
    case purgeRecords([RecordID])
    /// Remember an idempotency key and the records it created.
    case rememberIdempotencyKey(IdempotencyEntry)
    /// Canvas outcome rows as an ingest applied them (an entity, or the tombstone a deleted one became),
    /// in the order applied. Replay re-applies them with `OutcomeStore.apply(_:)`, which keeps the
    /// greatest version per key, so replaying them in any order gives the same tables.
    case outcomes([OutcomeRecord])
    /// What the write's `putRecords` was, for the change feed: replay ignores it. Writes logged before
    /// it existed have none, and the feed calls their record puts `put`.
    case recordChange(RecordChangeKind)
    /// Empties the tenant (records, idempotency keys, outcome rows) before the rest of the write: the
    /// first write of a tenant adopted from another group by a partition move (docs/CLUSTER.md,
    /// "Moving a partition"). Such a write may take a sequence above the next one: the tenant
    /// continues the sequence it had where it came from.
    case resetTenant
    /// Empties the tenant, whose partition now belongs to another group (the last write of a tenant
    /// in the group it left). The change feed ends a subscription here: the tenant's later changes
    /// are in the other group.
    case releaseTenant
    /// Changes nothing itself: it starts the write of what changed in a tenant, in the group it comes
    /// from, since a partition move began copying it there while it still took writes (the move's
    /// fenced part). Such a write may take a sequence above the next one: the tenant continues the
    /// sequence it reached there.
    case continueTenant
    /// Forgets every idempotency key, before the keys that follow: a partition move's copy of a
    /// tenant's keys again, once they changed while it copied the tenant (the source's table, in its
    /// order, replaces what the first copy took).
    case forgetIdempotencyKeys
}

extension [TenantMutation] {
    /// Whether the write may skip sequence numbers: it starts a tenant adopted from another group
    /// (a reset), or the changes copied after it (a continue).
    public var continuesAnotherGroupsSequence: Bool {
        switch first {
        case .resetTenant, .continueTenant: true
        default: false
        }
    }
}

/// The kind of a write that puts whole records, as the change feed reports it.
public enum RecordChangeKind: UInt8, Sendable, Hashable, CaseIterable {
    case create = 1
    case patch = 2
    case delete = 3
    case restore = 4
    case `import` = 5

    public var name: String {
        switch self {
        case .create: "create"
        case .patch: "patch"
        case .delete: "delete"
        case .restore: "restore"
        case .import: "import"
        }
    }
}

/// How to take back mutations whose WAL write failed (disk full, EIO, failed fsync).
public struct TenantUndo: Sendable {
    /// The large cases are boxed: an array of steps is as wide as its widest case, and a create's
    /// `remove` would otherwise take a whole record's width (about 600 bytes a record of an import,
    /// held until the tenant's next write).
    enum Step: Sendable {
        indirect case put(LearningRecord)
        case remove(RecordID)
        /// Forget a key a write added, and put back the key it pushed out of a full table.
        indirect case unremember(String, evicted: IdempotencyEntry?)
        indirect case restoreKey(IdempotencyEntry)
        /// Put back the row a key held before an outcome record was applied (nil: it held nothing).
        indirect case restoreOutcome(OutcomeEntityKind, key: String, row: OutcomeRecord?)
        /// Put back the whole state a reset emptied (a copy-on-write value: it shares its storage).
        indirect case restoreState(TenantState)
    }

    var steps: [Step] = []
    public let sequenceBefore: UInt64

    /// Whether the write created, changed or removed record `id`.
    func touches(_ id: RecordID) -> Bool {
        steps.contains { step in
            switch step {
            case .put(let record): record.id == id
            case .remove(let removed): removed == id
            case .unremember, .restoreKey, .restoreOutcome: false
            case .restoreState: true
            }
        }
    }
}

/// The result of a write command: what to return, what to log and the tenant's new sequence.
public struct TenantWrite<Result: Sendable>: Sendable {
    public var result: Result
    /// Empty when the command changed nothing (an idempotent retry, deleting a deleted record).
    public var mutations: [TenantMutation]
    public var sequence: UInt64
    /// True when an idempotency key matched an earlier create and nothing new was written.
    public var replayed = false
    public var undo: TenantUndo?
    /// The log sequence number the write got (0 when nothing was written).
    public var lsn: UInt64 = 0
}
