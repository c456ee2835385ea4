// Attention over windows of at most 16 tokens (AIM-Swin's temporal pass: the 16 temporal tokens of
// one position), fused per (window, head) with the key index in the 16 lanes of one vector:
// scores, bias, mask, softmax and the three products of the backward run in registers and L1, with
// no GEMM call. Why: for a 16×16×32 product a batched GEMM library spends more on walking its
// strided batch than on arithmetic (measured, aim-bench "Swin-B window attention": the temporal
// pass of stage 1 ran at 20–28 GFLOP/s through oneDNN's batched matmul).
// Same operands and semantics as windowAttentionForward/Backward (qkv [S, L, 3D] packing q | k | v,
// probabilities [S, H, L, L], bias [H, L, L], mask [G, L, L]); the softmax is softmaxRow's
// (exp flushed to exactly 0 below e^−80, probabilities under the smallest normal float to 0).
// The backward recomputes the probabilities with the forward's own code, so kept and recomputed
// give the same bits.

public enum ShortWindowAttention {
    /// The longest window the fused kernels take.
    public static let maxLength = 16
    /// Tests switch the fused kernels off to compare them with the batched-GEMM path.
    nonisolated(unsafe) public static var enabled = true
    static func applies(length L: Int) -> Bool { enabled && L <= maxLength }
}

/// t[d·16 + j] = x[j·rowStride + d] for j < L, d < dh (one head's rows transposed, keys in lanes);
/// lanes ≥ L are not written (the caller zeroes them once).
@inline(__always) private func transposeHead(_ t: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, rowStride: Int, L: Int, dh: Int) {
    // Wrapping index arithmetic in these inner loops: the checked kind cost more than the arithmetic.
    var r = x, column = t
    for _ in 0..<L {
        var d = 0, o = column
        while d < dh { o.pointee = r[d]; o += 16; d &+= 1 }
        r += rowStride; column += 1
    }
}

/// Σ_d a[d]·t[d·16 ..< d·16+16]: one row of A·Xᵀ over the lanes j.
@inline(__always) private func rowTimesTransposed(_ a: UnsafePointer<Float>, _ t: UnsafePointer<Float>, dh: Int) -> F16 {
    var acc0 = F16(), acc1 = F16()
    var d = 0, tp = t
    while d &+ 2 <= dh {
        acc0 = acc0.addingProduct(F16(repeating: a[d]), load16(tp))
        acc1 = acc1.addingProduct(F16(repeating: a[d &+ 1]), load16(tp + 16))
        d &+= 2; tp += 32
    }
    if d < dh { acc0 = acc0.addingProduct(F16(repeating: a[d]), load16(tp)) }
    return acc0 + acc1
}

/// out[c] = scale · Σ_{j<L} w[j·wStride] · x[j·rowStride + c] for c < dh (overwritten).
@inline(__always) private func weightedRows(_ out: UnsafeMutablePointer<Float>, w: UnsafePointer<Float>, wStride: Int,
                                            _ x: UnsafePointer<Float>, rowStride: Int, L: Int, dh: Int, scale: Float) {
    var c = 0
    while c &+ 16 <= dh {
        var acc = F16(), wp = w, xp = x + c
        for _ in 0..<L { acc = acc.addingProduct(F16(repeating: wp.pointee), load16(xp)); wp += wStride; xp += rowStride }
        store16(acc * scale, out + c)
        c &+= 16
    }
    if c < dh {
        let n = dh &- c
        var acc = F16(), wp = w, xp = x + c
        for _ in 0..<L { acc = acc.addingProduct(F16(repeating: wp.pointee), loadPartial(xp, n)); wp += wStride; xp += rowStride }
        storePartial(acc * scale, out + c, n)
    }
}

@inline(__always) private func loadRow(_ p: UnsafePointer<Float>, _ L: Int) -> F16 { L == 16 ? load16(p) : loadPartial(p, L) }
@inline(__always) private func storeRow(_ v: F16, _ p: UnsafeMutablePointer<Float>, _ L: Int) {
    if L == 16 { store16(v, p) } else { storePartial(v, p, L) }
}

/// The probabilities of one query row over the lanes (lanes ≥ L are 0).
@inline(__always) private func probabilityRow(q: UnsafePointer<Float>, kt: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                              mask: UnsafePointer<Float>?, L: Int, dh: Int, scale: Float) -> F16 {
    var s = rowTimesTransposed(q, kt, dh: dh) * scale
    if let bias { s += loadRow(bias, L) }
    if let mask { s += loadRow(mask, L) }
    if L < 16 {
        let lane = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        s.replace(with: -.infinity, where: lane .>= Int32(L))
    }
    let e = underflowingExp(s - hmax(s))
    let p = e * (1 / hsum(e))
    return p.replacing(with: F16(), where: p .< F16(repeating: Float.leastNormalMagnitude))
}

