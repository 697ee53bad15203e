import Foundation
import LearnStoreTestSupport
import LearnStoreTools
import Testing

/// Tools with a work directory never delete what they did not create.
@Suite struct ScratchDirectoryTests {
    @Test func aNonEmptyDirectoryIsRefusedAndKept() throws {
        let directory = TemporaryDirectory(prefix: "learnstore-scratch-test-")
        let path = directory.path
        try "keep me".write(toFile: path + "/notes.txt", atomically: true, encoding: .utf8)
        #expect(throws: ScratchDirectory.Refused.self) { try ScratchDirectory(path: path, prefix: "x-") }
        #expect(FileManager.default.fileExists(atPath: path + "/notes.txt"))
    }

    @Test func aFileIsRefused() throws {
        let directory = TemporaryDirectory(prefix: "learnstore-scratch-test-")
        let path = directory.path + "/file"
        try "a file".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ScratchDirectory.Refused.self) { try ScratchDirectory(path: path, prefix: "x-") }
    }

    @Test func anEmptyDirectoryGivenByTheUserKeepsEverythingButTheToolsOwnFiles() throws {
        let directory = TemporaryDirectory(prefix: "learnstore-scratch-test-")
        let path = directory.path
        let scratch = try ScratchDirectory(path: path, prefix: "x-")
        #expect(!scratch.created)
        try FileManager.default.createDirectory(atPath: path + "/data", withIntermediateDirectories: true)
        try "log".write(toFile: path + "/server-0.log", atomically: true, encoding: .utf8)
        // Written by someone else while the tool ran.
        try "theirs".write(toFile: path + "/theirs.txt", atomically: true, encoding: .utf8)
        scratch.clean(entries: CrashTester.entriesWritten)
        #expect(try FileManager.default.contentsOfDirectory(atPath: path) == ["theirs.txt"])
    }

    @Test func aDirectoryTheToolCreatedIsRemovedWhole() throws {
        let directory = TemporaryDirectory(prefix: "learnstore-scratch-test-")
        let path = directory.path + "/nested"
        let scratch = try ScratchDirectory(path: path, prefix: "x-")
        #expect(scratch.created)
        try "x".write(toFile: path + "/anything", atomically: true, encoding: .utf8)
        scratch.clean(entries: [])
        #expect(!FileManager.default.fileExists(atPath: path))
        let fresh = try ScratchDirectory(path: nil, prefix: "learnstore-scratch-test-")
        #expect(fresh.created)
        fresh.clean(entries: [])
        #expect(!FileManager.default.fileExists(atPath: fresh.path))
    }
}
