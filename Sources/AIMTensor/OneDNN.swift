import CDNNL
import Foundation

/// A oneDNN call that did not return `dnnl_success`, with the status by name.
public struct OneDNNError: Error, CustomStringConvertible {
    public let operation: String
    public let status: String
    public var description: String { "oneDNN \(operation) failed: \(status)" }
}

/// `model.precision: bf16` on a CPU (or a oneDNN) that cannot multiply bf16 in hardware.
public struct BF16UnavailableError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String {
        "model.precision: bf16 needs a CPU with AVX512_BF16 or AMX-BF16; \(reason). Use model.precision: fp32 (--set model.precision=fp32)"
    }
}

/// The process-wide oneDNN setup shared by the bf16 linear layers and the fp32 GEMM backend.
enum OneDNN {
    static func statusName(_ s: dnnl_status_t) -> String {
        switch s {
        case dnnl_success: return "dnnl_success"
        case dnnl_out_of_memory: return "dnnl_out_of_memory"
        case dnnl_invalid_arguments: return "dnnl_invalid_arguments"
        case dnnl_unimplemented: return "dnnl_unimplemented (no implementation for this CPU)"
        case dnnl_iterator_ends: return "dnnl_iterator_ends"
        case dnnl_runtime_error: return "dnnl_runtime_error"
        case dnnl_not_required: return "dnnl_not_required"
        default: return "status \(s.rawValue)"
        }
    }

    static func check(_ s: dnnl_status_t, _ operation: String) throws {
        if s != dnnl_success { throw OneDNNError(operation: operation, status: statusName(s)) }
    }

    /// Runs once before any primitive: when AIM_CPU_FEATURES narrowed the CPU, oneDNN is held to
    /// the same instruction sets, so its kernels are the ones such a CPU would run.
    static let configure: Void = {
        guard CPUFeatures.isOverridden else { return }
        let f = CPUFeatures.current
        let isa: dnnl_cpu_isa_t
        switch f.cpuClass {
        case .amx: isa = dnnl_cpu_isa_avx512_core_amx
        case .avx512bf16: isa = dnnl_cpu_isa_avx512_core_bf16
        case .avx512: isa = dnnl_cpu_isa_avx512_core
        case .avx2: isa = dnnl_cpu_isa_avx2
        case .baseline: isa = dnnl_cpu_isa_sse41
        }
        _ = dnnl_set_max_cpu_isa(isa)   // fails only after a primitive exists, which this runs before
    }()

    /// oneDNN's own view of the ISA it will use (respects ONEDNN_MAX_CPU_ISA and the narrowing above).
    static var effectiveISA: dnnl_cpu_isa_t { OneDNN.configure; return dnnl_get_effective_cpu_isa() }

    static var effectiveISAName: String {
        switch effectiveISA {
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core: return "avx512_core"
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni"
        case dnnl_cpu_isa_avx2: return "avx2"
        case dnnl_cpu_isa_avx: return "avx"
        case dnnl_cpu_isa_sse41: return "sse41"
        default: return "isa 0x\(String(effectiveISA.rawValue, radix: 16))"
        }
    }

    /// The object in `slot`, made on first use; a `make` that throws leaves the slot empty, so every
    /// later call throws again (the per-process oneDNN objects: context, matmul caches).
    static func lazy<T: AnyObject>(_ slot: inout T?, _ make: () throws -> T) throws -> T {
        if let made = slot { return made }
        let made = try make()
        slot = made
        return made
    }

