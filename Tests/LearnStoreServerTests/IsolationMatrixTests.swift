import Foundation
import LearnStoreClient
import LearnStoreEngine
import LearnStoreModel
import LearnStoreProtocol
import Testing

/// Every operation × every kind of bad or foreign credential: each gets its typed error, and no byte
/// of another tenant's or another app's data ever comes back.
@Suite struct IsolationMatrixTests {
    enum Credential: String, CaseIterable {
        case none, expired, notYetValid, badSignature, algNone, otherTenant, otherApp, missingScope
    }

    enum Operation: String, CaseIterable {
        case create, createBatch, get, patch, delete, restore, purgePerson, list, stats
    }

    static let secretTitle = "SECRET-A-TITLE-7f3a"
    static let person = UUID16(high: 0xAAAA, low: 1)

    func frame(_ operation: Operation, id: UInt32, target: RecordID) -> [UInt8] {
        var patch = RecordBody()
        patch.score = .value(1)
        switch operation {
        case .create: return RawConnection.frame(Opcode.create, id: id) { RecordMessages.encodeCreate(sampleBody(title: "new"), idempotencyKey: nil, into: &$0) }
        case .createBatch: return RawConnection.frame(Opcode.createBatch, id: id) { RecordMessages.encodeCreateBatch([sampleBody(title: "new")], idempotencyKey: nil, into: &$0) }
        case .get: return RawConnection.frame(Opcode.get, id: id) { $0.writeRecordID(target) }
        case .patch: return RawConnection.frame(Opcode.patch, id: id) { RecordMessages.encodePatch(target, patch, expectedUpdatedAt: nil, into: &$0) }
        case .delete: return RawConnection.frame(Opcode.delete, id: id) { $0.writeRecordID(target) }
        case .restore: return RawConnection.frame(Opcode.restore, id: id) { $0.writeRecordID(target) }
        case .purgePerson: return RawConnection.frame(Opcode.purgePerson, id: id) { RecordMessages.encodePurge(Self.person, dryRun: true, into: &$0) }
        case .list: return RawConnection.frame(Opcode.list, id: id) { ListQueryCodec.encode(ListQuery(includeDeleted: true, limit: 1000), into: &$0) }
        case .stats: return RawConnection.frame(Opcode.stats, id: id)
        }
    }

    func token(_ credential: Credential, _ operation: Operation, server: TestServer) async throws -> String? {
        let now = server.clock.now()
        switch credential {
        case .none: return nil
        case .expired: return try await server.token(lifetime: 60, issuedAt: Timestamp(milliseconds: now.milliseconds - 7_200_000))
        case .notYetValid: return try await server.token(notBefore: Timestamp(milliseconds: now.milliseconds + 3_600_000))
        case .badSignature: return try await server.token(secret: "another-secret-0123456789abcdef-0123456789")
        case .algNone:
            let header = Base64URL.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8))
            let claims = Base64URL.encode(Array(#"{"tenant_id":"tenant_a","sub":"00000000-0000-4000-8000-000000000007","scope":"admin records:read records:write","exp":9999999999}"#.utf8))
            return "\(header).\(claims)."
        case .otherTenant: return try await server.token(tenant: "tenant_b")
        case .otherApp: return try await server.token(app: "app_2")
        case .missingScope:
            let needed: Scopes = switch operation {
            case .get, .list, .stats: [.recordsRead]
            case .purgePerson: [.admin]
            default: [.recordsWrite]
            }
            return try await server.token(scopes: allScopes.subtracting(needed))
        }
    }

