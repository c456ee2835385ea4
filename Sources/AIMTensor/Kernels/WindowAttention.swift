import COpenBLAS

// Window attention of Swin: softmax(scale·Q·Kᵀ + bias) · V over S windows of L tokens, where the
// additive bias (relative-position bias, plus the −100 shift mask of shifted windows) depends on the
// window only through its position in the sample: window s uses bias group s mod G (G = 1 without a
// mask, G = windows per sample with one). qkv [S, L, 3D] packs q | k | v per token as in
// attentionForward. Each (window, head) pair is two serial sgemm calls, parallel over pairs.
// The probabilities are always kept: windows are short (49 or 392 tokens) and backward reads them.

/// probs [S, H, L, L] receives the attention weights; bias [G, H, L, L] (nil: none).
public func windowAttentionForward(
    out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, probs: UnsafeMutablePointer<Float>,
    bias: UnsafePointer<Float>?, biasGroups G: Int, sequences S: Int, length L: Int, width D: Int, heads H: Int
) {
    precondition(S >= 0 && L > 0 && H > 0 && D % H == 0 && G > 0, "windowAttentionForward: bad sizes S=\(S) L=\(L) D=\(D) H=\(H) G=\(G)")
    let dh = D / H, ld = 3 * D, LL = L * L
    let scale = 1 / Float(dh).squareRoot()
    withSerialBLAS {
        Threads.parallelFor(S * H) { pairs in
            for pair in pairs {
                let s = pair / H, h = pair % H
                let q = qkv + s * L * ld + h * dh, k = q + D, v = q + 2 * D
                let p = probs + pair * LL
                let l = Int32(L), d = Int32(dh)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l, l, d, scale, q, Int32(ld), k, Int32(ld), 0, p, l)
                if let bias { addInPlace16(p, bias + ((s % G) * H + h) * LL, LL) }
                for i in 0..<L { softmaxRow(p + i * L, p + i * L, L) }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l, d, l, 1, p, l, v, Int32(ld), 0,
                            out + s * L * D + h * dh, Int32(D))
            }
        }
    }
}

/// dQKV [S, L, 3D] is overwritten. dScores [S, H, L, L] (if given) receives the gradient of the
/// pre-softmax scores, which is the gradient of the bias each window added (summed by the caller).
public func windowAttentionBackward(
    dQKV: UnsafeMutablePointer<Float>, dScores: UnsafeMutablePointer<Float>?, dOut: UnsafePointer<Float>,
    qkv: UnsafePointer<Float>, probs: UnsafePointer<Float>, sequences S: Int, length L: Int, width D: Int, heads H: Int
) {
    precondition(S >= 0 && L > 0 && H > 0 && D % H == 0, "windowAttentionBackward: bad sizes S=\(S) L=\(L) D=\(D) H=\(H)")
    let dh = D / H, ld = 3 * D, LL = L * L
    let scale = 1 / Float(dh).squareRoot()
    withSerialBLAS {
        Threads.parallelFor(S * H) { pairs in
            withScratch(dScores == nil ? LL : 0) { own in
                for pair in pairs {
                    let s = pair / H, h = pair % H
                    let off = s * L * ld + h * dh
                    let q = qkv + off, k = q + D, v = q + 2 * D
                    let dq = dQKV + off, dk = dq + D, dv = dq + 2 * D
                    let p = probs + pair * LL, ds = dScores.map { $0 + pair * LL } ?? own
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
