import NIOCore

/// A port the server could not listen on, named with the option that chose it (a bare
/// "bind: Address already in use" does not say which of the server's ports it was).
public struct ListenFailure: Error, CustomStringConvertible {
    public let purpose: String
    public let host: String
    public let port: Int
    public let reason: String

    public var description: String { "cannot listen on \(host):\(port) for \(purpose): \(reason)" }

    /// Runs `bind`, turning its failure into a `ListenFailure`.
    static func naming<T>(_ purpose: String, host: String, port: Int, _ bind: () async throws -> T) async throws -> T {
        do {
            return try await bind()
        } catch let error as IOError {
            throw ListenFailure(purpose: purpose, host: host, port: port, reason: reason(errno: error.errnoCode, error))
        }
    }

    static func reason(errno: Int32, _ error: IOError) -> String {
        switch errno {
        case 98: return "the address is in use (another process, perhaps another LearnStore server, listens there)"
        case 99: return "the address is not one of this machine's"
        case 13: return "permission denied (ports below 1024 need privileges)"
        default: return "\(error)"
        }
    }
}
