import ArgumentParser
import Foundation
import LearnStoreClient
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence

/// `learnstore snapshot list | verify | inspect | create`.
struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "List, verify, inspect and create snapshots.",
        subcommands: [List.self, Verify.self, Inspect.self, Create.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List snapshots per tenant as JSON Lines: sequence, LSN, creation time, counts, size, path.",
            discussion: "Only reads: safe beside a running server.")
        @OptionGroup var data: DataDirOptions
        @Option(help: "Only this tenant.") var tenant: String?

        func run() async throws {
            try await runCLI {
                let directory = try data.directory
                try OfflineDirectory.requireExisting(directory, PosixFileSystem())
                for listing in try SnapshotCatalog.list(directory, tenant: tenant) { printJSON(OperatorJSON.listing(listing)) }
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every checksum of snapshot files: the given files, or every snapshot of the data directory.",
            discussion: """
                Checks the header, each block's CRC-32C and zstd checksum, the trailer, the decoded contents against \
                the header's counts, and that the file sits in its tenant's directory under its sequence. Prints one \
                JSON line per file ({"path", "ok", "error"}); exits with 6 when any file is damaged. Only reads.
                """)
        @OptionGroup var data: DataDirOptions
        @Option(help: "Only this tenant's snapshots.") var tenant: String?
        @Argument(help: "Snapshot files (default: all of the data directory).") var files: [String] = []

        func run() async throws {
            try await runCLI {
                var paths = files
                if paths.isEmpty {
                    let directory = try data.directory
                    try OfflineDirectory.requireExisting(directory, PosixFileSystem())
                    paths = try SnapshotCatalog.list(directory, tenant: tenant).map(\.path)
                }
                let sizes = paths.map { (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int) ?? 0 }
                let total = sizes.reduce(0, +)
                let progress = ProgressReporter("verify")
                var done = 0
                var damaged = 0
                for (path, size) in zip(paths, sizes) {
                    do {
                        let header = try SnapshotCatalog.verify(path)
                        printJSON(.object([("path", .string(path)), ("ok", .bool(true)), ("tenant_id", .string(header.tenantID)),
                                           ("sequence", OperatorJSON.number(header.sequence))]))
                    } catch {
                        damaged += 1
                        printJSON(.object([("path", .string(path)), ("ok", .bool(false)), ("error", .string("\(error)"))]))
                    }
                    done += size
                    progress.update(done, of: total, "\(fileName(path))")
                }
                progress.finish("\(paths.count) files, \(damaged) damaged")
                if damaged > 0 { throw ExitCode(6) }
            }
        }
    }

    struct Inspect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a snapshot's header and the counts of what it holds (JSON).",
            discussion: "Give a file, or --tenant (its newest snapshot, or --sequence). Decoding verifies the file.")
        @OptionGroup var data: DataDirOptions
        @Option(help: "A tenant (with --data-dir).") var tenant: String?
        @Option(help: "The snapshot sequence (default: the tenant's newest).") var sequence: UInt64?
        @Argument(help: "A snapshot file.") var file: String?

        func run() async throws {
            try await runCLI {
                let path: String
                switch (file, tenant) {
                case let (file?, nil): path = file
                case let (nil, tenant?):
                    let directory = try data.directory
                    let sequences = try directory.snapshots(of: tenant, PosixFileSystem())
                    guard let chosen = sequence ?? sequences.last, sequences.contains(chosen) else {
                        throw CLIError.failed("tenant \(tenant) has no snapshot\(sequence.map { " with sequence \($0)" } ?? "") in \(directory.path)")
                    }
                    path = directory.snapshotPath(tenant, sequence: chosen)
                default: throw CLIError.usage("give a snapshot file or --tenant")
                }
                printJSON(OperatorJSON.inspection(try SnapshotCatalog.inspect(path)))
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a snapshot now: of the token's tenant through a running server (--online), or of a stopped server's data directory.",
            discussion: """
                --online sends SNAPSHOT (admin scope): the server writes the tenant's snapshot and applies its \
                retention. Offline, under the data directory's LOCK, every tenant (or --tenant) whose state is newer \
                than its newest snapshot gets one, so the next start replays less WAL; a server stopped gracefully \
                already wrote them. Unchanged tenants are skipped unless --force. Prints JSON.
                """)
        @OptionGroup var server: OnlineOptions
        @OptionGroup var data: DataDirOptions
        @OptionGroup var recovery: RecoveryFlags
        @Option(help: "Offline: only this tenant.") var tenant: String?
        @Flag(help: "Write even when nothing changed since the newest snapshot.") var force = false
        @Option(name: .customLong("snapshot-level"), help: "Offline: zstd level.") var level: Int = 1

        func run() async throws {
            try await runCLI {
                guard (-5...19).contains(level) else { throw CLIError.usage("--snapshot-level must be -5 ... 19") }
                if server.online {
                    if tenant != nil { throw CLIError.usage("--online snapshots the token's tenant; drop --tenant") }
                    let connection = try await server.connect(config: data.config)
                    let report = try await connection.admin.snapshot(force: force)
                    await connection.shutdown()
                    printJSON(.object([("written", .bool(report.written)), ("sequence", OperatorJSON.number(report.sequence)),
                                       ("records", OperatorJSON.number(report.records)), ("bytes", OperatorJSON.number(report.bytes)),
                                       ("file", report.file.isEmpty ? .null : .string(report.file))]))
                    return
                }
                var snapshotter = OfflineSnapshotter(directory: try data.directory, tenants: tenant.map { [$0] }, now: SystemClock().now())
                snapshotter.force = force
                snapshotter.forceRecovery = recovery.forceRecovery
                snapshotter.level = level
                let progress = ProgressReporter("snapshot")
                let results = try snapshotter.run { progress.stage($0) }
                progress.finish("\(results.filter { $0.path != nil }.count) written, \(results.filter { $0.path == nil }.count) unchanged")
                for result in results {
                    printJSON(.object([("tenant_id", .string(result.tenantID)), ("written", .bool(result.path != nil)),
                                       ("sequence", OperatorJSON.number(result.sequence)), ("records", OperatorJSON.number(result.records)),
                                       ("bytes", OperatorJSON.number(result.bytes)), ("path", result.path.map(JSONValue.string) ?? .null)]))
                }
            }
        }
    }
}
