import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreProtocol
import LearnStoreServer
import LearnStoreTestSupport
import LearnStoreTools
import Testing

/// Memory a client can make the server hold is bounded by configuration (docs/OPERATIONS.md,
/// "Limits"): before AUTH, for unread responses, and for partly received frames.
@Suite struct ResourceLimitTests {
    /// The resident set of process `pid`, from /proc.
    static func residentBytes(pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return 0 }
        return kib * 1024
    }

    static func header(announcing length: Int, opcode: UInt8, id: UInt32) -> [UInt8] {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: UInt32(length - 4).littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: id.littleEndian) { bytes += [opcode, 0] + Array($0) }
        return bytes
    }

    /// Measured on the real `learnstore serve` in a process of its own, so the resident set is the
    /// server's alone (the tests of this process run in parallel and allocate what they like).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CrashTests.binary), "needs the learnstore binary (swift build)"))
    func aLargeFrameBeforeAuthIsRefusedAtItsHeader() async throws {
        let root = TemporaryDirectory()
        try String(repeating: "s", count: 64).write(toFile: root.path + "/secret", atomically: true, encoding: .utf8)
        let server = try await ServerProcess.start(
            binary: CrashTests.binary,
            // 32 connections are opened in turn before the first reply is read: under the suite's load
            // that can take longer than the default 10 s for HELLO and AUTH, which is not what is tested.
            arguments: ["--data-dir", root.path + "/data", "--jwt-secret-file", root.path + "/secret", "--metrics-port", "0", "--log-level", "error",
                        "--handshake-timeout", "120"],
            logPath: root.path + "/server.log")
        do {
            try await Self.refuseLargeFramesBeforeAuth(server)
        } catch {
            await server.stop(signal: SIGKILL)
            throw error
        }
        await server.stop(signal: SIGTERM)
    }

    static func refuseLargeFramesBeforeAuth(_ server: ServerProcess) async throws {
        let before = Self.residentBytes(pid: server.pid)
        var connections: [RawConnection] = []
        for _ in 0..<32 {
            let raw = try RawConnection(port: server.port)
            raw.send(RawConnection.frame(Opcode.hello, id: 1) { HelloRequest(clientName: "big").encode(into: &$0) })
            #expect(await raw.receiveFrame().map { !$0.header.isError } == true)
            // An AUTH announcing 15 MiB, then 1 MiB of it.
            raw.send(Self.header(announcing: 15 << 20, opcode: Opcode.auth, id: 2) + [UInt8](repeating: 0x41, count: 1 << 20))
            connections.append(raw)
        }
        for raw in connections {
            let reply = try #require(await raw.receiveFrame())
            #expect(raw.error(of: reply)?.code == .frameTooLarge)
            #expect(await raw.isClosedByPeer())
        }
        // A server holding each announced frame would grow by 32 × 15 MiB; one that refuses at the
        // header holds none of it (the 1 MiB sent after each header is read and discarded).
        let grown = Self.residentBytes(pid: server.pid) - before
        #expect(grown < 64 << 20, "the server grew by \(grown) bytes")
        // A token of the documented maximum size still fits before AUTH.
        let raw = try RawConnection(port: server.port)
        raw.send(RawConnection.frame(Opcode.hello, id: 1) { HelloRequest(clientName: "ok").encode(into: &$0) })
        _ = await raw.receiveFrame()
        raw.send(RawConnection.frame(Opcode.auth, id: 2) { AuthRequest(token: String(repeating: "a", count: 8192)).encode(into: &$0) })
        let reply = try #require(await raw.receiveFrame())
        #expect(raw.error(of: reply)?.code == .unauthenticated)
    }

    @Test func aClientThatNeverReadsIsPausedAndThenServedInOrder() async throws {
        let softLimit = 64 << 10
        let server = try await TestServer.start { $0.connectionOutputSoftLimitBytes = softLimit }
        let client = try await server.client()
        let bodies = (0..<100).map { n in
            RecordBody(personID: UUID16(high: 9, low: UInt64(n)), title: String(repeating: "t", count: 300), provider: "edX", score: 50)
        }
        _ = try await client.performance.learningRecords.createBatch(bodies)
        let raw = try RawConnection(port: server.port, receiveTimeout: 30)
        _ = await raw.handshake(token: try await server.token())
        let requests = 300
        var pipeline: [UInt8] = []
        for id in 0..<requests {
            pipeline += RawConnection.frame(Opcode.list, id: UInt32(10 + id)) { ListQueryCodec.encode(ListQuery(limit: 100), into: &$0) }
        }
        // Each answer is about 40 KB: 12 MB if the server ran every request it read.
        await raw.sendAsync(pipeline)
        let budget = server.server.context.outputBudget
        #expect(await eventually(within: 60) { budget.used > 0 })
        var largest = 0
        for _ in 0..<50 {
            largest = max(largest, budget.used)
            await pollInterval()
        }
        // One batch stops at the soft limit; one response may cross it.
        #expect(largest <= softLimit + (64 << 10), "unsent response bytes: \(largest)")
        // Other clients are served meanwhile.
        #expect(try await client.ping() > .zero)
        for id in 0..<requests {
            let reply = try #require(await raw.receiveFrame(), "response \(id)")
            #expect(reply.header.requestID == UInt32(10 + id))
            #expect(!reply.header.isError)
        }
        #expect(await eventually { budget.used == 0 })
        await client.shutdown()
        try await server.stop()
    }

    @Test func responsesAboveTheHardLimitCloseTheConnection() async throws {
        let server = try await TestServer.start {
            $0.connectionOutputSoftLimitBytes = 4096
            $0.connectionOutputHardLimitBytes = 16384
        }
        let client = try await server.client()
        for batch in 0..<10 {
            let bodies = (0..<10).map { RecordBody(personID: UUID16(high: 9, low: UInt64(batch * 10 + $0)), title: String(repeating: "t", count: 300)) }
            _ = try await client.performance.learningRecords.createBatch(bodies)
        }
        let raw = try RawConnection(port: server.port)
        _ = await raw.handshake(token: try await server.token())
        raw.send(RawConnection.frame(Opcode.list, id: 5) { ListQueryCodec.encode(ListQuery(limit: 100), into: &$0) })
        let reply = try #require(await raw.receiveFrame())
        #expect(raw.error(of: reply)?.code == .overloaded)
        #expect(await raw.isClosedByPeer())
        #expect(await eventually { server.server.context.outputBudget.used == 0 })
        #expect(try await client.ping() > .zero)
        await client.shutdown()
        try await server.stop()
    }

    @Test func partlyReceivedFramesDrawOnTheServerWideInputBudget() async throws {
        let server = try await TestServer.start {
            $0.maximumFrameBytes = 1 << 20
            $0.connectionInputAllowanceBytes = 64 << 10
            $0.serverInputBudgetBytes = 1 << 20
        }
        let budget = server.server.context.inputBudget
        let token = try await server.token()
        let first = try RawConnection(port: server.port)
        _ = await first.handshake(token: token)
        let frameBytes = 900 << 10
        let header = Self.header(announcing: frameBytes, opcode: Opcode.get, id: 7)
        first.send(header + [UInt8](repeating: 1, count: 100_000))
        #expect(await eventually { budget.used == frameBytes - (64 << 10) })
        // A second large frame does not fit: refused, while the first connection goes on.
        let second = try RawConnection(port: server.port)
        _ = await second.handshake(token: token)
        second.send(header)
        let refused = try #require(await second.receiveFrame())
        #expect(second.error(of: refused)?.code == .overloaded)
        #expect(await second.isClosedByPeer())
        // Small frames need no budget.
        let third = try RawConnection(port: server.port)
        #expect(await third.handshake(token: token).map { !$0.header.isError } == true)
        first.send([UInt8](repeating: 1, count: frameBytes - header.count - 100_000))
        let answered = try #require(await first.receiveFrame())
        #expect(answered.header.requestID == 7)
        #expect(first.error(of: answered)?.code == .badFrame)  // a GET with 900 KiB of payload
        #expect(await eventually { budget.used == 0 })
        try await server.stop()
    }
}
