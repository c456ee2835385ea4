import CAMX
import Foundation

// Attention of the bf16 models (model.precision: bf16) over the long sequences (the 197 tokens of
// a frame), as PyTorch's CPU autocast runs it: on AMX tiles where the CPU has them
// (AttentionTiles.swift), otherwise through oneDNN's bf16 batched matmul (this file). Why: in
// fp32 this attention ran its products at sgemm speed, 0.33 s of the 2.57 s bf16 ViT-B/16 step
// on a Zen 4 (AVX512_BF16, no AMX), where oneDNN's bf16 products run about 1.7× faster.
//
// The oneDNN path does what the tile path does, in the same order and with the same roundings
// (q, k, v, the output gradient, the probabilities and scale·dS rounded to bf16 as product
// operands; softmax and its backward in fp32 by the same CAMX row helpers), so the two differ
// only in the order of fp32 accumulation inside a product. Per sequence, all heads in one
// oneDNN call per product, operands read where they lie by strides (no copies):
//   forward   S = Q·Kᵀ, P = softmax(scale·S) by rows, O = P·V
//   backward  Sᵀ = K·Qᵀ and Pᵀ by columns, dPᵀ = V·dOᵀ, dV = Pᵀ·dO, dSᵀ = Pᵀ ⊙ (dPᵀ − D),
//             dK = scale·dSᵀ·Q, dQ = scale·(dSᵀ)ᵀ·K
// Probabilities are never kept; the backward recomputes them.

/// Whether a bf16 model's attention over sequences of `length` runs in bf16: on tiles where they
/// run (`attentionRunsOnTiles`), else through oneDNN where it has a kernel other than its
/// reference one for every product of the shape (asked once per shape). Sequences shorter than
/// 64 (the temporal pass over T frames) are not for this file, as not for tiles: thousands of 8 × 8
/// products per call are not what a matmul library is for (AttentionShort.swift takes them).
public func attentionRunsInBF16(length L: Int, width D: Int, heads H: Int) -> Bool {
    guard H > 0, D % H == 0 else { return false }
    if attentionRunsOnTiles(length: L, headWidth: D / H) { return true }
    return attentionRunsOnOneDNN(length: L, width: D, heads: H)
}

/// Whether attention of these sizes can run in bf16 through oneDNN (`attentionRunsInBF16` without
/// tiles): sequences of 64 or more, AVX-512 for the row helpers, and a real kernel for every product.
public func attentionRunsOnOneDNN(length L: Int, width D: Int, heads H: Int) -> Bool {
    H > 0 && D % H == 0 && OneDNNAttention.runs(length: L, width: D, heads: H)
}

/// q | k | v rows [S, L, 3D] as the oneDNN attention reads them: fp32 (each sequence rounded to
/// bf16 as it is reached), or already bf16, as a frozen in_proj writes them when only this
/// attention reads its output (the same bits, without the two rounding passes and with half the
/// memory kept for backward).
public enum AttentionQKVRows {
    case fp32(UnsafePointer<Float>)
    case bf16(UnsafePointer<UInt16>)
    var isFP32: Bool { if case .fp32 = self { return true } else { return false } }
}

/// out [S, L, D] = attention(qkv [S, L, 3D]) over `heads`, in bf16. Needs `attentionRunsInBF16`.
public func attentionForwardBF16(
    out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, sequences S: Int, length L: Int, width D: Int, heads H: Int
) {
    if attentionRunsOnTiles(length: L, headWidth: D / H) {
        attentionForwardTiles(out: out, qkv: qkv, sequences: S, length: L, width: D, heads: H)
    } else {
        attentionForwardOneDNN(out: out, qkv: qkv, sequences: S, length: L, width: D, heads: H)
    }
}

/// The oneDNN half of `attentionForwardBF16`, callable on any CPU where `attentionRunsOnOneDNN` (tests compare it with tiles).
/// With `roundedOut` [S, L, D] the output is written there in bf16 (rounded as `toBF16` rounds)
/// and `out` is not touched: for an output that only a bf16 product reads (the frozen out_proj),
/// which then needs no rounding pass.
public func attentionForwardOneDNN(
    out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, sequences S: Int, length L: Int, width D: Int, heads H: Int,
    roundedOut: UnsafeMutablePointer<UInt16>? = nil
) {
    attentionForwardOneDNN(out: out, qkvRows: .fp32(qkv), sequences: S, length: L, width: D, heads: H, roundedOut: roundedOut)
}

