import Foundation
import CDNNL

/// Matmul primitives cached per shape on the shared oneDNN context, and growing bf16 scratch
/// buffers: the bf16 products of LinearBF16.swift and BF16Matmul.swift, and the fp32 forward with a
/// fused bias of Linear.swift (`matmulF32`).
/// Used from the thread that drives the model (like the rest of the kernels' callers).
final class OneDNNMatmulEngine {
    nonisolated(unsafe) private static var instance: OneDNNMatmulEngine?

    /// The engine, created on first use; a oneDNN that cannot create one throws (every call).
    static func shared() throws -> OneDNNMatmulEngine { try OneDNN.lazy(&instance) { try OneDNNMatmulEngine() } }

    private let context: OneDNNContext
    private struct Key: Hashable { let M: Int, K: Int, N: Int, sourceTransposed: Bool, transposed: Bool, bias: Bool, accumulate: Bool
                                   var f32Operands = false, residual = false, scale: Float = 1
                                   /// dst in bf16 (rounded to nearest even, as `toBF16`): an output only bf16 products read.
                                   var roundedOutput = false
                                   /// bf16 weights in oneDNN's own blocked layout (`packedLayout`): `transposed` is moot.
                                   var packedWeights = false }
    private struct Entry { let primitive: dnnl_primitive_t; let src: dnnl_memory_desc_t; let wei: dnnl_memory_desc_t
                           let bias: dnnl_memory_desc_t; let dst: dnnl_memory_desc_t }
    private var cache: [Key: Entry] = [:]
    private struct Extent: Hashable { let K: Int, N: Int }
    /// oneDNN's preferred bf16 weight layout per [K, N]; nil where it has none but its reference kernel.
    private var layouts: [Extent: PackedLayout?] = [:]
    /// fp32 products for which oneDNN offered only its reference implementation: refused at once.
    private var refused: Set<Key> = []
    /// Three growing bf16 buffers: the operands of one product (dy and x for a weight gradient),
    /// and a weight rounded per use (`weightSlot`).
    private var scratch: [UnsafeMutablePointer<UInt16>?] = [nil, nil, nil]
    private var scratchCount = [0, 0, 0]
    static let weightSlot = 2

    private init() throws { context = try OneDNNContext.shared() }

    private func check(_ s: dnnl_status_t, _ what: String) throws { try OneDNN.check(s, what) }

    func activations(_ count: Int, slot: Int) -> UnsafeMutablePointer<UInt16> {
        if count > scratchCount[slot] {
            scratch[slot]?.deallocate()
            scratch[slot] = amxAllocate(count); scratchCount[slot] = count   // 64-byte aligned for AMX tile rows
            Self.operandBytes = scratchCount.reduce(0, +) * MemoryLayout<UInt16>.stride
        }
        return scratch[slot]!
    }

    /// Bytes of the bf16 operand buffers (workspace), readable without creating the engine.
    nonisolated(unsafe) static var operandBytes = 0

    private func desc(_ dims: [Int], _ strides: [Int], _ type: dnnl_data_type_t) throws -> dnnl_memory_desc_t {
        try OneDNN.memoryDesc(dims, strides, type)
    }

