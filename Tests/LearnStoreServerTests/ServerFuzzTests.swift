import CanvasOutcomes
import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStoreProtocol
import LearnStoreWorkload
import Testing

/// Many connections to a real in-process server send random and damaged frames, before and after a
/// valid handshake. The server must never crash; every response must be a well-formed frame (a typed
/// error or a valid response to the request it answers, in order); afterwards a well-behaved client
/// is served and the reference tenant's data is untouched. `LEARNSTORE_FUZZ_ITERATIONS` scales it
/// (one connection of 40 frames per 250 iterations: 400 connections by default) and
/// `LEARNSTORE_FUZZ_SEED` varies it.
@Suite struct ServerFuzzTests {
    static let framesPerConnection = 40
    static let maximumFrameBytes = 1 << 16
    static let concurrency = 8

    enum Mode: CaseIterable { case noHandshake, helloOnly, fuzzTenant, readOnlyReferenceTenant }

    /// What the client knows about its connection, to predict what the server must do.
    struct ConnectionModel {
        var framesSeen = 0
        var authenticated = false
        var failedAuthentications = 0
    }

    struct Tally {
        var frames = 0
        var responses = 0
        var errors: [String: Int] = [:]
        var closes = 0
        var framingErrors = 0
        /// Requests left unanswered because a framing error closed the connection first.
        var cutOff = 0
        var problems: [String] = []

        mutating func problem(_ text: String) { if problems.count < 20 { problems.append(text) } }
        mutating func merge(_ other: Tally) {
            frames += other.frames
            responses += other.responses
            closes += other.closes
            framingErrors += other.framingErrors
            cutOff += other.cutOff
            for (key, value) in other.errors { errors[key, default: 0] += value }
            for problem in other.problems { self.problem(problem) }
        }
    }

    /// Whether the server's own decoder accepts `payload` for `opcode` (nil: no payload rule to check).
    static func serverDecodes(_ opcode: UInt8, _ payload: [UInt8]) -> Bool? {
        func ok<T>(_ body: (inout ByteReader) throws(DecodeError) -> T) -> Bool { (try? payload.withByteReader(body)) != nil }
        switch opcode {
        case Opcode.create: return ok { (r) throws(DecodeError) in try RecordMessages.decodeCreate(from: &r) }
        case Opcode.createBatch: return ok { (r) throws(DecodeError) in try RecordMessages.decodeCreateBatch(from: &r, maximumCount: 1000) }
        case Opcode.get, Opcode.delete, Opcode.restore: return ok { (r) throws(DecodeError) in try RecordMessages.decodeID(from: &r) }
        case Opcode.patch: return ok { (r) throws(DecodeError) in try RecordMessages.decodePatch(from: &r) }
        case Opcode.purgePerson: return ok { (r) throws(DecodeError) in try RecordMessages.decodePurge(from: &r) }
        case Opcode.list: return ok { (r) throws(DecodeError) in try ListQueryCodec.decode(from: &r) }
        case Opcode.stats: return payload.isEmpty
        case Opcode.ping: return payload.count <= 64
        case Opcode.outcomeIngest: return ok { (r) throws(DecodeError) in try OutcomeMessages.decodeIngest(from: &r, maximumCount: 1000) }
        case Opcode.outcomeGet: return ok { (r) throws(DecodeError) in try OutcomeMessages.decodeGet(from: &r) }
        case Opcode.outcomeTree: return ok { (r) throws(DecodeError) in try OutcomeMessages.decodeTree(from: &r) }
        case Opcode.outcomeResults: return ok { (r) throws(DecodeError) in try OutcomeMessages.decodeResults(from: &r) }
        case Opcode.outcomeProficiency: return ok { (r) throws(DecodeError) in try OutcomeMessages.decodeContextRequest(from: &r) }
        case Opcode.outcomeRollup: return ok { (r) throws(DecodeError) in try RollupMessages.decodeRollup(from: &r) }
        case Opcode.outcomeStudentRollups: return ok { (r) throws(DecodeError) in try RollupMessages.decodeStudentRollups(from: &r) }
        case Opcode.outcomeAggregates: return ok { (r) throws(DecodeError) in try RollupMessages.decodeAggregates(from: &r) }
        default: return nil
        }
    }

