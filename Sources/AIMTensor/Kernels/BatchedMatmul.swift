import CDNNL
import Foundation

// Batched fp32 matrix products over two batch dimensions with arbitrary strides, through oneDNN's
// matmul primitive: C[s, h] = α · A[s, h] · B[s, h] (+ C[s, h]) for every (s, h) in one call.
// Window attention multiplies per (window, head) pair straight out of the packed qkv rows
// (q of head h of window s is rows s·L…, columns h·dh…, row stride 3D), so the operands are
// described by strides instead of being copied into dense batches first. One primitive per
// shape and stride pattern is created once and cached.

/// A 4-D operand [S, H, rows, cols] by its element strides.
public struct BatchedOperand: Hashable {
    public let dims: [Int]
    public let strides: [Int]
    public init(_ dims: [Int], strides: [Int]) {
        precondition(dims.count == 4 && strides.count == 4, "BatchedOperand: 4 dims and 4 strides")
        self.dims = dims; self.strides = strides
    }
    /// Row-major dense [S, H, rows, cols].
    public static func dense(_ S: Int, _ H: Int, _ rows: Int, _ cols: Int) -> BatchedOperand {
        BatchedOperand([S, H, rows, cols], strides: [H * rows * cols, rows * cols, cols, 1])
    }
    /// Whether C = A·B has anything to multiply; the shapes must agree (our callers build them).
    static func isProduct(_ a: BatchedOperand, _ b: BatchedOperand, _ c: BatchedOperand, _ name: String) -> Bool {
        precondition(a.dims[0] == b.dims[0] && a.dims[1] == b.dims[1] && a.dims[3] == b.dims[2]
                     && c.dims == [a.dims[0], a.dims[1], a.dims[2], b.dims[3]], "\(name): shapes \(a.dims) · \(b.dims) → \(c.dims)")
        return !a.dims.contains(0) && b.dims[3] != 0
    }
    /// The same memory read as its per-matrix transpose [S, H, cols, rows].
    public var transposed: BatchedOperand {
        BatchedOperand([dims[0], dims[1], dims[3], dims[2]], strides: [strides[0], strides[1], strides[3], strides[2]])
    }
}

/// C = α·A·B (+ C when `accumulate`), A [S, H, M, K], B [S, H, K, N], C [S, H, M, N].
public func batchedMatmul(_ a: BatchedOperand, _ pa: UnsafePointer<Float>, _ b: BatchedOperand, _ pb: UnsafePointer<Float>,
                          _ c: BatchedOperand, _ pc: UnsafeMutablePointer<Float>, alpha: Float = 1, accumulate: Bool = false) throws {
    guard BatchedOperand.isProduct(a, b, c, "batchedMatmul") else { return }
    try BatchedMatmulEngine.shared().run(a, pa, b, pb, c, pc, alpha: alpha, accumulate: accumulate)
}

/// C = A·B with bf16 A and B and fp32 C (the bf16 attention's products). Throws `OneDNNReferenceOnly`
/// where oneDNN has only its reference kernel for these operands (seconds per call, not a product
/// to run in a step). With a `lane`, the product runs on the calling thread alone, on the lane's
/// stream (`OneDNNLane`): several threads may then multiply at once, one lane each.
/// `alpha` scales the fp32 result inside the product (the window attention's score scale).
public func batchedMatmulBF16(_ a: BatchedOperand, _ pa: UnsafePointer<UInt16>, _ b: BatchedOperand, _ pb: UnsafePointer<UInt16>,
                              _ c: BatchedOperand, _ pc: UnsafeMutablePointer<Float>, alpha: Float = 1, lane: OneDNNLane? = nil) throws {
    guard BatchedOperand.isProduct(a, b, c, "batchedMatmulBF16") else { return }
    try BatchedMatmulEngine.shared().runBF16(a, pa, b, pb, c, UnsafeMutableRawPointer(pc), alpha: alpha, roundedOutput: false, lane: lane)
}

