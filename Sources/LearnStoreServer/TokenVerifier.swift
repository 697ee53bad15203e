import Foundation
import JWTKit
import LearnStoreModel

/// The claims LearnStore reads from a JWT. All optional here, so a missing claim is reported by
/// name instead of as a decoding failure.
struct LearnStoreClaims: JWTPayload {
    var tenant_id: String?
    var sub: String?
    var app_id: String?
    var scope: String?
    var exp: Double?
    var nbf: Double?
    var iat: Double?
    var iss: String?
    var aud: AudienceValue?

    /// Claims are checked by ``TokenVerifier`` against the server's injected clock and leeway.
    func verify(using algorithm: some JWTAlgorithm) async throws {}

    enum AudienceValue: Codable, Sendable {
        case one(String)
        case many([String])
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let one = try? container.decode(String.self) { self = .one(one) } else { self = .many(try container.decode([String].self)) }
        }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .one(let value): try container.encode(value)
            case .many(let values): try container.encode(values)
            }
        }
        var values: [String] { switch self { case .one(let v): [v]; case .many(let v): v } }
    }
}

/// Verifies JWTs with jwt-kit and turns their claims into a ``CallerIdentity``.
public final class TokenVerifier: Sendable {
    public static let acceptedAlgorithms: Set<String> = ["HS256", "RS256", "ES256"]

    private let keys: JWTKeyCollection
    private let configuration: AuthenticationConfiguration

    public init(configuration: AuthenticationConfiguration) async throws {
        guard configuration.hasKeys else {
            throw LearnStoreError(.unauthenticated, "no token verification key is configured")
        }
        self.configuration = configuration
        let keys = JWTKeyCollection()
        for secret in configuration.hmacSecrets {
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        }
        if let jwks = configuration.jwksJSON {
            try await keys.add(jwksJSON: jwks)
        }
        self.keys = keys
    }

    /// The identity in a valid token and when it expires; typed errors otherwise.
    public func verify(_ token: String, now: Timestamp) async throws(LearnStoreError) -> (CallerIdentity, Timestamp) {
        try Self.checkHeader(token)
        let claims: LearnStoreClaims
        do {
            claims = try await keys.verify(token, as: LearnStoreClaims.self)
        } catch {
            throw LearnStoreError(.unauthenticated, "the token is not valid: \(Self.describe(error))")
        }
        return try check(claims, now: now)
    }

