import Foundation

// Swin's window attention in a bf16 model, as autocast runs the official WindowAttention: its
// matrix products (q·kᵀ, attn·v and the backward's) in bf16, the bias, the shift mask, the softmax
// and its backward in fp32. The chunks, bias and mask are WindowAttention.swift's; per chunk the
// output gradient (and q | k | v, unless given in bf16) is rounded to bf16 once, the probabilities
// and the score gradients rounded as product operands, every result written in fp32; the score
// scale is applied inside the products, as the fp32 path applies it. Why: in fp32 these products were most
// of the 0.8 s of a 4.3 s bf16 AIM Swin-B step that went to window attention; oneDNN's bf16
// products of 49-token windows run 1.2–2.3× faster than its fp32 ones (Zen 4).
// Windows of at most 16 tokens (the temporal pass) stay on the fused fp32 kernels.

/// Whether windows of `length` tokens run in bf16 here: longer than the fused kernels take, and
/// oneDNN has a kernel other than its reference one for each product (asked once per shape).
public func windowAttentionRunsInBF16(length L: Int, width D: Int, heads H: Int) -> Bool {
    guard L > ShortWindowAttention.maxLength, H > 0, D % H == 0, BF16Support.isAvailable else { return false }
    let key = [L, D, H]
    windowBF16Lock.lock(); defer { windowBF16Lock.unlock() }
    if let known = windowBF16Probed[key] { return known }
    let answer: Bool = {
        guard let engine = try? BatchedMatmulEngine.shared() else { return false }
        // One chunk's operands (the products do not depend on the values) and a lone window's.
        return [windowChunk(1 << 20, L, H), 1].allSatisfy { n in
            let ops = WindowOperands(windows: n, length: L, width: D, heads: H), scale = 1 / Float(D / H).squareRoot()
            let products: [(BatchedOperand, BatchedOperand, BatchedOperand, Float)] = [
                (ops.q, ops.q.transposed, ops.probs, scale), (ops.probs, ops.q, ops.out, 1), (ops.probs.transposed, ops.out, ops.q, 1),
                (ops.out, ops.q.transposed, ops.probs, 1), (ops.probs, ops.q, ops.q, scale), (ops.probs.transposed, ops.q, ops.q, scale),
            ]
            return products.allSatisfy { engine.implementationBF16($0.0, $0.1, $0.2, alpha: $0.3) != nil }
        }
    }()
    windowBF16Probed[key] = answer
    return answer
}
nonisolated(unsafe) private var windowBF16Probed: [[Int]: Bool] = [:]
private let windowBF16Lock = NSLock()

/// One call's bf16 buffers, for a chunk of windows: q | k | v [n·L, 3D] (when given in fp32), the probabilities
/// [n, H, L, L], and in backward the output gradient [n·L, D] and the score gradients [n, H, L, L].
private final class WindowBF16Buffers {
    let qkv: UnsafeMutablePointer<UInt16>, probs: UnsafeMutablePointer<UInt16>
    let gradient: UnsafeMutablePointer<UInt16>, scoreGrads: UnsafeMutablePointer<UInt16>
    init(windows n: Int, length L: Int, width D: Int, heads H: Int, backward: Bool, roundsQKV: Bool) {
        let extra = backward ? 1 : 0
        qkv = .allocate(capacity: roundsQKV ? n * L * 3 * D : 1); probs = .allocate(capacity: n * H * L * L)
        gradient = .allocate(capacity: max(1, extra * n * L * D)); scoreGrads = .allocate(capacity: max(1, extra * n * H * L * L))
    }
    deinit { qkv.deallocate(); probs.deallocate(); gradient.deallocate(); scoreGrads.deallocate() }
}

/// `windowAttentionForward` in bf16 (probabilities never kept). Needs `windowAttentionRunsInBF16`.
public func windowAttentionForwardBF16(
    out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, bias: UnsafePointer<Float>?, mask: UnsafePointer<Float>? = nil,
    maskGroups G: Int = 1, firstWindow: Int = 0, sequences S: Int, length L: Int, width D: Int, heads H: Int,
    workspace: UnsafeMutablePointer<Float>
) throws {
    try windowAttentionForwardBF16(out: out, qkvRows: .fp32(qkv), bias: bias, mask: mask, maskGroups: G, firstWindow: firstWindow,
                                   sequences: S, length: L, width: D, heads: H, workspace: workspace)
}

/// `windowAttentionForwardBF16` reading q | k | v as `qkvRows` give them: fp32 (rounded chunk by
/// chunk), or already bf16, as a bf16 qkv projection writes them (the same bits without the rounding).
public func windowAttentionForwardBF16(
    out: UnsafeMutablePointer<Float>, qkvRows: AttentionQKVRows, bias: UnsafePointer<Float>?, mask: UnsafePointer<Float>? = nil,
    maskGroups G: Int = 1, firstWindow: Int = 0, sequences S: Int, length L: Int, width D: Int, heads H: Int,
    workspace: UnsafeMutablePointer<Float>
) throws {
    checkWindowSizes("windowAttentionForwardBF16", S, L, D, H, G)
    let buffers = WindowBF16Buffers(windows: windowChunk(S, L, H), length: L, width: D, heads: H, backward: false,
                                    roundsQKV: qkvRows.isFP32)
    try forEachWindowChunk(S, L, D, H) { s0, n, ops, scale in
        let q16 = chunkRows(qkvRows, buffers, first: s0 * L, rows: n * L, width: D)
        try windowScoresBF16(workspace, buffers, q16, ops: ops, first: firstWindow + s0, bias: bias, mask: mask, G: G, windows: n,
                             length: L, width: D, heads: H, scale: scale)
        try batchedMatmulBF16(ops.probs, buffers.probs, ops.q, q16 + 2 * D, ops.out, out + s0 * L * D)
    }
}

