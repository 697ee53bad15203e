import Foundation
import LearnStoreModel

/// A seeded generator so random tests are reproducible (SplitMix64).
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            var word = next()
            for _ in 0..<min(8, count - out.count) {
                out.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        return out
    }

    /// True with probability `numerator / denominator`.
    mutating func chance(_ numerator: Int, in denominator: Int) -> Bool { Int.random(in: 0..<denominator, using: &self) < numerator }
}

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
