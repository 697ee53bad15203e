import Foundation
import LearnStoreEngine
import LearnStoreModel

/// A clock the simulation moves by hand.
public final class SimulatedClock: EngineClock, @unchecked Sendable {
    private var milliseconds: Int64 = 1_767_225_600_000
    private let lock = NSLock()
    public init() {}
    public func now() -> Timestamp { lock.withLock { Timestamp(milliseconds: milliseconds) } }
    public func advance(milliseconds delta: Int64) { lock.withLock { milliseconds += delta } }
}
