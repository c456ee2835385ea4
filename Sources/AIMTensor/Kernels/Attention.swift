import COpenBLAS

// Multi-head scaled-dot-product attention over S independent sequences of length L, the core of
// nn.MultiheadAttention (need_weights=False, no mask) between in_proj and out_proj.
// qkv [S, L, 3D] packs q | k | v per token; head h owns columns h·dh..<(h+1)·dh of each (dh = D/H).
// The same kernel runs attention over the 197 tokens of a frame (S = B·T, L = 197) and over the
// T frames of one token (S = B·197, L = 8): sequences go through per-(sequence, head) sgemm
// calls, the shortest through direct vector loops, both parallel over (sequence, head) pairs.

/// Sequences up to this length use the direct loops; longer ones use sgemm. Even at L = 8 (the
/// temporal pass) serial sgemm per pair beats our loops (aim-bench, ViT-B/16 temporal attention:
/// 1.6 vs 2.5 ms forward, 2.5 vs 4.5 ms backward), whose 64-wide dot products end in horizontal sums.
public let attentionDirectMaxLength = 4

/// probs [S, H, L, L] receives the attention weights for the backward; with `probs` nil (only
/// for L > attentionDirectMaxLength) they live in a per-thread buffer and the backward recomputes
/// them bit for bit.
public func attentionForward(
    out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, probs: UnsafeMutablePointer<Float>?,
    sequences S: Int, length L: Int, width D: Int, heads H: Int
) {
    precondition(S >= 0 && L > 0 && H > 0 && D % H == 0, "attentionForward: bad sizes S=\(S) L=\(L) D=\(D) H=\(H)")
    let dh = D / H, ld = 3 * D
    let scale = 1 / Float(dh).squareRoot()
    let direct = L <= attentionDirectMaxLength
    precondition(probs != nil || !direct, "attentionForward: sequences of length \(L) keep their probabilities")
    withSerialBLAS {
        Threads.parallelFor(S * H) { pairs in
          withScratch(probs == nil ? L * L : 0) { own in
            for pair in pairs {
                let s = pair / H, h = pair % H
                let q = qkv + s * L * ld + h * dh, k = q + D, v = q + 2 * D
                let p = probs.map { $0 + pair * L * L } ?? own
                let o = out + s * L * D + h * dh
                if direct {
                    for i in 0..<L {
                        let row = p + i * L
                        for j in 0..<L { row[j] = dot16(q + i * ld, k + j * ld, dh) * scale }
                        softmaxRow(row, row, L)
                        // o_i = Σ_j p_ij · v_j, 16 columns at a time.
                        var c = 0
                        while c < dh {
                            let w = min(16, dh - c)
                            var acc = F16()
                            for j in 0..<L {
                                let vj = v + j * ld + c
                                acc += row[j] * (w == 16 ? load16(vj) : loadPartial(vj, w))
                            }
                            if w == 16 { store16(acc, o + i * D + c) } else { storePartial(acc, o + i * D + c, w) }
                            c += 16
                        }
                    }
                } else {
                    attentionProbabilities(p, q: q, k: k, length: L, headWidth: dh, rowStride: ld, scale: scale)
                    let l = Int32(L), d = Int32(dh)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l, d, l,
                                1, p, l, v, Int32(ld), 0, o, Int32(D))
                }
            }
          }
        }
    }
}

/// P = softmax(scale · Q·Kᵀ) of one (sequence, head) by serial sgemm: the forward and the
/// recomputing backward call exactly this, so both see the same bits.
@inline(__always)
private func attentionProbabilities(_ p: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                    length L: Int, headWidth dh: Int, rowStride ld: Int, scale: Float) {
    let l = Int32(L)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l, l, Int32(dh), scale, q, Int32(ld), k, Int32(ld), 0, p, l)
    for i in 0..<L { softmaxRow(p + i * L, p + i * L, L) }
}

