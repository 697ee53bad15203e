import Foundation
import LearnStoreModel

/// Knobs read from the environment (CI runs the defaults; a developer scales them up).
enum TestEnvironment {
    static func integer(_ name: String, default value: Int) -> Int {
        ProcessInfo.processInfo.environment[name].flatMap { Int($0.replacingOccurrences(of: "_", with: "")) } ?? value
    }

    static func flag(_ name: String) -> Bool {
        guard let value = ProcessInfo.processInfo.environment[name] else { return false }
        return !value.isEmpty && value != "0"
    }
}

/// Paths in the source tree (golden files are read from and regenerated into the checkout, and the
/// protocol document is read from `docs/`).
enum SourceTree {
    static let testDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let goldenDirectory = testDirectory.appendingPathComponent("Golden")
    static let packageRoot = testDirectory.deletingLastPathComponent().deletingLastPathComponent()
    static let protocolDocument = packageRoot.appendingPathComponent("docs/PROTOCOL.md")
}

/// Lowercase hex, bytes separated by spaces.
func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String(format: "%02x", $0) }.joined(separator: " ")
}
