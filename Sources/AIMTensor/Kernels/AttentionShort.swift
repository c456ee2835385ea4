import CAMX

// Attention over short sequences in a bf16 model (the temporal pass over the T frames of each
// token): q | k | v in bf16, as autocast's in_proj returns them, the arithmetic in fp32 in
// registers (CAMX's attention_short.c), one (sequence, head) at a time. Why not the fp32 kernels
// of Attention.swift: they run one sgemm per (sequence, head) and product, thousands of 8 × 8
// products per call whose calls cost more than their arithmetic; nor oneDNN (AttentionBF16.swift),
// for the same reason.

/// Whether the short-sequence bf16 attention runs for these sizes here: AVX-512 (F, BW, VL),
/// L ≤ 16, head width a multiple of 16 up to 256.
public func shortAttentionRuns(length L: Int, width D: Int, heads H: Int) -> Bool {
    guard H > 0, D % H == 0 else { return false }
    let dh = D / H
    return roundsWithAVX512 && L >= 1 && L <= 16 && dh % 16 == 0 && dh <= 256
}

/// out [S, L, D] = attention(qkv16 [S, L, 3D]) over `heads`, written to `out` in fp32, or to
/// `roundedOut` in bf16 when given (`out` then untouched). Needs `shortAttentionRuns`.
/// `interleaved` G > 1: the S sequences lie interleaved in groups of G, sequence s = (b, n) holding
/// rows (b·L + i)·G + n, as the frames of each token do in frame order [(b t), n] (G = N tokens):
/// the temporal pass then needs no permutation of its rows into [(b n), t] and back.
public func shortAttentionForward(out: UnsafeMutablePointer<Float>?, roundedOut: UnsafeMutablePointer<UInt16>?,
                                  qkv16: UnsafePointer<UInt16>, sequences S: Int, length L: Int, width D: Int, heads H: Int,
                                  interleaved G: Int = 1) {
    precondition(shortAttentionRuns(length: L, width: D, heads: H) && (out != nil || roundedOut != nil) && G >= 1 && S % G == 0,
                 "shortAttentionForward: L=\(L) D=\(D) H=\(H) S=\(S) interleaved \(G) do not run here")
    Threads.parallelFor(S) { r in
        camx_short_attention_forward(qkv16, out, roundedOut, r.lowerBound, r.count, L, D, H, G)
    }
}

/// dQKV [S, L, 3D] = the gradients of q | k | v for dOut [S, L, D], in fp32, or in bf16 to
/// `roundedDQKV` when given (`dQKV` then untouched). Needs `shortAttentionRuns`.
/// `interleaved`: as for `shortAttentionForward`.
public func shortAttentionBackward(dQKV: UnsafeMutablePointer<Float>?, roundedDQKV: UnsafeMutablePointer<UInt16>?,
                                   dOut: UnsafePointer<Float>, qkv16: UnsafePointer<UInt16>,
                                   sequences S: Int, length L: Int, width D: Int, heads H: Int, interleaved G: Int = 1) {
    precondition(shortAttentionRuns(length: L, width: D, heads: H) && (dQKV != nil || roundedDQKV != nil) && G >= 1 && S % G == 0,
                 "shortAttentionBackward: L=\(L) D=\(D) H=\(H) S=\(S) interleaved \(G) do not run here")
    Threads.parallelFor(S) { r in
        camx_short_attention_backward(qkv16, dOut, dQKV, roundedDQKV, r.lowerBound, r.count, L, D, H, G)
    }
}
