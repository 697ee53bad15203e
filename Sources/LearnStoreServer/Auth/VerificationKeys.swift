import Crypto
import Foundation
import JWTKit
import LearnStoreModel

/// The keys the server trusts, each bound to the one algorithm it was configured for. A token is
/// tried only against the keys its header selects: the key its `kid` names (a `kid` no key has is
/// refused, never tried against other keys), or without a `kid`, every key of the header's `alg`.
struct VerificationKeys: Sendable {
    struct Key: Sendable {
        var keyID: String?
        var algorithm: CompactToken.Algorithm
        /// A collection holding only this key, so jwt-kit cannot fall back to another one.
        var verifier: JWTKeyCollection
        /// An HS256 key, keyed once, for checking a signature without suspending (`TokenVerifier.verifyNow`):
        /// a copy of it continues from the key's padded blocks instead of hashing the secret again.
        var hmac: HMAC<SHA256>?
    }

    private(set) var keys: [Key] = []

    static func load(hmacSecrets: [String], jwksJSON: String?) async throws(LearnStoreError) -> VerificationKeys {
        var set = VerificationKeys()
        for secret in hmacSecrets {
            let verifier = JWTKeyCollection()
            await verifier.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            set.keys.append(Key(keyID: nil, algorithm: .hs256, verifier: verifier, hmac: HMAC<SHA256>(key: SymmetricKey(data: Array(secret.utf8)))))
        }
        if let jwksJSON {
            for jwk in try parse(jwks: jwksJSON) {
                guard let kid = jwk.keyIdentifier?.string, let algorithm = jwk.algorithm.flatMap({ CompactToken.Algorithm(rawValue: $0.rawValue) }) else {
                    continue  // parse(jwks:) guarantees both
                }
                guard !set.keys.contains(where: { $0.keyID == kid }) else {
                    throw LearnStoreError(.validation, "the JWKS holds two keys with kid \(kid)")
                }
                let verifier = JWTKeyCollection()
                do { try await verifier.add(jwk: jwk) } catch {
                    throw LearnStoreError(.validation, "the JWKS key \(kid) is not a usable \(algorithm.rawValue) public key")
                }
                set.keys.append(Key(keyID: kid, algorithm: algorithm, verifier: verifier, hmac: nil))
            }
        }
        return set
    }

    /// The keys that may verify a token with this header, or the reason none may.
    func candidates(for token: CompactToken) throws(LearnStoreError) -> [Key] {
        if let kid = token.keyID {
            guard let key = keys.first(where: { $0.keyID == kid }) else {
                throw LearnStoreError(.unauthenticated, "the token names key \(kid.utf8.count <= 64 ? kid : "(a long kid)"), which this server does not hold")
            }
            guard key.algorithm == token.algorithm else {
                throw LearnStoreError(.unauthenticated, "the token says \(token.algorithm.rawValue) but key \(kid) is an \(key.algorithm.rawValue) key")
            }
            return [key]
        }
        let matching = keys.filter { $0.algorithm == token.algorithm }
        guard !matching.isEmpty else {
            throw LearnStoreError(.unauthenticated, "this server holds no \(token.algorithm.rawValue) key to verify the token with")
        }
        return matching
    }

    /// Each JWKS entry as a JWK with its `kid` and its algorithm set: an entry without `alg` gets
    /// the one its key type implies (RSA → RS256, EC P-256 → ES256), so the header can never pick it.
    static func parse(jwks text: String) throws(LearnStoreError) -> [JWK] {
        let document: JWKS
        do { document = try JSONDecoder().decode(JWKS.self, from: Data(text.utf8)) } catch {
            throw LearnStoreError(.validation, "the JWKS is not a JSON object with a keys array of JWKs")
        }
        var keys: [JWK] = []
        for (index, entry) in document.keys.enumerated() {
            var jwk = entry
            guard let kid = jwk.keyIdentifier?.string, !kid.isEmpty else {
                throw LearnStoreError(.validation, "JWKS key \(index) has no kid")
            }
            let implied: JWK.Algorithm?
            switch (jwk.keyType.rawValue, jwk.curve?.rawValue) {
            case ("RSA", _): implied = .rs256
            case ("EC", "P-256"): implied = .es256
            default: implied = nil
            }
            guard let implied else {
                throw LearnStoreError(.validation, "JWKS key \(kid) is neither an RSA nor an EC P-256 key")
            }
            if let stated = jwk.algorithm, stated.rawValue != implied.rawValue {
                throw LearnStoreError(.validation, "JWKS key \(kid) says alg \(stated.rawValue); an \(jwk.keyType.rawValue) key here verifies only \(implied.rawValue)")
            }
            jwk.algorithm = implied
            keys.append(jwk)
        }
        return keys
    }
}