    private func entry(_ key: Key) throws -> Entry {
        if let e = cache[key] { return e }
        if refused.contains(key) { throw OneDNNReferenceOnly(shape: "\(key.f32Operands ? "fp32" : "bf16") \(key.M)×\(key.K)·\(key.K)×\(key.N)") }
        let operandType = key.f32Operands ? dnnl_f32 : dnnl_bf16
        let src = try desc([key.M, key.K], key.sourceTransposed ? [1, key.M] : [key.K, 1], operandType)
        let wei: dnnl_memory_desc_t
        if key.packedWeights && Self.refusesPackedForTests {
            refused.insert(key)
            throw OneDNNReferenceOnly(shape: "bf16 packed \(key.K)×\(key.N) (AIM_TEST_REFUSE_PACKED)")
        }
        if key.packedWeights {
            guard let layout = try packedLayout(K: key.K, N: key.N) else { throw OneDNNReferenceOnly(shape: "bf16 packed \(key.K)×\(key.N)") }
            wei = layout.desc
        } else {
            wei = try desc([key.K, key.N], key.transposed ? [1, key.K] : [key.N, 1], operandType)
        }
        let bias = try desc([1, key.N], [key.N, 1], dnnl_f32)
        let dst = try desc([key.M, key.N], [key.N, 1], key.roundedOutput ? dnnl_bf16 : dnnl_f32)
        var op = dnnl_matmul_desc_t()
        var s = src, w = wei, b = bias, d = dst
        if key.bias { try check(dnnl_matmul_desc_init(&op, &s, &w, &b, &d), "matmul_desc_init") }
        else { try check(dnnl_matmul_desc_init(&op, &s, &w, nil, &d), "matmul_desc_init") }
        var attr: dnnl_primitive_attr_t?
        try check(dnnl_primitive_attr_create(&attr), "attr_create")
        defer { dnnl_primitive_attr_destroy(attr) }
        if key.accumulate || key.residual || key.scale != 1 {
            var ops: dnnl_post_ops_t?
            try check(dnnl_post_ops_create(&ops), "post_ops_create")
            defer { dnnl_post_ops_destroy(ops) }
            // In order: scale the product (with its bias), add the old output, add the residual.
            if key.scale != 1 { try check(dnnl_post_ops_append_eltwise(ops, 1, dnnl_eltwise_linear, key.scale, 0), "append_eltwise") }
            if key.accumulate { try check(dnnl_post_ops_append_sum(ops, 1), "append_sum") }
            if key.residual {
                var r = dst
                try check(dnnl_post_ops_append_binary(ops, dnnl_binary_add, &r), "append_binary")
            }
            try check(dnnl_primitive_attr_set_post_ops(attr, ops), "set_post_ops")
        }
        var pd: dnnl_primitive_desc_t?
        try check(withUnsafePointer(to: &op) { dnnl_primitive_desc_create(&pd, $0, attr, context.engine, nil) },
                  "\(key.f32Operands ? "fp32" : "bf16") matmul primitive_desc_create (\(key.M)×\(key.K)·\(key.K)×\(key.N))")
        defer { dnnl_primitive_desc_destroy(pd) }
        // Why: where oneDNN's ISA lacks a fast kernel for these post-ops (AVX2: gemm:jit takes no
        // scale before a sum), it falls back to `ref:any`, measured 1.7 s for a 1576×192·192×768
        // product that sgemm does in 3 ms. The fp32 callers have a plain sgemm path instead, and the
        // bf16 ones a residual or scale applied outside the product.
        if key.f32Operands || key.residual || key.scale != 1 || key.roundedOutput || key.packedWeights, Self.implementation(pd).hasPrefix("ref") {
            refused.insert(key)
            throw OneDNNReferenceOnly(shape: "\(key.f32Operands ? "fp32" : "bf16") \(key.M)×\(key.K)·\(key.K)×\(key.N)")
        }
        var prim: dnnl_primitive_t?
        try check(dnnl_primitive_create(&prim, pd), "primitive_create")
        let e = Entry(primitive: prim!, src: src, wei: wei, bias: bias, dst: dst)
        cache[key] = e
        return e
    }

    /// dst [M, N] = scale · (src · weights [+ bias]) [+ dst when `accumulate`] [+ residual]: bf16 operands,
    /// fp32 out, the post-ops inside the product. With a residual or a scale this throws
    /// `OneDNNReferenceOnly` where oneDNN has only its reference implementation for them.
    func matmul(M: Int, K: Int, N: Int, src: UnsafePointer<UInt16>, transposedSource: Bool = false,
                weights: UnsafePointer<UInt16>, transposedWeights: Bool,
                bias: UnsafePointer<Float>?, dst: UnsafeMutablePointer<Float>, accumulate: Bool,
                residual: UnsafePointer<Float>? = nil, scale: Float = 1) throws {
        try run(Key(M: M, K: K, N: N, sourceTransposed: transposedSource, transposed: transposedWeights,
                    bias: bias != nil, accumulate: accumulate, residual: residual != nil, scale: scale),
                src: src, weights: weights, bias: bias, dst: dst, residual: residual)
    }

    /// `matmul` with the weights as a `BF16Weight` hands them: row-major, or packed in oneDNN's layout.
    func matmul(M: Int, K: Int, N: Int, src: UnsafePointer<UInt16>, weights: BF16Operand,
                bias: UnsafePointer<Float>?, dst: UnsafeMutablePointer<Float>, accumulate: Bool,
                residual: UnsafePointer<Float>? = nil, scale: Float = 1) throws {
        var key = Key(M: M, K: K, N: N, sourceTransposed: false, transposed: weights.transposed,
                      bias: bias != nil, accumulate: accumulate, residual: residual != nil, scale: scale)
        key.packedWeights = weights.packed
        do {
            try run(key, src: src, weights: weights.pointer, bias: bias, dst: dst, residual: residual)
        } catch is OneDNNReferenceOnly where weights.packed {
            // The layout was asked for at one M; should oneDNN offer only its reference kernel for
            // it at this M (not seen on any CPU measured), the weights go row-major again for this call.
            key.packedWeights = false
            try run(key, src: src, weights: try unpacked(weights, K: K, N: N), bias: bias, dst: dst, residual: residual)
        }
    }

