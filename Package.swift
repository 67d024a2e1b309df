// swift-tools-version: 6.0
import PackageDescription

// Library targets depend on system libraries only; swift-argument-parser is used by the CLI alone.
// Build with `--explicit-target-dependency-import-check error` (the Makefile does) so that the
// import rules of docs/ARCHITECTURE.md are enforced.
let package = Package(
    name: "Kiln",
    products: [
        .library(name: "Kiln", targets: ["Kiln"]),
        .executable(name: "kiln", targets: ["kiln"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        .target(name: "KilnCore", linkerSettings: [.linkedLibrary("m")]),
        .target(name: "KilnGraph", dependencies: ["KilnCore"]),
        .target(name: "KilnRuntime", dependencies: ["KilnCore", "KilnGraph", "CDNNL"]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG"),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG"),
        .target(name: "KilnPartition", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime"]),
        .target(name: "KilnTrain", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime"]),
        .target(name: "KilnData", dependencies: ["KilnCore", "CZlib", "CJPEG", "CPNG"]),
        // The engine core: IR, passes, IR checker, memory planner, cache keys. No C library: both
        // engines (KilnEngine on oneDNN, KilnCUDA's engine) are lowerings of its IR.
        .target(name: "KilnEngineCore", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime"]),
        .target(name: "KilnEngine", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime", "KilnEngineCore", "CDNNL"]),
        .target(name: "KilnGluon", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime", "KilnTrain"]),
        .target(name: "KilnCUDA", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime", "KilnEngineCore"]),
        .target(name: "KilnConformance", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime"]),
        .target(name: "Kiln", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime", "KilnPartition", "KilnTrain", "KilnData", "KilnEngineCore", "KilnEngine", "KilnGluon", "KilnCUDA", "KilnConformance"]),
        .executableTarget(
            name: "kiln",
            dependencies: ["Kiln", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .target(name: "TestSupport", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime", "KilnConformance"], path: "Tests/TestSupport"),
        .testTarget(name: "KilnPartitionTests", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime", "KilnPartition", "TestSupport"]),
        .testTarget(name: "KilnTrainTests", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime", "KilnTrain", "TestSupport"]),
        .testTarget(name: "KilnGluonTests", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime", "KilnTrain", "KilnGluon", "TestSupport"]),
        .testTarget(name: "KilnDataTests", dependencies: ["KilnCore", "KilnData", "TestSupport"]),
        .testTarget(name: "KilnTests", dependencies: ["Kiln", "TestSupport"]),
        .testTarget(name: "KilnCUDATests", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime", "KilnEngineCore", "KilnCUDA", "TestSupport"]),
        .testTarget(name: "KilnCoreTests", dependencies: ["KilnCore", "TestSupport"]),
        .testTarget(name: "KilnGraphTests", dependencies: ["KilnCore", "KilnGraph", "TestSupport"]),
        .testTarget(name: "KilnEngineTests", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime", "KilnEngineCore", "KilnEngine", "TestSupport"]),
        .testTarget(name: "KilnRuntimeTests", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime", "GraphFuzzing", "TestSupport"]),
        .testTarget(name: "KilnConformanceTests", dependencies: ["Kiln", "TestSupport"]),
        // Fuzz targets, one per file loader: libFuzzer entry points when built by tools/fuzz.sh
        // (-DKILN_FUZZ), crash replayers (`FuzzNPY FILE...`) in a normal build.
        .target(name: "FuzzSupport"),
        .executableTarget(name: "FuzzNPY", dependencies: ["KilnCore", "FuzzSupport"]),
        .executableTarget(name: "FuzzParams", dependencies: ["KilnCore", "FuzzSupport"]),
        .executableTarget(name: "FuzzSymbol", dependencies: ["KilnCore", "KilnGraph", "FuzzSupport"]),
        // The structure-aware graph fuzzer: SymbolRecipe turns bytes into a symbol and its shapes,
        // GraphCheck reads, infers, binds and runs it; a library so that unit tests drive it too.
        .target(name: "GraphFuzzing", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime"]),
        .executableTarget(name: "FuzzGraph", dependencies: ["GraphFuzzing", "FuzzSupport"]),
        // The cpu engine's benchmark: engine vs framework images/s, compile and cache timings.
        .executableTarget(name: "EngineBench", dependencies: ["KilnCore", "KilnGraph", "KilnRuntime", "KilnEngineCore", "KilnEngine"]),
    ],
    swiftLanguageModes: [.v6]
)