    /// Checks a successful response payload with the client's decoder for the request's opcode; nil
    /// when it is a valid response, else what is wrong.
    static func invalidResponse(to request: (header: FrameHeader, payload: [UInt8]), _ payload: [UInt8]) -> String? {
        func exact<T>(_ body: (inout ByteReader) throws(DecodeError) -> T) -> String? {
            do {
                _ = try payload.withByteReader { (reader) throws(DecodeError) in
                    let value = try body(&reader)
                    try reader.expectEnd()
                    return value
                }
                return nil
            } catch {
                return "undecodable response: \(error)"
            }
        }
        /// The server's record encoding must be the codec's (RecordStore encodes from stored form).
        func canonical(_ records: [LearningRecord], prefix: Int, suffix: [UInt8] = []) -> String? {
            var writer = ByteWriter()
            for record in records { RecordCodec.encode(record, into: &writer) }
            return Array(payload.dropFirst(prefix)) == writer.bytes + suffix ? nil : "records not in the codec's canonical encoding"
        }
        let context = ContextRef(type: "", id: "")
        switch request.header.opcode {
        case Opcode.hello: return exact { (r) throws(DecodeError) in try HelloResponse.decode(from: &r) }
        case Opcode.auth: return exact { (r) throws(DecodeError) in try AuthResponse.decode(from: &r) }
        case Opcode.ping: return payload == Array(request.payload.prefix(64)) ? nil : "PING did not echo"
        case Opcode.info, Opcode.stats:
            guard case .object? = try? JSONValue.parse(payload) else { return "not a JSON object" }
            return nil
        case Opcode.create:
            guard let (_, _, record) = try? payload.withByteReader({ (r) throws(DecodeError) in try RecordMessages.decodeWriteResponse(from: &r, hasReplayed: true) })
            else { return exact { (r) throws(DecodeError) in try RecordMessages.decodeWriteResponse(from: &r, hasReplayed: true) } }
            return canonical([record], prefix: 9)
        case Opcode.createBatch:
            guard let (_, _, records) = try? payload.withByteReader({ (r) throws(DecodeError) in try RecordMessages.decodeBatchResponse(from: &r) })
            else { return exact { (r) throws(DecodeError) in try RecordMessages.decodeBatchResponse(from: &r) } }
            var count = ByteWriter()
            count.writeVarint(UInt64(records.count))
            return canonical(records, prefix: 9 + count.count)
        case Opcode.get:
            guard let record = try? RecordCodec.decodeRecord(payload) else { return "undecodable record" }
            return canonical([record], prefix: 0)
        case Opcode.patch, Opcode.delete, Opcode.restore:
            return exact { (r) throws(DecodeError) in try RecordMessages.decodeWriteResponse(from: &r, hasReplayed: false) }
        case Opcode.purgePerson: return payload.count == 16 ? nil : "PURGE_PERSON response is not 16 bytes"
        case Opcode.list:
            guard let (records, cursor) = try? payload.withByteReader({ (r) throws(DecodeError) in try RecordMessages.decodeListResponse(from: &r) })
            else { return exact { (r) throws(DecodeError) in try RecordMessages.decodeListResponse(from: &r) } }
            guard cursor.isEmpty || cursor.count == ListCursor.encodedLength else { return "cursor of \(cursor.count) bytes" }
            var count = ByteWriter()
            count.writeVarint(UInt64(records.count))
            var tail = ByteWriter()
            tail.writeLengthPrefixed(cursor)
            return canonical(records, prefix: count.count, suffix: tail.bytes)
        case Opcode.outcomeIngest: return exact { (r) throws(DecodeError) in try OutcomeMessages.decodeIngestResponse(from: &r) }
        case Opcode.outcomeGet:
            guard let (kind, _) = try? request.payload.withByteReader({ (r) throws(DecodeError) in try OutcomeMessages.decodeGet(from: &r) })
            else { return "answered an undecodable OUTCOME_GET" }
            return exact { (r) throws(DecodeError) in try OutcomeMessages.decodeGetResponse(kind, from: &r) }
        case Opcode.outcomeTree: return exact { (r) throws(DecodeError) in try OutcomeMessages.decodeEntities(from: &r) }
        case Opcode.outcomeResults: return exact { (r) throws(DecodeError) in try OutcomeMessages.decodeResultPage(from: &r) }
        case Opcode.outcomeProficiency: return exact { (r) throws(DecodeError) in try OutcomeMessages.decodeProficiencyResponse(from: &r) }
        case Opcode.outcomeRollup:
            return exact { (r) throws(DecodeError) in try RollupMessages.decodeRollupResponse(from: &r, userUUID: "", context: context) }
        case Opcode.outcomeStudentRollups:
            return exact { (r) throws(DecodeError) in try RollupMessages.decodeRollupsResponse(from: &r, userUUID: "", context: context) }
        case Opcode.outcomeAggregates:
            return exact { (r) throws(DecodeError) in try RollupMessages.decodeAggregatesResponse(from: &r, context: context) }
        case let opcode where Opcode.adminRange.contains(opcode) && Opcode.names[opcode] != nil:
            return nil  // checked by the admin tests; here only well-formedness of the frame matters
        default: return "success for opcode 0x\(String(request.header.opcode, radix: 16)), which has no response"
        }
    }

