import Crypto
import LearnStoreModel

/// Signs tokens with an HS256 secret (`learnstore token mint`, the development mode, the tools and tests).
/// A module of its own so that a tool that only needs a token does not link the server.
///
/// The key is hashed once per minter and the claims are written directly, so a load tool can mint a
/// token for every (tenant, app) pair of a large data set in seconds.
public struct TokenMinter: Sendable {
    private let key: HMAC<SHA256>
    /// `{"alg":"HS256","typ":"JWT"}`, encoded.
    private static let encodedHeader = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8))

    public init(secret: String) {
        key = HMAC<SHA256>(key: SymmetricKey(data: Array(secret.utf8)))
    }

    public func mint(tenantID: String, person: UUID16, appID: String? = nil, scopes: Scopes,
                     issuedAt: Timestamp, lifetimeSeconds: Int64, audience: String? = nil, issuer: String? = nil,
                     notBefore: Timestamp? = nil) async throws -> String {
        try mintNow(tenantID: tenantID, person: person, appID: appID, scopes: scopes, issuedAt: issuedAt,
                    lifetimeSeconds: lifetimeSeconds, audience: audience, issuer: issuer, notBefore: notBefore)
    }

    /// The same token, on the calling thread.
    public func mintNow(tenantID: String, person: UUID16, appID: String? = nil, scopes: Scopes,
                        issuedAt: Timestamp, lifetimeSeconds: Int64, audience: String? = nil, issuer: String? = nil,
                        notBefore: Timestamp? = nil) throws(LearnStoreError) -> String {
        let (expires, overflow) = (issuedAt.milliseconds / 1000).addingReportingOverflow(lifetimeSeconds)
        let (expiresMilliseconds, millisecondsOverflow) = expires.multipliedReportingOverflow(by: 1000)
        // The verifier refuses an `exp` outside the documented time range, so such a token would be useless.
        guard !overflow, !millisecondsOverflow, Timestamp.documentedRange.contains(expiresMilliseconds) else {
            throw LearnStoreError.validation("a lifetime of \(lifetimeSeconds) seconds ends after 9999-12-31", field: "ttl")
        }
        // The claims PROTOCOL.md §4.2 names, in one JSON object.
        var claims = ClaimsWriter()
        claims.string("tenant_id", tenantID)
        claims.string("sub", person.description)
        if let appID { claims.string("app_id", appID) }
        claims.string("scope", scopes.description)
        claims.integer("exp", expires)
        if let notBefore { claims.integer("nbf", notBefore.milliseconds / 1000) }
        claims.integer("iat", issuedAt.milliseconds / 1000)
        if let issuer { claims.string("iss", issuer) }
        if let audience { claims.string("aud", audience) }
        let signingInput = Self.encodedHeader + "." + Base64URL.encode(claims.finished)
        var mac = key
        mac.update(data: Array(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(Array(mac.finalize()))
    }
}

/// A JSON object of string and integer members, written in order.
struct ClaimsWriter {
    private(set) var bytes: [UInt8] = [UInt8(ascii: "{")]

    var finished: [UInt8] { bytes + [UInt8(ascii: "}")] }

    mutating func string(_ name: String, _ value: String) {
        member(name)
        quoted(value)
    }

    mutating func integer(_ name: String, _ value: Int64) {
        member(name)
        bytes += Array(String(value).utf8)
    }

    private mutating func member(_ name: String) {
        if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
        quoted(name)
        bytes.append(UInt8(ascii: ":"))
    }

    /// RFC 8259 §7: quote, backslash and control characters escaped; everything else as its UTF-8.
    private mutating func quoted(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                bytes += [UInt8(ascii: "\\"), byte]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default:
                bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
