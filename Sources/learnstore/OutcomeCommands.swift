import ArgumentParser
import CanvasOutcomes
import Foundation
import LearnStoreClient
import LearnStoreModel

#if canImport(Glibc)
import Glibc
#endif

/// `learnstore outcomes …`: Canvas learning-outcome data (JSON out).
struct OutcomesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outcomes", abstract: "Ingest and query Canvas learning-outcome data (JSON out).",
        discussion: "Needs a token with outcomes:write to ingest and outcomes:read for everything else.",
        subcommands: [Ingest.self, Get.self, List.self, Results.self, Rollup.self, Proficiency.self])
}

/// `--context-type` / `--context-id`, Canvas's `context_type` and `context_id` (e.g. Course 565).
struct ContextOptions: ParsableArguments {
    @Option(name: .customLong("context-type"), help: "Canvas context_type, e.g. Course or Account.") var contextType: String?
    @Option(name: .customLong("context-id"), help: "Canvas context_id, e.g. 565.") var contextID: String?

    var context: ContextRef? {
        get throws {
            switch (contextType, contextID) {
            case let (type?, id?): return ContextRef(type: type, id: id)
            case (nil, nil): return nil
            default: throw CLIError.usage("--context-type and --context-id go together")
            }
        }
    }

    func required() throws -> ContextRef {
        guard let context = try context else { throw CLIError.usage("this needs --context-type and --context-id") }
        return context
    }
}

