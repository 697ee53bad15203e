#if canImport(Glibc)
import Glibc
#endif

/// Lowers the calling thread's scheduling priority (nice 10) for background work such as scheduled
/// snapshot rounds. On Linux the nice value is per thread, and `who = 0` names the calling thread.
enum LowPriority {
    static let niceValue: Int32 = 10

    static func applyToCurrentThread() {
        #if os(Linux)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceValue)
        #endif
    }
}
