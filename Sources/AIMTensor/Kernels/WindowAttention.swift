// Window attention of Swin: softmax(scale·Q·Kᵀ + bias + mask) · V over S windows of L tokens. The
// relative-position bias [H, L, L] is the same for every window; the −100 shift mask of shifted
// windows [G, L, L] depends on the window only through its position in the sample: window s uses
// mask (firstWindow + s) mod G (G = windows per sample), the same for every head. qkv [S, L, 3D] packs q | k | v
// per token as in attentionForward.
// The products run batched: for a chunk of windows, all (window, head) score products in one
// oneDNN call, the bias, mask and softmax per row, then all P·V products in one call, with q, k, v
// and the output read in place through strides (measured, aim-bench "Swin-B window attention":
// as fast as one serial sgemm per pair for 49- and 392-token windows; copying the operands into
// dense head-major batches, which oneDNN's brgemm takes, was not faster).
// Windows of at most 16 tokens go to the fused kernels of ShortWindowAttention.swift instead; a
// bf16 model's longer windows run their products in bf16 (WindowAttentionBF16.swift).
// The probabilities [S, H, L, L] are either kept by the forward for the backward, or (probs nil)
// recomputed by the backward from q, k and the bias with the same code, so both see the same bits:
// kept they are the largest activation of a Swin block (H·L floats per token: 196 in stage 1 of
// Swin-B, 1568 with VideoSwin's 392-token windows), recomputed they cost one Q·Kᵀ and softmax more.

@inline(__always) func addInPlace16(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
    zip16(y, UnsafePointer(y), x, n) { a, b in a + b }
}

/// Relative-position bias [H, L, L] from its table [E, H]: bias[h, i, j] = table[index[i·L + j], h]
/// (the official `relative_position_bias_table[relative_position_index].permute(2, 0, 1)`).
public func relativePositionBiasForward(out: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>, index: UnsafePointer<Int32>,
                                        length L: Int, heads H: Int) {
    for h in 0..<H { for e in 0..<(L * L) { out[h * L * L + e] = table[Int(index[e]) * H + h] } }
}

/// dTable [E, H] += the scatter-add of dBias [H, L, L] through the same index.
public func relativePositionBiasBackward(dTable: UnsafeMutablePointer<Float>, dBias: UnsafePointer<Float>, index: UnsafePointer<Int32>,
                                         length L: Int, heads H: Int) {
    for h in 0..<H { for e in 0..<(L * L) { dTable[Int(index[e]) * H + h] += dBias[h * L * L + e] } }
}

/// Floats of the `workspace` both directions take: one chunk's probabilities and their gradient.
public func windowAttentionWorkspace(sequences S: Int, length L: Int, heads H: Int) -> Int {
    2 * windowChunk(S, L, H) * H * L * L
}

/// Windows per batched product: their probabilities fill at most 256K floats (1 MB), so a chunk's
/// scores stay in the cores' L2 between the Q·Kᵀ product, the softmax and the P·V product (measured
/// side by side against 4 MB chunks: equal minimums, 25–35 % lower medians for 49-token windows on a
/// busy machine, where memory traffic is what other work slows).
func windowChunk(_ S: Int, _ L: Int, _ H: Int) -> Int { max(1, min(S, (1 << 18) / (H * L * L))) }

/// The strided views of q, k, v (in qkv rows) and of the attention output, for n windows.
struct WindowOperands {
    let q: BatchedOperand, out: BatchedOperand, probs: BatchedOperand
    init(windows n: Int, length L: Int, width D: Int, heads H: Int) {
        let dh = D / H
        q = BatchedOperand([n, H, L, dh], strides: [L * 3 * D, dh, 3 * D, 1])
        out = BatchedOperand([n, H, L, dh], strides: [L * D, dh, D, 1])
        probs = .dense(n, H, L, L)
    }
}

/// out [S, L, D]; probs [S, H, L, L] receives the attention weights when given; bias [H, L, L] and
/// mask [G, L, L] (nil: none) are added to the scaled scores.
public func windowAttentionForward(
    out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, probs: UnsafeMutablePointer<Float>?,
    bias: UnsafePointer<Float>?, mask: UnsafePointer<Float>? = nil, maskGroups G: Int = 1, firstWindow: Int = 0,
    sequences S: Int, length L: Int, width D: Int, heads H: Int, workspace: UnsafeMutablePointer<Float>
) throws {
    checkWindowSizes("windowAttentionForward", S, L, D, H, G)
    let LL = L * L
    if ShortWindowAttention.applies(length: L) {
        shortWindowAttentionForward(out: out, qkv: qkv, probs: probs, bias: bias, mask: mask, maskGroups: G, firstWindow: firstWindow,
                                    sequences: S, length: L, width: D, heads: H)
        return
    }
    try forEachWindowChunk(S, L, D, H) { s0, n, ops, scale in
        let q = qkv + s0 * L * 3 * D
        let p = probs.map { $0 + s0 * H * LL } ?? workspace
        try windowScores(p, q: q, ops: ops, first: firstWindow + s0, bias: bias, mask: mask, G: G, windows: n, length: L, width: D, heads: H, scale: scale)
        try batchedMatmul(ops.probs, p, ops.q, q + 2 * D, ops.out, out + s0 * L * D)
    }
}

