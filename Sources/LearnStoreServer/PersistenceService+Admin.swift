import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import Logging

/// SNAPSHOT and RESTORE_TENANT (docs/PROTOCOL.md, appendix C; docs/OPERATIONS.md, "Restore").
extension PersistenceService: AdminOperations {
    public func snapshot(_ tenant: TenantActor, force: Bool) async throws(LearnStoreError) -> SnapshotReport {
        guard let result = try await snapshot([tenant], force: force).first else {
            throw LearnStoreError(.internalError, "the snapshot round returned no result")
        }
        if let error = result.error {
            if result.skipped { throw LearnStoreError(.conflict, "\(error); retry shortly") }
            throw LearnStoreError(.storageUnavailable, "the snapshot could not be written: \(error)")
        }
        let prefix = configuration.dataDirectory + "/"
        let file = result.path.hasPrefix(prefix) ? String(result.path.dropFirst(prefix.count)) : result.path
        return SnapshotReport(written: !result.skipped, sequence: result.sequence, records: UInt64(result.records),
                              bytes: UInt64(result.bytes), file: result.skipped ? "" : file)
    }

    /// Rebuilds the tenant as of the point from its snapshots and the WAL (reading only), writes the
    /// result as a snapshot at a sequence above the tenant's current one and makes it durable, then
    /// swaps it in on the tenant's actor. Meanwhile the tenant answers LOADING; other tenants are not
    /// touched. Once the snapshot is durable the restore survives a crash: the next start loads it
    /// and skips the replaced history's WAL records (their sequences are lower).
    public func restore(_ tenant: TenantActor, _ request: RestoreTenantRequest) async throws(LearnStoreError) -> RestoreTenantReport {
        guard let controller else { throw LearnStoreError(.loading, "the server is recovering its data") }
        // With replication a restore is a write: only the primary takes one, and it reaches the replicas.
        if let replication, replication.role != .primary {
            throw LearnStoreError(.notPrimary, "node \(replication.configuration.nodeID) is a \(replication.role.name); restore a tenant on its primary")
        }
        let asWrite = replication != nil
        let tenantID = tenant.tenantID
        let point = RestorePoint(snapshotSequence: request.snapshotSequence, sequence: request.sequence, time: request.time)
        let options = try TenantRestore.recoveryOptions(
            controller.directory, tenants: [tenantID], point: point, limits: context.environment.limits, fileSystem: configuration.fileSystem)
        let claimed = restoring.update { $0.insert(tenantID).inserted }
        guard claimed else { throw LearnStoreError(.conflict, "tenant \(tenantID) is already being restored") }
        defer { _ = restoring.update { $0.remove(tenantID) } }
        let dryRun = request.dryRun
        if !dryRun { await tenant.setLoading(true) }
        var keepLoading = false
        do throws(LearnStoreError) {
            // With the tenant LOADING no write can start, so its state and last LSN are final.
            let current = await tenant.state
            let lastLSN = await tenant.lastWriteLSN
            let unresolved = await tenant.observedLSN
            let wal = controller.wal
            try await offload { () throws(LearnStoreError) in
                guard wal.waitUntilCommitted(unresolved) else {
                    throw LearnStoreError(.storageUnavailable, "the tenant's last writes are not durable; the WAL is failing")
                }
            }
            let logger = self.logger
            let outcome = try await offload { () throws(LearnStoreError) in try Self.rebuild(options, logger: logger) }
            let (plan, state) = try TenantRestore.plan(
                tenantID: tenantID, point: point, current: current, currentLSN: lastLSN, restored: outcome, dryRun: dryRun)
            if dryRun { return Self.report(plan) }
            if asWrite {
                try await logRestore(of: state, plan: plan, on: tenant, wal: wal)
                await tenant.setLoading(false)
                logger.notice("tenant restored (logged as a write)", metadata: [
                    "tenant": "\(tenantID)", "snapshot": "\(plan.snapshotSequence.map(String.init) ?? "none")",
                    "sequence": "\(plan.restored.sequence)", "new_sequence": "\(plan.newSequence)",
                ])
                return Self.report(plan)
            }
            let uncertain = try await offload { () throws(LearnStoreError) -> String? in
                do {
                    _ = try controller.writeRestoredSnapshot(state, lsn: lastLSN)
                    return nil
                } catch let error as PersistenceController.RestoreOutcomeUncertain {
                    return "\(error)"
                } catch {
                    throw LearnStoreError(.storageUnavailable, "the restored snapshot could not be written: \(error)")
                }
            }
            if let uncertain {
                // Whether a restart finds the tenant restored is unknown: it stays LOADING (no write can
                // take the restore's sequences) until the server restarts (docs/STORAGE-FORMAT.md).
                keepLoading = true
                logger.error("restore outcome uncertain; the tenant refuses requests until a restart", metadata: ["tenant": "\(tenantID)", "error": "\(uncertain)"])
                throw LearnStoreError(.storageUnavailable, "the restore's outcome is uncertain (\(uncertain)); the tenant refuses requests until the server restarts")
            }
            await tenant.replace(with: state, lsn: lastLSN)
            context.feed.tenantRestored(tenantID, sequence: plan.newSequence, afterLSN: lastLSN, at: context.clock.now())
            await tenant.setLoading(false)
            logger.notice("tenant restored", metadata: [
                "tenant": "\(tenantID)", "snapshot": "\(plan.snapshotSequence.map(String.init) ?? "none")",
                "sequence": "\(plan.restored.sequence)", "new_sequence": "\(plan.newSequence)",
                "records_before": "\(plan.before.records)", "records_after": "\(plan.restored.records)",
            ])
            return Self.report(plan)
        } catch {
            if !dryRun && !keepLoading { await tenant.setLoading(false) }
            throw error
        }
    }

