// swift-tools-version:5.9
// aim-swift: frozen image transformers adapted to video action recognition (AIM, ICLR 2023).
// Layers, lowest first: C shims → AIMTensor/AIMConfig → AIMModel → AIMData → AIMDistributed →
// AIMTraining → AIMReport → executables. A target only depends on targets below it.
import PackageDescription

// Hot loops use Swift SIMD types; on x86-64 let them use AVX2/FMA (haswell: every x86 server
// CPU since 2013). Preconditions stay on (no -Ounchecked): shape checks are part of the contract.
#if arch(x86_64)
let fast: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
#else
let fast: [SwiftSetting] = []
#endif

let package = Package(
    name: "aim-swift",
    products: [
        .executable(name: "aim-train", targets: ["aim-train"]),
        .executable(name: "aim-eval", targets: ["aim-eval"]),
        .executable(name: "aim-predict", targets: ["aim-predict"]),
        .executable(name: "aim-model", targets: ["aim-model"]),
        .executable(name: "aim-data", targets: ["aim-data"]),
        .executable(name: "aim-report", targets: ["aim-report"]),
        .executable(name: "aim-bench", targets: ["aim-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // C system libraries (module maps + inline shims for macros Swift cannot import).
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas"),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c"),
        .systemLibrary(name: "CFFmpeg", path: "Sources/CFFmpeg", pkgConfig: "libavformat"),
        // oneDNN (libdnnl-dev 2.6, no pkg-config file): bf16 GEMMs for frozen weights (model.precision: bf16).
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        // CPUID / XGETBV (inline assembly in <cpuid.h>): run-time CPU feature detection.
        .systemLibrary(name: "CCPUID", path: "Sources/CCPUID"),
        // Intel AMX tile products (intrinsics are macros over immediate-operand builtins): bf16 GEMMs.
        .target(name: "CAMX", path: "Sources/CAMX"),

        // Tensors, kernels (forward + backward), threads, RNG, safetensors.
        .target(name: "AIMTensor", dependencies: ["COpenBLAS", "CDNNL", "CCPUID", "CAMX"], swiftSettings: fast),
        // YAML experiment configs with --set overrides and strict key validation.
        .target(name: "AIMConfig", dependencies: [.product(name: "Yams", package: "Yams")]),
        // ViT backbones, adapters, recognizer, parameter registry, counting.
        .target(name: "AIMModel", dependencies: ["AIMTensor", "AIMConfig"], swiftSettings: fast),
        // FFmpeg decoding, samplers, transforms, annotations, loader.
        .target(name: "AIMData", dependencies: ["AIMTensor", "AIMConfig", "CFFmpeg"], swiftSettings: fast),
        // Communicator: MPI or single process, bucketed allreduce.
        .target(name: "AIMDistributed", dependencies: ["AIMTensor", "CMPI"], swiftSettings: fast),
        // Trainer, optimizer schedule, checkpoints, evaluation.
        .target(name: "AIMTraining", dependencies: ["AIMTensor", "AIMConfig", "AIMModel", "AIMData", "AIMDistributed"], swiftSettings: fast),
        // Profiler counters and the efficiency report.
        .target(name: "AIMReport", dependencies: ["AIMTensor", "AIMConfig", "AIMModel", "AIMDistributed", "AIMTraining"]),

        // Command-line tools: argument parsing and one call into the libraries.
        .executableTarget(name: "aim-train", dependencies: ["AIMTraining", "AIMConfig", "AIMTensor", "AIMModel", "AIMData", "AIMDistributed", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "aim-eval", dependencies: ["AIMTraining", "AIMConfig", "AIMTensor", "AIMModel", "AIMData", "AIMDistributed", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "aim-predict", dependencies: ["AIMTraining", "AIMReport", "AIMConfig", "AIMTensor", "AIMData", "AIMDistributed", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "aim-model", dependencies: ["AIMModel", "AIMConfig", "AIMTensor", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "aim-data", dependencies: ["AIMData", "AIMConfig", "AIMTensor", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "aim-report", dependencies: ["AIMReport", "AIMTraining", "AIMConfig", "AIMTensor", "AIMModel", "AIMDistributed", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // Internal: distributed-layer checks and allreduce benchmark, run under mpirun by tests.
        .executableTarget(name: "aim-mpi-check", dependencies: ["AIMDistributed", "AIMTensor"], swiftSettings: fast),
        .executableTarget(name: "aim-bench", dependencies: ["AIMTensor", "AIMModel", "AIMData", "AIMConfig", "AIMReport", "COpenBLAS", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: fast),

        .testTarget(name: "AIMTensorTests", dependencies: ["AIMTensor"]),
        .testTarget(name: "AIMConfigTests", dependencies: ["AIMConfig"]),
        .testTarget(name: "AIMModelTests", dependencies: ["AIMModel", "AIMTensor", "AIMConfig"]),
        .testTarget(name: "AIMDataTests", dependencies: ["AIMData", "AIMTensor", "AIMConfig"]),
        .testTarget(name: "AIMDistributedTests", dependencies: ["AIMDistributed", "AIMTensor", "CMPI"]),
        .testTarget(name: "AIMTrainingTests", dependencies: ["AIMTraining", "AIMTensor", "AIMConfig", "AIMModel", "AIMData", "AIMDistributed"]),
        .testTarget(name: "AIMReportTests", dependencies: ["AIMReport", "AIMTraining", "AIMTensor", "AIMConfig", "AIMModel", "AIMDistributed"]),
        // Multi-node over TCP: hosts as network namespaces (cluster/local_cluster.sh); skipped without ip netns.
        .testTarget(name: "AIMClusterTests", dependencies: ["AIMTensor"]),
    ]
)
