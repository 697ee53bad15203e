import Foundation
import JWTKit
import LearnStoreClient
import LearnStoreModel
import Testing

/// Tokens signed by an identity provider's private key, verified against its public keys (a JWKS
/// document), end to end through a real server and client.
@Suite struct PublicKeyTokenTests {
    struct Claims: JWTPayload {
        var tenant_id: String
        var sub: String
        var scope: String
        var iat: Double
        var exp: Double
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    static func jwks(_ key: ES256PrivateKey, kid: String) throws -> String {
        let parameters = try #require(key.parameters)
        return #"{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"\#(kid)","x":"\#(parameters.x)","y":"\#(parameters.y)"}]}"#
    }

    static func token(_ key: ES256PrivateKey, kid: String, tenant: String) async throws -> String {
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: key, kid: JWKIdentifier(string: kid))
        let now = Date().timeIntervalSince1970
        return try await signer.sign(
            Claims(tenant_id: tenant, sub: "5f0c1e2a-7b3d-4c9e-9a1b-000000000042", scope: "records:read records:write", iat: now, exp: now + 600),
            kid: JWKIdentifier(string: kid))
    }

    @Test func es256TokenFromTheJWKSIsAcceptedAndStampsItsTenant() async throws {
        let provider = ES256PrivateKey()
        let jwks = try Self.jwks(provider, kid: "idp-1")
        let server = try await TestServer.start { $0.authentication.jwksJSON = jwks }

        let token = try await Self.token(provider, kid: "idp-1", tenant: "tenant_es")
        let client = try await LearnStoreClient(ClientConfiguration(host: "127.0.0.1", port: server.port, token: token, connections: 1))
        let created = try await client.performance.learningRecords.create(
            RecordBody(personID: UUID16(high: 1, low: 2), title: "Signed by the identity provider", score: 90)).value
        #expect(created.tenantID == "tenant_es")
        #expect(try await client.performance.learningRecords.get(created.id).title == "Signed by the identity provider")
        await client.shutdown()

        // The same claims signed by a key the JWKS does not hold are refused, with a typed error.
        let impostor = try await Self.token(ES256PrivateKey(), kid: "idp-1", tenant: "tenant_es")
        let refusal = await #expect(throws: LearnStoreError.self) {
            let refused = try await LearnStoreClient(ClientConfiguration(host: "127.0.0.1", port: server.port, token: impostor, connections: 1))
            defer { Task { await refused.shutdown() } }
            _ = try await refused.performance.learningRecords.get(created.id)
        }
        #expect(refusal?.code == .unauthenticated, "\(String(describing: refusal))")
        try await server.stop()
    }
}
