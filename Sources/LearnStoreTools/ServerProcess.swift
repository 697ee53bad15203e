import Foundation
import LearnStoreClient
import LearnStoreModel
#if canImport(Glibc)
import Glibc
#endif

/// A real `learnstore serve` child process on an ephemeral port, for crash tests and benchmarks.
public final class ServerProcess: @unchecked Sendable {
    public let process: ChildProcess
    public let port: Int
    public let logPath: String

    /// Starts the binary with `arguments` (plus `--port 0`) and waits until it listens.
    public static func start(binary: String, arguments: [String], logPath: String, timeout: Double = 120) async throws -> ServerProcess {
        guard FileManager.default.createFile(atPath: logPath, contents: nil) else {
            throw LearnStoreError(.internalError, "cannot create \(logPath)")
        }
        let portFile = logPath + ".port"
        try? FileManager.default.removeItem(atPath: portFile)
        let process = try ChildProcess.spawn(binary, ["serve", "--port", "0", "--port-file", portFile] + arguments,
                                             standardOutput: logPath, standardError: logPath)
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8),
                let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                return ServerProcess(process: process, port: port, logPath: logPath)
            }
            if !process.isRunning {
                throw LearnStoreError(.connectionFailed, "the server exited with status \(process.terminationStatus): \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
            }
            await pause(milliseconds: 20)
        }
        process.signal(SIGTERM)
        throw LearnStoreError(.timeout, "the server did not start listening within \(timeout) s")
    }

    init(process: ChildProcess, port: Int, logPath: String) {
        self.process = process
        self.port = port
        self.logPath = logPath
    }

    public var pid: Int32 { process.pid }

    /// The same process at the client port its port file names now: a node that starts again in place
    /// (an old primary becoming a replica) listens on a new one.
    public func atCurrentPort() -> ServerProcess {
        guard let text = try? String(contentsOfFile: logPath + ".port", encoding: .utf8),
              let current = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), current != port else { return self }
        return ServerProcess(process: process, port: current, logPath: logPath)
    }

    /// Sends `signal` and waits for the process to exit.
    public func stop(signal: Int32) async {
        await stopProcess(process, signal: signal)
    }

    public var exitStatus: Int32 { process.terminationStatus }

    /// Polls until the server answers data requests (recovery finished), or fails after `timeout`.
    /// Each attempt reads the port file again: a node that starts again in place (a fenced primary
    /// becoming a replica) listens on a new client port, perhaps after this object was made.
    public func waitUntilReady(token: String, timeout: Double = 120) async throws -> LearnStoreClient {
        let deadline = Date(timeIntervalSinceNow: timeout)
        var lastError: (any Error)?
        while Date() < deadline {
            do {
                let client = try await LearnStoreClient(ClientConfiguration(host: "127.0.0.1", port: atCurrentPort().port, token: token, connections: 4))
                do {
                    _ = try await client.performance.learningRecords.page(ListQuery(limit: 1))
                    return client
                } catch {
                    await client.shutdown()
                    throw error
                }
            } catch {
                lastError = error
                if !process.isRunning { throw LearnStoreError(.connectionFailed, "the server exited: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")") }
            }
            await pause(milliseconds: 20)
        }
        let tail = ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").suffix(15).joined(separator: "\n")
        let reason = (lastError as? LearnStoreError)?.message ?? lastError.map { "\($0)" } ?? "no answer"
        throw LearnStoreError(.timeout, "the server (\(logPath)) did not become ready within \(Int(timeout)) s: \(reason)\n\(tail)")
    }
}

/// Sends `signal` to a child process and waits until it has exited.
func stopProcess(_ process: ChildProcess, signal: Int32) async {
    process.signal(signal)
    await process.exited()
}

/// The interval between two polls of a condition.
func pause(milliseconds: Int) async {
    try? await Task.sleep(for: .milliseconds(milliseconds))
}
