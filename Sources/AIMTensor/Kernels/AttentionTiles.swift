import CAMX

// Attention of the bf16 models (model.precision: bf16) on AMX tiles, over the long sequences (the
// 197 tokens of a frame), as PyTorch's CPU autocast runs scaled-dot-product attention: q, k, v,
// the probabilities and the gradients of the scores rounded to bf16 as product operands, every
// product accumulated in fp32, softmax and its backward in fp32. Why: in fp32 this attention was
// 21 % of the bf16 ViT-B/16 step, its products at sgemm speed. The semantics are those of
// Attention.swift (the same qkv [S, L, 3D] layout, outputs and gradients); probabilities are
// never kept, the backward recomputes them.
//
// Per (sequence, head) pair, with L padded to Lp (a multiple of 32; padded rows are zero):
//   forward   S = Q·Kᵀ, P = softmax(scale·S) by rows, O = P·V
//   backward  Sᵀ = K·Qᵀ and Pᵀ by columns, dPᵀ = V·dOᵀ, dV = Pᵀ·dO, dSᵀ = Pᵀ ⊙ (dPᵀ − D),
//             dK = scale·dSᵀ·Q, dQᵀ = scale·Kᵀ·dSᵀ
// The backward works on the transposed scores so that each product's operands are either rows as
// they lie (A operands) or row pairs interleaved (B operands), never a transpose of an L × L matrix.
// Tile products are 32 × 32 blocks of `camx_block32`; packing is in plain loops here; softmax,
// its backward, the rounding to bf16 and the result stores are CAMX's attention_rows.c (AVX-512,
// the same rounding as `toBF16`). Padding to Lp costs 1.29× the products of L = 197 and keeps
// every block whole. Measured on the Xeon with AMX, ViT-B/16 spatial attention (8 × 197 tokens,
// 12 heads, 2 threads, alternating): forward 3.9–5.9 ms against 7.2–9.8 ms in fp32, backward
// 9.1–12.8 ms against 14.4–21.8 ms (the fp32 backward reading kept probabilities).

/// Whether attention over sequences of `length` with heads of `headWidth` runs on tiles in a bf16
/// model: where the bf16 products do (`BF16Products.tiles`), for sequences of at least 64 (shorter
/// ones, the temporal pass over T frames, go to the short-sequence kernel, AttentionShort.swift: a
/// 32-row tile block would be mostly padding) and heads in 32-wide steps.
public func attentionRunsOnTiles(length L: Int, headWidth dh: Int) -> Bool {
    BF16Products.tiles && CPUFeatures.current.contains([.avx512f, .avx512bw, .avx512vl]) && L >= 64 && dh % 32 == 0
}

/// out [S, L, D] = attention(qkv [S, L, 3D]) over `heads`, on tiles. Needs `attentionRunsOnTiles`.
public func attentionForwardTiles(
    out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, sequences S: Int, length L: Int, width D: Int, heads H: Int
) {
    let ld = 3 * D
    overSequences("attentionForwardTiles", sequences: S, length: L, width: D, heads: H, backward: false) { work, s, dh, scale in
        work.sequenceToBF16(qkv + s * L * ld, gradient: nil)
        work.forEachHead(H) { w, h in
            let lp = w.lp
            let q = work.qkv + h * dh, k = q + D, v = q + 2 * D
            packTransposed(w.packed0, k, n: lp, k: dh, stride: ld)
            tileProduct(m: lp, n: lp, k: dh, a: q, lda: ld, b: w.packed0, c: w.scores, ldc: lp)
            camx_softmax_rows_bf16(w.probsBF16, lp, w.scores, lp, L, L, lp, scale)
            packRowPairs(w.packed1, v, k: lp, n: dh, stride: ld)
            tileProduct(m: lp, n: dh, k: lp, a: w.probsBF16, lda: lp, b: w.packed1, c: w.result, ldc: dh)
            let o = out + s * L * D + h * dh
            camx_store_rows(o, D, w.result, dh, L, dh, 0)
        }
    }
}

