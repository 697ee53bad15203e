import Synchronization

/// A server-wide budget of bytes that connections buffer (request bytes not yet parsed, response bytes
/// not yet taken by the kernel), so the memory all clients together can make the server hold is set
/// by configuration. Connections reserve before they hold and release when the bytes are gone.
///
/// Response bytes already produced cannot be refused, so they are `charge`d whether or not they fit;
/// the budget then reports itself exhausted and connections with responses still waiting produce
/// no more until theirs drain.
public final class BufferBudget: Sendable {
    public let limit: Int
    /// Read on every request a connection parses: an atomic, not a lock.
    private let usedBytes = Atomic<Int>(0)

    public init(limit: Int) {
        self.limit = limit
    }

    public var used: Int { usedBytes.load(ordering: .relaxed) }

    public var isExhausted: Bool { used >= limit }

    /// Takes `bytes` if they fit under the limit.
    public func tryReserve(_ bytes: Int) -> Bool {
        var current = used
        while true {
            guard bytes <= limit - current else { return false }
            let (exchanged, original) = usedBytes.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    /// Takes `bytes` whether or not they fit.
    public func charge(_ bytes: Int) {
        usedBytes.add(bytes, ordering: .relaxed)
    }

    public func release(_ bytes: Int) {
        usedBytes.subtract(bytes, ordering: .relaxed)
    }
}
