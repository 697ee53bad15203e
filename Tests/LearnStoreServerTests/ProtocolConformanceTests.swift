import LearnStoreEngine
import LearnStoreModel
import LearnStoreProtocol
import Testing

/// Rules of docs/PROTOCOL.md that a client author relies on and that no other test pins down,
/// checked against a real server over a raw socket.
@Suite struct ProtocolConformanceTests {
    static func hello(id: UInt32 = 1, flags: UInt8 = 0, _ payload: (inout ByteWriter) -> Void = { HelloRequest(clientName: "conformance").encode(into: &$0) }) -> [UInt8] {
        RawConnection.frame(Opcode.hello, id: id, flags: flags, payload)
    }

    static func lengthOnly(_ length: UInt32) -> [UInt8] { withUnsafeBytes(of: length.littleEndian, Array.init) }

    static func reply(_ raw: RawConnection) async throws -> (header: FrameHeader, payload: [UInt8]) {
        try #require(await raw.receiveFrame())
    }

    @Test func aBadLengthIsAnsweredWithOpcodeZeroAndRequestIDZeroThenAClose() async throws {
        let server = try await TestServer.start { $0.maximumFrameBytes = 4096 }
        for (length, code) in [(UInt32(5), LearnStoreError.Code.badFrame), (4093, .frameTooLarge)] {
            let raw = try RawConnection(port: server.port)
            _ = await raw.handshake(token: try await server.token())
            raw.send(Self.lengthOnly(length) + [Opcode.get, 0, 7, 0, 0, 0])
            let reply = try await Self.reply(raw)
            #expect(reply.header.opcode == 0 && reply.header.requestID == 0 && reply.header.isError)
            #expect(raw.error(of: reply)?.code == code)
            #expect(await raw.isClosedByPeer())
        }
        // The largest legal frame (length + 4 = max_frame_bytes) is read and answered.
        let raw = try RawConnection(port: server.port)
        _ = await raw.handshake(token: try await server.token())
        raw.send(RawConnection.frame(0x77, id: 8) { $0.writeBytes([UInt8](repeating: 1, count: 4096 - FrameHeader.size)) })
        let largest = try await Self.reply(raw)
        #expect(largest.header.requestID == 8 && raw.error(of: largest)?.code == .unknownOpcode)
        try await server.stop()
    }

    @Test func aMalformedHelloIsABadFrameThatCloses() async throws {
        let server = try await TestServer.start()
        let raw = try RawConnection(port: server.port)
        raw.send(Self.hello(id: 77) { $0.writeU16(1); $0.writeU16(1); $0.writeVarint(300) })
        let reply = try await Self.reply(raw)
        #expect(reply.header.opcode == Opcode.hello && reply.header.requestID == 77)
        #expect(raw.error(of: reply)?.code == .badFrame)
        #expect(await raw.isClosedByPeer())
        try await server.stop()
    }

    @Test func beforeAuthOnlyAuthAndPingAreAcceptedAndTheConnectionStaysOpen() async throws {
        let server = try await TestServer.start()
        let raw = try RawConnection(port: server.port)
        raw.send(Self.hello())
        #expect(try await Self.reply(raw).header.isError == false)
        raw.send(Self.hello(id: 2) + RawConnection.frame(Opcode.get, id: 3) { $0.writeRecordID(RecordID(high: 1, low: 1)) }
                 + RawConnection.frame(Opcode.info, id: 4) + RawConnection.frame(0x80, id: 5) + RawConnection.frame(Opcode.ping, id: 6) { $0.writeU8(9) })
        let codes = [try await Self.reply(raw), try await Self.reply(raw), try await Self.reply(raw), try await Self.reply(raw)].map { raw.error(of: $0)?.code }
        #expect(codes == [.badFrame, .unauthenticated, .unauthenticated, .unauthenticated])
        let pong = try await Self.reply(raw)
        #expect(pong.header.requestID == 6 && pong.payload == [9])
        // Requests pipelined behind AUTH run under its outcome.
        raw.send(RawConnection.frame(Opcode.auth, id: 7) { AuthRequest(token: "not a token").encode(into: &$0) }
                 + RawConnection.frame(Opcode.stats, id: 8))
        #expect(raw.error(of: try await Self.reply(raw))?.code == .unauthenticated)
        #expect(raw.error(of: try await Self.reply(raw))?.code == .unauthenticated)
        let token = try await server.token()
        raw.send(RawConnection.frame(Opcode.auth, id: 9) { AuthRequest(token: token).encode(into: &$0) } + RawConnection.frame(Opcode.stats, id: 10))
        #expect(try await Self.reply(raw).header.isError == false)
        let stats = try await Self.reply(raw)
        #expect(stats.header.requestID == 10 && !stats.header.isError)
        try await server.stop()
    }

