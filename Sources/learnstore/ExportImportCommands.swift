import ArgumentParser
import CanvasOutcomes
import Foundation
import LearnStoreClient
import LearnStoreEngine
import LearnStoreProtocol
import LearnStoreModel
import LearnStorePersistence

/// `learnstore export`: a tenant to JSON Lines.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a tenant's records and Canvas outcome data as JSON Lines, from a data directory.",
        discussion: """
            Every record (live and soft-deleted) under the JSON field names of docs/PROTOCOL.md section 4.5, in (created_at, id) order, then \
            every outcome row: {"kind": "learning_outcome", "entity": {…}} with the entity JSON of the API, or \
            {"kind": …, "tombstone": {"key", "record_time", "event_time", "digest"}} for a deleted entity. The same \
            state always exports to the same bytes. Idempotency keys are not exported. --snapshot, --sequence or \
            --time export the tenant as of that point. Only reads: safe beside a running server (it sees what \
            is written up to the moment). 'learnstore import' reads the file back.
            """)
    @OptionGroup var data: DataDirOptions
    @OptionGroup var recovery: RecoveryFlags
    @OptionGroup var point: RestorePointOptions
    @Option(help: "The tenant to export.") var tenant: String
    @Option(name: .shortAndLong, help: "Output file (default: stdout).") var output: String?

    func run() async throws {
        try await runCLI {
            let directory = try data.directory
            try OfflineDirectory.requireExisting(directory, PosixFileSystem())
            let options = try TenantRestore.recoveryOptions(directory, tenants: [tenant], point: try point.point,
                                                            forceRecovery: recovery.forceRecovery)
            let progress = ProgressReporter("export")
            let outcome = try TenantRestore.rebuild(options) { progress.stage($0) }
            guard let state = outcome.states[tenant] else { throw CLIError.failed("the data directory holds no tenant \(tenant)") }
            let handle: FileHandle
            if let output, output != "-" {
                guard FileManager.default.createFile(atPath: output, contents: nil) , let opened = FileHandle(forWritingAtPath: output) else {
                    throw CLIError.usage("cannot write \(output)")
                }
                handle = opened
            } else {
                handle = FileHandle.standardOutput
            }
            let total = TenantExport.lineCount(of: state)
            var out: [UInt8] = []
            out.reserveCapacity(1 << 20)
            var lines = 0
            var records = 0
            try TenantExport.forEachLine(of: state) { line in
                line.json.write(to: &out)
                out.append(UInt8(ascii: "\n"))
                lines += 1
                if case .record = line { records += 1 }
                if out.count >= 1 << 20 {
                    try handle.write(contentsOf: out)
                    out.removeAll(keepingCapacity: true)
                    progress.update(lines, of: total)
                }
            }
            try handle.write(contentsOf: out)
            if output != nil && output != "-" { try handle.close() }
            progress.update(lines, of: total)
            progress.finish("tenant \(tenant) at sequence \(state.sequence): \(records) records, \(lines - records) outcome rows")
        }
    }
}

