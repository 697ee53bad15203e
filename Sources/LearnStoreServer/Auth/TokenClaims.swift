import LearnStoreModel

/// The claims of a token whose signature has verified, read by this server's own rules (PROTOCOL.md
/// §4.2) so that every refusal names the claim and the rule, never a decoder's internals.
struct TokenClaims: Sendable, Equatable {
    var tenantID: String
    var person: UUID16
    var appID: String?
    var scopes: Scopes
    var expires: Timestamp
    var notBefore: Timestamp?
    var issuedAt: Timestamp?
    var issuer: String?
    var audiences: [String]?

    static func parse(_ payload: [UInt8]) throws(LearnStoreError) -> TokenClaims {
        let claims = try CompactToken.object(payload, "payload")
        guard let tenant = claims["tenant_id"]?.stringValue, CallerIdentity.isValidTenantID(tenant) else {
            throw refusal("the token lacks a valid tenant_id claim (a string of 1-64 of A-Z a-z 0-9 _ - .)")
        }
        guard let sub = claims["sub"]?.stringValue, let person = UUID16(sub) else {
            throw refusal("the token's sub claim must be the person's UUID as a string")
        }
        let appID = try optionalString(claims, "app_id")
        if let appID, appID.isEmpty || appID.utf8.count > 128 {
            throw refusal("the token's app_id claim must be 1-128 bytes")
        }
        let scope = try optionalString(claims, "scope")
        guard let exp = claims["exp"] else { throw refusal("the token has no exp claim") }
        return TokenClaims(
            tenantID: tenant, person: person, appID: appID, scopes: Scopes(claim: scope ?? ""),
            expires: try instant(exp, "exp"),
            notBefore: try claims["nbf"].map { (value) throws(LearnStoreError) in try instant(value, "nbf") },
            issuedAt: try claims["iat"].map { (value) throws(LearnStoreError) in try instant(value, "iat") },
            issuer: try optionalString(claims, "iss"),
            audiences: try audiences(claims["aud"]))
    }

    private static func optionalString(_ claims: JSONValue, _ name: String) throws(LearnStoreError) -> String? {
        guard let value = claims[name] else { return nil }
        guard let string = value.stringValue else { throw refusal("the token's \(name) claim must be a string, not \(value.shortDescription)") }
        return string
    }

    private static func audiences(_ value: JSONValue?) throws(LearnStoreError) -> [String]? {
        guard let value else { return nil }
        if let one = value.stringValue { return [one] }
        if let many = value.arrayValue {
            var names: [String] = []
            for element in many {
                guard let name = element.stringValue else { break }
                names.append(name)
            }
            if names.count == many.count { return names }
        }
        throw refusal("the token's aud claim must be a string or an array of strings")
    }

    /// A NumericDate (seconds since 1970, fractions allowed) as an instant in the documented `time`
    /// range: NaN, infinities and values beyond it name no instant this server can compare or print.
    static func instant(ofSeconds seconds: Double) -> Timestamp? {
        guard seconds.isFinite, let milliseconds = Int64(exactly: (seconds * 1000).rounded(.down)),
            Timestamp.documentedRange.contains(milliseconds)
        else { return nil }
        return Timestamp(milliseconds: milliseconds)
    }

    private static func instant(_ value: JSONValue, _ name: String) throws(LearnStoreError) -> Timestamp {
        guard let seconds = value.doubleValue, let instant = instant(ofSeconds: seconds) else {
            throw refusal("the token's \(name) claim \(value.shortDescription) is not a time in 0001-01-01 ... 9999-12-31 (a number of seconds since 1970)")
        }
        return instant
    }

    private static func refusal(_ message: String) -> LearnStoreError { LearnStoreError(.unauthenticated, message) }
}