/// dQKV [S, L, 3D] = the gradients of q | k | v for dOut [S, L, D], on tiles (probabilities
/// recomputed). Needs `attentionRunsOnTiles`.
public func attentionBackwardTiles(
    dQKV: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
    sequences S: Int, length L: Int, width D: Int, heads H: Int
) {
    let ld = 3 * D
    overSequences("attentionBackwardTiles", sequences: S, length: L, width: D, heads: H, backward: true) { work, s, dh, scale in
        work.sequenceToBF16(qkv + s * L * ld, gradient: dOut + s * L * D)
        work.forEachHead(H) { w, h in
            let lp = w.lp
            let q = work.qkv + h * dh, k = q + D, v = q + 2 * D, dO = work.gradient + h * dh
            let dq = dQKV + s * L * ld + h * dh, dk = dq + D, dv = dq + 2 * D

            // Pᵀ [j, i]: softmax down each column i over the keys j < L (fp32 in `scores`, bf16 rows too).
            packTransposed(w.packed0, q, n: lp, k: dh, stride: ld)
            tileProduct(m: lp, n: lp, k: dh, a: k, lda: ld, b: w.packed0, c: w.scores, ldc: lp)
            camx_softmax_columns_bf16(w.probsBF16, w.scores, lp, L, lp, scale)

            // dPᵀ [j, i] = v_j · dO_i.
            packTransposed(w.packed0, dO, n: lp, k: dh, stride: D)
            tileProduct(m: lp, n: lp, k: dh, a: v, lda: ld, b: w.packed0, c: w.scoreGrads, ldc: lp)

            // dV = Pᵀ · dO.
            packRowPairs(w.packed1, dO, k: lp, n: dh, stride: D)
            tileProduct(m: lp, n: dh, k: lp, a: w.probsBF16, lda: lp, b: w.packed1, c: w.result, ldc: dh)
            camx_store_rows(dv, ld, w.result, dh, L, dh, 0)

            // scale · dSᵀ in bf16 (rows j ≥ L stay zero; columns i ≥ L come out zero, as dO's padded rows are).
            camx_score_gradients_bf16(w.scoreGradsBF16, w.scores, w.scoreGrads, lp, L, lp, scale)

            // dK = scale · dSᵀ · Q.
            packRowPairs(w.packed1, q, k: lp, n: dh, stride: ld)
            tileProduct(m: lp, n: dh, k: lp, a: w.scoreGradsBF16, lda: lp, b: w.packed1, c: w.result, ldc: dh)
            camx_store_rows(dk, ld, w.result, dh, L, dh, 0)

            // dQᵀ = scale · Kᵀ · dSᵀ, written back transposed.
            transposeBF16(w.kTransposed, k, rows: lp, columns: dh, stride: ld)
            packRowPairs(w.packedScores, w.scoreGradsBF16, k: lp, n: lp, stride: lp)
            tileProduct(m: dh, n: lp, k: lp, a: w.kTransposed, lda: lp, b: w.packedScores, c: w.result, ldc: lp)
            camx_store_rows(dq, ld, w.result, lp, L, dh, 1)
        }
    }
}

/// Both passes' frame: the size checks, the call's buffers, then `body(work, sequence, head width,
/// scale)` for each sequence in turn.
private func overSequences(_ name: String, sequences S: Int, length L: Int, width D: Int, heads H: Int, backward: Bool,
                           _ body: (_ work: TileAttentionWork, _ s: Int, _ dh: Int, _ scale: Float) -> Void) {
    precondition(S >= 0 && H > 0 && D % H == 0 && attentionRunsOnTiles(length: L, headWidth: D / H),
                 "\(name): S=\(S) L=\(L) D=\(D) H=\(H) do not run on tiles here")
    let dh = D / H
    let work = TileAttentionWork(length: L, headWidth: dh, width: D, backward: backward)
    defer { work.deallocate() }
    for s in 0..<S { body(work, s, dh, 1 / Float(dh).squareRoot()) }
}

/// One call's buffers. Sequences go one at a time: all threads round the sequence's q | k | v
/// (and output gradient) to bf16 rows in one pass over contiguous memory, then split its heads.
/// Why: a head's slice of each row is 256 bytes at a 9 KB stride, and reading those straight from
/// the fp32 activations ran at memory latency (70–90 µs of a pair's 200 µs on the Xeon with AMX).
/// The padded rows (L..<Lp) are zero throughout. About 1 MB shared plus 0.6–1.2 MB per thread for
/// ViT-B/16 (L = 197), allocated per call.
private final class TileAttentionWork {
    let length: Int, lp: Int, width: Int
    let qkv: UnsafeMutablePointer<UInt16>            // [lp, 3D] bf16
    let gradient: UnsafeMutablePointer<UInt16>       // [lp, D] bf16 (backward)
    let threads: [TileAttentionWorkspace]

