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
            5 some events were rejected (outcomes ingest; the others were ingested), 6 damage found \
            (wal check, snapshot verify).
            Operator tools work on a stopped server's data directory (--data-dir, default snapshots); \
            snapshot create, restore and import take --online to go through a running server instead \
            (admin token). See docs/OPERATIONS.md.
            """,
        version: "0.1.0",
        subcommands: [ServeCommand.self, TokenCommand.self, PingCommand.self, InfoCommand.self, RecordsCommand.self,
                      OutcomesCommand.self, SnapshotCommand.self, WALCommand.self, RestoreCommand.self, ExportCommand.self,
                      ImportCommand.self, FeedCommand.self, ClusterCommand.self, BenchCommand.self, CrashTestCommand.self, FailoverTestCommand.self, MoveTestCommand.self, MachineLossTestCommand.self, SimulateCommand.self, SimulateMovesCommand.self,
                      SimulateReplicationCommand.self, SimulateClusterCommand.self]
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
    } catch let exit as ExitCode {
        throw exit
    } catch {
        // Storage and format errors of the operator tools (a damaged file names its byte offset).
        FileHandle.standardError.write(Data((CLIError.failed("\(error)").description + "\n").utf8))
        throw ExitCode(1)
    }
}

import LearnStoreModel