/// `attentionForwardOneDNN` reading q | k | v as `qkvRows` give them.
public func attentionForwardOneDNN(
    out: UnsafeMutablePointer<Float>, qkvRows: AttentionQKVRows, sequences S: Int, length L: Int, width D: Int, heads H: Int,
    roundedOut: UnsafeMutablePointer<UInt16>? = nil
) {
    precondition(attentionRunsOnOneDNN(length: L, width: D, heads: H), "attentionForwardOneDNN: L=\(L) D=\(D) H=\(H) do not run on oneDNN here")
    OneDNNAttention.split(sequences: S, length: L, width: D, heads: H, backward: false) { work, sequences in
        work.forward(out: out, roundedOut: roundedOut, qkv: qkvRows, sequences: sequences)
    }
}

/// dQKV [S, L, 3D] = the gradients of q | k | v for dOut [S, L, D], in bf16 (probabilities
/// recomputed). Needs `attentionRunsInBF16`.
public func attentionBackwardBF16(
    dQKV: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
    sequences S: Int, length L: Int, width D: Int, heads H: Int
) {
    if attentionRunsOnTiles(length: L, headWidth: D / H) {
        attentionBackwardTiles(dQKV: dQKV, dOut: dOut, qkv: qkv, sequences: S, length: L, width: D, heads: H)
    } else {
        attentionBackwardOneDNN(dQKV: dQKV, dOut: dOut, qkv: qkv, sequences: S, length: L, width: D, heads: H)
    }
}

/// The oneDNN half of `attentionBackwardBF16`. With `roundedDQKV` [S, L, 3D] the gradients are
/// written there in bf16 and `dQKV` is not touched (for a frozen in_proj, whose input gradient is a
/// bf16 product that reads only that).
public func attentionBackwardOneDNN(
    dQKV: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
    sequences S: Int, length L: Int, width D: Int, heads H: Int, roundedDQKV: UnsafeMutablePointer<UInt16>? = nil
) {
    attentionBackwardOneDNN(dQKV: dQKV, dOut: dOut, qkvRows: .fp32(qkv), sequences: S, length: L, width: D, heads: H,
                            roundedDQKV: roundedDQKV)
}

/// `attentionBackwardOneDNN` reading q | k | v as `qkvRows` give them.
public func attentionBackwardOneDNN(
    dQKV: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, qkvRows: AttentionQKVRows,
    sequences S: Int, length L: Int, width D: Int, heads H: Int, roundedDQKV: UnsafeMutablePointer<UInt16>? = nil
) {
    precondition(attentionRunsOnOneDNN(length: L, width: D, heads: H), "attentionBackwardOneDNN: L=\(L) D=\(D) H=\(H) do not run on oneDNN here")
    OneDNNAttention.split(sequences: S, length: L, width: D, heads: H, backward: true) { work, sequences in
        work.backward(dQKV: dQKV, roundedDQKV: roundedDQKV, dOut: dOut, qkv: qkvRows, sequences: sequences)
    }
}

/// Rounds one sequence's `length` rows of q | k | v [L, 3D] (when given; and of the output gradient [L, D])
/// into bf16 rows laid out alike, all threads on contiguous rows (why whole rows and not per head:
/// see `TileAttentionWork`). Both bf16 attentions use it.
func roundAttentionRows(_ qkv16: UnsafeMutablePointer<UInt16>, _ qkv: UnsafePointer<Float>?,
                        _ gradient16: UnsafeMutablePointer<UInt16>, _ dy: UnsafePointer<Float>?, length: Int, width D: Int,
                        serially: Bool = false) {
    let ld = 3 * D
    if serially {
        if let qkv { roundToBF16Serially(qkv16, qkv, length * ld) }
        if let dy { roundToBF16Serially(gradient16, dy, length * D) }
        return
    }
    Threads.parallelFor(length) { rows in
        let first = rows.lowerBound
        if let qkv { roundToBF16Serially(qkv16 + first * ld, qkv + first * ld, rows.count * ld) }
        if let dy { roundToBF16Serially(gradient16 + first * D, dy + first * D, rows.count * D) }
    }
}