    /// The error code the server must give, when the client can tell (nil: any answer may be right).
    static func requiredError(for request: (header: FrameHeader, payload: [UInt8]), model: ConnectionModel) -> LearnStoreError.Code? {
        let opcode = request.header.opcode
        if model.framesSeen == 0 { return opcode == Opcode.hello ? nil : .badFrame }
        if !model.authenticated {
            switch opcode {
            case Opcode.hello: return .badFrame
            case Opcode.auth, Opcode.ping: return nil
            default: return .unauthenticated
            }
        }
        if opcode == Opcode.auth { return nil }
        if request.header.flags != 0 || opcode == Opcode.hello { return .badFrame }
        if serverDecodes(opcode, request.payload) == false { return .badFrame }
        // Admin opcodes answer by scope (FORBIDDEN without admin) or by what they find: any typed answer.
        if Opcode.adminRange.contains(opcode) && Opcode.names[opcode] != nil { return nil }
        if serverDecodes(opcode, request.payload) == nil && ![Opcode.info].contains(opcode) { return .unknownOpcode }
        return nil
    }

    /// Runs one fuzz connection and checks every byte the server sends back.
    static func fuzzConnection(port: Int, mode: Mode, seed: UInt64, fuzzer template: RequestFuzzer, handshakeTokens: [Mode: String]) async -> Tally {
        var tally = Tally()
        var fuzzer = template
        fuzzer.random = SplitMix64(seed: seed)
        let raw: RawConnection
        do { raw = try RawConnection(port: port) } catch {
            tally.problem("connect: \(error)")
            return tally
        }
        var model = ConnectionModel()
        var stream: [UInt8] = []
        var requests: [(header: FrameHeader, payload: [UInt8])] = []
        // The handshake, if any, is part of the same stream of requests.
        if mode != .noHandshake {
            requests.append((FrameHeader(opcode: Opcode.hello, requestID: 1), { var w = ByteWriter(); HelloRequest(clientName: "fuzz").encode(into: &w); return w.bytes }()))
        }
        if let token = handshakeTokens[mode] {
            requests.append((FrameHeader(opcode: Opcode.auth, requestID: 2), { var w = ByteWriter(); AuthRequest(token: token).encode(into: &w); return w.bytes }()))
        }
        for index in 0..<framesPerConnection { requests.append(fuzzer.frame(id: UInt32(100 + index))) }
        for request in requests {
            var w = ByteWriter()
            w.writeFrame(request.header) { $0.writeBytes(request.payload) }
            stream += w.bytes
        }
        // Sometimes the stream ends in a frame whose length is wrong: too small, too large, or promising
        // bytes that never come.
        var framingError: LearnStoreError.Code?
        switch Int.random(in: 0..<10, using: &fuzzer.random) {
        case 0:
            stream += [UInt8(Int.random(in: 0...5, using: &fuzzer.random)), 0, 0, 0, Opcode.get, 0]
            framingError = .badFrame
        case 1:
            let length = UInt32(maximumFrameBytes - 3) + UInt32.random(in: 0...1_000_000, using: &fuzzer.random)
            stream += withUnsafeBytes(of: length.littleEndian, Array.init) + [Opcode.create, 0, 9, 9, 9, 9]
            framingError = .frameTooLarge
        case 2:
            stream += withUnsafeBytes(of: UInt32(4000).littleEndian, Array.init) + [Opcode.create, 0, 9, 9, 9, 9, 1, 2, 3]
        default: break
        }
        tally.frames = requests.count
        await raw.sendAsync(stream)

        for request in requests {
            guard let reply = await raw.receiveFrame() else {
                // A framing error may cut off responses to requests pipelined before it (they may have
                // been handed to a tenant on another event loop when the connection closed).
                if framingError == nil { tally.problem("\(mode) seed \(seed): no response to request \(request.header.requestID) (opcode 0x\(String(request.header.opcode, radix: 16)))") }
                tally.cutOff += 1
                return tally
            }
            tally.responses += 1
            if reply.header.opcode == 0 && reply.header.requestID == 0 && request.header.requestID != 0 {
                // The connection-level error of a framing failure, sent before the close.
                let code = raw.error(of: reply)?.code
                if framingError == nil || code != framingError { tally.problem("\(mode) seed \(seed): unexpected connection error \(String(describing: raw.error(of: reply)))") }
                tally.framingErrors += 1
                tally.cutOff += 1
                if await !raw.isClosedByPeer() { tally.problem("\(mode) seed \(seed): not closed after a framing error") }
                tally.closes += 1
                return tally
            }
            if reply.header.opcode != request.header.opcode || reply.header.requestID != request.header.requestID {
                tally.problem("\(mode) seed \(seed): response \(reply.header) does not answer \(request.header)")
                return tally
            }
            let required = requiredError(for: request, model: model)
            var closes = false
            switch reply.header.flags {
            case FrameHeader.errorFlag:
                guard let error = try? reply.payload.withByteReader({ (r) throws(DecodeError) in
                    let body = try ErrorBody.decode(from: &r)
                    try r.expectEnd()
                    return body
                }) else {
                    tally.problem("\(mode) seed \(seed): malformed error body \(reply.payload)")
                    return tally
                }
                tally.errors[error.code.name, default: 0] += 1
                if !LearnStoreError.Code.all.contains(error.code) || error.code.rawValue >= 600 || error.code.name != LearnStoreError.Code.fromWire(error.code.rawValue).name {
                    tally.problem("\(mode) seed \(seed): error code \(error.code.rawValue) \(error.code.name) is not a wire code")
                }
                if let required, required != error.code {
                    tally.problem("\(mode) seed \(seed): request \(request.header) got \(error) instead of \(required.name); payload \(request.payload.prefix(48))")
                }
                if model.framesSeen == 0 { closes = true }
                // PROTOCOL.md 3: every error answer to AUTH counts, a re-AUTH's FORBIDDEN included.
                if request.header.opcode == Opcode.auth {
                    model.failedAuthentications += 1
                    if model.failedAuthentications >= 3 { closes = true }
                }
            case 0:
                tally.errors["ok", default: 0] += 1
                if let required { tally.problem("\(mode) seed \(seed): request \(request.header) succeeded but must get \(required.name)") }
                if let wrong = invalidResponse(to: request, reply.payload) {
                    tally.problem("\(mode) seed \(seed): response to \(request.header): \(wrong)")
                }
                if request.header.opcode == Opcode.auth {
                    // A successful AUTH, first or again, starts the count of failures again.
                    model.failedAuthentications = 0
                    model.authenticated = true
                }
            default:
                tally.problem("\(mode) seed \(seed): response flags \(reply.header.flags)")
                return tally
            }
            model.framesSeen += 1
            if closes {
                if await !raw.isClosedByPeer() { tally.problem("\(mode) seed \(seed): not closed after \(request.header)") }
                tally.closes += 1
                return tally
            }
        }
        if let framingError {
            let reply = await raw.receiveFrame()
            if reply?.header.opcode != 0 || reply.flatMap(raw.error(of:))?.code != framingError {
                tally.problem("\(mode) seed \(seed): expected \(framingError.name) with opcode 0, got \(String(describing: reply?.header))")
            }
            tally.framingErrors += 1
            if await !raw.isClosedByPeer() { tally.problem("\(mode) seed \(seed): not closed after a framing error") }
            tally.closes += 1
        }
        if raw.malformedFrameSeen { tally.problem("\(mode) seed \(seed): the server sent a frame with a length below 6") }
        return tally
    }

