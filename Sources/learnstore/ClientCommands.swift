import ArgumentParser
import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreServer

/// Connection options shared by client commands (also LEARNSTORE_HOST, LEARNSTORE_PORT, LEARNSTORE_TOKEN).
struct ClientOptions: ParsableArguments {
    @Option(help: "Server host (default 127.0.0.1).") var host: String?
    @Option(help: "Server port (default 7878).") var port: Int?
    @Option(help: "JWT to authenticate with.") var token: String?
    @Option(help: "Client addresses (host:port,...) of any nodes of a cluster: the command goes to the primary they name (TOPOLOGY) instead of --host/--port.") var seeds: String?
    @Option(name: .customLong("config"), help: "Config file.") var config: String?

    func connect() async throws -> LearnStoreClient {
        try await Self.connect(host: host, port: port, token: token, config: config, seeds: seeds)
    }

    static func connect(host: String?, port: Int?, token: String?, config: String?, seeds: String? = nil) async throws -> LearnStoreClient {
        let settings = try Settings(configFile: config)
        var host = settings.string("host", host) ?? "127.0.0.1"
        var port = try settings.int("port", port, default: 7878)
        guard let token = settings.string("token", token) else {
            throw CLIError.usage("no token: pass --token or set LEARNSTORE_TOKEN (mint one with 'learnstore token mint')")
        }
        if let seeds = settings.string("seeds", seeds) {
            (host, port) = try await Self.primary(seeds: seeds, token: token)
        }
        var configuration = ClientConfiguration(host: host, port: port, token: token, connections: 1)
        configuration.reconnectAttempts = 0
        return try await LearnStoreClient(configuration)
    }

    /// `host:port[,host:port...]`, at most 64.
    static func seedList(_ seeds: String) throws -> [String] {
        let list = seeds.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !list.isEmpty, list.count <= 64, list.allSatisfy(ClusterAddress.isValid) else { throw CLIError.usage("--seeds takes host:port[,host:port...]") }
        return list
    }

    /// The primary's client address, as the first of `seeds` that answers TOPOLOGY names it.
    static func primary(seeds: String, token: String) async throws -> (String, Int) {
        let list = try seedList(seeds)
        let cluster = ClusterClient(seeds: list, configuration: ClientConfiguration(token: token, connections: 1))
        defer { Task { await cluster.shutdown() } }
        let primary = try await cluster.primaryHostPort()
        return (primary.host, primary.port)
    }
}

func printJSON(_ value: JSONValue) {
    print(value.serialized)
}

struct PingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ping", abstract: "Check that the server answers.")
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await runCLI {
            let connection = try await client.connect()
            let rtt = try await connection.ping()
            print("PONG \(rtt)")
            await connection.shutdown()
        }
    }
}

struct InfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Print the server's INFO document (JSON).")
    @OptionGroup var client: ClientOptions

    func run() async throws {
        try await runCLI {
            let connection = try await client.connect()
            printJSON(try await connection.info())
            await connection.shutdown()
        }
    }
}

/// Reads JSON input: a file path, or `-` / nothing for standard input.
func readJSONInput(_ path: String?) throws -> [JSONValue] {
    let data: Data
    if let path, path != "-" {
        guard let contents = FileManager.default.contents(atPath: path) else { throw CLIError.usage("cannot read \(path)") }
        data = contents
    } else {
        data = FileHandle.standardInput.readDataToEndOfFile()
    }
    let bytes = Array(data)
    // One document (object or array), or JSON Lines.
    if let document = try? JSONValue.parse(bytes) {
        if case .array(let elements) = document { return elements }
        return [document]
    }
    var values: [JSONValue] = []
    for (number, line) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
        let trimmed = Array(line).filter { $0 != UInt8(ascii: "\r") }
        if trimmed.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
        do { values.append(try JSONValue.parse(trimmed)) } catch {
            throw CLIError.usage("line \(number + 1): \(error)")
        }
    }
    return values
}

func parseRecordID(_ text: String) throws -> RecordID {
    guard let id = RecordID(text) else { throw CLIError.usage("'\(text)' is not a record id (lr_ + 26 Crockford base32 characters)") }
    return id
}

func parseUUID(_ text: String, _ name: String) throws -> UUID16 {
    guard let uuid = UUID16(text) else { throw CLIError.usage("\(name) must be a UUID, got '\(text)'") }
    return uuid
}

