import ArgumentParser
import Foundation
import LearnStoreClient
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol

/// `learnstore restore`: a tenant (or all) from a snapshot, or to a point in time.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a tenant (or all) from a snapshot, or to a point in time: a snapshot plus the WAL up to a sequence or time.",
        discussion: """
            Offline (a stopped server's data directory): takes the directory's LOCK (and fails if a server holds \
            it), rebuilds each tenant as of the point and writes it as the tenant's newest snapshot at a sequence \
            above its current one; the next start loads it. --tenant T or --all; --snapshot and --sequence need \
            --tenant. Online (--online, a token with the admin scope): restores the token's own tenant in the \
            running server, atomically (it answers LOADING meanwhile; other tenants keep serving); the result is \
            durable before the reply. --dry-run changes nothing and reports what would change: record and outcome \
            row counts before and after, records added, removed and changed, the snapshot and sequence used. \
            Prints JSON (one line per tenant offline).
            """)
    @OptionGroup var server: OnlineOptions
    @OptionGroup var data: DataDirOptions
    @OptionGroup var recovery: RecoveryFlags
    @OptionGroup var point: RestorePointOptions
    @Option(help: "Offline: the tenant to restore.") var tenant: String?
    @Flag(help: "Offline: every tenant (only with --time or the latest state).") var all = false
    @Flag(name: .customLong("dry-run"), help: "Only report what would change.") var dryRun = false
    @Option(name: .customLong("snapshot-level"), help: "Offline: zstd level of the written snapshot.") var level: Int = 1

    func run() async throws {
        try await runCLI {
            let point = try self.point.point
            guard (-5...19).contains(level) else { throw CLIError.usage("--snapshot-level must be -5 ... 19") }
            if server.online {
                if tenant != nil || all { throw CLIError.usage("--online restores the token's own tenant; drop --tenant/--all") }
                let connection = try await server.connect(config: data.config)
                let report = try await connection.admin.restoreTenant(RestoreTenantRequest(
                    dryRun: dryRun, snapshotSequence: point.snapshotSequence, sequence: point.sequence, time: point.time))
                await connection.shutdown()
                printJSON(Self.json(report, point: point))
                return
            }
            guard (tenant != nil) != all else { throw CLIError.usage("give --tenant T or --all") }
            if all && (point.sequence != nil || point.snapshotSequence != nil) {
                throw CLIError.usage("--sequence and --snapshot are per tenant: use them with --tenant")
            }
            var restore = OfflineRestore(directory: try data.directory, tenants: tenant.map { [$0] }, point: point, dryRun: dryRun,
                                         now: SystemClock().now())
            restore.forceRecovery = recovery.forceRecovery
            restore.snapshotLevel = level
            let progress = ProgressReporter(dryRun ? "restore (dry run)" : "restore")
            let plans = try restore.run { progress.stage($0) }
            progress.finish("\(plans.count) tenant\(plans.count == 1 ? "" : "s") \(dryRun ? "checked; nothing changed" : "restored")")
            for plan in plans { printJSON(OperatorJSON.plan(plan)) }
        }
    }

    static func json(_ report: RestoreTenantReport, point: RestorePoint) -> JSONValue {
        func figures(_ f: RestoreTenantReport.Figures) -> JSONValue {
            .object([("sequence", OperatorJSON.number(f.sequence)), ("records", OperatorJSON.number(f.records)),
                     ("deleted_records", OperatorJSON.number(f.deletedRecords)), ("outcome_rows", OperatorJSON.number(f.outcomeRows))])
        }
        func difference(_ d: RestoreTenantReport.Difference) -> JSONValue {
            .object([("added", OperatorJSON.number(d.added)), ("removed", OperatorJSON.number(d.removed)), ("changed", OperatorJSON.number(d.changed))])
        }
        return .object([
            ("dry_run", .bool(report.dryRun)), ("point", OperatorJSON.point(point)),
            ("snapshot_sequence", OperatorJSON.optional(report.snapshotSequence)), ("snapshot_lsn", OperatorJSON.number(report.snapshotLSN)),
            ("wal_records_applied", OperatorJSON.number(report.walRecordsApplied)), ("before", figures(report.before)),
            ("restored", figures(report.restored)), ("new_sequence", OperatorJSON.number(report.newSequence)),
            ("last_lsn", OperatorJSON.number(report.lastLSN)), ("records", difference(report.records)),
            ("outcome_rows", difference(report.outcomeRows)),
        ])
    }
}
