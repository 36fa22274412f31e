// swift-tools-version: 6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "tide",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tide", targets: ["tide"]),
        .executable(name: "tide-bench", targets: ["tide-bench"]),
        .library(name: "TideCLI", targets: ["TideCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.29.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibgit2",
            pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev"])]
        ),
        .systemLibrary(
            name: "CLibYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        .target(
            name: "TideGit", dependencies: ["CLibgit2", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict),
        .target(
            name: "TideManifest",
            dependencies: ["TideGit", "CLibYAML"],
            swiftSettings: strict
        ),
        .target(
            name: "TideState",
            dependencies: ["TideManifest", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict
        ),
        .target(
            name: "TideExecutors",
            dependencies: [
                "TideManifest", .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "TideEngine",
            dependencies: [
                "TideGit", "TideManifest", "TideState", "TideExecutors",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(name: "TideMetrics", dependencies: ["TideState"], swiftSettings: strict),
        .target(
            name: "TideDocuments",
            dependencies: ["TideManifest", "TideState", "TideEngine", "TideMetrics"],
            swiftSettings: strict
        ),
        .target(
            name: "TideService",
            dependencies: [
                "TideGit", "TideManifest", "TideState", "TideEngine", "TideExecutors", "TideMetrics", "TideDocuments",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "TideCLI",
            dependencies: [
                "TideGit", "TideManifest", "TideState", "TideEngine", "TideExecutors", "TideMetrics", "TideService",
                "TideDocuments",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "tide", dependencies: ["TideCLI"], swiftSettings: strict),
        .executableTarget(
            name: "tide-bench",
            dependencies: [
                "TideGit", "TideManifest", "TideState", "TideEngine", "TideExecutors", "TideMetrics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "TideTestSupport",
            dependencies: [
                "TideGit", "TideManifest", "TideState", "TideEngine", "TideExecutors",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "TideGitTests", dependencies: ["TideGit", "TideTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "TideManifestTests",
            dependencies: ["TideManifest", "TideTestSupport"],
            exclude: ["Corpus", "DecoderGolden"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TideStateTests",
            dependencies: ["TideState", "TideTestSupport", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TideExecutorsTests",
            dependencies: ["TideExecutors", "TideTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TideEngineTests",
            dependencies: ["TideEngine", "TideTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TideMetricsTests",
            dependencies: ["TideMetrics", "TideEngine", "TideTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TideServiceTests",
            dependencies: [
                "TideService", "TideGit", "TideTestSupport", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TideEndToEndTests",
            dependencies: ["TideCLI", "TideDocuments", "TideExecutors", "TideManifest", "TideTestSupport", "tide"],
            exclude: ["Golden"],
            swiftSettings: strict
        ),
    ]
)

// The fuzz targets (scripts/fuzz): built only with TIDE_FUZZ set, with libFuzzer's main (`-sanitize=fuzzer`).
if Context.environment["TIDE_FUZZ"] != nil {
    let fuzzed: [(String, Target.Dependency)] = [
        ("tide-fuzz-manifest", "TideManifest"), ("tide-fuzz-condition", "TideManifest"),
        ("tide-fuzz-remote-url", "TideManifest"), ("tide-fuzz-webhook", "TideService"),
    ]
    for (name, library) in fuzzed {
        package.targets.append(
            .executableTarget(
                name: name, dependencies: [library],
                swiftSettings: strict + [.unsafeFlags(["-parse-as-library"])]))
        package.products.append(.executable(name: name, targets: [name]))
    }
}