/// `batchedMatmulBF16` with C rounded to bf16 as it is written (oneDNN rounds to nearest even, as
/// `toBF16` does), for a product whose result is only ever another bf16 product's operand.
public func batchedMatmulBF16(_ a: BatchedOperand, _ pa: UnsafePointer<UInt16>, _ b: BatchedOperand, _ pb: UnsafePointer<UInt16>,
                              _ c: BatchedOperand, rounded pc: UnsafeMutablePointer<UInt16>, lane: OneDNNLane? = nil) throws {
    guard BatchedOperand.isProduct(a, b, c, "batchedMatmulBF16") else { return }
    try BatchedMatmulEngine.shared().runBF16(a, pa, b, pb, c, UnsafeMutableRawPointer(pc), roundedOutput: true, lane: lane)
}

/// The oneDNN implementation a product of these operands runs (e.g. "brg:avx512_core"), for the bench.
public func batchedMatmulImplementation(_ a: BatchedOperand, _ b: BatchedOperand, _ c: BatchedOperand) throws -> String {
    try BatchedMatmulEngine.shared().implementation(a, b, c)
}

final class BatchedMatmulEngine {
    nonisolated(unsafe) private static var instance: BatchedMatmulEngine?
    static func shared() throws -> BatchedMatmulEngine { try OneDNN.lazy(&instance) { try BatchedMatmulEngine() } }

    private let context: OneDNNContext
    private struct Key: Hashable {
        let a: BatchedOperand, b: BatchedOperand, c: BatchedOperand, alpha: Float, accumulate: Bool
        var bf16 = false
        /// Built for one thread (a lane's) rather than oneDNN's team: oneDNN fixes a primitive's
        /// thread count when it creates it, so a lane needs primitives of its own.
        var alone = false
        /// C in bf16 (only with `bf16`).
        var roundedOutput = false
    }
    private struct Entry { let primitive: dnnl_primitive_t; let a: dnnl_memory_desc_t; let b: dnnl_memory_desc_t; let c: dnnl_memory_desc_t
                           let implementation: String
                           /// A lane's primitive: the scratchpad it needs from the lane (its `scratchBytes` > 0).
                           var scratch = dnnl_memory_desc_t(); var scratchBytes = 0 }
    private var cache: [Key: Entry] = [:]
    /// Lanes look primitives up from several threads at once.
    private let lock = NSLock()

    private init() throws { context = try OneDNNContext.shared() }

    private var refused = Set<Key>()

    private func desc(_ o: BatchedOperand, _ type: dnnl_data_type_t = dnnl_f32) throws -> dnnl_memory_desc_t {
        try OneDNN.memoryDesc(o.dims, o.strides, type)
    }

    private func entry(_ key: Key) throws -> Entry {
        lock.lock(); defer { lock.unlock() }
        if let e = cache[key] { return e }
        // A lane's primitive is created for one OpenMP thread, whatever thread asks first.
        return try key.alone ? OneDNN.alone { try create(key) } : create(key)
    }

