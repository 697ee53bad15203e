import CanvasOutcomes
import LearnStoreEngine
import LearnStoreModel

/// One line of an export (JSON Lines): a LearningRecord under the field names of docs/PROTOCOL.md 4.5,
/// as the API shows it, or a Canvas outcome row (``OutcomeRecord/exportJSON``).
public enum ExportLine: Sendable, Hashable {
    case record(LearningRecord)
    case outcome(OutcomeRecord)

    public var json: JSONValue {
        switch self {
        case .record(let record): record.json
        case .outcome(let row): row.exportJSON
        }
    }

    /// Reads a line: an object with `kind` and `entity` or `tombstone` is an outcome row, any other a
    /// record. Errors name the offending field.
    public init(json: JSONValue) throws(LearnStoreError) {
        if OutcomeRecord.isExportRow(json) {
            self = .outcome(try OutcomeRecord(exportJSON: json))
        } else {
            self = .record(try LearningRecord(json: json))
        }
    }
}

/// Export of a tenant: every record (live and soft-deleted; purged ones are gone) in (created_at, id)
/// order, then the outcome rows ordered by kind, entities before tombstones, then key, so the same
/// state always exports to the same bytes. Idempotency keys are not exported (they only guard retries
/// of recent creates).
public enum TenantExport {
    public static func forEachLine(of state: TenantState, _ body: (ExportLine) throws -> Void) rethrows {
        try TenantRestore.forEachRecord(state) { try body(.record($0)) }
        var rows: [OutcomeRecord] = []
        rows.reserveCapacity(state.outcomes.tables.recordCount)
        state.outcomes.tables.forEachRecord { rows.append($0) }
        rows.sort { a, b in
            let left = (a.kind.rawValue, Self.isTombstone(a) ? 1 : 0)
            let right = (b.kind.rawValue, Self.isTombstone(b) ? 1 : 0)
            if left != right { return left < right }
            return Self.keyPrecedes(a.key, b.key)
        }
        for row in rows { try body(.outcome(row)) }
    }

    /// Lines the export of `state` has.
    public static func lineCount(of state: TenantState) -> Int {
        state.store.liveCount + state.store.deletedCount + state.outcomes.tables.recordCount
    }

    static func isTombstone(_ row: OutcomeRecord) -> Bool {
        if case .tombstone = row { return true }
        return false
    }

    /// Canvas ids in numeric order (shorter digit strings first), other keys after them as text.
    static func keyPrecedes(_ a: String, _ b: String) -> Bool {
        let aDigits = a.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        let bDigits = b.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        if aDigits != bDigits { return aDigits }
        if aDigits && a.utf8.count != b.utf8.count { return a.utf8.count < b.utf8.count }
        return a < b
    }
}

/// Import into a tenant of a stopped server's data directory: takes the LOCK, rebuilds the tenant
/// (reading only), applies the lines in batches through ``TenantState/importBatch(records:outcomes:caller:)``
/// (the path the admin IMPORT opcode takes), and on ``finish(now:level:)`` writes the result as the
/// tenant's newest snapshot. Nothing is changed on disk before `finish`.
public final class OfflineImport {
    public let directory: DataDirectory
    public let tenantID: String
    let fileSystem: any FileSystem
    private var lockDescriptor: Int32?
    private var state: TenantState
    private let lastLSN: UInt64
    private let caller: CallerIdentity
    public private(set) var total = ImportResult()
    public private(set) var sequenceBefore: UInt64

    public init(directory: DataDirectory, tenantID: String, limits: EngineLimits = EngineLimits(),
                fileSystem: any FileSystem = PosixFileSystem(), forceRecovery: Bool = false,
                progress: @escaping @Sendable (String) -> Void = { _ in }) throws {
        guard CallerIdentity.isValidTenantID(tenantID) else { throw LearnStoreError.validation("'\(tenantID)' is not a valid tenant id", field: "tenant") }
        try OfflineDirectory.requireExisting(directory, fileSystem)
        let lock = try OfflineDirectory.lock(directory)
        do {
            let options = try TenantRestore.recoveryOptions(directory, tenants: [tenantID], point: RestorePoint(), limits: limits,
                                                            fileSystem: fileSystem, forceRecovery: forceRecovery)
            let outcome = try TenantRestore.rebuild(options, progress: progress)
            state = outcome.states[tenantID] ?? TenantState(tenantID: tenantID, limits: limits)
            lastLSN = outcome.lastLSN[tenantID] ?? 0
        } catch {
            DataDirectory.unlock(lock)
            throw error
        }
        self.directory = directory
        self.tenantID = tenantID
        self.fileSystem = fileSystem
        self.lockDescriptor = lock
        self.caller = CallerIdentity(tenantID: tenantID, personID: UUID16(high: 0, low: 0), scopes: [.admin])
        self.sequenceBefore = state.sequence
    }

