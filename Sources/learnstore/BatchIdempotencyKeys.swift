import Foundation

/// The idempotency key of each request of `records create`. The server remembers a key with the body
/// it came with (the same key with another body is a CONFLICT), so when the input is cut into batches
/// of 1000, batch N sends `KEY#N`; input of one batch sends the key as given.
struct BatchIdempotencyKeys: Sendable, Equatable {
    static let batchSize = 1000
    /// What the server accepts (docs/PROTOCOL.md 4.5).
    static let maximumBytes = 128

    let base: String?
    let batched: Bool

    init(given: String?, records: Int) throws {
        batched = records > Self.batchSize
        base = given
        guard let given else { return }
        let lastBatch = max(0, (records - 1) / Self.batchSize)
        let longest = batched ? given.utf8.count + 1 + String(lastBatch).utf8.count : given.utf8.count
        guard !given.isEmpty, longest <= Self.maximumBytes else {
            throw CLIError.usage(batched
                ? "--idempotency-key must leave room for '#\(lastBatch)' within \(Self.maximumBytes) bytes (\(records) records are sent as batches KEY#0 … KEY#\(lastBatch))"
                : "--idempotency-key must be 1 to \(Self.maximumBytes) bytes")
        }
    }

    private init(base: String) {
        self.base = base
        batched = true
    }

    /// A key of this run only, for sending a batch again after a failover (`--seeds`).
    static func generated() -> BatchIdempotencyKeys { BatchIdempotencyKeys(base: "cli-" + UUID().uuidString) }

    /// The key of the batch that starts at record `batchStart`; nil without a key.
    func key(batchStart: Int) -> String? {
        guard let base else { return nil }
        return batched ? "\(base)#\(batchStart / Self.batchSize)" : base
    }
}
