import CanvasOutcomes
import LearnStoreModel

/// What a tenant's writes touched since a partition move began copying it while it still took writes
/// (docs/CLUSTER.md, "Moving a partition"): once the move fences the tenant, only these are copied
/// again, on top of the first copy.
///
/// Why that gives the tenant exactly: every mutation the log holds is an after-image (a whole record,
/// a purge, an outcome row the store keeps by greatest version, a remembered key), so an item no write
/// touched since the copy began reads the same in the first copy as now, and one a write touched is
/// sent as it is now. The first copy reads records in slot order (a write never moves a record to
/// another slot), outcome rows from the tables as they were when the copy began (persistent tries:
/// keeping them costs what later writes change), and keys oldest first, a piece at a time: a piece
/// read after a write may have skipped a key that write moved. So each outcome row a write touched
/// is sent again as it is now (a key holds one row, live or tombstone); when the keys changed,
/// the copy's keys are forgotten and all of the source's sent again in its order (a full table
/// pushes old keys out, which no mutation says); when the record slots were laid out anew (a
/// rebuild), or a write was taken back after others had seen it, the whole tenant is copied again
/// (``needsWholeCopy``).
public struct TenantChangeSet: Sendable {
    /// Names the copy that started tracking (chosen by the copying node for each attempt): changes
    /// tracked for another attempt are worth nothing to this one.
    public let token: UInt64
    public private(set) var records: Set<RecordID> = []
    /// The outcome rows writes touched, by kind and key.
    public private(set) var outcomeRows: Set<TombstoneKey> = []
    public var outcomesChanged: Bool { !outcomeRows.isEmpty }
    /// The outcome tables as they were when the copy began: the first copy reads its outcome rows
    /// here, so that rows written meanwhile cannot shift the offsets its pieces read by. Dropped once
    /// a round or the fenced part begins.
    public private(set) var outcomesAtStart: OutcomeTables?
    public private(set) var keysChanged = false
    /// Set once what changed can no longer be told by items; the set then holds nothing more.
    public private(set) var lostTrack = false
    /// `records` in id order, sorted once for all the pieces of the fenced part (the tenant takes no
    /// write then); any change of `records` drops it.
    private var recordsInOrder: [RecordID]?
    let layoutRevision: UInt64

    /// Past this many records and outcome rows touched, copying the whole tenant again is as cheap,
    /// and the set's memory stays bounded.
    public static let maximumRecords = 100_000

    init(token: UInt64, layoutRevision: UInt64, outcomes: OutcomeTables) {
        self.token = token
        self.layoutRevision = layoutRevision
        outcomesAtStart = outcomes
    }

    mutating func note(_ mutations: [TenantMutation]) {
        guard !lostTrack else { return }
        recordsInOrder = nil
        outcomeRowsInOrder = nil
        for mutation in mutations {
            switch mutation {
            case .putRecords(let put): for record in put { records.insert(record.id) }
            case .purgeRecords(let ids): records.formUnion(ids)
            case .outcomes(let rows): for row in rows { outcomeRows.insert(TombstoneKey(kind: row.kind, key: row.key)) }
            case .rememberIdempotencyKey, .forgetIdempotencyKeys: keysChanged = true
            case .recordChange, .continueTenant: break
            case .resetTenant, .releaseTenant: loseTrack()
            }
        }
        if records.count + outcomeRows.count > Self.maximumRecords { loseTrack() }
    }

    mutating func loseTrack() {
        lostTrack = true
        records = []
        recordsInOrder = nil
        outcomeRows = []
        outcomesAtStart = nil
    }

    /// Whether the changes say nothing exact about `state` any more, so the whole tenant must be copied.
    public func needsWholeCopy(of state: TenantState) -> Bool { wholeCopyReason(of: state) != nil }

    /// Why the whole tenant must be copied (for the log), or nil when the changes say it exactly.
    public func wholeCopyReason(of state: TenantState) -> String? {
        if lostTrack { return "a write was taken back after the copy read it, or too many records changed" }
        if state.layoutRevision != layoutRevision { return "its records were laid out anew (a load or a rebuild)" }
        return nil
    }

    /// The records of the round under way (``startRound()``): touched before it began, copied while
    /// writes go on; what writes touch meanwhile is gathered in `records` again. Likewise whether it
    /// copies the outcome rows and the keys (they changed before it began).
    public private(set) var roundRecords: [RecordID] = []
    private var roundOutcomeRows: [TombstoneKey] = []
    private var roundKeys = false

    /// Starts a round: what was touched so far is copied while the tenant still takes writes, and
    /// tracking starts over for what is touched from now on, so the fenced part has less to copy.
    /// Keys, when they changed, are copied whole, read piece by piece while writes go on: a write
    /// that changes them meanwhile (one that could shift what the pieces read) marks them changed
    /// again, and the fenced part copies them whole once more.
    mutating func startRound() {
        roundRecords = records.sorted()
        records = []
        recordsInOrder = nil
        roundOutcomeRows = Self.ordered(outcomeRows)
        outcomeRows = []
        outcomesAtStart = nil
        roundKeys = keysChanged
        keysChanged = false
    }

    static func ordered(_ rows: Set<TombstoneKey>) -> [TombstoneKey] {
        rows.sorted { ($0.kind.rawValue, $0.key) < ($1.kind.rawValue, $1.key) }
    }

    /// What the fenced part copies: the touched records in id order, and whether outcome rows and
    /// keys changed.
    mutating func changedItems() -> ChangedItems {
        let ordered = recordsInOrder ?? records.sorted()
        recordsInOrder = ordered
        let rows = outcomeRowsInOrder ?? Self.ordered(outcomeRows)
        outcomeRowsInOrder = rows
        outcomesAtStart = nil
        return ChangedItems(records: ordered, outcomeRows: rows, keys: keysChanged)
    }
    /// `outcomeRows` in order, kept for the pieces of the fenced part (no write changes them then).
    private var outcomeRowsInOrder: [TombstoneKey]?

    /// What the round under way copies.
    public var roundItems: ChangedItems { ChangedItems(records: roundRecords, outcomeRows: roundOutcomeRows, keys: roundKeys) }
}

/// Items a copy of a tenant's changes sends (``TenantState/exportPiece(from:maximumItems:changes:)``):
/// records in id order, then the outcome rows under `outcomeRows` as they are now, then every key
/// if `keys`.
public struct ChangedItems: Sendable {
    public var records: [RecordID]
    public var outcomeRows: [TombstoneKey]
    public var keys: Bool
}
