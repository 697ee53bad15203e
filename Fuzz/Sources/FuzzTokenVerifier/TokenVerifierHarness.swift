import FuzzSupport
import LearnStoreModel
import LearnStoreServer

/// The server's real ``TokenVerifier`` on tokens built from the input. The first byte picks the form:
/// header and claims JSON from the input signed with the configured HS256 key (so the signature
/// verifies and the claim checks run), claims JSON under a fixed header, the same signed with another
/// key, or the raw bytes as a token. Another bit picks a verifier that also requires an audience and
/// an issuer. Any answer is fine; a trap is not.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let control = input.u8()
    let token: String
    switch control & 0x03 {
    case 0:
        let parts = input.parts(separatedBy: [0], maximum: 2)
        token = HS256.token(header: parts[0], payload: parts.count > 1 ? parts[1] : UnsafeRawBufferPointer(start: nil, count: 0))
    case 1:
        token = HS256.token(header: Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8), payload: input.rest())
    case 2:
        token = HS256.token(header: Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8), payload: input.rest(), secret: "another-secret-0123456789abcdef")
    default:
        token = String(decoding: input.rest(), as: UTF8.self)
    }
    let verifier = control & 0x04 == 0 ? Verifiers.plain : Verifiers.strict
    let now = Timestamp(milliseconds: 1_767_225_600_000)  // 2026-01-01
    _ = runBlocking { () async -> Bool in
        do throws(LearnStoreError) {
            _ = try await verifier.verify(token, now: now)
            return true
        } catch {
            return false
        }
    }
    return 0
}

enum Verifiers {
    static let plain = make { _ in }
    static let strict = make { configuration in
        configuration.audience = "learnstore"
        configuration.issuer = "https://issuer.example"
        configuration.leewaySeconds = 0
    }

    static func make(_ configure: (inout AuthenticationConfiguration) -> Void) -> TokenVerifier {
        var configuration = AuthenticationConfiguration()
        configuration.hmacSecrets = [HS256.secret]
        configure(&configuration)
        let ready = configuration
        return runBlocking { () async -> TokenVerifier in
            do { return try await TokenVerifier(configuration: ready) } catch { fatalError("cannot configure the verifier: \(error)") }
        }
    }
}
