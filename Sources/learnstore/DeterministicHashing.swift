import Foundation

/// Swift seeds its hash functions per process, so a dictionary's order changes from one process to
/// the next, and so do a simulation's random draws wherever the code it runs walks a dictionary: a
/// failing seed would not replay in another process. The simulation commands therefore run with
/// deterministic hashing, starting themselves again with it once when it is off.
enum DeterministicHashing {
    static let variable = "SWIFT_DETERMINISTIC_HASHING"

    /// Returns only when hashing is deterministic, or when the process cannot start itself again (it
    /// then goes on as it is, and says so).
    static func ensure() {
        guard getenv(variable) == nil else { return }
        setenv(variable, "1", 1)
        var arguments: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) }
        arguments.append(nil)
        execv("/proc/self/exe", &arguments)
        let reason = String(cString: strerror(errno))
        FileHandle.standardError.write(Data("warning: could not start again with \(variable)=1 (\(reason)); a seed may not replay in another process\n".utf8))
    }
}
