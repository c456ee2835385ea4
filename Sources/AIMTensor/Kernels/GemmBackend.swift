import CDNNL
import COpenBLAS
import Foundation

// The fp32 GEMM library behind the linear layers (the step's large products). Which one is
// fastest depends on the CPU, not only its class (BLIS has Zen kernels that Debian's OpenBLAS
// lacks; oneDNN led on Zen 4 and not on Zen 5), so a run measures them on its model's shapes
// (`GemmProbe`, `GemmChoice`); the `gemm` config key or `AIM_GEMM` force one. Attention's small per-head products and
// the bias sums stay on OpenBLAS: they run one serial call per thread, which OpenMP-threaded
// libraries would oversubscribe.

/// A library that can run the linear layers' fp32 products.
public enum GemmLibrary: String, CaseIterable, Sendable {
    case openblas, onednn, blis
}

/// `gemm: blis` where no BLIS library can be loaded, or an unknown name.
public struct GemmLibraryError: Error, CustomStringConvertible {
    public let description: String
}

public enum Gemm {
    nonisolated(unsafe) public private(set) static var library: GemmLibrary = .openblas
    /// Threads the selected library uses (kept so a library switch carries the count over).
    nonisolated(unsafe) private static var threads = 1

    /// The measured fastest library per CPU class, on whole training steps (`make bench`, "AIM step
    /// with each library"), not on isolated GEMMs: oneDNN wins most shapes alone (AMD EPYC family 26,
    /// AVX-512: 395 against 376 GFLOP/s) but not the step, where its OpenMP pool alternates with
    /// OpenBLAS's (attention) and ours (2.88 against 2.78 s). Under AVX2 the two were within the
    /// machine's noise on AMD (medians 4.48–5.32 s each over three alternating rounds), and on an
    /// Intel Xeon oneDNN was 7 % slower and BLIS level with OpenBLAS (8.17 against 8.25 s); Debian's
    /// BLIS 0.9.0 does not know the AMD family-26 CPU and runs generic kernels there (13.7 s).
    /// So OpenBLAS, with one thread pool fewer, where nothing is measured (a tool without a model);
    /// runs measure (`GemmChoice`).
    public static func defaultLibrary(for cls: CPUClass) -> GemmLibrary {
        switch cls {
        case .avx2, .baseline: return .openblas
        case .avx512, .avx512bf16, .amx: return .openblas
        }
    }

    /// The library a `gemm` setting names: "auto" means `AIM_GEMM` when set, else the CPU class's default.
    public static func resolve(_ setting: String) throws -> GemmLibrary {
        var name = setting.lowercased()
        if name == "auto" || name.isEmpty {
            name = ProcessInfo.processInfo.environment["AIM_GEMM"]?.lowercased() ?? "auto"
            if name == "auto" || name.isEmpty { return defaultLibrary(for: CPUFeatures.current.cpuClass) }
        }
        guard let lib = GemmLibrary(rawValue: name) else {
            throw GemmLibraryError(description: "unknown GEMM library '\(name)' (gemm / AIM_GEMM: auto, openblas, onednn or blis)")
        }
        return lib
    }

    /// Makes `lib` the library of the linear layers; throws if it cannot be loaded here.
    public static func select(_ lib: GemmLibrary) throws {
        switch lib {
        case .openblas: break
        case .onednn: OneDNN.configure
        case .blis: _ = try BLIS.load()
        }
        library = lib
        setThreads(threads)
    }

    /// Whether `lib` can run here (BLIS is loaded at run time and may be absent).
    public static func isAvailable(_ lib: GemmLibrary) -> Bool {
        lib != .blis || (try? BLIS.load()) != nil
    }

    /// Called by `Threads.set`: the selected library's threads (OpenBLAS's are set there too).
    static func setThreads(_ n: Int) {
        threads = n
        switch library {
        case .openblas: break
        case .onednn: OneDNN.setThreads(n)
        case .blis: (try? BLIS.load())?.setThreads(n)
        }
    }

    /// What runs the products, for logs and benchmark headers: "OpenBLAS 0.3.21 (core SkylakeX)".
    public static func describe(_ lib: GemmLibrary) -> String {
        switch lib {
        case .openblas: return "OpenBLAS (core \(OpenBLASInfo.coreName))"
        case .onednn: return "oneDNN fp32 sgemm (isa \(OneDNN.effectiveISAName))"
        case .blis:
            guard let b = try? BLIS.load() else { return "BLIS (not installed)" }
            // BLIS falls back to its reference kernels on CPUs it does not know (5–6× slower here).
            let note = b.archName == "generic" ? ": no kernels for this CPU, slow" : ""
            return "BLIS \(b.version) (\(b.variant), config \(b.archName)\(note))"
        }
    }

