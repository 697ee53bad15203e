import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreTestSupport
import LearnStoreTokens
import LearnStoreTools
import Testing

/// The real `learnstore serve` on a small tmpfs that fills up: writes that cannot be made durable are
/// refused with a typed error, acknowledged data stays readable, writes resume once space is freed,
/// and a kill -9 afterwards loses nothing that was acknowledged. Mounting needs root; elsewhere the
/// test is skipped with that reason (the in-process fault-injecting file system of
/// StorageFailureTests covers the same paths without a mount).
@Suite struct FullDiskTests {
    /// Root, the binary, and a tmpfs mount that works here (a container may forbid it even to root).
    static let canMount: Bool = {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/bin/mount"),
              FileManager.default.isExecutableFile(atPath: CrashTests.binary) else { return false }
        let probe = NSTemporaryDirectory() + "learnstore-mount-probe-" + UUID().uuidString
        guard (try? FileManager.default.createDirectory(atPath: probe, withIntermediateDirectories: true)) != nil else { return false }
        defer { try? FileManager.default.removeItem(atPath: probe) }
        guard (try? run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe])) == 0 else { return false }
        _ = try? run("/bin/umount", [probe])
        return true
    }()

    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) throws -> Int32 {
        try ChildProcess.spawn(tool, arguments, standardOutput: nil, standardError: nil).waitUntilExit()
    }

    /// Writes zeros to `path` until the file system refuses more; returns the bytes written.
    static func fill(_ path: String) -> Int {
        guard let file = FileHandle(forWritingAtPath: path) ?? {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            return FileHandle(forWritingAtPath: path)
        }() else { return 0 }
        defer { try? file.close() }
        let chunk = Data(count: 64 * 1024)
        var written = 0
        while (try? file.write(contentsOf: chunk)) != nil { written += chunk.count }
        try? file.synchronize()
        return written
    }

    /// Both servers' logs, for a failure message.
    static func log(_ root: String) -> String {
        ["server.log", "server2.log"].map { (try? String(contentsOfFile: root + "/" + $0, encoding: .utf8)) ?? "" }.joined(separator: "\n")
    }

    static func body(_ n: Int) -> RecordBody {
        RecordBody(personID: UUID16(high: 0x5f0c_1e2a_7b3d_4c9e, low: UInt64(n % 50 + 1)),
                   title: "Disk-full record \(n) " + String(repeating: "x", count: 400), provider: "AWS", score: 80)
    }

    @Test(.enabled(if: canMount, "needs root and a tmpfs mount (not available here), and the learnstore binary (swift build)"))
    func aFullDiskRefusesWritesKeepsAcknowledgedDataAndRecovers() async throws {
        let root = NSTemporaryDirectory() + "learnstore-full-disk-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let mountPoint = root + "/disk"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        try #require(try Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mountPoint]) == 0)
        defer { _ = try? Self.run("/bin/umount", ["-l", mountPoint]) }

        let secret = (0..<4).map { _ in UUID().uuidString }.joined()
        try secret.write(toFile: root + "/secret", atomically: true, encoding: .utf8)
        let token = try await TokenMinter(secret: secret).mint(
            tenantID: "disk", person: UUID16.random(), scopes: [.recordsRead, .recordsWrite],
            issuedAt: Timestamp(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)), lifetimeSeconds: 3600)
        let arguments = ["--data-dir", mountPoint + "/data", "--jwt-secret-file", root + "/secret", "--metrics-port", "0",
                         "--wal-segment-bytes", "1048576", "--fsync", "always", "--snapshot-interval", "0", "--snapshot-wal-bytes", "0",
                         "--log-level", "warning"]
        var server = try await ServerProcess.start(binary: CrashTests.binary, arguments: arguments, logPath: root + "/server.log")
        var client = try await server.waitUntilReady(token: token)
        let records = client.performance.learningRecords

        // Fill what the WAL has not taken yet; the open segment (preallocated) still has room.
        #expect(Self.fill(mountPoint + "/filler") > 0)
        var acknowledged: [LearningRecord] = []
        var refusal: LearnStoreError?
        for n in 0..<20_000 {
            do {
                acknowledged.append(try await records.create(Self.body(n)).value)
            } catch {
                refusal = error
                break
            }
        }
        let refused = try #require(refusal, "the disk never filled")
        #expect(refused.code == .storageUnavailable, "\(refused)")
        #expect(!acknowledged.isEmpty)
        // Reads of acknowledged data go on while writes are refused.
        for record in [acknowledged.first!, acknowledged.last!] {
            do {
                #expect(try await records.get(record.id) == record)
            } catch {
                Issue.record("a read of acknowledged record \(record.id) while writes are refused: \(error)\n\(Self.log(root))")
            }
        }

        // Space comes back: writes resume (the log retries on its own; poll with a deadline).
        try FileManager.default.removeItem(atPath: mountPoint + "/filler")
        var resumed: LearningRecord?
        let resumedInTime = await eventually(within: 30) { () async -> Bool in
            do {
                resumed = try await records.create(Self.body(-1)).value
                return true
            } catch {
                #expect((error as? LearnStoreError)?.code == .storageUnavailable, "\(error)")
                return false
            }
        }
        #expect(resumedInTime)
        acknowledged.append(try #require(resumed, "writes did not resume after space was freed"))

        // kill -9, restart: exactly the acknowledged records, nothing that was refused.
        await client.shutdown()
        await server.stop(signal: SIGKILL)
        server = try await ServerProcess.start(binary: CrashTests.binary, arguments: arguments, logPath: root + "/server2.log")
        do {
            client = try await server.waitUntilReady(token: token)
        } catch {
            Issue.record("the restarted server did not serve: \(error)\n\(Self.log(root))")
            await server.stop(signal: SIGKILL)
            return
        }
        var recovered: [LearningRecord] = []
        do {
            for try await record in client.performance.learningRecords.list(ListQuery(order: .ascending, limit: 1000)) {
                recovered.append(record)
            }
        } catch {
            Issue.record("the list after the restart: \(error)\n\(Self.log(root))")
        }
        #expect(recovered.map(\.id) == acknowledged.map(\.id))
        #expect(recovered == acknowledged)
        await client.shutdown()
        await server.stop(signal: SIGTERM)
    }
}