extension OutcomesCommand {
    struct Ingest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ingest Canvas outcome live events from a JSON Lines file (one event per line).",
            discussion: """
                Each line is sent as it is (blank lines are skipped), in batches of --batch events. Every event \
                gets its own result: applied, duplicate (the same version is stored), stale (a newer one is \
                stored) or rejected (malformed: the field is named). A rejected event changes nothing and the \
                rest of its batch still applies. Progress goes to stderr: a bar when stderr is a terminal, \
                else a line per 10 %. The summary is printed as JSON on stdout, the first 20 rejected events \
                (with their line numbers) on stderr.
                Exit status: 0 when no event was rejected; 5 when some were (all others are ingested); \
                1, 3 or 4 when the ingest itself failed (see 'learnstore --help'); events of batches sent \
                before such a failure stay ingested, and running the command again is safe.
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "JSON Lines file of live events, or - for stdin.") var file: String
        @Option(help: "Events per request (1-1000).") var batch: Int = 500

        func run() async throws {
            try await runCLI {
                guard (1...1000).contains(batch) else { throw CLIError.usage("--batch must be 1 to 1000") }
                var reader = try EventLineReader(path: file)
                let session = try await client.session()
                var progress = IngestProgress(totalBytes: reader.totalBytes, isTerminal: isatty(STDERR_FILENO) == 1)
                var summary = IngestSummary()
                var pending: [[UInt8]] = []
                var lineNumbers: [Int] = []
                func send() async throws {
                    guard !pending.isEmpty else { return }
                    // A batch sent again after a failover finds its applied events stored (duplicate).
                    let events = pending
                    let report = try await session.run { (c) throws(LearnStoreError) in try await c.outcomes.ingest(events) }
                    summary.add(report, lines: lineNumbers)
                    pending.removeAll(keepingCapacity: true)
                    lineNumbers.removeAll(keepingCapacity: true)
                    progress.update(bytes: reader.bytesRead, summary: summary)
                }
                while let (number, line) = try reader.next() {
                    pending.append(line)
                    lineNumbers.append(number)
                    if pending.count == batch { try await send() }
                }
                try await send()
                progress.finish(summary: summary)
                await session.shutdown()
                for (line, rejection) in summary.firstRejections {
                    FileHandle.standardError.write(Data("line \(line): \(rejection.reason): \(rejection.error)\n".utf8))
                }
                if summary.rejected > summary.firstRejections.count {
                    FileHandle.standardError.write(Data("… and \(summary.rejected - summary.firstRejections.count) more rejected events\n".utf8))
                }
                printJSON(summary.json)
                if summary.rejected > 0 { throw ExitCode(5) }
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print one live entity: outcome, group, link, result (by key) or proficiency.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "outcome, group, link, result or proficiency.") var kind: String
        @Argument(help: "The Canvas id (a result's key).") var id: String

        func run() async throws {
            try await runCLI {
                let kinds: [String: OutcomeEntityKind] = ["outcome": .outcome, "group": .group, "link": .link, "result": .result,
                                                          "proficiency": .proficiency]
                guard let entityKind = kinds[kind] else {
                    throw CLIError.usage("kind must be one of outcome, group, link, result, proficiency; got '\(kind)'")
                }
                let session = try await client.session()
                let key = id
                printJSON(try await session.run { (c) throws(LearnStoreError) in try await c.outcomes.entity(entityKind, key: key) }.json)
                await session.shutdown()
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List outcomes, groups or links of a context, links of a group or outcome, a group's children or its path to the root.",
            discussion: """
                outcomes|groups --context-type T --context-id ID;  links (--context-type T --context-id ID | --group ID | \
                --outcome ID);  children --group ID (prints {"groups":[…],"links":[…]});  path --group ID (the group, \
                its parent, … the root). Entities print as JSON Lines, by id.
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "outcomes, groups, links, children or path.") var what: String
        @OptionGroup var context: ContextOptions
        @Option(help: "A group id.") var group: String?
        @Option(help: "An outcome id (for links).") var outcome: String?

        func run() async throws {
            try await runCLI {
                let query: OutcomeTreeQuery
                let context = try context.context
                switch what {
                case "outcomes": query = .contextOutcomes(try self.context.required())
                case "groups": query = .contextGroups(try self.context.required())
                case "links":
                    switch (context, group, outcome) {
                    case let (context?, nil, nil): query = .contextLinks(context)
                    case let (nil, group?, nil): query = .groupLinks(groupID: group)
                    case let (nil, nil, outcome?): query = .outcomeLinks(outcomeID: outcome)
                    default: throw CLIError.usage("links needs exactly one of a context, --group or --outcome")
                    }
                case "children", "path":
                    guard let group else { throw CLIError.usage("\(what) needs --group") }
                    query = what == "children" ? .groupChildren(groupID: group) : .groupPath(groupID: group)
                default: throw CLIError.usage("list what? outcomes, groups, links, children or path; got '\(what)'")
                }
                let session = try await client.session()
                let asked = query
                let entities = try await session.run { (c) throws(LearnStoreError) in try await c.outcomes.entities(asked) }
                if case .groupChildren = query {
                    printJSON(.object([
                        ("groups", .array(entities.filter { $0.kind == .group }.map(\.json))),
                        ("links", .array(entities.filter { $0.kind == .link }.map(\.json))),
                    ]))
                } else {
                    for entity in entities { printJSON(entity.json) }
                }
                await session.shutdown()
            }
        }
    }

    struct Results: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List results as JSON Lines, by assessed_at then id: of a student, an outcome, a context, an asset, or assessed in [--from, --to).",
            discussion: "Give exactly one of --student, --outcome, a context, an asset, or --from with --to. Prints one page and the next cursor on stderr, or every page with --all.")
        @OptionGroup var client: ClientOptions
        @Option(help: "A student's user_uuid.") var student: String?
        @Option(help: "An outcome id.") var outcome: String?
        @OptionGroup var context: ContextOptions
        @Option(name: .customLong("asset-type"), help: "associated_asset_type, e.g. Assignment.") var assetType: String?
        @Option(name: .customLong("asset-id"), help: "associated_asset_id.") var assetID: String?
        @Option(help: "assessed_at at or after this ISO 8601 time.") var from: String?
        @Option(help: "assessed_at before this ISO 8601 time.") var to: String?
        @Option(help: "Results per page (1-1000).") var limit: Int = 100
        @Option(help: "Continue from this cursor.") var cursor: String?
        @Flag(help: "Follow cursors to the end instead of printing one page.") var all = false

        func run() async throws {
            try await runCLI {
                var scopes: [ResultScope] = []
                if let student { scopes.append(.student(student)) }
                if let outcome { scopes.append(.outcome(outcome)) }
                if let context = try context.context { scopes.append(.context(context)) }
                switch (assetType, assetID) {
                case let (type?, id?): scopes.append(.asset(AssetRef(type: type, id: id)))
                case (nil, nil): break
                default: throw CLIError.usage("--asset-type and --asset-id go together")
                }
                switch (from, to) {
                case let (from?, to?): scopes.append(.assessedBetween(from: try parseTime(from, "--from"), to: try parseTime(to, "--to")))
                case (nil, nil): break
                default: throw CLIError.usage("--from and --to go together")
                }
                guard scopes.count == 1, let scope = scopes.first else {
                    throw CLIError.usage("give exactly one of --student, --outcome, a context, an asset, or --from with --to")
                }
                guard (1...1000).contains(limit) else { throw CLIError.usage("--limit must be 1 to 1000") }
                let start = try cursor.map { text in
                    guard let parsed = ResultCursor(token: text) else { throw CLIError.usage("'\(text)' is not a results cursor") }
                    return parsed
                }
                let session = try await client.session()
                let limit = self.limit
                var after = start
                // Page by page, each page a step of its own: a failover repeats one page, not the listing.
                while true {
                    let from = after
                    let page = try await session.run { (c) throws(LearnStoreError) in try await c.outcomes.resultsPage(scope, after: from, limit: limit) }
                    for result in page.results { printJSON(OutcomeEntity.result(result).json) }
                    guard let next = page.next else { break }
                    guard all else {
                        FileHandle.standardError.write(Data("next cursor: \(next.token)\n".utf8))
                        break
                    }
                    after = next
                }
                await session.shutdown()
            }
        }
    }

    struct Rollup: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mastery rollups: a student's (for one outcome or all of a context's), or the context aggregate.",
            discussion: """
                --student U [--outcome ID] with a context prints the student's rollups as JSON Lines (one outcome: \
                one object, or null when there is none); --aggregate with a context prints each outcome's mean and \
                median over the students. The scale is the context's proficiency unless --scale criterion or \
                --proficiency-context-type/-id say otherwise (docs/ROLLUPS.md).
                """)
        @OptionGroup var client: ClientOptions
        @OptionGroup var context: ContextOptions
        @Option(help: "A student's user_uuid.") var student: String?
        @Option(help: "One outcome id (with --student).") var outcome: String?
        @Flag(help: "The context aggregate over its students.") var aggregate = false
        @Option(help: "proficiency (default) or criterion.") var scale: String = "proficiency"
        @Option(name: .customLong("proficiency-context-type"), help: "Use this context's proficiency (e.g. the course's account).") var proficiencyType: String?
        @Option(name: .customLong("proficiency-context-id")) var proficiencyID: String?
        @Flag(name: .customLong("legacy-decaying-average"), help: "Canvas's outcomes_new_decaying_average_calculation flag off.") var legacy = false
        @Option(help: "Override every outcome's calculation_method (a course or account method).") var method: String?
        @Option(name: .customLong("calculation-int"), help: "The override's calculation_int.") var calculationInt: Int?

        func run() async throws {
            try await runCLI {
                let context = try self.context.required()
                var options = RollupOptions(newDecayingAverage: !legacy)
                switch (scale, proficiencyType, proficiencyID) {
                case ("criterion", nil, nil): options.scale = .outcomeCriterion
                case ("proficiency", nil, nil): options.scale = .proficiency(of: nil)
                case let ("proficiency", type?, id?): options.scale = .proficiency(of: ContextRef(type: type, id: id))
                default: throw CLIError.usage("--scale is proficiency or criterion; a proficiency context needs both its type and id")
                }
                if let method { options.calculationOverride = .init(method: CalculationMethod(method), calculationInt: calculationInt) }
                else if calculationInt != nil { throw CLIError.usage("--calculation-int needs --method") }
                guard (student != nil) != aggregate, outcome == nil || student != nil else {
                    throw CLIError.usage("give --student (optionally with --outcome) or --aggregate")
                }
                let session = try await client.session()
                let rollupOptions = options
                if let student, let outcome {
                    let rollup = try await session.run { (c) throws(LearnStoreError) in
                        try await c.outcomes.studentRollup(userUUID: student, outcomeID: outcome, context: context, options: rollupOptions)
                    }
                    printJSON(rollup?.json ?? .null)
                } else if let student {
                    let rollups = try await session.run { (c) throws(LearnStoreError) in
                        try await c.outcomes.studentRollups(userUUID: student, context: context, options: rollupOptions)
                    }
                    for rollup in rollups { printJSON(rollup.json) }
                } else {
                    let aggregates = try await session.run { (c) throws(LearnStoreError) in
                        try await c.outcomes.contextAggregates(context: context, options: rollupOptions)
                    }
                    for aggregate in aggregates { printJSON(aggregate.json) }
                }
                await session.shutdown()
            }
        }
    }

    struct Proficiency: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the proficiency scale in force for a context (null when none).")
        @OptionGroup var client: ClientOptions
        @OptionGroup var context: ContextOptions

        func run() async throws {
            try await runCLI {
                let context = try self.context.required()
                let session = try await client.session()
                let proficiency = try await session.run { (c) throws(LearnStoreError) in try await c.outcomes.proficiency(inForce: context) }
                printJSON(proficiency.map { OutcomeEntity.proficiency($0).json } ?? .null)
                await session.shutdown()
            }
        }
    }
}

