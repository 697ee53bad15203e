import Dispatch
import Synchronization
import Zstd

/// Compresses a snapshot's blocks on other threads while the caller goes on encoding the next ones,
/// and hands them back in submission order. At most `width` blocks are in flight, so memory stays at
/// `width` blocks whatever the tenant's size. With a width of 1 everything runs on the caller's thread,
/// and so does a snapshot of a single block (most tenants): the first block waits for a second before
/// it is handed to another thread, and is compressed here if none comes.
final class BlockCompressionPipeline: Sendable {
    private final class Slot: Sendable {
        let chunk: [UInt8]
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<[UInt8], any Error>?>(nil)
        init(chunk: [UInt8]) { self.chunk = chunk }
    }

    private let level: Int
    private let width: Int
    private let inFlight = Mutex<[Slot]>([])
    /// The first block, not yet handed off (nothing else is in flight while it is held).
    private let held = Mutex<[UInt8]?>(nil)

    init(level: Int, width: Int) {
        self.level = level
        self.width = max(1, width)
    }

    /// Queues `chunk`; calls `deliver` (chunk, compressed) for every block finished in order, waiting
    /// for the oldest when `width` are in flight.
    func submit(_ chunk: [UInt8], deliver: ([UInt8], [UInt8]) throws -> Void) throws {
        if width == 1 { return try deliver(chunk, try Zstd.compress(chunk, level: level)) }
        if inFlight.withLock({ $0.isEmpty }) && held.withLock({ $0 == nil }) {
            held.withLock { $0 = chunk }
            return
        }
        if let first = held.withLock({ block in defer { block = nil }; return block }) { dispatch(first) }
        dispatch(chunk)
        while inFlight.withLock({ $0.count }) >= width { try deliverOldest(deliver) }
    }

    private func dispatch(_ chunk: [UInt8]) {
        let slot = Slot(chunk: chunk)
        inFlight.withLock { $0.append(slot) }
        let level = level
        DispatchQueue.global(qos: .userInitiated).async {
            slot.result.withLock { $0 = Result { try Zstd.compress(slot.chunk, level: level) } }
            slot.done.signal()
        }
    }

    /// Waits for every block still in flight and delivers them in order.
    func finish(deliver: ([UInt8], [UInt8]) throws -> Void) throws {
        if let only = held.withLock({ block in defer { block = nil }; return block }) {
            return try deliver(only, try Zstd.compress(only, level: level))
        }
        while inFlight.withLock({ !$0.isEmpty }) { try deliverOldest(deliver) }
    }

    private func deliverOldest(_ deliver: ([UInt8], [UInt8]) throws -> Void) throws {
        guard let oldest = inFlight.withLock({ $0.first }) else { return }
        oldest.done.wait()
        inFlight.withLock { _ = $0.removeFirst() }
        let compressed = try oldest.result.withLock { $0! }.get()
        try deliver(oldest.chunk, compressed)
    }
}