/// `learnstore import`: JSON Lines as `export` writes them, into a tenant.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Put records and outcome rows from JSON Lines (as 'export' writes them) into a tenant.",
        discussion: """
            Records keep their ids and stamps (tenant_id becomes the target tenant's); a record with an id the \
            tenant holds is replaced. Outcome rows are applied by the outcome version rules: an older version \
            than the stored one changes nothing. Lines go in batches of --batch, each one write (one sequence \
            number). Offline (--tenant T, a stopped server's data directory): under the LOCK, all or nothing; the \
            result is written as the tenant's newest snapshot. Online (--online, admin token): into the token's \
            tenant through the running server; if a batch fails, earlier batches stay imported and running the \
            command again is safe. Prints a JSON summary; progress on stderr.
            """)
    @OptionGroup var server: OnlineOptions
    @OptionGroup var data: DataDirOptions
    @OptionGroup var recovery: RecoveryFlags
    @Argument(help: "JSON Lines file, or - for stdin.") var file: String
    @Option(help: "Offline: the tenant to import into.") var tenant: String?
    @Option(help: "Lines per write (1-10000).") var batch: Int = 1000
    @Option(name: .customLong("snapshot-level"), help: "Offline: zstd level of the written snapshot.") var level: Int = 1

    func run() async throws {
        try await runCLI {
            guard (1...10_000).contains(batch) else { throw CLIError.usage("--batch must be 1 to 10000") }
            guard (-5...19).contains(level) else { throw CLIError.usage("--snapshot-level must be -5 ... 19") }
            var reader = try EventLineReader(path: file)
            let progress = ProgressReporter("import")
            var lines = 0
            /// Each line of the current batch: whether it is a record, and its line number.
            var batchLines: [(isRecord: Bool, number: Int)] = []
            /// The next batch: parsed lines, and each outcome row's original bytes (sent as they are).
            func nextBatch() throws -> [(ExportLine, [UInt8])]? {
                var parsed: [(ExportLine, [UInt8])] = []
                batchLines.removeAll(keepingCapacity: true)
                while parsed.count < batch, let (number, bytes) = try reader.next() {
                    do {
                        let line = try ExportLine(json: try JSONValue.parse(bytes))
                        parsed.append((line, bytes))
                        if case .record = line { batchLines.append((true, number)) } else { batchLines.append((false, number)) }
                    } catch let error as LearnStoreError {
                        throw CLIError.failed("line \(number): \(error.message)\(error.field.map { " (\($0))" } ?? "")")
                    } catch {
                        throw CLIError.failed("line \(number): \(error)")
                    }
                }
                lines += parsed.count
                return parsed.isEmpty ? nil : parsed
            }
            func report() { progress.update(reader.bytesRead, of: reader.totalBytes ?? reader.bytesRead, "\(lines) lines") }

            if server.online {
                if tenant != nil { throw CLIError.usage("--online imports into the token's tenant; drop --tenant") }
                let connection = try await server.connect(config: data.config)
                var total = ImportReport(sequence: 0, records: 0, outcomesApplied: 0, outcomesUnchanged: 0)
                do {
                    while let parsed = try nextBatch() {
                        var records: [LearningRecord] = []
                        var rows: [[UInt8]] = []
                        for (line, bytes) in parsed {
                            switch line {
                            case .record(let record): records.append(record)
                            case .outcome: rows.append(bytes)
                            }
                        }
                        let result: ImportReport
                        do {
                            result = try await connection.admin.importBatch(records: records, outcomeRows: rows)
                        } catch let error as LearnStoreError {
                            throw BatchErrorPosition.inImportFile(error, lines: batchLines, importedLines: lines - parsed.count)
                        }
                        total.sequence = max(total.sequence, result.sequence)
                        total.records += result.records
                        total.outcomesApplied += result.outcomesApplied
                        total.outcomesUnchanged += result.outcomesUnchanged
                        report()
                    }
                } catch {
                    await connection.shutdown()
                    throw error
                }
                await connection.shutdown()
                progress.finish("\(lines) lines imported")
                printJSON(.object([("lines", OperatorJSON.number(lines)), ("records", OperatorJSON.number(total.records)),
                                   ("outcomes_applied", OperatorJSON.number(total.outcomesApplied)),
                                   ("outcomes_unchanged", OperatorJSON.number(total.outcomesUnchanged)),
                                   ("sequence", OperatorJSON.number(total.sequence))]))
                return
            }
            guard let tenant else { throw CLIError.usage("give --tenant (offline) or --online") }
            let session = try OfflineImport(directory: try data.directory, tenantID: tenant, forceRecovery: recovery.forceRecovery) { progress.stage($0) }
            do {
                while let parsed = try nextBatch() {
                    do {
                        try session.apply(parsed.map(\.0))
                    } catch let error as LearnStoreError {
                        // Offline, nothing is written until the end: earlier batches are not imported either.
                        throw BatchErrorPosition.inImportFile(error, lines: batchLines, importedLines: 0)
                    }
                    report()
                }
            } catch {
                session.release()
                throw error
            }
            let total = session.total
            let sequence = session.figures.sequence
            let written = try session.finish(now: SystemClock().now(), level: level)
            progress.finish("\(lines) lines imported")
            printJSON(.object([("lines", OperatorJSON.number(lines)), ("records", OperatorJSON.number(total.records)),
                               ("outcomes_applied", OperatorJSON.number(total.outcomesApplied)),
                               ("outcomes_unchanged", OperatorJSON.number(total.outcomesUnchanged)),
                               ("sequence", OperatorJSON.number(sequence)),
                               ("snapshot_written", written.map { .string($0.path) } ?? .null)]))
        }
    }
}
