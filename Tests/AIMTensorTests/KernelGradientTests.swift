import XCTest
import AIMTensor

// Every backward against central finite differences of its forward, on odd shapes
// (sizes that are not multiples of 8 or 16, one row, sequence length 1, a single head).
// Loss = Σ out·R for a fixed random R, so the backward is called with dOut = R. Where the output
// is linear in the checked tensor (linear, patch embedding, LayerNorm's affine parameters,
// dropout) a large step is exact and keeps Float rounding out of the comparison.

final class KernelGradientTests: XCTestCase {
    override func setUp() { Threads.set(2) }

    func testLinearGradients() {
        for (M, K, N, withBias) in [(1, 13, 7, true), (5, 19, 3, true), (4, 6, 11, false)] {
            let x = randomTensor([M, K], seed: 1), w = randomTensor([N, K], seed: 2, scale: 0.5)
            let b = randomTensor([N], seed: 3), r = randomTensor([M, N], seed: 4)
            let y = Tensor([M, N])
            func loss() -> Double {
                linearForward(out: y.data, input: x.data, weight: w.data, bias: withBias ? b.data : nil,
                              rows: M, inFeatures: K, outFeatures: N)
                return probe(y, r)
            }
            let dx = Tensor([M, K]), dw = Tensor([N, K]), db = Tensor([N])
            linearBackward(dInput: dx.data, dWeight: dw.data, dBias: withBias ? db.data : nil, dOut: r.data,
                           input: x.data, weight: w.data, rows: M, inFeatures: K, outFeatures: N)
            let tag = "linear M=\(M) K=\(K) N=\(N)"
            checkGradient("\(tag) dInput", x, analytic: dx.array, h: 0.5, loss: loss)
            checkGradient("\(tag) dWeight", w, analytic: dw.array, h: 0.5, loss: loss)
            if withBias { checkGradient("\(tag) dBias", b, analytic: db.array, h: 0.5, loss: loss) }

            // Weight gradients accumulate; accumulateInput adds to dInput.
            let dw1 = dw.array
            linearBackward(dInput: dx.data, dWeight: dw.data, dBias: nil, dOut: r.data, input: x.data, weight: w.data,
                           rows: M, inFeatures: K, outFeatures: N, accumulateInput: true)
            assertBitwiseEqual(dw.array, dw1.map { $0 + $0 }, "\(tag): dWeight accumulates")
        }
    }

