// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

// Linux only: the sources call Glibc directly (fdatasync, malloc_trim, /proc), so no Apple
// platform is declared; README.md says so.
let package = Package(
    name: "LearnStore",
    products: [
        .executable(name: "learnstore", targets: ["learnstore"]),
        .library(name: "LearnStoreModel", targets: ["LearnStoreModel"]),
        .library(name: "LearnStoreEngine", targets: ["LearnStoreEngine"]),
        .library(name: "LearnStoreProtocol", targets: ["LearnStoreProtocol"]),
        .library(name: "LearnStorePersistence", targets: ["LearnStorePersistence"]),
        .library(name: "LearnStoreServer", targets: ["LearnStoreServer"]),
        .library(name: "LearnStoreClient", targets: ["LearnStoreClient"]),
        .library(name: "Zstd", targets: ["Zstd"]),
        .library(name: "LearnStoreWorkload", targets: ["LearnStoreWorkload"]),
        .library(name: "CanvasOutcomes", targets: ["CanvasOutcomes"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "4.1.0"..<"6.0.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        .target(name: "Zstd", dependencies: ["CZstd"], swiftSettings: strict),
        .target(name: "CCRC32C"),
        .target(name: "CPrefetch"),
        .target(name: "LearnStoreModel", swiftSettings: strict),
        .target(name: "LearnStoreWorkload", dependencies: ["LearnStoreModel", "CanvasOutcomes"], swiftSettings: strict),
        .target(
            name: "LearnStoreTokens",
            dependencies: ["LearnStoreModel", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(
            name: "LearnStoreTools",
            dependencies: [
                "LearnStoreModel", "LearnStoreClient", "LearnStoreTokens", "LearnStoreWorkload", "LearnStoreProtocol", "LearnStoreServer",
                "CanvasOutcomes", "CPrefetch",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "LearnStoreEngine",
            dependencies: [
                "LearnStoreModel", "LearnStoreProtocol", "CanvasOutcomes", "CPrefetch",
                .product(name: "HashTreeCollections", package: "swift-collections"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "CanvasOutcomes",
            dependencies: [
                "LearnStoreModel",
                .product(name: "HashTreeCollections", package: "swift-collections"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "LearnStoreProtocol",
            dependencies: [
                "LearnStoreModel", "CanvasOutcomes",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "LearnStorePersistence",
            dependencies: [
                "LearnStoreModel", "LearnStoreEngine", "Zstd", "CCRC32C", "CanvasOutcomes",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "LearnStoreServer",
            dependencies: [
                "LearnStoreModel", "LearnStoreEngine", "LearnStoreProtocol", "LearnStorePersistence", "CanvasOutcomes",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "LearnStoreClient",
            dependencies: [
                "LearnStoreModel", "LearnStoreProtocol", "CanvasOutcomes",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "learnstore",
            dependencies: [
                "LearnStoreModel", "LearnStoreEngine", "LearnStoreProtocol", "LearnStorePersistence",
                "LearnStoreServer", "LearnStoreClient", "LearnStoreTokens", "LearnStoreTools", "CanvasOutcomes",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Helpers every test target shares: a seeded generator, a temporary directory, polling with a deadline.
        .target(
            name: "LearnStoreTestSupport",
            dependencies: ["LearnStoreModel", .product(name: "NIOPosix", package: "swift-nio")],
            path: "Tests/LearnStoreTestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "ZstdTests", dependencies: ["Zstd", "LearnStoreTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "LearnStorePersistenceTests",
            dependencies: [
                "LearnStorePersistence", "LearnStoreEngine", "LearnStoreModel", "LearnStoreWorkload", "CanvasOutcomes",
                "LearnStoreTestSupport",
            ],
            resources: [.copy("Golden")],
            swiftSettings: strict
        ),
        .testTarget(name: "LearnStoreModelTests", dependencies: ["LearnStoreModel"], swiftSettings: strict),
        .testTarget(
            name: "LearnStoreProtocolTests",
            dependencies: [
                "LearnStoreProtocol", "LearnStoreModel", "CanvasOutcomes", "LearnStoreTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            resources: [.copy("Golden")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "LearnStoreServerTests",
            dependencies: [
                "LearnStoreServer", "LearnStoreClient", "LearnStoreEngine", "LearnStoreProtocol", "LearnStoreModel",
                "LearnStorePersistence", "LearnStoreTokens", "LearnStoreTools", "CanvasOutcomes", "LearnStoreWorkload",
                "LearnStoreTestSupport",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CanvasOutcomesTests",
            dependencies: ["CanvasOutcomes", "LearnStoreModel", "LearnStoreTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "LearnStoreEngineTests",
            dependencies: ["LearnStoreEngine", "LearnStoreModel", "CanvasOutcomes", "LearnStoreWorkload", "LearnStoreTestSupport"],
            swiftSettings: strict
        ),
    ]
)
