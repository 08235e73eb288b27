// swift-tools-version: 6.2
// Vigil: a streaming fraud and anomaly detection engine over Kafka.
// Build through scripts/ (they set PKG_CONFIG_PATH for librdkafka 2.8 and OpenBLAS), or run
// `eval "$(scripts/env.sh)"` once in a shell and use `swift build` / `swift test` directly.
import Foundation
import PackageDescription

// librdkafka is linked statically from .deps/ by default, so `vigil` needs no LD_LIBRARY_PATH.
// VIGIL_RDKAFKA=system links the system's shared librdkafka instead (it must be >= 2.8.0).
let useSystemRdKafka = ProcessInfo.processInfo.environment["VIGIL_RDKAFKA"] == "system"
// The libFuzzer driver (Tests/Fuzz) exists only for scripts/fuzz.sh, which builds it with
// -sanitize=fuzzer: without the sanitizer it cannot link, so a normal build never sees it.
let withFuzzTargets = ProcessInfo.processInfo.environment["VIGIL_FUZZ"] == "1"

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .treatAllWarnings(as: .error),
]

// Each target lists exactly the modules its sources import (system modules aside).
let log = Target.Dependency.product(name: "Logging", package: "swift-log")

let package = Package(
    name: "Vigil",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vigil", targets: ["vigil"]),
        .library(name: "VigilEngine", targets: ["VigilEngine"]),
        .library(name: "VigilKafka", targets: ["VigilKafka"]),
        .library(name: "VigilFeatures", targets: ["VigilCore", "VigilFeatures"]),
        .library(name: "VigilModels", targets: ["VigilModels"]),
        .library(name: "VigilSynthetic", targets: ["VigilSynthetic"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.2.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.0.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CRdKafka", path: "Sources/CRdKafka",
            pkgConfig: useSystemRdKafka ? "rdkafka" : "rdkafka-static"),
        .systemLibrary(name: "CLZ4", path: "Sources/CLZ4", pkgConfig: "liblz4"),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas"),

        .target(name: "VigilCore", dependencies: ["CLZ4"], swiftSettings: strict),
        .target(
            name: "VigilFeatures",
            dependencies: ["VigilCore", .product(name: "Atomics", package: "swift-atomics")],
            swiftSettings: strict),
        .target(name: "VigilModels", dependencies: ["VigilCore", "COpenBLAS"], swiftSettings: strict),
        // The synthetic card-payment stream: `vigil generate`, the tests, the benches and the demo.
        .target(name: "VigilSynthetic", dependencies: ["VigilCore", "VigilFeatures"], swiftSettings: strict),
        .target(
            name: "VigilKafka",
            dependencies: ["CRdKafka", log, .product(name: "Metrics", package: "swift-metrics")],
            swiftSettings: strict),
        .target(
            name: "VigilEngine",
            dependencies: [
                "VigilCore", "VigilFeatures", "VigilModels", "VigilKafka", "Yams", log,
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "vigil",
            dependencies: [
                "VigilCore", "VigilEngine", "VigilKafka", "VigilModels", "VigilSynthetic", log,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),

        // Shared by tests only: the broker gate (KAFKA_BOOTSTRAP / CI), running the built CLI,
        // quiet loggers, a manual clock, and a thread of its own for each test.
        .target(
            name: "VigilTestKit", dependencies: [log, "CRdKafka"], path: "Tests/VigilTestKit", swiftSettings: strict),
        .testTarget(name: "VigilCoreTests", dependencies: ["VigilCore", "VigilTestKit"], swiftSettings: strict),
        .testTarget(
            name: "VigilFeaturesTests",
            dependencies: [
                "VigilCore", "VigilFeatures", "VigilTestKit",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "VigilModelsTests",
            dependencies: [
                "VigilCore", "VigilFeatures", "VigilModels", "VigilSynthetic", "VigilTestKit",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            resources: [.copy("Fixtures")], swiftSettings: strict),
        .testTarget(
            name: "VigilSyntheticTests", dependencies: ["VigilSynthetic", "VigilTestKit"], swiftSettings: strict),
        .testTarget(
            name: "VigilKafkaTests",
            dependencies: [
                "VigilKafka", "VigilTestKit", log, .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "VigilEngineTests",
            dependencies: [
                "VigilCore", "VigilFeatures", "VigilModels", "VigilSynthetic", "VigilKafka", "VigilEngine",
                "VigilTestKit", log,
            ],
            resources: [.copy("Fixtures")], swiftSettings: strict),
    ]
)

if withFuzzTargets {
    package.targets.append(
        .executableTarget(
            name: "vigil-fuzz",
            dependencies: [
                "VigilCore", "VigilModels", "VigilSynthetic", "VigilEngine",
                .product(name: "HummingbirdCore", package: "hummingbird"),
            ],
            path: "Tests/Fuzz/VigilFuzz", swiftSettings: [.swiftLanguageMode(.v6)]))
    package.products.append(.executable(name: "vigil-fuzz", targets: ["vigil-fuzz"]))
}
