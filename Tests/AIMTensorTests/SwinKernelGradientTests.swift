import XCTest
import AIMTensor

// The Swin kernels against central finite differences of their forwards (loss = Σ out·R), as
// KernelGradientTests does for the ViT kernels: window attention with a per-window additive bias
// (relative-position bias + shift mask) and its score gradient, the relative-position bias
// gather / scatter-add, the row gather / scatter of window partition and patch merging, and the
// Conv3d patch embedding.

final class SwinKernelGradientTests: XCTestCase {
    override func setUp() { Threads.set(2) }

    func testWindowAttentionGradients() throws {
        // (windows, tokens, width, heads, mask groups): odd sizes, one head, no mask, masked groups;
        // up to 16 tokens the fused kernels run, 18 takes the batched-GEMM path.
        for (S, L, D, H, G) in [(4, 5, 12, 3, 2), (2, 9, 8, 1, 1), (6, 4, 16, 2, 3), (1, 1, 4, 1, 1), (3, 18, 8, 2, 2)] {
            let qkv = randomTensor([S, L, 3 * D], seed: 60, scale: 0.8), r = randomTensor([S, L, D], seed: 61)
            let ws = Tensor([windowAttentionWorkspace(sequences: S, length: L, heads: H)])
            let bias = randomTensor([H, L, L], seed: 62), mask = randomTensor([G, L, L], seed: 72)
            // A −100 entry as the shift mask puts one: its probability underflows to ~0.
            if L > 1 { mask.data[1] = -100 }
            let maskPointer = G > 1 ? UnsafePointer(mask.data) : nil
            let out = Tensor([S, L, D]), probs = Tensor([S, H, L, L])
            func loss() -> Double {
                try! windowAttentionForward(out: out.data, qkv: qkv.data, probs: probs.data, bias: bias.data, mask: maskPointer, maskGroups: G,
                                       sequences: S, length: L, width: D, heads: H, workspace: ws.data)
                return probe(out, r)
            }
            _ = loss()
            let dqkv = Tensor(shape: [S, L, 3 * D], repeating: .nan), dS = Tensor(shape: [S, H, L, L], repeating: .nan)
            try windowAttentionBackward(dQKV: dqkv.data, dScores: dS.data, dOut: r.data, qkv: qkv.data, probs: probs.data,
                                    sequences: S, length: L, width: D, heads: H, workspace: ws.data)
            let tag = "windowAttention S=\(S) L=\(L) D=\(D) H=\(H) G=\(G)"
            checkGradient("\(tag) dQKV", qkv, analytic: dqkv.array, loss: loss)
            // The bias is added to every window: its gradient is their dScores summed.
            var dBias = [Float](repeating: 0, count: H * L * L)
            for s in 0..<S { for e in 0..<(H * L * L) { dBias[e] += dS.data[s * H * L * L + e] } }
            if L > 1 { checkGradient("\(tag) dBias", bias, analytic: dBias, loss: loss) }
            _ = loss()   // probabilities of the unperturbed inputs again
            // Without dScores the same dQKV; without kept probabilities (recomputed) the same bits.
            let again = Tensor([S, L, 3 * D]), recomputed = Tensor([S, L, 3 * D]), outAgain = Tensor([S, L, D])
            try windowAttentionBackward(dQKV: again.data, dScores: nil, dOut: r.data, qkv: qkv.data, probs: probs.data,
                                    sequences: S, length: L, width: D, heads: H, workspace: ws.data)
            assertBitwiseEqual(again.array, dqkv.array, "\(tag): dQKV with and without dScores")
            try windowAttentionForward(out: outAgain.data, qkv: qkv.data, probs: nil, bias: bias.data, mask: maskPointer, maskGroups: G,
                                   sequences: S, length: L, width: D, heads: H, workspace: ws.data)
            assertBitwiseEqual(outAgain.array, out.array, "\(tag): output without keeping the probabilities")
            try windowAttentionBackward(dQKV: recomputed.data, dScores: nil, dOut: r.data, qkv: qkv.data, probs: nil, bias: bias.data,
                                    mask: maskPointer, maskGroups: G, sequences: S, length: L, width: D, heads: H, workspace: ws.data)
            assertBitwiseEqual(recomputed.array, dqkv.array, "\(tag): dQKV from recomputed probabilities")
        }
    }