    func testLayerNormGradients() {
        for (M, C) in [(1, 13), (4, 37), (3, 16)] {
            let x = randomTensor([M, C], seed: 10, scale: 2, offset: 0.5)
            let w = randomTensor([C], seed: 11, scale: 0.3, offset: 1), b = randomTensor([C], seed: 12)
            let r = randomTensor([M, C], seed: 13)
            let y = Tensor([M, C]), mean = Tensor([M]), rstd = Tensor([M])
            func loss() -> Double {
                layerNormForward(out: y.data, input: x.data, weight: w.data, bias: b.data, mean: nil, rstd: nil,
                                 rows: M, channels: C, eps: 1e-5)
                return probe(y, r)
            }
            layerNormForward(out: y.data, input: x.data, weight: w.data, bias: b.data, mean: mean.data, rstd: rstd.data,
                             rows: M, channels: C, eps: 1e-5)
            let dx = Tensor([M, C]), dw = Tensor([C]), db = Tensor([C])
            layerNormBackward(dInput: dx.data, dWeight: dw.data, dBias: db.data, dOut: r.data, input: x.data,
                              weight: w.data, mean: mean.data, rstd: rstd.data, rows: M, channels: C)
            checkGradient("layerNorm M=\(M) C=\(C) dInput", x, analytic: dx.array, loss: loss)
            checkGradient("layerNorm M=\(M) C=\(C) dWeight", w, analytic: dw.array, h: 0.5, loss: loss)
            checkGradient("layerNorm M=\(M) C=\(C) dBias", b, analytic: db.array, h: 0.5, loss: loss)

            // accumulateInput adds to what is there; nil parameter grads skip them.
            let before = dx.array
            layerNormBackward(dInput: dx.data, dWeight: nil, dBias: nil, dOut: r.data, input: x.data,
                              weight: w.data, mean: mean.data, rstd: rstd.data, rows: M, channels: C, accumulateInput: true)
            assertBitwiseEqual(dx.array, before.map { $0 + $0 }, "layerNorm accumulateInput")
            // An addend (a residual's gradient) is added as it writes, the same bits as copying it in first and accumulating.
            let addend = randomTensor([M, C], seed: 14), dxAdded = Tensor([M, C])
            layerNormBackward(dInput: dxAdded.data, dWeight: nil, dBias: nil, dOut: r.data, input: x.data,
                              weight: w.data, mean: mean.data, rstd: rstd.data, rows: M, channels: C, addend: addend.data)
            let dxCopied = Tensor([M, C])
            dxCopied.data.update(from: addend.data, count: M * C)
            layerNormBackward(dInput: dxCopied.data, dWeight: nil, dBias: nil, dOut: r.data, input: x.data,
                              weight: w.data, mean: mean.data, rstd: rstd.data, rows: M, channels: C, accumulateInput: true)
            assertBitwiseEqual(dxAdded.array, dxCopied.array, "layerNorm addend")
            XCTAssertNotEqual(dxAdded.array, before, "the addend changed dInput")

            // Kept x̂ instead of the input (the AIM block's ln_2): the same output and gradients, bit for bit.
            let yRef = Tensor([M, C])   // `y` holds the last perturbed forward of the gradient check
            layerNormForward(out: yRef.data, input: x.data, weight: w.data, bias: b.data, mean: nil, rstd: nil,
                             rows: M, channels: C, eps: 1e-5)
            let xhat = Tensor([M, C]), y2 = Tensor([M, C]), rstd2 = Tensor([M])
            layerNormForward(out: y2.data, input: x.data, weight: w.data, bias: b.data, mean: nil, rstd: rstd2.data,
                             normalized: xhat.data, rows: M, channels: C, eps: 1e-5)
            assertBitwiseEqual(y2.array, yRef.array, "layerNorm forward with x̂ output")
            let rebuilt = Tensor([M, C])
            layerNormAffine(out: rebuilt.data, normalized: xhat.data, weight: w.data, bias: b.data, rows: M, channels: C)
            assertBitwiseEqual(rebuilt.array, yRef.array, "layerNorm output rebuilt from x̂")
            let dx2 = Tensor([M, C]), dw2 = Tensor([C]), db2 = Tensor([C])
            layerNormBackward(dInput: dx2.data, dWeight: dw2.data, dBias: db2.data, dOut: r.data, input: xhat.data,
                              weight: w.data, mean: nil, rstd: rstd2.data, rows: M, channels: C, inputIsNormalized: true)
            let dxRef = Tensor([M, C]), dwRef = Tensor([C]), dbRef = Tensor([C])
            layerNormBackward(dInput: dxRef.data, dWeight: dwRef.data, dBias: dbRef.data, dOut: r.data, input: x.data,
                              weight: w.data, mean: mean.data, rstd: rstd.data, rows: M, channels: C)
            assertBitwiseEqual(dx2.array, dxRef.array, "layerNorm backward from x̂: dInput")
            assertBitwiseEqual(dw2.array, dwRef.array, "layerNorm backward from x̂: dWeight")
            assertBitwiseEqual(db2.array, dbRef.array, "layerNorm backward from x̂: dBias")
        }
    }

