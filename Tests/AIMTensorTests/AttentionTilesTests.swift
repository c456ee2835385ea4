import XCTest
import AIMTensor

/// The bf16 tile attention against the fp32 kernels on the same (bf16-exact) q, k, v and output
/// gradient: what remains is the rounding of the probabilities and score gradients to bf16 as
/// product operands, and the summation order (measured: 0.15–0.17 % RMS, at most 0.24 % of the
/// largest value, for each of the output and the three gradients).
final class AttentionTilesTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(BF16Products.tiles, "no AMX tile products on this machine: \(BF16Products.description)")
    }

    private func bf16Exact(_ n: Int, seed: UInt64, amplitude: Float) -> [Float] {
        var rng = SplitMix(seed)
        return (0..<n).map { _ in
            let x = (Float(rng.next() % 20001) / 10000 - 1) * amplitude
            return Float(bitPattern: x.bitPattern & 0xFFFF_0000)
        }
    }

    private func relativeErrors(_ a: [Float], _ b: [Float]) -> (max: Double, rms: Double) {
        var maxDiff = 0.0, sq = 0.0, ref = 0.0, refMax = 0.0
        for (x, y) in zip(a, b) {
            let d = Double(x) - Double(y)
            maxDiff = max(maxDiff, abs(d)); sq += d * d; ref += Double(y) * Double(y); refMax = max(refMax, abs(Double(y)))
        }
        return (maxDiff / refMax, (sq / ref).squareRoot())
    }

    private func check(sequences S: Int, length L: Int, width D: Int, heads H: Int, threads: Int) throws {
        let saved = Threads.count
        Threads.set(threads)
        defer { Threads.set(saved) }
        XCTAssertTrue(attentionRunsOnTiles(length: L, headWidth: D / H))
        // Amplitude 3: scores spread over several units, so the softmax is far from uniform.
        var qkv = bf16Exact(S * L * 3 * D, seed: 1, amplitude: 3)
        let dOut = bf16Exact(S * L * D, seed: 2, amplitude: 1)
        var outRef = [Float](repeating: 0, count: S * L * D), out = [Float](repeating: .nan, count: S * L * D)
        var dRef = [Float](repeating: 0, count: S * L * 3 * D), d = [Float](repeating: .nan, count: S * L * 3 * D)
        qkv.withUnsafeMutableBufferPointer { x in
            attentionForward(out: &outRef, qkv: x.baseAddress!, probs: nil, sequences: S, length: L, width: D, heads: H)
            attentionForwardTiles(out: &out, qkv: x.baseAddress!, sequences: S, length: L, width: D, heads: H)
            attentionBackward(dQKV: &dRef, dOut: dOut, qkv: x.baseAddress!, probs: nil, sequences: S, length: L, width: D, heads: H)
            attentionBackwardTiles(dQKV: &d, dOut: dOut, qkv: x.baseAddress!, sequences: S, length: L, width: D, heads: H)
        }
        let o = relativeErrors(out, outRef)
        XCTAssertLessThan(o.rms, 3e-3, "output, L=\(L): \(o)"); XCTAssertLessThan(o.max, 6e-3, "output, L=\(L): \(o)")
        for (part, name) in ["q", "k", "v"].enumerated() {
            var got: [Float] = [], want: [Float] = []
            for r in 0..<(S * L) {
                let start: Int = r * 3 * D + part * D
                got.append(contentsOf: d[start..<(start + D)])
                want.append(contentsOf: dRef[start..<(start + D)])
            }
            let e = relativeErrors(got, want)
            XCTAssertLessThan(e.rms, 3e-3, "d\(name), L=\(L): \(e)"); XCTAssertLessThan(e.max, 6e-3, "d\(name), L=\(L): \(e)")
        }
    }

    func testFrameLengthSequencesMatchFP32() throws { try check(sequences: 2, length: 197, width: 128, heads: 2, threads: 2) }
    func testShortPaddedSequencesOneThread() throws { try check(sequences: 3, length: 70, width: 96, heads: 3, threads: 1) }
    func testWholeBlocksWideHeads() throws { try check(sequences: 1, length: 64, width: 256, heads: 2, threads: 2) }

    /// The bench's bare products for the bf16 roofline really multiply every pair (k padded to 32s).
    func testBareProductsForTheRooflineMultiplyEveryPair() {
        for (m, n, k) in [(197, 197, 64), (197, 64, 197)] {
            let products = AttentionTileProducts(m: m, n: n, k: k, pairs: 5)
            products.run()
            let expected = Float((k + 31) / 32 * 32) / 2
            for pair in [0, 4] {
                XCTAssertEqual(products.result(pair: pair, row: 0, column: 0), expected, "\(m)×\(k)·\(k)×\(n) pair \(pair)")
                XCTAssertEqual(products.result(pair: pair, row: 223, column: (n + 31) / 32 * 32 - 1), expected)
            }
        }
    }

    func testTemporalAndNarrowHeadsStayFP32() {
        XCTAssertFalse(attentionRunsOnTiles(length: 8, headWidth: 64))
        XCTAssertFalse(attentionRunsOnTiles(length: 197, headWidth: 48))
    }
}

private struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
