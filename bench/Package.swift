// swift-tools-version: 6.2
// Vigil's benchmarks (the Kafka ones need a broker). Built and run by the scripts beside this file, which set
// PKG_CONFIG_PATH as the main package needs.
import Foundation
import PackageDescription

// A path dependency's identity is its folder's name, which depends on where Vigil was cloned.
let vigil = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "VigilBench",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .executableTarget(
            name: "kafka-bench",
            dependencies: [
                .product(name: "VigilKafka", package: vigil),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(
            name: "feature-bench",
            dependencies: [
                .product(name: "VigilFeatures", package: vigil), .product(name: "VigilEngine", package: vigil),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(
            name: "keyed-bench",
            dependencies: [
                .product(name: "VigilFeatures", package: vigil), .product(name: "VigilEngine", package: vigil),
                .product(name: "VigilSynthetic", package: vigil),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(
            name: "pipeline-bench",
            dependencies: [
                .product(name: "VigilEngine", package: vigil), .product(name: "VigilKafka", package: vigil),
                .product(name: "VigilFeatures", package: vigil), .product(name: "VigilSynthetic", package: vigil),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(
            name: "model-bench",
            dependencies: [
                .product(name: "VigilModels", package: vigil), .product(name: "VigilFeatures", package: vigil),
                .product(name: "VigilSynthetic", package: vigil),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]),
    ]
)
