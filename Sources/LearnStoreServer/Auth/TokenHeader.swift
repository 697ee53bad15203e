import LearnStoreModel
import LearnStoreProtocol
import Synchronization

/// The parts of a compact JWS this server reads before any signature check, parsed strictly: the
/// header decides which key may verify the token, so an ambiguous header must never pick one.
struct CompactToken: Sendable {
    enum Algorithm: String, Sendable, CaseIterable {
        case hs256 = "HS256", rs256 = "RS256", es256 = "ES256"
    }

    var algorithm: Algorithm
    /// The `kid` header: which configured key signed the token.
    var keyID: String?
    /// The decoded payload (the claims object), not yet trusted.
    var payload: [UInt8]
    /// What the signature covers: the token's first two parts and the dot between them.
    var signingInput: Substring.UTF8View
    /// The decoded signature (nil if it is not base64url).
    var signature: [UInt8]?

    /// The AUTH request's own bound; a caller that skips the frame decoder meets it here.
    static let maximumLength = AuthRequest.maximumTokenBytes

    /// Headers already read, by their encoded bytes: what `parse` decided for one it will decide again.
    /// Only headers that were accepted are kept, and only a few (a server trusts a few issuers), so a
    /// client sending a different header each time gains nothing and costs a bounded table.
    final class HeaderCache: Sendable {
        static let capacity = 32
        private let known = Mutex<[[UInt8]: (algorithm: Algorithm, keyID: String?)]>([:])

        func lookup(_ encoded: [UInt8]) -> (algorithm: Algorithm, keyID: String?)? {
            known.withLock { $0[encoded] }
        }

        func remember(_ encoded: [UInt8], _ header: (algorithm: Algorithm, keyID: String?)) {
            known.withLock { if $0.count < Self.capacity { $0[encoded] = header } }
        }
    }

    static func parse(_ token: String, headers: HeaderCache? = nil) throws(LearnStoreError) -> CompactToken {
        guard token.utf8.count <= maximumLength else {
            throw refusal("the token is longer than \(maximumLength) bytes")
        }
        // The three parts from the token's UTF-8 bytes: payload and signature decoded, the header as
        // sent (a header already read is found by those bytes).
        var token = token
        let decoded = token.withUTF8 { bytes -> (header: [UInt8], payload: [UInt8]?, signature: [UInt8]?, signedLength: Int)? in
            let dot = UInt8(ascii: ".")
            guard let first = bytes.firstIndex(of: dot),
                let second = bytes[(first + 1)...].firstIndex(of: dot),
                !bytes[(second + 1)...].contains(dot),
                first > 0, second > first + 1, second + 1 < bytes.count
            else { return nil }
            return (Array(bytes[..<first]),
                    Base64URL.decode(utf8: UnsafeBufferPointer(rebasing: bytes[(first + 1)..<second])),
                    Base64URL.decode(utf8: UnsafeBufferPointer(rebasing: bytes[(second + 1)...])),
                    second)
        }
        guard let decoded else { throw refusal("the token is not a signed JWT (header.payload.signature)") }
        let algorithm: Algorithm
        let keyID: String?
        if let known = headers?.lookup(decoded.header) {
            (algorithm, keyID) = known
        } else {
            guard let headerBytes = decoded.header.withUnsafeBufferPointer({ Base64URL.decode(utf8: $0) }) else {
                throw refusal("the token header is not base64url")
            }
            (algorithm, keyID) = try readHeader(headerBytes)
            headers?.remember(decoded.header, (algorithm, keyID))
        }
        guard let payload = decoded.payload else {
            throw refusal("the token payload is not base64url")
        }
        let signingInput = token.utf8.prefix(decoded.signedLength)
        return CompactToken(algorithm: algorithm, keyID: keyID, payload: payload, signingInput: signingInput,
                            signature: decoded.signature)
    }

    /// The algorithm and key a header names, by the rules above.
    static func readHeader(_ headerBytes: [UInt8]) throws(LearnStoreError) -> (algorithm: Algorithm, keyID: String?) {
        let header = try object(headerBytes, "header")
        guard let alg = header["alg"] else { throw refusal("the token header has no alg") }
        guard let name = alg.stringValue, let algorithm = Algorithm(rawValue: name) else {
            throw refusal("the token algorithm \(alg.shortDescription) is not accepted (HS256, RS256 and ES256 are)")
        }
        // RFC 7515 §4.1.11: a recipient must refuse a token whose critical extensions it does not
        // understand, and this server understands none.
        if let critical = header["crit"] {
            throw refusal("the token header lists critical extensions (crit: \(critical.shortDescription)); this server supports none")
        }
        var keyID: String?
        if let kid = header["kid"] {
            guard let value = kid.stringValue, !value.isEmpty else { throw refusal("the token header's kid must be a non-empty string") }
            keyID = value
        }
        return (algorithm, keyID)
    }

    /// A JSON object without repeated member names: with a repeated name two readers could
    /// disagree on which value counts.
    static func object(_ bytes: [UInt8], _ part: String) throws(LearnStoreError) -> JSONValue {
        let value: JSONValue
        do { value = try JSONValue.parse(bytes) } catch { throw refusal("the token \(part) is not valid JSON (\(error))") }
        guard case .object(let members) = value else { throw refusal("the token \(part) is not a JSON object") }
        var names = Set<String>()
        for (name, _) in members where !names.insert(name).inserted {
            throw refusal("the token \(part) repeats the member \(name)")
        }
        return value
    }

    static func refusal(_ message: String) -> LearnStoreError { LearnStoreError(.unauthenticated, message) }
}

extension JSONValue {
    /// A short rendering for error messages: strings quoted, anything else by its kind.
    var shortDescription: String {
        switch self {
        case .null: "null"
        case .bool(let b): "\(b)"
        case .number(let n): n.count <= 32 ? n : "a long number"
        case .string(let s): s.utf8.count <= 32 ? "\"\(s)\"" : "a long string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
