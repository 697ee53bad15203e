import Foundation
import JWTKit
import LearnStoreModel
import LearnStoreTokens
import Testing
@testable import LearnStoreServer

/// The header decides which key may verify a token, and only that key does (PROTOCOL.md §4.2):
/// tokens crafted byte by byte, signed with real keys, against a verifier with an HS256 secret and a
/// JWKS of one RSA and one EC P-256 key.
@Suite struct TokenVerifierTests {
    static let secret = "verifier-test-secret-0123456789abcdef"
    /// 2026-01-01T00:00:00Z.
    static let now = Timestamp(milliseconds: 1_767_225_600_000)
    static let nowSeconds = 1_767_225_600
    static let ecKey = ES256PrivateKey()
    /// A 2048-bit test key made for these tests; it signs nothing else.
    static let rsaPEM = """
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC8jquDOM/J3e6Y
fcPXKn74pyHfnO+rsD7MRYCo1jt1Kdmq8/ad/pa0msFxN3ioUFwKIg2C5xIi2Lrg
Opqq9FMnm5FTVtdxfFIKkL6ROqyu7Prid3O0ZRNtlX+27AYRqH6PCbNtaGjxKglB
uvMoqDxM9CBnXh7f8d97+En+j93b8NDDR+HvPeZPDTS3Pe4VIKyp3UFwrHoi2aBU
zOhjjvYub9lTp+nKr1iM206a8Q+3tk/7Am+QXuFpICfWiVP6/wuPBPqCrGSyW3dv
SV70OlfR2NJyNxhklsCIzDcG+Je7RmqhO152zq/45eDXhESFj1g8duYx081tFMPN
WTNbwhoTAgMBAAECggEADqufBo+mAxPEW5L1aMlCpcADL627LAWDbUs/DmPUrnH6
IIXouzQyr4yW3mMtfRL7hkJOANBPpexs5cNJg2GNErjU3sIT8x10GKRYX15MTzPa
9UHL+84da9pE3IuSkU8lwaVEk4+bEqBtpfKQtqoYPviDiOdWyZ+8/p07zJWO8myw
uJ0jNCW8UOqZ6oC1DhlC8O6cu92T0eZ6MBRAMmrqnc/fYBiXrmRkeUUd6SKOhZeI
lqQA3jx44OCTmW6EHsXhNQAaisXmrXjyEa13KN1ukk11WXwKtdDJZI9+6wc4pTGl
UiAVBPiD66ii7hR96Jezc7CQ1Gv8qYgUhgT5unJ9EQKBgQD2KbaTxvD6b2kGJw/z
JlkRGglLg4fBOiv2RUYvLJ7hoatBjPnY6Zm/sIowZyDgjARltdAG0LDswiZyAShZ
3DvNpZT3NUIjvVyyOxM2uVAIA0qqIqt52EGm0f6ldePwxFgTrvNHHDe8wRPrRXPk
X0nyV4bY48A32NspiYyMj0E/OQKBgQDEF6RK1Fv1uz8GfmAboGRy734gE0jJM6vN
YK/tvyQKrEXQQmOST5V6c+i7FVCT+gnd6TCgXWjQ/Q5FUlXnbdZFWS4qa0PsisdD
/inDs4fJKvuftAm6EXQeA6yCU/kbBRMQhNzYF3zZM+BJ4WsZJ3IHYxqzb9/RWSVE
NPavw7TXqwKBgHBMs1hTZ9g4P0dpRqN8mSFuKVNj2+jQ6wFctRoMVydEI+axs8G7
QELs/P377knCVrc37IFPb4dzQyq7UHc+O6IjqgPlLhkz6Df/L1LF07b0GXnoeyYI
/Fpobq15TNWoHS5Nn/qO6vaXdsjcVHSY7Bk8yO3laOmRatpWP+JX8EIxAoGBALTU
aHlpI/ST3CcM22wemQM0v8asge6pa8FVbGd+YKpG+4p17oS6R0pJIVGE8m3Dot21
cVYxTbuL4WEj8Hwe2f3Ro7USfezgfanB9Jm4MXvd23UG/gFMnxwenzMAZTP5lf8h
xtavsj5KjIcVDUKBEbKmPbVDcc8IukkP3n1vqJFJAoGBAKypLi86YdW9f2jqWNxq
HCsxqt1QlUuTnHhrbD3yN9BuOGs6sGqR+wtJiJGhLKxCVxJnEkNCHrfHc8kxGm+/
Zoj3TAp6orbp8wO/VD4dr6QYeYw7XzZmRzXpc5PkOdqGCj1ttvhwJqiuopjoCDmG
mkVz1gEmyBDIyYfO8qmf/RjG
-----END PRIVATE KEY-----
"""
    static let rsaModulus = "vI6rgzjPyd3umH3D1yp--Kch35zvq7A-zEWAqNY7dSnZqvP2nf6WtJrBcTd4qFBcCiINgucSIti64DqaqvRTJ5uRU1bXcXxSCpC-kTqsruz64ndztGUTbZV_tuwGEah-jwmzbWho8SoJQbrzKKg8TPQgZ14e3_Hfe_hJ_o_d2_DQw0fh7z3mTw00tz3uFSCsqd1BcKx6ItmgVMzoY472Lm_ZU6fpyq9YjNtOmvEPt7ZP-wJvkF7haSAn1olT-v8LjwT6gqxkslt3b0le9DpX0djScjcYZJbAiMw3BviXu0ZqoTteds6v-OXg14REhY9YPHbmMdPNbRTDzVkzW8IaEw"