    /// A plain memory descriptor by element strides.
    static func memoryDesc(_ dims: [Int], _ strides: [Int], _ type: dnnl_data_type_t) throws -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        var d = dims.map { dnnl_dim_t($0) }, s = strides.map { dnnl_dim_t($0) }
        try check(dnnl_memory_desc_init_by_strides(&md, Int32(dims.count), &d, type, &s), "memory_desc_init")
        return md
    }

    /// Runs `primitive` on (argument, descriptor, data) triples, wrapping the caller's buffers without
    /// copying, and waits for it.
    static func execute(_ primitive: dnnl_primitive_t, engine: dnnl_engine_t?, stream: dnnl_stream_t?,
                        _ arguments: [(Int32, dnnl_memory_desc_t, UnsafeRawPointer)]) throws {
        var mems: [dnnl_memory_t?] = []
        defer { for m in mems { dnnl_memory_destroy(m) } }
        var args: [dnnl_exec_arg_t] = []
        for (arg, md, p) in arguments {
            var m: dnnl_memory_t?, d = md
            try check(dnnl_memory_create(&m, &d, engine, UnsafeMutableRawPointer(mutating: p)), "memory_create")
            mems.append(m)
            args.append(dnnl_exec_arg_t(arg: arg, memory: m))
        }
        try check(dnnl_primitive_execute(primitive, stream, Int32(args.count), &args), "primitive_execute")
        try check(dnnl_stream_wait(stream), "stream_wait")
    }

    /// OpenMP threads for oneDNN's calls from this thread. libgomp comes with libdnnl; looked up
    /// at run time because its header is not on the default include path.
    static func setThreads(_ n: Int) {
        ompSetNumThreads?(Int32(n))
    }

    /// `body` with oneDNN's calls from this thread run on this thread alone (OpenMP's thread count
    /// is per calling thread), the count restored after.
    static func alone<R>(_ body: () throws -> R) rethrows -> R {
        guard let set = ompSetNumThreads, let get = ompGetMaxThreads else { return try body() }
        let before = get()
        set(1)
        defer { set(before) }
        return try body()
    }

    private typealias SetThreads = @convention(c) (Int32) -> Void
    private typealias GetThreads = @convention(c) () -> Int32
    private static let ompSetNumThreads: SetThreads? = dlsym(nil /* RTLD_DEFAULT */, "omp_set_num_threads").map {
        unsafeBitCast($0, to: SetThreads.self)
    }
    private static let ompGetMaxThreads: GetThreads? = dlsym(nil, "omp_get_max_threads").map {
        unsafeBitCast($0, to: GetThreads.self)
    }
}

/// Whether `model.precision: bf16` can run here, checked before any data is touched.
public enum BF16Support {
    /// Throws `BF16UnavailableError` naming what is missing, or a `OneDNNError` if oneDNN cannot
    /// build the four matmul kinds the bf16 linear layers use (checked on a tiny product each).
    public static func check() throws {
        if let failure = cached { throw failure }
        if passed { return }
        do {
            try probe()
            passed = true
        } catch {
            cached = error
            throw error
        }
    }

    /// True when `check()` passes (the reason is in `unavailableReason` otherwise).
    public static var isAvailable: Bool { (try? check()) != nil }
    public static var unavailableReason: String? {
        do { try check(); return nil } catch { return "\(error)" }
    }

    nonisolated(unsafe) private static var passed = false
    nonisolated(unsafe) private static var cached: Error?

