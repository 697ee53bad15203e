import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence

/// What a tenant holds must survive a snapshot: encoded as the snapshot writer encodes it, it must
/// decode with the same record count.
public enum SnapshotCheck {
    public static func roundTrip(_ state: TenantState) {
        let capture = state.capture()
        var stream: [UInt8] = []
        SnapshotStream.encode(capture, chunkBytes: 1 << 12) { stream += $0 }
        let expected = UInt64(capture.liveRecords + capture.deletedRecords)
        do {
            let contents = try stream.withUnsafeBytes { raw throws(DecodeError) in
                try SnapshotStream.decode(raw, tenantID: state.tenantID, expectedRecords: expected)
            }
            guard contents.store.liveCount == capture.liveRecords, contents.store.deletedCount == capture.deletedRecords else {
                fuzzFailure("a snapshot reloads \(contents.store.liveCount)/\(contents.store.deletedCount) records of \(capture.liveRecords)/\(capture.deletedRecords)")
            }
        } catch {
            fuzzFailure("a tenant's own snapshot does not decode: \(error)")
        }
    }
}
