import CanvasOutcomes
import LearnStoreEngine
import LearnStoreModel

/// The point a tenant is restored to: a chosen snapshot (else the newest usable one), plus the WAL up
/// to a tenant sequence number or a time (else all of it).
public struct RestorePoint: Sendable, Hashable {
    public var snapshotSequence: UInt64?
    public var sequence: UInt64?
    public var time: Timestamp?

    public init(snapshotSequence: UInt64? = nil, sequence: UInt64? = nil, time: Timestamp? = nil) {
        self.snapshotSequence = snapshotSequence
        self.sequence = sequence
        self.time = time
    }
}

/// A tenant's size and position.
public struct TenantFigures: Sendable, Hashable {
    public var sequence: UInt64
    public var records: Int
    public var deletedRecords: Int
    /// Live outcome entities plus tombstones.
    public var outcomeRows: Int

    public init(sequence: UInt64, records: Int, deletedRecords: Int, outcomeRows: Int) {
        self.sequence = sequence
        self.records = records
        self.deletedRecords = deletedRecords
        self.outcomeRows = outcomeRows
    }

    public init(_ state: TenantState) {
        self.init(sequence: state.sequence, records: state.store.liveCount, deletedRecords: state.store.deletedCount,
                  outcomeRows: state.outcomes.tables.recordCount)
    }
}

/// How two states of a tenant differ, by record id (and outcome row key).
public struct StateDifference: Sendable, Hashable {
    public var added = 0
    public var removed = 0
    public var changed = 0

    public init(added: Int = 0, removed: Int = 0, changed: Int = 0) {
        self.added = added
        self.removed = removed
        self.changed = changed
    }

    public var isEmpty: Bool { added == 0 && removed == 0 && changed == 0 }
}

/// What a restore of one tenant does (or, for a dry run, would do).
public struct TenantRestorePlan: Sendable {
    public var tenantID: String
    public var point: RestorePoint
    /// The snapshot the restored state was built from (nil: the WAL alone).
    public var snapshotSequence: UInt64?
    public var snapshotLSN: UInt64
    public var walRecordsApplied: Int
    /// The tenant now.
    public var before: TenantFigures
    /// The tenant as of the point (its sequence is the point's).
    public var restored: TenantFigures
    /// The sequence the tenant continues from: above its current one, so the replaced history's WAL
    /// records are skipped on replay.
    public var newSequence: UInt64
    /// The LSN of the tenant's last write in the replaced history (the new snapshot's LSN).
    public var lastLSN: UInt64
    public var records: StateDifference
    public var outcomeRows: StateDifference
    public var dryRun: Bool
    /// The snapshot written (nil for a dry run).
    public var snapshotPath: String?
}

/// Restores tenants to a point: pure planning over recovered states, plus the offline runner.
public enum TenantRestore {
    /// Recovery options that rebuild `tenants` as of `point`, reading only.
    public static func recoveryOptions(
        _ directory: DataDirectory, tenants: Set<String>?, point: RestorePoint, limits: EngineLimits = EngineLimits(),
        fileSystem: any FileSystem = PosixFileSystem(), forceRecovery: Bool = false
    ) throws(LearnStoreError) -> Recovery.Options {
        var options = Recovery.Options(directory: directory)
        options.readOnly = true
        options.tenants = tenants
        options.limits = limits
        options.fileSystem = fileSystem
        options.forceRecovery = forceRecovery
        options.stopAtTime = point.time
        if point.sequence != nil || point.snapshotSequence != nil {
            guard let only = tenants, only.count == 1, let tenant = only.first else {
                throw .validation("a sequence or a snapshot can be chosen only when restoring one tenant", field: "tenant")
            }
            if let sequence = point.sequence { options.stopAtSequence[tenant] = sequence }
            if let snapshot = point.snapshotSequence {
                if let sequence = point.sequence, snapshot > sequence {
                    throw .validation("snapshot \(snapshot) is newer than sequence \(sequence)", field: "snapshot")
                }
                options.snapshotChoice[tenant] = snapshot
            }
        }
        return options
    }