    private static func probe() throws {
        let f = CPUFeatures.current
        guard f.hasBF16 else {
            let narrowed = CPUFeatures.isOverridden ? " (as narrowed by AIM_CPU_FEATURES)" : ""
            throw BF16UnavailableError(reason: "this CPU\(narrowed) has \(f) (class \(f.cpuClass.rawValue)), no AVX512_BF16")
        }
        let isa = OneDNN.effectiveISA.rawValue
        guard isa & dnnl_cpu_isa_avx512_core_bf16.rawValue == dnnl_cpu_isa_avx512_core_bf16.rawValue else {
            throw BF16UnavailableError(reason: "oneDNN is limited to \(OneDNN.effectiveISAName) (ONEDNN_MAX_CPU_ISA?)")
        }
        // One product of each kind the layers run: forward with bias, forward accumulating,
        // input gradient, weight gradient (transposed source).
        let w = [Float](repeating: 0.5, count: 8 * 8), x = [Float](repeating: 1, count: 2 * 8)
        var y = [Float](repeating: 0, count: 2 * 8), dw = [Float](repeating: 0, count: 8 * 8)
        let bw = BF16Weight(w, outFeatures: 8, inFeatures: 8)
        try linearForwardBF16(out: &y, input: x, weight: bw, bias: w, rows: 2)
        let withBias = y.allSatisfy { $0 == 4.5 }
        try linearForwardBF16(out: &y, input: x, weight: bw, bias: nil, rows: 2, accumulate: true)
        let accumulated = y.allSatisfy { $0 == 8.5 }
        try y.withUnsafeMutableBufferPointer { yp in
            try dw.withUnsafeMutableBufferPointer { dwp in
                try linearBackwardBF16(dInput: yp.baseAddress, dWeight: dwp.baseAddress, dBias: nil, dOut: x, input: x,
                                       weight: bw, rows: 2)
            }
        }
        guard withBias, accumulated, y.allSatisfy({ $0 == 4 }), dw.allSatisfy({ $0 == 2 }) else {
            throw BF16UnavailableError(reason: "oneDNN's bf16 matmul gave wrong results on a probe product")
        }
    }
}

/// oneDNN's effective instruction set, for logs and benchmark headers.
public enum OneDNNInfo {
    public static var isa: String { OneDNN.effectiveISAName }
}

/// The one oneDNN CPU engine and stream that every primitive of ours is created for and runs on
/// (the fp32/bf16 linear products and the batched attention products), created on first use.
/// Used from the thread that drives the model, like the kernels' other callers.
final class OneDNNContext {
    nonisolated(unsafe) private static var instance: OneDNNContext?

    /// A oneDNN that cannot create an engine or stream throws (on every call).
    static func shared() throws -> OneDNNContext { try OneDNN.lazy(&instance) { try OneDNNContext() } }

    private(set) var engine: dnnl_engine_t?
    private var stream: dnnl_stream_t?

    private init() throws {
        OneDNN.configure
        try OneDNN.check(dnnl_engine_create(&engine, dnnl_cpu, 0), "engine_create")
        try OneDNN.check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue), "stream_create")
    }

    /// Runs `primitive` on (argument, descriptor, data) triples (`OneDNN.execute`) and waits for it.
    func execute(_ primitive: dnnl_primitive_t, _ arguments: [(Int32, dnnl_memory_desc_t, UnsafeRawPointer)]) throws {
        try OneDNN.execute(primitive, engine: engine, stream: stream, arguments)
    }
}

/// One thread's own way into oneDNN: a stream of its own, and (through `batchedMatmulBF16`'s
/// `lane:`) primitives built for one thread. Lets our threads each run whole pieces of work
/// (a sequence's attention) on oneDNN at once, instead of waking oneDNN's OpenMP team for every
/// small product.
public final class OneDNNLane {
    let stream: dnnl_stream_t?
    /// The scratchpad of this lane's primitives (oneDNN's shared one is not safe to use from
    /// several threads at once), grown to the largest asked for.
    private var scratchpad: UnsafeMutableRawPointer?
    private var scratchpadBytes = 0

    func scratch(_ bytes: Int) -> UnsafeMutableRawPointer {
        if bytes > scratchpadBytes {
            scratchpad?.deallocate()
            scratchpad = .allocate(byteCount: bytes, alignment: 64)
            scratchpadBytes = bytes
        }
        return scratchpad!
    }

    public init() throws {
        let context = try OneDNNContext.shared()
        var s: dnnl_stream_t?
        try OneDNN.check(dnnl_stream_create(&s, context.engine, dnnl_stream_default_flags.rawValue), "stream_create")
        stream = s
    }

    deinit { dnnl_stream_destroy(stream); scratchpad?.deallocate() }
}