    /// Windows of ≤ 16 tokens run the fused kernels (ShortWindowAttention.swift): the same output,
    /// probabilities, dQKV and score gradient as the batched-GEMM path, to float rounding.
    func testShortWindowKernelsMatchBatchedPath() throws {
        defer { ShortWindowAttention.enabled = true }
        // AIM-Swin's temporal pass (16 tokens, head width 32), a masked odd case, and a head width that is not a multiple of 16.
        for (S, L, D, H, G) in [(6, 16, 64, 2, 1), (5, 7, 96, 3, 2), (3, 16, 24, 1, 3)] {
            let qkv = randomTensor([S, L, 3 * D], seed: 80, scale: 0.8), dOut = randomTensor([S, L, D], seed: 81)
            let bias = randomTensor([H, L, L], seed: 82), mask = randomTensor([G, L, L], seed: 83)
            mask.data[2] = -100
            let maskPointer = G > 1 ? UnsafePointer(mask.data) : nil
            let ws = Tensor([windowAttentionWorkspace(sequences: S, length: L, heads: H)])
            var results: [[[Float]]] = []
            for fused in [true, false] {
                ShortWindowAttention.enabled = fused
                let out = Tensor([S, L, D]), probs = Tensor([S, H, L, L]), dqkv = Tensor([S, L, 3 * D]), dS = Tensor([S, H, L, L])
                let dqkvRecomputed = Tensor([S, L, 3 * D])
                try windowAttentionForward(out: out.data, qkv: qkv.data, probs: probs.data, bias: bias.data, mask: maskPointer, maskGroups: G,
                                           firstWindow: 1, sequences: S, length: L, width: D, heads: H, workspace: ws.data)
                try windowAttentionBackward(dQKV: dqkv.data, dScores: dS.data, dOut: dOut.data, qkv: qkv.data, probs: probs.data,
                                            sequences: S, length: L, width: D, heads: H, workspace: ws.data)
                try windowAttentionBackward(dQKV: dqkvRecomputed.data, dScores: nil, dOut: dOut.data, qkv: qkv.data, probs: nil, bias: bias.data,
                                            mask: maskPointer, maskGroups: G, firstWindow: 1, sequences: S, length: L, width: D, heads: H,
                                            workspace: ws.data)
                assertBitwiseEqual(dqkvRecomputed.array, dqkv.array, "fused \(fused): dQKV from recomputed probabilities")
                results.append([out.array, probs.array, dqkv.array, dS.array])
            }
            for (k, name) in ["out", "probs", "dQKV", "dScores"].enumerated() {
                XCTAssertLessThanOrEqual(maxRelativeError(results[0][k], results[1][k].map(Double.init)), 2e-6,
                                         "S=\(S) L=\(L) D=\(D) H=\(H) G=\(G): \(name) fused vs batched")
            }
        }
    }

    /// A shift mask's −100 must not leave subnormal floats behind: the products that read them run
    /// through microcode assists on x86 (measured 5–30× slower). Masked probabilities are exactly 0,
    /// and no probability, output or gradient is subnormal.
    func testShiftMaskLeavesNoSubnormals() throws {
        let (S, L, D, H) = (2, 49, 64, 2)
        let qkv = randomTensor([S, L, 3 * D], seed: 69, scale: 0.8), dOut = randomTensor([S, L, D], seed: 70)
        let ws = Tensor([windowAttentionWorkspace(sequences: S, length: L, heads: H)])
        let bias = randomTensor([H, L, L], seed: 71, scale: 0.1), mask = Tensor([2, L, L])
        for g in 0..<2 { for i in 0..<L { for j in 0..<L where (i < 20) != (j < 20) { mask.data[(g * L + i) * L + j] = -100 } } }
        let out = Tensor([S, L, D]), probs = Tensor([S, H, L, L]), dqkv = Tensor([S, L, 3 * D]), dS = Tensor([S, H, L, L])
        try windowAttentionForward(out: out.data, qkv: qkv.data, probs: probs.data, bias: bias.data, mask: mask.data, maskGroups: 2,
                               sequences: S, length: L, width: D, heads: H, workspace: ws.data)
        try windowAttentionBackward(dQKV: dqkv.data, dScores: dS.data, dOut: dOut.data, qkv: qkv.data, probs: probs.data,
                                sequences: S, length: L, width: D, heads: H, workspace: ws.data)
        for (name, t) in [("probs", probs), ("out", out), ("dQKV", dqkv), ("dScores", dS)] {
            XCTAssertEqual(t.array.filter { $0.isSubnormal }.count, 0, "\(name) holds subnormal floats")
        }
        for s in 0..<S { for h in 0..<H { for i in 0..<L { for j in 0..<L where (i < 20) != (j < 20) {
            XCTAssertEqual(probs.data[((s * H + h) * L + i) * L + j], 0, "masked probability (\(s), \(h), \(i), \(j))")
        } } } }
        // The unmasked probabilities of each row still sum to 1.
        for r in 0..<(S * H * L) {
            let sum = (0..<L).reduce(Float(0)) { $0 + probs.data[r * L + $1] }
            XCTAssertEqual(sum, 1, accuracy: 1e-5)
        }
    }

