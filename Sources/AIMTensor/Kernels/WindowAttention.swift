import COpenBLAS

// Window attention of Swin: softmax(scale·Q·Kᵀ + bias + mask) · V over S windows of L tokens. The
// relative-position bias [H, L, L] is the same for every window; the −100 shift mask of shifted
// windows [G, L, L] depends on the window only through its position in the sample: window s uses
// mask s mod G (G = windows per sample), the same for every head. qkv [S, L, 3D] packs q | k | v
// per token as in attentionForward. Each (window, head) pair is serial sgemm calls, parallel over pairs.
// The probabilities [S, H, L, L] are either kept by the forward for the backward, or (probs nil)
// recomputed by the backward from q, k and the bias with the same code, so both see the same bits:
// kept they are the largest activation of a Swin block (H·L floats per token: 196 in stage 1 of
// Swin-B, 1568 with VideoSwin's 392-token windows), recomputed they cost one Q·Kᵀ and softmax more.

/// probs [S, H, L, L] receives the attention weights when given; bias [H, L, L] and mask [G, L, L]
/// (nil: none) are added to the scaled scores.
public func windowAttentionForward(
    out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, probs: UnsafeMutablePointer<Float>?,
    bias: UnsafePointer<Float>?, mask: UnsafePointer<Float>? = nil, maskGroups G: Int = 1,
    sequences S: Int, length L: Int, width D: Int, heads H: Int
) {
    precondition(S >= 0 && L > 0 && H > 0 && D % H == 0 && G > 0, "windowAttentionForward: bad sizes S=\(S) L=\(L) D=\(D) H=\(H) G=\(G)")
    let dh = D / H, ld = 3 * D, LL = L * L
    withSerialBLAS {
        Threads.parallelFor(S * H) { pairs in
            withScratch(probs == nil ? LL : 0) { own in
                for pair in pairs {
                    let s = pair / H, h = pair % H
                    let q = qkv + s * L * ld + h * dh, v = q + 2 * D
                    let p = probs.map { $0 + pair * LL } ?? own
                    windowProbabilities(p, q: q, bias: bias.map { $0 + h * LL }, mask: mask.map { $0 + (s % G) * LL },
                                        length: L, width: D, heads: H)
                    let l = Int32(L), d = Int32(dh)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l, d, l, 1, p, l, v, Int32(ld), 0,
                                out + s * L * D + h * dh, Int32(D))
                }
            }
        }
    }
}

/// P = softmax(scale·Q·Kᵀ + bias + mask) of one (window, head); q points at the head's columns of
/// the window's first token (k follows D columns later). The forward and the recomputing backward
/// both call exactly this.
@inline(__always)
private func windowProbabilities(_ p: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                 mask: UnsafePointer<Float>?, length L: Int, width D: Int, heads H: Int) {
    let dh = D / H, ld = Int32(3 * D), l = Int32(L)
    let scale = 1 / Float(dh).squareRoot()
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l, l, Int32(dh), scale, q, ld, q + D, ld, 0, p, l)
    if let bias { addInPlace16(p, bias, L * L) }
    if let mask { addInPlace16(p, mask, L * L) }
    for i in 0..<L { softmaxRow(p + i * L, p + i * L, L) }
}

/// dQKV [S, L, 3D] is overwritten. dScores [S, H, L, L] (if given) receives the gradient of the
/// pre-softmax scores, which is the gradient of the bias each window added (summed by the caller).
/// probs nil: recomputed from qkv and the forward's bias and mask.
public func windowAttentionBackward(
    dQKV: UnsafeMutablePointer<Float>, dScores: UnsafeMutablePointer<Float>?, dOut: UnsafePointer<Float>,
    qkv: UnsafePointer<Float>, probs: UnsafePointer<Float>?, bias: UnsafePointer<Float>? = nil,
    mask: UnsafePointer<Float>? = nil, maskGroups G: Int = 1, sequences S: Int, length L: Int, width D: Int, heads H: Int
) {
    precondition(S >= 0 && L > 0 && H > 0 && D % H == 0 && G > 0, "windowAttentionBackward: bad sizes S=\(S) L=\(L) D=\(D) H=\(H) G=\(G)")
    let dh = D / H, ld = 3 * D, LL = L * L
    let scale = 1 / Float(dh).squareRoot()
    withSerialBLAS {
        Threads.parallelFor(S * H) { pairs in
            // [dS][recomputed P] per thread, as far as the caller does not provide them.
            withScratch((dScores == nil ? LL : 0) + (probs == nil ? LL : 0)) { own in
                for pair in pairs {
                    let s = pair / H, h = pair % H
                    let off = s * L * ld + h * dh
                    let q = qkv + off, k = q + D, v = q + 2 * D
                    let dq = dQKV + off, dk = dq + D, dv = dq + 2 * D
                    let ds = dScores.map { $0 + pair * LL } ?? own
                    let p: UnsafePointer<Float>
                    if let probs { p = probs + pair * LL } else {
                        let recomputed = own + (dScores == nil ? LL : 0)
                        windowProbabilities(recomputed, q: q, bias: bias.map { $0 + h * LL }, mask: mask.map { $0 + (s % G) * LL },
                                            length: L, width: D, heads: H)
                        p = UnsafePointer(recomputed)
                    }
                    let dO = dOut + s * L * D + h * dh
                    let l = Int32(L), d = Int32(dh), ldq = Int32(ld)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l, d, l, 1, p, l, dO, Int32(D), 0, dv, ldq)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l, l, d, 1, dO, Int32(D), v, ldq, 0, ds, l)
                    for i in 0..<L { softmaxBackwardRow(ds + i * L, ds + i * L, p + i * L, L) }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l, d, l, scale, ds, l, k, ldq, 0, dq, ldq)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l, d, l, scale, ds, l, q, ldq, 0, dk, ldq)
                }
            }
        }
    }
}

@inline(__always) private func addInPlace16(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int) {
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
