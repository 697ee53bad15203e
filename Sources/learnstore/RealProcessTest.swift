import ArgumentParser
import Foundation
import LearnStoreTools

/// What the real-process test commands (crash-test, failover-test, move-test, machine-loss-test)
/// share: the binary under test, the scratch directory, and how a run is reported.
enum RealProcessTest {
    /// `binary`, or this executable.
    static func executable(_ binary: String?) -> String {
        binary ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
    }

    static func scratch(_ workDir: String?, prefix: String) throws -> ScratchDirectory {
        do {
            return try ScratchDirectory(path: workDir, prefix: prefix)
        } catch let refused as ScratchDirectory.Refused {
            throw CLIError.usage("--work-dir: \(refused.description)")
        }
    }

    /// Runs the test, each progress report over the last on standard error, then prints the report and
    /// its first failures; exits 1 if `failed` says so.
    static func report<Report: CustomStringConvertible & Sendable>(
        failures: (Report) -> [String], failed: (Report) -> Bool, _ run: (@escaping @Sendable (Report) -> Void) async throws -> Report
    ) async throws {
        let report = try await run { report in FileHandle.standardError.write(Data("\r\(report)".utf8)) }
        FileHandle.standardError.write(Data("\n".utf8))
        print(report)
        for failure in failures(report).prefix(20) { print("  \(failure)") }
        if failed(report) { throw ExitCode(1) }
    }

    /// Files a run wrote in `scratch` beside the tester's own entries: logs and port files of nodes
    /// whose names pass `isNode`, and etcd's.
    static func logs(in scratch: ScratchDirectory, isNode: (String) -> Bool) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: scratch.path))?.filter {
            (isNode($0) && ($0.hasSuffix(".log") || $0.hasSuffix(".port"))) || $0.hasPrefix("etcd-")
        } ?? []
    }
}
