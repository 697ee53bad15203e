import LearnStoreModel
import LearnStoreProtocol
@testable import LearnStoreServer
import NIOCore
import Testing

/// The connecting node's handshake, frame by frame, against a peer played by the test with the same
/// credential functions the replication port uses.
@Suite struct NodeHandshakeClientTests {
    static let secret = Array("a cluster secret of enough length".utf8)
    static let clientNonce = [UInt8](repeating: 7, count: NodeHello.nonceBytes)
    static let serverNonce = [UInt8](repeating: 9, count: NodeHello.nonceBytes)

    static func frame(_ opcode: UInt8, error: Bool = false, _ payload: (inout ByteWriter) -> Void) -> Frame {
        var writer = ByteWriter()
        payload(&writer)
        return Frame(header: FrameHeader(opcode: opcode, flags: error ? FrameHeader.errorFlag : 0, requestID: 1), payload: ByteBuffer(bytes: writer.bytes))
    }

    static func helloReply(_ nodeID: String = "primary") -> Frame {
        frame(ReplicationOpcode.nodeHello) { ReplicationMessages.encode(NodeHelloReply(nodeID: nodeID, nonce: serverNonce), into: &$0) }
    }

    static func authReply(_ credential: NodeCredential, peer: String = "primary") -> Frame {
        let proof = credential.proof(.server, clientNonce: clientNonce, serverNonce: serverNonce, nodeID: peer)
        return frame(ReplicationOpcode.nodeAuth) {
            ReplicationMessages.encode(NodeAuthReply(proof: proof, role: .primary, epoch: 4, lastLSN: 99), into: &$0)
        }
    }

    @Test func helloThenAuthWithTheProofThenTheAuthenticatedPeer() throws {
        let credential = try NodeCredential(secret: Self.secret)
        var handshake = NodeHandshakeClient(credential: credential, nodeID: "replica", clientNonce: Self.clientNonce)
        guard case .send(let opcode, let payload) = handshake.hello() else { Issue.record("no hello"); return }
        #expect(opcode == ReplicationOpcode.nodeHello)
        let hello = try Self.frame(opcode) { $0.writeBytes(payload) }.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodeHello(from: &r) }
        #expect(hello == NodeHello(nodeID: "replica", nonce: Self.clientNonce))

        guard case .send(let authOpcode, let authPayload) = try handshake.receive(Self.helloReply()) else { Issue.record("no auth"); return }
        #expect(authOpcode == ReplicationOpcode.nodeAuth)
        let proof = try Self.frame(authOpcode) { $0.writeBytes(authPayload) }.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodeAuth(from: &r) }
        #expect(credential.verify(proof, .client, clientNonce: Self.clientNonce, serverNonce: Self.serverNonce, nodeID: "replica"))

        let done = try handshake.receive(Self.authReply(credential))
        guard case .authenticated(let peer, let reply) = done else { Issue.record("not authenticated: \(done)"); return }
        #expect(peer == "primary")
        #expect(reply.epoch == 4 && reply.lastLSN == 99 && reply.role == .primary)
    }

    @Test func aPeerWithoutTheSecretIsRefused() throws {
        var handshake = NodeHandshakeClient(credential: try NodeCredential(secret: Self.secret), nodeID: "replica", clientNonce: Self.clientNonce)
        _ = try handshake.receive(Self.helloReply())
        let impostor = try NodeCredential(secret: Array("another secret, also long enough".utf8))
        #expect(throws: LearnStoreError.self) { try handshake.receive(Self.authReply(impostor)) }
        do { _ = try handshake.receive(Self.authReply(impostor)) } catch { #expect(error.code == .protocolViolation, "nothing is taken after a failure") }
    }

    @Test func aProofMadeForAnotherNodeIDIsRefused() throws {
        let credential = try NodeCredential(secret: Self.secret)
        var handshake = NodeHandshakeClient(credential: credential, nodeID: "replica", clientNonce: Self.clientNonce)
        _ = try handshake.receive(Self.helloReply("primary"))
        do {
            _ = try handshake.receive(Self.authReply(credential, peer: "someone-else"))
            Issue.record("a proof for another node id was taken")
        } catch {
            #expect(error.code == .unauthenticated)
            #expect(error.message.contains("primary"))
        }
    }

    @Test func anErrorFrameIsThrownAsItsError() throws {
        var handshake = NodeHandshakeClient(credential: try NodeCredential(secret: Self.secret), nodeID: "replica")
        let refusal = Self.frame(ReplicationOpcode.nodeHello, error: true) {
            ErrorBody.encode(LearnStoreError(.unsupportedVersion, "version 9 is not supported"), into: &$0)
        }
        do {
            _ = try handshake.receive(refusal)
            Issue.record("an error frame was taken as a reply")
        } catch {
            #expect(error.code == .unsupportedVersion)
            #expect(error.message == "version 9 is not supported")
        }
    }

    @Test func outOfOrderOrUndecodableRepliesAreProtocolViolations() throws {
        let credential = try NodeCredential(secret: Self.secret)
        var early = NodeHandshakeClient(credential: credential, nodeID: "replica", clientNonce: Self.clientNonce)
        do { _ = try early.receive(Self.authReply(credential)); Issue.record("NODE_AUTH before NODE_HELLO was taken") } catch {
            #expect(error.code == .protocolViolation)
        }
        var truncated = NodeHandshakeClient(credential: credential, nodeID: "replica")
        do { _ = try truncated.receive(Self.frame(ReplicationOpcode.nodeHello) { $0.writeU8(3) }); Issue.record("a truncated reply was taken") } catch {
            #expect(error.code == .protocolViolation)
            #expect(error.message.hasPrefix("NODE_HELLO reply"))
        }
    }
}
