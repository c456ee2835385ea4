import XCTest
import Foundation
import AIMTensor

// Forward values against naive Double reference implementations.

final class KernelForwardTests: XCTestCase {
    override func setUp() { Threads.set(2) }

    func testLayerNormMatchesReference() {
        let (M, C) = (5, 37)
        let x = randomTensor([M, C], seed: 100, scale: 3, offset: 10)  // large offset: two-pass variance
        let w = randomTensor([C], seed: 101), b = randomTensor([C], seed: 102)
        let y = Tensor([M, C]), mean = Tensor([M]), rstd = Tensor([M])
        layerNormForward(out: y.data, input: x.data, weight: w.data, bias: b.data, mean: mean.data, rstd: rstd.data,
                         rows: M, channels: C, eps: 1e-5)
        var ref = [Double]()
        for i in 0..<M {
            let row = (0..<C).map { Double(x[i * C + $0]) }
            let mu = row.reduce(0, +) / Double(C)
            let variance = row.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(C)
            let r = 1 / (variance + 1e-5).squareRoot()
            XCTAssertEqual(Double(mean[i]), mu, accuracy: 1e-5)
            XCTAssertEqual(Double(rstd[i]), r, accuracy: 1e-5 * r)
            for j in 0..<C { ref.append((row[j] - mu) * r * Double(w[j]) + Double(b[j])) }
        }
        XCTAssertLessThan(maxRelativeError(y.array, ref), 2e-5)
    }

    /// LayerNorm written in bf16 (for bf16 products that read nothing else): the fp32 output rounded,
    /// bit for bit, with the same statistics and x̂; rows wider than a vector and a ragged tail.
    func testLayerNormInBF16IsTheFP32OutputRounded() {
        for (M, C) in [(7, 768), (5, 37)] {
            let x = randomTensor([M, C], seed: 103, scale: 3, offset: 2)
            let w = randomTensor([C], seed: 104), b = randomTensor([C], seed: 105)
            let y = Tensor([M, C]), mean = Tensor([M]), rstd = Tensor([M]), xhat = Tensor([M, C])
            let mean16 = Tensor([M]), rstd16 = Tensor([M]), xhat16 = Tensor([M, C])
            layerNormForward(out: y.data, input: x.data, weight: w.data, bias: b.data, mean: mean.data, rstd: rstd.data,
                             normalized: xhat.data, rows: M, channels: C, eps: 1e-5)
            var rounded = [UInt16](repeating: 0, count: M * C), expected = rounded
            layerNormForward(out: nil, roundedOut: &rounded, input: x.data, weight: w.data, bias: b.data, mean: mean16.data, rstd: rstd16.data,
                             normalized: xhat16.data, rows: M, channels: C, eps: 1e-5)
            toBF16(&expected, y.data, count: M * C)
            XCTAssertEqual(rounded, expected, "C=\(C)")
            XCTAssertEqual(mean16.array, mean.array)
            XCTAssertEqual(rstd16.array, rstd.array)
            XCTAssertEqual(xhat16.array, xhat.array)
            XCTAssertGreaterThan(Set(expected).count, M * C / 4, "a degenerate output")
        }
    }

