import Crypto
import LearnStoreModel
import LearnStoreProtocol

/// How nodes of one cluster recognise each other on the replication port: a shared secret, never
/// sent. Each side proves it holds the secret with an HMAC-SHA256 over both sides' fresh nonces and
/// its own node id (docs/PROTOCOL.md, E.2), so a recorded exchange cannot be replayed and a node
/// without the secret can neither follow a primary nor feed a replica.
public struct NodeCredential: Sendable {
    public static let minimumSecretBytes = 16
    private let key: SymmetricKey

    public init(secret: [UInt8]) throws(LearnStoreError) {
        guard secret.count >= Self.minimumSecretBytes else {
            throw LearnStoreError(.validation, "the cluster secret must be at least \(Self.minimumSecretBytes) bytes")
        }
        key = SymmetricKey(data: secret)
    }

    public enum Side: String, Sendable {
        /// The node that opened the connection.
        case client
        /// The node that accepted it.
        case server
    }

    public func proof(_ side: Side, clientNonce: [UInt8], serverNonce: [UInt8], nodeID: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Self.message(side, clientNonce, serverNonce, nodeID), using: key))
    }

    /// Checks a proof in constant time.
    public func verify(_ proof: [UInt8], _ side: Side, clientNonce: [UInt8], serverNonce: [UInt8], nodeID: String) -> Bool {
        guard proof.count == ReplicationMessages.proofBytes else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(proof, authenticating: Self.message(side, clientNonce, serverNonce, nodeID), using: key)
    }

    static func message(_ side: Side, _ clientNonce: [UInt8], _ serverNonce: [UInt8], _ nodeID: String) -> [UInt8] {
        Array("learnstore-node-v1 \(side.rawValue)".utf8) + clientNonce + serverNonce + Array(nodeID.utf8)
    }

    public static func nonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<NodeHello.nonceBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// A node id: 1–64 bytes of letters, digits, '-', '_' and '.'.
    public static func isValidNodeID(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        return (1...64).contains(bytes.count) && bytes.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2D || byte == 0x5F || byte == 0x2E
        }
    }
}