func parseTime(_ text: String, _ name: String) throws -> Timestamp {
    do {
        return try Timestamp(validatingISO8601: text)
    } catch {
        throw CLIError.usage("\(name) \(error.reason), got '\(text)'")
    }
}

struct RecordsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "records", abstract: "Read and write LearningRecords (JSON in, JSON out).",
        subcommands: [Get.self, List.self, Create.self, Patch.self, Delete.self, Restore.self, PurgePerson.self, Stats.self])

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one record.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The record id (lr_...).") var id: String

        func run() async throws {
            try await runCLI {
                let id = try parseRecordID(id)
                let session = try await client.session()
                printJSON(try await session.run { (c) throws(LearnStoreError) in try await c.performance.learningRecords.get(id) }.json)
                await session.shutdown()
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List records as JSON Lines, newest first unless --ascending.")
        @OptionGroup var client: ClientOptions
        @Option(name: .customLong("person-id")) var personID: String?
        @Option(name: .customLong("certification-ref")) var certificationRef: String?
        @Option(name: .customLong("cohort-id")) var cohortID: String?
        @Option(name: .customLong("assessment-id")) var assessmentID: String?
        @Option var provider: String?
        @Option(help: "true or false.") var passed: Bool?
        @Option(name: .customLong("completed-from")) var completedFrom: String?
        @Option(name: .customLong("completed-to")) var completedTo: String?
        @Option(name: .customLong("expires-from")) var expiresFrom: String?
        @Option(name: .customLong("expires-before")) var expiresBefore: String?
        @Option(name: .customLong("updated-since")) var updatedSince: String?
        @Flag(name: .customLong("include-deleted")) var includeDeleted = false
        @Flag var ascending = false
        @Option(help: "Records per page (1-1000, default 50).") var limit: Int = 50
        @Option(help: "Continue from this cursor.") var cursor: String?
        @Flag(help: "Follow cursors to the end instead of printing one page.") var all = false

        func run() async throws {
            try await runCLI {
                var query = ListQuery(limit: limit)
                query.personID = try personID.map { try parseUUID($0, "--person-id") }
                query.certificationRef = certificationRef
                query.linkedCohortID = try cohortID.map { try parseUUID($0, "--cohort-id") }
                query.linkedAssessmentID = try assessmentID.map { try parseUUID($0, "--assessment-id") }
                query.provider = provider
                query.passed = passed
                if completedFrom != nil || completedTo != nil {
                    query.completedAt = TimeRange(from: try completedFrom.map { try parseTime($0, "--completed-from") },
                                                  to: try completedTo.map { try parseTime($0, "--completed-to") })
                }
                if expiresFrom != nil || expiresBefore != nil {
                    query.expiresAt = TimeRange(from: try expiresFrom.map { try parseTime($0, "--expires-from") },
                                                to: try expiresBefore.map { try parseTime($0, "--expires-before") })
                }
                query.updatedSince = try updatedSince.map { try parseTime($0, "--updated-since") }
                query.includeDeleted = includeDeleted
                query.order = ascending ? .ascending : .descending
                if let cursor { query.cursor = try ListCursor(text: cursor) }
                let session = try await client.session()
                // Page by page, each page a step of its own: a failover repeats one page, not the listing.
                while true {
                    let asked = query
                    let page = try await session.run { (c) throws(LearnStoreError) in try await c.performance.learningRecords.page(asked) }
                    for record in page.records { printJSON(record.json) }
                    guard let next = page.nextCursor else { break }
                    guard all else {
                        FileHandle.standardError.write(Data("next cursor: \(next.text)\n".utf8))
                        break
                    }
                    query.cursor = next
                }
                await session.shutdown()
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create records from JSON (an object, an array, or JSON Lines) in FILE or on stdin.",
            discussion: """
                More than one record is sent as batches of up to 1000 (each all-or-nothing). If a batch fails, \
                the error names the bad record by its index in the whole input (from 0), and the batches \
                before it stay created.
                """)
        @OptionGroup var client: ClientOptions
        @Argument(help: "JSON file, or - for stdin.") var file: String?
        @Option(name: .customLong("idempotency-key"), help: "Key for a safe retry: run the same command again with the same key and input, and nothing is created twice. With more than 1000 records, batch N (from 0) uses KEY#N. With --seeds and no key, each batch gets a random one, so a batch sent again after a failover is created once.") var idempotencyKey: String?

        func run() async throws {
            try await runCLI {
                let bodies = try readJSONInput(file).map { try RecordBody(json: $0) }
                guard !bodies.isEmpty else { throw CLIError.usage("no records in the input") }
                let keys = try BatchIdempotencyKeys(given: idempotencyKey, records: bodies.count)
                let session = try await client.session()
                // With --seeds a batch may be sent again after a failover: it needs a key to be applied once.
                let generated = session.followsFailovers ? BatchIdempotencyKeys.generated() : nil
                if bodies.count == 1 {
                    let key = keys.key(batchStart: 0) ?? generated?.key(batchStart: 0)
                    let body = bodies[0]
                    printJSON(try await session.run { (c) throws(LearnStoreError) in
                        try await c.performance.learningRecords.create(body, idempotencyKey: key)
                    }.value.json)
                } else {
                    var start = 0
                    while start < bodies.count {
                        let end = min(bodies.count, start + 1000)
                        let batch = Array(bodies[start..<end])
                        let key = keys.key(batchStart: start) ?? generated?.key(batchStart: start)
                        let result: WriteResult<[LearningRecord]>
                        do throws(LearnStoreError) {
                            result = try await session.run { (c) throws(LearnStoreError) in
                                try await c.performance.learningRecords.createBatch(batch, idempotencyKey: key)
                            }
                        } catch {
                            throw BatchErrorPosition.inWholeInput(error, label: "record", batchStart: start)
                        }
                        for record in result.value { printJSON(record.json) }
                        start = end
                    }
                }
                await session.shutdown()
            }
        }
    }

    struct Patch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Patch a record with a JSON object (null clears a field).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The record id.") var id: String
        @Argument(help: "The JSON patch, or - (default) for stdin.") var json: String?
        @Option(name: .customLong("expected-updated-at"), help: "Fail with CONFLICT unless the record's updated_at is this.") var expected: String?

        func run() async throws {
            try await runCLI {
                let id = try parseRecordID(id)
                let value: JSONValue
                if let json, json != "-" {
                    do { value = try JSONValue.parse(json) } catch { throw CLIError.usage("the patch is not JSON: \(error)") }
                } else {
                    guard let first = try readJSONInput(nil).first else { throw CLIError.usage("no patch on stdin") }
                    value = first
                }
                let body = try RecordBody(json: value)
                let expectedTime = try expected.map { try parseTime($0, "--expected-updated-at") }
                let session = try await client.session()
                printJSON(try await session.run { (c) throws(LearnStoreError) in
                    try await c.performance.learningRecords.patch(id, body, expectedUpdatedAt: expectedTime)
                }.value.json)
                await session.shutdown()
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Soft-delete a record.")
        @OptionGroup var client: ClientOptions
        @Argument var id: String

        func run() async throws {
            try await runCLI {
                let id = try parseRecordID(id)
                let session = try await client.session()
                printJSON(try await session.run { (c) throws(LearnStoreError) in try await c.performance.learningRecords.delete(id) }.value.json)
                await session.shutdown()
            }
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Undo a soft delete.")
        @OptionGroup var client: ClientOptions
        @Argument var id: String

        func run() async throws {
            try await runCLI {
                let id = try parseRecordID(id)
                let session = try await client.session()
                printJSON(try await session.run { (c) throws(LearnStoreError) in try await c.performance.learningRecords.restore(id) }.value.json)
                await session.shutdown()
            }
        }
    }

    struct PurgePerson: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "purge-person", abstract: "Hard-delete every record of a person (admin).")
        @OptionGroup var client: ClientOptions
        @Argument(help: "The person UUID.") var person: String
        @Flag(name: .customLong("dry-run"), help: "Only count.") var dryRun = false

        func run() async throws {
            try await runCLI {
                let person = try parseUUID(person, "person")
                let session = try await client.session()
                let dryRun = self.dryRun
                let result = try await session.run { (c) throws(LearnStoreError) in try await c.performance.learningRecords.purgePerson(person, dryRun: dryRun) }
                printJSON(.object([("person_id", .string(person.description)), ("dry_run", .bool(dryRun)),
                                   ("records", .number(String(result.value))), ("sequence", .number(String(result.sequence)))]))
                await session.shutdown()
            }
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The tenant's record counts and index sizes.")
        @OptionGroup var client: ClientOptions

        func run() async throws {
            try await runCLI {
                let session = try await client.session()
                printJSON(try await session.run { (c) throws(LearnStoreError) in try await c.performance.learningRecords.stats() })
                await session.shutdown()
            }
        }
    }
}