    /// A bf16 MLP's activation kernels (fc1's output kept in bf16, the activation and its gradient
    /// written in bf16 as the next products' operands): the same bits as rounding first, the fp32
    /// kernels on the rounded values, then rounding their results, over several 2048-float blocks
    /// and a ragged tail.
    func testActivationsOnBF16InputsMatchRoundingFirst() {
        let n = 3 * 2048 + 37
        let src = randomTensor([n], seed: 7, scale: 12)   // past erf's ±4 bound and deep into σ's tails
        let dOut = randomTensor([n], seed: 8)
        func bf16(_ t: Tensor) -> [UInt16] {
            (0..<n).map { i in let u = t[i].bitPattern; return UInt16(truncatingIfNeeded: (u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16) }
        }
        for quick in [false, true] {
            let x = src.clone(), keep = UnsafeMutablePointer<UInt16>.allocate(capacity: n), out16 = UnsafeMutablePointer<UInt16>.allocate(capacity: n)
            defer { keep.deallocate(); out16.deallocate() }
            activationForwardRoundingInput(quick: quick, outBF16: out16, input: x.data, keep: keep, count: n)
            let rounded = Tensor([n]), expected = Tensor([n])
            let keptBits = bf16(src)   // round to nearest even
            for i in 0..<n {
                XCTAssertEqual(keep[i], keptBits[i])
                rounded[i] = Float(bitPattern: UInt32(keptBits[i]) << 16)
            }
            XCTAssertEqual(x.array, rounded.array, "the input rounded in place, quick: \(quick)")
            if quick { quickGeluForward(out: expected.data, input: rounded.data, count: n) }
            else { geluForward(out: expected.data, input: rounded.data, count: n) }
            XCTAssertEqual(Array(UnsafeBufferPointer(start: out16, count: n)), bf16(expected), "forward, quick: \(quick)")
            out16.update(repeating: 0, count: n)
            activationForward(quick: quick, outBF16: out16, inputBF16: keep, count: n)
            XCTAssertEqual(Array(UnsafeBufferPointer(start: out16, count: n)), bf16(expected), "forward from kept bf16, quick: \(quick)")
            let d = Tensor([n]), dExpected = Tensor([n])
            activationBackward(quick: quick, dInput: d.data, dOut: dOut.data, inputBF16: keep, count: n)
            if quick { quickGeluBackward(dInput: dExpected.data, dOut: dOut.data, input: rounded.data, count: n) }
            else { geluBackward(dInput: dExpected.data, dOut: dOut.data, input: rounded.data, count: n) }
            XCTAssertEqual(d.array, dExpected.array, "backward, quick: \(quick)")
            activationBackward(quick: quick, dInputBF16: out16, dOut: dOut.data, inputBF16: keep, count: n)
            XCTAssertEqual(Array(UnsafeBufferPointer(start: out16, count: n)), bf16(dExpected), "backward into bf16, quick: \(quick)")
        }
    }

    func testGeluAndQuickGeluMatchReference() {
        // A dense grid including the tails, where erf saturates and exp would overflow.
        let xs = (0..<2001).map { Float($0 - 1000) / 50 } + [-100, -60, 60, 100]
        let n = xs.count
        let x = Tensor(shape: [n], values: xs), y = Tensor([n])
        geluForward(out: y.data, input: x.data, count: n)
        let gelu = xs.map { v -> Double in let d = Double(v); return 0.5 * d * (1 + erf(d / 2.0.squareRoot())) }
        XCTAssertLessThan(maxRelativeError(y.array, gelu), 1e-6)
        quickGeluForward(out: y.data, input: x.data, count: n)
        let quick = xs.map { v -> Double in let d = Double(v); return d / (1 + exp(-1.702 * d)) }
        XCTAssertLessThan(maxRelativeError(y.array, quick), 1e-6)
        // In place.
        geluForward(out: x.data, input: x.data, count: n)
        XCTAssertLessThan(maxRelativeError(x.array, gelu), 1e-6)

        // The backward's derivative formulas against Double derivatives.
        let ones = Tensor(shape: [n], repeating: 1), g = Tensor([n]), x2 = Tensor(shape: [n], values: xs)
        geluBackward(dInput: g.data, dOut: ones.data, input: x2.data, count: n)
        let dGelu = xs.map { v -> Double in
            let d = Double(v)
            return 0.5 * (1 + erf(d / 2.0.squareRoot())) + d * exp(-0.5 * d * d) / (2 * Double.pi).squareRoot()
        }
        XCTAssertLessThan(maxRelativeError(g.array, dGelu), 2e-6)
        // Accumulating (the tail of 2005 = 125·16 + 5 included), and in place (dInput = dOut).
        let start = Tensor(shape: [n], values: (0..<n).map { Float($0 % 7) - 3 })
        geluBackward(dInput: start.data, dOut: ones.data, input: x2.data, count: n, accumulateInput: true)
        XCTAssertLessThan(maxRelativeError(start.array, zip(dGelu, 0..<n).map { $0 + Double($1 % 7) - 3 }), 2e-6)
        geluBackward(dInput: ones.data, dOut: ones.data, input: x2.data, count: n)
        XCTAssertEqual(ones.array, g.array, "in place gives the same bits")
        ones.data.update(repeating: 1, count: n)
        quickGeluBackward(dInput: g.data, dOut: ones.data, input: x2.data, count: n)
        let dQuick = xs.map { v -> Double in
            let d = Double(v), s = 1 / (1 + exp(-1.702 * d))
            return s + 1.702 * d * s * (1 - s)
        }
        XCTAssertLessThan(maxRelativeError(g.array, dQuick), 2e-6)
    }

    func testSoftmaxMatchesReference() {
        for (rows, cols) in [(3, 1), (4, 19), (2, 197)] {
            let x = randomTensor([rows, cols], seed: 110, scale: 5, offset: 30)
            let y = Tensor([rows, cols])
            softmaxForward(out: y.data, input: x.data, rows: rows, cols: cols)
            var ref = [Double]()
            for i in 0..<rows {
                let row = (0..<cols).map { Double(x[i * cols + $0]) }
                let m = row.max()!
                let e = row.map { exp($0 - m) }, s = e.reduce(0, +)
                ref += e.map { $0 / s }
            }
            XCTAssertLessThan(zip(y.array, ref).map { abs(Double($0) - $1) / max($1, 1e-30) }.max()!, 1e-5,
                              "softmax \(rows)×\(cols): relative error")
        }
    }

    /// A direct Double implementation of multi-head attention on packed qkv.
    private func referenceAttention(_ qkv: Tensor, S: Int, L: Int, D: Int, H: Int) -> (out: [Double], probs: [Double]) {
        let dh = D / H, ld = 3 * D
        var out = [Double](repeating: 0, count: S * L * D), probs = [Double](repeating: 0, count: S * H * L * L)
        for s in 0..<S { for h in 0..<H { for i in 0..<L {
            func at(_ t: Int, _ part: Int, _ c: Int) -> Double { Double(qkv[(s * L + t) * ld + part * D + h * dh + c]) }
            var sc = (0..<L).map { j in (0..<dh).map { at(i, 0, $0) * at(j, 1, $0) }.reduce(0, +) / Double(dh).squareRoot() }
            let m = sc.max()!
            sc = sc.map { exp($0 - m) }
            let z = sc.reduce(0, +)
            for j in 0..<L { probs[((s * H + h) * L + i) * L + j] = sc[j] / z }
            for c in 0..<dh {
                out[(s * L + i) * D + h * dh + c] = (0..<L).map { sc[$0] / z * at($0, 2, c) }.reduce(0, +)
            }
        } } }
        return (out, probs)
    }

    func testAttentionMatchesReference() {
        let shapes = [(3, 8, 24, 3), (2, 1, 16, 2), (1, attentionDirectMaxLength + 7, 20, 1), (2, 9, 40, 2)]
        for (S, L, D, H) in shapes {
            let qkv = randomTensor([S, L, 3 * D], seed: 120, scale: 1.5)
            let out = Tensor([S, L, D]), probs = Tensor([S, H, L, L])
            attentionForward(out: out.data, qkv: qkv.data, probs: probs.data, sequences: S, length: L, width: D, heads: H)
            let ref = referenceAttention(qkv, S: S, L: L, D: D, H: H)
            XCTAssertLessThan(maxRelativeError(out.array, ref.out), 1e-5, "attention out S=\(S) L=\(L) D=\(D) H=\(H)")
            XCTAssertLessThan(maxRelativeError(probs.array, ref.probs), 1e-5, "attention probs S=\(S) L=\(L) D=\(D) H=\(H)")
        }
    }

    func testPatchEmbedMatchesConvolution() {
        let (N, C, Hh, Ww, p, D) = (2, 3, 8, 12, 4, 7)
        let x = randomTensor([N, C, Hh, Ww], seed: 130), w = randomTensor([D, C, p, p], seed: 131)
        let b = randomTensor([D], seed: 132)
        let gw = Ww / p, P = (Hh / p) * gw
        let y = Tensor([N, P, D])
        patchEmbedForward(out: y.data, input: x.data, weight: w.data, bias: b.data, images: N, channels: C,
                          height: Hh, width: Ww, patch: p, outChannels: D)
        var ref = [Double]()
        for n in 0..<N { for t in 0..<P { for d in 0..<D {
            let py = t / gw, px = t % gw
            var s = Double(b[d])
            for c in 0..<C { for ky in 0..<p { for kx in 0..<p {
                s += Double(x[((n * C + c) * Hh + py * p + ky) * Ww + px * p + kx]) * Double(w[((d * C + c) * p + ky) * p + kx])
            } } }
            ref.append(s)
        } } }
        XCTAssertLessThan(maxRelativeError(y.array, ref), 1e-5)
    }

    func testCrossEntropyWithLabelSmoothing() {
        let (B, K) = (4, 5)
        let z = randomTensor([B, K], seed: 140, scale: 3)
        let labels = [0, 4, 2, 2]
        for eps in [0.0, 0.1, 0.2] {
            var ref = 0.0
            for b in 0..<B {
                let row = (0..<K).map { Double(z[b * K + $0]) }
                let m = row.max()!, lse = m + log(row.map { exp($0 - m) }.reduce(0, +))
                for k in 0..<K {
                    let target = (k == labels[b] ? 1 - eps : 0) + eps / Double(K)
                    ref -= target * (row[k] - lse)
                }
            }
            ref /= Double(B)
            let got = crossEntropyForward(logits: z.data, labels: labels, batch: B, classes: K, labelSmoothing: Float(eps))
            XCTAssertEqual(Double(got), ref, accuracy: 1e-6 * max(1, ref), "cross-entropy ε=\(eps)")
        }
        // A value computed by torch: F.cross_entropy(tensor([[1., 2., 3.], [0., 0., 5.]]), tensor([2, 0]), label_smoothing=0.1)
        let logits: [Float] = [1, 2, 3, 0, 0, 5]
        let torchValue = crossEntropyForward(logits: logits, labels: [2, 0], batch: 2, classes: 3, labelSmoothing: 0.1)
        XCTAssertEqual(torchValue, 2.6771624088287354, accuracy: 1e-6)
    }

    func testScaleRowsAndElementwise() {
        let (rows, cols) = (3, 21)
        let x = randomTensor([rows, cols], seed: 150), y = randomTensor([rows, cols], seed: 151)
        let scales: [Float] = [0, 1.25, -2]
        let out = y.clone()
        scaleRows(out: out.data, input: x.data, rowScales: scales, rows: rows, cols: cols)
        for i in 0..<rows * cols { XCTAssertEqual(out[i], x[i] * scales[i / cols]) }
        let acc = y.clone()
        scaleRows(out: acc.data, input: x.data, rowScales: scales, rows: rows, cols: cols, accumulate: true)
        for i in 0..<rows * cols { XCTAssertEqual(acc[i], y[i] + x[i] * scales[i / cols]) }

        let n = rows * cols
        let s = Tensor([n])
        add(out: s.data, x.data, y.data, count: n)
        for i in 0..<n { XCTAssertEqual(s[i], x[i] + y[i]) }
        addInPlace(s.data, x.data, count: n)
        for i in 0..<n { XCTAssertEqual(s[i], (x[i] + y[i]) + x[i]) }
        scale(s.data, by: 0.5, count: n)
        for i in 0..<n { XCTAssertEqual(s[i], ((x[i] + y[i]) + x[i]) * 0.5) }
    }
}