/// dQKV [S, L, 3D] is overwritten with the gradients of q | k | v. `probs` nil: recomputed from q, k.
public func attentionBackward(
    dQKV: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
    probs: UnsafePointer<Float>?, sequences S: Int, length L: Int, width D: Int, heads H: Int
) {
    precondition(S >= 0 && L > 0 && H > 0 && D % H == 0, "attentionBackward: bad sizes S=\(S) L=\(L) D=\(D) H=\(H)")
    let dh = D / H, ld = 3 * D
    let scale = 1 / Float(dh).squareRoot()
    let direct = L <= attentionDirectMaxLength
    precondition(probs != nil || !direct, "attentionBackward: sequences of length \(L) keep their probabilities")
    withSerialBLAS {
        Threads.parallelFor(S * H) { pairs in
            // dP / dS (and recomputed P) for one (sequence, head), reused across this chunk's pairs.
            withScratch(probs == nil ? 2 * L * L : L * L) { ds in
                for pair in pairs {
                    let s = pair / H, h = pair % H
                    let off = s * L * ld + h * dh
                    let q = qkv + off, k = q + D, v = q + 2 * D
                    let dq = dQKV + off, dk = dq + D, dv = dq + 2 * D
                    let p: UnsafePointer<Float>
                    if let probs { p = probs + pair * L * L } else {
                        let own = ds + L * L
                        attentionProbabilities(own, q: q, k: k, length: L, headWidth: dh, rowStride: ld, scale: scale)
                        p = UnsafePointer(own)
                    }
                    let dO = dOut + s * L * D + h * dh
                    if direct {
                        // dS = softmax'(dP), dP_ij = dO_i · v_j.
                        for i in 0..<L {
                            let row = ds + i * L
                            for j in 0..<L { row[j] = dot16(dO + i * D, v + j * ld, dh) }
                            softmaxBackwardRow(row, row, p + i * L, L)
                        }
                        // dq_i = scale Σ_j dS_ij k_j;  dk_j = scale Σ_i dS_ij q_i;  dv_j = Σ_i P_ij dO_i.
                        var c = 0
                        while c < dh {
                            let w = min(16, dh - c)
                            @inline(__always) func ld16(_ x: UnsafePointer<Float>) -> F16 { w == 16 ? load16(x) : loadPartial(x, w) }
                            @inline(__always) func st16(_ a: F16, _ x: UnsafeMutablePointer<Float>) {
                                if w == 16 { store16(a, x) } else { storePartial(a, x, w) }
                            }
                            for i in 0..<L {
                                var aq = F16(), ak = F16(), av = F16()
                                for j in 0..<L {
                                    aq += ds[i * L + j] * ld16(k + j * ld + c)
                                    ak += ds[j * L + i] * ld16(q + j * ld + c)
                                    av += p[j * L + i] * ld16(dO + j * D + c)
                                }
                                st16(aq * scale, dq + i * ld + c)
                                st16(ak * scale, dk + i * ld + c)
                                st16(av, dv + i * ld + c)
                            }
                            c += 16
                        }
                    } else {
                        let l = Int32(L), d = Int32(dh), ldq = Int32(ld)
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l, d, l,
                                    1, p, l, dO, Int32(D), 0, dv, ldq)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, l, l, d,
                                    1, dO, Int32(D), v, ldq, 0, ds, l)
                        for i in 0..<L { softmaxBackwardRow(ds + i * L, ds + i * L, p + i * L, L) }
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, l, d, l,
                                    scale, ds, l, k, ldq, 0, dq, ldq)
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, l, d, l,
                                    scale, ds, l, q, ldq, 0, dk, ldq)
                    }
                }
            }
        }
    }
}

/// Runs `body` with OpenBLAS on one thread, so our own parallel loop can call sgemm from each of
/// its threads (one GEMM per sequence and head) without oversubscribing the cores; restores the
/// shared thread setting afterwards. Results then do not depend on OpenBLAS's thread split.
func withSerialBLAS<R>(_ body: () -> R) -> R {
    let n = Threads.count
    if n > 1 { openblas_set_num_threads(1) }
    defer { if n > 1 { openblas_set_num_threads(Int32(n)) } }
    return body()
}
