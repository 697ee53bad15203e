import LearnStoreModel
import LearnStoreProtocol

/// `client.admin`: snapshots, restore and import of the token's own tenant (needs a server announcing
/// HELLO feature bit 2 and a token with the `admin` scope; docs/PROTOCOL.md, appendix C).
public struct AdminClient: Sendable {
    let client: LearnStoreClient

    /// Writes a snapshot of the tenant now (skipped when nothing changed since its newest, unless `force`).
    public func snapshot(force: Bool = false) async throws(LearnStoreError) -> SnapshotReport {
        let frame = try await client.request(opcode: Opcode.adminSnapshot) { AdminMessages.encodeSnapshot(force: force, into: &$0) }
        return try ClientConnection.decode(frame) { (r) throws(DecodeError) in try AdminMessages.decodeSnapshotResponse(from: &r) }
    }

    /// Restores the tenant to a point (a snapshot plus the WAL up to a sequence or time), replacing it
    /// atomically; with `dryRun`, only reports what would change.
    public func restoreTenant(_ request: RestoreTenantRequest) async throws(LearnStoreError) -> RestoreTenantReport {
        let frame = try await client.request(opcode: Opcode.adminRestoreTenant) { AdminMessages.encodeRestore(request, into: &$0) }
        return try ClientConnection.decode(frame) { (r) throws(DecodeError) in try AdminMessages.decodeRestoreResponse(from: &r) }
    }

    /// Puts records (ids and stamps kept, tenant forced to the caller's) and outcome rows (each one
    /// row's JSON as `learnstore export` writes it) as one write.
    public func importBatch(records: [LearningRecord], outcomeRows: [[UInt8]] = []) async throws(LearnStoreError) -> ImportReport {
        let frame = try await client.request(opcode: Opcode.adminImport) {
            AdminMessages.encodeImport(records: records, outcomeRows: outcomeRows, into: &$0)
        }
        return try ClientConnection.decode(frame) { (r) throws(DecodeError) in try AdminMessages.decodeImportResponse(from: &r) }
    }
}

extension LearnStoreClient {
    public var admin: AdminClient { AdminClient(client: self) }
}