    init(length L: Int, headWidth dh: Int, width D: Int, backward: Bool) {
        let lp = AMX.roundUp32(L)
        length = L; self.lp = lp; width = D
        qkv = zeroedTileBuffer(lp * 3 * D)
        gradient = zeroedTileBuffer(backward ? lp * D : 0)
        threads = (0..<Threads.count).map { _ in TileAttentionWorkspace(lp: lp, dh: dh, backward: backward) }
    }

    func deallocate() { qkv.deallocate(); gradient.deallocate(); threads.forEach { $0.deallocate() } }

    /// Rounds one sequence's rows of q | k | v (and of the output gradient) into `qkv` (`gradient`);
    /// the padded rows stay zero.
    func sequenceToBF16(_ x: UnsafePointer<Float>, gradient dy: UnsafePointer<Float>?) {
        roundAttentionRows(qkv, x, gradient, dy, length: length, width: width)
    }

    /// `body(workspace, head)` for every head, the heads split over the threads, tiles configured.
    func forEachHead(_ heads: Int, _ body: (TileAttentionWorkspace, Int) -> Void) {
        forEachChunk(heads, grain: 1) { c, range in
            camx_configure()
            defer { camx_release() }
            for h in range { body(threads[c], h) }
        }
    }
}

private func zeroedTileBuffer<T: Numeric>(_ n: Int) -> UnsafeMutablePointer<T> {
    let p: UnsafeMutablePointer<T> = amxAllocate(n)
    p.initialize(repeating: 0, count: max(n, 1))
    return p
}

/// One thread's buffers for its heads, 64-byte aligned and zeroed once: rows ≥ L of the bf16
/// probabilities and score gradients are never written, so they stay the zero padding.
private struct TileAttentionWorkspace {
    let lp: Int
    let packed0, packed1: UnsafeMutablePointer<UInt16>          // packed B operands of lp × dh elements
    let scores: UnsafeMutablePointer<Float>                     // [lp, lp]: S or Sᵀ, then P or Pᵀ
    let probsBF16: UnsafeMutablePointer<UInt16>                 // [lp, lp]
    let result: UnsafeMutablePointer<Float>                     // [lp, dh] or [dh, lp]
    // Backward only (empty in the forward's workspace).
    let scoreGrads: UnsafeMutablePointer<Float>                 // [lp, lp] dPᵀ
    let scoreGradsBF16, packedScores: UnsafeMutablePointer<UInt16>  // [lp, lp] scale·dSᵀ, and packed
    let kTransposed: UnsafeMutablePointer<UInt16>               // [dh, lp]

    init(lp: Int, dh: Int, backward: Bool) {
        self.lp = lp
        let rows = lp * dh, square = lp * lp, extra = backward ? 1 : 0
        packed0 = zeroedTileBuffer(rows); packed1 = zeroedTileBuffer(rows)
        scores = zeroedTileBuffer(square); probsBF16 = zeroedTileBuffer(square); result = zeroedTileBuffer(rows)
        scoreGrads = zeroedTileBuffer(square * extra)
        scoreGradsBF16 = zeroedTileBuffer(square * extra); packedScores = zeroedTileBuffer(square * extra)
        kTransposed = zeroedTileBuffer(rows * extra)
    }

    func deallocate() {
        for p in [packed0, packed1, probsBF16, scoreGradsBF16, packedScores, kTransposed] { p.deallocate() }
        for p in [scores, result, scoreGrads] { p.deallocate() }
    }
}

/// C [m, n] (row stride ldc) = A [m, k] (bf16, row stride lda) · B (packed [k, n]), all multiples
/// of 32; this thread's tiles configured.
@inline(__always)
private func tileProduct(m: Int, n: Int, k: Int, a: UnsafePointer<UInt16>, lda: Int, b: UnsafePointer<UInt16>,
                         c: UnsafeMutablePointer<Float>, ldc: Int) {
    let strip = k * 16
    for p in 0..<(n / 32) {
        for blk in 0..<(m / 32) {
            camx_block32(a + blk * 32 * lda, lda, b + 2 * p * strip, strip, c + blk * 32 * ldc + p * 32, ldc, k, 0, nil)
        }
    }
}

