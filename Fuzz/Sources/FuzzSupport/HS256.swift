import Crypto
import Foundation

/// Signs JWTs with HS256 from raw header and payload bytes, so a harness can put any JSON (or any
/// bytes) in a token whose signature verifies.
public enum HS256 {
    /// The secret every harness configures its verifier with.
    public static let secret = "fuzz-secret-0123456789abcdef-0123456789abcdef"

    public static func token(header: some Collection<UInt8>, payload: some Collection<UInt8>, secret: String = secret) -> String {
        let signingInput = base64URL(Array(header)) + "." + base64URL(Array(payload))
        let key = SymmetricKey(data: Array(secret.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: key)
        return signingInput + "." + base64URL(Array(mac))
    }

    public static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
