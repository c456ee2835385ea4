import XCTest
import AIMTensor

/// The short-sequence bf16 attention (the temporal pass of a bf16 model): the fp32 attention of
/// q | k | v rounded to bf16, up to the order of fp32 sums; its bf16 results the rounding of its
/// fp32 ones; the same results on one thread and two.
final class AttentionShortTests: XCTestCase {
    private func run(S: Int, L: Int, D: Int, H: Int, threads: Int, rounded: Bool)
        -> (out: [Float], dqkv: [Float], out16: [UInt16], dqkv16: [UInt16]) {
        let qkv = randomTensor([S, L, 3 * D], seed: 51, scale: 2), dOut = randomTensor([S, L, D], seed: 52)
        var qkv16 = [UInt16](repeating: 0, count: S * L * 3 * D)
        toBF16(&qkv16, qkv.data, count: qkv16.count)
        let out = Tensor([S, L, D]), dqkv = Tensor([S, L, 3 * D])
        var out16 = [UInt16](repeating: 0, count: S * L * D), dqkv16 = [UInt16](repeating: 0, count: S * L * 3 * D)
        let saved = Threads.count
        Threads.set(threads)
        defer { Threads.set(saved) }
        qkv16.withUnsafeBufferPointer { q in
            let q = q.baseAddress!
            shortAttentionForward(out: out.data, roundedOut: nil, qkv16: q, sequences: S, length: L, width: D, heads: H)
            shortAttentionBackward(dQKV: dqkv.data, roundedDQKV: nil, dOut: dOut.data, qkv16: q, sequences: S, length: L, width: D, heads: H)
            if rounded {
                shortAttentionForward(out: nil, roundedOut: &out16, qkv16: q, sequences: S, length: L, width: D, heads: H)
                shortAttentionBackward(dQKV: nil, roundedDQKV: &dqkv16, dOut: dOut.data, qkv16: q, sequences: S, length: L, width: D, heads: H)
            }
        }
        return (out.array, dqkv.array, out16, dqkv16)
    }

    /// The reference: Attention.swift's fp32 kernels on the widened bf16 q | k | v.
    private func reference(S: Int, L: Int, D: Int, H: Int) -> (out: [Float], dqkv: [Float]) {
        let qkv = randomTensor([S, L, 3 * D], seed: 51, scale: 2), dOut = randomTensor([S, L, D], seed: 52)
        var bits = [UInt16](repeating: 0, count: S * L * 3 * D)
        toBF16(&bits, qkv.data, count: bits.count)
        for i in bits.indices { qkv.data[i] = Float(bitPattern: UInt32(bits[i]) << 16) }
        let out = Tensor([S, L, D]), dqkv = Tensor([S, L, 3 * D]), probs = Tensor([S, H, L, L])
        attentionForward(out: out.data, qkv: qkv.data, probs: probs.data, sequences: S, length: L, width: D, heads: H)
        attentionBackward(dQKV: dqkv.data, dOut: dOut.data, qkv: qkv.data, probs: probs.data, sequences: S, length: L, width: D, heads: H)
        return (out.array, dqkv.array)
    }

    func testMatchesTheFP32AttentionOfRoundedInputs() throws {
        // The temporal pass of ViT-B/16 (8 frames, head width 64), a head width of 16, one row, sixteen rows.
        for (S, L, D, H) in [(5, 8, 768, 12), (3, 8, 48, 3), (4, 1, 64, 2), (2, 16, 128, 2), (3, 5, 64, 1)] {
            try XCTSkipUnless(shortAttentionRuns(length: L, width: D, heads: H), "no AVX-512 here for the short bf16 attention")
            let ours = run(S: S, L: L, D: D, H: H, threads: 2, rounded: false), ref = reference(S: S, L: L, D: D, H: H)
            for (name, a, b) in [("out", ours.out, ref.out), ("dQKV", ours.dqkv, ref.dqkv)] {
                let scale = b.map { abs($0) }.max() ?? 0
                let worst = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertGreaterThan(scale, 0, "\(name) S=\(S) L=\(L) D=\(D)")
                XCTAssertLessThanOrEqual(worst, 2e-6 * scale, "\(name) S=\(S) L=\(L) D=\(D) H=\(H)")
            }
        }
    }

