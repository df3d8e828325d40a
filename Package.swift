// swift-tools-version:6.1
import Foundation
import PackageDescription

let package = Package(
    name: "Allot",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "allot", targets: ["allot"]),
        .executable(name: "allot-load", targets: ["allot-load"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.4"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        // ---- C libraries, each wrapped once ----
        .systemLibrary(name: "CEvent",
                       providers: [.apt(["libevent-dev"])]),
        .systemLibrary(name: "CHiredis",
                       providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CSQLite",
                       providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CHTTPParser",
                       providers: [.apt(["libhttp-parser-dev"])]),
        // zlib: one of the Swift toolchain's own prerequisites on Linux.
        .systemLibrary(name: "CZlib",
                       providers: [.apt(["zlib1g-dev"])]),

        // ---- thin Swift layers over them: no business rules ----
        // One libevent event_base per thread, and work handed to it.
        .target(name: "EventLoops", dependencies: ["CEvent"]),
        .target(name: "EventHTTP", dependencies: ["EventLoops", "CEvent", "CHTTPParser", "CZlib"]),
        .target(name: "RedisClient", dependencies: ["EventLoops", "CHiredis", "CEvent"]),
        .target(name: "SQLiteStore", dependencies: ["CSQLite"]),
        // Child processes and a supervised redis-server: the server's and
        // the load harness's.
        .target(name: "ProcessSupervision", dependencies: [
            "EventLoops", "EventHTTP", "RedisClient", .product(name: "Logging", package: "swift-log"),
        ]),

        // ---- the domain: no I/O at all ----
        .target(name: "AllotDomain", dependencies: [
            .product(name: "Crypto", package: "swift-crypto"),
        ]),

        // ---- the application: routes, handlers, persister, config ----
        .target(name: "AllotServer", dependencies: [
            "AllotDomain", "EventLoops", "EventHTTP", "RedisClient", "SQLiteStore", "ProcessSupervision",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Mustache", package: "swift-mustache"),
        ], resources: [.copy("RedisContract/Scripts"), .copy("Operations/Contract/openapi.yaml"),
                       .copy("Pages/Templates"), .copy("Pages/Messages")]),

        .executableTarget(name: "allot", dependencies: [
            "AllotServer", "AllotDomain", "RedisClient",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // ---- the load harness load testers run (LoadTests/README.md) ----
        .executableTarget(name: "allot-load", dependencies: [
            "AllotDomain", "EventLoops", "EventHTTP", "RedisClient", "SQLiteStore", "ProcessSupervision",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Histogram", package: "hdrhistogram-swift"),
        ], path: "LoadTests/allot-load"),

        // ---- micro-benchmarks (BENCHMARKS.md): swift package benchmark ----
        .executableTarget(name: "AllotBenchmarks", dependencies: [
            "AllotDomain", "AllotServer", "SQLiteStore", "RedisClient",
            .product(name: "Benchmark", package: "benchmark"),
        ], path: "Benchmarks/AllotBenchmarks", plugins: [
            .plugin(name: "BenchmarkPlugin", package: "benchmark"),
        ]),

        .testTarget(name: "AllotDomainTests", dependencies: ["AllotDomain", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "EventHTTPTests", dependencies: ["EventHTTP", "EventLoops"]),
        .testTarget(name: "RedisClientTests", dependencies: ["RedisClient", "EventLoops", "CHiredis", "ProcessSupervision",
                                                            .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "SQLiteStoreTests", dependencies: ["SQLiteStore"]),
        .testTarget(name: "AllotLoadTests", dependencies: [
            "allot-load", "AllotDomain", "EventHTTP", "EventLoops",
            .product(name: "Histogram", package: "hdrhistogram-swift"),
        ], path: "LoadTests/Tests"),
        .testTarget(name: "AllotServerTests", dependencies: [
            "AllotServer", "AllotDomain", "SQLiteStore", "RedisClient", "EventLoops", "EventHTTP", "ProcessSupervision",
            .product(name: "Logging", package: "swift-log"),
        ]),
    ]
)

// The libFuzzer target exists only for scripts/fuzz.sh (ALLOT_FUZZ=1): it has
// no main of its own, so it links only with -sanitize=fuzzer.
if ProcessInfo.processInfo.environment["ALLOT_FUZZ"] == "1" {
    // The benchmark plugin's tool does not link with the sanitizer flags.
    package.targets.removeAll { $0.name == "AllotBenchmarks" }
    package.products.append(.executable(name: "allot-fuzz", targets: ["allot-fuzz"]))
    package.targets.append(.executableTarget(name: "allot-fuzz", dependencies: ["AllotDomain"], path: "Fuzz/allot-fuzz",
                                             swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
}
