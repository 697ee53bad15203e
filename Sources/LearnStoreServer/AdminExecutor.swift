import LearnStoreEngine
import LearnStoreModel
import LearnStoreProtocol

/// Runs the admin opcodes that work beside the tenant rather than on it (SNAPSHOT, RESTORE_TENANT):
/// they write files and replace the tenant, so they run as a task, one at a time per connection,
/// while other connections and tenants keep being served. IMPORT is an ordinary tenant write and
/// goes through ``RequestExecutor``.
enum AdminExecutor {
    /// Whether the connection handler must run this frame here instead of in a batch.
    static func handles(_ opcode: UInt8, features: ProtocolFeatures) -> Bool {
        features.contains(.admin) && (opcode == Opcode.adminSnapshot || opcode == Opcode.adminRestoreTenant)
    }

    /// The encoded response frame (or error frame).
    static func execute(_ frame: Frame, session: Session, server: ServerContext) async -> (bytes: [UInt8], error: LearnStoreError.Code?) {
        let header = frame.header
        var writer = ByteWriter(capacity: 256)
        do throws(LearnStoreError) {
            try checkAlone(header, session: session, server: server)
            // The order of PROTOCOL.md 6.3: decoding, then the scope, then everything else.
            let request = try AdminRequest.decode(frame, protocolVersion: session.protocolVersion)
            try session.identity.require(.admin)
            guard let operations = server.admin.operations else {
                throw LearnStoreError(.storageUnavailable, "this server keeps no data directory, so it has no snapshots to write or restore from")
            }
            let tenant = server.registry.tenant(session.identity.tenantID)
            switch request {
            case .snapshot(let force):
                let report = try await operations.snapshot(tenant, force: force)
                writer.writeFrame(FrameHeader(opcode: header.opcode, requestID: header.requestID)) { AdminMessages.encodeSnapshotResponse(report, into: &$0) }
            case .restore(let restore):
                let report = try await operations.restore(tenant, restore)
                writer.writeFrame(FrameHeader(opcode: header.opcode, requestID: header.requestID)) { AdminMessages.encodeRestoreResponse(report, into: &$0) }
            }
            return (writer.bytes, nil)
        } catch {
            writer.reset()
            writer.writeErrorFrame(opcode: header.opcode, requestID: header.requestID, error)
            return (writer.bytes, error.code)
        }
    }
}

/// The checks every request that runs alone (admin, WAIT_SEQUENCE) passes before it is decoded: the
/// frame's flags, the server's state and the token's expiry (with its leeway, PROTOCOL.md 4.2).
func checkAlone(_ header: FrameHeader, session: Session, server: ServerContext) throws(LearnStoreError) {
    if header.flags != 0 { throw LearnStoreError(.badFrame, "request flags must be 0") }
    if server.runtime.isShuttingDown { throw LearnStoreError(.shuttingDown, "the server is shutting down") }
    if server.clock.now() >= session.acceptedUntil {
        throw LearnStoreError(.tokenExpired, "the token expired at \(session.expiresAt); send AUTH with a new token")
    }
    if server.runtime.isLoading { throw LearnStoreError(.loading, "the server is recovering its data; retry shortly") }
}

/// An admin request, decoded before any other check but the connection's state.
enum AdminRequest {
    case snapshot(force: Bool)
    case restore(RestoreTenantRequest)

    static func decode(_ frame: Frame, protocolVersion: UInt16) throws(LearnStoreError) -> AdminRequest {
        switch frame.header.opcode {
        case Opcode.adminSnapshot:
            return .snapshot(force: try RequestExecutor.decode(frame) { (r) throws(DecodeError) in try AdminMessages.decodeSnapshot(from: &r) })
        case Opcode.adminRestoreTenant:
            return .restore(try RequestExecutor.decode(frame) { (r) throws(DecodeError) in try AdminMessages.decodeRestore(from: &r) })
        default:
            throw LearnStoreError(.unknownOpcode, "opcode 0x\(String(frame.header.opcode, radix: 16)) is not defined in protocol version \(protocolVersion)")
        }
    }
}