    func testGeluAndQuickGeluGradients() {
        typealias Fwd = (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int) -> Void
        typealias Bwd = (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, Int, Bool) -> Void
        let kernels: [(String, Fwd, Bwd)] = [
            ("gelu", { geluForward(out: $0, input: $1, count: $2) },
             { geluBackward(dInput: $0, dOut: $1, input: $2, count: $3, accumulateInput: $4) }),
            ("quickGelu", { quickGeluForward(out: $0, input: $1, count: $2) },
             { quickGeluBackward(dInput: $0, dOut: $1, input: $2, count: $3, accumulateInput: $4) }),
        ]
        for (name, fwd, bwd) in kernels {
            for n in [1, 37] {
                let x = randomTensor([n], seed: 20, scale: 2), r = randomTensor([n], seed: 21)
                let y = Tensor([n])
                func loss() -> Double { fwd(y.data, x.data, n); return probe(y, r) }
                let dx = Tensor([n])
                bwd(dx.data, r.data, x.data, n, false)
                checkGradient("\(name) n=\(n)", x, analytic: dx.array, loss: loss)
                let before = dx.array
                bwd(dx.data, r.data, x.data, n, true)
                assertBitwiseEqual(dx.array, before.map { $0 + $0 }, "\(name) accumulateInput")
            }
        }
    }

    func testSoftmaxGradients() {
        for (rows, cols) in [(1, 2), (3, 19), (2, 40)] {
            let x = randomTensor([rows, cols], seed: 30, scale: 2), r = randomTensor([rows, cols], seed: 31)
            let y = Tensor([rows, cols])
            func loss() -> Double { softmaxForward(out: y.data, input: x.data, rows: rows, cols: cols); return probe(y, r) }
            _ = loss()
            let dx = Tensor([rows, cols])
            softmaxBackward(dInput: dx.data, dOut: r.data, output: y.data, rows: rows, cols: cols)
            checkGradient("softmax \(rows)×\(cols)", x, analytic: dx.array, loss: loss)
        }
    }

    /// Both paths: direct loops (L ≤ attentionDirectMaxLength) and per-head sgemm (longer L).
    func testAttentionGradients() {
        let long = attentionDirectMaxLength + 5
        let shapes = [(2, 5, 12, 3), (1, 1, 8, 1), (2, 3, 40, 2), (1, long, 12, 2), (2, attentionDirectMaxLength + 1, 36, 1)]
        for (S, L, D, H) in shapes {
            let qkv = randomTensor([S, L, 3 * D], seed: 40, scale: 0.8), r = randomTensor([S, L, D], seed: 41)
            let out = Tensor([S, L, D]), probs = Tensor([S, H, L, L])
            func loss() -> Double {
                attentionForward(out: out.data, qkv: qkv.data, probs: probs.data, sequences: S, length: L, width: D, heads: H)
                return probe(out, r)
            }
            _ = loss()
            let dqkv = Tensor(shape: [S, L, 3 * D], repeating: .nan)  // must be overwritten
            attentionBackward(dQKV: dqkv.data, dOut: r.data, qkv: qkv.data, probs: probs.data,
                              sequences: S, length: L, width: D, heads: H)
            checkGradient("attention S=\(S) L=\(L) D=\(D) H=\(H)", qkv, analytic: dqkv.array, loss: loss)
        }
    }

    /// Long sequences may drop their probabilities after the forward: the backward recomputes them
    /// with the forward's own code, so the gradients are the same bits as with kept probabilities
    /// (and the finite-difference check above covers those).
    func testAttentionRecomputedProbabilitiesGiveTheSameGradients() {
        for (S, L, D, H) in [(2, attentionDirectMaxLength + 1, 36, 3), (3, 70, 24, 2)] {
            let qkv = randomTensor([S, L, 3 * D], seed: 42, scale: 0.8), r = randomTensor([S, L, D], seed: 43)
            let outKept = Tensor([S, L, D]), outDropped = Tensor([S, L, D]), probs = Tensor([S, H, L, L])
            attentionForward(out: outKept.data, qkv: qkv.data, probs: probs.data, sequences: S, length: L, width: D, heads: H)
            attentionForward(out: outDropped.data, qkv: qkv.data, probs: nil, sequences: S, length: L, width: D, heads: H)
            XCTAssertEqual(outKept.array, outDropped.array, "forward without kept probabilities, L=\(L)")
            let kept = Tensor([S, L, 3 * D]), recomputed = Tensor(shape: [S, L, 3 * D], repeating: .nan)
            attentionBackward(dQKV: kept.data, dOut: r.data, qkv: qkv.data, probs: probs.data, sequences: S, length: L, width: D, heads: H)
            attentionBackward(dQKV: recomputed.data, dOut: r.data, qkv: qkv.data, probs: nil, sequences: S, length: L, width: D, heads: H)
            XCTAssertEqual(kept.array, recomputed.array, "backward with recomputed probabilities, L=\(L)")
        }
    }

