import Crypto
import Foundation
import JWTKit
import LearnStoreModel

/// A token that verified: who it names, when it expires, and until when the server accepts it.
public struct VerifiedToken: Sendable, Equatable {
    public var identity: CallerIdentity
    /// The token's own `exp` (AUTH's `expires_at`).
    public var expiresAt: Timestamp
    /// `exp` plus the configured clock leeway: requests after this instant get TOKEN_EXPIRED.
    public var acceptedUntil: Timestamp
}

/// Verifies JWTs: the header picks the one key (or the keys of one algorithm) that may verify it,
/// jwt-kit checks the signature with that key alone, and the claims are read by this server's rules.
public final class TokenVerifier: Sendable {
    /// The longest clock leeway a server accepts; it keeps every sum below far from overflow.
    public static let maximumLeewaySeconds: Int64 = 86_400

    private let keys: VerificationKeys
    private let configuration: AuthenticationConfiguration
    /// The tokens of one issuer share a header: it is read once, not once per AUTH.
    private let headers = CompactToken.HeaderCache()

    public init(configuration: AuthenticationConfiguration) async throws(LearnStoreError) {
        guard configuration.hasKeys else {
            throw LearnStoreError(.unauthenticated, "no token verification key is configured")
        }
        guard (0...Self.maximumLeewaySeconds).contains(configuration.leewaySeconds) else {
            throw LearnStoreError.validation("the token leeway must be 0...\(Self.maximumLeewaySeconds) seconds", field: "leeway")
        }
        self.configuration = configuration
        self.keys = try await VerificationKeys.load(hmacSecrets: configuration.hmacSecrets, jwksJSON: configuration.jwksJSON)
    }

    /// The identity in a valid token and its expiry; typed errors otherwise.
    public func verify(_ token: String, now: Timestamp) async throws(LearnStoreError) -> VerifiedToken {
        let parsed = try CompactToken.parse(token, headers: headers)
        var verified = false
        for key in try keys.candidates(for: parsed) {
            do {
                _ = try await key.verifier.verify(token, as: SignatureOnly.self)
                verified = true
                break
            } catch {
                continue
            }
        }
        guard verified else {
            throw Self.signatureRefused(parsed)
        }
        return try check(TokenClaims.parse(parsed.payload), now: now)
    }

    /// The same verification on the calling thread, for a token only HS256 secrets may verify: an
    /// HMAC needs no suspension, so AUTH answers in the event-loop pass that read it. Nil when the
    /// header selects a public key (RS256, ES256), which `verify` checks through jwt-kit.
    public func verifyNow(_ token: String, now: Timestamp) -> Result<VerifiedToken, LearnStoreError>? {
        do throws(LearnStoreError) {
            let parsed = try CompactToken.parse(token, headers: headers)
            guard parsed.algorithm == .hs256 else { return nil }
            let candidates = try keys.candidates(for: parsed)
            var verified = false
            for key in candidates {
                guard var mac = key.hmac else { return nil }
                parsed.signingInput.withContiguousStorageIfAvailable { mac.update(data: UnsafeRawBufferPointer($0)) }
                    ?? mac.update(data: Array(parsed.signingInput))
                // `==` between a MAC and bytes is swift-crypto's constant-time comparison.
                if let signature = parsed.signature, mac.finalize() == signature {
                    verified = true
                    break
                }
            }
            guard verified else {
                throw Self.signatureRefused(parsed)
            }
            return .success(try check(TokenClaims.parse(parsed.payload), now: now))
        } catch {
            return .failure(error)
        }
    }

    static func signatureRefused(_ token: CompactToken) -> LearnStoreError {
        LearnStoreError(.unauthenticated, "the token's signature does not verify with the server's \(token.keyID.map { "key \($0)" } ?? "\(token.algorithm.rawValue) keys")")
    }

    func check(_ claims: TokenClaims, now: Timestamp) throws(LearnStoreError) -> VerifiedToken {
        // Every instant is in the documented range and the leeway at most a day: no sum overflows.
        let leeway = configuration.leewaySeconds * 1000
        let acceptedUntil = Timestamp(milliseconds: claims.expires.milliseconds + leeway)
        if now.milliseconds >= acceptedUntil.milliseconds {
            throw LearnStoreError(.tokenExpired, "the token expired at \(claims.expires)")
        }
        if let notBefore = claims.notBefore, now.milliseconds + leeway < notBefore.milliseconds {
            throw LearnStoreError(.unauthenticated, "the token is not valid before \(notBefore)")
        }
        if let issuedAt = claims.issuedAt, now.milliseconds + leeway < issuedAt.milliseconds {
            throw LearnStoreError(.unauthenticated, "the token was issued in the future (iat \(issuedAt))")
        }
        if let audience = configuration.audience, !(claims.audiences ?? []).contains(audience) {
            throw LearnStoreError(.unauthenticated, "the token is not for audience \(audience)")
        }
        if let issuer = configuration.issuer, claims.issuer != issuer {
            throw LearnStoreError(.unauthenticated, "the token is not from issuer \(issuer)")
        }
        let identity = CallerIdentity(tenantID: claims.tenantID, appID: claims.appID, personID: claims.person, scopes: claims.scopes)
        return VerifiedToken(identity: identity, expiresAt: claims.expires, acceptedUntil: acceptedUntil)
    }
}

/// jwt-kit checks only the signature; ``TokenClaims`` reads the payload afterwards.
private struct SignatureOnly: JWTPayload {
    init(from decoder: any Decoder) throws {}
    func encode(to encoder: any Encoder) throws {}
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