/// One call's buffers and operand descriptions. The score buffers are [H, L, Lp] with Lp = L
/// rounded up to 16, as the CAMX column helpers step 16 columns at a time; the products never
/// read or write columns ≥ L, which stay zero in `scoreGrads` and hold 1/L in `scores` after a
/// column softmax (whose backward then gives exactly 0 there). About 1 MB for q | k | v and
/// 6 MB of scores for ViT-B/16 (L = 197), allocated per call. One sequence per oneDNN call: calls
/// over 2, 4 or all 8 sequences of a ViT-B/16 clip measured no faster (aim-bench's attention rows,
/// Zen 4), and hold proportionally more scratch.
final class OneDNNAttention {
    let length: Int, lp: Int, width: Int, heads: Int, dh: Int
    let qkv16: UnsafeMutablePointer<UInt16>          // [L, 3D] bf16: one sequence's q | k | v
    let gradient16: UnsafeMutablePointer<UInt16>     // [L, D] bf16: its output gradient (backward)
    let scores: UnsafeMutablePointer<Float>          // [H, L, Lp]: S or Sᵀ, then the probabilities
    let probs16: UnsafeMutablePointer<UInt16>        // [H, L, Lp]: P or Pᵀ
    let scoreGrads: UnsafeMutablePointer<Float>      // [H, L, Lp]: dPᵀ (backward)
    let scoreGrads16: UnsafeMutablePointer<UInt16>   // [H, L, Lp]: scale·dSᵀ (backward)
    /// Set when this work runs on one thread of ours alone (`split`); nil: all threads on each sequence.
    let lane: OneDNNLane?

    init(length L: Int, width D: Int, heads H: Int, backward: Bool, lane: OneDNNLane? = nil) {
        self.lane = lane
        precondition(L > 0 && H > 0 && D % H == 0, "OneDNNAttention: bad sizes L=\(L) D=\(D) H=\(H)")
        length = L; lp = (L + 15) / 16 * 16; width = D; heads = H; dh = D / H
        let square = H * L * lp, extra = backward ? 1 : 0
        qkv16 = .allocate(capacity: L * 3 * D)
        gradient16 = .allocate(capacity: max(1, L * D * extra))
        scores = .allocate(capacity: square); probs16 = .allocate(capacity: square)
        scoreGrads = .allocate(capacity: max(1, square * extra)); scoreGrads16 = .allocate(capacity: max(1, square * extra))
        // Only the padding columns need defined values (see above); the rest is written before it is read.
        for row in 0..<(H * L) {
            (scores + row * lp + L).initialize(repeating: 0, count: lp - L)
            if backward { (scoreGrads + row * lp + L).initialize(repeating: 0, count: lp - L) }
        }
    }

    deinit {
        qkv16.deallocate(); gradient16.deallocate(); scores.deallocate(); probs16.deallocate()
        scoreGrads.deallocate(); scoreGrads16.deallocate()
    }

    // Operands of one sequence, [1, H, rows, cols] by strides (the leading stride is never stepped).
    /// Each head's q, k or v as [L, dh] in a sequence's bf16 rows [L, 3D] (k and v D and 2D further on).
    private var headParts: BatchedOperand { BatchedOperand([1, heads, length, dh], strides: [length * 3 * width, dh, 3 * width, 1]) }
    /// The rows of [L, D] (out, the output gradient) per head, as [L, dh].
    private var headRows: BatchedOperand { BatchedOperand([1, heads, length, dh], strides: [length * width, dh, width, 1]) }
    /// The rows of dQKV [L, 3D] per head, as [L, dh].
    private var headRows3: BatchedOperand { BatchedOperand([1, heads, length, dh], strides: [length * 3 * width, dh, 3 * width, 1]) }
    /// An [L, L] score matrix per head in an [H, L, Lp] buffer.
    private var square: BatchedOperand { BatchedOperand([1, heads, length, length], strides: [heads * length * lp, length * lp, lp, 1]) }