    /// Packed weights [K, N] row-major again in the engine's weight slot, laid out as `weights.transposed` says.
    private func unpacked(_ weights: BF16Operand, K: Int, N: Int) throws -> UnsafeRawPointer {
        guard let layout = try packedLayout(K: K, N: N) else { throw OneDNNReferenceOnly(shape: "bf16 packed \(K)×\(N)") }
        let plain = activations(K * N, slot: Self.weightSlot)
        try repack(K: K, N: N, plain: plain, strides: weights.transposed ? (1, K) : (N, 1), layout: layout,
                   packed: UnsafeMutableRawPointer(mutating: weights.pointer), toPacked: false)
        return UnsafeRawPointer(plain)
    }

    /// dst [M, N] = bf16(src · weights [+ bias]): bf16 operands, the fp32 result rounded as it is
    /// written. Throws `OneDNNReferenceOnly` where oneDNN has only its reference implementation for it.
    func matmul(M: Int, K: Int, N: Int, src: UnsafePointer<UInt16>, weights: BF16Operand,
                bias: UnsafePointer<Float>?, roundedDst dst: UnsafeMutablePointer<UInt16>) throws {
        try run(Key(M: M, K: K, N: N, sourceTransposed: false, transposed: weights.transposed,
                    bias: bias != nil, accumulate: false, roundedOutput: true, packedWeights: weights.packed),
                src: src, weights: weights.pointer, bias: bias, dst: dst, residual: nil)
    }

    /// Tests only: `AIM_TEST_REFUSE_PACKED=1` makes every packed-weight primitive created from then
    /// on count as reference-only, so the row-major fallback above runs (read when a primitive is made).
    private static var refusesPackedForTests: Bool { ProcessInfo.processInfo.environment["AIM_TEST_REFUSE_PACKED"] == "1" }