    static var jwks: String {
        get throws {
            let ec = try #require(ecKey.parameters)
            return #"{"keys":[{"kty":"RSA","kid":"rsa-1","use":"sig","n":"\#(rsaModulus)","e":"AQAB"},"#
                + #"{"kty":"EC","crv":"P-256","kid":"ec-1","x":"\#(ec.x)","y":"\#(ec.y)"}]}"#
        }
    }

    static func verifier(leeway: Int64 = 30, jwks: String? = nil) async throws -> TokenVerifier {
        var configuration = AuthenticationConfiguration()
        configuration.hmacSecrets = [secret]
        configuration.jwksJSON = try jwks ?? Self.jwks
        configuration.leewaySeconds = leeway
        return try await TokenVerifier(configuration: configuration)
    }

    static func claims(exp: Int = nowSeconds + 3600, _ extra: String = "") -> String {
        #"{"tenant_id":"acme","sub":"5f0c1e2a-7b3d-4c9e-9a1b-000000000042","scope":"records:read","exp":\#(exp)\#(extra)}"#
    }

    enum Signer { case hmac, rsa, ec }

    static func key(_ signer: Signer) async throws -> any JWTAlgorithm {
        let keys = JWTKeyCollection()
        switch signer {
        case .hmac: await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        case .rsa: await keys.add(rsa: try Insecure.RSA.PrivateKey(pem: rsaPEM), digestAlgorithm: .sha256)
        case .ec: await keys.add(ecdsa: ecKey)
        }
        return try await keys.getKey()
    }

    /// A compact JWS of exactly these header and payload bytes.
    static func token(_ header: String, _ payload: String = claims(), signedWith signer: Signer) async throws -> String {
        let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
        return input + "." + Base64URL.encode(try await key(signer).sign(Array(input.utf8)))
    }

    static func refusal(_ token: String, leeway: Int64 = 30) async throws -> LearnStoreError? {
        let verifier = try await verifier(leeway: leeway)
        do throws(LearnStoreError) { _ = try await verifier.verify(token, now: now) } catch { return error }
        return nil
    }

    @Test(arguments: [
        (#"{"alg":"HS256","typ":"JWT"}"#, Signer.hmac), (#"{"alg":"RS256","kid":"rsa-1"}"#, .rsa), (#"{"alg":"RS256"}"#, .rsa),
        (#"{"alg":"ES256","kid":"ec-1"}"#, .ec), (#"{"alg":"ES256"}"#, .ec),
    ])
    func eachAlgorithmVerifiesWithItsOwnKeyWithOrWithoutAKid(header: String, signer: Signer) async throws {
        let verified = try await Self.verifier().verify(try await Self.token(header, signedWith: signer), now: Self.now)
        #expect(verified.identity.tenantID == "acme")
        #expect(verified.identity.scopes == [.recordsRead])
        #expect(verified.expiresAt == Timestamp(milliseconds: Int64(Self.nowSeconds + 3600) * 1000))
    }

    /// The minter writes its JSON itself: its tokens must verify with jwt-kit and with this server, and
    /// strings JSON must escape come back as they went in.
    @Test func mintedTokensVerifyWithJWTKitAndTheServer() async throws {
        struct Claims: JWTPayload {
            var tenant_id: String
            var sub: String
            var app_id: String?
            var scope: String
            var exp: Int
            var nbf: Int?
            var iat: Int
            var iss: String?
            var aud: String?
            func verify(using algorithm: some JWTAlgorithm) async throws {}
        }
        let person = UUID16(high: 0x5F0C_1E2A_7B3D_4C9E, low: 0x9A1B_0000_0000_0042)
        let app = "app \"quoted\" \\ back\u{1}slash é"
        let token = try TokenMinter(secret: Self.secret).mintNow(
            tenantID: "acme", person: person, appID: app, scopes: [.recordsRead, .admin], issuedAt: Self.now,
            lifetimeSeconds: 600, audience: "aud \"x\"", issuer: "iss\n", notBefore: Self.now)
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: Self.secret), digestAlgorithm: .sha256)
        let decoded = try await keys.verify(token, as: Claims.self)
        #expect(decoded.tenant_id == "acme" && decoded.sub == person.description && decoded.app_id == app)
        #expect(decoded.scope == "records:read admin" && decoded.exp == Self.nowSeconds + 600 && decoded.iat == Self.nowSeconds)
        #expect(decoded.nbf == Self.nowSeconds && decoded.iss == "iss\n" && decoded.aud == "aud \"x\"")
        let verified = try #require(try await Self.verifier().verifyNow(token, now: Self.now)).get()
        #expect(verified.identity == CallerIdentity(tenantID: "acme", appID: app, personID: person, scopes: [.recordsRead, .admin]))
    }