    /// C[M, N] = alpha · op(A) · op(B) + beta · C, row-major, through `lib` (default: the selected one).
    /// op(A) is [M, K] (stored [K, M] when `transA`), op(B) is [K, N] (stored [N, K] when `transB`).
    /// OpenBLAS and BLIS multiply on our threads (`Threads`), each thread a serial product over its
    /// share of C's rows (of its columns when C is wider than tall), not on pools of their own: one
    /// pool per process (see `Threads`). Measured on the fp32 AIM step with `gemm: openblas` (Zen 4,
    /// alternating): 4.8–5.0 s against 5.0–5.4 s with OpenBLAS's own threads.
    public static func sgemm(_ lib: GemmLibrary? = nil, transA: Bool, transB: Bool, M: Int, N: Int, K: Int,
                             alpha: Float = 1, A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int,
                             beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int) {
        let lib = lib ?? library
        if lib != .onednn, Threads.count > 1, M * N * K >= splitMinimum {
            let byRows = M >= N, n = byRows ? M : N
            withSerialLibraries(lib) {
                Threads.parallelFor(n, grain: 16) { r in
                    let o = r.lowerBound
                    if byRows {
                        sgemmOne(lib, transA: transA, transB: transB, M: r.count, N: N, K: K, alpha: alpha,
                                 A: transA ? A + o : A + o * lda, lda: lda, B: B, ldb: ldb, beta: beta, C: C + o * ldc, ldc: ldc)
                    } else {
                        sgemmOne(lib, transA: transA, transB: transB, M: M, N: r.count, K: K, alpha: alpha,
                                 A: A, lda: lda, B: transB ? B + o * ldb : B + o, ldb: ldb, beta: beta, C: C + o, ldc: ldc)
                    }
                }
            }
            return
        }
        if lib == .openblas, Threads.count > 1 {
            // OpenBLAS hands products from 2¹⁸ multiply-adds to its own pool, asleep while our team
            // works: waking it took 1.8–7 ms for a product that takes 0.07 ms on the calling thread
            // (the last block's class-row adapter products, 8 × 768 · 768 × 192 and their gradients).
            withSerialBLAS {
                sgemmOne(lib, transA: transA, transB: transB, M: M, N: N, K: K, alpha: alpha, A: A, lda: lda, B: B, ldb: ldb,
                         beta: beta, C: C, ldc: ldc)
            }
            return
        }
        sgemmOne(lib, transA: transA, transB: transB, M: M, N: N, K: K, alpha: alpha, A: A, lda: lda, B: B, ldb: ldb,
                 beta: beta, C: C, ldc: ldc)
    }

    /// Smaller products (fewer multiply-adds) run whole on the calling thread: a split would cost
    /// more than it saves.
    static let splitMinimum = 1 << 21

    /// `body` with OpenBLAS (and BLIS when it is `lib`) on one thread each, so each of our threads
    /// can call them; the thread counts restored after.
    static func withSerialLibraries<R>(_ lib: GemmLibrary = .openblas, _ body: () -> R) -> R {
        guard lib == .blis, let blis = try? BLIS.load() else { return withSerialBLAS(body) }
        blis.setThreads(1)
        defer { blis.setThreads(Threads.count) }
        return withSerialBLAS(body)
    }

    private static func sgemmOne(_ lib: GemmLibrary, transA: Bool, transB: Bool, M: Int, N: Int, K: Int,
                             alpha: Float = 1, A: UnsafePointer<Float>, lda: Int, B: UnsafePointer<Float>, ldb: Int,
                             beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int) {
        switch lib {
        case .openblas:
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(M), Int32(N), Int32(K), alpha, A, Int32(lda), B, Int32(ldb), beta, C, Int32(ldc))
        case .onednn:
            let s = dnnl_sgemm(transA ? 84 : 78, transB ? 84 : 78, dnnl_dim_t(M), dnnl_dim_t(N), dnnl_dim_t(K), alpha,
                               A, dnnl_dim_t(lda), B, dnnl_dim_t(ldb), beta, C, dnnl_dim_t(ldc))
            if s != dnnl_success {
                // Only invalid arguments fail here; the same product through OpenBLAS keeps the run correct.
                warnOnce("oneDNN sgemm \(M)×\(K)·\(K)×\(N) failed (\(OneDNN.statusName(s))); OpenBLAS ran it instead")
                sgemm(.openblas, transA: transA, transB: transB, M: M, N: N, K: K, alpha: alpha, A: A, lda: lda,
                      B: B, ldb: ldb, beta: beta, C: C, ldc: ldc)
            }
        case .blis:
            guard let b = try? BLIS.load() else { preconditionFailure("Gemm: BLIS selected but not loaded") }
            b.sgemm(transA: transA, transB: transB, M: M, N: N, K: K, alpha: alpha, A: A, lda: lda, B: B, ldb: ldb,
                    beta: beta, C: C, ldc: ldc)
        }
    }

    nonisolated(unsafe) private static var warned = Set<String>()
    private static func warnOnce(_ message: String) {
        guard warned.insert(message).inserted else { return }
        Console.errorRaw("warning: \(message)\n")
    }
}

/// OpenBLAS's build facts (its kernel choice follows the CPU, or OPENBLAS_CORETYPE).
public enum OpenBLASInfo {
    public static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }
}