    /// oneDNN's own layout for bf16 weights [K, N] (blocked, pairs along K interleaved), which its
    /// matmul reads without first copying them into it as it does row-major weights on every call:
    /// measured 4–5 % faster on the frozen linears' shapes (Zen 4, 2 threads). The layout depends on
    /// K and N only (checked for M from 1 to 12608, with and without post-ops). nil where oneDNN has
    /// only its reference kernel.
    func packedLayout(K: Int, N: Int) throws -> PackedLayout? {
        let extent = Extent(K: K, N: N)
        if let known = layouts[extent] { return known }
        // Asked at a middling M; the layout was the same for every M tried (1 … 12,608).
        var src = try desc([256, K], [K, 1], dnnl_bf16), dst = try desc([256, N], [N, 1], dnnl_f32)
        var wei = dnnl_memory_desc_t()
        var dims = [dnnl_dim_t(K), dnnl_dim_t(N)]
        try check(dnnl_memory_desc_init_by_tag(&wei, 2, &dims, dnnl_bf16, dnnl_format_tag_any), "memory_desc_init_by_tag")
        var op = dnnl_matmul_desc_t()
        try check(dnnl_matmul_desc_init(&op, &src, &wei, nil, &dst), "matmul_desc_init")
        var pd: dnnl_primitive_desc_t?
        try check(withUnsafePointer(to: &op) { dnnl_primitive_desc_create(&pd, $0, nil, context.engine, nil) },
                  "bf16 matmul primitive_desc_create (packed weights \(K)×\(N))")
        defer { dnnl_primitive_desc_destroy(pd) }
        var layout: PackedLayout?
        if !Self.implementation(pd).hasPrefix("ref"), let md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0) {
            layout = PackedLayout(desc: md.pointee, bytes: withUnsafePointer(to: md.pointee) { dnnl_memory_desc_get_size($0) })
        }
        layouts[extent] = layout
        return layout
    }

    /// Copies bf16 weights [K, N] between `plain` (element (k, n) at k·strides.0 + n·strides.1) and
    /// `layout`, either way: an exact permutation of the values.
    func repack(K: Int, N: Int, plain: UnsafeMutablePointer<UInt16>, strides: (Int, Int), layout: PackedLayout,
                packed: UnsafeMutableRawPointer, toPacked: Bool) throws {
        let plainDesc = try desc([K, N], [strides.0, strides.1], dnnl_bf16)
        var from = toPacked ? plainDesc : layout.desc, to = toPacked ? layout.desc : plainDesc
        var pd: dnnl_primitive_desc_t?
        try check(dnnl_reorder_primitive_desc_create(&pd, &from, context.engine, &to, context.engine, nil), "reorder_primitive_desc_create")
        defer { dnnl_primitive_desc_destroy(pd) }
        var prim: dnnl_primitive_t?
        try check(dnnl_primitive_create(&prim, pd), "primitive_create (reorder)")
        defer { dnnl_primitive_destroy(prim) }
        let source = toPacked ? UnsafeRawPointer(plain) : UnsafeRawPointer(packed)
        let target = toPacked ? UnsafeRawPointer(packed) : UnsafeRawPointer(plain)
        try context.execute(prim!, [(DNNL_ARG_FROM, from, source), (DNNL_ARG_TO, to, target)])
    }

    /// out [M, N] = scale · (x [M, K] · wᵀ (w [N, K]; `transposedWeights` false: w [K, N]) [+ bias]) [+ out
    /// when `accumulate`] [+ residual], all fp32, the bias, the old output and the residual added inside the
    /// product (linearForward's and linearBackward's fp32 paths when oneDNN is the fp32 library: no
    /// separate pass over the output for any of them).
    func matmulF32(M: Int, K: Int, N: Int, src: UnsafePointer<Float>, weights: UnsafePointer<Float>, transposedWeights: Bool = true,
                   bias: UnsafePointer<Float>?, dst: UnsafeMutablePointer<Float>, accumulate: Bool = false,
                   residual: UnsafePointer<Float>? = nil, scale: Float = 1) throws {
        try run(Key(M: M, K: K, N: N, sourceTransposed: false, transposed: transposedWeights, bias: bias != nil, accumulate: accumulate,
                    f32Operands: true, residual: residual != nil, scale: scale),
                src: src, weights: weights, bias: bias, dst: dst, residual: residual)
    }

    /// Creates (JIT-compiles) the primitive `matmulF32` would run for a plain biased forward,
    /// without running it: the GEMM probe's priming, so its timed calls meet no compilation.
    func prepareBiasedF32(M: Int, K: Int, N: Int) throws {
        _ = try entry(Key(M: M, K: K, N: N, sourceTransposed: false, transposed: true, bias: true, accumulate: false, f32Operands: true))
    }

    /// Runs the primitive of `key` on these buffers (the three products above differ only in the key).
    private func run(_ key: Key, src: UnsafeRawPointer, weights: UnsafeRawPointer, bias: UnsafePointer<Float>?,
                     dst: UnsafeMutableRawPointer, residual: UnsafePointer<Float>?) throws {
        let e = try entry(key)
        var args: [(Int32, dnnl_memory_desc_t, UnsafeRawPointer)] = [
            (DNNL_ARG_SRC, e.src, src), (DNNL_ARG_WEIGHTS, e.wei, weights), (DNNL_ARG_DST, e.dst, UnsafeRawPointer(dst))]
        if let bias { args.append((DNNL_ARG_BIAS, e.bias, UnsafeRawPointer(bias))) }
        // The binary post-op is the last one: DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1 (a C macro).
        if let residual {
            args.append((Self.postOpSource(index: (key.accumulate ? 1 : 0) + (key.scale != 1 ? 1 : 0)), e.dst, UnsafeRawPointer(residual)))
        }
        try context.execute(e.primitive, args)
    }

    /// The implementation oneDNN chose for a primitive descriptor, e.g. "brg:avx512_core", "gemm:jit", "ref:any".
    private static func implementation(_ pd: dnnl_primitive_desc_t?) -> String {
        var name: UnsafePointer<CChar>?
        guard withUnsafeMutablePointer(to: &name, { dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, $0) }) == dnnl_success,
              let name else { return "" }
        return String(cString: name)
    }

    private static func postOpSource(index: Int) -> Int32 { Int32(DNNL_ARG_ATTR_MULTIPLE_POST_OP_BASE) * Int32(index + 1) | Int32(DNNL_ARG_SRC_1) }
}

/// A bf16 weight layout of oneDNN's choosing and its size in bytes (padding included).
struct PackedLayout {
    let desc: dnnl_memory_desc_t
    let bytes: Int
}

/// A weight operand of a bf16 product: row-major [N, K] read transposed (`transposed`) or [K, N],
/// or in oneDNN's packed layout for the product's [K, N] (`transposed` then says how it would lie
/// row-major, for the engine's fallback).
struct BF16Operand {
    let pointer: UnsafeRawPointer
    let transposed: Bool
    let packed: Bool
}

/// oneDNN has only its (slow) reference implementation for this product on this CPU: the caller
/// runs it another way (sgemm, the post-ops outside, fp32 attention). Not a failure.
struct OneDNNReferenceOnly: Error, CustomStringConvertible {
    let shape: String
    var description: String { "oneDNN offers only its reference implementation for the product \(shape)" }
}
