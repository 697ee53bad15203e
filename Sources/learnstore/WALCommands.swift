import ArgumentParser
import Foundation
import LearnStoreModel
import LearnStorePersistence

/// `learnstore wal cat | check | truncate`.
struct WALCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal", abstract: "Read, check and (after damage) truncate the write-ahead log.",
        subcommands: [Cat.self, Check.self, Truncate.self])

    struct Cat: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print WAL records as JSON Lines: lsn, tenant, sequence, timestamp, segment, offset, mutations.",
            discussion: """
                Mutations are summarized ({"put_records": 3}, {"purge_records": 1}, {"idempotency_key": "…"}, \
                {"outcomes": 2}); --full prints them whole (records under the field names of docs/PROTOCOL.md section 4.5, outcome rows as \
                'export' writes them). Damaged regions are skipped and reported on stderr. Only reads.
                """)
        @OptionGroup var data: DataDirOptions
        @Option(help: "Only this tenant's records.") var tenant: String?
        @Option(name: .customLong("from-lsn"), help: "First LSN (inclusive).") var fromLSN: UInt64 = 0
        @Option(name: .customLong("to-lsn"), help: "Last LSN (inclusive).") var toLSN: UInt64 = .max
        @Flag(help: "Print mutations in full.") var full = false

        func run() async throws {
            try await runCLI {
                guard fromLSN <= toLSN else { throw CLIError.usage("--from-lsn must not be above --to-lsn") }
                let directory = try data.directory
                try OfflineDirectory.requireExisting(directory, PosixFileSystem())
                var out: [UInt8] = []
                out.reserveCapacity(1 << 16)
                let damage = try WALInspector.forEachRecord(directory, lsns: fromLSN...toLSN) { record, segment, offset in
                    if let tenant, record.entry.tenantID != tenant { return true }
                    OperatorJSON.walRecord(record, segment: fileName(segment), offset: offset, full: full).write(to: &out)
                    out.append(UInt8(ascii: "\n"))
                    if out.count >= 1 << 16 {
                        FileHandle.standardOutput.write(Data(out))
                        out.removeAll(keepingCapacity: true)
                    }
                    return true
                }
                FileHandle.standardOutput.write(Data(out))
                for line in damage { FileHandle.standardError.write(Data("warning: \(line)\n".utf8)) }
            }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Scan every WAL segment and report a torn tail or corruption with segment and offset (JSON).",
            discussion: """
                A torn tail (the last write interrupted by a crash) is normal: the server truncates it at start; \
                the exit status is 0. Corruption (damage followed by completed writes, or an unreadable segment \
                header) stops a start unless --force-recovery: the exit status is 6. On a running server's \
                directory the write in progress may show as a torn tail.
                """)
        @OptionGroup var data: DataDirOptions

        func run() async throws {
            try await runCLI {
                let directory = try data.directory
                try OfflineDirectory.requireExisting(directory, PosixFileSystem())
                let progress = ProgressReporter("wal check")
                let report = try WALInspector.check(directory) { done, total in progress.update(done, of: total, "segment \(done) of \(total)") }
                var status = "ok"
                var segments: [JSONValue] = []
                for segment in report.segments {
                    var members: [(String, JSONValue)] = [
                        ("segment", .string(fileName(segment.path))), ("first_lsn", OperatorJSON.number(segment.firstLSN)),
                        ("last_lsn", OperatorJSON.optional(segment.lastLSN)), ("records", OperatorJSON.number(segment.records)),
                        ("bytes", OperatorJSON.number(segment.fileBytes)), ("data_end", OperatorJSON.number(segment.dataEnd)),
                    ]
                    switch segment.problem {
                    case nil: members.append(("status", .string("ok")))
                    case .badHeader(let reason):
                        status = "corrupt"
                        members += [("status", .string("bad_header")), ("offset", OperatorJSON.number(0)), ("reason", .string(reason))]
                    case .tornTail(let offset, let reason):
                        if status == "ok" { status = "torn_tail" }
                        members += [("status", .string("torn_tail")), ("offset", OperatorJSON.number(offset)), ("reason", .string(reason))]
                    case .corruption(let offset, let reason):
                        status = "corrupt"
                        members += [("status", .string("corrupt")), ("offset", OperatorJSON.number(offset)), ("reason", .string(reason))]
                    }
                    segments.append(.object(members))
                }
                progress.finish("\(report.segments.count) segments, \(report.records) records: \(status)")
                printJSON(.object([
                    ("status", .string(status)), ("segments", .array(segments)), ("records", OperatorJSON.number(report.records)),
                    ("first_lsn", OperatorJSON.optional(report.firstLSN)), ("last_lsn", OperatorJSON.optional(report.lastLSN)),
                ]))
                if report.isCorrupt { throw ExitCode(6) }
            }
        }
    }

    struct Truncate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cut the WAL at an LSN or a segment offset, dropping every record from there on (recovery from damage).",
            discussion: """
                --at-lsn N drops the record with LSN N and everything after it; --segment S --offset O (as 'wal \
                check' reports damage) zeroes segment S from byte O and removes the later segments. Prints the plan \
                as JSON: the records dropped, by tenant, and snapshots that hold writes past the cut. --dry-run only \
                prints it; otherwise --yes is required. Takes the data directory's LOCK: stop the server first. \
                Copy the data directory before truncating: dropped writes are gone.
                """)
        @OptionGroup var data: DataDirOptions
        @Option(name: .customLong("at-lsn"), help: "Drop this LSN and everything after it.") var atLSN: UInt64?
        @Option(help: "A segment: its file name (wal-….log) or first LSN.") var segment: String?
        @Option(help: "Byte offset within --segment.") var offset: Int?
        @Flag(name: .customLong("dry-run"), help: "Only print what would be dropped.") var dryRun = false
        @Flag(help: "Confirm the truncation.") var yes = false

        func run() async throws {
            try await runCLI {
                let cut: WALCutPoint
                switch (atLSN, segment, offset) {
                case let (lsn?, nil, nil): cut = .lsn(lsn)
                case let (nil, segment?, offset?):
                    guard let first = UInt64(segment) ?? WALSegmentHeader.firstLSN(fromFileName: fileName(segment)) else {
                        throw CLIError.usage("--segment takes a segment file name (wal-<20 digits>.log) or its first LSN")
                    }
                    cut = .offset(segmentFirstLSN: first, offset: offset)
                default: throw CLIError.usage("give --at-lsn, or --segment with --offset")
                }
                let directory = try data.directory
                try OfflineDirectory.requireExisting(directory, PosixFileSystem())
                let lock = dryRun ? nil : try OfflineDirectory.lock(directory)
                defer { lock.map(DataDirectory.unlock) }
                let plan = try WALInspector.planTruncation(directory, at: cut)
                let apply = !dryRun && yes
                if apply { try WALInspector.truncate(plan) }
                printJSON(.object([
                    ("segment", .string(fileName(plan.segmentPath))), ("offset", OperatorJSON.number(plan.offset)),
                    ("zeroed_bytes", OperatorJSON.number(plan.zeroedBytes)),
                    ("removed_segments", .array(plan.removedSegments.map { .string(fileName($0)) })),
                    ("dropped_records", OperatorJSON.number(plan.droppedRecords)),
                    ("first_dropped_lsn", OperatorJSON.optional(plan.firstDroppedLSN)),
                    ("last_dropped_lsn", OperatorJSON.optional(plan.lastDroppedLSN)),
                    ("dropped_by_tenant", .object(plan.droppedByTenant.sorted { $0.key < $1.key }.map { ($0.key, OperatorJSON.number($0.value)) })),
                    ("snapshots_beyond_cut", .array(plan.snapshotsBeyondCut.map(JSONValue.string))),
                    ("truncated", .bool(apply)),
                ]))
                if !dryRun && !yes { throw CLIError.usage("nothing changed: add --yes to truncate (or --dry-run to only look)") }
            }
        }
    }
}