    /// A header is read once per verifier and remembered: every later token with the same header, signed
    /// or forged, gets the answer a fresh verifier gives; a table already full still answers, by reading.
    @Test func aRememberedHeaderDecidesAsReadingItDoes() async throws {
        let headers = [#"{"alg":"HS256","typ":"JWT"}"#, #"{"alg":"HS256"}"#, #"{"alg":"HS256","kid":"another"}"#, #"{"alg":"none"}"#,
                       #"{"alg":"HS256","alg":"HS256"}"#, #"{"alg":"HS256","crit":["b64"]}"#]
        var tokens: [String] = []
        for header in headers {
            tokens.append(try await Self.token(header, signedWith: .hmac))
            tokens.append(try await Self.token(header, signedWith: .rsa))
            tokens.append(try await Self.token(header, Self.claims(exp: Self.nowSeconds - 3600), signedWith: .hmac))
        }
        for index in 0..<CompactToken.HeaderCache.capacity + 8 {
            tokens.append(try await Self.token(#"{"alg":"HS256","n":\#(index)}"#, signedWith: .hmac))
        }
        let remembering = try await Self.verifier()
        for pass in 1...2 {
            for token in tokens {
                let fresh = try await Self.verifier().verifyNow(token, now: Self.now)
                #expect(remembering.verifyNow(token, now: Self.now) == fresh, "pass \(pass): \(token)")
            }
        }
    }

    /// AUTH checks an HS256 token without suspending (`verifyNow`); it must answer exactly as the
    /// jwt-kit path does, and leave public-key tokens to it.
    @Test func theImmediateHMACCheckAnswersAsJWTKitDoes() async throws {
        let verifier = try await Self.verifier()
        let valid = try await Self.token(#"{"alg":"HS256","typ":"JWT"}"#, signedWith: .hmac)
        let parts = valid.split(separator: ".").map(String.init)
        let tampered = parts[0] + "." + Base64URL.encode(Array(Self.claims(exp: Self.nowSeconds + 7200).utf8)) + "." + parts[2]
        let cases: [(String, String)] = [
            ("valid", valid),
            ("expired", try await Self.token(#"{"alg":"HS256"}"#, Self.claims(exp: Self.nowSeconds - 3600), signedWith: .hmac)),
            ("tampered payload", tampered),
            ("truncated signature", String(valid.dropLast(3))),
            ("signature not base64url", parts[0] + "." + parts[1] + ".!!!"),
            ("signed by the RSA key", try await Self.token(#"{"alg":"HS256"}"#, signedWith: .rsa)),
            ("unknown kid", try await Self.token(#"{"alg":"HS256","kid":"another"}"#, signedWith: .hmac)),
            ("bad claims", try await Self.token(#"{"alg":"HS256"}"#, #"{"tenant_id":"acme"}"#, signedWith: .hmac)),
        ]
        for (name, token) in cases {
            let immediate = try #require(verifier.verifyNow(token, now: Self.now), "\(name): an HS256 header is checked at once")
            let awaited: Result<VerifiedToken, LearnStoreError>
            do throws(LearnStoreError) { awaited = .success(try await verifier.verify(token, now: Self.now)) } catch { awaited = .failure(error) }
            #expect(immediate == awaited, "\(name)")
        }
        #expect(verifier.verifyNow(try await Self.token(#"{"alg":"RS256"}"#, signedWith: .rsa), now: Self.now) == nil)
        #expect(verifier.verifyNow(try await Self.token(#"{"alg":"ES256","kid":"ec-1"}"#, signedWith: .ec), now: Self.now) == nil)
        if case .success = verifier.verifyNow(valid, now: Self.now) {} else { Issue.record("the valid token was refused") }
    }

    @Test(arguments: [
        (#"{"alg":"RS256"}"#, Signer.hmac, "signature does not verify"),
        (#"{"alg":"ES256"}"#, .hmac, "signature does not verify"),
        (#"{"alg":"RS256","kid":"ec-1"}"#, .ec, "key ec-1 is an ES256 key"),
        (#"{"alg":"RS256"}"#, .ec, "signature does not verify"),
        (#"{"alg":"ES256","kid":"rsa-1"}"#, .rsa, "key rsa-1 is an RS256 key"),
        (#"{"alg":"HS256","kid":"rsa-1"}"#, .hmac, "key rsa-1 is an RS256 key"),
    ])
    func aSignatureOfAnotherAlgorithmThanTheHeaderSaysIsRefused(header: String, signer: Signer, reason: String) async throws {
        let error = try #require(try await Self.refusal(try await Self.token(header, signedWith: signer)))
        #expect(error.code == .unauthenticated)
        #expect(error.message.contains(reason), "\(error.message)")
    }

    @Test(arguments: [(#"{"alg":"HS256","kid":"another"}"#, Signer.hmac), (#"{"alg":"ES256","kid":"ec-2"}"#, .ec)])
    func anUnknownKidIsRefusedEvenWhenAnotherKeyWouldVerify(header: String, signer: Signer) async throws {
        let error = try #require(try await Self.refusal(try await Self.token(header, signedWith: signer)))
        #expect(error.code == .unauthenticated)
        #expect(error.message.contains("does not hold"), "\(error.message)")
    }

    @Test(arguments: [
        (#"{"alg":"HS256","crit":["exp"]}"#, "critical extensions"),
        (#"{"alg":"HS256","crit":[]}"#, "critical extensions"),
        (#"{"alg":"HS256","alg":"RS256"}"#, "repeats the member alg"),
        (#"{"alg":"none"}"#, "is not accepted"),
        (#"{"alg":"HS512"}"#, "is not accepted"),
        (#"{"alg":7}"#, "is not accepted"),
        (#"{"typ":"JWT"}"#, "has no alg"),
        (#"["alg","HS256"]"#, "not a JSON object"),
        (#"{"alg":"HS256","kid":""}"#, "kid must be a non-empty string"),
    ])
    func aHeaderThisServerCannotActOnIsRefusedBeforeAnyKeyIsTried(header: String, reason: String) async throws {
        let error = try #require(try await Self.refusal(try await Self.token(header, signedWith: .hmac)))
        #expect(error.code == .unauthenticated)
        #expect(error.message.contains(reason), "\(error.message)")
    }

    @Test(arguments: [
        (#"{"tenant_id":7,"sub":"5f0c1e2a-7b3d-4c9e-9a1b-000000000042","exp":1767229200}"#, "tenant_id"),
        (#"{"tenant_id":"acme","sub":"person-1","exp":1767229200}"#, "sub claim must be the person's UUID"),
        (#"{"tenant_id":"acme","sub":"5f0c1e2a-7b3d-4c9e-9a1b-000000000042","scope":["admin"],"exp":1767229200}"#, "scope claim must be a string"),
        (#"{"tenant_id":"acme","sub":"5f0c1e2a-7b3d-4c9e-9a1b-000000000042","app_id":"","exp":1767229200}"#, "app_id claim must be 1-128 bytes"),
        (#"{"tenant_id":"acme","sub":"5f0c1e2a-7b3d-4c9e-9a1b-000000000042","exp":"tomorrow"}"#, "exp claim \"tomorrow\" is not a time"),
        (#"{"tenant_id":"acme","sub":"5f0c1e2a-7b3d-4c9e-9a1b-000000000042"}"#, "has no exp claim"),
        (#"{"tenant_id":"acme","sub":"5f0c1e2a-7b3d-4c9e-9a1b-000000000042","exp":1767229200,"aud":5}"#, "aud claim must be"),
        (#"{"tenant_id":"acme","tenant_id":"other","sub":"5f0c1e2a-7b3d-4c9e-9a1b-000000000042","exp":1767229200}"#, "repeats the member tenant_id"),
        (#"{"tenant_id":"acme","sub":"5f0c1e2a-7b3d-4c9e-9a1b-000000000042","exp":1e400}"#, "exp claim"),
    ])
    func aBadClaimIsNamedByItsRuleNotByADecoder(payload: String, reason: String) async throws {
        let error = try #require(try await Self.refusal(try await Self.token(#"{"alg":"HS256"}"#, payload, signedWith: .hmac)))
        #expect(error.code == .unauthenticated)
        #expect(error.message.contains(reason), "\(error.message)")
        #expect(!error.message.contains("Error("), "no library type in the message: \(error.message)")
    }

    @Test func theLeewayStretchesExpAndNbfAlikeAndExpiresAtStaysTheTokensExp() async throws {
        let expiredRecently = try await Self.token(#"{"alg":"HS256"}"#, Self.claims(exp: Self.nowSeconds - 29), signedWith: .hmac)
        let verified = try await Self.verifier(leeway: 30).verify(expiredRecently, now: Self.now)
        #expect(verified.expiresAt == Timestamp(milliseconds: Int64(Self.nowSeconds - 29) * 1000))
        #expect(verified.acceptedUntil == Timestamp(milliseconds: Int64(Self.nowSeconds + 1) * 1000))

        let expiredLongAgo = try await Self.token(#"{"alg":"HS256"}"#, Self.claims(exp: Self.nowSeconds - 30), signedWith: .hmac)
        #expect(try await Self.refusal(expiredLongAgo, leeway: 30)?.code == .tokenExpired)

        let soon = try await Self.token(#"{"alg":"HS256"}"#, Self.claims(#","nbf":\#(Self.nowSeconds + 30)"#), signedWith: .hmac)
        #expect(try await Self.refusal(soon, leeway: 30) == nil)
        #expect(try await Self.refusal(soon, leeway: 29)?.code == .unauthenticated)

        let atExpiry = try await Self.token(#"{"alg":"HS256"}"#, Self.claims(exp: Self.nowSeconds), signedWith: .hmac)
        #expect(try await Self.refusal(atExpiry, leeway: 0)?.code == .tokenExpired)
    }

    @Test(arguments: [Int64(-1), 86_401, .max])
    func aLeewayOutsideZeroToADayIsRefusedAtConfiguration(leeway: Int64) async throws {
        await #expect(throws: LearnStoreError.self) { _ = try await Self.verifier(leeway: leeway) }
    }

    @Test func aJWKSThatWouldLetTheHeaderPickTheAlgorithmIsRefusedAtStart() async throws {
        let ec = try #require(Self.ecKey.parameters)
        let cases = [
            (#"{"keys":[{"kty":"EC","crv":"P-256","alg":"RS256","kid":"k","x":"\#(ec.x)","y":"\#(ec.y)"}]}"#, "says alg RS256"),
            (#"{"keys":[{"kty":"EC","crv":"P-256","x":"\#(ec.x)","y":"\#(ec.y)"}]}"#, "has no kid"),
            (#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k","x":"\#(ec.x)","y":"\#(ec.y)"},{"kty":"RSA","kid":"k","n":"\#(Self.rsaModulus)","e":"AQAB"}]}"#, "two keys with kid k"),
            (#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"AAAA"}]}"#, "neither an RSA nor an EC P-256 key"),
            (#"{"keys":7}"#, "not a JSON object with a keys array"),
        ]
        for (jwks, reason) in cases {
            do {
                _ = try await Self.verifier(jwks: jwks)
                Issue.record("accepted: \(jwks)")
            } catch let error as LearnStoreError {
                #expect(error.message.contains(reason), "\(error.message)")
            }
        }
    }

    @Test func aMintedTokenVerifiesWithItsClaims() async throws {
        let token = try await TokenMinter(secret: Self.secret).mint(
            tenantID: "acme", person: UUID16(high: 7, low: 9), appID: "lms", scopes: [.recordsRead, .admin],
            issuedAt: Self.now, lifetimeSeconds: 600, audience: "learnstore")
        let verified = try await Self.verifier().verify(token, now: Self.now)
        #expect(verified.identity == CallerIdentity(tenantID: "acme", appID: "lms", personID: UUID16(high: 7, low: 9), scopes: [.recordsRead, .admin]))
        #expect(verified.expiresAt == Timestamp(milliseconds: Self.now.milliseconds + 600_000))
    }
}
