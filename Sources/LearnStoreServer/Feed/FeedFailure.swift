import LearnStoreModel
import LearnStoreProtocol

/// Why a subscription cannot start or go on. FEED_TRUNCATED carries the oldest sequence a new
/// subscription can start after, as a `u64` after the error body (docs/PROTOCOL.md, D.5).
struct FeedFailure: Error, Sendable {
    var error: LearnStoreError
    var oldestSequence: UInt64?

    init(_ error: LearnStoreError) {
        self.error = error
        self.oldestSequence = nil
    }

    static func truncated(_ message: String, oldest: UInt64) -> FeedFailure {
        var failure = FeedFailure(LearnStoreError(.feedTruncated, message + "; a subscription can start after sequence \(oldest) (or export the tenant and subscribe from the export's sequence)", field: "sequence"))
        failure.oldestSequence = oldest
        return failure
    }

    /// The error frame.
    func frame(opcode: UInt8, requestID: UInt32) -> [UInt8] {
        var writer = ByteWriter(capacity: 256)
        writer.writeFrame(FrameHeader(opcode: opcode, flags: 1, requestID: requestID)) { body in
            ErrorBody.encode(error, into: &body)
            if let oldestSequence { body.writeU64(oldestSequence) }
        }
        return writer.bytes
    }
}