    /// Everything a reader of the reference tenant can see.
    static func referenceState(_ client: LearnStoreClient) async throws -> (records: [LearningRecord], stats: JSONValue, outcome: OutcomeEntity) {
        var records: [LearningRecord] = []
        for try await record in client.performance.learningRecords.list(ListQuery(includeDeleted: true, order: .ascending, limit: 9)) {
            records.append(record)
        }
        return (records, try await client.performance.learningRecords.stats(), try await client.outcomes.entity(.outcome, key: "12345"))
    }

    @Test func randomAndDamagedFramesNeverHurtTheServer() async throws {
        let iterations = Int(ProcessInfo.processInfo.environment["LEARNSTORE_FUZZ_ITERATIONS"] ?? "") ?? 100_000
        let connections = max(Mode.allCases.count, iterations / 250)
        let seed = UInt64(ProcessInfo.processInfo.environment["LEARNSTORE_FUZZ_SEED"] ?? "") ?? 20_250_615
        let started = ContinuousClock.now
        let server = try await TestServer.start {
            $0.maximumFrameBytes = Self.maximumFrameBytes
            $0.handshakeTimeoutSeconds = 60
        }
        // The reference tenant: records (one deleted, one patched) and outcome data, written by a
        // well-behaved client before the fuzzing starts.
        let owner = try await server.client(tenant: "tenant_a")
        let records = owner.performance.learningRecords
        let person = UUID16(high: 0x5f0c_1e2a_7b3d_4c9e, low: 0x9a1b_0000_0000_0042)
        var ids: [RecordID] = []
        for index in 0..<12 {
            ids.append(try await records.create(RecordBody(personID: index % 3 == 0 ? person : UUID16.random(), title: "course \(index)", provider: "AWS",
                                                           completedAt: Timestamp(milliseconds: 1_700_000_000_000 + Int64(index)), score: Double(index))).value.id)
        }
        ids += try await records.createBatch((0..<5).map { RecordBody(personID: person, title: "batch \($0)") }).value.map(\.id)
        _ = try await records.delete(ids[1])
        var patch = RecordBody()
        patch.score = .value(99)
        _ = try await records.patch(ids[2], patch)
        let ingest = try await owner.outcomes.ingest(jsonEvents: Array(RequestFuzzer.events.prefix(3)))
        #expect(ingest.applied == 3)
        let before = try await Self.referenceState(owner)

        let readOnly = try await server.token(tenant: "tenant_a", scopes: [.recordsRead, .outcomesRead])
        let fuzzTenant = try await server.token(tenant: "fuzz")
        let expired = try await server.token(tenant: "fuzz", lifetime: 60, issuedAt: Timestamp(milliseconds: server.clock.now().milliseconds - 7_200_000))
        let foreign = try await server.token(tenant: "fuzz", secret: "another-secret-0123456789abcdef-0123456789")
        let template = RequestFuzzer(random: SplitMix64(seed: 0), knownIDs: ids, knownPerson: person,
                                     tokens: [readOnly, fuzzTenant, expired, foreign, "x.y.z", ""])
        let handshakeTokens: [Mode: String] = [.fuzzTenant: fuzzTenant, .readOnlyReferenceTenant: readOnly]

        var tally = Tally()
        await withTaskGroup(of: Tally.self) { group in
            var next = 0
            func add(_ group: inout TaskGroup<Tally>) {
                let index = next
                next += 1
                let mode = [Mode.noHandshake, .helloOnly, .fuzzTenant, .fuzzTenant, .readOnlyReferenceTenant, .readOnlyReferenceTenant][index % 6]
                group.addTask {
                    await Self.fuzzConnection(port: server.port, mode: mode, seed: seed &+ UInt64(index) &* 0x9E37_79B9, fuzzer: template,
                                              handshakeTokens: handshakeTokens)
                }
            }
            for _ in 0..<min(Self.concurrency, connections) { add(&group) }
            for await result in group {
                tally.merge(result)
                if next < connections { add(&group) }
            }
        }
        for problem in tally.problems { Issue.record(Comment(rawValue: problem)) }

        // The server still serves a well-behaved client, and the reference tenant is untouched.
        let after = try await Self.referenceState(owner)
        #expect(after.records == before.records, "the reference tenant's records changed")
        #expect(after.stats == before.stats, "the reference tenant's stats changed")
        #expect(after.outcome == before.outcome)
        let fresh = try await server.client(tenant: "tenant_a")
        let created = try await fresh.performance.learningRecords.create(RecordBody(personID: person, title: "after the fuzz"))
        #expect(try await fresh.performance.learningRecords.get(created.value.id) == created.value)
        #expect(try await fresh.ping() > .zero)
        #expect(tally.responses > tally.frames / 2, "most requests must be answered: \(tally.responses) of \(tally.frames)")
        #expect((tally.errors["ok"] ?? 0) > tally.frames / 10, "the fuzz must also reach successful requests: \(tally.errors)")
        await fresh.shutdown()
        await owner.shutdown()
        try await server.stop()
        let elapsed = ContinuousClock.now - started
        print("ServerFuzzTests: \(connections) connections, \(tally.frames) frames, \(tally.responses) responses, \(tally.framingErrors) framing errors (\(tally.cutOff) cutting off earlier responses), "
              + "\(tally.closes) closes, outcomes \(tally.errors.sorted { $0.key < $1.key }), seed \(seed), \(elapsed)")
    }
}