// Packed B [k, n] as in AMXMatmul.swift: n/16 strips of 16 columns, strip s at s·k·16, laid out
// [k/2][16][2]. Seen as 32-bit words, strip s holds word r of column j at s·(k/2)·16 + r·16 + j.

/// B = xᵀ for x [n, k] (bf16, row stride `stride`): column j of B is row j of x, whose
/// consecutive pairs are already the words the tiles read.
@inline(__always)
private func packTransposed(_ dst: UnsafeMutablePointer<UInt16>, _ x: UnsafePointer<UInt16>, n: Int, k: Int, stride: Int) {
    let out = UnsafeMutableRawPointer(dst).assumingMemoryBound(to: UInt32.self)
    let src = UnsafeRawPointer(x).assumingMemoryBound(to: UInt32.self)
    let words = k / 2, rowWords = stride / 2
    for s in 0..<(n / 16) {
        let o = out + s * words * 16, rows = src + s * 16 * rowWords
        for j in 0..<16 {
            let row = rows + j * rowWords
            for r in 0..<words { o[r * 16 + j] = row[r] }
        }
    }
}

/// B = x for x [k, n] (bf16, row stride `stride`): rows 2r and 2r+1 interleaved.
@inline(__always)
private func packRowPairs(_ dst: UnsafeMutablePointer<UInt16>, _ x: UnsafePointer<UInt16>, k: Int, n: Int, stride: Int) {
    let out = UnsafeMutableRawPointer(dst).assumingMemoryBound(to: UInt32.self)
    let words = k / 2
    for s in 0..<(n / 16) {
        let o = out + s * words * 16
        for r in 0..<words {
            let even = x + 2 * r * stride + s * 16, odd = even + stride, w = o + r * 16
            for j in 0..<16 { w[j] = UInt32(even[j]) | UInt32(odd[j]) << 16 }
        }
    }
}

/// dst [columns, rows] = x [rows, columns]ᵀ (bf16; x's row stride `stride`).
@inline(__always)
private func transposeBF16(_ dst: UnsafeMutablePointer<UInt16>, _ x: UnsafePointer<UInt16>, rows: Int, columns: Int, stride: Int) {
    for c in 0..<columns {
        let o = dst + c * rows, column = x + c
        for r in 0..<rows { o[r] = column[r * stride] }
    }
}

/// The bare products of one attention shape as the tile attention runs them: `pairs` products of
/// m × k · k × n, each dimension padded to a multiple of 32, operands already bf16 and packed, the
/// pairs split over the threads; no softmax, rounding, packing or stores. The bench times `run()`
/// for the bf16 roofline's attention terms (each pair has its own operands and result, as in the step).
public final class AttentionTileProducts {
    let m: Int, n: Int, k: Int, pairs: Int
    private let a: UnsafeMutablePointer<UInt16>, b: UnsafeMutablePointer<UInt16>, c: UnsafeMutablePointer<Float>

    /// Needs `BF16Products.tiles`. Operands hold small fixed values (the time does not depend on them).
    public init(m: Int, n: Int, k: Int, pairs: Int) {
        precondition(BF16Products.tiles, "AttentionTileProducts: \(AMX.unavailableReason ?? "no AMX tiles")")
        self.m = AMX.roundUp32(m); self.n = AMX.roundUp32(n); self.k = AMX.roundUp32(k); self.pairs = pairs
        a = amxAllocate(pairs * self.m * self.k); b = amxAllocate(pairs * self.k * self.n); c = amxAllocate(pairs * self.m * self.n)
        a.initialize(repeating: 0x3F80, count: pairs * self.m * self.k)     // 1.0 in bf16
        b.initialize(repeating: 0x3F00, count: pairs * self.k * self.n)     // 0.5
        c.initialize(repeating: 0, count: pairs * self.m * self.n)
    }

    public func run() {
        let (m, n, k, a, b, c) = (m, n, k, a, b, c)
        forEachChunk(pairs, grain: 1) { _, range in
            camx_configure()
            defer { camx_release() }
            for p in range { tileProduct(m: m, n: n, k: k, a: a + p * m * k, lda: k, b: b + p * k * n, c: c + p * m * n, ldc: n) }
        }
    }

    /// One entry of a pair's (padded) result: k·0.5 after `run()` (every A entry is 1, every B entry 0.5).
    public func result(pair: Int, row: Int, column: Int) -> Float { c[pair * m * n + row * n + column] }

    deinit { a.deallocate(); b.deallocate(); c.deallocate() }
}
