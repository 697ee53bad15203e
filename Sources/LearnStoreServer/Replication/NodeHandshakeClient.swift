import LearnStoreModel
import LearnStoreProtocol

/// The connecting node's side of the node handshake: NODE_HELLO with a nonce, NODE_AUTH with the proof
/// of the cluster secret, and the check of the peer's proof. It takes the peer's frames and says what
/// to send next, so the connection's handler runs it on its event loop as the frames arrive: a busy
/// task pool cannot stretch the handshake past the peer's time limit.
struct NodeHandshakeClient {
    enum Step: Equatable {
        case send(opcode: UInt8, payload: [UInt8])
        /// The peer proved the secret: the connection is ready for requests.
        case authenticated(peer: String, reply: NodeAuthReply)
    }

    private enum Phase {
        case hello
        case auth(peer: String, serverNonce: [UInt8])
        case done
    }

    private let credential: NodeCredential
    private let nodeID: String
    private let clientNonce: [UInt8]
    private var phase = Phase.hello

    init(credential: NodeCredential, nodeID: String, clientNonce: [UInt8] = NodeCredential.nonce()) {
        self.credential = credential
        self.nodeID = nodeID
        self.clientNonce = clientNonce
    }

    /// The first frame, sent as soon as the connection is up.
    func hello() -> Step {
        var writer = ByteWriter(capacity: 64)
        ReplicationMessages.encode(NodeHello(nodeID: nodeID, nonce: clientNonce), into: &writer)
        return .send(opcode: ReplicationOpcode.nodeHello, payload: writer.bytes)
    }

    /// The peer's next frame. An error frame is thrown as the error it carries.
    mutating func receive(_ frame: Frame) throws(LearnStoreError) -> Step {
        if frame.header.isError {
            phase = .done
            throw (try? frame.readPayload { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) })
                ?? LearnStoreError(.protocolViolation, "an undecodable error frame during the node handshake")
        }
        switch phase {
        case .hello:
            try expect(ReplicationOpcode.nodeHello, frame)
            let reply: NodeHelloReply
            do { reply = try frame.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodeHelloReply(from: &r) } } catch {
                phase = .done
                throw LearnStoreError(.protocolViolation, "NODE_HELLO reply: \(error)")
            }
            phase = .auth(peer: reply.nodeID, serverNonce: reply.nonce)
            var writer = ByteWriter(capacity: 64)
            ReplicationMessages.encodeAuth(proof: credential.proof(.client, clientNonce: clientNonce, serverNonce: reply.nonce, nodeID: nodeID), into: &writer)
            return .send(opcode: ReplicationOpcode.nodeAuth, payload: writer.bytes)
        case .auth(let peer, let serverNonce):
            try expect(ReplicationOpcode.nodeAuth, frame)
            phase = .done
            let reply: NodeAuthReply
            do { reply = try frame.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodeAuthReply(from: &r) } } catch {
                throw LearnStoreError(.protocolViolation, "NODE_AUTH reply: \(error)")
            }
            guard credential.verify(reply.proof, .server, clientNonce: clientNonce, serverNonce: serverNonce, nodeID: peer) else {
                throw LearnStoreError(.unauthenticated, "node \(peer) did not prove the cluster secret")
            }
            return .authenticated(peer: peer, reply: reply)
        case .done:
            throw LearnStoreError(.protocolViolation, "a frame after the node handshake ended")
        }
    }

    private mutating func expect(_ opcode: UInt8, _ frame: Frame) throws(LearnStoreError) {
        guard frame.header.opcode == opcode else {
            phase = .done
            throw LearnStoreError(.protocolViolation, "unexpected opcode 0x\(String(frame.header.opcode, radix: 16)) during the node handshake")
        }
    }
}