    /// The most bytes of the one write a restore is logged as with replication on. The change feed
    /// gives that write as one change in one frame, its outcome rows as JSON (larger than in the
    /// log), and a subscriber takes frames up to 80 MiB: 8 MiB keeps it well below that.
    static let maximumRestoreWriteBytes = 8 << 20

    /// With replication: the restored tenant logged as one write (``TenantActor/logRestore(_:sequence:)``),
    /// which replicas apply like any other, and acknowledged as a client's write is (durable here and on
    /// the in-sync replicas) before the restore is answered.
    private func logRestore(of state: TenantState, plan: TenantRestorePlan, on tenant: TenantActor, wal: WriteAheadLog) async throws(LearnStoreError) {
        let mutations = TenantState.restoringWrite(of: state)
        let entry = LogEntry(tenantID: tenant.tenantID, sequence: plan.newSequence, timestamp: context.clock.now(), mutations: mutations)
        let bytes = WALRecord.encodeUnsequenced(entry).count
        guard bytes <= Self.maximumRestoreWriteBytes else {
            throw LearnStoreError(.validation, "tenant \(tenant.tenantID) restored is \(bytes) bytes as a write; with replication on, an online restore "
                + "is one write of at most \(Self.maximumRestoreWriteBytes) bytes: restore offline on every node (docs/REPLICATION.md)")
        }
        let lsn = try await tenant.logRestore(mutations, sequence: plan.newSequence)
        let acknowledged = try await offload { () throws(LearnStoreError) in wal.waitUntilCommitted(lsn) }
        guard acknowledged else {
            // Failed, it is taken back (the tenant is as before); not acknowledged in time, it may
            // still be, or be cut by a failover: as for a client's write, the outcome is unknown.
            if wal.hasFailed(lsn) { throw LearnStoreError(.storageUnavailable, "the restore could not be logged; the tenant is unchanged") }
            throw LearnStoreError(.outcomeUnknown, "the restore was logged but not acknowledged by the replicas in time; read the tenant's sequence to see whether it holds")
        }
    }

    /// A read of the live WAL can catch a group-commit write half-copied into the page cache (a later
    /// part visible before an earlier one) and take it for damage; a second read sees it whole.
    static func rebuild(_ options: Recovery.Options, logger: Logger) throws(LearnStoreError) -> Recovery.Outcome {
        var attempt = 0
        while true {
            do {
                return try TenantRestore.rebuild(options)
            } catch where attempt < 2 && error.code == .validation {
                attempt += 1
                logger.info("restore: rebuilding again after a failed read of the live WAL", metadata: ["error": "\(error)"])
            }
        }
    }

    static func report(_ plan: TenantRestorePlan) -> RestoreTenantReport {
        func figures(_ f: TenantFigures) -> RestoreTenantReport.Figures {
            .init(sequence: f.sequence, records: UInt64(f.records), deletedRecords: UInt64(f.deletedRecords), outcomeRows: UInt64(f.outcomeRows))
        }
        func difference(_ d: StateDifference) -> RestoreTenantReport.Difference {
            .init(added: UInt64(d.added), removed: UInt64(d.removed), changed: UInt64(d.changed))
        }
        var report = RestoreTenantReport(dryRun: plan.dryRun, snapshotSequence: plan.snapshotSequence)
        report.snapshotLSN = plan.snapshotLSN
        report.walRecordsApplied = UInt64(plan.walRecordsApplied)
        report.lastLSN = plan.lastLSN
        report.before = figures(plan.before)
        report.restored = figures(plan.restored)
        report.newSequence = plan.newSequence
        report.records = difference(plan.records)
        report.outcomeRows = difference(plan.outcomeRows)
        return report
    }
}