    deinit { lockDescriptor.map(DataDirectory.unlock) }

    /// Applies one batch (one sequence number). Records keep their ids and stamps.
    @discardableResult
    public func apply(_ lines: [ExportLine]) throws(LearnStoreError) -> ImportResult {
        var records: [LearningRecord] = []
        var rows: [OutcomeRecord] = []
        for line in lines {
            switch line {
            case .record(let record): records.append(record)
            case .outcome(let row): rows.append(row)
            }
        }
        let result = try state.importBatch(records: records, outcomes: rows, caller: caller).result
        total.records += result.records
        total.outcomesApplied += result.outcomesApplied
        total.outcomesUnchanged += result.outcomesUnchanged
        return result
    }

    /// The tenant as imported so far.
    public var figures: TenantFigures { TenantFigures(state) }

    /// Writes the tenant as its newest snapshot (unless nothing changed) and releases the lock.
    @discardableResult
    public func finish(now: Timestamp, level: Int = 1) throws -> SnapshotFile.WriteResult? {
        defer { release() }
        guard state.sequence > sequenceBefore else { return nil }
        return try SnapshotFile.write(state.capture(), lsn: lastLSN, createdAt: now, directory: directory.tenantDirectory(tenantID),
                                      level: level, fileSystem: fileSystem)
    }

    /// Gives up without writing anything.
    public func release() {
        lockDescriptor.map(DataDirectory.unlock)
        lockDescriptor = nil
    }
}

/// `learnstore snapshot create` on a stopped server's data directory: under the LOCK, rebuilds the
/// tenants (reading only) and writes a snapshot of each whose state is newer than its newest snapshot
/// (all of them with `force`), so the next start replays less WAL. Old snapshots and WAL segments are
/// left for the server's retention.
public struct OfflineSnapshotter: Sendable {
    public struct Result: Sendable {
        public var tenantID: String
        public var sequence: UInt64
        public var records: Int
        /// nil when skipped (the newest snapshot already holds this sequence).
        public var path: String?
        public var bytes: Int
    }

    public var directory: DataDirectory
    public var tenants: Set<String>?
    public var force = false
    public var limits = EngineLimits()
    public var fileSystem: any FileSystem = PosixFileSystem()
    public var forceRecovery = false
    public var level = 1
    public var now: Timestamp

    public init(directory: DataDirectory, tenants: Set<String>?, now: Timestamp) {
        self.directory = directory
        self.tenants = tenants
        self.now = now
    }

    public func run(progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> [Result] {
        try OfflineDirectory.requireExisting(directory, fileSystem)
        let lock = try OfflineDirectory.lock(directory)
        defer { DataDirectory.unlock(lock) }
        let options = try TenantRestore.recoveryOptions(directory, tenants: tenants, point: RestorePoint(), limits: limits,
                                                        fileSystem: fileSystem, forceRecovery: forceRecovery)
        let outcome = try TenantRestore.rebuild(options, progress: progress)
        if let tenants {
            for tenant in tenants where outcome.states[tenant] == nil {
                throw LearnStoreError(.notFound, "the data directory holds no tenant \(tenant)")
            }
        }
        var results: [Result] = []
        for (tenantID, state) in outcome.states.sorted(by: { $0.key < $1.key }) {
            let newest = try directory.snapshots(of: tenantID, fileSystem).last
            let records = state.store.liveCount + state.store.deletedCount
            if state.sequence == 0 || (!force && newest == state.sequence) {
                results.append(Result(tenantID: tenantID, sequence: state.sequence, records: records, path: nil, bytes: 0))
                continue
            }
            progress("writing the snapshot of \(tenantID)")
            let written = try SnapshotFile.write(state.capture(), lsn: outcome.lastLSN[tenantID] ?? 0, createdAt: now,
                                                 directory: directory.tenantDirectory(tenantID), level: level, fileSystem: fileSystem)
            results.append(Result(tenantID: tenantID, sequence: state.sequence, records: records, path: written.path, bytes: written.bytes))
        }
        return results
    }
}