    /// Rejects `alg: none` and anything but HS256/RS256/ES256 before any verification.
    static func checkHeader(_ token: String) throws(LearnStoreError) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[2].isEmpty else {
            throw LearnStoreError(.unauthenticated, "the token is not a signed JWT (header.payload.signature)")
        }
        guard let headerBytes = Base64URL.decode(String(parts[0])),
            let header = try? JSONValue.parse(headerBytes), let alg = header["alg"]?.stringValue
        else {
            throw LearnStoreError(.unauthenticated, "the token header is not valid base64url JSON with an alg")
        }
        guard acceptedAlgorithms.contains(alg) else {
            throw LearnStoreError(.unauthenticated, "the token algorithm \(alg) is not accepted (HS256, RS256, ES256 are)")
        }
    }

    /// The longest leeway honoured; it keeps every sum below far from overflow whatever the configuration holds.
    static let maximumLeewaySeconds: Int64 = 86_400

    /// A NumericDate claim (seconds since the epoch, maybe fractional) as an instant in the documented
    /// `time` range, or nil: NaN, infinities and values outside it name no instant this server can
    /// compare or print, and converting them to Int64 unchecked would trap.
    static func instant(ofClaim seconds: Double) -> Timestamp? {
        guard seconds.isFinite, let milliseconds = Int64(exactly: (seconds * 1000).rounded(.down)),
            Timestamp.documentedRange.contains(milliseconds)
        else { return nil }
        return Timestamp(milliseconds: milliseconds)
    }

    static func claimInstant(_ name: String, _ seconds: Double) throws(LearnStoreError) -> Timestamp {
        guard let instant = instant(ofClaim: seconds) else {
            throw LearnStoreError(.unauthenticated, "the token's \(name) claim \(seconds) is not a time in 0001-01-01 ... 9999-12-31 (seconds since 1970)")
        }
        return instant
    }

    func check(_ claims: LearnStoreClaims, now: Timestamp) throws(LearnStoreError) -> (CallerIdentity, Timestamp) {
        let leeway = min(max(configuration.leewaySeconds, 0), Self.maximumLeewaySeconds) * 1000
        guard let tenant = claims.tenant_id, CallerIdentity.isValidTenantID(tenant) else {
            throw LearnStoreError(.unauthenticated, "the token lacks a valid tenant_id claim (1-64 of A-Z a-z 0-9 _ - .)")
        }
        guard let sub = claims.sub, let person = UUID16(sub) else {
            throw LearnStoreError(.unauthenticated, "the token's sub claim must be the person's UUID")
        }
        guard let exp = claims.exp else { throw LearnStoreError(.unauthenticated, "the token has no exp claim") }
        let expires = try Self.claimInstant("exp", exp)
        // `now` comes from the server's clock; with every instant in the documented range and the
        // leeway bounded above, no sum here can overflow.
        if now.milliseconds >= expires.milliseconds + leeway {
            throw LearnStoreError(.tokenExpired, "the token expired at \(expires)")
        }
        if let nbf = claims.nbf {
            let notBefore = try Self.claimInstant("nbf", nbf)
            if now.milliseconds + leeway < notBefore.milliseconds {
                throw LearnStoreError(.unauthenticated, "the token is not valid before \(notBefore)")
            }
        }
        if let iat = claims.iat, now.milliseconds + leeway < (try Self.claimInstant("iat", iat)).milliseconds {
            throw LearnStoreError(.unauthenticated, "the token was issued in the future")
        }
        if let audience = configuration.audience, !(claims.aud?.values.contains(audience) ?? false) {
            throw LearnStoreError(.unauthenticated, "the token is not for audience \(audience)")
        }
        if let issuer = configuration.issuer, claims.iss != issuer {
            throw LearnStoreError(.unauthenticated, "the token is not from issuer \(issuer)")
        }
        if let app = claims.app_id, app.isEmpty || app.utf8.count > 128 {
            throw LearnStoreError(.unauthenticated, "the token's app_id claim must be 1-128 bytes")
        }
        let identity = CallerIdentity(tenantID: tenant, appID: claims.app_id, personID: person, scopes: Scopes(claim: claims.scope ?? ""))
        // The AUTH response's expires_at is a `time`, so it stays in the documented range.
        return (identity, Timestamp(milliseconds: min(expires.milliseconds + leeway, Timestamp.maximum.milliseconds)))
    }

    static func describe(_ error: any Error) -> String {
        return "\(error)"
    }
}

/// Signs tokens with an HS256 secret (`learnstore token mint`, the development mode, tests).
public struct TokenMinter: Sendable {
    let secret: String
    public init(secret: String) { self.secret = secret }

    public func mint(tenantID: String, person: UUID16, appID: String? = nil, scopes: Scopes,
                     issuedAt: Timestamp, lifetimeSeconds: Int64, audience: String? = nil, issuer: String? = nil,
                     notBefore: Timestamp? = nil) async throws -> String {
        let (expires, overflow) = (issuedAt.milliseconds / 1000).addingReportingOverflow(lifetimeSeconds)
        guard !overflow, TokenVerifier.instant(ofClaim: Double(expires)) != nil else {
            throw LearnStoreError.validation("a lifetime of \(lifetimeSeconds) seconds ends after 9999-12-31", field: "ttl")
        }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        let claims = LearnStoreClaims(
            tenant_id: tenantID, sub: person.description, app_id: appID, scope: scopes.description,
            exp: Double(expires), nbf: notBefore.map { Double($0.milliseconds / 1000) },
            iat: Double(issuedAt.milliseconds / 1000), iss: issuer, aud: audience.map { .one($0) })
        return try await keys.sign(claims)
    }
}