    private func create(_ key: Key) throws -> Entry {
        if refused.contains(key) { throw OneDNNReferenceOnly(shape: "batched bf16 \(key.a.dims) · \(key.b.dims)") }
        let operandType = key.bf16 ? dnnl_bf16 : dnnl_f32
        var a = try desc(key.a, operandType), b = try desc(key.b, operandType), c = try desc(key.c, key.roundedOutput ? dnnl_bf16 : dnnl_f32)
        var op = dnnl_matmul_desc_t()
        try OneDNN.check(dnnl_matmul_desc_init(&op, &a, &b, nil, &c), "matmul_desc_init")
        var attr: dnnl_primitive_attr_t?
        try OneDNN.check(dnnl_primitive_attr_create(&attr), "attr_create")
        defer { dnnl_primitive_attr_destroy(attr) }
        if key.alpha != 1 {
            var alpha = key.alpha
            try OneDNN.check(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha), "set_output_scales")
        }
        if key.alone {
            // oneDNN's own scratchpad is one buffer shared by every primitive (oneDNN 2.6 built without
            // concurrent execution): lanes running at once would overwrite each other's accumulators
            // there (measured: bf16 results of another sequence), so each lane brings its own.
            try OneDNN.check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "set_scratchpad_mode")
        }
        if key.accumulate {
            var ops: dnnl_post_ops_t?
            try OneDNN.check(dnnl_post_ops_create(&ops), "post_ops_create")
            defer { dnnl_post_ops_destroy(ops) }
            try OneDNN.check(dnnl_post_ops_append_sum(ops, 1), "append_sum")
            try OneDNN.check(dnnl_primitive_attr_set_post_ops(attr, ops), "set_post_ops")
        }
        var pd: dnnl_primitive_desc_t?
        try OneDNN.check(withUnsafePointer(to: &op) { dnnl_primitive_desc_create(&pd, $0, attr, context.engine, nil) },
                         "batched matmul primitive_desc_create (\(key.a.dims) · \(key.b.dims))")
        defer { dnnl_primitive_desc_destroy(pd) }
        var info: UnsafePointer<CChar>?
        _ = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &info)
        if key.bf16, info.map({ String(cString: $0).hasPrefix("ref") }) ?? true {
            refused.insert(key)
            throw OneDNNReferenceOnly(shape: "batched bf16 \(key.a.dims) · \(key.b.dims)")
        }
        var prim: dnnl_primitive_t?
        try OneDNN.check(dnnl_primitive_create(&prim, pd), "primitive_create")
        var e = Entry(primitive: prim!, a: a, b: b, c: c, implementation: info.map { String(cString: $0) } ?? "?")
        if key.alone, let md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) {
            e.scratch = md.pointee
            e.scratchBytes = dnnl_memory_desc_get_size(md)
        }
        cache[key] = e
        return e
    }

    func implementation(_ a: BatchedOperand, _ b: BatchedOperand, _ c: BatchedOperand) throws -> String {
        try entry(Key(a: a, b: b, c: c, alpha: 1, accumulate: false)).implementation
    }

    func runBF16(_ a: BatchedOperand, _ pa: UnsafePointer<UInt16>, _ b: BatchedOperand, _ pb: UnsafePointer<UInt16>,
                 _ c: BatchedOperand, _ pc: UnsafeMutableRawPointer, alpha: Float = 1, roundedOutput: Bool, lane: OneDNNLane?) throws {
        try execute(Key(a: a, b: b, c: c, alpha: alpha, accumulate: false, bf16: true, alone: lane != nil, roundedOutput: roundedOutput),
                    pa, pb, pc, lane: lane)
    }

    private func execute(_ key: Key, _ pa: UnsafeRawPointer, _ pb: UnsafeRawPointer, _ pc: UnsafeMutableRawPointer,
                         lane: OneDNNLane? = nil) throws {
        let e = try entry(key)
        var arguments = [(DNNL_ARG_SRC, e.a, pa), (DNNL_ARG_WEIGHTS, e.b, pb), (DNNL_ARG_DST, e.c, UnsafeRawPointer(pc))]
        if let lane {
            if e.scratchBytes > 0 { arguments.append((DNNL_ARG_SCRATCHPAD, e.scratch, UnsafeRawPointer(lane.scratch(e.scratchBytes)))) }
            try OneDNN.alone { try OneDNN.execute(e.primitive, engine: context.engine, stream: lane.stream, arguments) }
        } else {
            try context.execute(e.primitive, arguments)
        }
    }

    /// The implementation of a bf16 product of these operands, or nil where oneDNN has only its
    /// reference kernel; `alone`: of the primitive a lane runs.
    func implementationBF16(_ a: BatchedOperand, _ b: BatchedOperand, _ c: BatchedOperand, alpha: Float = 1, alone: Bool = false,
                            roundedOutput: Bool = false) -> String? {
        try? entry(Key(a: a, b: b, c: c, alpha: alpha, accumulate: false, bf16: true, alone: alone, roundedOutput: roundedOutput)).implementation
    }

    func run(_ a: BatchedOperand, _ pa: UnsafePointer<Float>, _ b: BatchedOperand, _ pb: UnsafePointer<Float>,
             _ c: BatchedOperand, _ pc: UnsafeMutablePointer<Float>, alpha: Float, accumulate: Bool) throws {
        try execute(Key(a: a, b: b, c: c, alpha: alpha, accumulate: accumulate), pa, pb, pc)
    }
}
