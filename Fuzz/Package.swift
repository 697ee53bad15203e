// swift-tools-version:6.1
// Coverage-guided fuzzing of LearnStore with libFuzzer and AddressSanitizer. A separate package so
// the main build (and .ci/run) never compiles the sanitized harnesses. Build and run with ./run.sh;
// docs/TESTING.md ("Fuzzing") describes the harnesses and the figures measured with them.
import Foundation
import PackageDescription

// A path dependency's identity is its directory name, which depends on where the repository was cloned.
let main = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

/// One libFuzzer harness: an executable whose only entry point is `LLVMFuzzerTestOneInput`.
func harness(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(name: name, dependencies: ["FuzzSupport"] + dependencies, swiftSettings: [.swiftLanguageMode(.v6)])
}

let package = Package(
    name: "LearnStoreFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .target(
            name: "FuzzSupport",
            dependencies: [
                .product(name: "LearnStoreModel", package: main),
                .product(name: "LearnStoreEngine", package: main),
                .product(name: "LearnStorePersistence", package: main),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        harness("FuzzFrameDecoder", [
            .product(name: "LearnStoreProtocol", package: main),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        harness("FuzzRequestDecoders", [
            .product(name: "LearnStoreProtocol", package: main),
            .product(name: "LearnStoreModel", package: main),
            .product(name: "CanvasOutcomes", package: main),
        ]),
        harness("FuzzJSONParsers", [
            .product(name: "LearnStoreModel", package: main),
            .product(name: "CanvasOutcomes", package: main),
        ]),
        harness("FuzzTokenVerifier", [
            .product(name: "LearnStoreServer", package: main),
            .product(name: "LearnStoreModel", package: main),
        ]),
        harness("FuzzPersistence", [
            .product(name: "LearnStorePersistence", package: main),
            .product(name: "Zstd", package: main),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "LearnStoreEngine", package: main),
            .product(name: "LearnStoreModel", package: main),
        ]),
        harness("FuzzServerSession", [
            .product(name: "LearnStoreServer", package: main),
            .product(name: "LearnStoreProtocol", package: main),
            .product(name: "LearnStoreEngine", package: main),
            .product(name: "LearnStorePersistence", package: main),
            .product(name: "LearnStoreModel", package: main),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
    ]
)