    func testPatchEmbedGradients() {
        let (N, C, Hh, Ww, p, D) = (2, 3, 6, 9, 3, 5)
        let x = randomTensor([N, C, Hh, Ww], seed: 50), w = randomTensor([D, C, p, p], seed: 51, scale: 0.3)
        let b = randomTensor([D], seed: 52), P = (Hh / p) * (Ww / p)
        let r = randomTensor([N, P, D], seed: 53)
        for withBias in [true, false] {
            let y = Tensor([N, P, D])
            func loss() -> Double {
                patchEmbedForward(out: y.data, input: x.data, weight: w.data, bias: withBias ? b.data : nil,
                                  images: N, channels: C, height: Hh, width: Ww, patch: p, outChannels: D)
                return probe(y, r)
            }
            let dx = Tensor(shape: [N, C, Hh, Ww], repeating: .nan), dw = Tensor([D, C, p, p]), db = Tensor([D])
            patchEmbedBackward(dInput: dx.data, dWeight: dw.data, dBias: withBias ? db.data : nil, dOut: r.data,
                               input: x.data, weight: w.data, images: N, channels: C, height: Hh, width: Ww,
                               patch: p, outChannels: D)
            checkGradient("patchEmbed dInput", x, analytic: dx.array, h: 0.5, loss: loss)
            checkGradient("patchEmbed dWeight", w, analytic: dw.array, h: 0.5, loss: loss)
            if withBias { checkGradient("patchEmbed dBias", b, analytic: db.array, h: 0.5, loss: loss) }
        }
    }

    func testCrossEntropyGradients() {
        let (B, K) = (3, 7)
        let z = randomTensor([B, K], seed: 60, scale: 2)
        let labels = [4, 0, 6]
        for eps: Float in [0, 0.1] {
            for gradScale: Float in [1, 2.5] {
                func loss() -> Double {
                    Double(gradScale) * Double(crossEntropyForward(logits: z.data, labels: labels, batch: B, classes: K, labelSmoothing: eps))
                }
                let dz = Tensor([B, K])
                crossEntropyBackward(dLogits: dz.data, logits: z.data, labels: labels, batch: B, classes: K,
                                     labelSmoothing: eps, gradScale: gradScale)
                checkGradient("crossEntropy ε=\(eps) scale=\(gradScale)", z, analytic: dz.array, loss: loss)
            }
        }
    }

    func testDropoutGradient() {
        let n = 53
        let x = randomTensor([n], seed: 70), r = randomTensor([n], seed: 71)
        let y = Tensor([n]), mask = Tensor([n])
        var rng = RandomGenerator(keys: 7, 1)
        dropoutForward(out: y.data, input: x.data, mask: mask.data, count: n, p: 0.3, rng: &rng)
        func loss() -> Double {
            // Re-apply the same mask (a fresh generator with the same keys draws the same mask).
            var g = RandomGenerator(keys: 7, 1)
            dropoutForward(out: y.data, input: x.data, mask: mask.data, count: n, p: 0.3, rng: &g)
            return probe(y, r)
        }
        let dx = Tensor([n])
        dropoutBackward(dInput: dx.data, dOut: r.data, mask: mask.data, count: n)
        checkGradient("dropout", x, analytic: dx.array, h: 0.5, loss: loss)
    }
}
