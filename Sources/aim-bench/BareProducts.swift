import AIMModel
import AIMTensor
import COpenBLAS

/// One product of a roofline, alone, on operands it owns (random values, converted to bf16 or
/// packed up front, as the step holds them), ready to be timed. The per-shape tables time every
/// candidate of a shape side by side; the paced roofline times the fastest again between our steps.
struct BareProduct {
    /// The kernel's name as the tables print it ("oneDNN", "AMX tiles", a library's name …).
    let kernel: String
    let run: () throws -> Void
}

/// bf16 operands (64-byte aligned, as the tiles want them) that free themselves.
final class BF16Operand {
    let data: UnsafeMutablePointer<UInt16>
    init(_ count: Int) { data = amxAllocate(count) }
    /// `count` values of `seed`'s random floats, rounded.
    convenience init(_ count: Int, seed: UInt32) {
        self.init(count)
        let values = Buffer(count, seed: seed)
        withExtendedLifetime(values) { toBF16(data, values.data, count: count) }
    }
    deinit { data.deallocate() }
}

enum BareProducts {
    /// The fp32 product of `s`: a linear shape through `library` (made current before each call, so
    /// its thread count is the run's), or, with no library, OpenBLAS as our fp32 attention runs its
    /// (sequence, head) products: one single-threaded sgemm per pair, the pairs split over the threads.
    static func fp32(_ s: GemmShape, library: GemmLibrary?, threads: Int) -> BareProduct {
        let aCount = s.m * s.k, bCount = s.k * s.n, cCount = s.m * s.n
        let a = Buffer(aCount * s.pairs, seed: 11), b = Buffer(bCount * s.pairs, seed: 12), c = Buffer(cCount * s.pairs, seed: 13)
        let lda = s.transA ? s.m : s.k, ldb = s.transB ? s.k : s.n
        if let library, s.pairs == 1 {
            return BareProduct(kernel: library.rawValue) {
                try? Gemm.select(library)
                Gemm.sgemm(library, transA: s.transA, transB: s.transB, M: s.m, N: s.n, K: s.k, A: a.data, lda: lda,
                           B: b.data, ldb: ldb, beta: 0, C: c.data, ldc: s.n)
            }
        }
        let ta = s.transA ? CblasTrans : CblasNoTrans, tb = s.transB ? CblasTrans : CblasNoTrans
        let (m, n, k) = (Int32(s.m), Int32(s.n), Int32(s.k))
        if s.pairs == 1 {
            return BareProduct(kernel: "openblas") {
                cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1, a.data, Int32(lda), b.data, Int32(ldb), 0, c.data, n)
            }
        }
        return BareProduct(kernel: "openblas") {
            openblas_set_num_threads(1)
            Threads.parallelFor(s.pairs) { range in
                for p in range {
                    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1, a.data + p * aCount, Int32(lda), b.data + p * bCount, Int32(ldb),
                                0, c.data + p * cCount, n)
                }
            }
            openblas_set_num_threads(Int32(threads))
        }
    }

    static let oneDNN = "oneDNN", packed = "oneDNN, weights packed", tiles = "AMX tiles"

    /// The bf16 kernels our bf16 step can run `s` with, oneDNN's matmul first; none where it runs
    /// none. A linear shape: oneDNN's matmul, and our AMX tiles where they take it (forward and
    /// input-gradient shapes in 32-wide steps), else, for a frozen weight's product, oneDNN with
    /// the weight packed in its own layout (as `BF16Weight` holds frozen weights). Attention's
    /// (sequence, head) products: bare tile products, each dimension padded to 32 as the tile
    /// attention pads them, or all pairs in one oneDNN batched call on dense operands.
    static func bf16(_ s: GemmShape, frozen: Bool) -> [BareProduct] {
        if s.pairs > 1 {
            // m is the sequence length in every attention product of StepGemms, the head width the smaller of n and k.
            let dh = min(s.n, s.k)
            if attentionRunsOnTiles(length: s.m, headWidth: dh) {
                let products = AttentionTileProducts(m: s.m, n: s.n, k: s.k, pairs: s.pairs)
                return [BareProduct(kernel: tiles) { products.run() }]
            }
            guard attentionRunsOnOneDNN(length: s.m, width: dh, heads: 1) else { return [] }
            let p = s.pairs
            let a = BF16Operand(p * s.m * s.k, seed: 24), b = BF16Operand(p * s.k * s.n, seed: 25), c = Buffer(p * s.m * s.n, seed: 26)
            let aOp = s.transA ? BatchedOperand.dense(1, p, s.k, s.m).transposed : .dense(1, p, s.m, s.k)
            let bOp = s.transB ? BatchedOperand.dense(1, p, s.n, s.k).transposed : .dense(1, p, s.k, s.n)
            return [BareProduct(kernel: oneDNN) { try batchedMatmulBF16(aOp, a.data, bOp, b.data, .dense(1, p, s.m, s.n), c.data) }]
        }
        let a = BF16Operand(s.m * s.k, seed: 21), b = BF16Operand(s.k * s.n, seed: 22), c = Buffer(s.m * s.n, seed: 23)
        var products = [BareProduct(kernel: oneDNN) { try bf16Matmul(s, a: a.data, b: b.data, c: c.data) }]
        let fb = Buffer(s.k * s.n, seed: 22)   // B in fp32, to pack from
        defer { withExtendedLifetime(fb) {} }
        if !s.transA && BF16Products.tiles(k: s.k, n: s.n) {
            let panel = BF16Operand(AMX.packedCount(k: s.k, n: s.n))
            if s.transB { amxPackTransposed(panel.data, fb.data, n: s.n, k: s.k) } else { amxPackRows(panel.data, fb.data, k: s.k, n: s.n) }
            products.append(BareProduct(kernel: tiles) {
                amxMatmul(m: s.m, k: s.k, n: s.n, a: a.data, b: panel.data, bias: nil, c: c.data, accumulate: false)
            })
        } else if !s.transA && frozen {
            // A frozen weight's forward (B = Wᵀ, W [n, k]) or input gradient (B = W [k, n]) as the step runs it.
            let weight = BF16Weight(fb.data, outFeatures: s.transB ? s.n : s.k, inFeatures: s.transB ? s.k : s.n)
            products.append(BareProduct(kernel: packed) {
                if s.transB { try linearForwardBF16(out: c.data, roundedInput: a.data, weight: weight, bias: nil, rows: s.m) }
                else { try linearInputGradientBF16(dInput: c.data, roundedDOut: a.data, weight: weight, rows: s.m) }
            })
        }
        return products
    }
}