/// Per-thread scratch of the fused kernels: one head transposed [dh, 16] (lanes ≥ L zero), and
/// two [16, 16] tiles (probabilities, score gradient).
private func withHeadScratch(dh: Int, _ body: (_ t: UnsafeMutablePointer<Float>, _ p: UnsafeMutablePointer<Float>,
                                               _ ds: UnsafeMutablePointer<Float>) -> Void) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: dh * 16 + 2 * 256) { buf in
        let t = buf.baseAddress!
        t.initialize(repeating: 0, count: dh * 16 + 2 * 256)
        body(t, t + dh * 16, t + dh * 16 + 256)
    }
}

func shortWindowAttentionForward(
    out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, probs: UnsafeMutablePointer<Float>?,
    bias: UnsafePointer<Float>?, mask: UnsafePointer<Float>?, maskGroups G: Int, firstWindow: Int,
    sequences S: Int, length L: Int, width D: Int, heads H: Int
) {
    let dh = D / H, scale = 1 / Float(dh).squareRoot(), row = 3 * D, LL = L * L
    Threads.parallelFor(S * H) { pairs in
        withHeadScratch(dh: dh) { kt, p, _ in
            for pair in pairs {
                let s = pair / H, h = pair % H, base = qkv + s * L * row + h * dh
                let b = bias.map { $0 + h * LL }, m = mask.map { $0 + ((firstWindow + s) % G) * LL }
                transposeHead(kt, base + D, rowStride: row, L: L, dh: dh)
                for i in 0..<L {
                    let pr = probabilityRow(q: base + i * row, kt: kt, bias: b.map { $0 + i * L }, mask: m.map { $0 + i * L },
                                            L: L, dh: dh, scale: scale)
                    store16(pr, p)
                    if let probs { storeRow(pr, probs + pair * LL + i * L, L) }
                    weightedRows(out + (s * L + i) * D + h * dh, w: p, wStride: 1, base + 2 * D, rowStride: row, L: L, dh: dh, scale: 1)
                }
            }
        }
    }
}

func shortWindowAttentionBackward(
    dQKV: UnsafeMutablePointer<Float>, dScores: UnsafeMutablePointer<Float>?, dOut: UnsafePointer<Float>,
    qkv: UnsafePointer<Float>, probs: UnsafePointer<Float>?, bias: UnsafePointer<Float>?, mask: UnsafePointer<Float>?,
    maskGroups G: Int, firstWindow: Int, sequences S: Int, length L: Int, width D: Int, heads H: Int
) {
    let dh = D / H, scale = 1 / Float(dh).squareRoot(), row = 3 * D, LL = L * L
    Threads.parallelFor(S * H) { pairs in
        withHeadScratch(dh: dh) { t, p, ds in
            for pair in pairs {
                let s = pair / H, h = pair % H, base = qkv + s * L * row + h * dh
                let dO = dOut + s * L * D + h * dh, dBase = dQKV + s * L * row + h * dh
                if let probs {
                    for i in 0..<L { store16(loadRow(probs + pair * LL + i * L, L), p + i * 16) }
                } else {
                    let b = bias.map { $0 + h * LL }, m = mask.map { $0 + ((firstWindow + s) % G) * LL }
                    transposeHead(t, base + D, rowStride: row, L: L, dh: dh)
                    for i in 0..<L {
                        store16(probabilityRow(q: base + i * row, kt: t, bias: b.map { $0 + i * L }, mask: m.map { $0 + i * L },
                                               L: L, dh: dh, scale: scale), p + i * 16)
                    }
                }
                // dP = dO·Vᵀ, dS = P ⊙ (dP − Σ_j dP·P).
                transposeHead(t, base + 2 * D, rowStride: row, L: L, dh: dh)
                for i in 0..<L {
                    let dp = rowTimesTransposed(dO + i * D, t, dh: dh), pr = load16(p + i * 16)
                    let dsr = pr * (dp - hsum(dp * pr))
                    store16(dsr, ds + i * 16)
                    if let dScores { storeRow(dsr, dScores + pair * LL + i * L, L) }
                }
                for j in 0..<L {   // dV[j] = Σ_i P[i, j]·dO[i]; dK[j] = scale·Σ_i dS[i, j]·q[i]
                    weightedRows(dBase + j * row + 2 * D, w: p + j, wStride: 16, dO, rowStride: D, L: L, dh: dh, scale: 1)
                    weightedRows(dBase + j * row + D, w: ds + j, wStride: 16, base, rowStride: row, L: L, dh: dh, scale: scale)
                }
                for i in 0..<L {   // dQ[i] = scale·Σ_j dS[i, j]·k[j]
                    weightedRows(dBase + i * row, w: ds + i * 16, wStride: 1, base + D, rowStride: row, L: L, dh: dh, scale: scale)
                }
            }
        }
    }
}
