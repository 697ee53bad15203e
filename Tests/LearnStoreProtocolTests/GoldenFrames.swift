import LearnStoreModel
import LearnStoreProtocol

/// The fixed inputs behind the golden frames in `Golden/*.bin` and the worked examples of
/// docs/PROTOCOL.md, appendix A. Change them only together with the files and the document.
enum GoldenInputs {
    static let person = samplePerson  // 5f0c1e2a-7b3d-4c9e-9a1b-000000000042
    static let caller = sampleCaller  // 0b6d8a3e-2f41-4c7a-8e15-3d9c00a1b2c4
    /// 2025-06-15T15:06:40.000Z
    static let createdAt = Timestamp(milliseconds: 1_750_000_000_000)
    /// 2025-06-15T00:00:00.000Z
    static let completedAt = Timestamp(milliseconds: 1_749_945_600_000)
    /// lr_01JXT21Q0038NKRKAYDXR834N3 (created at 2025-06-15T15:06:40.000Z)
    static let recordID = RecordID(milliseconds: 1_750_000_000_000, randomHigh: 0x1A2B, randomLow: 0x3C4D_5E6F_7081_92A3)

    static let hello = HelloRequest(minimumVersion: 1, maximumVersion: 1, clientName: "demo")
    static let helloResponse = HelloResponse(
        version: 1, serverName: "learnstore", serverVersion: "0.1.0", maximumFrameBytes: 16 << 20, maximumInFlight: 1024,
        features: [.records, .outcomes, .admin, .feed])
    /// Shaped like a JWT (`{"alg":"HS256"}`, `{}`, "sig"), short enough to read; a server rejects it.
    static let auth = AuthRequest(token: "eyJhbGciOiJIUzI1NiJ9.e30.c2ln")
    static let authResponse = AuthResponse(
        identity: CallerIdentity(tenantID: "acme", personID: caller, scopes: [.recordsRead, .recordsWrite]),
        expiresAt: Timestamp(milliseconds: 1_750_003_600_000))
    static let idempotencyKey = "import-1"
    static let body = RecordBody(personID: person, title: "AWS SAA", provider: "AWS", completedAt: completedAt, score: 88.5, passed: true)
    /// What the server stores for `body` sent by `caller` in tenant "acme" at `createdAt`.
    static let record = LearningRecord(
        id: recordID, tenantID: "acme", createdAt: createdAt, updatedAt: createdAt, createdBy: caller, updatedBy: caller,
        personID: person, title: "AWS SAA", provider: "AWS", completedAt: completedAt, score: 88.5, passed: true)
    static let error = LearnStoreError(.validation, "score must be a finite number from 0 to 100", field: "score")
}

/// One golden frame: how to build it from the fixed inputs, and how to read its payload back.
struct GoldenFrame: Sendable, CustomStringConvertible {
    let name: String
    let header: FrameHeader
    let encodePayload: @Sendable (inout ByteWriter) -> Void
    /// Decodes the payload with the codec a peer uses and tells whether it equals the fixed inputs.
    let payloadMatches: @Sendable ([UInt8]) throws -> Bool

    var description: String { name }

    var bytes: [UInt8] {
        var writer = ByteWriter()
        writer.writeFrame(header, payload: encodePayload)
        return writer.bytes
    }

    static func decodeWhole<T>(_ payload: [UInt8], _ body: (inout ByteReader) throws(DecodeError) -> T) throws(DecodeError) -> T {
        try payload.withByteReader { (reader) throws(DecodeError) in
            let value = try body(&reader)
            try reader.expectEnd()
            return value
        }
    }

    static let all: [GoldenFrame] = {
        typealias Inputs = GoldenInputs
        return [
            GoldenFrame(name: "hello_request", header: FrameHeader(opcode: Opcode.hello, requestID: 1),
                        encodePayload: { Inputs.hello.encode(into: &$0) },
                        payloadMatches: { try decodeWhole($0) { (r) throws(DecodeError) in try HelloRequest.decode(from: &r) } == Inputs.hello }),
            GoldenFrame(name: "hello_response", header: FrameHeader(opcode: Opcode.hello, requestID: 1),
                        encodePayload: { Inputs.helloResponse.encode(into: &$0) },
                        payloadMatches: { try decodeWhole($0) { (r) throws(DecodeError) in try HelloResponse.decode(from: &r) } == Inputs.helloResponse }),
            GoldenFrame(name: "auth_request", header: FrameHeader(opcode: Opcode.auth, requestID: 2),
                        encodePayload: { Inputs.auth.encode(into: &$0) },
                        payloadMatches: { try decodeWhole($0) { (r) throws(DecodeError) in try AuthRequest.decode(from: &r) } == Inputs.auth }),
            GoldenFrame(name: "auth_response", header: FrameHeader(opcode: Opcode.auth, requestID: 2),
                        encodePayload: { Inputs.authResponse.encode(into: &$0) },
                        payloadMatches: { try decodeWhole($0) { (r) throws(DecodeError) in try AuthResponse.decode(from: &r) } == Inputs.authResponse }),
            GoldenFrame(name: "create_request", header: FrameHeader(opcode: Opcode.create, requestID: 3),
                        encodePayload: { RecordMessages.encodeCreate(Inputs.body, idempotencyKey: Inputs.idempotencyKey, into: &$0) },
                        payloadMatches: { payload in
                            let (body, key) = try decodeWhole(payload) { (r) throws(DecodeError) in try RecordMessages.decodeCreate(from: &r) }
                            return body == Inputs.body && key == Inputs.idempotencyKey
                        }),
            GoldenFrame(name: "create_response", header: FrameHeader(opcode: Opcode.create, requestID: 3),
                        encodePayload: { RecordMessages.encodeWriteResponse(sequence: 1, replayed: false, Inputs.record, into: &$0) },
                        payloadMatches: { payload in
                            let (sequence, replayed, record) = try decodeWhole(payload) { (r) throws(DecodeError) in
                                try RecordMessages.decodeWriteResponse(from: &r, hasReplayed: true)
                            }
                            return sequence == 1 && !replayed && record == Inputs.record
                        }),
            GoldenFrame(name: "get_request", header: FrameHeader(opcode: Opcode.get, requestID: 4),
                        encodePayload: { $0.writeRecordID(Inputs.recordID) },
                        payloadMatches: { try decodeWhole($0) { (r) throws(DecodeError) in try RecordMessages.decodeID(from: &r) } == Inputs.recordID }),
            GoldenFrame(name: "get_response", header: FrameHeader(opcode: Opcode.get, requestID: 4),
                        encodePayload: { RecordCodec.encode(Inputs.record, into: &$0) },
                        payloadMatches: { try RecordCodec.decodeRecord($0) == Inputs.record }),
            GoldenFrame(name: "error_response", header: FrameHeader(opcode: Opcode.create, flags: FrameHeader.errorFlag, requestID: 5),
                        encodePayload: { ErrorBody.encode(Inputs.error, into: &$0) },
                        payloadMatches: { try decodeWhole($0) { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) } == Inputs.error }),
        ]
    }()
}