    func testRoundedResultsAndThreadsGiveTheSameBits() throws {
        let (S, L, D, H) = (6, 8, 128, 2)
        try XCTSkipUnless(shortAttentionRuns(length: L, width: D, heads: H), "no AVX-512 here for the short bf16 attention")
        let two = run(S: S, L: L, D: D, H: H, threads: 2, rounded: true), one = run(S: S, L: L, D: D, H: H, threads: 1, rounded: true)
        XCTAssertEqual(two.out, one.out)
        XCTAssertEqual(two.dqkv, one.dqkv)
        var expected = [UInt16](repeating: 0, count: two.out.count), expectedGrad = [UInt16](repeating: 0, count: two.dqkv.count)
        toBF16(&expected, two.out, count: expected.count)
        toBF16(&expectedGrad, two.dqkv, count: expectedGrad.count)
        XCTAssertEqual(two.out16, expected, "output in bf16")
        XCTAssertEqual(two.dqkv16, expectedGrad, "q|k|v gradients in bf16")
        XCTAssertEqual(one.out16, two.out16)
    }

    /// Sequences interleaved in groups (the frames of each token in frame order) give each sequence's
    /// results bit for bit, at its interleaved rows.
    func testInterleavedSequencesMatchContiguousOnes() throws {
        let (B, N, L, D, H) = (2, 3, 8, 64, 2), S = B * N
        try XCTSkipUnless(shortAttentionRuns(length: L, width: D, heads: H), "no AVX-512 here for the short bf16 attention")
        let qkv = randomTensor([S, L, 3 * D], seed: 53, scale: 2), dOut = randomTensor([S, L, D], seed: 54)
        var contiguous16 = [UInt16](repeating: 0, count: S * L * 3 * D)
        toBF16(&contiguous16, qkv.data, count: contiguous16.count)
        // Row (s, i) of the contiguous layout is row (b·L + i)·N + n of the interleaved one, s = b·N + n.
        func interleavedRow(_ s: Int, _ i: Int) -> Int { ((s / N) * L + i) * N + s % N }
        var interleaved16 = contiguous16
        let dOutInterleaved = Tensor([S, L, D])
        for s in 0..<S {
            for i in 0..<L {
                let from = s * L + i, to = interleavedRow(s, i)
                for c in 0..<(3 * D) { interleaved16[to * 3 * D + c] = contiguous16[from * 3 * D + c] }
                for c in 0..<D { dOutInterleaved.data[to * D + c] = dOut.data[from * D + c] }
            }
        }
        let out = Tensor([S, L, D]), dqkv = Tensor([S, L, 3 * D]), outI = Tensor([S, L, D]), dqkvI = Tensor([S, L, 3 * D])
        contiguous16.withUnsafeBufferPointer { q in
            shortAttentionForward(out: out.data, roundedOut: nil, qkv16: q.baseAddress!, sequences: S, length: L, width: D, heads: H)
            shortAttentionBackward(dQKV: dqkv.data, roundedDQKV: nil, dOut: dOut.data, qkv16: q.baseAddress!, sequences: S, length: L,
                                   width: D, heads: H)
        }
        interleaved16.withUnsafeBufferPointer { q in
            shortAttentionForward(out: outI.data, roundedOut: nil, qkv16: q.baseAddress!, sequences: S, length: L, width: D, heads: H,
                                  interleaved: N)
            shortAttentionBackward(dQKV: dqkvI.data, roundedDQKV: nil, dOut: dOutInterleaved.data, qkv16: q.baseAddress!, sequences: S,
                                   length: L, width: D, heads: H, interleaved: N)
        }
        for s in 0..<S {
            for i in 0..<L {
                let from = s * L + i, to = interleavedRow(s, i)
                XCTAssertEqual(Array(UnsafeBufferPointer(start: outI.data + to * D, count: D)),
                               Array(UnsafeBufferPointer(start: out.data + from * D, count: D)), "output row \(i) of sequence \(s)")
                XCTAssertEqual(Array(UnsafeBufferPointer(start: dqkvI.data + to * 3 * D, count: 3 * D)),
                               Array(UnsafeBufferPointer(start: dqkv.data + from * 3 * D, count: 3 * D)), "gradient row \(i) of sequence \(s)")
            }
        }
    }

    func testWhereItRuns() {
        XCTAssertFalse(shortAttentionRuns(length: 17, width: 768, heads: 12))
        XCTAssertFalse(shortAttentionRuns(length: 8, width: 120, heads: 3))   // head width 40
        XCTAssertFalse(shortAttentionRuns(length: 8, width: 768, heads: 0))
        XCTAssertEqual(shortAttentionRuns(length: 8, width: 768, heads: 12), CPUFeatures.current.contains([.avx512f, .avx512bw, .avx512vl]))
    }
}
