import LearnStoreEngine
import LearnStoreModel
import LearnStoreProtocol

/// Runs a WAIT_SEQUENCE (docs/PROTOCOL.md, 4.6) as a task, alone on its connection: the requests
/// after it run once it is answered.
enum SequenceWait {
    static let maximumTimeoutMilliseconds: UInt32 = 60_000

    static func execute(_ frame: Frame, session: Session, server: ServerContext) async -> (bytes: [UInt8], error: LearnStoreError.Code?) {
        let header = frame.header
        var writer = ByteWriter(capacity: 64)
        do throws(LearnStoreError) {
            try checkAlone(header, session: session, server: server)
            let (sequence, timeout) = try RequestExecutor.decode(frame) { (r) throws(DecodeError) -> (UInt64, UInt32) in
                let sequence = try r.readU64()
                let timeout = try r.readU32()
                try r.expectEnd()
                return (sequence, timeout)
            }
            let scopes = session.identity.scopes
            guard scopes.contains(.recordsRead) || scopes.contains(.outcomesRead) else {
                throw LearnStoreError(.forbidden, "WAIT_SEQUENCE needs the scope 'records:read' or 'outcomes:read'")
            }
            guard timeout <= maximumTimeoutMilliseconds else {
                throw LearnStoreError(.validation, "timeout_ms must be at most \(maximumTimeoutMilliseconds)", field: "timeout_ms")
            }
            let tenant = server.registry.tenant(session.identity.tenantID)
            guard let reached = await server.sequenceWatch.wait(for: sequence, tenant: tenant, timeout: .milliseconds(Int(timeout))) else {
                let now = tenant.withExclusiveAccess { $0.state.sequence }
                throw LearnStoreError(.notYet, "tenant \(session.identity.tenantID) is at sequence \(now) here, not yet \(sequence)")
            }
            writer.writeFrame(FrameHeader(opcode: header.opcode, requestID: header.requestID)) { $0.writeU64(reached) }
            return (writer.bytes, nil)
        } catch {
            writer.reset()
            writer.writeErrorFrame(opcode: header.opcode, requestID: header.requestID, error)
            return (writer.bytes, error.code)
        }
    }
}
