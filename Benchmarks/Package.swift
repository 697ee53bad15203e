// swift-tools-version:6.1
// Micro-benchmarks of LearnStore's hot paths (ordo-one/benchmark). A separate package so the main
// build (and .ci/run) never compiles the benchmark framework.
//
//   cd Benchmarks && swift package benchmark                     # run all
//   swift package benchmark thresholds check                      # compare with the checked-in thresholds
//   swift package --allow-writing-to-package-directory benchmark thresholds update   # after a deliberate change
import Foundation
import PackageDescription

// A path dependency's identity is its directory name, which depends on where the repository was cloned.
let main = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "LearnStoreBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .executableTarget(
            name: "LearnStoreBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "LearnStoreModel", package: main),
                .product(name: "LearnStoreEngine", package: main),
                .product(name: "LearnStoreProtocol", package: main),
                .product(name: "LearnStorePersistence", package: main),
                .product(name: "LearnStoreWorkload", package: main),
                .product(name: "CanvasOutcomes", package: main),
                .product(name: "Zstd", package: main),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/LearnStoreBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The SwiftNIO floor of a request (Benchmarks/nio-floor.sh): no LearnStore code at all.
        .executableTarget(
            name: "NIOFloor",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/NIOFloor"
        ),
    ]
)
