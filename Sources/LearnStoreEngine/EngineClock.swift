import LearnStoreModel
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where the engine reads the time. Injected so tests drive time instead of sleeping.
public protocol EngineClock: Sendable {
    func now() -> Timestamp
}

/// Wall-clock time (CLOCK_REALTIME), millisecond precision.
public struct SystemClock: EngineClock {
    public init() {}
    public func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(milliseconds: Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000)
    }
}

/// A clock tests set and advance by hand.
public final class ManualClock: EngineClock {
    private let current: Mutex<Timestamp>
    public init(_ start: Timestamp = Timestamp(milliseconds: 1_704_067_200_000)) { current = Mutex(start) }
    public func now() -> Timestamp { current.withLock { $0 } }
    public func advance(milliseconds: Int64) { current.withLock { $0.milliseconds += milliseconds } }
    public func set(_ value: Timestamp) { current.withLock { $0 = value } }
}