func checkWindowSizes(_ name: String, _ S: Int, _ L: Int, _ D: Int, _ H: Int, _ G: Int) {
    precondition(S >= 0 && L > 0 && H > 0 && D % H == 0 && G > 0, "\(name): bad sizes S=\(S) L=\(L) D=\(D) H=\(H) G=\(G)")
}

/// Runs `body(first window, windows, operands, score scale)` per chunk of `windowChunk` windows.
func forEachWindowChunk(_ S: Int, _ L: Int, _ D: Int, _ H: Int,
                        _ body: (Int, Int, WindowOperands, Float) throws -> Void) throws {
    let chunk = windowChunk(S, L, H), scale = 1 / Float(D / H).squareRoot()
    var s0 = 0
    while s0 < S {
        let n = min(chunk, S - s0)
        try body(s0, n, WindowOperands(windows: n, length: L, width: D, heads: H), scale)
        s0 += n
    }
}

/// P = softmax(scale·Q·Kᵀ + bias + mask) for windows first..<first+n into p [n, H, L, L].
private func windowScores(_ p: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, ops: WindowOperands, first s0: Int,
                          bias: UnsafePointer<Float>?, mask: UnsafePointer<Float>?, G: Int,
                          windows n: Int, length L: Int, width D: Int, heads H: Int, scale: Float) throws {
    try batchedMatmul(ops.q, q, ops.q.transposed, q + D, ops.probs, p, alpha: scale)
    windowSoftmax(p, first: s0, bias: bias, mask: mask, G: G, windows: n, length: L, heads: H) { _ in }
}

/// p [n, H, L, L] (scale·Q·Kᵀ of windows first..<first+n) becomes softmax(p + bias + mask) by
/// rows, the (window, head) pairs split over the threads; `then(pairs)` runs after each thread's share.
func windowSoftmax(_ p: UnsafeMutablePointer<Float>, first s0: Int, bias: UnsafePointer<Float>?, mask: UnsafePointer<Float>?, G: Int,
                   windows n: Int, length L: Int, heads H: Int, then: (Range<Int>) -> Void) {
    let LL = L * L
    Threads.parallelFor(n * H) { pairs in
        for pair in pairs {
            let s = s0 + pair / H, h = pair % H, row = p + pair * LL
            if let bias { addInPlace16(row, bias + h * LL, LL) }
            if let mask { addInPlace16(row, mask + (s % G) * LL, LL) }
            for i in 0..<L { softmaxRow(row + i * L, row + i * L, L) }
        }
        then(pairs)
    }
}

/// dQKV [S, L, 3D] is overwritten. dScores [S, H, L, L] (if given) receives the gradient of the
/// pre-softmax scores, which is the gradient of the bias each window added (summed by the caller).
/// probs nil: recomputed from qkv and the forward's bias and mask.
public func windowAttentionBackward(
    dQKV: UnsafeMutablePointer<Float>, dScores: UnsafeMutablePointer<Float>?, dOut: UnsafePointer<Float>,
    qkv: UnsafePointer<Float>, probs: UnsafePointer<Float>?, bias: UnsafePointer<Float>? = nil,
    mask: UnsafePointer<Float>? = nil, maskGroups G: Int = 1, firstWindow: Int = 0, sequences S: Int, length L: Int, width D: Int, heads H: Int,
    workspace: UnsafeMutablePointer<Float>
) throws {
    checkWindowSizes("windowAttentionBackward", S, L, D, H, G)
    let LL = L * L, chunk = windowChunk(S, L, H)
    if ShortWindowAttention.applies(length: L) {
        shortWindowAttentionBackward(dQKV: dQKV, dScores: dScores, dOut: dOut, qkv: qkv, probs: probs, bias: bias, mask: mask,
                                     maskGroups: G, firstWindow: firstWindow, sequences: S, length: L, width: D, heads: H)
        return
    }
    try forEachWindowChunk(S, L, D, H) { s0, n, ops, scale in
        let q = qkv + s0 * L * 3 * D, dq = dQKV + s0 * L * 3 * D, dO = dOut + s0 * L * D
        let p: UnsafePointer<Float>
        if let probs { p = probs + s0 * H * LL } else {
            try windowScores(workspace, q: q, ops: ops, first: firstWindow + s0, bias: bias, mask: mask, G: G, windows: n, length: L, width: D, heads: H, scale: scale)
            p = UnsafePointer(workspace)
        }
        let ds = dScores.map { $0 + s0 * H * LL } ?? workspace + chunk * H * LL
        try batchedMatmul(ops.probs.transposed, p, ops.out, dO, ops.q, dq + 2 * D)          // dV = Pᵀ·dO
        try batchedMatmul(ops.out, dO, ops.q.transposed, q + 2 * D, ops.probs, ds)          // dP = dO·Vᵀ
        Threads.parallelFor(n * H * L) { rows in
            for r in rows { softmaxBackwardRow(ds + r * L, ds + r * L, p + r * L, L) }
        }
        try batchedMatmul(ops.probs, ds, ops.q, q + D, ops.q, dq, alpha: scale)                // dQ = scale·dS·K
        try batchedMatmul(ops.probs.transposed, ds, ops.q, q, ops.q, dq + D, alpha: scale)     // dK = scale·dSᵀ·Q
    }
}