    func testWindowAttentionWithoutBiasIsPlainAttention() throws {
        let (S, L, D, H) = (3, 7, 12, 3)
        let qkv = randomTensor([S, L, 3 * D], seed: 63)
        let ws = Tensor([windowAttentionWorkspace(sequences: S, length: L, heads: H)])
        let a = Tensor([S, L, D]), b = Tensor([S, L, D]), p = Tensor([S, H, L, L])
        try windowAttentionForward(out: a.data, qkv: qkv.data, probs: p.data, bias: nil, sequences: S, length: L, width: D, heads: H, workspace: ws.data)
        attentionForward(out: b.data, qkv: qkv.data, probs: nil, sequences: S, length: L, width: D, heads: H)
        XCTAssertLessThanOrEqual(maxRelativeError(a.array, b.array.map(Double.init)), 1e-6)
    }

    func testRelativePositionBiasGradient() {
        let (E, H, L) = (7, 3, 4)
        let table = randomTensor([E, H], seed: 64), r = randomTensor([H, L, L], seed: 65)
        var index = [Int32](repeating: 0, count: L * L)
        for i in 0..<L { for j in 0..<L { index[i * L + j] = Int32(i - j + L - 1) } }   // the temporal index (2L−1 rows)
        let out = Tensor([H, L, L])
        func loss() -> Double {
            index.withUnsafeBufferPointer { relativePositionBiasForward(out: out.data, table: table.data, index: $0.baseAddress!, length: L, heads: H) }
            return probe(out, r)
        }
        let dTable = Tensor([E, H])
        index.withUnsafeBufferPointer { relativePositionBiasBackward(dTable: dTable.data, dBias: r.data, index: $0.baseAddress!, length: L, heads: H) }
        checkGradient("relativePositionBias dTable", table, analytic: dTable.array, h: 0.5, loss: loss)
    }

    func testRowGatherAndScatterAreAdjoint() {
        let (rows, width) = (11, 5)
        var index = (0..<rows).map(Int32.init)
        var g = RandomGenerator(keys: 66)
        for i in stride(from: rows - 1, to: 0, by: -1) { index.swapAt(i, Int(g.next() % UInt64(i + 1))) }
        let x = randomTensor([rows, width], seed: 67), r = randomTensor([rows, width], seed: 68)
        let y = Tensor([rows, width])
        func loss() -> Double {
            index.withUnsafeBufferPointer { gatherRows(out: y.data, input: x.data, index: $0.baseAddress!, rows: rows, width: width) }
            return probe(y, r)
        }
        let dx = Tensor(shape: [rows, width], repeating: .nan)
        index.withUnsafeBufferPointer { scatterRows(out: dx.data, input: r.data, index: $0.baseAddress!, rows: rows, width: width) }
        checkGradient("gatherRows", x, analytic: dx.array, h: 0.5, loss: loss)
        // Scatter undoes gather.
        let back = Tensor([rows, width])
        _ = loss()
        index.withUnsafeBufferPointer { scatterRows(out: back.data, input: y.data, index: $0.baseAddress!, rows: rows, width: width) }
        XCTAssertEqual(back.array, x.array)
    }

