import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreProtocol
import LearnStoreTestSupport
import NIOCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ServerRobustnessTests {
    @Test func theFirstFrameMustBeHello() async throws {
        let server = try await TestServer.start()
        let raw = try RawConnection(port: server.port)
        raw.send(RawConnection.frame(Opcode.get, id: 9) { $0.writeRecordID(RecordID(high: 1, low: 1)) })
        let reply = try #require(await raw.receiveFrame())
        #expect(raw.error(of: reply)?.code == .badFrame)
        #expect(reply.header.requestID == 9)
        #expect(await raw.isClosedByPeer())
        try await server.stop()
    }

    @Test func versionMismatchIsRefused() async throws {
        let server = try await TestServer.start()
        let raw = try RawConnection(port: server.port)
        raw.send(RawConnection.frame(Opcode.hello, id: 1) { HelloRequest(minimumVersion: 7, maximumVersion: 9, clientName: "future").encode(into: &$0) })
        let reply = try #require(await raw.receiveFrame())
        #expect(raw.error(of: reply)?.code == .unsupportedVersion)
        #expect(await raw.isClosedByPeer())
        try await server.stop()
    }

    @Test func oversizedFrameIsRefusedAndTheConnectionClosed() async throws {
        let server = try await TestServer.start { $0.maximumFrameBytes = 4096 }
        let raw = try RawConnection(port: server.port)
        #expect(await raw.handshake(token: try await server.token()).map { !$0.header.isError } == true)
        var header: [UInt8] = []
        withUnsafeBytes(of: UInt32(1 << 30).littleEndian) { header.append(contentsOf: $0) }
        header += [Opcode.get, 0, 5, 0, 0, 0]
        raw.send(header)
        let reply = try #require(await raw.receiveFrame())
        #expect(raw.error(of: reply)?.code == .frameTooLarge)
        #expect(await raw.isClosedByPeer())
        // Other connections never notice.
        let client = try await server.client()
        #expect(try await client.ping() > .zero)
        await client.shutdown()
        try await server.stop()
    }

    @Test func malformedPayloadsGetTypedErrorsAndTheConnectionStaysOpen() async throws {
        let server = try await TestServer.start()
        let raw = try RawConnection(port: server.port)
        _ = await raw.handshake(token: try await server.token())
        let cases: [[UInt8]] = [
            RawConnection.frame(Opcode.get, id: 10) { $0.writeU8(1) },  // short id
            RawConnection.frame(Opcode.create, id: 11) { $0.writeU8(0); $0.writeU32(0xFFFF_FFFF); $0.writeU32(0) },  // unknown bits
            RawConnection.frame(Opcode.list, id: 12) { $0.writeU16(10); $0.writeU32(1) },  // missing uuid
            RawConnection.frame(0x77, id: 13),
            RawConnection.frame(Opcode.get, id: 14, flags: 0x80) { $0.writeRecordID(RecordID(high: 1, low: 1)) },
            RawConnection.frame(Opcode.create, id: 15) { w in w.writeU8(0); w.writeU32(RecordField.title.bit); w.writeU32(0); w.writeVarint(3); w.writeBytes([0xFF, 0xFE, 0xFD]) },
        ]
        let expected: [LearnStoreError.Code] = [.badFrame, .badFrame, .badFrame, .unknownOpcode, .badFrame, .badFrame]
        for bytes in cases { raw.send(bytes) }
        for (index, code) in expected.enumerated() {
            let reply = try #require(await raw.receiveFrame())
            #expect(reply.header.requestID == UInt32(10 + index), "responses come in request order")
            #expect(raw.error(of: reply)?.code == code)
        }
        raw.send(RawConnection.frame(Opcode.ping, id: 99) { $0.writeBytes([1, 2, 3]) })
        let pong = try #require(await raw.receiveFrame())
        #expect(pong.header.requestID == 99 && pong.payload == [1, 2, 3])
        try await server.stop()
    }

    @Test func aClientSendingOneByteAtATimeIsServed() async throws {
        let server = try await TestServer.start()
        let raw = try RawConnection(port: server.port)
        var bytes = RawConnection.frame(Opcode.hello, id: 1) { HelloRequest(clientName: "slow").encode(into: &$0) }
        bytes += RawConnection.frame(Opcode.auth, id: 2) { AuthRequest(token: "x.y.z").encode(into: &$0) }
        bytes += RawConnection.frame(Opcode.ping, id: 3) { $0.writeU8(7) }
        for byte in bytes { raw.send([byte]) }
        #expect(await raw.receiveFrame()?.header.isError == false)
        #expect(raw.error(of: try #require(await raw.receiveFrame()))?.code == .unauthenticated)
        #expect(await raw.receiveFrame()?.payload == [7])
        try await server.stop()
    }

    @Test func silentAndDribblingClientsAreClosed() async throws {
        let server = try await TestServer.start {
            $0.handshakeTimeoutSeconds = 0.4
            $0.idleTimeoutSeconds = 0.6
        }
        let silent = try RawConnection(port: server.port)
        let reply = try #require(await silent.receiveFrame())
        #expect(silent.error(of: reply)?.code == .timeout)
        #expect(await silent.isClosedByPeer())
        try await server.stop()

        // Authenticated, then dribbles a frame that never completes: no whole frame means idle. (A
        // server of its own with a handshake timeout a loaded CI machine cannot miss.)
        let idleServer = try await TestServer.start {
            $0.handshakeTimeoutSeconds = 10
            $0.idleTimeoutSeconds = 0.6
        }
        let dribbler = try RawConnection(port: idleServer.port)
        let authenticated = try #require(await dribbler.handshake(token: try await idleServer.token()))
        #expect(!authenticated.header.isError)
        var length: [UInt8] = []
        withUnsafeBytes(of: UInt32(1000).littleEndian) { length.append(contentsOf: $0) }
        dribbler.send(length + [Opcode.ping])
        for _ in 0..<9 {
            dribbler.send([0])
            for _ in 0..<10 { await pollInterval() }
        }
        let timeout = try #require(await dribbler.receiveFrame())
        #expect(dribbler.error(of: timeout)?.code == .timeout)
        #expect(await dribbler.isClosedByPeer())
        try await idleServer.stop()
    }

    @Test func connectionLimit() async throws {
        let server = try await TestServer.start { $0.maximumConnections = 2 }
        let a = try RawConnection(port: server.port)
        let b = try RawConnection(port: server.port)
        _ = await a.handshake(token: try await server.token())
        _ = await b.handshake(token: try await server.token())
        let c = try RawConnection(port: server.port)
        let reply = try #require(await c.receiveFrame())
        #expect(c.error(of: reply)?.code == .tooManyConnections)
        #expect(await c.isClosedByPeer())
        try await server.stop()
    }

    /// Parsing stops at the in-flight limit; once those answers are written, the frames still in the
    /// read buffer must be parsed even if the client sends nothing more (it is waiting for them).
    /// This hung when all of a deep pipeline had arrived in one read.
    @Test func framesBufferedBeyondTheInFlightLimitAreAnsweredWithoutMoreBytes() async throws {
        let server = try await TestServer.start { $0.maximumInFlight = 4 }
        let raw = try RawConnection(port: server.port)
        _ = await raw.handshake(token: try await server.token())
        var burst: [UInt8] = []
        for id in UInt32(10)..<50 {
            burst += RawConnection.frame(Opcode.get, id: id) { $0.writeRecordID(RecordID(high: 1, low: UInt64(id))) }
        }
        #expect(await raw.sendAsync(burst))
        var answered: [UInt32] = []
        while answered.count < 40, let reply = await raw.receiveFrame() {
            #expect(raw.error(of: reply)?.code == .notFound)
            answered.append(reply.header.requestID)
        }
        #expect(answered == Array(10..<50))
        try await server.stop()
    }

    @Test func aClientThatNeverReadsCannotGrowTheServer() async throws {
        let server = try await TestServer.start { $0.maximumInFlight = 64 }
        let raw = try RawConnection(port: server.port)
        _ = await raw.handshake(token: try await server.token())
        // Make sends non-blocking and push GETs until the socket refuses more.
        let flags = fcntl(raw.fd, F_GETFL)
        _ = fcntl(raw.fd, F_SETFL, flags | O_NONBLOCK)
        let frame = RawConnection.frame(Opcode.ping, id: 1) { $0.writeBytes(Array(repeating: 1, count: 64)) }
        var chunk: [UInt8] = []
        for _ in 0..<1000 { chunk += frame }
        var accepted = 0
        var refused = false
        for _ in 0..<20_000 {
            let sent = chunk.withUnsafeBytes { Glibc.send(raw.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                refused = errno == EAGAIN || errno == EWOULDBLOCK
                if refused { break }
            } else {
                accepted += sent
            }
        }
        #expect(refused, "the server kept reading although its responses were not being read")
        #expect(accepted < 64 << 20, "accepted \(accepted) bytes")
        let client = try await server.client()
        #expect(try await client.ping() > .zero, "other connections are still served")
        await client.shutdown()
        try await server.stop()
    }

    @Test func gracefulShutdownAnswersOrCleanlyFailsEveryRequest() async throws {
        let server = try await TestServer.start()
        let client = try await server.client(connections: 2)
        let records = client.performance.learningRecords
        let outcome = Task {
            await withTaskGroup(of: LearnStoreError.Code?.self) { group in
                for i in 0..<2000 {
                    group.addTask {
                        do throws(LearnStoreError) {
                            _ = try await records.create(sampleBody(person: UUID16(high: 3, low: UInt64(i))))
                            return nil
                        } catch {
                            return error.code
                        }
                    }
                }
                var results: [LearnStoreError.Code?] = []
                for await result in group { results.append(result) }
                return results
            }
        }
        _ = await eventually { (try? await records.page(ListQuery(limit: 1)).records.count) == 1 }
        try await server.stop()
        let results = await outcome.value
        #expect(results.count == 2000, "every request got an answer or a clean failure")
        let allowed: Set<LearnStoreError.Code?> = [nil, .shuttingDown, .connectionFailed]
        let unexpected = Dictionary(grouping: results.filter { !allowed.contains($0) }, by: { $0?.name ?? "ok" }).mapValues(\.count)
        #expect(unexpected == [:], "answers other than success, SHUTTING_DOWN or a closed connection")
        await client.shutdown()
    }

    /// A shutdown while a client pipelines: every request the server read is answered in order, then
    /// one SHUTTING_DOWN with request id 0, then an orderly close (no reset destroying unread replies).
    @Test func gracefulShutdownAnswersWhatItReadThenClosesWithoutAReset() async throws {
        let server = try await TestServer.start()
        let raw = try RawConnection(port: server.port, receiveTimeout: 30)
        _ = await raw.handshake(token: try await server.token())
        var pipeline: [UInt8] = []
        for id in 0..<20_000 {
            pipeline += RawConnection.frame(Opcode.create, id: UInt32(100 + id)) {
                RecordMessages.encodeCreate(sampleBody(person: UUID16(high: 4, low: UInt64(id))), idempotencyKey: nil, into: &$0)
            }
        }
        let sending = Task { await raw.sendAsync(pipeline) }
        let first = try #require(await raw.receiveFrame())
        #expect(first.header.requestID == 100)
        let stopping = Task { try await server.stop() }
        var expectedID: UInt32 = 101
        var succeeded = 1
        var last = first
        while let frame = await raw.receiveFrame() {
            last = frame
            if frame.header.requestID == 0 { break }
            #expect(frame.header.requestID == expectedID, "answers come in order, none skipped")
            expectedID += 1
            if !frame.header.isError { succeeded += 1 } else { #expect(raw.error(of: frame)?.code == .shuttingDown) }
        }
        #expect(last.header.requestID == 0 && raw.error(of: last)?.code == .shuttingDown, "the last frame says why")
        #expect(await raw.isClosedByPeer())
        #expect(!raw.endedWithReset)
        #expect(succeeded >= 1)
        raw.closeNow()
        _ = await sending.value
        try await stopping.value
    }
}

/// While the server recovers, PING and INFO answer (operators watch recovery through INFO) and every
/// data request gets LOADING.
@Suite struct LoadingStateTests {
    @Test func infoAndPingAnswerWhileDataRequestsGetLoading() async throws {
        let server = try await TestServer.start(stayLoading: true)
        let client = try await server.client()
        let info = try await client.info()
        #expect(info["server"] == .string("learnstore"))
        _ = try await client.ping()
        do {
            _ = try await client.performance.learningRecords.create(sampleBody())
            Issue.record("a write was accepted while loading")
        } catch {
            #expect(error.code == .loading)
        }
        try await server.stop()
    }
}
