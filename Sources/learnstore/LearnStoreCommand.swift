import ArgumentParser
import Foundation

@main
struct LearnStoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "learnstore",
        abstract: "LearnStore: an in-memory store for learning records and Canvas outcome data.",
        discussion: """
            Every option can also come from the environment as LEARNSTORE_<NAME> (e.g. LEARNSTORE_PORT) \
            or from a config file (--config FILE, lines of 'name = value').
            Exit codes: 0 success, 1 error, 2 usage, 3 cannot connect, 4 authentication refused, \
            5 some events were rejected (outcomes ingest; the others were ingested).
            """,
        version: "0.1.0",
        subcommands: [ServeCommand.self, TokenCommand.self, PingCommand.self, InfoCommand.self, RecordsCommand.self,
                      OutcomesCommand.self, BenchCommand.self, CrashTestCommand.self]
    )
}

/// Runs a CLI body, printing errors to stderr with the documented exit code.
func runCLI(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as CLIError {
        FileHandle.standardError.write(Data((error.description + "\n").utf8))
        throw ExitCode(error.exitCode)
    } catch let error as LearnStoreModel.LearnStoreError {
        let cli = CLIError.server(error)
        FileHandle.standardError.write(Data((cli.description + "\n").utf8))
        throw ExitCode(cli.exitCode)
    }
}

import LearnStoreModel