    @Test func malformedAuthPayloadsCountAsFailedAttempts() async throws {
        let server = try await TestServer.start()
        let raw = try RawConnection(port: server.port)
        raw.send(Self.hello())
        _ = try await Self.reply(raw)
        for id: UInt32 in 2...4 { raw.send(RawConnection.frame(Opcode.auth, id: id) { $0.writeVarint(9) }) }
        for _ in 2...4 { #expect(raw.error(of: try await Self.reply(raw))?.code == .badFrame) }
        #expect(await raw.isClosedByPeer())
        try await server.stop()
    }

    @Test func afterAuthAFailedReauthKeepsTheSessionAndUnknownOpcodesStayOpen() async throws {
        let server = try await TestServer.start()
        let raw = try RawConnection(port: server.port)
        _ = await raw.handshake(token: try await server.token())
        raw.send(RawConnection.frame(Opcode.auth, id: 3) { AuthRequest(token: "x.y.z").encode(into: &$0) }
                 + RawConnection.frame(Opcode.stats, id: 4) + Self.hello(id: 5) + RawConnection.frame(0x9F, id: 6)
                 + RawConnection.frame(0x48, id: 7) + RawConnection.frame(Opcode.stats, id: 8))
        #expect(raw.error(of: try await Self.reply(raw))?.code == .unauthenticated)
        #expect(try await Self.reply(raw).header.isError == false, "the session survived the failed re-AUTH")
        #expect(raw.error(of: try await Self.reply(raw))?.code == .badFrame, "a second HELLO")
        #expect(raw.error(of: try await Self.reply(raw))?.code == .unknownOpcode)
        #expect(raw.error(of: try await Self.reply(raw))?.code == .unknownOpcode)
        #expect(try await Self.reply(raw).header.isError == false)
        try await server.stop()
    }

    @Test func limitsOfRecordMessagesAreTheDocumentedErrors() async throws {
        let server = try await TestServer.start()
        let raw = try RawConnection(port: server.port)
        _ = await raw.handshake(token: try await server.token())
        let person = UUID16(high: 1, low: 1)
        func create(_ id: UInt32, title: String) -> [UInt8] {
            RawConnection.frame(Opcode.create, id: id) { RecordMessages.encodeCreate(RecordBody(personID: person, title: title), idempotencyKey: nil, into: &$0) }
        }
        var requests: [([UInt8], LearnStoreError.Code?, String?)] = [
            (RawConnection.frame(Opcode.createBatch, id: 10) { RecordMessages.encodeCreateBatch([], idempotencyKey: nil, into: &$0) }, .validation, nil),
            (RawConnection.frame(Opcode.createBatch, id: 11) { w in w.writeU8(0); w.writeVarint(1001) }, .badFrame, nil),
            (create(12, title: String(repeating: "t", count: 513)), .validation, "title"),
            (create(13, title: String(repeating: "t", count: 4097)), .badFrame, nil),
            (RawConnection.frame(Opcode.list, id: 14) { ListQueryCodec.encode(ListQuery(limit: 1001), into: &$0) }, .validation, "limit"),
            (RawConnection.frame(Opcode.list, id: 15) {
                ListQueryCodec.encode(ListQuery(completedAt: TimeRange(from: Timestamp(milliseconds: 2), to: Timestamp(milliseconds: 1))), into: &$0)
            }, .validation, "completed_at"),
            (RawConnection.frame(Opcode.list, id: 16) { w in w.writeU16(10); w.writeU32(1 << 13); w.writeLengthPrefixed([1, 2, 3]) }, .validation, "cursor"),
            (RawConnection.frame(Opcode.list, id: 17) { w in w.writeU16(10); w.writeU32(1 << 13); w.writeLengthPrefixed([UInt8](repeating: 1, count: 1025)) }, .badFrame, nil),
            (RawConnection.frame(Opcode.get, id: 18) { $0.writeRecordID(RecordID(high: 1, low: 1)); $0.writeU8(0) }, .badFrame, nil),
            (RawConnection.frame(Opcode.ping, id: 19) { $0.writeBytes([UInt8](repeating: 0, count: 65)) }, .badFrame, nil),
            (RawConnection.frame(Opcode.get, id: 20, flags: 0x02) { $0.writeRecordID(RecordID(high: 1, low: 1)) }, .badFrame, nil),
        ]
        // A varint in a longer form than needed is read (a 1-byte key sent as `81 00`).
        requests.append((RawConnection.frame(Opcode.create, id: 21) { w in
            w.writeU8(1); w.writeBytes([0x81, 0x00]); w.writeBytes(Array("k".utf8))
            RecordCodec.encode(RecordBody(personID: person, title: "overlong varint"), into: &w)
        }, nil, nil))
        for request in requests { raw.send(request.0) }
        for (index, request) in requests.enumerated() {
            let reply = try await Self.reply(raw)
            #expect(reply.header.requestID == UInt32(10 + index))
            let error = raw.error(of: reply)
            #expect(error?.code == request.1, "request \(10 + index): \(String(describing: error))")
            if let field = request.2 { #expect(error?.field == field, "request \(10 + index)") }
        }
        try await server.stop()
    }

    @Test func pingWorksWithAnExpiredToken() async throws {
        let clock = ManualClock(Timestamp(milliseconds: 1_800_000_000_000))
        let server = try await TestServer.start(clock: clock)
        let raw = try RawConnection(port: server.port)
        _ = await raw.handshake(token: try await server.token(lifetime: 60))
        clock.advance(milliseconds: 3_600_000)
        raw.send(RawConnection.frame(Opcode.ping, id: 3) { $0.writeU8(1) } + RawConnection.frame(Opcode.info, id: 4))
        #expect(try await Self.reply(raw).payload == [1])
        #expect(raw.error(of: try await Self.reply(raw))?.code == .tokenExpired)
        try await server.stop()
    }

    // MARK: rules that the server once broke (fixed)

    @Test func requestFlagsMustBeZeroOnEveryRequest() async throws {
        let server = try await TestServer.start()
        let raw = try RawConnection(port: server.port)
        raw.send(Self.hello(flags: 0x80))
        let hello = try await Self.reply(raw)
        #expect(raw.error(of: hello)?.code == .badFrame)
        let second = try RawConnection(port: server.port)
        second.send(Self.hello())
        #expect(try await Self.reply(second).header.isError == false)
        let token = try await server.token()
        second.send(RawConnection.frame(Opcode.auth, id: 2, flags: 0x80) { AuthRequest(token: token).encode(into: &$0) })
        #expect(second.error(of: try await Self.reply(second))?.code == .badFrame)
        try await server.stop()
    }

    @Test func aPingBeforeAuthIsLimitedTo64Bytes() async throws {
        let server = try await TestServer.start()
        let raw = try RawConnection(port: server.port)
        raw.send(Self.hello())
        _ = try await Self.reply(raw)
        raw.send(RawConnection.frame(Opcode.ping, id: 2) { $0.writeBytes([UInt8](repeating: 7, count: 65)) })
        let reply = try await Self.reply(raw)
        #expect(raw.error(of: reply)?.code == .badFrame)
        try await server.stop()
    }

    @Test func infoTakesAnEmptyPayload() async throws {
        let server = try await TestServer.start()
        let raw = try RawConnection(port: server.port)
        _ = await raw.handshake(token: try await server.token())
        raw.send(RawConnection.frame(Opcode.info, id: 3) { $0.writeBytes([1, 2, 3]) })
        let reply = try await Self.reply(raw)
        #expect(raw.error(of: reply)?.code == .badFrame)
        try await server.stop()
    }
}
