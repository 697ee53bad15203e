import ArgumentParser
import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreProtocol

/// `learnstore feed`: a tenant's committed changes as JSON Lines.
struct FeedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "feed",
        abstract: "Print the token's tenant's committed changes as JSON Lines, following new ones (docs/PROTOCOL.md, appendix D).",
        discussion: """
            Each line is one change: {"sequence", "timestamp", "parts": [{"kind": "create"|"patch"|"delete"|"restore"|"import"|"put", \
            "records": […]}, {"kind": "purge", "ids": […]}, {"kind": "outcomes", "rows": […]}, {"kind": "tenant_restore"}]}. \
            It reconnects and resumes by itself (for up to five minutes of failed attempts); with --seeds it tries the other nodes in turn, so it follows a failover. To resume later, pass the last sequence printed to --from. \
            If the server no longer keeps the changes after it, the command stops with exit code 7 and says \
            after which sequence a subscription can start: export the tenant at a sequence \
            ('learnstore export --tenant T --sequence S') and subscribe --from that sequence.
            """)
    @OptionGroup var client: ClientOptions
    @Option(help: "Start after this tenant sequence (0: from the first change kept).") var from: UInt64?
    @Flag(help: "Start with the next change committed (instead of --from).") var now = false
    @Option(help: "Stop after this many changes (default: follow until interrupted).") var count: Int?
    @Option(help: "Changes that may wait unread in this process (default 1024).") var credit: UInt32 = 1024

    func run() async throws {
        try await runCLI {
            guard (from != nil) != now else { throw CLIError.usage("give --from SEQUENCE or --now") }
            if let count, count < 1 { throw CLIError.usage("--count must be at least 1") }
            guard credit >= 1 else { throw CLIError.usage("--credit must be at least 1") }
            let connection = try await client.connect()
            defer { Task { await connection.shutdown() } }
            // With --seeds: the other nodes, for when the first one is lost (replicas serve the feed too).
            let others = try client.seedAddresses()
            var printed = 0
            let start: FeedStart = from.map { .after($0) } ?? .now
            do {
                for try await change in connection.feed.subscribe(from: start, credit: credit, alsoAt: others) {
                    print(change.json.serialized)
                    fflush(nil)
                    printed += 1
                    if let count, printed >= count { break }
                }
            } catch let truncated as FeedTruncated {
                throw CLIError.truncated("\(truncated.error.message) (last sequence printed or given: \(truncated.position))")
            } catch let error as LearnStoreError {
                throw CLIError.server(error)
            }
        }
    }
}