    @Test func matrix() async throws {
        let server = try await TestServer.start()
        // tenant_a: one human record and one of app_1, both with a secret title.
        let human = try await server.client()
        let secret = try await human.performance.learningRecords.create(sampleBody(person: Self.person, title: Self.secretTitle)).value
        let app1 = try await server.client(app: "app_1")
        let appRecord = try await app1.performance.learningRecords.create(sampleBody(person: Self.person, title: Self.secretTitle)).value
        await human.shutdown()
        await app1.shutdown()
        let forbiddenBytes = [Array(Self.secretTitle.utf8), RecordID.bytesOf(secret.id), RecordID.bytesOf(appRecord.id)]

        for credential in Credential.allCases {
            for operation in Operation.allCases {
                // Minted before connecting: the server's handshake timeout runs from the connect.
                let credentialToken = try await token(credential, operation, server: server)
                let raw = try RawConnection(port: server.port)
                raw.send(RawConnection.frame(Opcode.hello, id: 1) { HelloRequest(clientName: "matrix").encode(into: &$0) })
                _ = try #require(await raw.receiveFrame())
                if let token = credentialToken {
                    raw.send(RawConnection.frame(Opcode.auth, id: 2) { AuthRequest(token: token).encode(into: &$0) })
                    let auth = try #require(await raw.receiveFrame())
                    let authError = raw.error(of: auth)?.code
                    switch credential {
                    case .expired: #expect(authError == .tokenExpired, "\(credential)")
                    case .notYetValid, .badSignature, .algNone: #expect(authError == .unauthenticated, "\(credential)")
                    default: #expect(authError == nil, "\(credential)")
                    }
                }
                for target in [secret.id, appRecord.id] {
                    raw.send(frame(operation, id: 3, target: target))
                    let reply = try #require(await raw.receiveFrame(), "\(credential) \(operation)")
                    let code = raw.error(of: reply)?.code
                    let context = "\(credential) × \(operation)"
                    switch credential {
                    case .none, .expired, .notYetValid, .badSignature, .algNone:
                        #expect(code == .unauthenticated, "\(context)")
                    case .missingScope:
                        #expect(code == .forbidden, "\(context)")
                    case .otherTenant, .otherApp:
                        switch operation {
                        case .get, .patch, .delete, .restore: #expect(code == .notFound, "\(context)")
                        case .purgePerson:
                            #expect(code == nil, "\(context)")
                            #expect(Array(reply.payload.suffix(8)) == [0, 0, 0, 0, 0, 0, 0, 0], "\(context): nothing of the person is visible")
                        default: #expect(code == nil, "\(context)")
                        }
                    }
                    for bytes in forbiddenBytes {
                        #expect(!reply.payload.contains(subsequence: bytes), "\(context) leaked another tenant's or app's data")
                    }
                }
            }
        }
        // The records are untouched.
        let check = try await server.client()
        #expect(try await check.performance.learningRecords.get(secret.id) == secret)
        #expect(try await check.performance.learningRecords.get(appRecord.id) == appRecord)
        await check.shutdown()
        try await server.stop()
    }

    @Test func reauthenticationMustKeepTheTenant() async throws {
        let server = try await TestServer.start()
        let raw = try RawConnection(port: server.port)
        _ = await raw.handshake(token: try await server.token(tenant: "tenant_a"))
        raw.send(RawConnection.frame(Opcode.auth, id: 5) { AuthRequest(token: "placeholder").encode(into: &$0) })
        #expect(raw.error(of: try #require(await raw.receiveFrame()))?.code == .unauthenticated)
        let other = try await server.token(tenant: "tenant_b")
        raw.send(RawConnection.frame(Opcode.auth, id: 6) { AuthRequest(token: other).encode(into: &$0) })
        #expect(raw.error(of: try #require(await raw.receiveFrame()))?.code == .forbidden)
        let same = try await server.token(tenant: "tenant_a", lifetime: 7200)
        raw.send(RawConnection.frame(Opcode.auth, id: 7) { AuthRequest(token: same).encode(into: &$0) })
        #expect(await raw.receiveFrame()?.header.isError == false)
        try await server.stop()
    }

    @Test func anExpiredSessionGetsTokenExpiredAndCanReauthenticate() async throws {
        let clock = ManualClock(Timestamp(milliseconds: 1_800_000_000_000))
        let server = try await TestServer.start(clock: clock)
        let raw = try RawConnection(port: server.port)
        _ = await raw.handshake(token: try await server.token(lifetime: 60))
        clock.advance(milliseconds: 3_600_000)
        raw.send(RawConnection.frame(Opcode.stats, id: 8))
        #expect(raw.error(of: try #require(await raw.receiveFrame()))?.code == .tokenExpired)
        raw.send(RawConnection.frame(Opcode.auth, id: 9) { AuthRequest(token: "") .encode(into: &$0) })
        _ = await raw.receiveFrame()
        let fresh = try await server.token(lifetime: 600)
        raw.send(RawConnection.frame(Opcode.auth, id: 10) { AuthRequest(token: fresh).encode(into: &$0) })
        #expect(await raw.receiveFrame()?.header.isError == false)
        raw.send(RawConnection.frame(Opcode.stats, id: 11))
        #expect(await raw.receiveFrame()?.header.isError == false)
        try await server.stop()
    }
}

extension RecordID {
    static func bytesOf(_ id: RecordID) -> [UInt8] { id.bytes }
}

extension Array where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool {
        guard !subsequence.isEmpty, subsequence.count <= count else { return false }
        for start in 0...(count - subsequence.count) where self[start] == subsequence[0] {
            if Array(self[start..<(start + subsequence.count)]) == subsequence { return true }
        }
        return false
    }
}
