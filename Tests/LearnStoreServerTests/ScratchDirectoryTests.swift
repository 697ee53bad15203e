import Foundation
import LearnStoreTools
import Testing

/// Tools with a work directory never delete what they did not create.
@Suite struct ScratchDirectoryTests {
    static func temporaryPath() -> String { NSTemporaryDirectory() + "learnstore-scratch-test-" + UUID().uuidString }

    @Test func aNonEmptyDirectoryIsRefusedAndKept() throws {
        let path = Self.temporaryPath()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "keep me".write(toFile: path + "/notes.txt", atomically: true, encoding: .utf8)
        #expect(throws: ScratchDirectory.Refused.self) { try ScratchDirectory(path: path, prefix: "x-") }
        #expect(FileManager.default.fileExists(atPath: path + "/notes.txt"))
    }

    @Test func aFileIsRefused() throws {
        let path = Self.temporaryPath()
        try "a file".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: ScratchDirectory.Refused.self) { try ScratchDirectory(path: path, prefix: "x-") }
    }

    @Test func anEmptyDirectoryGivenByTheUserKeepsEverythingButTheToolsOwnFiles() throws {
        let path = Self.temporaryPath()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
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
        let path = Self.temporaryPath() + "/nested"
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
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