    /// The shapes and strides of every product this attention runs, and whether C is written in
    /// bf16 (the outputs and gradients that go on to a bf16 product), for the probe.
    fileprivate var products: [(BatchedOperand, BatchedOperand, BatchedOperand, rounded: Bool)] {
        let q = headParts
        let fp32 = [(q, q.transposed, square), (square, q, headRows), (q, headRows.transposed, square),
                    (square, headRows, headRows3), (square, q, headRows3), (square.transposed, q, headRows3)]
        let rounded = [(square, q, headRows), (square, headRows, headRows3), (square, q, headRows3), (square.transposed, q, headRows3)]
        return fp32.map { ($0.0, $0.1, $0.2, rounded: false) } + rounded.map { ($0.0, $0.1, $0.2, rounded: true) }
    }

    /// Sequence s's q | k | v in bf16 [L, 3D]: the caller's rows, or fp32 ones rounded into `qkv16`
    /// (and its output gradient into `gradient16`, when given).
    private func sequenceRows(_ s: Int, _ qkv: AttentionQKVRows, gradient dy: UnsafePointer<Float>?) -> UnsafePointer<UInt16> {
        let at = s * length * 3 * width
        switch qkv {
        case .bf16(let rows):
            if let dy { roundAttentionRows(qkv16, nil, gradient16, dy, length: length, width: width, serially: lane != nil) }
            return rows + at
        case .fp32(let rows):
            roundAttentionRows(qkv16, rows + at, gradient16, dy, length: length, width: width, serially: lane != nil)
            return UnsafePointer(qkv16)
        }
    }

    /// `body(head)` for every head, the heads split over the threads (in turn on a lane).
    private func forEachHead(_ body: (Int) -> Void) {
        if lane != nil { for h in 0..<heads { body(h) }; return }
        forEachChunk(heads, grain: 1) { _, range in for h in range { body(h) } }
    }

    /// A product of this attention; the probe has found each shape a real kernel, so a throw here is a bug.
    private func product(_ a: BatchedOperand, _ pa: UnsafePointer<UInt16>, _ b: BatchedOperand, _ pb: UnsafePointer<UInt16>,
                         _ c: BatchedOperand, _ pc: UnsafeMutablePointer<Float>) {
        do { try batchedMatmulBF16(a, pa, b, pb, c, pc, lane: lane) } catch {
            preconditionFailure("bf16 attention L=\(length) D=\(width) H=\(heads): \(error)")
        }
    }

    /// A product whose C is written in bf16.
    private func product(_ a: BatchedOperand, _ pa: UnsafePointer<UInt16>, _ b: BatchedOperand, _ pb: UnsafePointer<UInt16>,
                         _ c: BatchedOperand, rounded pc: UnsafeMutablePointer<UInt16>) {
        do { try batchedMatmulBF16(a, pa, b, pb, c, rounded: pc, lane: lane) } catch {
            preconditionFailure("bf16 attention L=\(length) D=\(width) H=\(heads): \(error)")
        }
    }

    func forward(out: UnsafeMutablePointer<Float>, roundedOut: UnsafeMutablePointer<UInt16>?, qkv: AttentionQKVRows, sequences: Range<Int>) {
        let L = length, lp = lp, D = width, scale = 1 / Float(dh).squareRoot()
        let qOp = headParts, vOp = headParts
        for s in sequences {
            let q = sequenceRows(s, qkv, gradient: nil), k = q + D, v = q + 2 * D
            product(qOp, q, qOp.transposed, k, square, scores)
            forEachHead { h in
                let at = h * L * lp
                camx_softmax_rows_bf16(probs16 + at, lp, scores + at, lp, L, L, L, scale)
            }
            if let roundedOut {
                product(square, probs16, vOp, v, headRows, rounded: roundedOut + s * L * D)
            } else {
                product(square, probs16, vOp, v, headRows, out + s * L * D)
            }
        }
    }