    /// Rebuilds tenants as of `options`' point without changing anything on disk.
    public static func rebuild(_ options: Recovery.Options, progress: @escaping @Sendable (String) -> Void = { _ in }) throws(LearnStoreError) -> Recovery.Outcome {
        do {
            return try Recovery(options: options, progress: progress).run()
        } catch let error as Recovery.Failure {
            throw .validation("cannot rebuild the tenant: \(error.description)")
        } catch let error as LearnStoreError {
            throw error
        } catch let error as StorageError {
            throw error.learnStoreError
        } catch {
            throw LearnStoreError(.storageUnavailable, "cannot read the data directory: \(error)")
        }
    }

    /// Plans the restore of one tenant from its current state and its state at the point, and returns
    /// the state to install: the restored data at `newSequence`.
    public static func plan(
        tenantID: String, point: RestorePoint, current: TenantState, currentLSN: UInt64, restored outcome: Recovery.Outcome, dryRun: Bool
    ) throws(LearnStoreError) -> (TenantRestorePlan, TenantState) {
        var state = outcome.states[tenantID] ?? TenantState(tenantID: tenantID, limits: current.limits)
        if let sequence = point.sequence {
            guard sequence <= current.sequence else {
                throw .validation("tenant \(tenantID) is at sequence \(current.sequence); it cannot be restored to \(sequence)", field: "sequence")
            }
            guard state.sequence == sequence else {
                throw .validation("tenant \(tenantID) cannot be rebuilt to sequence \(sequence): its snapshots and WAL reach sequence \(state.sequence)", field: "sequence")
            }
        }
        let report = outcome.report.tenants[tenantID]
        let newSequence = max(current.sequence, state.sequence) + 1
        let plan = TenantRestorePlan(
            tenantID: tenantID, point: point, snapshotSequence: report?.snapshotSequence, snapshotLSN: report?.snapshotLSN ?? 0,
            walRecordsApplied: report?.walRecordsApplied ?? 0, before: TenantFigures(current), restored: TenantFigures(state),
            newSequence: newSequence, lastLSN: currentLSN, records: recordDifference(current, state),
            outcomeRows: outcomeDifference(current.outcomes.tables, state.outcomes.tables), dryRun: dryRun, snapshotPath: nil)
        state.advanceSequence(to: newSequence)
        return (plan, state)
    }

    /// Records added, removed and changed going from `old` to `new`.
    public static func recordDifference(_ old: TenantState, _ new: TenantState) -> StateDifference {
        var remaining: [RecordID: LearningRecord] = [:]
        remaining.reserveCapacity(old.store.liveCount + old.store.deletedCount)
        forEachRecord(old) { remaining[$0.id] = $0 }
        var difference = StateDifference()
        forEachRecord(new) { record in
            if var previous = remaining.removeValue(forKey: record.id) {
                previous.tenantID = record.tenantID
                if previous != record { difference.changed += 1 }
            } else {
                difference.added += 1
            }
        }
        difference.removed = remaining.count
        return difference
    }

    /// Outcome rows (entities and tombstones) added, removed and changed going from `old` to `new`.
    public static func outcomeDifference(_ old: OutcomeTables, _ new: OutcomeTables) -> StateDifference {
        var remaining: [TombstoneKey: OutcomeRecord] = [:]
        old.forEachRecord { remaining[TombstoneKey(kind: $0.kind, key: $0.key)] = $0 }
        var difference = StateDifference()
        new.forEachRecord { row in
            if let previous = remaining.removeValue(forKey: TombstoneKey(kind: row.kind, key: row.key)) {
                if previous != row { difference.changed += 1 }
            } else {
                difference.added += 1
            }
        }
        difference.removed = remaining.count
        return difference
    }

    /// Every record the tenant holds (live and soft-deleted), in (created_at, id) order.
    public static func forEachRecord(_ state: TenantState, _ body: (LearningRecord) throws -> Void) rethrows {
        for slot in 0..<UInt32(state.store.slotCount) where !state.store[slot].isPurged {
            try body(state.store.record(at: slot))
        }
    }
}