/// Reads a file (or stdin) line by line in 1 MiB chunks, so a large export is never held whole.
struct EventLineReader {
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var position = 0
    private var atEnd = false
    private(set) var lineNumber = 0
    private(set) var bytesRead = 0
    /// The file's size, when it is a regular file (nil for stdin or a pipe).
    let totalBytes: Int?

    init(path: String) throws {
        if path == "-" {
            handle = FileHandle.standardInput
            totalBytes = nil
        } else {
            guard let opened = FileHandle(forReadingAtPath: path) else { throw CLIError.usage("cannot read \(path)") }
            handle = opened
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            totalBytes = (attributes?[.type] as? FileAttributeType) == .typeRegular ? (attributes?[.size] as? Int) : nil
        }
    }

    /// The next non-blank line (without its line break) and its 1-based number; nil at the end.
    mutating func next() throws -> (Int, [UInt8])? {
        while true {
            if let newline = buffer[position...].firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(buffer[position..<newline])
                bytesRead += newline + 1 - position
                position = newline + 1
                lineNumber += 1
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
                return (lineNumber, line)
            }
            if atEnd {
                guard position < buffer.count else { return nil }
                var line = Array(buffer[position...])
                bytesRead += buffer.count - position
                position = buffer.count
                lineNumber += 1
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return nil }
                return (lineNumber, line)
            }
            buffer.removeFirst(position)
            position = 0
            let chunk = try handle.read(upToCount: 1 << 20) ?? Data()
            if chunk.isEmpty { atEnd = true } else { buffer.append(contentsOf: chunk) }
        }
    }
}