    func backward(dQKV: UnsafeMutablePointer<Float>, roundedDQKV: UnsafeMutablePointer<UInt16>?, dOut: UnsafePointer<Float>,
                  qkv: AttentionQKVRows, sequences: Range<Int>) {
        let L = length, lp = lp, D = width, ld = 3 * D, scale = 1 / Float(dh).squareRoot()
        let qOp = headParts, kOp = headParts, vOp = headParts
        let g = UnsafePointer(gradient16)
        for s in sequences {
            let q = sequenceRows(s, qkv, gradient: dOut + s * L * D), k = q + D, v = q + 2 * D
            let dq = dQKV + s * L * ld, dk = dq + D, dv = dq + 2 * D
            let dq16 = roundedDQKV.map { $0 + s * L * ld }
            // Pᵀ [j, i]: softmax down each column i over the keys j (fp32 in `scores`, bf16 in `probs16`).
            product(kOp, k, qOp.transposed, q, square, scores)
            forEachHead { h in
                let at = h * L * lp
                camx_softmax_columns_bf16(probs16 + at, scores + at, lp, L, lp, scale)
            }
            product(vOp, v, headRows.transposed, g, square, scoreGrads)          // dPᵀ [j, i] = v_j · dO_i
            if let dq16 { product(square, probs16, headRows, g, headRows3, rounded: dq16 + 2 * D) } else {
                product(square, probs16, headRows, g, headRows3, dv)             // dV = Pᵀ · dO
            }
            forEachHead { h in                                                   // scale · dSᵀ in bf16
                let at = h * L * lp
                camx_score_gradients_bf16(scoreGrads16 + at, scores + at, scoreGrads + at, lp, L, lp, scale)
            }
            if let dq16 {
                product(square, scoreGrads16, qOp, q, headRows3, rounded: dq16 + D)
                product(square.transposed, scoreGrads16, kOp, k, headRows3, rounded: dq16)
            } else {
                product(square, scoreGrads16, qOp, q, headRows3, dk)             // dK = scale · dSᵀ · Q
                product(square.transposed, scoreGrads16, kOp, k, headRows3, dq)  // dQ = scale · dS · K
            }
        }
    }

    /// Runs `body` over the S sequences: when there are enough sequences to go round, each thread
    /// of ours takes a contiguous share and runs it alone on a lane (buffers, stream and one-thread
    /// primitives of its own), so a sequence's seven products and row passes stay on one core's
    /// caches and no product wakes oneDNN's OpenMP team; otherwise one work object runs every
    /// sequence with all threads on each. Either way a sequence's arithmetic is the same.
    static func split(sequences S: Int, length L: Int, width D: Int, heads H: Int, backward: Bool,
                      _ body: (OneDNNAttention, Range<Int>) -> Void) {
        let threads = Threads.count
        let lanes = threads > 1 && S >= threads && (S % threads == 0 || S >= 4 * threads) && runs(length: L, width: D, heads: H, alone: true)
            ? (0..<threads).compactMap { _ in try? OneDNNLane() } : []
        guard lanes.count == threads else {   // also where oneDNN could not make a stream for each thread
            body(OneDNNAttention(length: L, width: D, heads: H, backward: backward), 0..<S)
            return
        }
        forEachChunk(S, grain: 1) { chunk, sequences in
            body(OneDNNAttention(length: L, width: D, heads: H, backward: backward, lane: lanes[chunk]), sequences)
        }
    }

    /// Whether every product of attention over `length` with these sizes has a real oneDNN kernel
    /// (and the CPU the AVX-512 the row helpers need); asked of oneDNN once per shape. `alone`: the
    /// one-thread primitives of a lane (else `split` keeps all threads on each sequence).
    static func runs(length L: Int, width D: Int, heads H: Int, alone: Bool = false) -> Bool {
        let key = [L, D, H, alone ? 1 : 0]
        lock.lock(); defer { lock.unlock() }
        if let known = probed[key] { return known }
        let answer: Bool = {
            guard L >= 64, CPUFeatures.current.contains([.avx512f, .avx512bw, .avx512vl]), BF16Support.isAvailable,
                  let engine = try? BatchedMatmulEngine.shared() else { return false }
            let shape = OneDNNAttention(length: L, width: D, heads: H, backward: false)
            return shape.products.allSatisfy { engine.implementationBF16($0.0, $0.1, $0.2, alone: alone, roundedOutput: $0.rounded) != nil }
        }()
        probed[key] = answer
        return answer
    }
    nonisolated(unsafe) private static var probed: [[Int]: Bool] = [:]
    private static let lock = NSLock()
}
