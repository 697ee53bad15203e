import Foundation

/// A fresh temporary directory, removed when the test's scope ends.
public final class TemporaryDirectory {
    public let path: String

    /// `prefix` names the directory after the test, so one left behind by a crashed run is recognisable.
    public init(prefix: String = "learnstore-test-") {
        path = NSTemporaryDirectory() + prefix + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Set when a test fails with files worth reading (a node's logs): the directory then stays.
    public var keepsContents = false

    deinit { if !keepsContents { try? FileManager.default.removeItem(atPath: path) } }
}