    /// The bf16 gather (a bf16 model's LayerNorm output into windows) moves the same rows as the
    /// fp32 one, padding rows (negative index) zero; the strided gather/scatter pick every n-th row.
    func testBF16AndStridedRowGathers() {
        let (rows, width) = (9, 6)
        let index: [Int32] = [3, -1, 0, 8, 8, 2, -1, 5, 1]
        let x = randomTensor([rows, width], seed: 69)
        var x16 = [UInt16](repeating: 0, count: rows * width)
        toBF16(&x16, x.data, count: rows * width)
        let y = Tensor([rows, width])
        var y16 = [UInt16](repeating: 0xFFFF, count: rows * width), expected16 = [UInt16](repeating: 0, count: rows * width)
        index.withUnsafeBufferPointer { i in
            gatherRows(out: y.data, input: x.data, index: i.baseAddress!, rows: rows, width: width)
            x16.withUnsafeBufferPointer { gatherRows(out: &y16, input: $0.baseAddress!, index: i.baseAddress!, rows: rows, width: width) }
        }
        toBF16(&expected16, y.data, count: rows * width)
        XCTAssertEqual(y16, expected16)
        XCTAssertEqual(Array(y.array[width..<2 * width]), [Float](repeating: 0, count: width))

        let picked = Tensor([3, width])
        gatherRows(out: picked.data, input: x.data, rows: 3, every: 3, width: width)
        for r in 0..<3 { XCTAssertEqual(Array(picked.array[r * width..<(r + 1) * width]), Array(x.array[3 * r * width..<(3 * r + 1) * width])) }
        let back = Tensor(shape: [rows, width], repeating: -7)
        scatterRows(out: back.data, input: picked.data, rows: 3, every: 3, width: width)
        for r in 0..<rows {
            let row = Array(back.array[r * width..<(r + 1) * width])
            XCTAssertEqual(row, r % 3 == 0 ? Array(x.array[r * width..<(r + 1) * width]) : [Float](repeating: -7, count: width))
        }
    }

    func testPatchEmbed3DGradients() {
        let sizes = Patch3DSizes(batch: 2, channels: 3, frames: 4, height: 6, width: 9, patch: [2, 2, 3], outChannels: 5)
        let x = randomTensor([2, 3, 4, 6, 9], seed: 70), w = randomTensor([5, 3, 2, 2, 3], seed: 71, scale: 0.3)
        let b = randomTensor([5], seed: 72), r = randomTensor([sizes.tokens, 5], seed: 73)
        let y = Tensor([sizes.tokens, 5])
        func loss() -> Double {
            patchEmbed3DForward(out: y.data, video: x.data, weight: w.data, bias: b.data, sizes: sizes)
            return probe(y, r)
        }
        let dx = Tensor(shape: [2, 3, 4, 6, 9], repeating: .nan), dw = Tensor([5, 3, 2, 2, 3]), db = Tensor([5])
        patchEmbed3DBackward(dVideo: dx.data, dWeight: dw.data, dBias: db.data, dOut: r.data, video: x.data, weight: w.data, sizes: sizes)
        checkGradient("patchEmbed3D dVideo", x, analytic: dx.array, h: 0.5, loss: loss)
        checkGradient("patchEmbed3D dWeight", w, analytic: dw.array, h: 0.5, loss: loss)
        checkGradient("patchEmbed3D dBias", b, analytic: db.array, h: 0.5, loss: loss)
    }

    /// Token (b, t', y, x) of a known tube gets Σ weight·pixels of exactly that tube.
    func testPatchEmbed3DTokenOrder() {
        let sizes = Patch3DSizes(batch: 1, channels: 1, frames: 4, height: 4, width: 4, patch: [2, 2, 2], outChannels: 1)
        let x = Tensor(shape: [1, 1, 4, 4, 4], values: (0..<64).map(Float.init))
        let w = Tensor(shape: [1, 1, 2, 2, 2], repeating: 1)
        let y = Tensor([sizes.tokens, 1])
        patchEmbed3DForward(out: y.data, video: x.data, weight: w.data, bias: nil, sizes: sizes)
        // token (t'=1, y=0, x=1): frames 2-3, rows 0-1, columns 2-3.
        var expected: Float = 0
        for t in 2..<4 { for yy in 0..<2 { for xx in 2..<4 { expected += Float(t * 16 + yy * 4 + xx) } } }
        XCTAssertEqual(y.data[1 * 4 + 0 * 2 + 1], expected)
    }
}
