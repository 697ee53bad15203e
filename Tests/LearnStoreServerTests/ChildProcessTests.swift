import Foundation
import LearnStoreTestSupport
import LearnStoreTools
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct ChildProcessTests {
    @Test func theExitCodeAndBothOutputsReachTheirFiles() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-child-")
        let out = scratch.path + "/out", err = scratch.path + "/err"
        let child = try ChildProcess.spawn("/bin/sh", ["-c", "echo to-out; echo to-err >&2; exit 3"], standardOutput: out, standardError: err)
        #expect(await child.exited() == 3)
        #expect(!child.isRunning && !child.wasSignaled)
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "to-out\n")
        #expect(try String(contentsOfFile: err, encoding: .utf8) == "to-err\n")
    }

    @Test func oneFileTakesBothOutputsInOrder() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-child-")
        let log = scratch.path + "/log"
        let child = try ChildProcess.spawn("/bin/sh", ["-c", "echo one; echo two >&2; echo three"], standardOutput: log, standardError: log)
        #expect(await child.exited() == 0)
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "one\ntwo\nthree\n")
    }

    @Test func aSignalEndsTheChildAndIsReported() async throws {
        // The test runner may ignore SIGTERM-like signals; the child starts with default dispositions.
        let child = try ChildProcess.spawn("/bin/sleep", ["30"], standardOutput: nil, standardError: nil)
        #expect(child.isRunning)
        child.signal(SIGTERM)
        #expect(await child.exited() == SIGTERM)
        #expect(child.wasSignaled)
    }

    @Test func aMissingExecutableIsATypedError() {
        #expect(throws: (any Error).self) {
            try ChildProcess.spawn("/nonexistent/learnstore", [], standardOutput: nil, standardError: nil)
        }
    }

    @Test func theParentsDescriptorsAreNotInherited() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-child-")
        let probe = open(scratch.path + "/probe", O_WRONLY | O_CREAT, 0o644)  // no O_CLOEXEC
        defer { close(probe) }
        let out = scratch.path + "/out"
        let child = try ChildProcess.spawn("/bin/sh", ["-c", "ls /proc/self/fd"], standardOutput: out, standardError: nil)
        #expect(await child.exited() == 0)
        let descriptors = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").compactMap { Int($0) }
        #expect(!descriptors.contains(Int(probe)))
    }
}