/// Restores tenants of a stopped server's data directory. It holds the directory's LOCK while it
/// works (a running server holds it too, so this fails clearly instead of writing under a server),
/// rebuilds each tenant as of the point, and writes the result as the tenant's newest snapshot, at a
/// sequence above the tenant's current one: the next start loads it and skips the replaced history
/// in the WAL. The WAL itself is not changed. A dry run only reads and does not take the lock.
public struct OfflineRestore: Sendable {
    public var directory: DataDirectory
    /// nil: every tenant.
    public var tenants: Set<String>?
    public var point: RestorePoint
    public var dryRun: Bool
    public var limits = EngineLimits()
    public var fileSystem: any FileSystem = PosixFileSystem()
    public var forceRecovery = false
    public var snapshotLevel = 1
    /// The creation time written into the new snapshots.
    public var now: Timestamp

    public init(directory: DataDirectory, tenants: Set<String>?, point: RestorePoint, dryRun: Bool, now: Timestamp) {
        self.directory = directory
        self.tenants = tenants
        self.point = point
        self.dryRun = dryRun
        self.now = now
    }

    public func run(progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> [TenantRestorePlan] {
        try OfflineDirectory.requireExisting(directory, fileSystem)
        let lock = dryRun ? nil : try OfflineDirectory.lock(directory)
        defer { lock.map(DataDirectory.unlock) }
        let restoredOptions = try TenantRestore.recoveryOptions(directory, tenants: tenants, point: point, limits: limits,
                                                                fileSystem: fileSystem, forceRecovery: forceRecovery)
        var currentOptions = restoredOptions
        currentOptions.stopAtTime = nil
        currentOptions.stopAtSequence = [:]
        currentOptions.snapshotChoice = [:]
        progress("reading the current state")
        let current = try TenantRestore.rebuild(currentOptions, progress: progress)
        progress("rebuilding the state at the restore point")
        let restored = try TenantRestore.rebuild(restoredOptions, progress: progress)
        var tenantIDs = Set(current.states.keys)
        if let tenants {
            for tenant in tenants where !tenantIDs.contains(tenant) {
                throw LearnStoreError(.notFound, "the data directory holds no tenant \(tenant)")
            }
            tenantIDs = tenantIDs.intersection(tenants)
        }
        var plans: [TenantRestorePlan] = []
        for tenantID in tenantIDs.sorted() {
            let currentState = current.states[tenantID]!
            var (plan, state) = try TenantRestore.plan(
                tenantID: tenantID, point: point, current: currentState, currentLSN: current.lastLSN[tenantID] ?? 0,
                restored: restored, dryRun: dryRun)
            if !dryRun {
                progress("writing the restored snapshot of \(tenantID)")
                let written = try SnapshotFile.write(state.capture(), lsn: plan.lastLSN, createdAt: now,
                                                     directory: directory.tenantDirectory(tenantID), level: snapshotLevel, fileSystem: fileSystem)
                plan.snapshotPath = written.path
                state = TenantState(tenantID: tenantID)  // release memory early
            }
            plans.append(plan)
        }
        return plans
    }
}

/// Preconditions of the offline tools.
public enum OfflineDirectory {
    /// The tools never create a data directory: a mistyped `--data-dir` must fail, not look empty.
    public static func requireExisting(_ directory: DataDirectory, _ fs: any FileSystem) throws(LearnStoreError) {
        guard fs.exists(directory.path) else { throw LearnStoreError(.notFound, "no data directory at \(directory.path)") }
    }

    /// Takes the data directory's LOCK, or fails with a message that names the reason.
    public static func lock(_ directory: DataDirectory) throws(LearnStoreError) -> Int32 {
        do {
            return try directory.lock()
        } catch let error as LearnStoreError {
            throw LearnStoreError(error.code, "\(error.message); stop the server first (or use --online to go through it)")
        } catch {
            throw LearnStoreError(.storageUnavailable, "cannot lock \(directory.path): \(error)")
        }
    }
}
