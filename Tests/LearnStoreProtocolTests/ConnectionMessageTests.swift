import LearnStoreModel
import LearnStoreProtocol
import Testing

/// HELLO, AUTH and the error body (docs/PROTOCOL.md, sections 4.1, 4.2 and 6.1).
@Suite struct ConnectionMessageTests {
    static func decodeError<T>(_ bytes: [UInt8], _ body: (inout ByteReader) throws(DecodeError) -> T) -> DecodeError? {
        do {
            _ = try decoded(bytes, body)
            return nil
        } catch {
            #expect((0...bytes.count).contains(error.offset), "offset \(error.offset) outside 0...\(bytes.count)")
            return error
        }
    }

    @Test func helloRequestRoundTripsAndRefusesMalformedPayloads() throws {
        for request in [HelloRequest(clientName: "learnstore-swift/0.1"), HelloRequest(minimumVersion: 0, maximumVersion: 9, clientName: ""),
                        HelloRequest(minimumVersion: 1, maximumVersion: 1, clientName: String(repeating: "é", count: 128))] {
            let bytes = encoded { request.encode(into: &$0) }
            #expect(try decoded(bytes) { (r) throws(DecodeError) in try HelloRequest.decode(from: &r) } == request)
            #expect(bytes.count == 4 + (request.clientName.utf8.count < 128 ? 1 : 2) + request.clientName.utf8.count)
            #expect(Self.decodeError(bytes + [0]) { (r) throws(DecodeError) in try HelloRequest.decode(from: &r) } != nil, "trailing byte")
            #expect(Self.decodeError(Array(bytes.dropLast())) { (r) throws(DecodeError) in try HelloRequest.decode(from: &r) } != nil)
        }
        let long = encoded { HelloRequest(clientName: String(repeating: "x", count: 257)).encode(into: &$0) }
        #expect(Self.decodeError(long) { (r) throws(DecodeError) in try HelloRequest.decode(from: &r) }?.offset == 4, "client_name over 256 bytes")
        let badUTF8: [UInt8] = [1, 0, 1, 0, 2, 0xC3, 0x28]
        #expect(Self.decodeError(badUTF8) { (r) throws(DecodeError) in try HelloRequest.decode(from: &r) } != nil)
    }

    @Test func versionNegotiationPicksTheHighestCommonVersion() {
        #expect(HelloRequest(minimumVersion: 1, maximumVersion: 1, clientName: "").negotiate() == 1)
        #expect(HelloRequest(minimumVersion: 0, maximumVersion: 5, clientName: "").negotiate() == 1)
        #expect(HelloRequest(minimumVersion: 0, maximumVersion: 5, clientName: "").negotiate(with: 1...3) == 3)
        #expect(HelloRequest(minimumVersion: 2, maximumVersion: 3, clientName: "").negotiate() == nil)
        #expect(HelloRequest(minimumVersion: 0, maximumVersion: 0, clientName: "").negotiate() == nil)
        #expect(HelloRequest(minimumVersion: 3, maximumVersion: 1, clientName: "").negotiate() == nil, "an empty range")
    }

    @Test func helloResponseRoundTrips() throws {
        let responses = [
            HelloResponse(version: 1, serverVersion: "0.1.0", maximumFrameBytes: 16 << 20, maximumInFlight: 1024, features: [.records, .outcomes]),
            HelloResponse(version: 7, serverName: "other", serverVersion: "", maximumFrameBytes: .max, maximumInFlight: 0,
                          features: ProtocolFeatures(rawValue: .max)),
        ]
        for response in responses {
            let bytes = encoded { response.encode(into: &$0) }
            #expect(try decoded(bytes) { (r) throws(DecodeError) in try HelloResponse.decode(from: &r) } == response)
            for cut in 0..<bytes.count {
                #expect(Self.decodeError(Array(bytes[0..<cut])) { (r) throws(DecodeError) in try HelloResponse.decode(from: &r) } != nil)
            }
        }
    }

