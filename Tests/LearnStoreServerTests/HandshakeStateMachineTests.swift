import LearnStoreModel
import LearnStoreProtocol
import Testing
@testable import LearnStoreServer

/// The connection lifecycle of PROTOCOL.md section 3 as transcripts of events and the actions they
/// return, without sockets.
@Suite struct HandshakeStateMachineTests {
    static func token(_ tenant: String = "acme") -> VerifiedToken {
        VerifiedToken(
            identity: CallerIdentity(tenantID: tenant, appID: nil, personID: UUID16(high: 1, low: 2), scopes: [.recordsRead]),
            expiresAt: Timestamp(milliseconds: 1_000_000), acceptedUntil: Timestamp(milliseconds: 1_030_000))
    }

    static func authenticated() -> HandshakeStateMachine {
        var machine = HandshakeStateMachine()
        _ = machine.frameReceived(opcode: Opcode.hello)
        _ = machine.helloReceived(HelloRequest(clientName: "test"))
        _ = machine.authenticationSucceeded(token())
        return machine
    }

    static func code(_ action: HandshakeStateMachine.FrameAction) -> (LearnStoreError.Code, Bool)? {
        if case .reject(let error, let close) = action { return (error.code, close) }
        return nil
    }

    static func code(_ action: HandshakeStateMachine.AuthAction) -> (LearnStoreError.Code, Bool)? {
        if case .reject(let error, let close) = action { return (error.code, close) }
        return nil
    }

    @Test func anyFirstFrameButHelloIsBadFrameAndCloses() {
        for opcode in [Opcode.auth, Opcode.ping, 0x12, 0xFF] as [UInt8] {
            var machine = HandshakeStateMachine()
            let result = Self.code(machine.frameReceived(opcode: opcode))
            #expect(result?.0 == .badFrame && result?.1 == true, "opcode \(opcode)")
            #expect(machine.state == .closed)
            #expect(machine.frameReceived(opcode: Opcode.hello) == .ignore)
        }
    }

    @Test func helloWithoutACommonVersionCloses() {
        var machine = HandshakeStateMachine()
        #expect(machine.frameReceived(opcode: Opcode.hello) == .hello)
        guard case .failure(let error) = machine.helloReceived(HelloRequest(minimumVersion: 2, maximumVersion: 3, clientName: "future")) else {
            Issue.record("a version range without 1 was accepted")
            return
        }
        #expect(error.code == .unsupportedVersion)
        #expect(machine.state == .closed)
    }

    @Test func beforeAuthOnlyAuthAndPingAreTakenAndASecondHelloKeepsTheConnection() {
        var machine = HandshakeStateMachine()
        _ = machine.frameReceived(opcode: Opcode.hello)
        #expect(machine.helloReceived(HelloRequest(clientName: "test")) == .success(1))
        #expect(machine.frameReceived(opcode: Opcode.ping) == .answerLocally)
        #expect(Self.code(machine.frameReceived(opcode: Opcode.hello))! == (.badFrame, false))
        #expect(Self.code(machine.frameReceived(opcode: 0x12))! == (.unauthenticated, false))
        #expect(machine.frameReceived(opcode: Opcode.auth) == .authenticate)
        #expect(machine.state == .awaitingAuth(version: 1))
    }

    /// The executor answers it BAD_FRAME (ProtocolConformanceTests), so that its answer keeps its
    /// place among the answers to the requests around it.
    @Test func helloAfterAuthGoesToTheExecutorInOrder() {
        var machine = Self.authenticated()
        guard case .dispatch = machine.frameReceived(opcode: Opcode.hello) else {
            Issue.record("a HELLO after AUTH was not dispatched in order")
            return
        }
        #expect(machine.session?.identity.tenantID == "acme")
    }

    @Test func theThirdFailedAuthClosesAndASuccessStartsTheCountAgain() {
        var machine = HandshakeStateMachine()
        _ = machine.frameReceived(opcode: Opcode.hello)
        _ = machine.helloReceived(HelloRequest(clientName: "test"))
        #expect(Self.code(machine.authenticationFailed(LearnStoreError(.unauthenticated, "bad")))! == (.unauthenticated, false))
        #expect(Self.code(machine.authenticationFailed(LearnStoreError(.badFrame, "malformed")))! == (.badFrame, false))
        guard case .accept = machine.authenticationSucceeded(Self.token()) else {
            Issue.record("a valid token was refused")
            return
        }
        // Re-AUTHs count the same way, a FORBIDDEN change of tenant included.
        #expect(Self.code(machine.authenticationSucceeded(Self.token("other")))! == (.forbidden, false))
        #expect(Self.code(machine.authenticationFailed(LearnStoreError(.tokenExpired, "old")))! == (.tokenExpired, false))
        #expect(machine.session?.identity.tenantID == "acme", "a failed re-AUTH leaves the session as it was")
        #expect(Self.code(machine.authenticationSucceeded(Self.token("other")))! == (.forbidden, true))
        #expect(machine.state == .closed)
    }

    @Test func aReAuthReplacesTheExpiryAndKeepsTheVersion() {
        var machine = Self.authenticated()
        var later = Self.token()
        later.expiresAt = Timestamp(milliseconds: 5_000_000)
        later.acceptedUntil = Timestamp(milliseconds: 5_030_000)
        guard case .accept(let session) = machine.authenticationSucceeded(later) else {
            Issue.record("the re-AUTH was refused")
            return
        }
        #expect(session.expiresAt == later.expiresAt && session.acceptedUntil == later.acceptedUntil)
        #expect(session.protocolVersion == 1)
    }
}