/// Counts of an ingest run and the first rejections, with their line numbers.
struct IngestSummary {
    var events = 0
    var applied = 0
    var duplicates = 0
    var stale = 0
    var rejected = 0
    var rejectedByReason: [String: Int] = [:]
    var firstRejections: [(Int, EventRejection)] = []
    var sequence: UInt64 = 0

    mutating func add(_ report: OutcomeIngestReport, lines: [Int]) {
        events += report.outcomes.count
        sequence = max(sequence, report.sequence)
        for (index, outcome) in report.outcomes.enumerated() {
            switch outcome {
            case .applied: applied += 1
            case .duplicate: duplicates += 1
            case .stale: stale += 1
            case .rejected(let rejection):
                rejected += 1
                rejectedByReason[rejection.reason.name, default: 0] += 1
                if firstRejections.count < 20 { firstRejections.append((lines[index], rejection)) }
            }
        }
    }

    var json: JSONValue {
        func number(_ value: Int) -> JSONValue { .number(String(value)) }
        return .object([
            ("events", number(events)), ("applied", number(applied)), ("duplicates", number(duplicates)),
            ("stale", number(stale)), ("rejected", number(rejected)),
            ("rejected_by_reason", .object(rejectedByReason.sorted { $0.key < $1.key }.map { ($0.key, number($0.value)) })),
            ("sequence", .number(String(sequence))),
        ])
    }
}

/// Progress on stderr: a redrawn bar on a terminal, else a line at each tenth (by bytes, or every 100
/// batches' worth of events when the size is unknown).
struct IngestProgress {
    let totalBytes: Int?
    let isTerminal: Bool
    private var lastTenth = 0
    private var lastDraw = ContinuousClock.now
    private var lastLineEvents = 0

    init(totalBytes: Int?, isTerminal: Bool) {
        self.totalBytes = totalBytes
        self.isTerminal = isTerminal
    }

    mutating func update(bytes: Int, summary: IngestSummary) {
        let fraction = totalBytes.map { $0 > 0 ? min(1, Double(bytes) / Double($0)) : 1 }
        if isTerminal {
            let now = ContinuousClock.now
            guard now - lastDraw >= .milliseconds(100) else { return }
            lastDraw = now
            write("\r" + Self.bar(fraction) + " " + Self.counts(summary) + "\u{1B}[K")
        } else if let fraction {
            let tenth = Int(fraction * 10)
            guard tenth > lastTenth else { return }
            lastTenth = tenth
            write("\(tenth * 10)% " + Self.counts(summary) + "\n")
        } else if summary.events - lastLineEvents >= 50_000 {
            lastLineEvents = summary.events
            write(Self.counts(summary) + "\n")
        }
    }

    func finish(summary: IngestSummary) {
        if isTerminal {
            write("\r" + Self.bar(1) + " " + Self.counts(summary) + "\u{1B}[K\n")
        } else {
            write("done: " + Self.counts(summary) + "\n")
        }
    }

    static func bar(_ fraction: Double?) -> String {
        guard let fraction else { return "[ingesting]" }
        let width = 30
        let filled = Int((fraction * Double(width)).rounded(.down))
        let percent = Int((fraction * 100).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] \(percent)%"
    }

    static func counts(_ s: IngestSummary) -> String {
        "\(s.events) events: \(s.applied) applied, \(s.duplicates) duplicates, \(s.stale) stale, \(s.rejected) rejected"
    }

    private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