    @Test func authRequestRoundTripsUpToItsLimit() throws {
        for token in ["x.y.z", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln", String(repeating: "a", count: AuthRequest.maximumTokenBytes)] {
            let bytes = encoded { AuthRequest(token: token).encode(into: &$0) }
            #expect(try decoded(bytes) { (r) throws(DecodeError) in try AuthRequest.decode(from: &r) } == AuthRequest(token: token))
            #expect(Self.decodeError(bytes + [0x2E]) { (r) throws(DecodeError) in try AuthRequest.decode(from: &r) } != nil)
        }
        let tooLong = encoded { AuthRequest(token: String(repeating: "a", count: AuthRequest.maximumTokenBytes + 1)).encode(into: &$0) }
        #expect(Self.decodeError(tooLong) { (r) throws(DecodeError) in try AuthRequest.decode(from: &r) }?.offset == 0)
        #expect(Self.decodeError([]) { (r) throws(DecodeError) in try AuthRequest.decode(from: &r) } != nil)
        #expect(Self.decodeError([3, 0x61, 0xFF, 0x61]) { (r) throws(DecodeError) in try AuthRequest.decode(from: &r) } != nil, "invalid UTF-8")
    }

    @Test func authResponseRoundTripsWithAndWithoutAnApp() throws {
        let person = UUID16("5f0c1e2a-7b3d-4c9e-9a1b-000000000042")!
        for identity in [CallerIdentity(tenantID: "acme", personID: person, scopes: [.recordsRead, .recordsWrite]),
                         CallerIdentity(tenantID: "acme", appID: "lms", personID: person, scopes: Scopes(rawValue: 0x1F))] {
            let response = AuthResponse(identity: identity, expiresAt: Timestamp(milliseconds: 1_750_003_600_000))
            let bytes = encoded { response.encode(into: &$0) }
            #expect(try decoded(bytes) { (r) throws(DecodeError) in try AuthResponse.decode(from: &r) } == response)
            let appBytes: Int = identity.appID.map { 1 + $0.utf8.count } ?? 0
            #expect(bytes.count == 5 + 1 + appBytes + 16 + 4 + 8, "tenant, has_app, app, person, scopes, expiry")
        }
    }

    @Test func movedCarriesThePrimarysEpochAndAddressAfterTheBody() throws {
        let bytes = encoded { ErrorBody.encodeMoved("node n1 is a replica", epoch: 7, address: "10.0.0.5:7878", into: &$0) }
        let back = try decoded(bytes) { (r) throws(DecodeError) in
            let body = try ErrorBody.decode(from: &r)
            try r.expectEnd()
            return body
        }
        #expect(back.code == .moved && back.primaryAddress == "10.0.0.5:7878")
        #expect(Array(bytes.suffix(4 + 8 + 1 + 13).prefix(12)) == [0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0], "u32 partition 0, u64 epoch 7")
    }

    @Test func errorBodiesRoundTripForEveryCode() throws {
        for code in LearnStoreError.Code.all {
            for field in [nil, "score"] as [String?] {
                let error = LearnStoreError(code, "message for \(code.name) – ünïcode", field: field)
                let bytes = encoded { ErrorBody.encode(error, into: &$0) }
                let back = try decoded(bytes) { (r) throws(DecodeError) in
                    let body = try ErrorBody.decode(from: &r)
                    try r.expectEnd()
                    return body
                }
                #expect(back == error)
                #expect(back.code.name == code.name)
                #expect(Array(bytes[0..<2]) == [UInt8(code.rawValue & 0xFF), UInt8(code.rawValue >> 8)], "code is a little-endian u16")
            }
        }
        // A code this client does not know keeps its number and the server's name.
        let future = LearnStoreError(LearnStoreError.Code(rawValue: 777, name: "FUTURE_THING"), "later", field: nil)
        let back = try decoded(encoded { ErrorBody.encode(future, into: &$0) }) { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) }
        #expect(back.code.rawValue == 777 && back.code.name == "FUTURE_THING" && back.message == "later" && back.field == nil)
        // An empty field means "no field".
        #expect(try decoded([0x2D, 0x01, 0, 0, 0]) { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) }.field == nil)
        #expect(Self.decodeError([0x2D, 0x01, 0, 0]) { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) } != nil)
    }

    @Test func errorFramesCarryTheErrorFlag() throws {
        var writer = ByteWriter()
        writer.writeErrorFrame(opcode: Opcode.get, requestID: 0xDEAD_BEEF, LearnStoreError(.notFound, "no"))
        let bytes = writer.bytes
        #expect(Array(bytes[4..<10]) == [Opcode.get, FrameHeader.errorFlag, 0xEF, 0xBE, 0xAD, 0xDE])
        #expect(FrameHeader(opcode: 0, flags: 0x01, requestID: 0).isError)
        #expect(!FrameHeader(opcode: 0, flags: 0x02, requestID: 0).isError)
    }
}
