import ArgumentParser
import CanvasOutcomes
import Foundation
import LearnStoreClient
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `--data-dir` of the offline tools, resolved like `serve` does (flag, LEARNSTORE_DATA_DIR, config
/// file, default `snapshots`).
struct DataDirOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "The data directory (default snapshots; env LEARNSTORE_DATA_DIR).") var dataDir: String?
    @Option(name: .customLong("config"), help: "Config file of 'name = value' lines.") var config: String?

    var directory: DataDirectory {
        get throws { DataDirectory(try Settings(configFile: config).string("data-dir", dataDir) ?? "snapshots") }
    }
}

/// The server options of a tool that works offline by default and on a running server with
/// `--online` (the config file option is shared with ``DataDirOptions``).
struct OnlineOptions: ParsableArguments {
    @Flag(help: "Go through a running server (a token with the admin scope) instead of a data directory.") var online = false
    @Option(help: "With --online: server host (default 127.0.0.1).") var host: String?
    @Option(help: "With --online: server port (default 7878).") var port: Int?
    @Option(help: "With --online: JWT to authenticate with (env LEARNSTORE_TOKEN).") var token: String?

    func connect(config: String?) async throws -> LearnStoreClient {
        try await ClientOptions.connect(host: host, port: port, token: token, config: config)
    }
}

/// Flags that go from an offline tool to recovery.
struct RecoveryFlags: ParsableArguments {
    @Flag(name: .customLong("force-recovery"), help: "Read past WAL or snapshot damage (as 'serve --force-recovery' would) instead of stopping.")
    var forceRecovery = false
}

/// The point of a restore or export: `--snapshot`, then `--sequence` or `--time`.
struct RestorePointOptions: ParsableArguments {
    @Option(help: "Start from this snapshot sequence (default: the newest usable one).") var snapshot: UInt64?
    @Option(help: "Replay the WAL up to this tenant sequence number (inclusive).") var sequence: UInt64?
    @Option(help: "Replay the WAL up to this time (ISO 8601, inclusive).") var time: String?

    var point: RestorePoint {
        get throws {
            if sequence != nil && time != nil { throw CLIError.usage("give --sequence or --time, not both") }
            return RestorePoint(snapshotSequence: snapshot, sequence: sequence, time: try time.map { try parseTime($0, "--time") })
        }
    }
}

/// Progress of long work on stderr: a redrawn bar on a terminal, else a line at each tenth (and each
/// stage message). Safe to call from recovery's threads.
final class ProgressReporter: Sendable {
    private struct State {
        var lastDraw = ContinuousClock.now - .seconds(1)
        var lastTenth = -1
        var drewOnLine = false
    }

    let label: String
    let isTerminal: Bool
    private let state = Mutex(State())

    init(_ label: String, isTerminal: Bool = isatty(STDERR_FILENO) == 1) {
        self.label = label
        self.isTerminal = isTerminal
    }

    /// `done` of `total` units (files, bytes, lines), with a short detail.
    func update(_ done: Int, of total: Int, _ detail: String = "") {
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        state.withLock { state in
            if isTerminal {
                let now = ContinuousClock.now
                guard now - state.lastDraw >= .milliseconds(100) || done >= total else { return }
                state.lastDraw = now
                state.drewOnLine = true
                write("\r\(label) " + IngestProgress.bar(fraction) + (detail.isEmpty ? "" : " " + detail) + "\u{1B}[K")
            } else {
                let tenth = Int(fraction * 10)
                guard tenth > state.lastTenth else { return }
                state.lastTenth = tenth
                write("\(label): \(tenth * 10)%" + (detail.isEmpty ? "" : " " + detail) + "\n")
            }
        }
    }

    /// A stage of work whose size is unknown (recovery's own progress messages).
    func stage(_ message: String) {
        state.withLock { state in
            if isTerminal {
                state.drewOnLine = true
                write("\r\(label): \(message)\u{1B}[K")
            } else {
                write("\(label): \(message)\n")
            }
        }
    }

    func finish(_ summary: String) {
        state.withLock { state in
            if isTerminal && state.drewOnLine { write("\r\u{1B}[K") }
            write("\(label): \(summary)\n")
        }
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}

/// JSON views of the operator tools' reports (snake_case, times in RFC 3339).
enum OperatorJSON {
    static func number(_ value: some BinaryInteger) -> JSONValue { .number(String(value)) }
    static func optional(_ value: UInt64?) -> JSONValue { value.map { number($0) } ?? .null }

    static func headerMembers(_ header: SnapshotHeader) -> [(String, JSONValue)] {
        [("tenant_id", .string(header.tenantID)), ("sequence", number(header.sequence)), ("lsn", number(header.lsn)),
         ("created_at", .string(header.createdAt.rfc3339)), ("records", number(header.records)),
         ("outcome_records", number(header.outcomeRecords)), ("idempotency_keys", number(header.idempotencyKeys))]
    }