/// A chunk's q | k | v rows in bf16: the caller's, or fp32 ones rounded into `b.qkv`.
private func chunkRows(_ rows: AttentionQKVRows, _ b: WindowBF16Buffers, first: Int, rows n: Int, width D: Int) -> UnsafePointer<UInt16> {
    switch rows {
    case .bf16(let q16): return q16 + first * 3 * D
    case .fp32(let q):
        toBF16(b.qkv, q + first * 3 * D, count: n * 3 * D)
        return UnsafePointer(b.qkv)
    }
}

/// `windowAttentionBackward` in bf16, the probabilities recomputed. Needs `windowAttentionRunsInBF16`.
/// dScores [S, H, L, L] (if given) receives the fp32 gradient of the pre-softmax scores.
public func windowAttentionBackwardBF16(
    dQKV: UnsafeMutablePointer<Float>, dScores: UnsafeMutablePointer<Float>?, dOut: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
    bias: UnsafePointer<Float>? = nil, mask: UnsafePointer<Float>? = nil, maskGroups G: Int = 1, firstWindow: Int = 0,
    sequences S: Int, length L: Int, width D: Int, heads H: Int, workspace: UnsafeMutablePointer<Float>
) throws {
    try windowAttentionBackwardBF16(dQKV: dQKV, dScores: dScores, dOut: dOut, qkvRows: .fp32(qkv), bias: bias, mask: mask, maskGroups: G,
                                    firstWindow: firstWindow, sequences: S, length: L, width: D, heads: H, workspace: workspace)
}

/// `windowAttentionBackwardBF16` reading q | k | v as `qkvRows` give them.
public func windowAttentionBackwardBF16(
    dQKV: UnsafeMutablePointer<Float>, dScores: UnsafeMutablePointer<Float>?, dOut: UnsafePointer<Float>, qkvRows: AttentionQKVRows,
    bias: UnsafePointer<Float>? = nil, mask: UnsafePointer<Float>? = nil, maskGroups G: Int = 1, firstWindow: Int = 0,
    sequences S: Int, length L: Int, width D: Int, heads H: Int, workspace: UnsafeMutablePointer<Float>
) throws {
    checkWindowSizes("windowAttentionBackwardBF16", S, L, D, H, G)
    let LL = L * L, chunk = windowChunk(S, L, H)
    let b = WindowBF16Buffers(windows: chunk, length: L, width: D, heads: H, backward: true, roundsQKV: qkvRows.isFP32)
    try forEachWindowChunk(S, L, D, H) { s0, n, ops, scale in
        let dq = dQKV + s0 * L * 3 * D
        let q16 = chunkRows(qkvRows, b, first: s0 * L, rows: n * L, width: D)
        toBF16(b.gradient, dOut + s0 * L * D, count: n * L * D)
        let p = workspace
        try windowScoresBF16(p, b, q16, ops: ops, first: firstWindow + s0, bias: bias, mask: mask, G: G, windows: n, length: L, width: D,
                             heads: H, scale: scale)
        let ds = dScores.map { $0 + s0 * H * LL } ?? workspace + chunk * H * LL
        try batchedMatmulBF16(ops.probs.transposed, b.probs, ops.out, b.gradient, ops.q, dq + 2 * D)   // dV = Pᵀ·dO
        try batchedMatmulBF16(ops.out, b.gradient, ops.q.transposed, q16 + 2 * D, ops.probs, ds)       // dP = dO·Vᵀ
        Threads.parallelFor(n * H * L) { rows in
            for r in rows { softmaxBackwardRow(ds + r * L, ds + r * L, p + r * L, L) }
            roundToBF16Serially(b.scoreGrads + rows.lowerBound * L, ds + rows.lowerBound * L, rows.count * L)
        }
        try batchedMatmulBF16(ops.probs, b.scoreGrads, ops.q, q16 + D, ops.q, dq, alpha: scale)            // dQ = scale·dS·K
        try batchedMatmulBF16(ops.probs.transposed, b.scoreGrads, ops.q, q16, ops.q, dq + D, alpha: scale) // dK = scale·dSᵀ·Q
    }
}

/// P = softmax(scale·Q·Kᵀ + bias + mask) for windows first..<first+n: fp32 into p [n, H, L, L],
/// rounded into `b.probs`; q | k from the chunk's bf16 rows `q16`.
private func windowScoresBF16(_ p: UnsafeMutablePointer<Float>, _ b: WindowBF16Buffers, _ q16: UnsafePointer<UInt16>, ops: WindowOperands,
                              first s0: Int,
                              bias: UnsafePointer<Float>?, mask: UnsafePointer<Float>?, G: Int,
                              windows n: Int, length L: Int, width D: Int, heads H: Int, scale: Float) throws {
    let LL = L * L
    try batchedMatmulBF16(ops.q, q16, ops.q.transposed, q16 + D, ops.probs, p, alpha: scale)
    windowSoftmax(p, first: s0, bias: bias, mask: mask, G: G, windows: n, length: L, heads: H) { pairs in
        roundToBF16Serially(b.probs + pairs.lowerBound * LL, p + pairs.lowerBound * LL, pairs.count * LL)
    }
}
