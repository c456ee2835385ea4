import Foundation

/// BLIS (Debian's libblis4-pthread or libblis4-openmp), opened at run time with RTLD_LOCAL: it
/// exports its own `cblas_sgemm` and `sgemm_`, which must not replace OpenBLAS's in this process,
/// so only its typed API (`bli_sgemm`, general strides) is looked up. Absent BLIS is no error
/// until `gemm: blis` asks for it.
final class BLIS {
    // BLIS 0.9 ABI (64-bit dim_t/inc_t, trans_t and arch_t as C enums).
    private typealias SGemm = @convention(c) (Int32, Int32, Int64, Int64, Int64, UnsafePointer<Float>,
                                              UnsafePointer<Float>, Int64, Int64, UnsafePointer<Float>, Int64, Int64,
                                              UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int64, Int64) -> Void
    private typealias SetThreads = @convention(c) (Int64) -> Void
    private typealias ArchID = @convention(c) () -> Int32
    private typealias ArchString = @convention(c) (Int32) -> UnsafePointer<CChar>?
    private typealias Version = @convention(c) () -> UnsafePointer<CChar>?

    private let gemm: SGemm
    private let setNumThreads: SetThreads
    let version: String, archName: String, variant: String

    /// Where Debian puts the two threading builds; pthreads first (its threads end with each call,
    /// so none spin beside OpenBLAS's or ours).
    static let candidates = ["/usr/lib/x86_64-linux-gnu/blis-pthread/libblis.so.4",
                             "/usr/lib/x86_64-linux-gnu/blis-openmp/libblis.so.4", "libblis.so.4"]

    nonisolated(unsafe) private static var loaded: Result<BLIS, GemmLibraryError>?

    static func load() throws -> BLIS {
        if let loaded { return try loaded.get() }
        let r = Result { try BLIS() }.mapError { $0 as? GemmLibraryError ?? GemmLibraryError(description: "\($0)") }
        loaded = r
        return try r.get()
    }

    private init() throws {
        // BLIS picks its kernels from CPUID (haswell for AVX2, zen3 on Zen 3, skx where it can count
        // the FMA units). Debian's BLIS 0.9 aborts the process on any BLIS_ARCH_TYPE (its table of
        // sub-configurations is not registered then), so that override is refused, not passed on.
        if ProcessInfo.processInfo.environment["BLIS_ARCH_TYPE"] != nil {
            throw GemmLibraryError(description: "gemm: blis cannot run with BLIS_ARCH_TYPE set (Debian's BLIS 0.9 aborts on it); unset it")
        }
        guard let (handle, path) = Self.candidates.lazy.compactMap({ p in dlopen(p, RTLD_NOW | RTLD_LOCAL).map { ($0, p) } }).first else {
            throw GemmLibraryError(description: "gemm: blis needs BLIS (Debian: apt-get install libblis4-pthread); none of \(Self.candidates.joined(separator: ", ")) loads")
        }
        func symbol<T>(_ name: String, _ type: T.Type) throws -> T {
            guard let s = dlsym(handle, name) else { throw GemmLibraryError(description: "\(path) has no \(name)") }
            return unsafeBitCast(s, to: type)
        }
        gemm = try symbol("bli_sgemm", SGemm.self)
        setNumThreads = try symbol("bli_thread_set_num_threads", SetThreads.self)
        let arch = try symbol("bli_arch_query_id", ArchID.self)()
        archName = (try symbol("bli_arch_string", ArchString.self)(arch)).map { String(cString: $0) } ?? "arch \(arch)"
        version = (try symbol("bli_info_get_version_str", Version.self)()).map { String(cString: $0) } ?? "?"
        variant = path.contains("pthread") ? "pthreads" : path.contains("openmp") ? "OpenMP" : "default build"
    }

    func setThreads(_ n: Int) { setNumThreads(Int64(n)) }

    /// Row-major C = alpha·op(A)·op(B) + beta·C through general strides (no transposition flags).
    func sgemm(transA: Bool, transB: Bool, M: Int, N: Int, K: Int, alpha: Float, A: UnsafePointer<Float>, lda: Int,
               B: UnsafePointer<Float>, ldb: Int, beta: Float, C: UnsafeMutablePointer<Float>, ldc: Int) {
        var a = alpha, b = beta
        let (rsa, csa) = transA ? (Int64(1), Int64(lda)) : (Int64(lda), Int64(1))
        let (rsb, csb) = transB ? (Int64(1), Int64(ldb)) : (Int64(ldb), Int64(1))
        withUnsafePointer(to: &a) { pa in
            withUnsafePointer(to: &b) { pb in
                gemm(0, 0, Int64(M), Int64(N), Int64(K), pa, A, rsa, csa, B, rsb, csb, pb, C, Int64(ldc), 1)
            }
        }
    }
}