    static func listing(_ listing: SnapshotListing) -> JSONValue {
        var members: [(String, JSONValue)]
        if let header = listing.header {
            members = headerMembers(header)
        } else {
            members = [("tenant_id", .string(listing.tenantID)), ("sequence", number(listing.sequence))]
        }
        members += [("bytes", number(listing.fileBytes)), ("path", .string(listing.path))]
        if let error = listing.error { members.append(("error", .string(error))) }
        return .object(members)
    }

    static func inspection(_ i: SnapshotInspection) -> JSONValue {
        .object([("path", .string(i.path)), ("format_version", number(SnapshotHeader.formatVersion))] + headerMembers(i.header) + [
            ("file_bytes", number(i.fileBytes)), ("blocks", number(i.blocks)), ("uncompressed_bytes", number(i.uncompressedBytes)),
            ("live_records", number(i.liveRecords)), ("deleted_records", number(i.deletedRecords)), ("strings", number(i.strings)),
            ("uuids", number(i.uuids)), ("persons", number(i.persons)), ("idempotency_keys_loaded", number(i.idempotencyKeys)),
            ("outcome_entities", .object(OutcomeEntityKind.allCases.map { ($0.description, number(i.outcomeEntities[$0] ?? 0)) })),
            ("outcome_tombstones", number(i.outcomeTombstones)),
        ])
    }

    static func figures(_ f: TenantFigures) -> JSONValue {
        .object([("sequence", number(f.sequence)), ("records", number(f.records)), ("deleted_records", number(f.deletedRecords)),
                 ("outcome_rows", number(f.outcomeRows))])
    }

    static func difference(_ d: StateDifference) -> JSONValue {
        .object([("added", number(d.added)), ("removed", number(d.removed)), ("changed", number(d.changed))])
    }

    static func point(_ p: RestorePoint) -> JSONValue {
        .object([("snapshot", optional(p.snapshotSequence)), ("sequence", optional(p.sequence)),
                 ("time", p.time.map { .string($0.rfc3339) } ?? .null)])
    }

    static func plan(_ plan: TenantRestorePlan) -> JSONValue {
        .object([
            ("tenant_id", .string(plan.tenantID)), ("dry_run", .bool(plan.dryRun)), ("point", point(plan.point)),
            ("snapshot_sequence", optional(plan.snapshotSequence)), ("snapshot_lsn", number(plan.snapshotLSN)),
            ("wal_records_applied", number(plan.walRecordsApplied)), ("before", figures(plan.before)),
            ("restored", figures(plan.restored)), ("new_sequence", number(plan.newSequence)), ("last_lsn", number(plan.lastLSN)),
            ("records", difference(plan.records)), ("outcome_rows", difference(plan.outcomeRows)),
            ("snapshot_written", plan.snapshotPath.map(JSONValue.string) ?? .null),
        ])
    }

    static func mutation(_ mutation: TenantMutation, full: Bool) -> JSONValue {
        switch mutation {
        case .putRecords(let records):
            return .object([("put_records", full ? .array(records.map(\.json)) : number(records.count))])
        case .purgeRecords(let ids):
            return .object([("purge_records", full ? .array(ids.map { .string($0.description) }) : number(ids.count))])
        case .rememberIdempotencyKey(let entry):
            let key = entry.key.replacingOccurrences(of: "\0", with: "/")
            return .object([("idempotency_key", full ? .object([("key", .string(key)), ("ids", .array(entry.ids.map { .string($0.description) })),
                                                                ("sequence", number(entry.sequence))]) : .string(key))])
        case .outcomes(let rows):
            return .object([("outcomes", full ? .array(rows.map(\.exportJSON)) : number(rows.count))])
        case .recordChange(let kind):
            return .object([("record_change", .string(kind.name))])
        case .resetTenant:
            return .object([("reset_tenant", .bool(true))])
        case .releaseTenant:
            return .object([("release_tenant", .bool(true))])
        case .continueTenant:
            return .object([("continue_tenant", .bool(true))])
        case .forgetIdempotencyKeys:
            return .object([("forget_idempotency_keys", .bool(true))])
        }
    }

    static func walRecord(_ record: WALRecord, segment: String, offset: Int, full: Bool) -> JSONValue {
        .object([
            ("lsn", number(record.lsn)), ("tenant", .string(record.entry.tenantID)), ("sequence", number(record.entry.sequence)),
            ("timestamp", .string(record.entry.timestamp.rfc3339)), ("segment", .string(segment)), ("offset", number(offset)),
            ("mutations", .array(record.entry.mutations.map { mutation($0, full: full) })),
        ])
    }
}

/// The last path component.
func fileName(_ path: String) -> String { String(path.split(separator: "/").last ?? Substring(path)) }
