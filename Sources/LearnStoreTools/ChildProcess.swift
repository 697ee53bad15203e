import Foundation
import LearnStoreModel
#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn`, its output in files.
///
/// Foundation's `Process.run()` on Linux can read past a buffer while it closes the parent's
/// descriptors (swift-corelibs-foundation, `findMaximumOpenFromProcSelfFD`), which crashed a test
/// process about once in a few suite runs; spawning directly avoids that code, and glibc closes the
/// inherited descriptors itself (`posix_spawn_file_actions_addclosefrom_np`).
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private let lock = NSLock()
    private var reapedStatus: Int32?

    init(pid: pid_t) { self.pid = pid }

    /// Starts `executable` with `arguments`; standard output and error go to the files at those paths
    /// (appended, created if missing; nil is /dev/null), standard input is /dev/null. Signal
    /// dispositions and the signal mask are reset to their defaults in the child.
    public static func spawn(_ executable: String, _ arguments: [String], standardOutput: String?, standardError: String?,
                             environment: [String: String]? = nil) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let appendFlags = O_WRONLY | O_CREAT | O_APPEND
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, standardOutput ?? "/dev/null", appendFlags, 0o644)
        if let standardError, standardError == standardOutput {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, standardError ?? "/dev/null", appendFlags, 0o644)
        }
        _ = closeInheritedDescriptors?(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let environmentLines = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environmentLines.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw LearnStoreError(.internalError, "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        return ChildProcess(pid: pid)
    }

    /// glibc ≥ 2.34 declares it only under `_GNU_SOURCE`, which Swift's Glibc module does not set.
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let closeInheritedDescriptors: CloseFrom? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: CloseFrom.self)
    }()

    /// Reaps the child if it has exited; never blocks.
    private func poll() -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        if let reapedStatus { return reapedStatus }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid {
            reapedStatus = status
        } else if result < 0 && errno != EINTR {
            reapedStatus = 0  // not our child any more (reaped elsewhere): treat it as gone
        }
        return reapedStatus
    }

    public var isRunning: Bool { poll() == nil }

    /// The exit code of a process that exited, or the number of the signal that ended it; 0 while running.
    public var terminationStatus: Int32 {
        guard let status = poll() else { return 0 }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : signal
    }

    /// True when the process was ended by a signal.
    public var wasSignaled: Bool {
        guard let status = poll() else { return false }
        let signal = status & 0x7f
        return signal != 0 && signal != 0x7f
    }

    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// Waits until the process has exited, polling every few milliseconds without holding a thread.
    @discardableResult
    public func exited() async -> Int32 {
        await exited(within: nil)!
    }

    /// Waits at most `timeout` (nil: for ever) for the process to exit: its status, or nil while it
    /// still runs.
    public func exited(within timeout: Duration?) async -> Int32? {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while isRunning {
            if let deadline, ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return terminationStatus
    }

    /// Blocks the calling thread until the process has exited; for short synchronous helpers only.
    @discardableResult
    public func waitUntilExit() -> Int32 {
        while isRunning { usleep(2_000) }
        return terminationStatus
    }
}
