import JWTKit
import LearnStoreModel

/// Signs tokens with an HS256 secret (`learnstore token mint`, the development mode, the tools and tests).
/// A module of its own so that a tool that only needs a token does not link the server.
public struct TokenMinter: Sendable {
    let secret: String
    public init(secret: String) { self.secret = secret }

    public func mint(tenantID: String, person: UUID16, appID: String? = nil, scopes: Scopes,
                     issuedAt: Timestamp, lifetimeSeconds: Int64, audience: String? = nil, issuer: String? = nil,
                     notBefore: Timestamp? = nil) async throws -> String {
        let (expires, overflow) = (issuedAt.milliseconds / 1000).addingReportingOverflow(lifetimeSeconds)
        let (expiresMilliseconds, millisecondsOverflow) = expires.multipliedReportingOverflow(by: 1000)
        // The verifier refuses an `exp` outside the documented time range, so such a token would be useless.
        guard !overflow, !millisecondsOverflow, Timestamp.documentedRange.contains(expiresMilliseconds) else {
            throw LearnStoreError.validation("a lifetime of \(lifetimeSeconds) seconds ends after 9999-12-31", field: "ttl")
        }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        let claims = MintedClaims(
            tenant_id: tenantID, sub: person.description, app_id: appID, scope: scopes.description,
            exp: Double(expires), nbf: notBefore.map { Double($0.milliseconds / 1000) },
            iat: Double(issuedAt.milliseconds / 1000), iss: issuer, aud: audience)
        return try await keys.sign(claims)
    }
}

/// The claims ``TokenMinter`` writes, named as PROTOCOL.md §4.2 names them.
private struct MintedClaims: JWTPayload {
    var tenant_id: String
    var sub: String
    var app_id: String?
    var scope: String
    var exp: Double
    var nbf: Double?
    var iat: Double
    var iss: String?
    var aud: String?
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
